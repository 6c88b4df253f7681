#!/usr/bin/env python3
"""Whole-CLI mutation fuzzer for capdiag.

Takes real captures as seeds, mutates them (byte-level and pcap/pcapng-aware:
record headers, IPv4/IPv6/TCP/UDP headers, payloads, packet order, splices),
and runs the capdiag binary on every mutant in several output modes:

    capdiag -q -r M                      (text)
    capdiag -q -T json  -r M             (stdout must be one strict JSON document)
    capdiag -q -T jsonl -r M             (every line must be strict JSON)
    capdiag -q -r M --report R.html                  (a fraction of mutants)
    capdiag -q -r M --report R.md --export DIR       (a fraction of mutants)

A run is a failure when it
    crash      dies by a signal or exits with status >= 128 (Swift traps,
               segfaults, aborts),
    timeout    does not finish within --timeout seconds (hang),
    bad-json   exits 0 with -T json but stdout is not one strict JSON document
               (NaN/Infinity, invalid UTF-8, truncated, empty ...),
    bad-jsonl  with -T jsonl prints a line that is not strict JSON,
    exit-N     exits with a status other than 0 (analysis ran) or 2 (input
               error); capdiag is never given --fail-on here, so 1 and other
               statuses below 128 are unexpected.

Every failing mutant is copied to --out with a .txt next to it holding the
command, exit status, seed file, the mutations applied and the stderr tail.
Failures are grouped by a signature (kind + Swift "Fatal error" message +
first source location in stderr); at most --keep-per-signature mutants are
kept per signature, all are counted. A JSON summary is written to
--out/summary-seed<S>.json.

Mutant number i of a run with --seed S is a pure function of (S, i, seed
list), so a failure can be regenerated with --regenerate i (writes the mutant
to --out and exits).

Usage:
    python3 scripts/fuzz-cli.py --binary PATH --seconds N [--seed S] [--out DIR]
        [--timeout 10] [--jobs N] [--max-seeds 300] [--report-fraction 0.15]
        [--max-ops 8] [--regenerate I] [--replay FILE]

Exit status: 0 no failure, 1 at least one failure, 64 bad usage.
Python 3 standard library only.
"""

import argparse
import glob
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, FIRST_COMPLETED, wait

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL_SEED_DIRS = [
    os.path.join(REPO, "Captures"),
    os.path.join(REPO, "Captures", "lab"),
    os.path.join(REPO, "Captures", "lab", "topology"),
]
# The public corpus: $CAPDIAG_PUBLIC_CAPTURES, or ../shared/captures/public beside the repository.
PUBLIC_SEED_ROOT = os.environ.get("CAPDIAG_PUBLIC_CAPTURES") or os.path.join(os.path.dirname(REPO), "shared", "captures", "public")
MAX_MUTANT_SIZE = 8 * 1024 * 1024

# --------------------------------------------------------------------------
# Seeds


def is_capture_name(name):
    return name.endswith(".pcap") or name.endswith(".pcapng")


def collect_seeds(max_seeds, seed):
    local = []
    for d in LOCAL_SEED_DIRS:
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                p = os.path.join(d, n)
                if is_capture_name(n) and os.path.isfile(p):
                    local.append(p)
    public = []
    if os.path.isdir(PUBLIC_SEED_ROOT):
        public = sorted(p for p in glob.glob(os.path.join(PUBLIC_SEED_ROOT, "**", "*.pcap*"), recursive=True)
                        if os.path.isfile(p))
    rng = random.Random("seeds:%d" % seed)
    local = sorted(set(local))
    if len(local) >= max_seeds:
        chosen = rng.sample(local, max_seeds)
    else:
        rest = max_seeds - len(local)
        chosen = local + (rng.sample(public, rest) if len(public) > rest else public)
    chosen.sort()
    seeds = []
    for p in chosen:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if 0 < len(data) <= MAX_MUTANT_SIZE:
            seeds.append((p, data))
    return seeds


# --------------------------------------------------------------------------
# pcap / pcapng model


class Pkt:
    """One packet record. incl=None means 'the real length of data'."""
    __slots__ = ("kind", "ts_sec", "ts_frac", "ts64", "iface", "incl", "orig", "data",
                 "opts", "blen", "linktype", "btype")

    def __init__(self, kind, data, linktype):
        self.kind = kind          # 'rec' (classic), 'epb', 'spb', 'opb'
        self.data = bytearray(data)
        self.linktype = linktype
        self.ts_sec = 0
        self.ts_frac = 0
        self.ts64 = 0
        self.iface = 0
        self.incl = None
        self.orig = len(data)
        self.opts = b""
        self.blen = None          # pcapng: override of the trailing total length
        self.btype = 6

    def copy(self):
        c = Pkt(self.kind, self.data, self.linktype)
        for s in Pkt.__slots__:
            if s != "data":
                setattr(c, s, getattr(self, s))
        return c


class Capture:
    def __init__(self, fmt, endian):
        self.fmt = fmt            # 'pcap' or 'pcapng'
        self.endian = endian      # '<' or '>'
        self.items = []           # bytearray (global header / other blocks) or Pkt
        self.trailer = b""
        self.nsec = False

    def packets(self):
        return [i for i, it in enumerate(self.items) if isinstance(it, Pkt)]

    def serialize(self):
        e = self.endian
        out = bytearray()
        if self.fmt == "pcap":
            for it in self.items:
                if isinstance(it, Pkt):
                    incl = len(it.data) if it.incl is None else it.incl
                    out += struct.pack(e + "IIII", it.ts_sec & 0xFFFFFFFF, it.ts_frac & 0xFFFFFFFF,
                                       incl & 0xFFFFFFFF, it.orig & 0xFFFFFFFF)
                    out += it.data
                else:
                    out += it
        else:
            for it in self.items:
                if not isinstance(it, Pkt):
                    out += it
                    continue
                pad = b"\0" * ((4 - len(it.data) % 4) % 4)
                incl = len(it.data) if it.incl is None else it.incl
                if it.kind == "epb":
                    body = struct.pack(e + "IIIII", it.iface & 0xFFFFFFFF, (it.ts64 >> 32) & 0xFFFFFFFF,
                                       it.ts64 & 0xFFFFFFFF, incl & 0xFFFFFFFF, it.orig & 0xFFFFFFFF)
                    body += it.data + pad + it.opts
                elif it.kind == "opb":
                    body = struct.pack(e + "HHIIII", it.iface & 0xFFFF, 0, (it.ts64 >> 32) & 0xFFFFFFFF,
                                       it.ts64 & 0xFFFFFFFF, incl & 0xFFFFFFFF, it.orig & 0xFFFFFFFF)
                    body += it.data + pad + it.opts
                else:  # spb
                    body = struct.pack(e + "I", it.orig & 0xFFFFFFFF) + it.data + pad
                total = 12 + len(body)
                out += struct.pack(e + "II", it.btype, total) + body
                out += struct.pack(e + "I", (total if it.blen is None else it.blen) & 0xFFFFFFFF)
        out += self.trailer
        return out


