#!/bin/bash
# Our whole-model benchmarks (benchmarks/bench_models.cpp) against the same
# workloads in PyTorch 1.13 (tools/bench_pytorch.py), both fp32 on 2 threads;
# then the two batch-1 forwards with bf16 products on both sides (ours:
# MatmulPrecision::bf16; PyTorch: torch.autocast bf16), outside the fp32 targets.
# The two run interleaved, one workload per process (ours, PyTorch, ours, ...),
# so load from other processes hits both alike; the table quotes medians of every
# timed repetition and each side's largest peak RSS.
#
# Usage: tools/bench_vs_pytorch.sh [--quick] [--rounds N] [--reps N] [--only "workload ..."]
#   --quick    one round, one timed repetition each (five for the batch-1 forwards), after one warm-up
#   --rounds   interleaved rounds (default 3); --reps timed repetitions per process (default 2;
#              five times as many for the batch-1 forwards, which take well under a second
#              and swing most with the machine's load)
# Environment:
#   BUILD_DIR (build-perf), OMP_WAIT_POLICY (passive: spinning threads starve a
#   shared machine, for both sides), OPENBLAS_DIRS (where to look for an
#   OpenBLAS libblas.so.3 for PyTorch, see below).
# Prints the table `workload | ours | pytorch | ratio` and `geomean_ratio=<x>`
# (ours / PyTorch time over the fp32 workloads: below 1 means we are faster).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-perf}
PYTHON=/usr/bin/python3
ROUNDS=3
REPS=2
WORKLOADS="transformer_fwd_b1 transformer_train_b8 resnet50_fwd_b1 small_train_b16 metro_r50_train_b8 transformer_fwd_b1_bf16 resnet50_fwd_b1_bf16"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ROUNDS=1; REPS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --only) WORKLOADS=$2; shift ;;
    *) echo "bench_vs_pytorch.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

"$ROOT/tools/install_torch.sh"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMETRO_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" --target bench_models -j2 >/dev/null
OURS="$BUILD_DIR/benchmarks/bench_models"

# PyTorch at its best here. Debian's torch calls the generic libblas.so.3; when
# that is the reference BLAS it is very slow, so an OpenBLAS build is put in its
# place (LD_LIBRARY_PATH): the first directory of OPENBLAS_DIRS that holds one.
# The OpenMP build comes first: the pthread build's own worker threads spin next
# to PyTorch's OpenMP threads (a small training step ran 3x slower with it).
# OPENBLAS_CORETYPE unset and SkylakeX are both tried; the faster one whose
# output matches the plain run (rel 1e-4) is kept. See docs/benchmarks.md.
OPENBLAS_DIRS=${OPENBLAS_DIRS:-/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/x86_64-linux-gnu/openblas-pthread}
BLAS_ENV=()
for dir in $OPENBLAS_DIRS; do
  if [ -e "$dir/libblas.so.3" ]; then BLAS_ENV=("LD_LIBRARY_PATH=$dir"); break; fi
done
probe() {  # prints "<median seconds> <checksum>" of PyTorch's transformer forward under `env "$@"`,
           # or "inf nan" when that setting does not run here (a kernel this CPU lacks: SIGILL)
  local t c
  if t=$(env "$@" "$PYTHON" "$ROOT/tools/bench_pytorch.py" transformer_fwd_b1 --reps 2 2>/dev/null |
         "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["median_s"])' 2>/dev/null) &&
     c=$(env "$@" "$PYTHON" "$ROOT/tools/bench_pytorch.py" transformer_fwd_b1 --check 2>/dev/null |
         "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["checksum"])' 2>/dev/null); then
    echo "$t $c"
  else
    echo "inf nan"
  fi
}
read -r best_time reference_sum < <(probe "${BLAS_ENV[@]}" OPENBLAS_CORETYPE=)
TORCH_ENV=("${BLAS_ENV[@]}" "OPENBLAS_CORETYPE=")
read -r t sum < <(probe "${BLAS_ENV[@]}" OPENBLAS_CORETYPE=SkylakeX)
echo "PyTorch probe (${BLAS_ENV[*]:-system BLAS}): OPENBLAS_CORETYPE unset ${best_time}s, SkylakeX ${t}s" >&2
if "$PYTHON" -c "import sys; r,s,t,b=map(float,sys.argv[1:]); sys.exit(0 if abs(r-s)<=1e-4*abs(r) and t<b else 1)" \
     "$reference_sum" "$sum" "$t" "$best_time"; then
  TORCH_ENV=("${BLAS_ENV[@]}" "OPENBLAS_CORETYPE=SkylakeX")
fi
echo "PyTorch runs with: ${TORCH_ENV[*]}"

reps_for() {  # $1 = workload
  case $1 in
    *_fwd_b1 | *_fwd_b1_bf16) echo $((REPS * 5)) ;;
    *) echo "$REPS" ;;
  esac
}

