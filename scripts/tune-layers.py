#!/usr/bin/env python3
"""Tunes the layers of the committed tuning database (bench/tuning/).

usage: scripts/tune-layers.py compile BUILD_BIN WORKROOT   (here, with MLIR)
       scripts/tune-layers.py time BUILD_BIN WORKROOT DB   (on the GPU machine)
       scripts/tune-layers.py carry WORKROOT CARRYROOT     (manifests, cubins, plans)
       scripts/tune-layers.py tuned BUILD_BIN DB OUTROOT   (here: OUTROOT/<layer>/tuned,
                                                           each checked to dispatch
                                                           every entry's shape to
                                                           its winner, and beside it
                                                           OUTROOT/<layer>/untuned)
       scripts/tune-layers.py check BUILD_BIN ROOT         (on the GPU machine: ROOT/<layer>/
                                                           tuned against the float64
                                                           reference at small shapes, and
                                                           timed against ROOT/<layer>/untuned
                                                           at the benchmark shapes)

The layers are those of ../shared/bench/shapes.py (S = N / 4 angles, one
group; MIMO with half-split pairing and no angle wrap, as the official
module runs them) and two state sizes the official kernels do not ship:
N = 96 with P = 48, and N = 192 with P = 96; and the decode steps of
shapes.py (N = 64, 128, 256). Each prefill layer is tuned by mamba3-tune over
its default shapes (b in 1..16 x L in 512..16384, b x L <= 32768) and the
compiler's variants (chunk 32 / 64; one-pass chunked with each matmul engine
and Q/K buffering the tiles allow, and chunk-parallel with 0 (at launch), 2
or 4 chunks per block); each step over b in 1..256 and block sizes 128..1024.
"""
import os, shutil, subprocess, sys

SISO = "--heads {h} --groups 1 --state {n} --headdim {p} --angles {s} --dtype bf16"
MIMO = SISO + " --mimo --rank {r} --no-wrap-angle --pairing half_split"
LAYERS = {
    "siso_h32_n64_p64": SISO.format(h=32, n=64, p=64, s=16),
    "siso_h32_n128_p64": SISO.format(h=32, n=128, p=64, s=32),
    "siso_h32_n256_p64": SISO.format(h=32, n=256, p=64, s=64),
    "siso_h64_n128_p64": SISO.format(h=64, n=128, p=64, s=32),
    "mimo_h32_n128_p64_r4": MIMO.format(h=32, n=128, p=64, s=32, r=4),
    "mimo_h32_n64_p64_r4": MIMO.format(h=32, n=64, p=64, s=16, r=4),
    "mimo_h32_n128_p64_r2": MIMO.format(h=32, n=128, p=64, s=32, r=2),
    # State sizes the official kernels do not ship.
    "siso_h32_n96_p48": SISO.format(h=32, n=96, p=48, s=24),
    "siso_h32_n192_p96": SISO.format(h=32, n=192, p=96, s=48),
    # Decode steps (the token-sequential kernel at each block size).
    "step_h32_n64_p64": SISO.format(h=32, n=64, p=64, s=16) + " --step",
    "step_h32_n128_p64": SISO.format(h=32, n=128, p=64, s=32) + " --step",
    "step_h32_n256_p64": SISO.format(h=32, n=256, p=64, s=64) + " --step",
}

# The benchmark shapes (b, L) of each layer in ../shared/bench/shapes.py; the
# new state sizes at a short and a long batch.
BENCH = {
    "siso_h32_n64_p64": [(8, 4096)],
    "siso_h32_n128_p64": [(8, 4096), (1, 16384), (1, 2048), (4, 4096)],
    "siso_h32_n256_p64": [(8, 4096)],
    "siso_h64_n128_p64": [(16, 2048)],
    "mimo_h32_n128_p64_r4": [(8, 2048), (8, 4096), (1, 16384)],
    "mimo_h32_n64_p64_r4": [(8, 4096)],
    "mimo_h32_n128_p64_r2": [(8, 4096)],
    "siso_h32_n96_p48": [(1, 4096), (8, 4096)],
    "siso_h32_n192_p96": [(1, 4096), (8, 4096)],
    "step_h32_n64_p64": [(64, 1)],
    "step_h32_n128_p64": [(16, 1), (64, 1), (256, 1)],
    "step_h32_n256_p64": [(64, 1)],
}
# Small shapes in different buckets, checked against the reference.
CHECK = [(1, 700), (5, 520)]
STEP_CHECK = [(1, 1), (5, 1), (100, 1)]


def variant_name(v):
    """TunedVariant::name() of a database variant."""
    if v["schedule"] == "tokens":
        return "tokens-t%d" % v["block_size"]
    name = "%s-c%d" % (v["schedule"], v["chunk"])
    if v["schedule"] == "chunk-parallel":
        name += "-k%d" % v["chunks_per_block"] if v["chunks_per_block"] else "-kauto"
    if v["mma"] != "auto":
        name += "-" + v["mma"]
    if v["qk_buffers"]:
        name += "-qk%d" % v["qk_buffers"]
    return name

