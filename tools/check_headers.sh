#!/usr/bin/env bash
# Every public header compiles on its own (it includes what it uses), warning-free
# with -Wall -Wextra -Werror: a user may include any one of them first.
# CUDA headers (.cuh) are left to nvcc. Exits non-zero naming each failing header.
#   tools/check_headers.sh [compiler]     (default g++; CI also runs clang++)
set -euo pipefail
cd "$(dirname "$0")/.."
export METRO_CHECK_CXX=${1:-g++}
jobs=${METRO_JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
check() {  # $1 = header path under include/, $2 = scratch dir
  local source="$2/$(echo "$1" | tr '/.' '__').cpp"
  printf '#include "%s"\n' "$1" >"$source"
  if ! "$METRO_CHECK_CXX" -std=c++20 -fsyntax-only -fopenmp -Wall -Wextra -Werror -Iinclude -I/usr/include/eigen3 -I/usr/include/stb \
      "$source" 2>"$source.log"; then
    echo "header does not compile on its own: include/$1"
    head -20 "$source.log"
    return 1
  fi
}
export -f check
headers=$(cd include && find metro -name '*.hpp' | sort)
echo "$(echo "$headers" | wc -l) headers ($METRO_CHECK_CXX)"
echo "$headers" | xargs -P "$jobs" -I{} bash -c 'check "$1" "$2"' _ {} "$work"