RESULTS=$(mktemp -d)
trap 'rm -rf "$RESULTS"' EXIT
for round in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    echo "round $round/$ROUNDS $w  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$OURS" --benchmark_filter="^BM_${w}/" --benchmark_min_time=0.01 --benchmark_repetitions="$(reps_for "$w")" \
            --benchmark_format=json 2>/dev/null >"$RESULTS/ours_${w}_$round.json"
    env "${TORCH_ENV[@]}" "$PYTHON" "$ROOT/tools/bench_pytorch.py" "$w" --reps "$(reps_for "$w")" --warmup 1 >"$RESULTS/torch_${w}_$round.json"
  done
done

"$PYTHON" - "$RESULTS" $WORKLOADS <<'EOF'
import glob, json, math, statistics, sys
results, workloads = sys.argv[1], sys.argv[2:]
print(f"{'workload':<24} | {'ours s':>8} | {'pytorch s':>9} | {'ratio':>6} | {'ours MB':>8} | {'pytorch MB':>10} | {'mem ratio':>9}")
fp32 = [w for w in workloads if not w.endswith("_bf16")]
bf16 = [w for w in workloads if w.endswith("_bf16")]
ratios = []  # the fp32 workloads': the targets and geomean_ratio
for w in fp32 + bf16:
    if bf16 and w == bf16[0]:
        print("bf16 products (ours: MatmulPrecision::bf16; PyTorch: torch.autocast bf16), not in geomean_ratio:")
    ours_t, ours_mb, torch_t, torch_mb = [], 0.0, [], 0.0
    for path in glob.glob(f"{results}/ours_{w}_*.json"):
        for b in json.load(open(path))["benchmarks"]:
            if b.get("run_type") == "iteration":
                ours_t.append(b["real_time"] / 1000.0)  # reported in ms
                ours_mb = max(ours_mb, b["peak_rss_MB"])
    for path in glob.glob(f"{results}/torch_{w}_*.json"):
        r = json.load(open(path))
        torch_t += r["times_s"]
        torch_mb = max(torch_mb, r["peak_rss_MB"])
    o, t = statistics.median(ours_t), statistics.median(torch_t)
    if w in fp32:
        ratios.append(o / t)
    print(f"{w:<24} | {o:8.3f} | {t:9.3f} | {o / t:6.2f} | {ours_mb:8.0f} | {torch_mb:10.0f} | {ours_mb / torch_mb:9.2f}")
if ratios:
    print(f"geomean_ratio={math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f}")
EOF

# Compile time of one translation unit that includes the whole library
# (metro/metro.hpp) and instantiates a model's forward and backward: the
# installed-package test, g++ -O2 as a user would build it (target: <= 20 s).
# Also the bare include of metro/metro.hpp. Medians of 3: single compiles here
# vary by up to 30 %.
compile_median_ms() {  # $1 = source file; prints the median wall time of 3 compiles in ms
  for _ in 1 2 3; do
    local start_ms=$(( $(date +%s%N) / 1000000 ))
    g++ -std=c++20 -O2 -march=native -fopenmp -I"$ROOT/include" -I/usr/include/eigen3 -I/usr/include/stb -c "$1" -o /dev/null
    echo $(( $(date +%s%N) / 1000000 - start_ms ))
  done | sort -n | sed -n 2p
}
include_only="$RESULTS/include_only.cpp"
printf '#include "metro/metro.hpp"\nint main() {}\n' >"$include_only"
consumer_ms=$(compile_median_ms "$ROOT/tests/consumer/main.cpp")
include_ms=$(compile_median_ms "$include_only")
printf 'compile_seconds=%d.%03d  (tests/consumer/main.cpp: metro/metro.hpp + a model forward and backward, g++ -O2 -march=native, median of 3)\n' \
  $((consumer_ms / 1000)) $((consumer_ms % 1000))
printf 'include_only_seconds=%d.%03d  (#include "metro/metro.hpp" and an empty main, median of 3)\n' $((include_ms / 1000)) $((include_ms % 1000))
# g++'s own count of the memory its front and middle end allocated (GGC, -ftime-report's
# TOTAL line) repeats to the MB, unlike the wall time: a steady yardstick between runs.
work=$(g++ -std=c++20 -O2 -march=native -fopenmp -I"$ROOT/include" -I/usr/include/eigen3 -I/usr/include/stb \
         -c "$ROOT/tests/consumer/main.cpp" -o /dev/null -ftime-report 2>&1 | awk '/TOTAL/ {print $NF}')
echo "compile_work=$work  (GGC memory g++ allocates for tests/consumer/main.cpp; deterministic)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
