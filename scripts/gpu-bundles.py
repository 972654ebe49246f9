#!/usr/bin/env python3
"""Compiles the sm_90a bundles of the GPU check (here, where MLIR is).

usage: scripts/gpu-bundles.py [--dynamic] [--only LIST] MAMBA3_COMPILE GOLDEN_BASE OUTDIR

The GPU machine has no MLIR, so every configuration the check runs is
compiled ahead into OUTDIR. By default each bundle is compiled for the one
shape it runs; with --dynamic every bundle takes batch and length at launch
(`--batch 0 --seqlen 0`), the list passes the launch shape to mamba3-run, and
each benchmark shape is compiled both ways (bench/<name> static, and
bench/<name>_dyn dynamic with the schedule the static compile chose) so the
two can be timed side by side:
  golden/<case>        each golden case as a bf16 scan (and <case>_step for
                       one-token cases); SISO and MIMO prefill cases also
                       under both chunked schedules, and chunk-parallel with
                       chunks of 16 rank-1 terms (several chunks, a partial
                       last), one or three chunks per block (_span3)
  sweep/n<N>_p<P>_l<L> random SISO configs, b=2, H=4, G=2, bf16, init states
                       (auto: chunk-parallel from two chunks on, two chunks
                       per block at L=4096); _seq: the one-pass chunked
                       schedule; MIMO R=4 also chunk-parallel with three
                       chunks per block
  sweep/step_n<N>_p<P> random decode steps (the decode-step kernel), and
                       MIMO, odd N on the token-sequential kernel;
                       sweep/step_variants/...: the step kernel's rotary
                       paths, rules and options
  sweep/variants/...   half-split pairing, Euler rule, no angle wrap, no D/Z,
                       angles shared by all heads, bf16 state
  sweep/varlen/...     packed variable-length batches (random lengths, the
                       first sequence one token) on the chunked and token
                       kernels: SISO and MIMO, with and without states
  sweep/rmsnorm/...    the per-head RMSNorm on every kernel
  bench/<name>         the benchmark shapes of DESIGN.md, and bench/model_* at
                       the model's S = N / 4 (MIMO half-split), also at
                       L = 4000 (not whole chunks) (timed, not checked)
--only LIST compiles only the bundles a list.txt of an earlier run names
(e.g. those with variants, after a change to them). OUTDIR/list.txt names
each bundle with how scripts/gpu-check.sh runs it;
OUTDIR/golden-data holds the golden files and OUTDIR-cubin the manifests and
cubins only (what the GPU machine needs, under the 64 MB carry limit).
"""
import json, os, shutil, subprocess, sys

argv = sys.argv[1:]
dynamic = argv[:1] == ["--dynamic"]
if dynamic:
    argv = argv[1:]
only = None
if argv[:1] == ["--only"]:
    only = {line.split()[1] for line in open(argv[1]) if line.strip()}
    argv = argv[2:]
compile_bin, golden_base, out = argv[:3]
meta = json.load(open(golden_base + ".json"))
lines = []


def compile_to(path, args):
    d = os.path.join(out, path)
    subprocess.run([compile_bin, "--target", "sm_90a", "--dtype", "bf16", "-o", d] + args,
                   check=True, stdout=subprocess.DEVNULL)
    return d


def launch_shape(args):
    """args with batch and length dynamic, and the launch flags for them."""
    compiled, shape = list(args), []
    for flag in ("--batch", "--seqlen"):
        if flag in compiled:
            i = compiled.index(flag)
            shape += [flag, compiled[i + 1]]
            compiled[i + 1] = "0"
    return compiled, shape


def build(path, args, mode):
    if only is not None and path not in only and path + "_dyn" not in only:
        return
    if not dynamic:
        compile_to(path, args)
        lines.append("%s %s" % (mode, path))
        return
    compiled, shape = launch_shape(args)
    if mode == "bench":
        # Static and dynamic, the dynamic one on the static one's schedule.
        d = compile_to(path, args)
        lines.append("%s %s" % (mode, path))
        schedule = json.load(open(os.path.join(d, "manifest.json")))["schedule"]
        if "--schedule" not in compiled:
            compiled += ["--schedule", schedule]
        path += "_dyn"
    compile_to(path, compiled)
    # Golden cases carry their own shapes.
    lines.append(" ".join([mode, path] + ([] if mode.startswith("golden:") else shape)))


