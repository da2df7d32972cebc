#!/usr/bin/env python3
"""Summarizes bench/lockstep_compare.sh output (stdin): per shape, median CPU seconds of each build, the per-round
ratio old/new (median and range), model-steps/s per CPU second, and whether the checksums agree."""
import statistics
import sys

runs = {}
for line in sys.stdin:
    f = line.split()
    if len(f) != 5:
        continue
    shape, label, user, wall, checksum = f
    runs.setdefault(shape, {}).setdefault(label, []).append((float(user), float(wall), checksum))
steps = int(sys.argv[1]) * 128 if len(sys.argv) > 1 else None
for shape, r in runs.items():
    old, new = r.get("old", []), r.get("new", [])
    ratios = sorted(o[0] / n[0] for o, n in zip(old, new) if n[0] > 0)
    same = len({x[2] for x in old + new}) == 1
    mo, mn = statistics.median(x[0] for x in old), statistics.median(x[0] for x in new)
    rate = lambda s: f"{steps / s / 1e3:.0f}k/s" if steps else ""
    print(f"{shape}: old {mo:.2f} s ({rate(mo)}), new {mn:.2f} s ({rate(mn)}) CPU; old/new per round median "
          f"{statistics.median(ratios):.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f}, n={len(ratios)}); "
          f"checksums {'identical' if same else 'DIFFER'}")
