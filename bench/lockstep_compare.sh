#!/bin/sh
# Side-by-side timing of two toymoe builds on the lockstep workload of bench/lockstep_shapes.lua.
#   bench/lockstep_compare.sh OLD NEW ROUNDS STEPS SHAPE...   (e.g. ./old-toymoe .build/release/toymoe 5 300 212 313)
# Per shape and round, runs OLD then NEW (NEW then OLD on odd rounds) on the same work, one thread each, and prints
# one line per run: shape, binary (old/new), user CPU seconds, wall seconds, checksum. CPU seconds are the number to
# compare on a shared machine (wall time includes the time other processes hold the cores); ratios are taken per
# round by bench/lockstep_ratio.py. TOYMOE_KERNELS selects the ISA build (simd-avx2, simd-avx512, ...).
set -eu
old=$1 new=$2 rounds=$3 steps=$4
shift 4
script=$(dirname "$0")/lockstep_shapes.lua
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # label binary shape
  /usr/bin/time -f "%U %e" -o "$out/t" "$2" run "$script" shape="$3" models=128 steps="$steps" threads=1 \
    --out "$out/r" > "$out/o" 2>&1
  echo "$3 $1 $(cat "$out/t") $(sed -n 's/.*checksum //p' "$out/o")"
  rm -rf "$out/r"
}
for shape in "$@"; do
  r=0
  while [ "$r" -lt "$rounds" ]; do
    if [ $((r % 2)) -eq 0 ]; then run old "$old" "$shape"; run new "$new" "$shape"
    else run new "$new" "$shape"; run old "$old" "$shape"; fi
    r=$((r + 1))
  done
done