for case in meta["cases"]:
    p = case["params"]
    args = ["--batch", str(p["b"]), "--heads", str(p["h"]), "--groups", str(p["hqk"]),
            "--state", str(p["N"]), "--headdim", str(p["P"]), "--angles", str(p["S"])]
    if case["kind"] == "mimo":
        args += ["--mimo", "--rank", str(p["R"]), "--no-wrap-angle"]
    if not p.get("has_D", True):
        args.append("--no-d")
    if not p.get("has_Z", True):
        args.append("--no-z")
    build("golden/" + case["name"],
          args + ["--seqlen", str(p["L"])] + (["--init"] if p["init"] else []),
          "golden:" + case["name"])
    if p["L"] == 1:
        build("golden/%s_step" % case["name"], args + ["--step"], "golden:" + case["name"])
    else:
        prefill = args + ["--seqlen", str(p["L"])] + (["--init"] if p["init"] else [])
        for schedule in ("chunked", "chunk-parallel"):
            build("golden/%s_%s" % (case["name"], schedule),
                  prefill + ["--schedule", schedule], "golden:" + case["name"])
        build("golden/%s_chunk-parallel_c16" % case["name"],
              prefill + ["--schedule", "chunk-parallel", "--chunk", "16"],
              "golden:" + case["name"])
        # Blocks walking spans of three chunks (the last span shorter).
        build("golden/%s_chunk-parallel_c16_span3" % case["name"],
              prefill + ["--schedule", "chunk-parallel", "--chunk", "16",
                         "--chunks-per-block", "3"],
              "golden:" + case["name"])

