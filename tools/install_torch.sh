#!/bin/sh
# Installs Debian's PyTorch (python3-torch) for /usr/bin/python3, which
# tools/make_fixtures.py needs. Idempotent: silent and instant when present.
# Usage: tools/install_torch.sh
set -eu

PYTHON=/usr/bin/python3

if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=""
else
    AS_ROOT="sudo"
fi

# Refresh the package lists only when they do not know python3-torch yet.
if ! apt-cache policy python3-torch 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    echo "install_torch.sh: apt-get update" >&2
    $AS_ROOT apt-get update -qq
fi

echo "install_torch.sh: apt-get install python3-torch" >&2
DEBIAN_FRONTEND=noninteractive $AS_ROOT apt-get install -y -qq python3-torch >/dev/null

"$PYTHON" -c 'import torch' || {
    echo "install_torch.sh: python3-torch installed but 'import torch' fails" >&2
    exit 1
}
