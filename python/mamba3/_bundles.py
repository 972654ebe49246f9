"""Where a layer configuration's bundle comes from.

On a machine with the compiler (mamba3-compile: $MAMBA3_COMPILE, the PATH,
or the build tree of this checkout) a missing bundle is compiled on first
use into the cache ($MAMBA3_CACHE_DIR, else ~/.cache/mamba3/bundles), in a
folder named by the hash of the compile flags and the compiler binary, so
later processes reuse it. Without the compiler, bundles are looked up in
the folders of $MAMBA3_BUNDLE_DIR (':'-separated): a folder named by that
hash, else any bundle whose manifest has the same configuration (for a call
that drops the final states, one that writes them serves too).

GPU bundles are compiled for the call's batch and length unless
$MAMBA3_GPU_SHAPES is "launch": then one bundle per layer takes every batch
and length (its kernel variants chosen per launch), so a new shape compiles
nothing. $MAMBA3_TUNING_DB names a tuning database of mamba3-tune that GPU
compiles read (`--tuning-db`): its winners become the bundle's variants.
"""
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading

from ._runtime import Bundle, Mamba3Error


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What a bundle is compiled for (the manifest's config, plus kind and target)."""
    target: str            # "cpu" or "sm_90a"
    step: bool
    batch: int             # -1: dynamic (CPU bundles)
    seqlen: int            # -1: dynamic; ignored by steps
    heads: int
    groups: int
    state: int
    headdim: int
    angles: int
    rank: int = 1
    mimo: bool = False
    has_d: bool = True
    has_z: bool = True
    init: bool = False
    final_states: bool = True  # False: the kernel writes out only
    per_rank_outputs: bool = False  # MIMO without MIMO_Out: out (b, L, R, H, P)
    varlen: bool = False
    pairing: str = "adjacent"
    wrap_angle: bool = True
    rmsnorm: bool = False
    norm_eps: float = 1e-5
    chunk: int = 64
    # Element types ("f32", "bf16" or "f16") the kernel reads Trap, the biases and the k/v states in.
    trap_dtype: str = "f32"
    bias_dtype: str = "f32"
    k_state_dtype: str = "f32"
    v_state_dtype: str = "f32"

    gpu_dtype: str = "bf16"  # the GPU kernels' data type: "bf16" or "f16" (CPU kernels run f32)
    # GPU: a tuning database for mamba3-compile --tuning-db, and its digest (part of the cache key).
    tuning_db: str = ""
    tuning_db_digest: str = ""

    @property
    def dtype(self):
        return "f32" if self.target == "cpu" else self.gpu_dtype

    def flags(self):
        dim = lambda v: "?" if v < 0 else str(v)
        f = ["--target", self.target, "--dtype", self.dtype, "--batch", dim(self.batch)]
        if not self.step:
            f += ["--seqlen", dim(self.seqlen)]
        f += ["--heads", str(self.heads), "--groups", str(self.groups), "--state", str(self.state),
              "--headdim", str(self.headdim), "--angles", str(self.angles), "--rank", str(self.rank),
              "--pairing", self.pairing]
        if self.target == "cpu":
            # The GPU compiler chooses the kernel's chunk itself.
            f += ["--chunk", str(self.chunk)]
        for flag, on in (("--mimo", self.mimo), ("--no-d", not self.has_d), ("--no-z", not self.has_z),
                         ("--no-wrap-angle", not self.wrap_angle), ("--varlen", self.varlen and not self.step),
                         ("--step", self.step), ("--init", self.init and not self.step),
                         ("--no-final-states", not self.final_states),
                         ("--per-rank-outputs", self.per_rank_outputs)):
            if on:
                f.append(flag)
        if self.rmsnorm:
            f += ["--rmsnorm", "--norm-eps", repr(float(self.norm_eps))]
        for flag, dtype in self._argument_dtypes():
            if dtype != "f32":  # the default; the keys of f32 bundles stay as they were
                f += [f"--{flag}", dtype]
        if self.tuning_db and self.target != "cpu":
            f += ["--tuning-db", self.tuning_db]
        return f

    def _argument_dtypes(self):
        return (("trap-dtype", self.trap_dtype), ("bias-dtype", self.bias_dtype),
                ("k-state-dtype", self.k_state_dtype), ("v-state-dtype", self.v_state_dtype))

    def matches(self, manifest):
        """True when a bundle's manifest serves this spec."""
        c = manifest.get("config", {})
        kind = "step" if self.step else "scan"
        if manifest.get("target") != self.target or manifest.get("kind") != kind:
            return False
        want = dict(heads=self.heads, groups=self.groups, state=self.state, headdim=self.headdim,
                    angles=self.angles, rank=self.rank, mimo=self.mimo, has_d=self.has_d, has_z=self.has_z,
                    varlen=self.varlen and not self.step, rmsnorm=self.rmsnorm, pairing=self.pairing,
                    wrap_angle=self.wrap_angle, dtype=self.dtype, state_dtype="f32",
                    broadcast_angles=False, rule="trapezoid")
        if not self.step:
            want["has_initial_state"] = self.init
        if c.get("final_states", True) != self.final_states or \
                c.get("per_rank_outputs", False) != self.per_rank_outputs:
            return False
        if any(c.get(k) != v for k, v in want.items()):
            return False
        if any(c.get(flag.replace("-", "_"), "f32") != dtype for flag, dtype in self._argument_dtypes()):
            return False
        if self.rmsnorm and abs(c.get("norm_eps", 0) - self.norm_eps) > 1e-6 * self.norm_eps:
            return False
        if c.get("batch") not in (-1, self.batch):
            return False
        return self.step or c.get("seqlen") in (-1, self.seqlen)

    def describe(self):
        return " ".join(self.flags())


def gpu_shapes_at_launch():
    """$MAMBA3_GPU_SHAPES: "static" (default: a GPU bundle per batch and length) or "launch"."""
    mode = os.environ.get("MAMBA3_GPU_SHAPES", "static")
    if mode not in ("static", "launch"):
        raise Mamba3Error(f"MAMBA3_GPU_SHAPES is '{mode}'; use 'static' (a GPU bundle per batch and "
                          f"length) or 'launch' (one bundle per layer for every shape)")
    return mode == "launch"


_tuning_db_digests = {}


def tuning_db():
    """$MAMBA3_TUNING_DB as (absolute path, sha256 of its contents), or ("", ""). The digest is computed once
    per version of the file (its size and mtime), not on every call."""
    path = os.environ.get("MAMBA3_TUNING_DB", "")
    if not path:
        return "", ""
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        digest = _tuning_db_digests.get(key)
        if digest is None:
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:20]
            _tuning_db_digests[key] = digest
    except OSError as e:
        raise Mamba3Error(f"MAMBA3_TUNING_DB={path} cannot be read ({e}); point it at a tuning database "
                          f"of mamba3-tune, or unset it") from None
    return key[0], digest