for n in (16, 32, 64, 96, 128, 256):
    for pd in (32, 64, 128):
        for l in (1, 100, 4096):
            sweep = ["--batch", "2", "--seqlen", str(l), "--heads", "4", "--groups", "2",
                     "--state", str(n), "--headdim", str(pd),
                     "--angles", str(min(16, n // 2)), "--init"]
            build("sweep/n%d_p%d_l%d" % (n, pd, l), sweep, "random")
            if l > 64:
                build("sweep/n%d_p%d_l%d_seq" % (n, pd, l), sweep + ["--schedule", "chunked"],
                      "random")

# Decode steps and the other layers of the token-sequential kernel; the
# decode steps also with the states updated in place.
for n in (16, 32, 64, 96, 128, 256):
    for pd in (32, 64, 128):
        build("sweep/step_n%d_p%d" % (n, pd),
              ["--batch", "3", "--heads", "4", "--groups", "2", "--state", str(n),
               "--headdim", str(pd), "--angles", str(min(16, n // 2)), "--step"], "random")
        if only is None or "sweep/step_n%d_p%d" % (n, pd) in only:
            lines.append("random-in-place sweep/step_n%d_p%d" % (n, pd) +
                         (" --batch 3" if dynamic else ""))
for name, flags in (
        ("step_bf16_state", ["--step", "--state", "128", "--headdim", "64",
                             "--state-dtype", "bf16"]),
        ("mimo_step_bf16_state", ["--step", "--mimo", "--rank", "4", "--state", "64",
                                  "--headdim", "32", "--no-wrap-angle", "--state-dtype", "bf16"]),
        ("step_broadcast_angles", ["--step", "--state", "128", "--headdim", "64",
                                   "--broadcast-angles"]),
        ("tokens_broadcast_angles", ["--seqlen", "50", "--state", "64", "--headdim", "32",
                                     "--init", "--schedule", "tokens", "--broadcast-angles"]),
        ("mimo_step_r4_n128_p64", ["--step", "--mimo", "--rank", "4", "--state", "128",
                                   "--headdim", "64", "--no-wrap-angle"]),
        ("mimo_r2_n64_p32_l100", ["--seqlen", "100", "--mimo", "--rank", "2", "--state", "64",
                                  "--headdim", "32", "--init", "--no-wrap-angle"]),
        ("tokens_n30_p24_l50", ["--seqlen", "50", "--state", "30", "--headdim", "24",
                                "--init", "--schedule", "tokens"]),
        # Raw q/k rows of 40 and 36 bytes: 8- and 4-byte cp.async pieces;
        # odd N: the rotation reads global memory itself.
        ("chunked_n20_p32_l150", ["--seqlen", "150", "--state", "20", "--headdim", "32",
                                  "--init", "--schedule", "chunked"]),
        ("chunked_n18_p32_l150", ["--seqlen", "150", "--state", "18", "--headdim", "32",
                                  "--init", "--schedule", "chunked"]),
        ("chunked_n17_p32_l150", ["--seqlen", "150", "--state", "17", "--headdim", "32",
                                  "--init", "--schedule", "chunked"])):
    build("sweep/" + name, ["--batch", "2", "--heads", "4", "--groups", "2",
                            "--angles", "8"] + flags, "random")

# The decode-step kernel's paths (StepKernel.cpp): a column's rotary partner
# in the thread's own run of four (adjacent pairs), in another run
# (half-split, N/2 a multiple of 4), or read alone (half-split N = 20, odd N
# in runs of one); the rules and options a step can take.
step = ["--batch", "3", "--heads", "4", "--groups", "2", "--angles", "8", "--step"]
for name, flags in (
        ("half_split_n64", ["--state", "64", "--init", "--pairing", "half_split"]),
        ("half_split_n20", ["--state", "20", "--init", "--pairing", "half_split"]),
        ("n17", ["--state", "17", "--init"]),
        ("n18_no_init", ["--state", "18"]),
        ("euler_no_wrap", ["--state", "64", "--init", "--rule", "euler", "--no-wrap-angle"]),
        ("no_d_z", ["--state", "64", "--init", "--no-d", "--no-z"]),
        ("mimo_r4_n64_half_split", ["--state", "64", "--init", "--mimo", "--rank", "4",
                                    "--pairing", "half_split"]),
        ("mimo_r3_n48_no_init", ["--state", "48", "--mimo", "--rank", "3"]),
        # Row counts per thread that are not powers of two (y's transposing
        # reduction pads them), with the RMSNorm.
        ("n64_p48_rmsnorm", ["--state", "64", "--headdim", "48", "--init", "--rmsnorm"]),
        ("n30_p24", ["--state", "30", "--headdim", "24", "--init"])):
    if "--headdim" not in flags:
        flags = ["--headdim", "32"] + flags
    build("sweep/step_variants/" + name, step + flags, "random")

# MIMO on the chunked kernels: ranks x state sizes x head dims (issue 5's
# sweep), auto's schedule (chunk-parallel here); the one-pass kernel for R=4.
for r in (1, 2, 3, 4, 8):
    for n in (16, 48, 64, 128, 256):
        for pd in (24, 64, 128):
            mimo = ["--batch", "2", "--seqlen", "150", "--heads", "4", "--groups", "2",
                    "--state", str(n), "--headdim", str(pd), "--angles", str(min(8, n // 2)),
                    "--mimo", "--rank", str(r), "--init", "--no-wrap-angle"]
            build("sweep/mimo_r%d_n%d_p%d" % (r, n, pd), mimo, "random")
            if r == 4:
                build("sweep/mimo_r%d_n%d_p%d_seq" % (r, n, pd), mimo + ["--schedule", "chunked"],
                      "random")
                build("sweep/mimo_r%d_n%d_p%d_span3" % (r, n, pd),
                      mimo + ["--schedule", "chunk-parallel", "--chunks-per-block", "3"],
                      "random")
build("sweep/mimo_r4_n64_p64_half_split",
      ["--batch", "2", "--seqlen", "150", "--heads", "4", "--groups", "2", "--state", "64",
       "--headdim", "64", "--angles", "16", "--mimo", "--rank", "4", "--init", "--no-wrap-angle",
       "--pairing", "half_split"], "random")

variant = ["--batch", "2", "--seqlen", "300", "--heads", "4", "--groups", "2", "--state", "64",
           "--headdim", "64", "--angles", "16", "--init"]
for name, extra in (("half_split", ["--pairing", "half_split"]), ("euler", ["--rule", "euler"]),
                    ("no_wrap", ["--no-wrap-angle"]), ("no_d_z", ["--no-d", "--no-z"]),
                    ("broadcast_angles", ["--broadcast-angles"]),
                    ("bf16_state", ["--state-dtype", "bf16"]),
                    ("mimo_broadcast_angles", ["--broadcast-angles", "--mimo", "--rank", "4",
                                               "--no-wrap-angle"]),
                    ("no_init", None)):
    flags = [f for f in variant if f != "--init"] if extra is None else variant + extra
    for schedule in ("chunked", "chunk-parallel"):
        build("sweep/variants/%s_%s" % (name, schedule), flags + ["--schedule", schedule],
              "random")

# Variable-length batches: sequences of random lengths packed into one row,
# so most chunks straddle no boundary and the lengths are not multiples of
# the chunk.
for name, flags in (
        ("siso_n64_p64", ["--state", "64", "--headdim", "64", "--angles", "16", "--init"]),
        ("siso_n128_p64", ["--state", "128", "--headdim", "64", "--angles", "16", "--init"]),
        ("siso_n256_p32", ["--state", "256", "--headdim", "32", "--angles", "16", "--init"]),
        ("siso_n96_p128_no_init", ["--state", "96", "--headdim", "128", "--angles", "16"]),
        ("siso_n64_p64_broadcast_angles_bf16_state",
         ["--state", "64", "--headdim", "64", "--angles", "16", "--init", "--broadcast-angles",
          "--state-dtype", "bf16"]),
        ("mimo_r2_n64_p64", ["--state", "64", "--headdim", "64", "--angles", "16", "--init",
                             "--mimo", "--rank", "2", "--no-wrap-angle"]),
        ("mimo_r4_n128_p64", ["--state", "128", "--headdim", "64", "--angles", "16", "--init",
                              "--mimo", "--rank", "4", "--no-wrap-angle"])):
    for seqs, tokens in ((5, 700), (12, 333)):
        for schedule in ("chunked", "tokens"):
            build("sweep/varlen/%s_s%d_l%d_%s" % (name, seqs, tokens, schedule),
                  ["--varlen", "--batch", str(seqs), "--seqlen", str(tokens), "--heads", "4",
                   "--groups", "2", "--schedule", schedule] + flags, "random")

# The per-head RMSNorm before the gate on every kernel.
norm = ["--batch", "2", "--heads", "4", "--groups", "2", "--state", "64", "--headdim", "64",
        "--angles", "16", "--rmsnorm"]
for name, flags in (
        ("siso_chunked", ["--seqlen", "300", "--init", "--schedule", "chunked"]),
        ("siso_chunk-parallel", ["--seqlen", "300", "--init", "--schedule", "chunk-parallel"]),
        ("siso_tokens", ["--seqlen", "100", "--init", "--schedule", "tokens"]),
        ("siso_no_d_eps", ["--seqlen", "300", "--no-d", "--norm-eps", "0.001"]),
        ("siso_step", ["--step"]),
        ("mimo_r4_chunked", ["--seqlen", "300", "--init", "--mimo", "--rank", "4",
                             "--no-wrap-angle", "--schedule", "chunked"]),
        ("mimo_r4_chunk-parallel", ["--seqlen", "300", "--init", "--mimo", "--rank", "4",
                                    "--no-wrap-angle", "--schedule", "chunk-parallel"]),
        ("mimo_r2_step", ["--step", "--mimo", "--rank", "2", "--no-wrap-angle"]),
        ("varlen_chunked", ["--varlen", "--seqlen", "333", "--init"])):
    build("sweep/rmsnorm/" + name, norm + flags, "random")

for n in (64, 128, 256):
    build("bench/prefill_b8_l4096_h32_n%d" % n,
          ["--batch", "8", "--seqlen", "4096", "--heads", "32", "--state", str(n),
           "--headdim", "64", "--angles", "16"], "bench")
build("bench/prefill_b1_l16384_h32_n128",
      ["--batch", "1", "--seqlen", "16384", "--heads", "32", "--state", "128",
       "--headdim", "64", "--angles", "16"], "bench")
build("bench/prefill_b16_l2048_h64_n128",
      ["--batch", "16", "--seqlen", "2048", "--heads", "64", "--state", "128",
       "--headdim", "64", "--angles", "16"], "bench")
# 8 sequences of random lengths packed into the tokens of b=8, L=4096.
build("bench/varlen_s8_l32768_h32_n128",
      ["--varlen", "--batch", "8", "--seqlen", "32768", "--heads", "32", "--state", "128",
       "--headdim", "64", "--angles", "16"], "bench")
# Angles shared by all heads (what the model produces): less to read.
build("bench/prefill_b8_l4096_h32_n128_broadcast_angles",
      ["--batch", "8", "--seqlen", "4096", "--heads", "32", "--state", "128",
       "--headdim", "64", "--angles", "16", "--broadcast-angles"], "bench")
# The schedule auto did not pick, for comparison.
build("bench/prefill_b1_l16384_h32_n128_chunked",
      ["--batch", "1", "--seqlen", "16384", "--heads", "32", "--state", "128",
       "--headdim", "64", "--angles", "16", "--schedule", "chunked"], "bench")
build("bench/prefill_b8_l4096_h32_n128_chunk-parallel",
      ["--batch", "8", "--seqlen", "4096", "--heads", "32", "--state", "128",
       "--headdim", "64", "--angles", "16", "--schedule", "chunk-parallel"], "bench")
mimo_bench = ["--heads", "32", "--state", "128", "--headdim", "64", "--angles", "16", "--mimo",
              "--rank", "4", "--no-wrap-angle"]
build("bench/mimo_prefill_r4_b8_l4096_h32_n128",
      ["--batch", "8", "--seqlen", "4096"] + mimo_bench, "bench")
# The model's shapes (S = N / 4 angles; MIMO half-split without angle wrap,
# as the official module runs them), also at a length that is not a whole
# number of chunks: there the dynamic bundle runs its bounded kernel, at
# L = 4096 its full-chunk twin.
for n, p, lengths in ((128, 64, (4096,)), (256, 64, (4096, 4000)), (192, 96, (4096,))):
    for l in lengths:
        build("bench/model_prefill_b8_l%d_h32_n%d_p%d" % (l, n, p),
              ["--batch", "8", "--seqlen", str(l), "--heads", "32", "--state", str(n),
               "--headdim", str(p), "--angles", str(n // 4)], "bench")
for r, lengths in ((4, (4096, 4000)), (2, (4096,))):
    for l in lengths:
        build("bench/model_mimo_prefill_r%d_b8_l%d_h32_n128" % (r, l),
              ["--batch", "8", "--seqlen", str(l), "--heads", "32", "--state", "128",
               "--headdim", "64", "--angles", "32", "--mimo", "--rank", str(r),
               "--no-wrap-angle", "--pairing", "half_split"], "bench")
for b in (1, 64):
    build("bench/mimo_decode_r4_b%d_h32_n128" % b, ["--batch", str(b), "--step"] + mimo_bench,
          "bench")
for b in (1, 64, 256):
    build("bench/decode_b%d_h32_n128_bf16_state" % b,
          ["--batch", str(b), "--heads", "32", "--state", "128", "--headdim", "64",
           "--angles", "16", "--step", "--state-dtype", "bf16"], "bench")
for b in (1, 64, 256):
    build("bench/decode_b%d_h32_n128" % b,
          ["--batch", str(b), "--heads", "32", "--state", "128", "--headdim", "64",
           "--angles", "16", "--step"], "bench")

open(os.path.join(out, "list.txt"), "w").write("\n".join(lines) + "\n")
# The golden files, and a copy of OUTDIR with only what the GPU machine runs
# (manifests and cubins, no PTX or MLIR: about 35 MB) for carrying there.
golden_dir = os.path.join(out, "golden-data")
os.makedirs(golden_dir, exist_ok=True)
for ext in (".json", ".bin"):
    shutil.copy2(golden_base + ext, golden_dir)
carry = out.rstrip("/") + "-cubin"
shutil.rmtree(carry, ignore_errors=True)
for root, dirs, files in os.walk(out):
    rel = os.path.relpath(root, out)
    for f in files:
        if f in ("manifest.json", "list.txt") or (f.startswith("kernel") and f.endswith(".cubin")) \
                or rel.startswith("golden-data"):
            os.makedirs(os.path.join(carry, rel), exist_ok=True)
            shutil.copy2(os.path.join(root, f), os.path.join(carry, rel, f))
print("gpu-bundles: %d runs in %s; carry %s to the GPU machine" % (len(lines), out, carry))
