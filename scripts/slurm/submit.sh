#!/usr/bin/env bash
# Submits a sharded ToyMoE sweep: an array job of N tasks (scripts/slurm/sweep.sbatch), then its merge
# (scripts/slurm/merge.sbatch) with --dependency=afterok on the whole array.
#
#   scripts/slurm/submit.sh [-n TASKS] [-c CPUS] [-o SBATCH_OPTION]... SCRIPT.lua OUT [KEY=VALUE ...] [toymoe run options ...]
#
#   -n TASKS          array tasks = shards (default 4); the array is 0..TASKS-1
#   -c CPUS           CPUs per task, used as `toymoe run --jobs` (default 2)
#   -o SBATCH_OPTION  one more sbatch option for both jobs, e.g. -o --partition=short -o --account=proj (repeatable)
#
# KEY=VALUE words and toymoe run options (--seed, --kernels, --time-limit, ...) go to every task and to the merge
# job's final `toymoe run --resume` (which writes config.json, provenance.json and the finish() outputs).
# Logs go to OUT/logs/. Prints the job ids as SWEEP_JOB=<id> and MERGE_JOB=<id> on stdout.
# Environment: TOYMOE (the toymoe executable the jobs run; default: toymoe on PATH, resolved here to an
# absolute path so the compute nodes run the same binary); SBATCH_* input variables (SBATCH_PARTITION,
# SBATCH_ACCOUNT, SBATCH_TIMELIMIT, ...) as sbatch itself reads them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tasks=4
cpus=2
extra=()
usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 64
}
while getopts "n:c:o:h" opt; do
    case $opt in
        n) tasks=$OPTARG ;;
        c) cpus=$OPTARG ;;
        o) extra+=("$OPTARG") ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
case $tasks in ''|*[!0-9]*|0) echo "submit.sh: -n expects a positive number of tasks, got '$tasks'" >&2; exit 64 ;; esac
case $cpus in ''|*[!0-9]*|0) echo "submit.sh: -c expects a positive number of CPUs, got '$cpus'" >&2; exit 64 ;; esac
script=$1
out=$2
shift 2
[ -f "$script" ] || { echo "submit.sh: no script '$script'" >&2; exit 66; }

toymoe=${TOYMOE:-toymoe}
if [[ $toymoe != */* ]]; then
    toymoe=$(command -v "$toymoe") || { echo "submit.sh: '${TOYMOE:-toymoe}' is not on PATH; set TOYMOE=/path/to/toymoe" >&2; exit 69; }
fi
[ -f "$toymoe" ] && [ -x "$toymoe" ] || { echo "submit.sh: $toymoe is not an executable file" >&2; exit 69; }
toymoe=$(cd "$(dirname "$toymoe")" && pwd -P)/$(basename "$toymoe")

mkdir -p "$out/logs"
sweep=$(sbatch --parsable --export=ALL,TOYMOE="$toymoe" \
    --array="0-$((tasks - 1))" --cpus-per-task="$cpus" \
    --output="$out/logs/sweep-%A_%a.out" "${extra[@]}" \
    "$here/sweep.sbatch" "$script" "$out" "$@")
sweep=${sweep%%;*}  # --parsable prints "id" or "id;cluster"
merge=$(sbatch --parsable --export=ALL,TOYMOE="$toymoe" \
    --dependency="afterok:$sweep" --kill-on-invalid-dep=yes \
    --output="$out/logs/merge-%j.out" "${extra[@]}" \
    "$here/merge.sbatch" "$out" "$script" "$@")
merge=${merge%%;*}
echo "submit.sh: sweep $script -> $out: array job $sweep ($tasks tasks), merge job $merge (after all succeed); logs in $out/logs/" >&2
echo "SWEEP_JOB=$sweep"
echo "MERGE_JOB=$merge"
