#!/usr/bin/env python3
"""Writes a gateway-logs scenario's label: every client request of the capture, the gateway's
upstream connections that served it (4-tuples, from the capture), and what each raw log said
about it, parsed here with plain regular expressions (independently of capdiag's Swift reader,
so the tests compare two readings of the same lines).

Usage: label.py NAME LAB_LABEL OUT_DIR TIME_ZONE
  LAB_LABEL  the label lab.sh wrote for the scenario (client statuses, expected cause, gateway), or
             "-" to take those from the existing OUT_DIR/NAME.json (relabel without recording)
  OUT_DIR    holds NAME.any.pcap and the raw logs NAME.{nginx-error,nginx-access,haproxy}.log
"""
import datetime, json, os, re, subprocess, sys, zoneinfo

name, lab_label_path, out, tz_name = sys.argv[1:5]
if lab_label_path == "-":
    with open(f"{out}/{name}.json") as f:
        old = json.load(f)
    lab = {"expected_cause": old["expected_cause"], "gateway": old["gateway"],
           "client": {"statuses": old["client_statuses"]}}
else:
    with open(lab_label_path) as f:
        lab = json.load(f)
zone = zoneinfo.ZoneInfo(tz_name)

GATEWAY_UPSTREAM_SIDE = {"10.77.2.1", "10.77.3.1"}  # the gateway's addresses towards upstreams
CLIENT = "10.77.1.2"
METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"PATCH ", b"OPTIONS ")


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lines(log):
    path = f"{out}/{name}.{log}.log"
    if not os.path.exists(path):
        return None, []
    with open(path, "rb") as f:
        return f"{name}.{log}.log", [l.rstrip(b"\n").decode("utf-8", "replace") for l in f]


# --- The capture: client requests, upstream connections and the requests sent on them.
fields = ["frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
          "tcp.payload"]
tshark = subprocess.run(["tshark", "-r", f"{out}/{name}.any.pcap", "-Y", "tcp", "-T", "fields", "-E", "separator=\t",
                         *sum((["-e", x] for x in fields), [])], capture_output=True, text=True, check=True)
client_requests = []  # {target, method, client, time}
connections = {}  # (gw, up) -> {first, requests: [(time, target, request_id)], payload: bool}
for row in tshark.stdout.splitlines():
    parts = row.split("\t")
    if len(parts) < len(fields):
        continue
    t, src, sport, dst, dport, syn, ack, payload = parts[:8]
    t = float(t)
    data = bytes.fromhex(payload.replace(":", "")) if payload else b""
    if src == CLIENT and data.startswith(METHODS):
        method, target = data.split(b" ", 2)[:2]
        client_requests.append({"method": method.decode(), "target": target.decode(), "client": f"{src}:{sport}",
                                "time": t})
    if src in GATEWAY_UPSTREAM_SIDE:
        key = (f"{src}:{sport}", f"{dst}:{dport}")
        conn = connections.setdefault(key, {"first": t, "requests": [], "payload": False, "syn": False})
        if syn == "1" and ack == "0":
            conn["syn"] = True
        if data:
            conn["payload"] = True
        if data.startswith(METHODS):
            method, target = data.split(b" ", 2)[:2]
            rid = re.search(rb"\r\nX-Request-Id: ([^\r\n]*)", data, re.I)
            conn["requests"].append((t, target.decode(), rid.group(1).decode() if rid else None))
client_requests.sort(key=lambda r: r["time"])
requests = {r["target"]: {"method": r["method"], "target": r["target"], "client": r["client"],
                          "client_request_time": iso(r["time"]), "_time": r["time"], "upstream_connections": []}
            for r in client_requests}

