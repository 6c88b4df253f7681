#!/usr/bin/env bash
# Writes capdiag(1) in mdoc to stdout, generated from the argument parser's own description of
# the command line (`capdiag --experimental-dump-help`), so the options, their short and long
# names, value names and help never drift from the binary. The SYNOPSIS is the three real forms
# (read files, capture live, list interfaces), not a generic one.
#   bash scripts/manpage.sh [CAPDIAG] > capdiag.1
set -euo pipefail
capdiag=${1:-.build/debug/capdiag}
"$capdiag" --experimental-dump-help | python3 -c '
import json, sys, datetime

command = json.load(sys.stdin)["command"]

def esc(text):
    # mdoc: a line must not start with a dot or apostrophe; backslashes are escapes; anything
    # beyond ASCII as a named or Unicode escape, so no formatter guesses the encoding.
    text = text.replace("\\", "\\e")
    named = {"\u2026": "\\&...", "\u2014": "\\(em", "\u2013": "\\(en", "\u2192": "\\(->", "\u00d7": "\\(mu", "\u2019": "\x27"}
    text = "".join(named.get(c, c) if ord(c) < 128 or c in named else "\\[u%04X]" % ord(c) for c in text)
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "\x27")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)

def paragraph(text):
    # Lines indented by two spaces are examples: a literal block.
    out, literal = [], []
    for line in text.split("\n"):
        if line.startswith("  "):
            literal.append(esc(line.strip()))
            continue
        if literal:
            out += [".Bd -literal -offset indent"] + literal + [".Ed"]
            literal = []
        out.append(esc(line))
    if literal:
        out += [".Bd -literal -offset indent"] + literal + [".Ed"]
    return "\n".join(out)

def flag(name):
    return ("Fl " + name["name"]) if name["kind"] == "short" else ("Fl -" + name["name"])

options = [a for a in command["arguments"] if a["kind"] in ("option", "flag") and a.get("shouldDisplay", True)
           and a["preferredName"]["name"] not in ("help", "version", "experimental-dump-help", "generate-completion-script")]
out = []
out.append(".Dd " + datetime.date.today().strftime("%B %-d, %Y"))
out.append(".Dt CAPDIAG 1")
out.append(".Os")
out.append(".Sh NAME")
out.append(".Nm capdiag")
out.append(".Nd " + esc(command["abstract"].rstrip(".")))
out.append(".Sh SYNOPSIS")
out.append(".Nm")
out.append(".Fl r Ar file ...")
out.append(".Op Ar options")
out.append(".Op Ar expression")
out.append(".Nm")
out.append(".Fl i Ar interface")
out.append(".Op Ar options")
out.append(".Op Ar expression")
out.append(".Nm")
out.append(".Fl D")
out.append(".Nm")
out.append(".Fl -gateway-words")
out.append(".Sh DESCRIPTION")
for text in command.get("discussion", "").split("\n\n"):
    out.append(paragraph(text.strip("\n")))
    out.append(".Pp")
out.append(".Sh OPTIONS")
out.append(".Bl -tag -width indent")
for option in options:
    names = sorted(option["names"], key=lambda n: n["kind"] != "short")
    head = " , ".join(flag(n) for n in names)
    if option["kind"] == "option":
        head += " Ar " + option.get("valueName", "value")
    out.append(".It " + head)
    text = option.get("abstract", "")
    if option.get("defaultValue") not in (None, ""):
        text += " (default: " + option["defaultValue"] + ")"
    if option.get("isRepeating") and option["kind"] == "option":
        text += " May be repeated."
    out.append(esc(text))
out.append(".It Fl h , Fl -help")
out.append("Show the options and exit.")
out.append(".It Fl -version")
out.append("Show the version and exit.")
out.append(".It Fl -generate-completion-script Ar shell")
out.append("Print the completion script for bash, zsh or fish.")
out.append(".El")
out.append(".Sh EXIT STATUS")
out.append(".Bl -tag -width indent")
out.append(".It 0")
out.append("The analysis ran (and, with --fail-on, found nothing that severe).")
out.append(".It 1")
out.append("A verdict at or above the --fail-on severity.")
out.append(".It 2")
out.append("An input could not be opened, the filter is invalid, or an output could not be written.")
out.append(".It 64")
out.append("Bad usage.")
out.append(".El")
out.append(".Sh EXAMPLES")
examples = [
    ("Diagnose a capture taken on the gateway, limited to the upstream port:", "capdiag -r upstream.pcap tcp port 8080"),
    ("Several ring files at once, and a ticket report with the failing flows exported:", "capdiag -r ring.pcap0 ring.pcap1 --report report.html --export flows"),
    ("Join nginx logs to the flows:", "capdiag -r gw.pcap --gateway-log /var/log/nginx/error.log --gateway-log /var/log/nginx/access.log"),
    ("Watch live, one JSON line per verdict, metrics for Prometheus:", "capdiag -i eth0 -T jsonl --interval 10 --metrics-listen 127.0.0.1:9464"),
]
for text, example in examples:
    out.append(esc(text))
    out.append(".Bd -literal -offset indent")
    out.append(esc(example))
    out.append(".Ed")
out.append(".Sh SEE ALSO")
out.append(".Xr tcpdump 8 ,")
out.append(".Xr tshark 1 ,")
out.append(".Xr pcap-filter 7")
print("\n".join(out))
'
