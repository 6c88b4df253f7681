#!/usr/bin/env python3
"""Writes a scenario's label: what the client saw and what nginx logged (the ground truth).
Usage: label.py NAME PORT CAUSE LOG_DIR OUT_DIR STATUS...

Optional environment: CAPDIAG_LAB_GATEWAY=tinyproxy reads tinyproxy's log instead of nginx's;
CAPDIAG_LAB_EXTRA names JSON objects (paths separated by ':') whose keys are added to the label
(what a scripted client did per connection, the snap length); CAPDIAG_LAB_COMMAND replaces the
command that records the scenario."""
import collections, json, os, re, subprocess, sys
name, port, cause, logs, out = sys.argv[1:6]
statuses = sys.argv[6:]

def lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f]
    except FileNotFoundError:
        return []

# Drop timestamps and PIDs so labels stay comparable between runs.
gateway = os.environ.get("CAPDIAG_LAB_GATEWAY", "")
if gateway == "tinyproxy":
    # tinyproxy logs everything to one file: "LEVEL  Mon DD HH:MM:SS.mmm [PID]: message".
    # Its access lines are the "Request (file descriptor N): METHOD TARGET VERSION" ones.
    entries = [re.sub(r"^(\w+)\s+\w{3} +\d+ [\d:.]+ \[\d+\]: ", r"[\1] ", l) for l in lines(f"{logs}/tinyproxy.log")]
    entries = [re.sub(r"file descriptor \d+|fd:\d+", "fd", l) for l in entries]
    errors = [l for l in entries if l.startswith(("[ERROR]", "[WARNING]", "[CRITICAL]"))]
    access = [l for l in entries if "Request (fd): " in l]
    # What it logged while serving (its start-up lines dropped).
    start = next((i + 1 for i, l in enumerate(entries) if "Starting main loop" in l), 0)
    entries = entries[start:]
    version = "tinyproxy/" + subprocess.run(["tinyproxy", "-v"], capture_output=True, text=True).stdout.split()[-1]
elif name.startswith("haproxy-"):
    # HAProxy has no error log: its access line carries the termination state (%tsc).
    errors = []
    access = [re.sub(r"^\S+ \[[^]]*\] ", "", l) for l in lines(f"{logs}/haproxy.log") if f" fe-{name} " in l]
    version = "HAProxy/" + subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split()[2]
else:
    errors = [re.sub(r"^\S+ \S+ \[(\w+)\] \d+#\d+: \*\d+ ", r"[\1] ", l) for l in lines(f"{logs}/{name}.error.log")]
    errors = [re.sub(r", client: .*$", "", l) for l in errors if "closed keepalive connection" not in l]
    access = lines(f"{logs}/{name}.access.log")
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().replace("nginx version: ", "")
label = {
    "scenario": name,
    "expected_cause": cause,
    "gateway": version,
    "gateway_listen": f"10.77.1.1:{port}",
    "client": {"requests": len(statuses), "statuses": dict(collections.Counter(statuses))},
    "gateway_error_log": errors,
    "gateway_access_log": access,
    "captures": {"both_legs": f"{name}.any.pcap", "upstream_leg": f"{name}.upstream.pcap"},
    "command": os.environ.get("CAPDIAG_LAB_COMMAND") or f"sudo bash Captures/lab/lab.sh {name}",
}
if gateway == "tinyproxy":
    label["gateway_log"] = entries
for extra in filter(None, os.environ.get("CAPDIAG_LAB_EXTRA", "").split(":")):
    with open(extra) as f:
        label.update(json.load(f))
with open(f"{out}/{name}.json", "w") as f:
    json.dump(label, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"lab: {name}: client statuses {label['client']['statuses']}, {len(errors)} error-log lines")
