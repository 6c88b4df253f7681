#!/usr/bin/env python3
"""Compare capdiag's HTTP exchanges with tshark's HTTP dissector, per TCP connection:
number of requests, number of responses, and the status codes (interim 1xx included).
Usage: scripts/tshark-http-compare.py CAPDIAG_BINARY FILE...
"""
import json, subprocess, sys
from collections import defaultdict

def tshark(path):
    out = subprocess.run(["tshark", "-n", "-r", path, "-Y", "http", "-T", "fields", "-E", "separator=\t",
                          "-e", "tcp.stream", "-e", "frame.number", "-e", "http.request.method", "-e", "http.response.code",
                          "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"],
                         capture_output=True, text=True).stdout
    streams = defaultdict(lambda: {"req": 0, "codes": []})
    for line in out.splitlines():
        f = line.split("\t")
        if "," in f[4] + f[5]: continue
        key = tuple(sorted([((f[4] or f[5]).removeprefix("::ffff:"), f[6]), ((f[7] or f[8]).removeprefix("::ffff:"), f[9])]))
        s = streams[key]
        s["req"] += len([m for m in f[2].split(",") if m])
        s["codes"] += [int(c) for c in f[3].split(",") if c]
    return {k: (v["req"], sorted(v["codes"])) for k, v in streams.items()}

def capdiag(binary, path):
    out = subprocess.run([binary, "-q", "-T", "jsonl", "--idle-timeout", "1000000", "-r", path], capture_output=True, text=True).stdout
    streams = defaultdict(lambda: [0, []])
    for line in out.splitlines():
        r = json.loads(line)
        if r.get("type") != "flow" or not r.get("http"): continue
        o, p = r["originator"], r["responder"]
        key = tuple(sorted([(o["address"], str(o["port"])), (p["address"], str(p["port"]))]))
        for e in r["http"]["exchanges"]:
            streams[key][0] += e.get("method") is not None
            streams[key][1] += e.get("interim_statuses", []) + ([e["status"]] if e.get("status") is not None else [])
    return {k: (v[0], sorted(v[1])) for k, v in streams.items() if v[0] or v[1]}

bad = 0
for path in sys.argv[2:]:
    t, c = tshark(path), capdiag(sys.argv[1], path)
    if t == c:
        print(f"OK   {sum(v[0] for v in t.values()):3d} req {path}"); continue
    bad += 1
    print(f"DIFF {path}")
    for k in sorted(set(t) | set(c)):
        if t.get(k) != c.get(k): print(f"     {k}: tshark {t.get(k)} capdiag {c.get(k)}")
sys.exit(1 if bad else 0)
