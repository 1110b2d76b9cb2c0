#!/usr/bin/env bash
# Installs the Debian packages the build, tests and benchmarks need, if missing.
# Quiet and quick when everything is present. Needs root (or sudo) to install.
set -euo pipefail
packages=(cmake make g++ libeigen3-dev doctest-dev libstb-dev libbenchmark-dev clang libclang-rt-14-dev libomp-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
