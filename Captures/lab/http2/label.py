"""Writes the label of one HTTP/2 lab scenario (record.sh) as JSON on stdout: the expected cause,
what the client saw, the gateway's log lines, and tshark's reading of each leg (requests, statuses,
grpc-status values, RST_STREAM and GOAWAY frames, and the upstream streams that failed with their
TCP 4-tuple). tshark decodes each leg as HTTP/2 (`-d tcp.port==PORT,http2`); its counts are what
the Swift tests compare HTTP2Connection with.
"""
import argparse
import json
import re
import subprocess

ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
          "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
          "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]


def aslist(x):
    return x if isinstance(x, list) else ([] if x is None else [x])


def error_name(code):
    code = int(code, 0)
    return ERRORS[code] if code < len(ERRORS) else hex(code)


def leg(pcap, port, decode="http2"):
    out = subprocess.run(
        ["tshark", "-r", pcap, "-d", "tcp.port==%d,%s" % (port, decode), "-Y", "tcp.port==%d" % port,
         "-T", "json", "--no-duplicate-keys"],
        check=True, capture_output=True, text=True).stdout
    packets = json.loads(out) if out.strip() else []
    result = {"port": port, "connections": [], "requests": 0, "statuses": {}, "grpc_statuses": {},
              "rst_streams": 0, "goaways": 0, "resets": [], "goaway_frames": [], "failed_streams": []}
    tuples = {}
    streams = {}
    for packet in packets:
        layers = packet["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        time = float(layers["frame"]["frame.time_epoch"])
        tcp = layers["tcp"]
        ip = layers["ip"]
        index = int(tcp["tcp.stream"])
        sport, dport = int(tcp["tcp.srcport"]), int(tcp["tcp.dstport"])
        from_client = dport == port
        if index not in tuples:
            client = (ip["ip.src"], sport) if from_client else (ip["ip.dst"], dport)
            server = (ip["ip.dst"], dport) if from_client else (ip["ip.src"], sport)
            tuples[index] = "%s:%d -> %s:%d" % (client + server)
            result["connections"].append({"tcp_stream": index, "tuple": tuples[index], "first_frame": frame})
        for h2 in aslist(layers.get("http2")):
            for st in aslist(h2.get("http2.stream")):
                kind = st.get("http2.type")
                if kind is None:
                    continue
                kind = int(kind)
                sid = int(st.get("http2.streamid", "0"))
                key = (index, sid)
                if sid and key not in streams:
                    streams[key] = {"tuple": tuples[index], "tcp_stream": index, "stream_id": sid, "first_frame": frame,
                                    "first_time": time, "method": None, "path": None, "status": None,
                                    "grpc_status": None, "reset": None, "client_end": False, "server_end": False}
                s = streams.get(key)
                flags = int(st.get("http2.flags", "0x0"), 16)
                if kind in (0, 1) and s and flags & 1:
                    s["client_end" if from_client else "server_end"] = True
                if kind == 3 and s:
                    result["rst_streams"] += 1
                    code = error_name(st.get("http2.rst_stream.error", "0"))
                    by = "client" if from_client else "server"
                    result["resets"].append({"tuple": tuples[index], "stream_id": sid, "error": code, "by": by, "frame": frame})
                    if s["reset"] is None:
                        s["reset"] = {"error": code, "by": by, "frame": frame}
                if kind == 7:
                    result["goaways"] += 1
                    result["goaway_frames"].append({
                        "tuple": tuples[index], "by": "client" if from_client else "server", "frame": frame,
                        "last_stream_id": int(st.get("http2.goaway.last_stream_id", "0")),
                        "error": error_name(st.get("http2.goaway.error", "0"))})
                for header in aslist(st.get("http2.header")):
                    name, value = header.get("http2.header.name"), header.get("http2.header.value", "")
                    if name == ":method" and from_client and kind == 1:
                        result["requests"] += 1
                        if s:
                            s["method"] = value
                    elif name == ":path" and s and from_client:
                        s["path"] = value
                    elif name == ":status" and not from_client:
                        result["statuses"][value] = result["statuses"].get(value, 0) + 1
                        if s and s["status"] is None:
                            s["status"] = int(value)
                    elif name == "grpc-status" and not from_client:
                        result["grpc_statuses"][value] = result["grpc_statuses"].get(value, 0) + 1
                        if s and s["grpc_status"] is None:
                            s["grpc_status"] = int(value)
    for s in sorted(streams.values(), key=lambda s: (s["tcp_stream"], s["stream_id"])):
        if s["method"] is None:
            continue
        problems = []
        if s["reset"] and not (s["reset"]["error"] == "NO_ERROR" and s["server_end"]):
            problems.append("RST_STREAM %s by %s" % (s["reset"]["error"], s["reset"]["by"]))
        if s["status"] is not None and s["status"] >= 500:
            problems.append("status %d" % s["status"])
        if s["grpc_status"] not in (None, 0):
            problems.append("grpc-status %d" % s["grpc_status"])
        if not s["server_end"] and not s["reset"]:
            problems.append("no end of response (connection closed with the stream open)")
        if problems:
            result["failed_streams"].append({"tuple": s["tuple"], "stream_id": s["stream_id"], "path": s["path"],
                                             "first_frame": s["first_frame"], "what": "; ".join(problems)})
    return result


NGINX_NOISE = re.compile(r"using the|start worker|signal \d+|exiting|exit$|gracefully shutting|worker process|"
                         r"getrlimit|start cache|built by|OS: |nginx/|reopening logs|cache manager")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pcap", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cause", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--gateway-log", default="")
    parser.add_argument("--client-port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--cause-if-clean", default="",
                        help="the cause to write instead when no call failed and no upstream stream failed")
    parser.add_argument("--client-decode", default="http2", help="http for a leg that starts in HTTP/1.1 (h2c upgrade)")
    args = parser.parse_args()
    client = json.load(open(args.client)) if args.client else {}
    failed_calls = [c for c in client.get("calls", []) if c["status"] != "OK"]
    log = []
    if args.gateway_log:
        for line in open(args.gateway_log, errors="replace"):
            line = line.rstrip("\n")
            if line and not NGINX_NOISE.search(line) and not line.startswith("[NOTICE]") and not line.startswith("[WARNING]  (") \
                    and "Proxy " not in line:
                log.append(line)
    legs = {}
    if args.client_port:
        legs["client"] = leg(args.pcap, args.client_port, args.client_decode)
    legs["upstream"] = leg(args.pcap, args.upstream_port)
    lost = subprocess.run(["tshark", "-r", args.pcap, "-Y", "tcp.analysis.lost_segment or tcp.analysis.ack_lost_segment",
                           "-T", "fields", "-e", "frame.number"], capture_output=True, text=True).stdout.split()
    cause = args.cause
    if args.cause_if_clean and not failed_calls and not legs["upstream"]["failed_streams"]:
        cause = args.cause_if_clean
    label = {
        "capture_loss_frames": [int(f) for f in lost],
        "name": args.name,
        "pcap": args.name + ".pcap",
        "note": args.note,
        "expected_cause": cause,
        "cause_if_failures": args.cause,
        "client_outcome": {"counts": client.get("counts", {}), "failed_calls": failed_calls},
        "gateway_log": log,
        "failed_upstream_streams": legs["upstream"]["failed_streams"],
        "tshark": {name: {k: v for k, v in l.items() if k != "failed_streams"} for name, l in legs.items()},
    }
    print(json.dumps(label, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
