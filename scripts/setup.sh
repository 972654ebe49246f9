#!/usr/bin/env bash
# Installs everything the build and the tests need, idempotently (Debian 12).
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail

packages=(
  cmake ninja-build ccache g++ python3
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  googletest libgtest-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# Python for the tests of python/ (the PyTorch ops): .venv with torch (CPU
# use only here) and pytest, from PyPI. Idempotent: an existing .venv that
# imports them is kept.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, pytest" 2>/dev/null; then
  echo "setup: $venv has torch and pytest"
else
  echo "setup: making $venv (torch, pytest)"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
  "$venv/bin/python" -m pip install -q "torch==2.11.0" "numpy" "pytest"
fi
