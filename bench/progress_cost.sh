#!/bin/sh
# Cost of the progress display: the same trainings with progress off (--quiet), as plain lines (stderr a file,
# --progress-interval 0.1, far more often than the default 30 s) and as a terminal bar (a pseudo-terminal from
# util-linux `script`), interleaved so that load drifts hit every mode alike. Prints one line per run:
#   mode workload seconds
# Usage: bench/progress_cost.sh [toymoe binary] [repetitions]
set -eu
B=${1:-.build/release/toymoe}
R=${2:-5}
D=$(mktemp -d)
cat > "$D/sweep.lua" <<'LUA'
toymoe.sweep{
  grid = { i = { 1, 2, 3, 4 } },
  run = function(cell)
    local ms = {}
    for j = 1, 8 do ms[j] = toymoe.model{ n_features = 20, n_hidden = 5 } end
    local r = toymoe.train_many(ms, { data = toymoe.data{ n_features = 20, feature_probability = 0.1 },
                                     steps = 1500, batch_size = 256 })
    return { final_loss = r[1].final_loss }
  end,
}
LUA
now() { date +%s.%N; }
for rep in $(seq 1 "$R"); do
  for mode in quiet plain tty; do
    for work in train sweep; do
      rm -rf "$D/o"
      if [ $work = train ]; then args="train --steps 4000 --batch-size 512 --out $D/o"; else args="run $D/sweep.lua --jobs 2 --out $D/o"; fi
      t0=$(now)
      case $mode in
        quiet) $B $args --quiet > /dev/null 2>&1 ;;
        plain) $B $args --progress-interval 0.1 > /dev/null 2> "$D/err" ;;
        tty) script -qec "$B $args > /dev/null" /dev/null > "$D/tty" ;;
      esac
      t1=$(now)
      echo "$mode $work $(echo "$t1 - $t0" | bc)"
    done
  done
done
rm -rf "$D"
