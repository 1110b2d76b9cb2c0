#!/usr/bin/env bash
# Nothing is lost (issue 4), tested on the built programs:
#  1. kill test: metro_train checkpoints every step; it is killed with SIGKILL at
#     random moments (so, often, in the middle of writing a checkpoint), N times;
#     the last checkpoint must always load (metro_eval runs on it).
#  2. resume test: on 1 thread, 6 steps straight and 3 steps + resume to 6 give
#     bitwise the same weights.
# Usage: tools/reliability_test.sh [build dir, default build] [kills, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
kills=${2:-20}
bin="$build/examples"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--preset small --image-size 64 --batch-size 4 --workers 1 --eval-samples 4 --lr 1e-3 --warmup-steps 0 --schedule constant)

"$bin/metro_synth" --count 16 --seed 5 --size 64 --out "$work/data" >/dev/null

echo "== kill test: $kills SIGKILLs during training with a checkpoint every step"
RANDOM=7
for i in $(seq 1 "$kills"); do
  OMP_NUM_THREADS=1 "$bin/metro_train" --data "$work/data" --out "$work/killed" --steps 100000 --checkpoint-every 1 \
    --threads 1 "${common[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$(( 2 + RANDOM % 6 )).$(( RANDOM % 10 ))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -f "$work/killed/checkpoint.safetensors" ]; then
    "$bin/metro_eval" --checkpoint "$work/killed/checkpoint.safetensors" --data "$work/data" --max-samples 4 \
      --threads 1 >/dev/null || { echo "kill $i: the last checkpoint does not load"; exit 1; }
  fi
done
[ -f "$work/killed/checkpoint.safetensors" ] || { echo "no checkpoint was ever written"; exit 1; }
echo "   every checkpoint left behind loaded"

echo "== resume test: 6 steps straight vs 3 steps + resume, 1 thread, bitwise"
run() { OMP_NUM_THREADS=1 "$bin/metro_train" --data "$work/data" --threads 1 --checkpoint-every 0 "${common[@]}" "$@" >/dev/null 2>&1; }
run --out "$work/straight" --steps 6
run --out "$work/resumed" --steps 3
run --out "$work/resumed" --steps 6 --resume "$work/resumed/checkpoint.safetensors"
python3 - "$work/straight/checkpoint.safetensors" "$work/resumed/checkpoint.safetensors" <<'PY'
import json, struct, sys
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys(), "different tensor names"
diff = [k for k in a if a[k] != b[k]]
if diff:
    sys.exit(f"resumed run differs from the uninterrupted one in {len(diff)} tensors, e.g. {diff[:3]}")
print(f"   {len(a)} tensors (weights and optimizer state) bitwise equal")
PY
