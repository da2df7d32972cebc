#!/usr/bin/env python3
"""ETA error of a sweep's progress lines (stderr of `toymoe run ... --progress-interval S` saved to a file).

For each milestone (10/25/50/75 % of the work) it takes the first plain `sweep` line whose shown fraction of the
model-steps reaches it, and compares the ETA on that line with the time actually left (the closing line's total
minus the line's elapsed time). It does the same with milestones of elapsed time (10 % of the run's wall time, ...),
since a sweep whose cells differ in cost does not spend its time in proportion to its model-steps.
Usage: bench/eta_error.py STDERR_FILE [STDERR_FILE ...]   (prints one table per file)
"""
import re
import sys

def seconds(text):
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not m or not text:
        return None
    h, mi, s = (int(x) if x else 0 for x in m.groups())
    return 3600 * h + 60 * mi + s

def parse(path):
    lines, total = [], None
    for raw in open(path, encoding="utf-8", errors="replace"):
        raw = raw.rstrip("\n")
        m = re.match(r"sweep\s+(\d+)%.*elapsed (\S+)\s+ETA (\S+)$", raw)
        if m:
            lines.append((int(m.group(1)), seconds(m.group(2)), None if m.group(3) == "?" else seconds(m.group(3)), raw))
            continue
        m = re.match(r"sweep (?:done|stopped): .* in (\S+) \(", raw)
        if m:
            total = seconds(m.group(1))
    return lines, total

def report(path):
    lines, total = parse(path)
    print(f"{path}: {len(lines)} progress lines, total {total} s")
    if total is None or not lines:
        print("  (no closing line or no progress line)")
        return
    print("  | milestone | line | ETA shown | actual left | error |")
    for kind in ("work", "time"):
        for target in (10, 25, 50, 75):
            if kind == "work":
                hit = next((l for l in lines if l[0] >= target), None)
            else:
                hit = next((l for l in lines if l[1] >= target / 100 * total), None)
            if hit is None:
                print(f"  | {target} % of {kind} | none | | | |")
                continue
            pct, elapsed, eta, raw = hit
            left = total - elapsed
            err = "n/a" if eta is None or left <= 0 else f"{100 * (eta - left) / left:+.0f} %"
            print(f"  | {target} % of {kind} | {pct} %, elapsed {elapsed} s | {eta if eta is not None else '?'} s | {left} s | {err} |")

for p in sys.argv[1:]:
    report(p)
