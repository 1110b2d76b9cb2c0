#!/usr/bin/env bash
# The CUDA backend on a machine with a GPU: a Release build with
# -DMETRO_WITH_CUDA=ON, the CUDA tests (tests/cuda/test_cuda.cu), and a GPU timing
# of the paper_body METRO transformer (forward + backward, and inference) at
# batch 32, next to PyTorch eager on the same GPU when torch with CUDA imports.
#
#   tools/gpu_check.sh --copy-headers   # on a Debian machine: copy Eigen, doctest and
#                                       # stb into third_party_headers/ (git-ignored)
#   tools/gpu_check.sh [batch]          # on the GPU machine (nvcc, CMake, PyTorch; no
#                                       # Debian packages needed with third_party_headers/)
#
# Environment: BUILD_DIR (default build-gpu), METRO_HEADERS_DIR (default
# third_party_headers), PYTHON (default python3), CUDA_ARCH (default 90).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
headers=${METRO_HEADERS_DIR:-$root/third_party_headers}

if [ "${1:-}" = "--copy-headers" ]; then
  mkdir -p "$headers"
  cp -r /usr/include/eigen3 /usr/include/doctest /usr/include/stb "$headers"/
  echo "copied Eigen, doctest and stb headers into $headers ($(du -sh "$headers" | cut -f1))"
  exit 0
fi

batch=${1:-32}
build=${BUILD_DIR:-$root/build-gpu}
python=${PYTHON:-python3}
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -d "$build" ] && generator=()  # an existing build keeps its generator

echo "== configure and build (Release, CUDA) in $build"
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMETRO_WITH_CUDA=ON -DMETRO_BUILD_TESTS=ON \
  -DMETRO_BUILD_EXAMPLES=OFF -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DMETRO_HEADERS_DIR="$headers" >"$build.configure.log" 2>&1 || { tail -n 30 "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target metro_test_cuda metro_gpu_bench

echo "== CUDA tests"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
tests_rc=0
"$build/tests/cuda/metro_test_cuda" >"$build/test_cuda.log" 2>&1 || tests_rc=$?
grep -E "skipped: no CUDA device|ERROR|FAILED" "$build/test_cuda.log" | head -n 20 || true
tail -n 4 "$build/test_cuda.log"
echo "(full output: $build/test_cuda.log)"

echo "== timing: paper_body transformer, batch $batch"
results=$(mktemp)
"$build/tests/cuda/metro_gpu_bench" "$batch" | tee -a "$results" || echo "metro_gpu_bench failed"
if "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  "$python" "$root/tools/gpu_bench_pytorch.py" --batch "$batch" | tee -a "$results" || echo "gpu_bench_pytorch.py failed"
else
  echo "(PyTorch with CUDA not importable by $python: no PyTorch column)"
fi

echo
printf '%-28s %12s %12s %10s\n' workload "metro ms" "pytorch ms" "ratio"
for w in "transformer_train_b$batch" "transformer_infer_b$batch"; do
  m=$(awk -v w="$w" '$1 == "metro" && $2 == w {print $3}' "$results")
  p=$(awk -v w="$w" '$1 == "pytorch" && $2 == w {print $3}' "$results")
  r=$(awk -v m="${m:-0}" -v p="${p:-0}" 'BEGIN { if (m > 0 && p > 0) printf "%.2f", m / p; else print "-" }')
  printf '%-28s %12s %12s %10s\n' "$w" "${m:--}" "${p:--}" "$r"
done
rm -f "$results"
exit "$tests_rc"