def parse_capture(data):
    if len(data) < 24:
        return None
    magic = bytes(data[:4])
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return _parse_pcap(data, "<", magic == b"\x4d\x3c\xb2\xa1")
    if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return _parse_pcap(data, ">", magic == b"\xa1\xb2\x3c\x4d")
    if magic == b"\x0a\x0d\x0d\x0a":
        return _parse_pcapng(data)
    return None


def _parse_pcap(data, e, nsec):
    cap = Capture("pcap", e)
    cap.nsec = nsec
    cap.items.append(bytearray(data[:24]))
    linktype = struct.unpack_from(e + "I", data, 20)[0] & 0xFFFF
    off = 24
    n = len(data)
    while off + 16 <= n:
        ts_sec, ts_frac, incl, orig = struct.unpack_from(e + "IIII", data, off)
        if off + 16 + incl > n:
            break
        p = Pkt("rec", data[off + 16: off + 16 + incl], linktype)
        p.ts_sec, p.ts_frac, p.orig = ts_sec, ts_frac, orig
        cap.items.append(p)
        off += 16 + incl
    cap.trailer = bytes(data[off:])
    return cap


def _parse_pcapng(data):
    n = len(data)
    off = 0
    e = "<"
    ifaces = []
    cap = None
    while off + 12 <= n:
        if bytes(data[off:off + 4]) == b"\x0a\x0d\x0d\x0a":
            bom = bytes(data[off + 8:off + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                e = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                e = ">"
            else:
                break
            ifaces = []
        if cap is None:
            cap = Capture("pcapng", e)
        btype, blen = struct.unpack_from(e + "II", data, off)
        if blen < 12 or blen % 4 or off + blen > n:
            break
        body = data[off + 8: off + blen - 4]
        lt = None
        if btype == 1 and len(body) >= 8:
            ifaces.append(struct.unpack_from(e + "H", body, 0)[0])
        if btype == 6 and len(body) >= 20:
            iface, hi, lo, incl, orig = struct.unpack_from(e + "IIIII", body, 0)
            if 20 + incl <= len(body):
                lt = ifaces[iface] if iface < len(ifaces) else -1
                p = Pkt("epb", body[20:20 + incl], lt)
                p.iface, p.ts64, p.orig = iface, (hi << 32) | lo, orig
                p.opts = bytes(body[20 + ((incl + 3) & ~3):])
                p.btype = 6
                cap.items.append(p)
        elif btype == 3 and len(body) >= 4 and ifaces:
            orig = struct.unpack_from(e + "I", body, 0)[0]
            incl = min(orig, len(body) - 4)
            p = Pkt("spb", body[4:4 + incl], ifaces[0])
            p.orig = orig
            p.btype = 3
            cap.items.append(p)
            lt = ifaces[0]
        elif btype == 2 and len(body) >= 20:
            iface, drops, hi, lo, incl, orig = struct.unpack_from(e + "HHIIII", body, 0)
            if 20 + incl <= len(body):
                lt = ifaces[iface] if iface < len(ifaces) else -1
                p = Pkt("opb", body[20:20 + incl], lt)
                p.iface, p.ts64, p.orig = iface, (hi << 32) | lo, orig
                p.opts = bytes(body[20 + ((incl + 3) & ~3):])
                p.btype = 2
                cap.items.append(p)
        if lt is None:
            cap.items.append(bytearray(data[off:off + blen]))
        off += blen
    if cap is None:
        return None
    cap.trailer = bytes(data[off:])
    return cap


# --------------------------------------------------------------------------
# Locating network and transport headers inside a packet


def l3_offset(pkt):
    """(offset, version) of the IP header in pkt.data, or None."""
    d = pkt.data
    lt = pkt.linktype if pkt.linktype is not None else -1
    lt &= 0xFFFF if lt >= 0 else -1
    off = None
    if lt == 1:  # Ethernet
        if len(d) < 14:
            return None
        et = struct.unpack_from(">H", d, 12)[0]
        off = 14
        while et in (0x8100, 0x88A8, 0x9100) and len(d) >= off + 4:
            et = struct.unpack_from(">H", d, off + 2)[0]
            off += 4
        if et not in (0x0800, 0x86DD):
            return None
    elif lt in (0, 108):  # BSD null / loop
        off = 4
    elif lt in (101, 12, 14, 228, 229):  # raw IP
        off = 0
    elif lt == 113:  # Linux cooked v1
        if len(d) < 16 or struct.unpack_from(">H", d, 14)[0] not in (0x0800, 0x86DD):
            return None
        off = 16
    elif lt == 276:  # Linux cooked v2
        if len(d) < 20 or struct.unpack_from(">H", d, 0)[0] not in (0x0800, 0x86DD):
            return None
        off = 20
    else:
        return None
    if len(d) < off + 20:
        return None
    v = d[off] >> 4
    if v == 4:
        return off, 4
    if v == 6 and len(d) >= off + 40:
        return off, 6
    return None


def l4_info(pkt):
    """(ip_off, version, proto, l4_off) or None."""
    r = l3_offset(pkt)
    if r is None:
        return None
    off, v = r
    d = pkt.data
    if v == 4:
        ihl = (d[off] & 0x0F) * 4
        if ihl < 20:
            return off, v, d[off + 9], None
        return off, v, d[off + 9], off + ihl
    return off, v, d[off + 6], off + 40


def tcp_packets(cap):
    res = []
    for i in cap.packets():
        info = l4_info(cap.items[i])
        if info and info[2] == 6 and info[3] is not None and len(cap.items[i].data) >= info[3] + 20:
            res.append((i, info))
    return res


def udp_packets(cap):
    res = []
    for i in cap.packets():
        info = l4_info(cap.items[i])
        if info and info[2] == 17 and info[3] is not None and len(cap.items[i].data) >= info[3] + 8:
            res.append((i, info))
    return res


def tcp_payload_off(pkt, l4):
    doff = (pkt.data[l4 + 12] >> 4) * 4
    return l4 + max(doff, 20)


# --------------------------------------------------------------------------
# Mutation helpers

INTERESTING8 = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x40, 0xFE]
INTERESTING16 = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, 1500, 9000]
INTERESTING32 = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x40000, 0x40001, 0x7FFFFFFF,
                 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1000000, 999999999, 1000000000]

