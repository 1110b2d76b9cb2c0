#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything
# (library tests, examples, benchmarks, and the CUDA backend test where nvcc
# is found: it reports "skipped: no CUDA device" without a GPU) in Release,
# runs all tests, then runs
# the whole test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# and fuzzes the checkpoint, JSON, dataset and mesh readers for a bounded time.
# Exits non-zero on any failure.
#
#   tools/test.sh            everything
#   tools/test.sh --fast     skip the sanitizer and fuzzing passes
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
[ "${1:-}" = "--fast" ] && fast=1
jobs=${METRO_JOBS:-2}
# OpenMP threads sleep instead of spinning while they wait: on a machine that
# other processes share, spinning threads steal the time their partners need.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
start=$(date +%s)

tools/install_deps.sh

echo "== Release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMETRO_BUILD_TESTS=ON -DMETRO_BUILD_EXAMPLES=ON \
  -DMETRO_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build -j"$jobs"
echo "== Tests (Release)"
OMP_NUM_THREADS=2 ctest --test-dir build --output-on-failure

echo "== Code snippets in README.md and docs/ compile"
tools/check_doc_snippets.sh

echo "== Every header compiles on its own, with g++ and with clang++"
tools/check_headers.sh
tools/check_headers.sh clang++

echo "== Installed package, used by a separate project (tests/consumer)"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install build --prefix "$prefix" >/dev/null
cmake -S tests/consumer -B build-consumer -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-consumer -j"$jobs" >/dev/null
build-consumer/consumer
echo "== The same project built by clang++, taking the source tree by add_subdirectory, without OpenMP"
cmake -S tests/consumer -B build-consumer-clang -DCMAKE_CXX_COMPILER=clang++ -DMETRO_SOURCE_DIR="$PWD" \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON -DCMAKE_BUILD_TYPE=Release >/dev/null 2>&1
cmake --build build-consumer-clang -j"$jobs" >/dev/null
build-consumer-clang/consumer

if [ "$fast" -eq 0 ]; then
  echo "== Tests under -fsanitize=address,undefined"
  # -O1: the sanitizers need no more, and the build is twice as fast as at -O2 -g.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DMETRO_SANITIZE=ON -DMETRO_BUILD_TESTS=ON \
    -DMETRO_BUILD_EXAMPLES=OFF -DMETRO_BUILD_BENCHMARKS=OFF -DMETRO_WITH_CUDA=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=2 \
    ctest --test-dir build-asan --output-on-failure
  echo "== Nothing lost: SIGKILL during checkpoint writes, bitwise resume"
  tools/reliability_test.sh build 20
  echo "== Bounded fuzzing of the file readers (libFuzzer, ASan, UBSan)"
  tests/fuzz/run.sh "${METRO_FUZZ_SECONDS:-20}"
fi
echo "== All tests passed in $(( $(date +%s) - start )) s"
