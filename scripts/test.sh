#!/usr/bin/env bash
# The README's test command: builds, runs the runtime's tests under ASan + UBSan
# (scripts/sanitize.sh), then every test (lit + GoogleTest + pytest) through ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/build.sh"
# The runtime under ASan + UBSan first (its own build folder), then the whole
# suite, whose ctest summary ends the output.
"$root/scripts/sanitize.sh"
cd "$build"
ctest --output-on-failure
