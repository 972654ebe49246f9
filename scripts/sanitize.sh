#!/usr/bin/env bash
# The runtime under AddressSanitizer + UndefinedBehaviorSanitizer: a
# runtime-only build (the MLIR tools would not fit CI's time instrumented)
# of the runtime library, mamba3-run and the tests that need no MLIR
# in-process (runtime unit tests, CPU bundle tests with the bundle fuzz
# driver), the bundles compiled by the main build's mamba3-compile; then
# the IR fuzz driver (parser, ssm verifiers, layer interface) instrumented.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
asan="${ASAN_BUILD_DIR:-$root/build-asan}"
compile="$build/bin/mamba3-compile"
[ -x "$compile" ] || { echo "sanitize.sh: $compile missing; run scripts/build.sh first" >&2; exit 1; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMAMBA3_RUNTIME_ONLY=ON -DMAMBA3_SANITIZE=address,undefined \
  -DMAMBA3_EXTERNAL_COMPILE="$compile" "${launcher[@]}" >/dev/null
cmake --build "$asan"
cd "$asan"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$(nproc)"
# mamba3-run under the sanitizers: the golden cases and a random MIMO layer
# on the CPU target, and a configuration too large for the host refused.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
golden="$(cd "$root/../shared/golden" 2>/dev/null && pwd || true)"
if [ -n "$golden" ]; then
  "$asan/bin/mamba3-run" --target cpu --golden "$golden" --compiler "$compile" | tail -1
fi
"$asan/bin/mamba3-run" --target cpu --random --mimo --rank 3 --state 32 --headdim 16 --init \
  --compiler "$compile" | tail -1
if "$asan/bin/mamba3-run" --target reference --random --batch 100000 --seqlen 100000 2>/dev/null; then
  echo "sanitize.sh: a host run of 6.4e11 elements was not refused" >&2
  exit 1
fi
# The IR fuzz driver under the sanitizers: a full (MLIR) configuration, of
# which only the dialect, codegen/LayerModule.cpp and the driver are built
# (the instrumented compiler would take CI's time).
asan_mlir="${ASAN_MLIR_BUILD_DIR:-$root/build-asan-mlir}"
cmake -S "$root" -B "$asan_mlir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMAMBA3_SANITIZE=address,undefined "${launcher[@]}" >/dev/null
cmake --build "$asan_mlir" --target mamba3-ir-fuzz
"$asan_mlir/test/mamba3-ir-fuzz" "${MAMBA3_FUZZ_RUNS:-20000}" 20261202 \
  "$asan_mlir/ir-fuzz-last-mutant.mlir" "$root"/test/dialect/*.mlir \
  "$root"/test/codegen/Inputs/*.mlir "$root"/test/codegen/compile-from-file.mlir \
  "$root"/examples/*.mlir
echo "sanitize.sh: runtime, mamba3-run and both fuzz drivers clean under address,undefined"
