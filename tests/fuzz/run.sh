#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_<target>.cpp with clang++ (libFuzzer + ASan + UBSan) and
# runs each for a bounded time on a copy of its seed corpus tests/fuzz/corpus/<target>/.
# Usage: tests/fuzz/run.sh [seconds per target, default 30]
# Exits non-zero when a target crashes; the crashing input is left in build-fuzz/.
set -euo pipefail
seconds="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${METRO_FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-clang++}"
mkdir -p "$out"
status=0
for source in "$here"/fuzz_*.cpp; do
  target="$(basename "$source" .cpp)"
  name="${target#fuzz_}"
  echo "== $target: build"
  "$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/include" -isystem /usr/include/eigen3 -isystem /usr/include/stb "$source" -o "$out/$target"
  corpus="$out/corpus_$name"
  mkdir -p "$corpus"
  if [ -d "$here/corpus/$name" ]; then cp -n "$here/corpus/$name"/* "$corpus"/ 2>/dev/null || true; fi
  echo "== $target: run ${seconds}s"
  if ! (cd "$out" && "./$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
          -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | tail -n 25); then
    echo "!! $target crashed; reproducer: $(ls -t "$out"/crash-* "$out"/timeout-* "$out"/oom-* 2>/dev/null | head -n 1)"
    status=1
  fi
done
exit $status
