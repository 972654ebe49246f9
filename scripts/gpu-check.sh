#!/usr/bin/env bash
# The whole GPU check in one command, on the GPU machine (CUDA, CMake, ninja;
# no MLIR): builds the runtime and mamba3-run with MAMBA3_RUNTIME_ONLY, then
# runs every bundle that scripts/gpu-bundles.py compiled (golden cases and
# the random sweep checked against the float64 reference, benchmark shapes
# timed) and prints one line per bundle.
#
# usage: [LIST=list.txt] [RUN_TIMEOUT=seconds per run, 120] [MAMBA3_RUN=prebuilt mamba3-run]
#        scripts/gpu-check.sh BUNDLES [GOLDEN_BASE]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundles="$1"
golden="${2:-$root/../shared/golden/mamba3_cases}"
build="$root/build-gpu"
if [ -n "${MAMBA3_RUN:-}" ]; then
  # A runtime-only mamba3-run built elsewhere and carried (saves the build).
  run="$MAMBA3_RUN"
else
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DMAMBA3_RUNTIME_ONLY=ON -DMAMBA3_GOLDEN_DIR="$(dirname "$golden")" >/dev/null &&
    cmake --build "$build" --target mamba3-run >/dev/null || exit 2
  run="$build/bin/mamba3-run"
fi
pass=0 fail=0
while read -r mode path launch; do
  [ -n "$mode" ] || continue
  case "$mode" in
    golden:*) args=(--golden "$golden" --case "${mode#golden:}") ;;
    random)   args=(--random --seed 7) ;;
    random-in-place) args=(--random --seed 7 --in-place) ;;
    bench)    args=(--random --time-only) ;;
  esac
  # The launch shape of a dynamic bundle (gpu-bundles.py --dynamic).
  # shellcheck disable=SC2206
  [ -z "$launch" ] || args+=($launch)
  if output="$(timeout "${RUN_TIMEOUT:-120}" "$run" --target sm_90a --bundle "$bundles/$path" "${args[@]}" 2>&1)"; then
    status=PASS; pass=$((pass + 1))
  else
    status=FAIL; fail=$((fail + 1))
  fi
  worst="$(grep -o 'worst relative L2 error [^:]*' <<<"$output" | head -1)"
  timing="$(grep -o 'kernel: .*' <<<"$output" | head -1)"
  graph="$(grep -o 'decode step: .*' <<<"$output" | head -1)"
  printf '%-4s %-42s %s %s %s\n' "$status" "$path" "$worst" "$timing" "$graph"
  [ "$status" = PASS ] || sed 's/^/     | /' <<<"$output" | tail -15
done < "$bundles/${LIST:-list.txt}"
echo "gpu-check: $pass passed, $fail failed"
[ "$fail" = 0 ]
