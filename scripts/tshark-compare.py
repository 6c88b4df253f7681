#!/usr/bin/env python3
"""Compare capdiag's TCP flows with tshark's tcp.stream on captures.

For each capture: number of TCP connections, and per connection (4-tuple + first frame)
the SYN, FIN and RST packet counts. Prints one line per capture: OK or the differences.
Usage: scripts/tshark-compare.py CAPDIAG_BINARY FILE...
"""
import json, subprocess, sys
from collections import defaultdict

def tshark_flows(path):
    out = subprocess.run(
        ["tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-E", "separator=\t",
         "-e", "frame.number", "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
         "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
         "-e", "tcp.flags.syn", "-e", "tcp.flags.fin", "-e", "tcp.flags.reset"],
        capture_output=True, text=True).stdout
    streams = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 11 or not f[1]:
            continue
        if "," in f[2] + f[3]:
            continue  # tunnelled (GTP, VXLAN, ...): capdiag does not decode tunnels yet
        # Tunnelled packets carry several addresses; the innermost (last) is the TCP one.
        src = (f[2] or f[3]).split(",")[-1]; dst = (f[5] or f[6]).split(",")[-1]
        # capdiag holds IPv4 as IPv4-mapped IPv6 and prints both as dotted quads.
        src = src.removeprefix("::ffff:"); dst = dst.removeprefix("::ffff:")
        key = tuple(sorted([(src, int(f[4].split(",")[-1])), (dst, int(f[7].split(",")[-1]))]))
        s = streams.setdefault(int(f[1].split(",")[-1]), {"key": key, "first": int(f[0]), "syn": 0, "fin": 0, "rst": 0})
        s["syn"] += f[8].split(",")[-1] in ("1", "True")
        s["fin"] += f[9].split(",")[-1] in ("1", "True")
        s["rst"] += f[10].split(",")[-1] in ("1", "True")
    return {(s["key"], s["first"]): (s["syn"], s["fin"], s["rst"]) for s in streams.values()}

def capdiag_flows(binary, path):
    out = subprocess.run([binary, "-q", "-T", "jsonl", "--idle-timeout", "1000000", "-r", path], capture_output=True, text=True).stdout
    flows = {}
    for line in out.splitlines():
        r = json.loads(line)
        if r.get("type") != "flow":
            continue
        o, p = r["originator"], r["responder"]
        key = tuple(sorted([(o["address"], o["port"]), (p["address"], p["port"])]))
        flows[(key, r["first_frame"])] = (r["orig"]["syn"] + r["resp"]["syn"], r["orig"]["fin"] + r["resp"]["fin"],
                                          r["orig"]["rst"] + r["resp"]["rst"])
    return flows

bad = 0
for path in sys.argv[2:]:
    t = tshark_flows(path); c = capdiag_flows(sys.argv[1], path)
    if t == c:
        print(f"OK   {len(t):4d} flows  {path}")
        continue
    bad += 1
    print(f"DIFF tshark {len(t)} capdiag {len(c)}  {path}")
    for k in sorted(set(t) | set(c), key=lambda k: k[1]):
        if t.get(k) != c.get(k):
            print(f"     {k}: tshark {t.get(k)} capdiag {c.get(k)}")
sys.exit(1 if bad else 0)
