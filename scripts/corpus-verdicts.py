#!/usr/bin/env python3
"""Lists every medium/high verdict capdiag gives on the public corpus, one per line:
file, flow id, code, severity, evidence frames, summary (tab-separated, escapes for control bytes).

    python3 scripts/corpus-verdicts.py .build/release/capdiag > /tmp/verdicts.tsv

Compare with Tests/corpus-review/reviewed-verdicts.tsv (the reviewed list the test checks): every
new or changed line needs a review against the packets (tshark) before it goes into that file.
The corpus is $CAPDIAG_PUBLIC_CAPTURES or ../shared/captures/public beside the repository."""
import concurrent.futures, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.environ.get("CAPDIAG_PUBLIC_CAPTURES") or os.path.join(here, "..", "..", "shared", "captures", "public")
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", ".build", "release", "capdiag")
files = [line.split("\t")[0] for line in open(os.path.join(root, "MANIFEST.tsv")).read().splitlines()[1:]]

def verdicts(name):
    run = subprocess.run([binary, "-q", "-T", "jsonl", "-r", os.path.join(root, name)], capture_output=True, timeout=300)
    lines = []
    if run.returncode not in (0, 2):
        lines.append(f"{name}\t-\tEXIT {run.returncode}\t-\t-\t-")
    for text in run.stdout.decode(errors="replace").splitlines():
        record = json.loads(text)
        if record.get("type") != "flow":
            continue
        for finding in record["diagnosis"]["findings"]:
            if finding["severity"] in ("medium", "high"):
                frames = ",".join(str(e["frame"]) for e in finding["evidence"])
                summary = finding["summary"].encode("unicode_escape").decode("ascii")
                lines.append(f"{name}\t{record['id']}\t{finding['code']}\t{finding['severity']}\t{frames}\t{summary}")
    return lines

with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
    for lines in pool.map(verdicts, files):
        for line in lines:
            print(line)