DICTIONARY = [
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 502 Bad Gateway\r\n", b"HTTP/1.0 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", b"HTTP/1.1 99999999999999999999 X\r\n",
    b"HTTP/1.1 20", b"HTTP/9.9 -1 \r\n", b"GET / HTTP/1.1\r\n", b"POST /a?token=x HTTP/1.1\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\n", b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"Host: \xff\xfe\xfd\r\n", b"Content-Length: 18446744073709551616\r\n", b"Content-Length: -1\r\n",
    b"Content-Length: 9223372036854775807\r\n", b"Content-Length: 1\r\nContent-Length: 2\r\n",
    b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffffff\r\n", b"7fffffffffffffff\r\n", b"0\r\n\r\n",
    b"\r\n\r\n", b"\r\n", b"\n\n", b"Connection: close\r\n", b"Connection: keep-alive\r\n",
    b"Upgrade: h2c\r\nHTTP2-Settings: AAAA\r\n", b"Authorization: Basic \r\n", b"Cookie: a=\xff\r\n",
    b"Location: http://\xff\x00/\r\n", b": \r\n", b"X" * 300, b"A: " + b"B" * 5000 + b"\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\x00\xff\xff\x01\x05\x00\x00\x00\x01",
    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", b"\x00\x00\x08\x07\x00\x00\x00\x00\x00\x7f\xff\xff\xff\x00\x00\x00\x02",
    b"\x00\x00\x04\x03\x00\x80\x00\x00\x01\x00\x00\x00\x08",
    b"\x16\x03\x01\xff\xff\x01\xff\xff\xfc\x03\x03", b"\x16\x03\x03\x00\x04\x02\x00\x00\x00",
    b"\x15\x03\x03\x00\x02\x02\x30", b"\x15\x03\x03\x00\x00", b"\x17\x03\x03\x40\x01",
    b"\x14\x03\x03\x00\x01\x01", b"\x16\x03\x01\x00\x00",
    b"\xc0\x0c", b"\xc0\x00", b"\x3f" + b"a" * 63, b"\x00\x00\x81\x80\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x00", b"\xff" * 16, b"\x00" * 16, b"%s%n%x", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\"\\\u0000",
]


def _rand_off(rng, n):
    return rng.randrange(n) if n > 0 else 0


def put_int(rng, d, off, size, val):
    if off < 0 or off + size > len(d):
        return
    e = rng.choice("<>")
    fmt = {1: "B", 2: "H", 4: "I"}[size]
    struct.pack_into(e + fmt, d, off, val & ((1 << (8 * size)) - 1))


def rand_interesting(rng, size):
    if size == 1:
        return rng.choice(INTERESTING8)
    if size == 2:
        return rng.choice(INTERESTING16)
    return rng.choice(INTERESTING32)


# ----- byte-level operators (work on any bytes) ------------------------------


def m_bitflip(rng, d, ctx):
    if not d:
        return d
    for _ in range(rng.choice([1, 1, 2, 4, 8, 16])):
        i = _rand_off(rng, len(d))
        d[i] ^= 1 << rng.randrange(8)
    return d


def m_randbytes(rng, d, ctx):
    if not d:
        return d
    for _ in range(rng.choice([1, 1, 2, 4, 8])):
        d[_rand_off(rng, len(d))] = rng.randrange(256)
    return d


def m_interesting(rng, d, ctx):
    for _ in range(rng.choice([1, 1, 2, 3])):
        size = rng.choice([1, 2, 4])
        if len(d) < size:
            return d
        put_int(rng, d, rng.randrange(len(d) - size + 1), size, rand_interesting(rng, size))
    return d


def m_arith(rng, d, ctx):
    size = rng.choice([1, 2, 4])
    if len(d) < size:
        return d
    off = rng.randrange(len(d) - size + 1)
    e = rng.choice("<>")
    fmt = e + {1: "B", 2: "H", 4: "I"}[size]
    v = struct.unpack_from(fmt, d, off)[0]
    v = (v + rng.choice([-35, -16, -2, -1, 1, 2, 16, 35])) & ((1 << (8 * size)) - 1)
    struct.pack_into(fmt, d, off, v)
    return d


def m_truncate(rng, d, ctx):
    if len(d) < 2:
        return d
    r = rng.random()
    if r < 0.25:
        cut = rng.randrange(min(len(d), 64))           # inside the file header
    elif r < 0.5:
        cut = len(d) - rng.randrange(1, min(len(d), 64) + 1)  # near the end
    else:
        cut = rng.randrange(len(d))
    del d[cut:]
    return d


def m_dup_range(rng, d, ctx):
    if len(d) < 2:
        return d
    a = rng.randrange(len(d))
    ln = min(len(d) - a, rng.choice([1, 4, 16, 64, 256, 4096, 65536]))
    chunk = d[a:a + ln]
    b = a + ln if rng.random() < 0.5 else rng.randrange(len(d) + 1)
    d[b:b] = chunk * rng.choice([1, 1, 2, 8])
    return d


def m_del_range(rng, d, ctx):
    if len(d) < 2:
        return d
    a = rng.randrange(len(d))
    ln = min(len(d) - a, rng.choice([1, 2, 4, 16, 64, 256, 4096]))
    del d[a:a + ln]
    return d


def m_insert_bytes(rng, d, ctx):
    a = rng.randrange(len(d) + 1)
    if rng.random() < 0.5:
        chunk = rng.choice(DICTIONARY)
    else:
        chunk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 8, 32])))
    d[a:a] = chunk
    return d


def m_splice_bytes(rng, d, ctx):
    other = ctx["other"](rng)
    if not other or not d:
        return d
    a = rng.randrange(len(d) + 1)
    b = rng.randrange(len(other))
    return bytearray(d[:a]) + other[b:]


BYTE_OPS = [
    (m_bitflip, 4), (m_randbytes, 3), (m_interesting, 4), (m_arith, 2), (m_truncate, 2),
    (m_dup_range, 2), (m_del_range, 2), (m_insert_bytes, 2), (m_splice_bytes, 1),
]


# ----- pcap-aware operators (work on a parsed Capture, return it) -----------


def pick_pkt(rng, cap):
    idx = cap.packets()
    return rng.choice(idx) if idx else None


def c_record_header(rng, cap, ctx):
    i = pick_pkt(rng, cap)
    if i is None:
        return cap
    p = cap.items[i]
    idx = cap.packets()
    pos = idx.index(i)
    prev = cap.items[idx[pos - 1]] if pos > 0 else None
    what = rng.choice(["ts_back", "ts_back", "frac_back", "ts_interesting", "frac_invalid",
                       "caplen_gt_len", "caplen_gt_len", "huge_caplen", "huge_caplen",
                       "caplen_small", "orig_zero", "orig_huge", "empty", "blen"])
    if what == "ts_back":
        if p.kind == "rec":
            base = prev.ts_sec if prev is not None else p.ts_sec
            p.ts_sec = (base - rng.choice([1, 1, 2, 60, 3600, 86400 * 365, base])) & 0xFFFFFFFF
        else:
            base = prev.ts64 if prev is not None else p.ts64
            p.ts64 = max(0, base - rng.choice([1, 1000, 1000000, 10 ** 9, base]))
    elif what == "frac_back":
        if p.kind == "rec":
            if prev is not None:
                p.ts_sec = prev.ts_sec
                p.ts_frac = max(0, prev.ts_frac - rng.choice([1, 10, 1000, prev.ts_frac]))
            else:
                p.ts_frac = 0
        else:
            p.ts64 = max(0, p.ts64 - 1)
    elif what == "ts_interesting":
        if p.kind == "rec":
            p.ts_sec = rand_interesting(rng, 4)
        else:
            p.ts64 = rng.choice([0, 1, 0xFFFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 1 << 32, 0xFFFFFFFF])
    elif what == "frac_invalid":
        if p.kind == "rec":
            p.ts_frac = rng.choice([1000000, 999999999, 1000000000, 0xFFFFFFFF, 0x80000000])
        else:
            p.ts64 = rng.getrandbits(64)
    elif what == "caplen_gt_len":
        p.orig = max(0, len(p.data) - rng.choice([1, 1, 2, 20, len(p.data)]))
    elif what == "huge_caplen":
        p.incl = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x40001, 0x40000, 0x10000,
                             len(p.data) + 1, len(p.data) + 4, len(p.data) + 1000])
        if rng.random() < 0.5:
            p.orig = p.incl
    elif what == "caplen_small":
        p.incl = max(0, len(p.data) - rng.choice([1, 4, 16, len(p.data)]))
    elif what == "orig_zero":
        p.orig = 0
    elif what == "orig_huge":
        p.orig = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 0x40001])
    elif what == "empty":
        del p.data[rng.choice([0, 1, 4, 13, 14, 20, 34, 40, 54]):]
        if rng.random() < 0.5:
            p.orig = len(p.data)
    elif what == "blen":
        if p.kind != "rec":
            p.blen = rng.choice([0, 12, 0xFFFFFFFF, 12 + len(p.data) + 20 + 4])
        else:
            p.incl = len(p.data) + rng.choice([-1, 1])
    return cap


