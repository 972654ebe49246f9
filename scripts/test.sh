#!/usr/bin/env bash
# The README's test command: builds, then runs every test (lit + GoogleTest) through ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure
