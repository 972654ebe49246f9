#!/usr/bin/env bash
# Compiles every bundle of the GPU check with this tree's mamba3-compile and
# with BASE's (a commit), and compares their PTX file by file: the check
# that a refactoring of the kernel generation changed no kernel.
#
# usage: scripts/ptx-identity.sh BASE [--dynamic]
#
# BASE is built in a git worktree under ${PTX_WORK:-/tmp/mamba3-ptx-identity}
# (kept, so a second run rebuilds only what changed); both compilers get the
# bundle list of *this* tree's scripts/gpu-bundles.py, so the two sides
# compile the same configurations (a flag BASE does not know fails there and
# is reported). --dynamic compiles the bundles that take batch and length at
# launch instead of the static ones. Prints one line per differing or
# missing PTX file and a summary; exits 1 when any differ.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
base="${1:?usage: scripts/ptx-identity.sh BASE [--dynamic]}"
shift
mode=()
[ "${1:-}" = "--dynamic" ] && mode=(--dynamic)
work="${PTX_WORK:-/tmp/mamba3-ptx-identity}"
golden="$root/../shared/golden/mamba3_cases"
sha="$(git -C "$root" rev-parse --verify "$base^{commit}")" || exit 2
mkdir -p "$work"

# BASE's compiler.
tree="$work/base-$sha"
if [ ! -d "$tree" ]; then
  git -C "$root" worktree add --detach "$tree" "$sha" >/dev/null || exit 2
fi
# Only mamba3-compile is needed (this tree's Python environment stands in
# for the worktree's, which has none).
build_compiler() { # SOURCE BUILD LOG
  launcher=()
  command -v ccache >/dev/null &&
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  { [ -f "$2/build.ninja" ] ||
      cmake -G Ninja -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release \
        -DMAMBA3_PYTHON="$root/.venv/bin/python" "${launcher[@]}"; } >"$3" 2>&1 &&
    cmake --build "$2" --target mamba3-compile >>"$3" 2>&1
}
build_compiler "$tree" "$tree/build" "$work/base-build.log" || {
  echo "ptx-identity: building $base failed (see $work/base-build.log)"
  exit 2
}
build_compiler "$root" "$root/build" "$work/head-build.log" || {
  echo "ptx-identity: building this tree failed (see $work/head-build.log)"
  exit 2
}
# A copy of this tree's compiler (it links the project's libraries
# statically), so that build/ may be rebuilt while the bundles compile.
cp "$root/build/bin/mamba3-compile" "$work/head-mamba3-compile" || exit 2

# BASE's bundles are kept with a stamp of what made them (the commit, the
# mode and this tree's bundle list), so a second check of the same base
# compiles only this tree's side.
kind=static
[ ${#mode[@]} -gt 0 ] && kind=dynamic
stamp="$sha $kind $(sha1sum "$root/scripts/gpu-bundles.py" | cut -d' ' -f1)"
# One folder per mode, so the static and the dynamic check keep BASE's
# bundles each.
out="$work/$kind"
mkdir -p "$out"
for side in base head; do
  if [ "$side" = base ]; then compiler="$tree/build/bin/mamba3-compile"
  else compiler="$work/head-mamba3-compile"; fi
  if [ "$side" = base ] && [ -d "$out/base" ] &&
     [ "$(cat "$out/base.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "ptx-identity: the $side bundles of an earlier run ($out/base) are current"
    continue
  fi
  rm -rf "$out/$side" "$out/$side-cubin" "$out/$side.stamp"
  echo "ptx-identity: compiling the bundles with the $side compiler"
  python3 "$root/scripts/gpu-bundles.py" "${mode[@]}" "$compiler" "$golden" \
    "$out/$side" >"$out/$side.log" 2>&1 || {
    echo "ptx-identity: the $side compiler failed (see $out/$side.log)"
    exit 2
  }
  [ "$side" = base ] && echo "$stamp" >"$out/base.stamp"
done

same=0 differ=0
while IFS= read -r -d '' file; do
  rel="${file#"$out/head/"}"
  if [ ! -f "$out/base/$rel" ]; then
    echo "only in this tree: $rel"; differ=$((differ + 1))
  elif cmp -s "$file" "$out/base/$rel"; then
    same=$((same + 1))
  else
    echo "differs: $rel"; differ=$((differ + 1))
  fi
done < <(find "$out/head" -name '*.ptx' -print0 | sort -z)
while IFS= read -r -d '' file; do
  rel="${file#"$out/base/"}"
  [ -f "$out/head/$rel" ] || { echo "only in $base: $rel"; differ=$((differ + 1)); }
done < <(find "$out/base" -name '*.ptx' -print0 | sort -z)
echo "ptx-identity: $same PTX files identical to $base ($sha), $differ differ or are missing"
[ "$differ" = 0 ]