def c_file_header(rng, cap, ctx):
    if cap.fmt == "pcap":
        h = cap.items[0]
        e = cap.endian
        what = rng.choice(["snaplen", "snaplen", "linktype", "linktype", "version", "magic", "fcs"])
        if what == "snaplen":
            struct.pack_into(e + "I", h, 16, rng.choice([0, 1, 14, 54, 96, 65535, 0x40000, 0x40001,
                                                         0x7FFFFFFF, 0xFFFFFFFF]))
        elif what == "linktype":
            struct.pack_into(e + "I", h, 20, rng.choice([0, 1, 101, 108, 113, 228, 229, 276, 12, 14,
                                                         105, 127, 0xFFFF, 0x10000001]))
        elif what == "version":
            struct.pack_into(e + "HH", h, 4, rng.choice([2, 1, 0, 0xFFFF]), rng.choice([4, 3, 0, 0xFFFF]))
        elif what == "magic":
            h[0:4] = rng.choice([b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                                 b"\xa1\xb2\x3c\x4d", b"\x34\xcd\xb2\xa1"])
        else:
            struct.pack_into(e + "I", h, 20, (struct.unpack_from(e + "I", h, 20)[0] & 0xFFFF) | 0x30000000)
        return cap
    # pcapng: corrupt an IDB or SHB
    blocks = [i for i, it in enumerate(cap.items) if not isinstance(it, Pkt)]
    if not blocks:
        return cap
    b = cap.items[rng.choice(blocks)]
    e = cap.endian
    if len(b) < 12:
        return cap
    btype = struct.unpack_from(e + "I", b, 0)[0]
    if btype == 1 and len(b) >= 16:
        if rng.random() < 0.5:
            struct.pack_into(e + "H", b, 8, rng.choice([0, 1, 101, 113, 228, 229, 276, 0xFFFF]))
        else:
            struct.pack_into(e + "I", b, 12, rng.choice([0, 1, 14, 96, 0xFFFFFFFF]))
    elif btype == 0x0A0D0D0A and len(b) >= 24:
        what = rng.random()
        if what < 0.3:
            struct.pack_into(e + "HH", b, 12, rng.choice([1, 2, 0xFFFF]), rng.choice([0, 1, 0xFFFF]))
        elif what < 0.6:
            struct.pack_into(e + "q", b, 16, rng.choice([-1, 0, 1, 0x7FFFFFFFFFFFFFFF]))
        else:
            struct.pack_into(e + "I", b, 4, rng.choice([0, 12, 28, 0xFFFFFFFF]))
    else:
        # options area / block length
        if rng.random() < 0.5:
            struct.pack_into(e + "I", b, 4, rng.choice([0, 12, 0xFFFFFFFF, len(b) + 4]))
        else:
            o = rng.randrange(8, len(b))
            b[o] = rng.randrange(256)
    return cap


def c_ip_header(rng, cap, ctx):
    cands = []
    for i in cap.packets():
        r = l3_offset(cap.items[i])
        if r:
            cands.append((i, r))
    if not cands:
        return cap
    for _ in range(rng.choice([1, 1, 1, 2, 5])):
        i, (off, v) = rng.choice(cands)
        d = cap.items[i].data
        if v == 4:
            what = rng.choice(["totlen", "totlen", "ihl", "ihl", "version", "frag", "frag", "proto",
                               "ttl", "addr", "addr_swap", "csum", "tos", "id"])
            if what == "totlen":
                tl = struct.unpack_from(">H", d, off + 2)[0]
                struct.pack_into(">H", d, off + 2, rng.choice([0, 1, 19, 20, 39, 40, 0xFFFF, tl + 1, max(0, tl - 1),
                                                               tl + 1000, len(d) - off + 1]) & 0xFFFF)
            elif what == "ihl":
                d[off] = 0x40 | rng.choice([0, 1, 4, 5, 6, 15, rng.randrange(16)])
            elif what == "version":
                d[off] = (rng.choice([0, 6, 15, 5]) << 4) | (d[off] & 0x0F)
            elif what == "frag":
                struct.pack_into(">H", d, off + 6, rng.choice([0x2000, 0x2001, 0x0001, 0x1FFF, 0x3FFF, 0x4000,
                                                               0xFFFF, 0x8000]))
            elif what == "proto":
                d[off + 9] = rng.choice([6, 17, 1, 58, 41, 4, 47, 50, 0, 255, 132])
            elif what == "ttl":
                d[off + 8] = rng.choice([0, 1, 64, 255])
            elif what == "addr":
                a = off + rng.choice([12, 16])
                d[a:a + 4] = rng.choice([b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x7f\x00\x00\x01",
                                         bytes(rng.randrange(256) for _ in range(4))])
            elif what == "addr_swap":
                d[off + 12:off + 16], d[off + 16:off + 20] = d[off + 16:off + 20], d[off + 12:off + 16]
            elif what == "csum":
                struct.pack_into(">H", d, off + 10, rng.choice([0, 0xFFFF]))
            elif what == "tos":
                d[off + 1] = rng.randrange(256)
            else:
                struct.pack_into(">H", d, off + 4, rng.randrange(65536))
        else:
            what = rng.choice(["plen", "plen", "nh", "nh", "version", "addr", "flow", "hlim"])
            if what == "plen":
                pl = struct.unpack_from(">H", d, off + 4)[0]
                struct.pack_into(">H", d, off + 4, rng.choice([0, 1, 7, 8, 19, 20, 0xFFFF, pl + 1, max(0, pl - 1),
                                                               pl + 1000]) & 0xFFFF)
            elif what == "nh":
                d[off + 6] = rng.choice([0, 43, 44, 50, 51, 59, 60, 6, 17, 58, 135, 255])
            elif what == "version":
                d[off] = (rng.choice([4, 0, 15]) << 4) | (d[off] & 0x0F)
            elif what == "addr":
                a = off + rng.choice([8, 24])
                d[a:a + 16] = rng.choice([b"\0" * 16, b"\xff" * 16, b"\0" * 15 + b"\x01",
                                          b"\0" * 10 + b"\xff\xff\x7f\x00\x00\x01"])
            elif what == "flow":
                d[off + 1] = rng.randrange(256)
            else:
                d[off + 7] = rng.choice([0, 1, 255])
    return cap


