#!/bin/sh
# One measured run of a sweep's ETA: `toymoe run SCRIPT` with plain progress lines every 0.5 s, stderr to a file,
# the 1-minute load average sampled every 5 s meanwhile (the machine may be shared), then bench/eta_error.py's table.
# Usage: bench/eta_measure.sh BINARY SCRIPT NAME [toymoe run arguments...]
#   writes bench/results/NAME.stderr.txt, NAME.load.txt, NAME.timings.csv and NAME.table.txt; with PERF=1 in the
#   environment also NAME.perf.txt (`perf stat`: instructions, cycles and CPU time of the whole run, which compare
#   two runs' work independently of the machine's load).
# Example: bench/eta_measure.sh .build/release/toymoe scripts/paper/fig3_features_per_dim.lua \
#            eta-fig3-quick-new-2026-12-03 --jobs 2
set -eu
B=$1; S=$2; N=$3; shift 3
R=$(dirname "$0")/results
D=$(mktemp -d)
( while :; do echo "$(date +%s) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 5; done ) > "$R/$N.load.txt" &
L=$!
t0=$(date +%s.%N)
P=""
if [ "${PERF:-}" = 1 ]; then P="perf stat -e instructions,cycles,task-clock -o $R/$N.perf.txt"; fi
$P "$B" run "$S" --out "$D/o" --progress-interval 0.5 "$@" > "$D/stdout.txt" 2> "$R/$N.stderr.txt" || echo "exit status $?" >> "$R/$N.stderr.txt"
t1=$(date +%s.%N)
kill "$L"
cp "$D/o/timings.csv" "$R/$N.timings.csv" 2>/dev/null || true
{
  echo "binary $B script $S args $* wall $(echo "$t1 - $t0" | bc) s"
  echo "load average (1 min) during the run: $(awk '{print $2}' "$R/$N.load.txt" | sort -n | awk '{a[NR]=$1} END {print "min " a[1] ", median " a[int((NR+1)/2)] ", max " a[NR] " (" NR " samples)"}')"
  python3 "$(dirname "$0")/eta_error.py" "$R/$N.stderr.txt"
} | tee "$R/$N.table.txt"
rm -rf "$D"