# Each connection serves the requests it carried; a connection that carried no HTTP request
# (refused, timed out, TLS that failed) belongs to the last client request sent before its SYN
# (the lab's clients send one request at a time). Connections whose SYN the capture does not hold
# (idle ones of earlier scenarios closing) are left out.
for (gw, up), conn in sorted(connections.items(), key=lambda kv: kv[1]["first"]):
    if conn["requests"]:
        for t, target, rid in conn["requests"]:
            if target in requests:
                requests[target]["upstream_connections"].append(
                    {"gateway": gw, "upstream": up, "request_sent": iso(t), "x_request_id": rid})
        continue
    if not conn["syn"]:
        continue
    before = [r for r in client_requests if r["time"] <= conn["first"]]
    if before:
        requests[before[-1]["target"]]["upstream_connections"].append(
            {"gateway": gw, "upstream": up, "opened": iso(conn["first"]), "request_sent": None,
             "x_request_id": None})

# --- The logs, parsed with regular expressions.
def request_target(request):
    parts = request.split(" ")
    return parts[1] if len(parts) >= 2 else None


def naive_to_utc(naive):
    """Local wall-clock time (as the gateway's zone) → UTC ISO, for the tests' tolerance checks."""
    return naive.replace(tzinfo=zone).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


error_file, error_lines = lines("nginx-error")
error_re = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*?)'
                      r'(?:, client: ([^,]+), server: ([^,]*)(?:, request: "(.*?)")?(?:, upstream: "(.*?)")?'
                      r'(?:, host: "(.*?)")?)?$')
other_error_lines = []
for number, line in enumerate(error_lines, 1):
    m = error_re.match(line)
    if not m:
        sys.exit(f"label.py: {name}: error log line {number} not understood: {line!r}")
    logged, level, pid, tid, conn, message, client, server, request, upstream, host = m.groups()
    entry = {"line": number, "time": logged, "time_utc": naive_to_utc(datetime.datetime.strptime(logged, "%Y/%m/%d %H:%M:%S")),
             "level": level, "pid": int(pid), "connection": int(conn) if conn else None, "message": message,
             "client": client, "upstream": upstream, "host": host}
    target = request_target(request) if request else None
    if target in requests:
        requests[target].setdefault("nginx_error_log", []).append(entry)
    else:
        other_error_lines.append(entry)

access_file, access_lines = lines("nginx-access")
access_re = re.compile(r'^(\S+):(\d+) \[(.*?)\] msec=(\d+\.\d+) "(.*?)" (\d{3}) upstream_addr="(.*?)" '
                       r'upstream_status="(.*?)" upstream_connect_time="(.*?)" upstream_header_time="(.*?)" '
                       r'upstream_response_time="(.*?)" request_time=(\S+) request_id=(\S+)$')
for number, line in enumerate(access_lines, 1):
    m = access_re.match(line)
    if not m:
        sys.exit(f"label.py: {name}: access log line {number} not understood: {line!r}")
    addr, port, logged, msec, request, status, up_addr, up_status, up_connect, up_header, up_response, rt, rid = m.groups()
    split = lambda v: [x for x in re.split(r", | : ", v)]
    entry = {"line": number, "client": f"{addr}:{port}", "time": logged, "msec": msec,
             "time_utc": iso(float(msec)), "status": int(status),
             "upstream_addr": split(up_addr), "upstream_status": split(up_status),
             "upstream_connect_time": split(up_connect), "upstream_header_time": split(up_header),
             "upstream_response_time": split(up_response), "request_time": rt, "request_id": rid}
    target = request_target(request)
    if target not in requests:
        sys.exit(f"label.py: {name}: access log line {number}: no client request {target} in the capture")
    requests[target]["nginx_access_log"] = entry

haproxy_file, haproxy_lines = lines("haproxy")
haproxy_re = re.compile(r'^(?:(<\d+>)(\w{3} [ \d]\d \d\d:\d\d:\d\d) (?:\S+ )?haproxy\[(\d+)\]: )?'
                        r'(\S+):(\d+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] (\S+) (\S+)/(\S+) '
                        r'(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+) (-?\d+) (\d+) (?:(\S+) (\S+) )?(\S{4}) '
                        r'(\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (?:(\d+)/(\d+) )?(?:(\S+):(\d+) )?"(.*)"$')
