#!/usr/bin/env bash
# Ground truth for capdiag's `invalid_response`: which malformed upstream HTTP/1.1 responses do
# nginx 1.22 and HAProxy 2.6 (Debian 12 packages, default settings) reject (client gets 502,
# gateway logs an error) and which do they pass on?
#
#   sudo bash Captures/lab/framing-check.sh          -> writes Captures/lab/framing-check.md
#
# Network rule: loopback only, ports 127.0.0.1:19100-19199 (upstream 19100, nginx 19110,
# HAProxy 19120). The system nginx service is not touched: nginx runs with its own -p/-c in a
# temp dir, HAProxy with its own -f; both, the upstream and tshark are stopped by PID on exit.
# Every loop is bounded; each upstream process exits by itself after at most 120 s.
set -euo pipefail
trap 'echo "framing-check: failed at line $LINENO" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
out=${FRAMING_CHECK_OUT:-$here/framing-check.md}

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v tshark >/dev/null || need+=(tshark)
if [ ${#need[@]} -gt 0 ]; then
    # Keep Debian from starting the packaged nginx/haproxy services on the host.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

UP=19100; NGX=19110; HAP=19120
work=$(mktemp -d /tmp/framing-check.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- the cases (shared by both sides)
cat > "$work/cases.py" <<'PY'
OK = b"Content-Length: 2\r\n\r\nok"
BASE = b"HTTP/1.1 200 OK\r\n" + OK
CH = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

def h(line):            # one extra header line before Content-Length
    return b"HTTP/1.1 200 OK\r\n" + line + b"\r\n" + OK

def st(line):           # a status line variant
    return line + b"\r\n" + OK

def cl(value):          # Content-Length variants, body "ok", then close
    return b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nok"

big = lambda n: b"X-Big: " + b"a" * (n - 7)
many = lambda k, n: b"\r\n".join(b"X-H%02d: " % i + b"a" * (n - 8) for i in range(k))

# (id, description, raw response, short display or None)
CASES = [
    ("1",   "baseline valid", BASE, None),
    ("2",   "bare CR inside reason phrase", st(b"HTTP/1.1 200 O\rK"), None),
    ("2b",  "bare CR right after status code", st(b"HTTP/1.1 200\r OK"), None),
    ("3",   "bare CR inside header value", h(b"X-A: a\rb"), None),
    ("3b",  "CR CR LF ending a header line", h(b"X-A: ab\r"), None),
    ("3c",  "bare CR inside header name", h(b"X-\rA: b"), None),
    ("4",   "bare LF line endings throughout", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", None),
    ("4b",  "CRLF status line, one header ended by bare LF", b"HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 2\r\n\r\nok", None),
    ("4c",  "empty line ending the header section is bare LF", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok", None),
    ("5",   "one CRLF before the status line", b"\r\n" + BASE, None),
    ("5b",  "one bare LF before the status line", b"\n" + BASE, None),
    ("6",   "3 CRLF before the status line", b"\r\n" * 3 + BASE, None),
    ("6b",  "20 CRLF before the status line", b"\r\n" * 20 + BASE, None),
    ("7",   "junk line before the status line", b"xx\r\n" + BASE, None),
    ("7b",  "space before the status line", b" " + BASE, None),
    ("8",   "space before colon (Content-Type)", h(b"Content-Type : text/plain"), None),
    ("8b",  "tab before colon (Content-Type)", h(b"Content-Type\t: text/plain"), None),
    ("9",   "space before colon on Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", None),
    ("10",  "obs-fold, continuation starts with SP", h(b"X-A: a\r\n b"), None),
    ("10b", "obs-fold, continuation starts with HTAB", h(b"X-A: a\r\n\tb"), None),
    ("10c", "first header line starts with SP", h(b" X-A: b"), None),
    ("11",  "header line without colon", h(b"X-A"), None),
    ("11b", "header line without colon, with a space", h(b"X-A b"), None),
    ("12",  "header name with '('", h(b"X(A): b"), None),
    ("12b", "header name with space", h(b"X A: b"), None),
    ("12c", "header name with '@'", h(b"X@A: b"), None),
    ("12d", "header name with '_'", h(b"X_A: b"), None),
    ("12e", "empty header name", h(b": b"), None),
    ("12f", "header name with byte 0xE9", h(b"X\xe9A: b"), None),
    ("12g", "header name with byte 0x01", h(b"X\x01A: b"), None),
    ("13a", "status line without reason", st(b"HTTP/1.1 200"), None),
    ("13b", "status line, empty reason after SP", st(b"HTTP/1.1 200 "), None),
    ("13c", "HTTP/1.0 status line", st(b"HTTP/1.0 200 OK"), None),
    ("13d", "HTTP/2.0 status line", st(b"HTTP/2.0 200 OK"), None),
    ("13e", "4-digit status 2000", st(b"HTTP/1.1 2000 OK"), None),
    ("13f", "2-digit status 20", st(b"HTTP/1.1 20 OK"), None),
    ("13g", "status 099", st(b"HTTP/1.1 099 x"), None),
    ("13h", "status 600", st(b"HTTP/1.1 600 x"), None),
    ("13i", "status 999", st(b"HTTP/1.1 999 x"), None),
    ("13j", "lower-case http/1.1", st(b"http/1.1 200 OK"), None),
    ("13k", "two spaces before status", st(b"HTTP/1.1  200 OK"), None),
    ("13l", "ICY status line", st(b"ICY 200 OK"), None),
    ("13m", "HTAB between status and reason", st(b"HTTP/1.1 200\tOK"), None),
    ("13n", "version HTTP/1.10", st(b"HTTP/1.10 200 OK"), None),
    ("13o", "version HTTP/1", st(b"HTTP/1 200 OK"), None),
    ("13p", "non-digit in status 2x0", st(b"HTTP/1.1 2x0 OK"), None),
    ("14",  "HTTP/0.9 style: body only", b"hello\n", None),
    ("15",  "NUL inside header value", h(b"X-A: a\x00b"), None),
    ("15b", "NUL inside reason phrase", st(b"HTTP/1.1 200 O\x00K"), None),
    ("15c", "byte 0x01 inside header value", h(b"X-A: a\x01b"), None),
    ("15d", "DEL 0x7F inside header value", h(b"X-A: a\x7fb"), None),
    ("15e", "HTAB inside header value (valid)", h(b"X-A: a\tb"), None),
    ("16a", "two differing Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", None),
    ("16b", "two identical Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", None),
    ("16c", "Content-Length list '2, 2'", cl(b"2, 2"), None),
    ("16d", "Content-Length '+2'", cl(b"+2"), None),
    ("16e", "Content-Length '2x'", cl(b"2x"), None),
    ("16f", "Content-Length '-1'", cl(b"-1"), None),
    ("16g", "Content-Length empty", cl(b""), None),
    ("16h", "Content-Length 20-digit overflow", cl(b"99999999999999999999"), None),
    ("16i", "Content-Length and TE: chunked", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", None),
    ("16j", "Content-Length 3, body 'ok', then close", cl(b"3"), None),
    ("17a", "valid chunked", CH + b"2\r\nok\r\n0\r\n\r\n", None),
    ("17b", "bad chunk size 'zz'", CH + b"zz\r\nok\r\n0\r\n\r\n", None),
    ("17c", "chunk extension ';a=b'", CH + b"2;a=b\r\nok\r\n0\r\n\r\n", None),
    ("17d", "chunk size with leading SP", CH + b" 2\r\nok\r\n0\r\n\r\n", None),
    ("17e", "chunk size with trailing SP", CH + b"2 \r\nok\r\n0\r\n\r\n", None),
    ("17f", "chunk size with trailing HTAB", CH + b"2\t\r\nok\r\n0\r\n\r\n", None),
    ("17g", "chunked with bare LF line endings", CH + b"2\nok\n0\n\n", None),
    ("17h", "chunked, no last-chunk, then close", CH + b"2\r\nok\r\n", None),
    ("17i", "TE: gzip (not chunked), close-delimited", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", None),
    ("18",  "obs-text (Latin-1 0xE9) in header value", h(b"X-A: caf\xe9"), None),
    ("18b", "obs-text (UTF-8) in header value", h(b"X-A: caf\xc3\xa9"), None),
    ("18c", "obs-text in reason phrase", st(b"HTTP/1.1 200 \xc3\x89t\xc3\xa9"), None),
    ("19a", "one header line of 3800 bytes", h(big(3800)), "X-Big: a*3793 (3800-byte line)"),
    ("19b", "one header line of 5000 bytes", h(big(5000)), "X-Big: a*4993 (5000-byte line)"),
    ("19c", "one header line of 9000 bytes", h(big(9000)), "X-Big: a*8993 (9000-byte line)"),
    ("19d", "header section 6 KB (12 lines of 500 B)", h(many(12, 500)), "X-H00..X-H11: a*492 (12 lines x 500 B)"),
    ("19e", "header section 17 KB (17 lines of 1000 B)", h(many(17, 1000)), "X-H00..X-H16: a*992 (17 lines x 1000 B)"),
    ("20a", "100 Continue, then 200", b"HTTP/1.1 100 Continue\r\n\r\n" + BASE, None),
    ("20b", "103 Early Hints, then 200", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + BASE, None),
    ("20c", "100 and 103, then 200", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + BASE, None),
]
PY

# ---------------------------------------------------------------- upstream: raw answers by path
cat > "$work/upstream.py" <<'PY'
import socket, sys, threading, time
sys.path.insert(0, sys.argv[1])
from cases import CASES
port, life = int(sys.argv[2]), float(sys.argv[3])
by_path = {"/c" + c[0]: c[2] for c in CASES}

def serve(conn):
    try:
        conn.settimeout(3)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        parts = data.split(b"\r\n", 1)[0].split()
        path = parts[1].decode("latin-1") if len(parts) > 1 else ""
        conn.sendall(by_path.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        time.sleep(0.3)
    except OSError:
        pass
    finally:
        conn.close()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
srv.settimeout(0.5)
deadline = time.monotonic() + life
while time.monotonic() < deadline:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
srv.close()
PY

# ---------------------------------------------------------------- gateways
mkdir -p "$work/ngx/logs" "$work/ngx/tmp"
chmod 777 "$work/ngx/tmp"
cat > "$work/ngx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/ngx/nginx.pid;
error_log $work/ngx/logs/error.log info;
events { worker_connections 128; }
http {
    log_format fc '\$request_uri status=\$status upstream_status=\$upstream_status bytes_sent=\$bytes_sent';
    access_log $work/ngx/logs/access.log fc;
    client_body_temp_path $work/ngx/tmp/cb;
    proxy_temp_path $work/ngx/tmp/px;
    fastcgi_temp_path $work/ngx/tmp/fc;
    uwsgi_temp_path $work/ngx/tmp/uw;
    scgi_temp_path $work/ngx/tmp/sc;
    server {
        listen 127.0.0.1:$NGX;
        location / {
            proxy_pass http://127.0.0.1:$UP;
            proxy_http_version 1.1;
        }
    }
}
EOF
cat > "$work/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info
    stats socket $work/haproxy.sock mode 600 level admin
defaults
    mode http
    log global
    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta ST=%ST B=%B tsc=%tsc %{+Q}r"
    timeout connect 2s
    timeout client 2s
    timeout server 2s
frontend fe
    bind 127.0.0.1:$HAP
    default_backend be
backend be
    server s1 127.0.0.1:$UP
EOF

tshark_ok=0
if command -v tshark >/dev/null; then
    tshark -i lo -f "tcp port $UP" -w "$work/up.pcap" -q >"$work/tshark.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do [ -s "$work/up.pcap" ] && { tshark_ok=1; break; }; sleep 0.1; done
    sleep 0.5
fi
nginx -e "$work/ngx/logs/error.log" -p "$work/ngx" -c "$work/ngx/nginx.conf" &
pids+=($!)
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
for port in $NGX $HAP; do
    for _ in $(seq 1 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
done

ngx_v=$(nginx -v 2>&1 || true)
hap_v=$(haproxy -v 2>/dev/null | sed -n 1p || true)
ngx_pkg=$(dpkg-query -W -f='${Package} ${Version}' nginx-light 2>/dev/null || true)
ngx_pkg2=$(dpkg-query -W -f='${Package} ${Version}' nginx 2>/dev/null || true)
hap_pkg=$(dpkg-query -W -f='${Package} ${Version}' haproxy 2>/dev/null || true)
curl_v=$(curl --version 2>/dev/null | sed -n 1p | cut -d' ' -f1-2 || true)
tshark_v=$(tshark -v 2>/dev/null | sed -n 1p || true)


# ---------------------------------------------------------------- driver
# Per case: curl through both gateways at once (keep-alive, like a browser; its logs are the ones
# shown), then a raw socket client through both (Connection: close) to keep the exact bytes the
# gateway sent. The driver runs the upstream itself and starts a fresh one before the running
# one reaches 100 s (each exits by itself at 120 s anyway).
FC_WORK="$work" FC_OUT="$out" FC_NGX=$NGX FC_HAP=$HAP FC_TSHARK=$tshark_ok FC_UP=$UP \
FC_VERSIONS="$ngx_v ($ngx_pkg; $ngx_pkg2)|$hap_v ($hap_pkg)|$curl_v|$tshark_v|$(cat /etc/debian_version)" \
python3 - <<'PY'
import os, re, socket, subprocess, sys, time
work, out = os.environ["FC_WORK"], os.environ["FC_OUT"]
sys.path.insert(0, work)
from cases import CASES
NGX, HAP, UP = os.environ["FC_NGX"], os.environ["FC_HAP"], os.environ["FC_UP"]

def esc(b, limit=None):
    s = []
    for x in b:
        c = chr(x)
        if c == "\r": s.append("\\r")
        elif c == "\n": s.append("\\n")
        elif c == "\t": s.append("\\t")
        elif c == "\\": s.append("\\\\")
        elif 0x20 <= x < 0x7f: s.append(c)
        else: s.append("\\x%02X" % x)
    t = "".join(s)
    if limit and len(t) > limit:
        t = t[:limit] + "…"
    return t

def md(s):
    return s.replace("|", "\\|").replace("`", "'")

class Tail:
    def __init__(self, path): self.path, self.off = path, 0
    def new(self):
        if not os.path.exists(self.path): return ""
        with open(self.path, "rb") as f:
            f.seek(self.off); data = f.read()
        self.off += len(data)
        return data.decode("latin-1")

class Upstream:
    def __init__(self): self.p, self.t = None, 0
    def ensure(self):
        if self.p and self.p.poll() is None and time.monotonic() - self.t < 100: return
        self.stop()
        self.p = subprocess.Popen([sys.executable, os.path.join(work, "upstream.py"), work, UP, "120"])
        self.t = time.monotonic()
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", int(UP)), timeout=0.2).close(); break
            except OSError:
                time.sleep(0.1)
    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try: self.p.wait(timeout=3)
            except subprocess.TimeoutExpired: self.p.kill(); self.p.wait()

def hap_cmd(cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(os.path.join(work, "haproxy.sock"))
        s.sendall(cmd.encode() + b"\n")
        buf = b""
        for _ in range(1000):
            d = s.recv(65536)
            if not d: break
            buf += d
        return buf.decode("latin-1")
    except OSError as e:
        return "ERR %s" % e
    finally:
        s.close()

def hap_errors_total():
    m = re.search(r"Total events captured on \[[^\]]*\] : (\d+)", hap_cmd("show errors"))
    return int(m.group(1)) if m else None

def curl_start(port, cid, tag):
    d = os.path.join(work, "c", tag + cid)
    os.makedirs(d, exist_ok=True)
    cmd = ["curl", "-sS", "--http0.9", "--raw", "--max-time", "3", "-o", d + "/body",
           "-D", d + "/hdr", "-w", "%{http_code}", "http://127.0.0.1:%s/c%s" % (port, cid)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

def curl_finish(p):
    o, e = p.communicate(timeout=15)
    return {"code": o.decode().strip(), "rc": p.returncode,
            "err": e.decode().strip().replace("curl: ", "")}

def raw_get(port, cid, res):
    buf, end = b"", "timeout"
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
        s.sendall(b"GET /c%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUser-Agent: framing-check\r\n"
                  b"Accept: */*\r\nConnection: close\r\n\r\n" % (cid.encode(), port.encode()))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                end = "RST"; break
            if not d:
                end = "FIN"; break
            buf += d
        s.close()
    except OSError as e:
        end = "error %s" % e
    res.update(raw=buf, end=end)

import threading
def raw_pair(cid):
    rn, rh = {}, {}
    ts = [threading.Thread(target=raw_get, args=(NGX, cid, rn)), threading.Thread(target=raw_get, args=(HAP, cid, rh))]
    for t in ts: t.start()
    for t in ts: t.join(10)
    return rn, rh

ngx_err = Tail(os.path.join(work, "ngx/logs/error.log"))
ngx_acc = Tail(os.path.join(work, "ngx/logs/access.log"))
hap_log = Tail(os.path.join(work, "haproxy.log"))
up = Upstream()
up.ensure()
time.sleep(0.3)
for t in (ngx_err, ngx_acc, hap_log): t.new()
before = hap_errors_total() or 0

def collect():
    global before
    time.sleep(0.5)   # upstream closes 0.3 s after its answer; HAProxy logs at stream end
    ne, na, hl = ngx_err.new(), ngx_acc.new(), hap_log.new()
    total, herr = hap_errors_total(), ""
    if total is not None and total > before:
        dump = hap_cmd("show errors -1 response")
        pos = re.search(r"error at position (\d+)", dump)
        state = re.search(r"H1 msg state (\w+)", dump)
        herr = "show errors: pos %s, state %s" % (pos.group(1) if pos else "?", state.group(1) if state else "?")
        if pos: herr_pos = int(pos.group(1))
        before = total
        return ne, na, hl, herr, (int(pos.group(1)) if pos else None)
    return ne, na, hl, herr, None

rows = []
t0 = time.monotonic()
try:
    for cid, desc, raw, disp in CASES:
        if time.monotonic() - t0 > 420:
            print("driver: out of time budget at case", cid, file=sys.stderr); break
        up.ensure()
        pn, ph = curl_start(NGX, cid, "n"), curl_start(HAP, cid, "h")
        cn, chh = curl_finish(pn), curl_finish(ph)
        ne, na, hl, herr, hpos = collect()
        rn, rh = raw_pair(cid)
        ne2, na2, hl2, herr2, _ = collect()
        rows.append(dict(cid=cid, desc=desc, raw=raw, disp=disp, cn=cn, ch=chh, rn=rn, rh=rh,
                         ne=ne, na=na, hl=hl, herr=herr, hpos=hpos, ne2=ne2, hl2=hl2, herr2=herr2))
finally:
    up.stop()

# tshark's view of the upstream leg, per case (first TCP stream carrying /c<id>)
tsh = {}
NOISE = ("Connection establish", "Connection finish", "This frame", "TCP", "Chunked response",
         "File Data", "Connection reset")
if os.environ.get("FC_TSHARK") == "1":
    time.sleep(0.5)
    try:
        o = subprocess.run(["tshark", "-r", os.path.join(work, "up.pcap"), "-d", "tcp.port==%s,http" % UP,
                            "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=;",
                            "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "http.request.uri",
                            "-e", "frame.protocols", "-e", "_ws.col.Info", "-e", "_ws.expert.message"],
                           capture_output=True, timeout=120).stdout.decode("utf-8", "replace")
        streams, uri_of = {}, {}
        for line in o.splitlines():
            f = line.split("\t") + [""] * 6
            st, sport, uri, protos, info, expert = f[:6]
            if uri: uri_of.setdefault(st, uri)
            if sport == UP and ":http" in protos:
                streams.setdefault(st, []).append((info.strip(), expert.strip()))
        for st, uri in sorted(uri_of.items(), key=lambda kv: int(kv[0])):
            cid = uri[2:] if uri.startswith("/c") else None
            if cid and cid not in tsh and st in streams:
                infos = []
                for i, _ in streams[st]:
                    i = i.replace(" [TCP segment of a reassembled PDU]", "").strip()
                    if i and i not in infos:
                        infos.append(i)
                experts = []
                for _, e in streams[st]:
                    for x in e.split(";"):
                        x = x.strip()
                        if x and not any(n in x for n in NOISE) and not re.match(r"^(HTTP|ICY|http)", x) \
                                and x not in experts:
                            experts.append(x)
                tsh[cid] = "Info: " + " + ".join(infos[:3])[:70] + ((" — expert: " + "; ".join(experts)[:140]) if experts else "")
    except Exception as e:
        print("tshark analysis failed:", e, file=sys.stderr)

def ngx_msgs(ne):
    msgs = []
    for line in ne.splitlines():
        m = re.match(r"\S+ \S+ \[(\w+)\] \d+#\d+: \*\d+ (.*)", line)
        if not m: continue
        lvl, msg = m.groups()
        msg = msg.split(", client:")[0]
        if msg.startswith("client 127.0.0.1 closed keepalive connection"): continue
        msgs.append("[%s] %s" % (lvl, msg))
    return msgs

def hap_fields(hl):
    m = re.search(r"ST=(\S+) B=(\S+) tsc=(\S+)", hl)
    return (m.group(1), m.group(3)) if m else ("?", "?")

def first_line(b):
    return b.split(b"\n", 1)[0]

def verdict(gw, r, upraw, curl, logs):
    got = r["raw"]
    if first_line(got).startswith(b"HTTP/1.1 502") and not upraw.startswith(b"HTTP/1.1 502"):
        return "REJECT"
    if got and got == upraw:
        return "RELAYED VERBATIM (HTTP/0.9)"
    if not got:
        return "NO RESPONSE: closed with 0 bytes (%s)" % r["end"]
    if gw == "nginx" and re.match(rb"HTTP/1\.1 1\d\d ", first_line(got)) and b"\r\nServer: nginx" in got.split(b"\r\n\r\n")[0]:
        return "ACCEPT, but 1xx taken as the final response"
    if curl["rc"] == 18:
        return "ACCEPT, body cut"
    return "ACCEPT"

def client_col(r, curl, upraw, v):
    got = r["raw"]
    if v.startswith("REJECT"):
        s = "502"
    elif v.startswith("RELAYED"):
        s = "upstream bytes unchanged, no status line of its own"
    else:
        hdr, _, body = got.partition(b"\r\n\r\n")
        s = "`%s`" % md(esc(first_line(got).rstrip(b"\r"), 40))
        if b"transfer-encoding: chunked" in hdr.lower() and b"chunked" not in upraw.lower():
            s += ", re-chunked"
        s += ", body `%s`" % md(esc(body, 24))
    c = "curl: %s" % (curl["code"] if curl["code"] not in ("", "000") else "none")
    if curl["rc"] == 28 and v.startswith("RELAYED"):
        c += ", then **hangs** (keep-alive, no framing: curl 28)"
    elif curl["rc"]:
        c += " (curl %d: %s)" % (curl["rc"], md(curl["err"][:60]))
    return s + "; " + c

OBSERVATIONS = """
## Reading it for capdiag (written from the run that produced this table; the table is the record)

- Only a **502 from the gateway** plus its error log line is a rejection. nginx 1.22's rejections are
  `upstream sent invalid header` (bad bytes in a header line: CR, NUL, ctl, SP/HTAB in or ending a name,
  obs-fold, empty name), `upstream sent too big header` (header section over proxy_buffer_size 4k) and,
  after the headers, `upstream sent invalid chunked response` (client gets NO response at all: 0 bytes
  then FIN, access log status 200, bytes_sent 0). HAProxy 2.6's are `%ST=502 %tsc=PH--` with a
  `show errors` capture: any bad status line, anything before it other than empty lines, bad header name
  characters, line without colon, CR not followed by LF, bad or conflicting Content-Length, bad chunk
  size, a Transfer-Encoding that does not end in chunked, a header section over ~16 KB.
- nginx 1.22 does **not** 502 on a bad status line: it logs `upstream sent no valid HTTP/1.0 header`
  at error level and relays the bytes verbatim as HTTP/0.9 (access log `$status` 009). Whatever is
  before `HTTP/` (CRLF, junk, a space), `http/` in lower case, `ICY`, `HTTP/1`, a 2- or 4-digit or
  non-digit code, a bare CR or HTAB in the status line all take that path. A keep-alive client then
  waits (nginx keeps the connection open, no framing) until it times out.
- nginx 1.22 does not validate Content-Length: with an unparsable value ('+2', '2x', '-1', empty,
  '2, 2', 20 digits) it reads to close and re-chunks to the client; with two differing values the
  last wins (body cut, `upstream prematurely closed connection`). CL + TE: chunked is accepted by both
  (TE wins, CL dropped). nginx passes header names with '(' '@' 0xE9 and a line without colon on.
- HAProxy 2.6 accepts and unfolds obs-fold (SP/HTAB kept), forwards a NUL inside a header value
  unchanged, skips empty lines before the status line, and passes status codes 20, 2000, 099, 600, 999
  (for 099 it drops Content-Length). Both pass obs-text, 0x01 and 0x7F inside values, bare-LF line
  endings, chunk extensions and trailing SP/HTAB after a chunk size.
- 1xx: HAProxy relays 100/103 as interim responses correctly. nginx 1.22 takes the first 1xx as the
  final response (access log status 100/103, adds Server/Date/Connection: close) and relays the real
  response as its body; a client that knows 1xx (curl) still ends up with the 200.
"""

vers = os.environ["FC_VERSIONS"].split("|")
L = []
L.append("# Gateway framing check: which malformed upstream responses nginx 1.22 and HAProxy 2.6 reject\n")
L.append("Generated by `Captures/lab/framing-check.sh` (`sudo bash Captures/lab/framing-check.sh`; loopback only, "
         "ports 127.0.0.1:19100-19120). A scripted upstream on :%s sends each raw response below (chosen by the "
         "request path `/c<case>`) in one write and closes 0.3 s later. nginx on :%s (`proxy_pass`, "
         "`proxy_http_version 1.1`, everything else default: proxy_buffer_size 4k, error_log at `info`) and "
         "HAProxy on :%s (`mode http`, timeouts 2 s, everything else default: bufsize 16384, no "
         "`accept-invalid-http-response`) sit in front. Per case and gateway: one `curl --http0.9 --raw "
         "--max-time 3` (keep-alive, its log lines are the ones shown), then one raw-socket GET with "
         "`Connection: close` that keeps the exact bytes the gateway sent.\n" % (UP, NGX, HAP))
L.append("- nginx: %s\n- HAProxy: %s\n- client: %s\n- tshark: %s\n- Debian %s\n" % tuple(vers))
L.append("Verdicts: **REJECT** = the gateway answered 502 itself and logged an error. **ACCEPT** = it passed "
         "the response on (as parsed and re-serialized by the gateway; the client column shows its status "
         "line and body). **RELAYED VERBATIM (HTTP/0.9)** = nginx did not find a valid status line, logged "
         "`upstream sent no valid HTTP/1.0 header` at `error` level and then relayed the upstream bytes "
         "unchanged as an HTTP/0.9 body (no status line or headers of its own; access log `$status` 009, "
         "`$upstream_status` 200), then keeps a keep-alive client connection open with no framing. "
         "**NO RESPONSE** = the client connection was closed without a byte. **body cut** = headers passed "
         "on, then the body ended early (curl 18). "
         "nginx log = that request's error_log lines (the ', client: ...' tail cut; the routine "
         "'client closed keepalive connection' dropped). HAProxy log = `%ST` / `%tsc` of its log line, and "
         "its `show errors` capture when one was added (byte offset of the offending byte, parser state).\n")
L.append("| case | upstream response (escaped) | nginx | nginx client got | nginx error log | HAProxy | HAProxy client got | HAProxy log | tshark (upstream leg) |")
L.append("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    raw = r["disp"] or esc(r["raw"], 110)
    nv = verdict("nginx", r["rn"], r["raw"], r["cn"], r["ne"])
    hv = verdict("haproxy", r["rh"], r["raw"], r["ch"], r["hl"])
    nm = ngx_msgs(r["ne"]) or ["—"]
    st, tsc = hap_fields(r["hl"])
    hlog = "%%ST=%s %%tsc=%s" % (st, tsc)
    if r["herr"]:
        hlog += "; " + r["herr"]
        if r["hpos"] is not None:
            p = r["hpos"]
            hlog += " at `%s`" % md(esc(r["raw"][max(0, p - 5):p]) + "‸" + esc(r["raw"][p:p + 5]))
    L.append("| %s %s | `%s` | **%s** | %s | %s | **%s** | %s | %s | %s |" % (
        r["cid"], md(r["desc"]), md(raw), nv, client_col(r["rn"], r["cn"], r["raw"], nv),
        md(" / ".join(m[:150] for m in nm)), hv, client_col(r["rh"], r["ch"], r["raw"], hv), md(hlog),
        md(tsh.get(r["cid"], "(no HTTP message dissected: the body never completed)"))))
L.append(OBSERVATIONS)
L.append("\n## Details: exact bytes each client got, and the full log lines\n")
for r in rows:
    L.append("### %s — %s\n" % (r["cid"], r["desc"]))
    L.append("- upstream sent: `%s`" % md(r["disp"] or esc(r["raw"], 400)))
    for tag, rr, cc, logs in (("nginx", r["rn"], r["cn"], r["ne"].strip() + "\n" + r["na"].strip()),
                              ("HAProxy", r["rh"], r["ch"], r["hl"].strip())):
        L.append("- %s → raw client got (%d bytes, ended by %s): `%s`" % (
            tag, len(rr["raw"]), rr["end"], md(esc(rr["raw"], 400))))
        L.append("  - curl: http_code %s, exit %d%s" % (cc["code"], cc["rc"], (" — " + md(cc["err"][:120])) if cc["err"] else ""))
        for line in logs.splitlines():
            if line.strip():
                L.append("  - log: `%s`" % md(esc(line.encode("latin-1"), 400)))
    if r["herr"]:
        L.append("  - HAProxy %s" % r["herr"])
    L.append("")
open(out, "w").write("\n".join(L) + "\n")
print("wrote", out, "with", len(rows), "of", len(CASES), "cases in %.0f s" % (time.monotonic() - t0))
PY
