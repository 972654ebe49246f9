#!/usr/bin/env python3
"""Decode steps side by side: several builds of the project's decode bundles against the official Triton
step kernel (SISO) in one process, on the same inputs and clock (CUDA-graph replay medians, the shared
harness's Bundle launcher and inputs), and MIMO decode steps against their state floor.

Here (where MLIR is):
    bench/decode-side-by-side.py compile build/bin/mamba3-compile OUTDIR [extra mamba3-compile flags]
  one bundle per shape: SISO decode_b{b}_h{h}_n{N}_p64 (../shared/bench/shapes.py DECODE_SHAPES and
  EXTRA_DECODE_SHAPES, "b,H,N ...", by default six more shapes of other N, H and batch) and
  MIMO mimo_decode_b{b}_h{h}_n{N}_p64_r{R} (MIMO_DECODE_SHAPES, "b,H,N,R ..."; default R = 4, N = 128,
  b = 1, 16, 64), half-split pairs as the TileLang kernel's model uses.
On the GPU machine (`cp -r ../shared/bench sbs` here first, carry sbs, peers and the bundle folders):
    PYTHONPATH=peers/src python3 bench/decode-side-by-side.py run sbs LABEL=DIR [LABEL=DIR ...]
  one line per shape and build: time, GB/s, approximate TFLOP/s, time / state floor (b H P N 8 bytes at
  the copy rate measured in the same run), official / ours, and the relative L2 difference of out and
  the ssm state to the official kernel (SISO; where it cannot run the shape, to the first build) or to
  the first build (MIMO). Lines also go to
  $OUT/decode_side_by_side.txt.
"""
import os, sys

MIMO_DEFAULT = [(1, 32, 128, 4), (16, 32, 128, 4), (64, 32, 128, 4)]
# Beyond the listed shapes (other N, H and batch), for the generality of a change.
EXTRA_DEFAULT = [(32, 64, 128), (64, 32, 96), (128, 32, 64), (8, 32, 256), (256, 32, 256), (64, 32, 32)]
P = 64


def mimo_shapes():
    if "MIMO_DECODE_SHAPES" in os.environ:
        return [tuple(map(int, x.split(","))) for x in os.environ["MIMO_DECODE_SHAPES"].split()]
    return MIMO_DEFAULT


def siso_shapes(shapes):
    extra = os.environ.get("EXTRA_DECODE_SHAPES")
    extra = [tuple(map(int, x.split(","))) for x in extra.split()] if extra is not None else EXTRA_DEFAULT
    return shapes("DECODE_SHAPES") + extra


def mimo_name(b, h, N, R):
    return f"mimo_decode_b{b}_h{h}_n{N}_p{P}_r{R}"


def compile_all(comp, out, extra):
    import subprocess
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
    from shapes import shapes, decode_name

    def build(name, args):
        d = os.path.join(out, name)
        r = subprocess.run([comp, "--target", "sm_90a", "--dtype", "bf16", "-o", d] + args + extra,
                           capture_output=True, text=True)
        print(name, "ok" if r.returncode == 0 else "FAILED: " + r.stderr.strip()[:300], flush=True)
        for f in ("kernel.ptx", "kernel.mlir"):
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))

    common = "--groups 1 --headdim 64 --step --init"
    for (b, h, N) in siso_shapes(shapes):
        build(decode_name(b, h, N), f"--batch {b} --heads {h} --state {N} --angles {N // 4} {common}".split())
    for (b, h, N, R) in mimo_shapes():
        build(mimo_name(b, h, N, R), f"--batch {b} --heads {h} --state {N} --angles {N // 4} {common} "
              f"--mimo --rank {R} --pairing half_split".split())