def compiler():
    """The mamba3-compile program, or None."""
    env = os.environ.get("MAMBA3_COMPILE")
    if env:
        return env if os.path.exists(env) else None
    found = shutil.which("mamba3-compile")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    local = os.path.join(os.path.dirname(os.path.dirname(here)), "build", "bin", "mamba3-compile")
    return local if os.path.exists(local) else None


def cache_dir():
    return os.environ.get("MAMBA3_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "mamba3",
                                                               "bundles")


def bundle_key(spec, compiler_path=None):
    """Folder name of a spec's bundle: the flags, the tuning database's contents and the compiler that
    builds them, hashed."""
    h = hashlib.sha256(" ".join(spec.flags()).encode())
    if spec.tuning_db_digest:
        h.update(f"|{spec.tuning_db_digest}".encode())
    if compiler_path:
        st = os.stat(compiler_path)
        h.update(f"|{os.path.realpath(compiler_path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"{spec.target}-{'step' if spec.step else 'scan'}-{h.hexdigest()[:20]}"


def _search_dirs(spec, roots):
    key = bundle_key(spec)
    for root in roots:
        d = os.path.join(root, key)
        if os.path.exists(os.path.join(d, "manifest.json")):
            yield d
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            d = os.path.join(root, name)
            m = os.path.join(d, "manifest.json")
            if d != os.path.join(root, key) and os.path.exists(m):
                try:
                    with open(m) as f:
                        if spec.matches(json.load(f)):
                            yield d
                except (OSError, ValueError):
                    continue


def _compile(spec, compiler_path, out_dir):
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".compiling-", dir=os.path.dirname(out_dir))
    cmd = [compiler_path] + spec.flags() + ["-o", tmp]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise Mamba3Error(f"mamba3-compile failed for this configuration ({spec.describe()}):\n"
                              f"{p.stderr.strip()}")
        try:
            os.rename(tmp, out_dir)  # atomic: another process may have won the race
        except OSError:
            if not os.path.exists(os.path.join(out_dir, "manifest.json")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_loaded = {}
_loaded_lock = threading.Lock()


def get_bundle(spec, device_index=0):
    """The loaded bundle for `spec` on `device_index` (compiled or found as the module doc says)."""
    k = (spec, device_index)
    b = _loaded.get(k)
    if b is not None:
        return b
    with _loaded_lock:
        b = _loaded.get(k)
        if b is not None:
            return b
        roots = [r for r in os.environ.get("MAMBA3_BUNDLE_DIR", "").split(":") if r]
        directory = next(_search_dirs(spec, roots), None)
        served = spec
        if directory is None and not spec.final_states:
            # A bundle that also writes the final states serves a call that drops them.
            with_states = dataclasses.replace(spec, final_states=True)
            directory = next(_search_dirs(with_states, roots), None)
            if directory is not None:
                served = with_states
        if directory is None:
            comp = compiler()
            if comp is None:
                where = " or ".join(roots) if roots else "no MAMBA3_BUNDLE_DIR"
                raise Mamba3Error(
                    f"no bundle for this configuration in {where}, and no mamba3-compile to build one.\n"
                    f"  configuration: {spec.describe()}\n"
                    f"  fix: on a machine with MLIR run `mamba3-compile {spec.describe()} -o DIR/"
                    f"{bundle_key(spec)}`, copy DIR here and set MAMBA3_BUNDLE_DIR=DIR "
                    f"(or set MAMBA3_COMPILE to the compiler)")
            directory = os.path.join(cache_dir(), bundle_key(spec, comp))
            if not os.path.exists(os.path.join(directory, "manifest.json")):
                _compile(spec, comp, directory)
        b = Bundle(directory, device_index)
        if not served.matches(b.manifest):
            raise Mamba3Error(f"{directory}: the bundle's manifest does not match the configuration "
                              f"({spec.describe()}); remove it so that it is rebuilt")
        _loaded[k] = b
        return b