mode, argv = sys.argv[1], sys.argv[2:]
# LAYERS="a b": only those layers.
only = os.environ.get("LAYERS", "").split()
if mode == "check":
    import re
    bin_dir, root = argv
    run = os.path.join(bin_dir, "mamba3-run")
    failed = 0
    for name in LAYERS:
        if only and name not in only:
            continue
        tuned = os.path.join(root, name, "tuned")
        step = name.startswith("step_")
        # A step is one token: its launch takes the batch alone.
        def shape(b, L):
            return ["--batch", str(b)] + ([] if step else ["--seqlen", str(L)])
        for b, L in (STEP_CHECK if step else CHECK):
            r = subprocess.run([run, "--target", "sm_90a", "--bundle", tuned, "--random", "--seed", "7"] +
                               shape(b, L), capture_output=True, text=True)
            worst = re.search(r"worst relative L2 error \S+", r.stdout)
            print("%s %-22s b=%d L=%d %s" % ("PASS" if r.returncode == 0 else "FAIL", name, b, L,
                                           worst.group(0) if worst else r.stderr.strip()[-300:]), flush=True)
            failed += r.returncode != 0
        for b, L in BENCH[name]:
            us = {}
            for kind in ("untuned", "tuned"):
                r = subprocess.run([run, "--target", "sm_90a", "--bundle", os.path.join(root, name, kind),
                                    "--random", "--time-only"] + shape(b, L),
                                   capture_output=True, text=True)
                # A step's CUDA-graph replay (how a decode loop runs it), else
                # the event-timed launch.
                m = re.search(r"([0-9.]+) us per CUDA-graph replay", r.stdout) or \
                    re.search(r"kernel: ([0-9.]+) us", r.stdout)
                us[kind] = float(m.group(1)) if m else float("nan")
            print("TIME %-22s b=%d L=%d untuned %.1f us tuned %.1f us ratio %.3f" % (
                name, b, L, us["untuned"], us["tuned"], us["tuned"] / us["untuned"]), flush=True)
    sys.exit(1 if failed else 0)
if mode == "carry":
    root, carry = argv
    shutil.rmtree(carry, ignore_errors=True)
    for dirpath, _, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for f in files:
            if (f in ("manifest.json", "plan.json") or f.endswith(".cubin")) and \
                    not rel.startswith(".."):
                os.makedirs(os.path.join(carry, rel), exist_ok=True)
                shutil.copy2(os.path.join(dirpath, f), os.path.join(carry, rel, f))
    sys.exit(0)
if mode == "tuned":
    import json, re
    bin_dir, db, out = argv
    entries = json.load(open(db))["entries"]
    for name, flags in LAYERS.items():
        if only and name not in only:
            continue
        d = os.path.join(out, name, "tuned")
        step = "--step" in flags.split()
        # The untuned bundle beside it: what `check` times the tuned one against.
        for bundle, tuning in ((d, ["--tuning-db", db]), (os.path.join(out, name, "untuned"), [])):
            subprocess.run([os.path.join(bin_dir, "mamba3-compile"), "--batch", "0"] +
                           ([] if step else ["--seqlen", "0"]) +
                           ["--target", "sm_90a", "-o", bundle] + tuning + flags.split(),
                           check=True, stdout=subprocess.DEVNULL)
        config = json.load(open(os.path.join(d, "manifest.json")))["config_string"]
        key = re.sub(r";chunk=\d+$", "", config)
        mine = [e for e in entries if e["config"] == key]
        assert mine, "no entries for " + name
        for e in mine:
            b, L = e["shape"]
            plan = subprocess.run([os.path.join(bin_dir, "mamba3-run"), "--explain", "--bundle", d,
                                   "--batch", str(b), "--seqlen", str(L)],
                                  check=True, capture_output=True, text=True).stdout
            v = e["best"]
            rank = int(re.search(r"rank=(\d+)", key).group(1))
            want = variant_name(v)
            # A length of whole chunks runs the winner's full-chunk twin.
            if not step and L % (v["chunk"] // rank) == 0:
                want += "-full-chunks"
            got = re.search(r"runs variant (\S+):", plan)
            # A bundle of one variant (every bucket has the same winner)
            # names none: its only kernel is the winner's.
            if len({variant_name(x["best"]) for x in mine}) == 1 and step:
                assert got is None or got.group(1) == want, (name, b, L, want, plan)
            else:
                assert got and got.group(1) == want, (name, b, L, want, plan)
        print("tuned %s: %d entries dispatch to their winners (or their full-chunk twins)" % (name, len(mine)), flush=True)
    sys.exit(0)
bin_dir, root = argv[:2]
tune = os.path.join(bin_dir, "mamba3-tune")
for name, flags in LAYERS.items():
    if only and name not in only:
        continue
    work = os.path.join(root, name)
    if mode == "compile":
        cmd = [tune, "compile"] + flags.split() + ["-o", work]
    else:
        cmd = [tune, "time", work, "--db", argv[2], "--warmup", "2", "--repeats", "10"]
    print("+", " ".join(cmd), flush=True)
    if subprocess.run(cmd).returncode != 0:
        sys.exit("tune-layers: %s failed" % name)