def run(sbs, builds):
    # The shared harness runs the parts named after its bundle folder: none here.
    sys.argv = [os.path.join(sbs, "side_by_side.py"), builds[0][1]]
    sys.path.insert(0, sbs)
    import torch
    import side_by_side as h
    from shapes import shapes, decode_name
    from mamba_ssm.ops.triton.mamba3.mamba3_siso_step import mamba3_siso_step

    h.part_ceil()
    bw = h.BW
    rows = []

    def emit(s):
        print(s, flush=True)
        rows.append(s)

    def report(name, label, t_us, state_bytes, other_bytes, flops, t_off, e_out, e_ssm):
        floor = state_bytes / bw * 1e6
        off = f"official {t_off:.2f} us, official/ours {t_off / t_us:.2f}x; " if t_off else ""
        emit(f"{name} {label}: {t_us:.2f} us, {(state_bytes + other_bytes) / t_us / 1e3:.0f} GB/s, "
             f"{flops / t_us / 1e6:.3f} TFLOP/s; {off}state floor {floor:.2f} us -> {t_us / floor:.2f}x floor; "
             f"rel L2 out {e_out:.1e} ssm {e_ssm:.1e}")

    for (b, hh, N) in siso_shapes(shapes):
        S, name = N // 4, decode_name(b, hh, N)
        x, st = h.siso_inputs(b, 1, hh, 1, N, P, S, init=True, step=True)
        sto = (st[0], st[1], st[2], st[3].bfloat16())
        off = lambda: mamba3_siso_step(**x, Input_States=sto)
        try:
            ro = off(); torch.cuda.synchronize()
            t_off = h.bench_graph(off)
        except Exception as e:  # e.g. N not a power of two
            emit(f"DECODE {name} official: unsupported ({str(e).splitlines()[-1][:120]})")
            ro, t_off = None, None
        first = None
        state = b * hh * P * N * 8
        other = b * hh * (2 * N * 2 + 3 * P * 2 + S * 4 * 2 + N * 4 * 2 + P * 4 * 2)
        for label, d in builds:
            if not os.path.isdir(os.path.join(d, name)):
                continue
            ours = h.Bundle(os.path.join(d, name)); t = h.ours_tensors(x, st); o = ours.bind(t)
            ours(); torch.cuda.synchronize()
            t_ours = h.bench_graph(ours)
            if ro is None and first is None:
                first = {k: v.clone() for k, v in o.items()}
            ref_out, ref_ssm = (ro[0], ro[1][1]) if ro is not None else (first["out"], first["ssm"])
            report(f"DECODE {name}", label, t_ours, state, other, b * hh * P * N * 10, t_off,
                   h.rel(o["out"], ref_out), h.rel(o["ssm"], ref_ssm))
            del ours, t, o
        torch.cuda.empty_cache()

    for (b, hh, N, R) in mimo_shapes():
        S, name = N // 4, mimo_name(b, hh, N, R)
        x, _ = h.siso_inputs(b, 1, hh, 1, N, P, S, step=True, R=R)
        g = torch.Generator(device="cuda").manual_seed(1)
        rn = lambda *s: torch.randn(*s, device="cuda", dtype=torch.float32, generator=g)
        st = (rn(b, hh, S), rn(b, hh, P, N), rn(b, hh, R, N), rn(b, hh, R, P))
        state = b * hh * P * N * 8
        other = b * hh * (2 * R * N * 2 + 3 * P * 2 + S * 4 * 2 + R * N * 4 * 2 + R * P * 4 * 2)
        first = None
        for label, d in builds:
            if not os.path.isdir(os.path.join(d, name)):
                continue
            ours = h.Bundle(os.path.join(d, name)); t = h.ours_tensors(x, st, mimo=True); o = ours.bind(t)
            ours(); torch.cuda.synchronize()
            t_ours = h.bench_graph(ours)
            if first is None:
                first = {k: v.clone() for k, v in o.items()}
            report(f"MIMO-DECODE {name}", label, t_ours, state, other, b * hh * P * N * (6 * R + 4), None,
                   h.rel(o["out"], first["out"]), h.rel(o["ssm"], first["ssm"]))
            del ours, t, o
        torch.cuda.empty_cache()

    with open(os.path.join(os.environ.get("OUT") or "/tmp", "decode_side_by_side.txt"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "compile":
        compile_all(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "run":
        run(sys.argv[2], [tuple(a.split("=", 1)) for a in sys.argv[3:]])
    else:
        sys.exit(__doc__)
