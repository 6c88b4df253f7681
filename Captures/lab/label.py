#!/usr/bin/env python3
"""Writes a scenario's label: what the client saw and what nginx logged (the ground truth).
Usage: label.py NAME PORT CAUSE LOG_DIR OUT_DIR STATUS..."""
import collections, json, re, subprocess, sys
name, port, cause, logs, out = sys.argv[1:6]
statuses = sys.argv[6:]

def lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f]
    except FileNotFoundError:
        return []

# Drop timestamps and PIDs so labels stay comparable between runs.
if name.startswith("haproxy-"):
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
    "command": f"sudo bash Captures/lab/lab.sh {name}",
}
with open(f"{out}/{name}.json", "w") as f:
    json.dump(label, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"lab: {name}: client statuses {label['client']['statuses']}, {len(errors)} error-log lines")
