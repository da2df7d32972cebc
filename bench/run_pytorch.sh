#!/usr/bin/env bash
# Compares ToyMoE with the PyTorch implementation in bench/pytorch/ on the same configurations, alternating the two
# round by round, and prints the ratios. Optional; see bench/README.md.
#
#   bench/run_pytorch.sh [--configs P1,P2,P3] [--rounds 3] [--min-time 0.2] [--threads 1] [--models 64]
#                        [--toymoe PATH] [--install-only]
#
# torch goes into a virtual environment under bench/.venv (gitignored). If a CPU-only torch wheel is in the pip
# find-links folder (/opt/wheels on this project's machines) it is installed from there (~200 MB); otherwise
# `pip install torch` from PyPI, whose Linux x86_64 wheel pulls the CUDA libraries (several GB, several minutes).
# Set TORCH_SPEC to install something else (e.g. TORCH_SPEC=/path/to/torch-...whl).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
configs="P1,P2,P3"
rounds=3
min_time=0.2
threads=1
models=64
toymoe=""
install_only=0

while [ $# -gt 0 ]; do
  case "$1" in
    --configs) configs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --toymoe) toymoe="$2"; shift 2 ;;
    --install-only) install_only=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run_pytorch.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# --- torch in a venv -------------------------------------------------------------------------------------------
if ! command -v python3 >/dev/null; then
  echo "run_pytorch.sh: python3 is required (apt-get install -y python3 python3-venv)" >&2; exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv"
  python3 -m venv "$venv" || { echo "run_pytorch.sh: python3 -m venv failed (apt-get install -y python3-venv)" >&2; exit 1; }
fi
py="$venv/bin/python"
if ! "$py" -c "import torch" 2>/dev/null; then
  spec="${TORCH_SPEC:-}"
  if [ -z "$spec" ]; then
    wheel="$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | sort -V | tail -1 || true)"
    spec="${wheel:-torch}"
  fi
  if [ "$spec" = "torch" ]; then
    echo "installing torch from PyPI: the default Linux wheel brings the CUDA libraries (several GB); this can take"
    echo "several minutes. Set TORCH_SPEC to a CPU wheel to avoid that."
  else
    echo "installing torch from $spec"
  fi
  "$venv/bin/pip" install --quiet "$spec" numpy || {
    echo "run_pytorch.sh: installing torch failed; the comparison is optional (see bench/README.md)" >&2; exit 1; }
fi
"$py" -c "import torch; print('torch', torch.__version__, '| intra-op threads used:', $threads)"
[ "$install_only" = 1 ] && exit 0

# --- ToyMoE (release build) -----------------------------------------------------------------------------------
if [ -z "$toymoe" ]; then
  (cd "$root" && swift build -c release --scratch-path .build-bench --product toymoe >/dev/null)
  toymoe="$root/.build-bench/release/toymoe"
fi

# --- alternate: torch round, toymoe round, ... ----------------------------------------------------------------
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
toy_configs="$(echo "$configs" | tr ',' '\n' | grep -E '^P[123]$' | paste -sd, -)"
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: torch"
  OMP_NUM_THREADS="$threads" "$py" "$here/pytorch/toy_moe_torch.py" --configs "$configs" --repeats 1 \
    --min-time "$min_time" --threads "$threads" --models "$models" --quiet --json "$out/torch-$r.json"
  echo "round $r/$rounds: toymoe"
  # One thread each (lockstep-1t too), so the ratios compare equal threads; `simd` is the widest SIMD build here.
  "$toymoe" bench --configs "$toy_configs" --variants scalar,simd,lockstep-1t --repeats 1 --min-time "$min_time" --quiet \
    --json "$out/toymoe-$r.json"
done

"$py" - "$out" "$rounds" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
per = {}  # (config, label, toymoe variant, torch variant) -> [toymoe model-steps/s / torch model-steps/s per round]
rates = {}
for r in range(1, rounds + 1):
    torch_doc = json.load(open(f"{out}/torch-{r}.json"))
    toy = json.load(open(f"{out}/toymoe-{r}.json"))
    toy_rate = {}  # (config, label) -> {toymoe variant: model-steps/s}
    for u in toy["units"]:
        if u["unit"] == "training step":
            for v in u["variants"]:
                toy_rate.setdefault((u["config"], u["shape"]["label"]), {})[v["name"]] = 1 / v["seconds_per_iteration"]["median"]
    for row in torch_doc["results"]:
        key = (row["config"], row["label"])
        t = row["model_steps_per_second"]
        for name, rate in toy_rate.get(key, {}).items():
            k = key + (name, row["variant"])
            per.setdefault(k, []).append(rate / t)
            rates.setdefault(k, []).append((rate, t))
print()
print(f"{'config':<6} {'shape':<22} {'ToyMoE':<14} {'vs':<13} {'ToyMoE model-steps/s':>21} {'torch model-steps/s':>20} {'ToyMoE/torch':>13}")
for key, ratios in per.items():
    toy_med = statistics.median(a for a, _ in rates[key])
    torch_med = statistics.median(b for _, b in rates[key])
    print(f"{key[0]:<6} {key[1]:<22} {key[2]:<14} {key[3]:<13} {toy_med:21.1f} {torch_med:20.1f} {statistics.median(ratios):13.3f}")
print("\nToyMoE: one thread; scalar and the widest SIMD build train one model at a time, lockstep-1t trains 128 models")
print("eight per SIMD group. torch: --threads intra-op threads; torch-vmapM steps M models at once, so its")
print("model-steps/s counts M per step. Ratio > 1: ToyMoE faster. Per-round ratios, median.")
EOF