TCP_FLAG_COMBOS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x10, 0x11, 0x12, 0x14, 0x18, 0x19, 0x1C, 0x20,
                   0x29, 0x3F, 0xFF, 0xC2, 0x05, 0x07]


def c_tcp_header(rng, cap, ctx):
    cands = tcp_packets(cap)
    if not cands:
        return cap
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        i, (ipoff, v, proto, l4) = rng.choice(cands)
        d = cap.items[i].data
        if len(d) < l4 + 20:
            continue
        what = rng.choice(["doff", "doff", "flags", "flags", "flags", "seq", "seq", "ack", "ack", "win",
                           "urg", "ports", "opts", "opts", "reserved"])
        if what == "doff":
            d[l4 + 12] = (rng.choice([0, 1, 4, 5, 6, 15, rng.randrange(16)]) << 4) | (d[l4 + 12] & 0x0F)
        elif what == "flags":
            d[l4 + 13] = rng.choice(TCP_FLAG_COMBOS) if rng.random() < 0.7 else d[l4 + 13] ^ (1 << rng.randrange(8))
        elif what in ("seq", "ack"):
            o = l4 + (4 if what == "seq" else 8)
            cur = struct.unpack_from(">I", d, o)[0]
            new = rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, cur + 1, cur - 1, cur + 0x80000000,
                              cur + rng.randrange(1, 65536), cur - rng.randrange(1, 65536), rng.getrandbits(32),
                              cur + 0xFFFFFFF0])
            struct.pack_into(">I", d, o, new & 0xFFFFFFFF)
            if what == "ack" and rng.random() < 0.3:
                d[l4 + 13] ^= 0x10
        elif what == "win":
            struct.pack_into(">H", d, l4 + 14, rng.choice([0, 1, 0xFFFF]))
        elif what == "urg":
            struct.pack_into(">H", d, l4 + 18, rng.choice([0, 1, 0xFFFF]))
            d[l4 + 13] |= 0x20
        elif what == "ports":
            o = l4 + rng.choice([0, 2])
            struct.pack_into(">H", d, o, rng.choice([0, 80, 443, 53, 8080, 8443, 3128, 1, 65535, 5353]))
        elif what == "reserved":
            d[l4 + 12] |= rng.choice([0x01, 0x0E, 0x0F])
        else:
            doff = (d[l4 + 12] >> 4) * 4
            end = min(len(d), l4 + doff)
            if end > l4 + 20:
                o = rng.randrange(l4 + 20, end)
                d[o] = rng.choice([0, 1, 2, 3, 4, 5, 8, 0xFF, 30, 34, 254, 40])
                if o + 1 < end and rng.random() < 0.7:
                    d[o + 1] = rng.choice([0, 1, 2, 3, 10, 40, 0xFF])
            else:
                # add options: grow the header, keep the payload after it
                opt = rng.choice([b"\x02\x04\x00\x00", b"\x03\x03\xff\x01", b"\x04\x02\x01\x01",
                                  b"\x05\x0a\x00\x00\x00\x00\xff\xff\xff\xff\x01\x01",
                                  b"\x08\x0a\xff\xff\xff\xff\x00\x00\x00\x00\x01\x01",
                                  b"\x05\x00\x01\x01", b"\x08\x01\x00\x00", b"\xff\xff\xff\xff"])
                d[l4 + 20:l4 + 20] = opt
                d[l4 + 12] = (((20 + len(opt)) // 4) << 4) | (d[l4 + 12] & 0x0F)
                fix_ip_len(d, ipoff, v, len(opt))
    return cap


def fix_ip_len(d, ipoff, v, delta):
    if v == 4:
        tl = struct.unpack_from(">H", d, ipoff + 2)[0]
        struct.pack_into(">H", d, ipoff + 2, (tl + delta) & 0xFFFF)
    else:
        pl = struct.unpack_from(">H", d, ipoff + 4)[0]
        struct.pack_into(">H", d, ipoff + 4, (pl + delta) & 0xFFFF)


def c_udp_header(rng, cap, ctx):
    cands = udp_packets(cap)
    if not cands:
        return cap
    i, (ipoff, v, proto, l4) = rng.choice(cands)
    d = cap.items[i].data
    what = rng.choice(["len", "len", "ports", "payload"])
    if what == "len":
        struct.pack_into(">H", d, l4 + 4, rng.choice([0, 1, 7, 8, 9, 0xFFFF, len(d) - l4 + 1]) & 0xFFFF)
    elif what == "ports":
        struct.pack_into(">H", d, l4 + rng.choice([0, 2]), rng.choice([53, 443, 5353, 0, 80, 67, 123]))
    else:
        p0 = l4 + 8
        if len(d) > p0:
            for _ in range(rng.choice([1, 2, 4, 8])):
                o = rng.randrange(p0, len(d))
                d[o] = rng.choice([0, 0xFF, 0xC0, 0x3F, 0x80, rng.randrange(256)])
    return cap


def c_payload(rng, cap, ctx):
    """Insert / overwrite dictionary tokens in TCP or UDP payloads, or cut payloads."""
    cands = tcp_packets(cap) + udp_packets(cap)
    if not cands:
        return cap
    # prefer packets that already carry payload
    with_payload = []
    for c in cands:
        i, (ipoff, v, proto, l4) = c
        p = cap.items[i]
        po = tcp_payload_off(p, l4) if proto == 6 else l4 + 8
        if len(p.data) > po:
            with_payload.append((c, po))
    if with_payload and rng.random() < 0.85:
        (i, (ipoff, v, proto, l4)), po = rng.choice(with_payload)
    else:
        i, (ipoff, v, proto, l4) = rng.choice(cands)
        p = cap.items[i]
        po = tcp_payload_off(p, l4) if proto == 6 else l4 + 8
    p = cap.items[i]
    d = p.data
    po = min(po, len(d))
    what = rng.choice(["insert", "insert", "overwrite", "overwrite", "cut", "flip"])
    tok = rng.choice(DICTIONARY)
    if what == "insert":
        o = rng.randrange(po, len(d) + 1) if rng.random() < 0.7 else po
        d[o:o] = tok
        if rng.random() < 0.8:
            fix_ip_len(d, ipoff, v, len(tok))
        p.orig += len(tok) if rng.random() < 0.8 else 0
    elif what == "overwrite":
        o = rng.randrange(po, len(d) + 1) if rng.random() < 0.7 else po
        d[o:o + len(tok)] = tok
    elif what == "cut":
        cut = rng.randrange(po, len(d) + 1) if len(d) > po else po
        del d[cut:]
        if rng.random() < 0.3:
            p.orig = len(d)
    else:
        if len(d) > po:
            for _ in range(rng.choice([1, 2, 8])):
                o = rng.randrange(po, len(d))
                d[o] ^= 1 << rng.randrange(8)
    return cap


def c_order(rng, cap, ctx):
    idx = cap.packets()
    if len(idx) < 1:
        return cap
    what = rng.choice(["swap", "swap", "swap", "move", "reverse", "shuffle", "dup", "dup", "delete", "delete"])
    if what == "swap" and len(idx) >= 2:
        a, b = rng.sample(idx, 2) if rng.random() < 0.5 else _adjacent(rng, idx)
        cap.items[a], cap.items[b] = cap.items[b], cap.items[a]
    elif what == "move" and len(idx) >= 2:
        a, b = rng.sample(idx, 2)
        p = cap.items[a]
        pkts = [cap.items[i] for i in idx]
        pkts.remove(p)
        pkts.insert(idx.index(b), p)
        for k, i in enumerate(idx):
            cap.items[i] = pkts[k]
    elif what in ("reverse", "shuffle") and len(idx) >= 2:
        a = rng.randrange(len(idx))
        b = min(len(idx), a + rng.choice([2, 3, 5, 10, 50, len(idx)]))
        window = [cap.items[i] for i in idx[a:b]]
        if what == "reverse":
            window.reverse()
        else:
            rng.shuffle(window)
        for k, i in enumerate(idx[a:b]):
            cap.items[i] = window[k]
    elif what == "dup":
        a = rng.choice(idx)
        copies = [cap.items[a].copy() for _ in range(rng.choice([1, 1, 2, 5, 50]))]
        # inconsistent retransmission: same seq, different bytes
        if rng.random() < 0.4:
            for c in copies:
                info = l4_info(c)
                if info and info[2] == 6 and info[3] is not None and len(c.data) > info[3] + 20:
                    po = tcp_payload_off(c, info[3])
                    if len(c.data) > po:
                        for _ in range(rng.choice([1, 4, 16])):
                            c.data[rng.randrange(po, len(c.data))] = rng.randrange(256)
                    if rng.random() < 0.5 and len(c.data) >= info[3] + 8:
                        seq = struct.unpack_from(">I", c.data, info[3] + 4)[0]
                        struct.pack_into(">I", c.data, info[3] + 4, (seq + rng.choice([-3, -1, 1, 2, 7])) & 0xFFFFFFFF)
        pos = a + 1 if rng.random() < 0.7 else rng.choice(idx)
        cap.items[pos:pos] = copies
    elif what == "delete":
        n = rng.choice([1, 1, 2, 5])
        for a in sorted(rng.sample(idx, min(n, len(idx))), reverse=True):
            del cap.items[a]
    return cap


def _adjacent(rng, idx):
    k = rng.randrange(len(idx) - 1)
    return idx[k], idx[k + 1]


def c_splice(rng, cap, ctx):
    """Packets of this capture up to k, then packets of another capture."""
    other_bytes = ctx["other"](rng)
    other = parse_capture(bytearray(other_bytes)) if other_bytes else None
    if other is None:
        return cap
    oidx = other.packets()
    if not oidx:
        return cap
    idx = cap.packets()
    k = rng.randrange(len(idx) + 1) if idx else 0
    j = rng.randrange(len(oidx))
    take = [other.items[i] for i in oidx[j:j + rng.choice([5, 50, 500, len(oidx)])]]
    lt = None
    if idx:
        lt = cap.items[idx[0]].linktype
    converted = []
    for p in take:
        q = Pkt(_pkt_kind_for(cap, p), p.data, p.linktype if lt is None else lt)
        q.orig = p.orig
        if cap.fmt == "pcap":
            if p.kind == "rec":
                q.ts_sec, q.ts_frac = p.ts_sec, p.ts_frac
            else:
                q.ts_sec, q.ts_frac = (p.ts64 // 1000000) & 0xFFFFFFFF, p.ts64 % 1000000
        else:
            q.ts64 = p.ts64 if p.kind != "rec" else p.ts_sec * 1000000 + p.ts_frac
            q.iface = cap.items[idx[0]].iface if idx else 0
        converted.append(q)
    if rng.random() < 0.5:
        # interleave after position k
        pos = idx[k] if k < len(idx) else len(cap.items)
        cap.items[pos:pos] = converted
    else:
        # replace the tail
        if k < len(idx):
            keep = set(idx[k:])
            cap.items = [it for n, it in enumerate(cap.items) if n not in keep]
        cap.items.extend(converted)
    return cap


def _pkt_kind_for(cap, p):
    if cap.fmt == "pcap":
        return "rec"
    return "epb"


def c_timestamps(rng, cap, ctx):
    """Global time games: all equal, strictly decreasing, big jumps."""
    idx = cap.packets()
    if len(idx) < 2:
        return cap
    what = rng.choice(["equal", "decreasing", "jump", "jump"])
    a = rng.randrange(len(idx))
    b = min(len(idx), a + rng.choice([2, 10, 100, len(idx)]))
    first = cap.items[idx[a]]
    for n, i in enumerate(idx[a:b]):
        p = cap.items[i]
        if what == "equal":
            p.ts_sec, p.ts_frac, p.ts64 = first.ts_sec, first.ts_frac, first.ts64
        elif what == "decreasing":
            if p.kind == "rec":
                p.ts_sec = (first.ts_sec - n) & 0xFFFFFFFF
            else:
                p.ts64 = max(0, first.ts64 - n * 1000000)
        else:
            jump = rng.choice([59, 61, 301, 3600, 86400, 0x7FFFFFFF])
            if p.kind == "rec":
                p.ts_sec = (p.ts_sec + jump) & 0xFFFFFFFF
            else:
                p.ts64 = (p.ts64 + jump * 1000000) & 0xFFFFFFFFFFFFFFFF
    return cap


CAP_OPS = [
    (c_record_header, 4), (c_file_header, 1), (c_ip_header, 4), (c_tcp_header, 6), (c_udp_header, 2),
    (c_payload, 5), (c_order, 4), (c_splice, 1), (c_timestamps, 2),
]


def weighted(rng, ops):
    total = sum(w for _, w in ops)
    r = rng.uniform(0, total)
    for op, w in ops:
        r -= w
        if r <= 0:
            return op
    return ops[-1][0]


def make_mutant(fuzz_seed, index, seeds):
    """Mutant number `index`: deterministic from (fuzz_seed, index, seeds)."""
    rng = random.Random("mutant:%d:%d" % (fuzz_seed, index))
    spath, sdata = seeds[rng.randrange(len(seeds))]

    def other(r):
        return seeds[r.randrange(len(seeds))][1]

    ctx = {"other": other}
    data = bytearray(sdata)
    nops = rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8])
    applied = []
    for _ in range(nops):
        if rng.random() < 0.65:
            cap = parse_capture(data)
            if cap is not None:
                op = weighted(rng, CAP_OPS)
                try:
                    cap = op(rng, cap, ctx)
                    data = cap.serialize()
                    applied.append(op.__name__)
                except (struct.error, IndexError, ValueError) as e:
                    applied.append("%s(skipped:%s)" % (op.__name__, type(e).__name__))
                continue
        op = weighted(rng, BYTE_OPS)
        data = op(rng, data, ctx)
        applied.append(op.__name__)
        if len(data) > MAX_MUTANT_SIZE:
            del data[MAX_MUTANT_SIZE:]
    return spath, bytes(data), applied, rng


# --------------------------------------------------------------------------
# Running capdiag

SWIFT_ENV = "enable=yes,interactive=no,color=no,threads=crashed,registers=none,images=none,sanitize=no"


def run_cmd(cmd, timeout):
    env = dict(os.environ)
    env.setdefault("SWIFT_BACKTRACE", SWIFT_ENV)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        timed_out = True
    return p.returncode, out, err, timed_out, time.monotonic() - t0


def _reject_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


def strict_json(b):
    s = b.decode("utf-8")  # strict: invalid UTF-8 is an error
    return json.loads(s, parse_constant=_reject_constant)


def check_run(mode, rc, out, err, timed_out):
    """Returns (kind, detail) or None."""
    if timed_out:
        return "timeout", "no exit within the timeout"
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "signal %d" % -rc
        return "crash", "killed by %s" % name
    if rc >= 128:
        return "crash", "exit status %d" % rc
    if rc not in (0, 2):
        return "exit-%d" % rc, "unexpected exit status %d" % rc
    if mode == "json" and rc == 0:
        try:
            strict_json(out)
        except (ValueError, UnicodeDecodeError) as e:
            return "bad-json", "stdout is not one JSON document: %s (%d bytes)" % (str(e)[:200], len(out))
    if mode == "jsonl":
        for n, line in enumerate(out.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                strict_json(line)
            except (ValueError, UnicodeDecodeError) as e:
                return "bad-jsonl", "line %d is not JSON: %s: %r" % (n, str(e)[:200], line[:200])
    return None


def mode_commands(binary, mutant, workdir, rng, report_fraction):
    cmds = [
        ("text", [binary, "-q", "-r", mutant]),
        ("json", [binary, "-q", "-T", "json", "-r", mutant]),
        ("jsonl", [binary, "-q", "-T", "jsonl", "-r", mutant]),
    ]
    if rng.random() < report_fraction:
        cmds.append(("html", [binary, "-q", "-r", mutant, "--report", os.path.join(workdir, "r.html")]))
    if rng.random() < report_fraction:
        cmds.append(("md-export", [binary, "-q", "-r", mutant, "--report", os.path.join(workdir, "r.md"),
                                   "--export", os.path.join(workdir, "exp")]))
    return cmds


FATAL_RE = re.compile(r"(?:Swift runtime failure:\s*(.*?)\s*\*\*\*|Fatal error:?\s*(.*))")
SRC_RE = re.compile(r"((?:/[\w.@+-]+)+/Sources/[\w./@+-]+\.swift):(\d+)")
ANY_SWIFT_RE = re.compile(r"([\w./@+-]+\.swift):(\d+)")
FRAME_RE = re.compile(r"^\s*\d+\s+(?:\[\w+\]\s+)?0x[0-9a-f]+\s+(.*?)\s+in\s+\S+\s+at\s+(\S+)", re.M)


def signature(kind, mode, err):
    text = err.decode("utf-8", "replace")
    parts = [kind]
    m = FATAL_RE.search(text)
    if m:
        msg = re.sub(r"\d+", "N", (m.group(1) or m.group(2) or "").strip())[:120]
        parts.append(msg)
    loc = SRC_RE.search(text) or ANY_SWIFT_RE.search(text)
    if loc:
        parts.append("%s:%s" % (os.path.basename(loc.group(1)), loc.group(2)))
    if kind in ("bad-json", "bad-jsonl", "timeout") or kind.startswith("exit-"):
        parts.append(mode)
    return " | ".join(parts)


def key_lines(text, frames=4):
    """The failure message and the first stack frames of a Swift backtrace, else the last lines."""
    lines = text.split("\n")
    keep = [l for l in lines if FATAL_RE.search(l) or l.startswith("*** Signal")]
    try:
        k = next(i for i, l in enumerate(lines) if l.rstrip().endswith("crashed:"))
        keep += [l for l in lines[k + 1:] if l.strip()][:frames]
    except StopIteration:
        keep += lines[-8:]
    return keep


def tail(b, lines=40):
    t = b.decode("utf-8", "replace").rstrip("\n").split("\n")
    return "\n".join(t[-lines:])


# --------------------------------------------------------------------------
# Driver


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.mutants = 0
        self.runs = 0
        self.failures = 0
        self.by_kind = {}
        self.signatures = {}  # sig -> dict(count, examples[])
        self.slowest = (0.0, None)


def save_failure(out_dir, fuzz_seed, index, spath, data, applied, mode, cmd, rc, err, out, kind, detail,
                 sig, stats, keep):
    h = hashlib.sha1(sig.encode()).hexdigest()[:8]
    with stats.lock:
        entry = stats.signatures.setdefault(sig, {"kind": kind, "count": 0, "examples": []})
        entry["count"] += 1
        keep_it = len(entry["examples"]) < keep
        stem = "%s-%s-s%d-m%d-%s" % (kind, h, fuzz_seed, index, mode)
        mpath = os.path.join(out_dir, stem + (".pcapng" if spath.endswith(".pcapng") else ".pcap"))
        if keep_it:
            entry["examples"].append({"mutant": mpath, "mode": mode, "index": index, "seed_file": spath,
                                      "cmd": cmd, "rc": rc, "detail": detail, "stderr_tail": tail(err),
                                      "ops": applied})
    if not keep_it:
        return
    with open(mpath, "wb") as f:
        f.write(data)
    with open(os.path.join(out_dir, stem + ".txt"), "w") as f:
        f.write("kind: %s\nsignature: %s\ndetail: %s\n" % (kind, sig, detail))
        f.write("command (as run): %s\n" % " ".join(cmd))
        f.write("reproduce: %s\n" % " ".join(_repro_cmd(cmd, mpath)))
        f.write("exit status: %s\nseed file: %s\nfuzz seed: %d  mutant index: %d\nmutations: %s\n"
                % (rc, spath, fuzz_seed, index, ", ".join(applied)))
        f.write("\n--- stderr ---\n%s\n" % err.decode("utf-8", "replace"))
        if kind in ("bad-json", "bad-jsonl"):
            f.write("\n--- stdout (first 4000 bytes) ---\n%s\n" % out[:4000].decode("utf-8", "replace"))


def _repro_cmd(cmd, mpath):
    res = list(cmd)
    i = res.index("-r")
    res[i + 1] = mpath
    return res


def fuzz_one(index, args, seeds, stats, out_dir, work_root):
    spath, data, applied, rng = make_mutant(args.seed, index, seeds)
    wd = os.path.join(work_root, "m%d" % index)
    os.makedirs(wd, exist_ok=True)
    mutant = os.path.join(wd, "mutant" + (".pcapng" if spath.endswith(".pcapng") else ".pcap"))
    with open(mutant, "wb") as f:
        f.write(data)
    found = []
    try:
        for mode, cmd in mode_commands(args.binary, mutant, wd, rng, args.report_fraction):
            rc, out, err, timed_out, dt = run_cmd(cmd, args.timeout)
            with stats.lock:
                stats.runs += 1
                if dt > stats.slowest[0]:
                    stats.slowest = (dt, "%s mutant %d (%s)" % (mode, index, os.path.basename(spath)))
            r = check_run(mode, rc, out, err, timed_out)
            if r:
                kind, detail = r
                sig = signature(kind, mode, err)
                with stats.lock:
                    stats.failures += 1
                    stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
                save_failure(out_dir, args.seed, index, spath, data, applied, mode, cmd,
                             "timeout" if timed_out else rc, err, out, kind, detail, sig, stats,
                             args.keep_per_signature)
                found.append(sig)
    finally:
        shutil.rmtree(wd, ignore_errors=True)
        with stats.lock:
            stats.mutants += 1
    return found


def main():
    ap = argparse.ArgumentParser(description="Whole-CLI mutation fuzzer for capdiag.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--binary", help="capdiag binary to run (use a copy, not .build/)")
    ap.add_argument("--seconds", type=float, help="stop starting new mutants after this long")
    ap.add_argument("--seed", type=int, default=1, help="fuzz seed (default 1)")
    ap.add_argument("--out", default="/tmp/capdiag-fuzz-failures", help="where failing mutants go")
    ap.add_argument("--timeout", type=float, default=10.0, help="hard timeout per run in seconds (default 10)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel mutants (default: CPUs)")
    ap.add_argument("--max-seeds", type=int, default=300, help="cap on seed files (default 300)")
    ap.add_argument("--report-fraction", type=float, default=0.15,
                    help="share of mutants also run with --report html, and with --report md --export")
    ap.add_argument("--keep-per-signature", type=int, default=5, help="mutants saved per failure signature")
    ap.add_argument("--regenerate", type=int, metavar="I", help="write mutant I of --seed to --out and exit")
    ap.add_argument("--replay", metavar="FILE", help="run the checks on FILE (all modes) and exit")
    ap.add_argument("--progress", type=float, default=60.0, help="progress line every N seconds on stderr (0: off)")
    args = ap.parse_args()

    if args.replay:
        if not args.binary:
            ap.error("--replay needs --binary")
        wd = "/tmp/capdiag-fuzz-work-replay-%d" % os.getpid()
        os.makedirs(wd, exist_ok=True)
        bad = 0
        for mode, cmd in mode_commands(args.binary, args.replay, wd, random.Random(0), 1.0):
            rc, out, err, to, dt = run_cmd(cmd, args.timeout)
            r = check_run(mode, rc, out, err, to)
            print("%-9s rc=%-8s %.2fs %s" % (mode, "timeout" if to else rc, dt, r[0] + ": " + r[1] if r else "ok"))
            if r:
                bad += 1
                print("  " + tail(err, 20).replace("\n", "\n  "))
        shutil.rmtree(wd, ignore_errors=True)
        return 1 if bad else 0

    seeds = collect_seeds(args.max_seeds, args.seed)
    if not seeds:
        print("fuzz-cli: no seed captures found", file=sys.stderr)
        return 64
    os.makedirs(args.out, exist_ok=True)

    if args.regenerate is not None:
        spath, data, applied, _ = make_mutant(args.seed, args.regenerate, seeds)
        p = os.path.join(args.out, "regen-s%d-m%d%s" % (args.seed, args.regenerate,
                                                         ".pcapng" if spath.endswith(".pcapng") else ".pcap"))
        with open(p, "wb") as f:
            f.write(data)
        print("%s (seed file %s; mutations: %s)" % (p, spath, ", ".join(applied)))
        return 0

    if not args.binary or args.seconds is None:
        ap.error("--binary and --seconds are required")
    if not os.access(args.binary, os.X_OK):
        ap.error("not executable: %s" % args.binary)
    args.binary = os.path.abspath(args.binary)

    work_root = "/tmp/capdiag-fuzz-work-%d" % os.getpid()
    os.makedirs(work_root, exist_ok=True)
    stats = Stats()
    start = time.monotonic()
    deadline = start + args.seconds
    print("fuzz-cli: %d seeds, seed=%d, %d jobs, %.0fs, timeout %.0fs, out %s"
          % (len(seeds), args.seed, args.jobs, args.seconds, args.timeout, args.out), file=sys.stderr)
    next_index = 0
    next_progress = start + args.progress if args.progress > 0 else float("inf")
    interrupted = False
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            pending = set()
            while True:
                now = time.monotonic()
                while now < deadline and len(pending) < args.jobs * 2:
                    pending.add(pool.submit(fuzz_one, next_index, args, seeds, stats, args.out, work_root))
                    next_index += 1
                if not pending:
                    break
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()  # surface fuzzer bugs
                now = time.monotonic()
                if now >= next_progress:
                    next_progress = now + args.progress
                    with stats.lock:
                        print("fuzz-cli: %.0fs mutants=%d runs=%d failures=%d distinct=%d"
                              % (now - start, stats.mutants, stats.runs, stats.failures, len(stats.signatures)),
                              file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        shutil.rmtree(work_root, ignore_errors=True)

    elapsed = time.monotonic() - start
    summary = {
        "seed": args.seed, "seconds": round(elapsed, 1), "binary": args.binary, "seeds": len(seeds),
        "mutants": stats.mutants, "runs": stats.runs, "failures": stats.failures, "by_kind": stats.by_kind,
        "runs_per_second": round(stats.runs / elapsed, 2) if elapsed else 0,
        "slowest_run": {"seconds": round(stats.slowest[0], 2), "what": stats.slowest[1]},
        "distinct": [{"signature": s, **v} for s, v in sorted(stats.signatures.items(), key=lambda kv: -kv[1]["count"])],
    }
    with open(os.path.join(args.out, "summary-seed%d.json" % args.seed), "w") as f:
        json.dump(summary, f, indent=2)

    for d in summary["distinct"]:
        ex = d["examples"][0] if d["examples"] else {}
        print("FAILURE %s (x%d)" % (d["signature"], d["count"]))
        if ex:
            print("  command: %s" % " ".join(_repro_cmd(ex["cmd"], ex["mutant"])))
            print("  mutant:  %s  (from %s; %s)" % (ex["mutant"], ex["seed_file"], ", ".join(ex["ops"])))
            print("  " + "\n  ".join(key_lines(ex["stderr_tail"])))
    kinds = " ".join("%s=%d" % kv for kv in sorted(stats.by_kind.items())) or "none"
    print("fuzz-cli: seed=%d mutants=%d runs=%d failures=%d (%s) distinct=%d runs/s=%.1f elapsed=%.0fs out=%s%s"
          % (args.seed, stats.mutants, stats.runs, stats.failures, kinds, len(stats.signatures),
             summary["runs_per_second"], elapsed, args.out, " (interrupted)" if interrupted else ""))
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
