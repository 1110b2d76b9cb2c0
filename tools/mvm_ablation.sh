#!/usr/bin/env bash
# Masked vertex modeling ablation (paper Tables 2 and 3): the `small` preset
# trained with MVM ratio 0, 0.1, 0.3 and 0.5 under the same step budget, each
# evaluated on a held-out split in which half of the images carry a random
# occluding rectangle. Prints a Markdown table (docs/training.md holds the last
# one measured). Two runs at a time, one thread each, so both cores stay busy.
#
#   tools/mvm_ablation.sh                 3000 steps per ratio (about 10 minutes)
#   METRO_ABLATION_STEPS=6000 tools/mvm_ablation.sh
#
# Uses the Release build in build/ (tools/demo.sh makes it) and writes to ablation_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${METRO_ABLATION_STEPS:-3000}
bin=${METRO_BUILD_DIR:-build}/examples
out=ablation_out
for program in metro_synth metro_train metro_eval; do
  [ -x "$bin/$program" ] || { echo "missing $bin/$program: run tools/demo.sh (or build the examples) first" >&2; exit 1; }
done
mkdir -p "$out"
[ -f "$out/data/train/annotations.bin" ] || $bin/metro_synth --count 4000 --seed 1 --out "$out/data/train" --split-name train --threads 2
[ -f "$out/data/occluded/annotations.bin" ] || $bin/metro_synth --count 200 --seed 3 --occluders 0.5 --out "$out/data/occluded" --split-name occluded --threads 2

train() {  # ratio
  $bin/metro_train --data "$out/data/train" --out "$out/mvm_$1" --steps "$steps" --mvm-ratio "$1" --threads 1 \
    --image-size 64 --heads 1 --dropout 0 --batch-size 8 --lr 5e-4 --eval-samples 32 --checkpoint-every 0 >"$out/mvm_$1.log" 2>&1
}
ratios=(0 0.1 0.3 0.5)
for pair in "0 0.1" "0.3 0.5"; do
  read -r a b <<<"$pair"
  train "$a" & train "$b" & wait
done

row() {  # label, eval JSON, and "baseline" for the mean-pose baseline's metrics in it
  python3 - "$@" <<'EOF'
import json, sys
m = json.load(open(sys.argv[2]))
m = m[sys.argv[3]] if len(sys.argv) > 3 else m
print(f"| {sys.argv[1]} | {m['mpjpe_mm']:.1f} | {m['pa_mpjpe_mm']:.1f} | {m['mpve_mm']:.1f} | {m['pa_mpvpe_mm']:.1f} |")
EOF
}
echo "| MVM ratio | MPJPE (mm) | PA-MPJPE (mm) | MPVE (mm) | PA-MPVPE (mm) |"
echo "|---:|---:|---:|---:|---:|"
for r in "${ratios[@]}"; do
  $bin/metro_eval --checkpoint "$out/mvm_$r/checkpoint.safetensors" --data "$out/data/occluded" --json "$out/mvm_$r/occluded.json" \
    --baseline-from "$out/data/train" --threads 2 >/dev/null
  row "$r" "$out/mvm_$r/occluded.json"
done
row "mean-pose baseline" "$out/mvm_0/occluded.json" baseline
