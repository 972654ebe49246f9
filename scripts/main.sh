#!/usr/bin/env bash
# The README's main job on a fresh machine: installs what the build needs,
# builds, compiles the example layer (examples/siso_layer.mlir, the shapes of
# golden case siso_a) into a CPU bundle and checks that bundle against the
# float64 answers of siso_a. Exits non-zero when any step fails.
# Usage: scripts/main.sh   (GOLDEN=path/to/mamba3_cases overrides the cases)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
golden="${GOLDEN:-$root/../shared/golden/mamba3_cases}"
cd "$root"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"

rm -rf "$build/example-bundle"
"$build/bin/mamba3-compile" --target cpu examples/siso_layer.mlir \
  -o "$build/example-bundle"
"$build/bin/mamba3-run" --target cpu --bundle "$build/example-bundle" \
  --golden "$golden" --case siso_a