for number, line in enumerate(haproxy_lines, 1):
    m = haproxy_re.match(line)
    if not m:
        sys.exit(f"label.py: {name}: haproxy log line {number} not understood: {line!r}")
    g = m.groups()
    logged = g[5]
    naive = datetime.datetime.strptime(logged, "%d/%b/%Y:%H:%M:%S.%f")
    entry = {"line": number, "syslog_header": g[0] is not None, "pid": int(g[2]) if g[2] else None,
             "client": f"{g[3]}:{g[4]}", "time": logged, "time_utc": naive_to_utc(naive),
             "frontend": g[6], "backend": g[7], "server": g[8], "timers": [int(x) for x in g[9:14]],
             "status": int(g[14]), "bytes": int(g[15]), "termination_state": g[18],
             "retries": g[23], "backend_source": f"{g[26]}:{g[27]}" if g[26] else None}
    target = request_target(g[28])
    if target not in requests:
        sys.exit(f"label.py: {name}: haproxy log line {number}: no client request {target} in the capture")
    requests[target]["haproxy_log"] = entry

# --- Failures: the requests a log reports as failed (an error-log line, a 5xx, an upstream
# attempt with a 5xx, or a HAProxy termination state other than ----), with their 4-tuples.
failures = []
for r in sorted(requests.values(), key=lambda r: r["_time"]):
    words, logs = [], []
    for e in r.get("nginx_error_log", []):
        if e["level"] in ("error", "crit", "alert", "emerg", "warn"):
            words.append(e["message"]); logs.append(f"{error_file}:{e['line']}")
    a = r.get("nginx_access_log")
    if a and (a["status"] >= 500 or any(s.startswith("5") for s in a["upstream_status"])):
        logs.append(f"{access_file}:{a['line']}")
    h = r.get("haproxy_log")
    if h and (h["status"] >= 500 or h["termination_state"] != "----"):
        words.append(h["termination_state"]); logs.append(f"{haproxy_file}:{h['line']}")
    if not logs:
        continue
    tuples = [{"gateway": c["gateway"], "upstream": c["upstream"]} for c in r["upstream_connections"]]
    if h and h["backend_source"]:
        source = "HAProxy %bi:%bp, found in the capture" if any(
            t["gateway"] == h["backend_source"] for t in tuples) else "HAProxy %bi:%bp (not in the capture)"
    elif any(c["request_sent"] for c in r["upstream_connections"]):
        source = "capture: the connection that carried the request (X-Request-Id = $request_id)"
    elif tuples:
        source = "capture: connections opened after the client request, none carried it"
    else:
        source = "none: no packet to an upstream for this request"
    failures.append({"target": r["target"], "logged_in": logs, "gateway_words": words,
                     "status": (a or h or {}).get("status"), "upstream_tuples": tuples, "tuple_source": source})

for r in requests.values():
    del r["_time"]
instant = datetime.datetime.now(zone)
label = {
    "scenario": name,
    "expected_cause": lab["expected_cause"],
    "gateway": lab["gateway"],
    "gateway_time_zone": tz_name,
    "utc_offset_seconds": int(instant.utcoffset().total_seconds()),
    "client_statuses": lab["client"]["statuses"],
    "files": {"capture": f"{name}.any.pcap", "nginx_error_log": error_file, "nginx_access_log": access_file,
              "haproxy_log": haproxy_file},
    "requests": sorted(requests.values(), key=lambda r: r["client_request_time"]),
    "other_error_log_lines": other_error_lines,
    "failures": failures,
    "command": f"sudo bash Captures/lab/gateway-logs/record.sh {name}",
}
with open(f"{out}/{name}.json", "w") as f:
    json.dump(label, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"gateway-logs: {name}: {len(requests)} requests, {len(failures)} failures, "
      f"{len(error_lines)} error / {len(access_lines)} access / {len(haproxy_lines)} haproxy lines")
