"""The PyTorch ops (python/mamba3) on the GPU: correctness, CUDA graphs, torch.compile, threads, and
the time per call through the op against the kernel alone and the official kernels.

  here (MLIR):  PYTHONPATH=python .venv/bin/python bench/torch-ops.py compile DIR
                (the bundles every workload below needs, named as the ops look them up)
  GPU machine:  PYTHONPATH=python:PEERS/src MAMBA3_BUNDLE_DIR=DIR MAMBA3_RUNTIME_LIBRARY=... \
                python3 bench/torch-ops.py run [golden] [graph] [compile] [threads] [time] [official]

Prints one line per check or shape; writes them to $OUT/torch-ops.txt when OUT is set.
"""
import math
import os
import sys
import threading
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))
import mamba3  # noqa: E402
from mamba3 import ops  # noqa: E402

ROWS = []


def emit(s):
    print(s, flush=True)
    ROWS.append(s)


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def inputs(b, L, H, N, P, S, dev, R=0, init=False, step=False, seed=0, nseq=None):
    """Model-like inputs in the official API's dtypes (bf16 data, fp32 ADT/DT/Angles/D)."""
    g = torch.Generator(device=dev).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=dev, dtype=torch.float32, generator=g)
    qk = (b, L, R, 1, N) if R else (b, L, 1, N)
    a = -(1 + 15 * torch.rand(b, H, L, device=dev, generator=g))
    dt = torch.exp(torch.rand(b, H, L, device=dev, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    x = dict(Q=F.rms_norm(rn(*qk), (N,)).bfloat16(), K=F.rms_norm(rn(*qk), (N,)).bfloat16(),
             V=rn(b, L, H, P).bfloat16(), ADT=(a * dt).contiguous(), DT=dt.contiguous(),
             Trap=torch.rand(b, H, L, device=dev, generator=g).bfloat16(),
             Q_bias=(rn(H, R, N) if R else rn(H, N).bfloat16()), K_bias=(rn(H, R, N) if R else rn(H, N).bfloat16()),
             Angles=rn(b, L, H, S), D=1 + 0.5 * rn(H), Z=rn(b, L, H, P).bfloat16())
    if R:
        x.update(MIMO_V=(1 + 0.3 * rn(H, R, P)) / R, MIMO_Z=1 + 0.3 * rn(H, R, P), MIMO_Out=(1 + 0.3 * rn(H, R, P)) / R)
    ns = nseq or b
    st = (rn(ns, H, S), 0.1 * rn(ns, H, P, N), rn(ns, H, N), rn(ns, H, P).bfloat16()) if init else None
    if step:
        for k in ("Q", "K", "V", "Z", "Angles"):
            x[k] = x[k][:, 0].contiguous()
        for k in ("ADT", "DT", "Trap"):
            x[k] = x[k][:, :, 0].contiguous()
    return x, st


def to_fp16(t):
    """inputs() in an fp16 model's dtypes: every bf16 tensor in fp16."""
    if t is None:
        return None
    if isinstance(t, dict):
        return {k: to_fp16(v) for k, v in t.items()}
    if isinstance(t, tuple):
        return tuple(to_fp16(v) for v in t)
    return t.half() if t.dtype == torch.bfloat16 else t


def mimo_call(x, **kw):
    return mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"],
                       x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"], **kw)


def mimo_per_rank_call(x, **kw):
    # The module's call when it applies its own out-projection norm: no MIMO_Out, no Z.
    return mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"],
                       x["MIMO_Z"], None, x["Angles"], x["D"], None, **kw)


SISO_SHAPES = [(8, 4096, 32, 64, 64), (8, 4096, 32, 128, 64), (8, 4096, 32, 256, 64), (1, 16384, 32, 128, 64)]
DECODE_SHAPES = [(16, 32, 128), (64, 32, 128), (256, 32, 128)]
MIMO_SHAPES = [(8, 4096, 32, 128, 64, 4), (8, 4096, 32, 128, 64, 2)]


def workloads(dev):
    """(name, thunk) of every op call the checks make (the compile step records their bundles)."""
    from conftest import golden_cases
    w = []
    for c in golden_cases():
        x = {k: v.to(dev) for k, v in c["inputs"].items()}
        p = c["params"]
        st = c["initial_state"]
        st = tuple(st[k].to(dev) for k in ("angle", "ssm", "k", "v")) if st else None
        d = x.get("D") if p.get("has_D", True) else None
        z = x.get("Z") if p.get("has_Z", True) else None
        if c["kind"] == "siso":
            w.append((f"golden {c['name']}", lambda x=x, st=st, d=d, z=z: mamba3.siso_combined(
                x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["Angles"], d, z,
                Input_States=st, return_final_states=True)))
            if p["L"] == 1:
                xs = {k: (v[:, 0] if k in ("Q", "K", "V", "Z", "Angles") else v[:, :, 0]
                          if k in ("ADT", "DT", "Trap") else v) for k, v in x.items()}
                ds = xs.get("D") if p.get("has_D", True) else None
                zs = xs.get("Z") if p.get("has_Z", True) else None
                w.append((f"golden-step {c['name']}", lambda xs=xs, st=st, ds=ds, zs=zs: mamba3.siso_step(
                    xs["Q"], xs["K"], xs["V"], xs["ADT"], xs["DT"], xs["Trap"], xs["Q_bias"], xs["K_bias"],
                    xs["Angles"], ds, zs, Input_States=st)))
        elif not st:
            w.append((f"golden {c['name']}", lambda x=x, d=d, z=z: mamba3.mimo(
                x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"],
                x["MIMO_Z"], x["MIMO_O"], x["Angles"], d, z, return_state=True, rotary_pairing="adjacent")))
    # graph / compile / threads
    x, st = inputs(2, 256, 4, 64, 64, 16, dev, init=True)
    w.append(("small", lambda x=x, st=st: mamba3.siso_combined(**x, Input_States=st, return_final_states=True)))
    xs, sts = inputs(2, 1, 4, 64, 64, 16, dev, init=True, step=True)
    w.append(("small-step", lambda xs=xs, sts=sts: mamba3.siso_step(**xs, Input_States=sts)))
    x, st = inputs(2, 512, 8, 128, 64, 32, dev, init=True)
    w.append(("threads", lambda x=x, st=st: mamba3.siso_combined(**x, Input_States=st, return_final_states=True)))
    for (b, L, H, N, P) in SISO_SHAPES:
        x, _ = inputs(b, L, H, N, P, N // 4, dev)
        w.append((f"siso {b} {L} {N}", lambda x=x: mamba3.siso_combined(**x)))
        w.append((f"siso-states {b} {L} {N}", lambda x=x: mamba3.siso_combined(**x, return_final_states=True)))
    for (b, H, N) in DECODE_SHAPES:
        x, st = inputs(b, 1, H, N, 64, N // 4, dev, init=True, step=True)
        w.append((f"decode {b} {N}", lambda x=x, st=st: mamba3.siso_step(**x, Input_States=st)))
    # An fp16 model: every bf16 tensor in fp16 (check_fp16).
    for name, (b, L, H, N, P) in (("fp16-siso", SISO_SHAPES[1]),):
        x, st = inputs(b, L, H, N, P, N // 4, dev, init=True)
        x, st = to_fp16(x), to_fp16(st)
        w.append((f"{name} {b} {L} {N}", lambda x=x, st=st: mamba3.siso_combined(**x, Input_States=st,
                                                                                   return_final_states=True)))
        w.append((f"{name}-out {b} {L} {N}", lambda x=x: mamba3.siso_combined(**x)))
    x, st = inputs(64, 1, 32, 128, 64, 32, dev, init=True, step=True)
    x, st = to_fp16(x), to_fp16(st)
    w.append(("fp16-decode 64 128", lambda x=x, st=st: mamba3.siso_step(**x, Input_States=st)))
    x, _ = inputs(8, 4096, 32, 128, 64, 32, dev, R=4)
    x = to_fp16(x)
    w.append(("fp16-mimo 8 4096 128 4", lambda x=x: mimo_call(x, return_state=True)))
    # The same with fp32 Trap, biases and states: kernels compiled for those (check_time_native).
    f32 = ("Trap", "Q_bias", "K_bias")
    for (b, L, H, N, P) in SISO_SHAPES[:2]:
        x, _ = inputs(b, L, H, N, P, N // 4, dev)
        x.update({k: x[k].float() for k in f32})
        w.append((f"f32-siso {b} {L} {N}", lambda x=x: mamba3.siso_combined(**x)))
    for (b, H, N) in DECODE_SHAPES:
        x, st = inputs(b, 1, H, N, 64, N // 4, dev, init=True, step=True)
        x.update({k: x[k].float() for k in f32})
        st = tuple(t.float() for t in st)
        w.append((f"f32-decode {b} {N}", lambda x=x, st=st: mamba3.siso_step(**x, Input_States=st)))
    for (b, L, H, N, P, R) in MIMO_SHAPES:
        x, _ = inputs(b, L, H, N, P, N // 4, dev, R=R)
        w.append((f"mimo {b} {L} {N} {R}", lambda x=x: mimo_call(x, return_state=True)))
        w.append((f"mimo-per-rank {b} {L} {N} {R}", lambda x=x: mimo_per_rank_call(x)))
    return w


class _Recorded(Exception):
    pass


def compile_bundles(out_dir):
    """Runs every workload on CPU tensors with the GPU target, recording the bundle each asks for."""
    specs = {}

    def record(spec, *a, **k):
        specs[spec] = True
        raise _Recorded()

    ops._target = lambda device: ops.GPU_TARGET
    ops._spec.__globals__["_target"] = ops._target
    ops._check_device = lambda fn, device: None
    ops._launch = record
    for name, thunk in workloads("cpu"):
        try:
            thunk()
        except _Recorded:
            pass
    from mamba3._bundles import _compile, bundle_key, compiler
    comp = compiler()
    for spec in specs:
        d = os.path.join(out_dir, bundle_key(spec))
        if not os.path.exists(os.path.join(d, "manifest.json")):
            _compile(spec, comp, d)
    print(f"{len(specs)} bundles in {out_dir}")


# --------------------------------------------------------------------------- GPU checks

def check_golden():
    from conftest import golden_cases
    cases = {f"golden {c['name']}": c for c in golden_cases()}
    cases.update({f"golden-step {c['name']}": c for c in golden_cases()})
    worst = 0
    for name, thunk in workloads("cuda"):
        if not name.startswith("golden"):
            continue
        c = cases[name]
        r = thunk()
        e = {k: v.cuda() for k, v in c["expected"].items()}
        if name.startswith("golden-step"):
            out, states = r
            got = dict(out=out, angle=states[0], ssm=states[1], k=states[2], v=states[3])
            e["out"] = e["out"][:, 0]
        else:
            got = dict(zip(("out", "angle", "ssm", "k", "v"), r))
            if c["kind"] == "mimo":
                got["k"] = got["k"].permute(0, 2, 1, 3)
                got["angle"] = torch.remainder(got["angle"], 2 * math.pi)
                e["angle"] = torch.remainder(e["angle"], 2 * math.pi)
                del got["v"]
        errs = {k: rel(v, e[k]) for k, v in got.items()}
        worst = max([worst] + list(errs.values()))
        ok = all(v < 1e-2 for v in errs.values())
        emit(f"GOLDEN {name}: {'pass' if ok else 'FAIL'} " + " ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    emit(f"GOLDEN worst relative L2 {worst:.1e} (tolerance 1e-2)")


def check_graph():
    x, st = inputs(2, 256, 4, 64, 64, 16, "cuda", init=True, seed=1)
    xs, sts = inputs(2, 1, 4, 64, 64, 16, "cuda", init=True, step=True, seed=2)
    sts = tuple(s.clone() for s in sts)  # the model's dtypes: the bf16 v state updated in place too

    def step(states):
        out, _ = mamba3.siso_step(**xs, Input_States=states, inplace_states=True)
        return out

    pre = mamba3.siso_combined(**x, Input_States=st, return_final_states=True)
    eager_states = tuple(s.clone() for s in sts)
    want = [step(eager_states) for _ in range(3)]
    graph_states = tuple(s.clone() for s in sts)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm up (bundles loaded, tensor maps cached) outside capture
        step(tuple(t.clone() for t in sts))
        mamba3.siso_combined(**x, Input_States=st, return_final_states=True)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        gout = step(graph_states)
        gpre = mamba3.siso_combined(**x, Input_States=st, return_final_states=True)
    got = []
    for _ in range(3):
        g.replay()
        got.append(gout.clone())
    torch.cuda.synchronize()
    ok = all(torch.equal(a, b) for a, b in zip(want, got)) and all(torch.equal(a, b) for a, b in zip(pre, gpre)) \
        and all(torch.equal(a, b) for a, b in zip(eager_states, graph_states))
    emit(f"GRAPH capture of siso_combined + 3 in-place siso_step replays: {'pass' if ok else 'FAIL'} "
         f"(max |diff| out {max((a.float() - b.float()).abs().max().item() for a, b in zip(want, got)):.1e})")


def check_compile():
    x, st = inputs(2, 256, 4, 64, 64, 16, "cuda", init=True, seed=3)
    xs, _ = inputs(2, 1, 4, 64, 64, 16, "cuda", step=True, seed=4)

    def layer(x, st, xs):
        out, angle, ssm, k, v = mamba3.siso_combined(**x, Input_States=st, return_final_states=True)
        y, states = mamba3.siso_step(**xs, Input_States=(angle, ssm, k, v))
        return torch.nn.functional.silu(out.float()).sum(-1), y * 2, states[1]

    want = layer(x, st, xs)
    t0 = time.time()
    got = torch.compile(layer, fullgraph=True)(x, st, xs)
    ok = all(torch.allclose(a, b, rtol=1e-3, atol=1e-3) for a, b in zip(want, got))
    emit(f"COMPILE torch.compile(fullgraph=True, inductor) of siso_combined + siso_step: {'pass' if ok else 'FAIL'} "
         f"({time.time() - t0:.1f} s to compile)")


def check_threads():
    work = [inputs(2, 512, 8, 128, 64, 32, "cuda", init=True, seed=10 + i) for i in range(8)]
    serial = [mamba3.siso_combined(**x, Input_States=st, return_final_states=True) for x, st in work]
    torch.cuda.synchronize()
    results = [None] * len(work)

    def run(i):
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            for _ in range(5):
                results[i] = mamba3.siso_combined(**work[i][0], Input_States=work[i][1], return_final_states=True)
        s.synchronize()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    ok = all(all(torch.equal(a, b) for a, b in zip(u, v)) for u, v in zip(serial, results))
    emit(f"THREADS 8 threads x 5 calls on their own streams: {'pass' if ok else 'FAIL'}")


def kernel_alone(thunk):
    """The bundle launch of the op's last call with pre-converted buffers: what the op costs beyond."""
    captured = {}
    real = ops._launch

    def spy(spec, device, batch, seqlen, inp, outs, in_place=()):
        bundle = ops.get_bundle(spec, ops._device_index(device))
        r = real(spec, device, batch, seqlen, inp, outs, in_place)
        tensors = []
        for a in bundle.arguments:
            t = inp[a["name"]] if a["role"] == "input" else r[a["name"]]
            tensors.append(ops._as_kernel_input(t, mamba3._runtime.MANIFEST_DTYPES[a["dtype"]]))
        captured["call"] = (bundle, tensors, batch, seqlen)
        return r

    ops._launch = spy
    try:
        thunk()
    finally:
        ops._launch = real
    bundle, tensors, batch, seqlen = captured["call"]
    return lambda: bundle.launch(tensors, batch, seqlen), bundle


def check_time():
    import triton.testing as tt
    bench = lambda f: tt.do_bench(f, warmup=25, rep=200, return_mode="median") * 1e3
    graph = lambda f: tt.do_bench_cudagraph(f, rep=200, return_mode="median") * 1e3
    n = 1 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda"); b_ = torch.empty_like(a)
    bw = 2 * n / (bench(lambda: b_.copy_(a)) * 1e-6)
    del a, b_
    emit(f"CEIL copy {bw / 1e9:.0f} GB/s")
    for name, thunk in workloads("cuda"):
        kind = name.split()[0]
        if kind not in ("siso", "siso-states", "decode", "mimo", "mimo-per-rank", "fp16-siso", "fp16-siso-out",
                        "fp16-decode", "fp16-mimo"):
            continue
        kernel, bundle = kernel_alone(thunk)
        timer = graph if kind.endswith("decode") else bench
        t_op, t_k = timer(thunk), timer(kernel)
        emit(f"TIME {name}: op {t_op:.2f} us, kernel alone {t_k:.2f} us, op/kernel {t_op / t_k:.3f} "
             f"({bundle.manifest.get('schedule')}{', graph replay' if kind.endswith('decode') else ''})")


def check_time_native():
    """The decode and prefill kernels compiled for fp32 Trap, biases and states (the f32-* workloads) next
    to the official-dtype ones check_time measures: what reading them in bf16 changes in the kernel. Also
    the per-call eager time of a decode step (CPU-bound: the op's Python and dispatch cost)."""
    import triton.testing as tt
    bench = lambda f: tt.do_bench(f, warmup=25, rep=200, return_mode="median") * 1e3
    graph = lambda f: tt.do_bench_cudagraph(f, rep=200, return_mode="median") * 1e3
    for name, thunk in workloads("cuda"):
        if not name.startswith("f32-"):
            continue
        kernel, bundle = kernel_alone(thunk)
        if name.startswith("f32-decode"):
            t_op, t_k = graph(thunk), graph(kernel)
            emit(f"TIME-F32 {name}: graph replay op {t_op:.2f} us, kernel alone {t_k:.2f} us, op/kernel "
                 f"{t_op / t_k:.3f}; eager per call op {bench(thunk):.2f} us, kernel launch {bench(kernel):.2f} us")
        else:
            t_op, t_k = bench(thunk), bench(kernel)
            emit(f"TIME-F32 {name}: op {t_op:.2f} us, kernel alone {t_k:.2f} us, op/kernel {t_op / t_k:.3f}")


def check_official():
    from mamba_ssm.ops.triton.mamba3.mamba3_siso_combined import mamba3_siso_combined
    from mamba_ssm.ops.triton.mamba3.mamba3_siso_step import mamba3_siso_step
    from mamba_ssm.ops.tilelang.mamba3.mamba3_mimo import mamba3_mimo
    import triton.testing as tt
    bench = lambda f: tt.do_bench(f, warmup=25, rep=200, return_mode="median") * 1e3
    # The same call through both: only the import differs.
    x, _ = inputs(8, 4096, 32, 128, 64, 32, "cuda", seed=21)
    ro = mamba3_siso_combined(**x, chunk_size=64, return_final_states=True)
    r = mamba3.siso_combined(**x, chunk_size=64, return_final_states=True)
    out_only = mamba3.siso_combined(**x, chunk_size=64)
    emit(f"NO-FINAL-STATES siso_combined b8 L4096 N128: out of the out-only kernel equals the with-states "
         f"one: {'pass' if torch.equal(out_only, r[0]) else 'FAIL'}")
    emit(f"OFFICIAL siso_combined b8 L4096 N128: rel L2 out {rel(r[0], ro[0]):.1e} ssm {rel(r[2], ro[2]):.1e} "
         f"k {rel(r[3], ro[3]):.1e} v {rel(r[4], ro[4]):.1e} angle {rel(r[1], ro[1]):.1e}; "
         f"ours {bench(lambda: mamba3.siso_combined(**x)):.1f} us, official "
         f"{bench(lambda: mamba3_siso_combined(**x, chunk_size=64)):.1f} us")
    x, st = inputs(64, 1, 32, 128, 64, 32, "cuda", init=True, step=True, seed=22)
    ro = mamba3_siso_step(**x, Input_States=st)
    r = mamba3.siso_step(**x, Input_States=st)
    emit(f"OFFICIAL siso_step b64 N128: rel L2 out {rel(r[0], ro[0]):.1e} ssm {rel(r[1][1], ro[1][1]):.1e} "
         f"k {rel(r[1][2], ro[1][2]):.1e} angle {rel(r[1][0], ro[1][0]):.1e}; "
         f"ours {tt.do_bench_cudagraph(lambda: mamba3.siso_step(**x, Input_States=st), rep=200, return_mode='median') * 1e3:.2f} us, "
         f"official {tt.do_bench_cudagraph(lambda: mamba3_siso_step(**x, Input_States=st), rep=200, return_mode='median') * 1e3:.2f} us (graph replay)")
    x, _ = inputs(8, 4096, 32, 128, 64, 32, "cuda", R=4, seed=23)
    off = lambda: mamba3_mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"],
                              x["MIMO_V"], x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"], 16, 4,
                              torch.bfloat16, return_state=True)
    ro = off()
    r = mimo_call(x, chunk_size=16, return_state=True)
    errs = [rel(r[0], ro[0])]
    for i in range(1, 5):
        errs.append(rel(r[i], ro[i]) if torch.is_tensor(ro[i]) and ro[i].shape == r[i].shape else float("nan"))
    emit(f"OFFICIAL mimo b8 L4096 N128 R4: rel L2 out {errs[0]:.1e} angle {errs[1]:.1e} ssm {errs[2]:.1e} "
         f"k {errs[3]:.1e} v {errs[4]:.1e}; ours {bench(lambda: mimo_call(x)):.1f} us, official {bench(off):.1f} us")
    off_pr = lambda: mamba3_mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"],
                                 x["MIMO_V"], x["MIMO_Z"], None, x["Angles"], x["D"], None, 16, 4, torch.bfloat16)
    ro, r = off_pr(), mimo_per_rank_call(x, chunk_size=16)
    emit(f"OFFICIAL mimo MIMO_Out=None Z=None b8 L4096 N128 R4: out {tuple(r.shape)} vs {tuple(ro.shape)}, rel L2 "
         f"{rel(r, ro) if r.shape == ro.shape else float('nan'):.1e}; ours {bench(lambda: mimo_per_rank_call(x)):.1f} us, "
         f"official {bench(off_pr):.1f} us")
    # The model's decode call: bf16 Trap, bf16 v state, states updated in place (official: out-of-place).
    x, st = inputs(64, 1, 32, 128, 64, 32, "cuda", init=True, step=True, seed=24)
    st_ip = tuple(t.clone() for t in st)
    emit(f"OFFICIAL-DTYPES siso_step b64 N128 in place: ours "
         f"{tt.do_bench_cudagraph(lambda: mamba3.siso_step(**x, Input_States=st_ip, inplace_states=True), rep=200, return_mode='median') * 1e3:.2f} us, "
         f"official {tt.do_bench_cudagraph(lambda: mamba3_siso_step(**x, Input_States=st), rep=200, return_mode='median') * 1e3:.2f} us (graph replay)")


def check_fp16():
    """fp16 inputs through the ops and through the official kernels (Triton SISO, TileLang MIMO with
    dtype=float16): agreement and time, same run."""
    from mamba_ssm.ops.triton.mamba3.mamba3_siso_combined import mamba3_siso_combined
    from mamba_ssm.ops.triton.mamba3.mamba3_siso_step import mamba3_siso_step
    from mamba_ssm.ops.tilelang.mamba3.mamba3_mimo import mamba3_mimo
    import triton.testing as tt
    bench = lambda f: tt.do_bench(f, warmup=25, rep=200, return_mode="median") * 1e3
    graph = lambda f: tt.do_bench_cudagraph(f, rep=200, return_mode="median") * 1e3
    x, st = inputs(8, 4096, 32, 128, 64, 32, "cuda", init=True, seed=31)
    x, st = to_fp16(x), to_fp16(st)
    ro = mamba3_siso_combined(**x, Input_States=st, chunk_size=64, return_final_states=True)
    r = mamba3.siso_combined(**x, Input_States=st, return_final_states=True)
    emit(f"FP16 siso_combined b8 L4096 N128 with states: dtypes {[str(t.dtype)[6:] for t in r]}; rel L2 out "
         f"{rel(r[0], ro[0]):.1e} ssm {rel(r[2], ro[2]):.1e} k {rel(r[3], ro[3]):.1e} v {rel(r[4], ro[4]):.1e}; "
         f"ours {bench(lambda: mamba3.siso_combined(**x, Input_States=st, return_final_states=True)):.1f} us, "
         f"official {bench(lambda: mamba3_siso_combined(**x, Input_States=st, chunk_size=64, return_final_states=True)):.1f} us; "
         f"out only: ours {bench(lambda: mamba3.siso_combined(**x)):.1f} us, official "
         f"{bench(lambda: mamba3_siso_combined(**x, chunk_size=64)):.1f} us")
    x, st = inputs(64, 1, 32, 128, 64, 32, "cuda", init=True, step=True, seed=32)
    x, st = to_fp16(x), to_fp16(st)
    ro, r = mamba3_siso_step(**x, Input_States=st), mamba3.siso_step(**x, Input_States=st)
    emit(f"FP16 siso_step b64 N128: rel L2 out {rel(r[0], ro[0]):.1e} ssm {rel(r[1][1], ro[1][1]):.1e} "
         f"k {rel(r[1][2], ro[1][2]):.1e}; ours {graph(lambda: mamba3.siso_step(**x, Input_States=st)):.2f} us, "
         f"official {graph(lambda: mamba3_siso_step(**x, Input_States=st)):.2f} us (graph replay)")
    x, _ = inputs(8, 4096, 32, 128, 64, 32, "cuda", R=4, seed=33)
    x = to_fp16(x)
    off = lambda: mamba3_mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"],
                              x["MIMO_V"], x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"], 16, 4,
                              torch.float16, return_state=True)
    ro = off()
    r = mimo_call(x, chunk_size=16, return_state=True)
    emit(f"FP16 mimo b8 L4096 N128 R4: out {r[0].dtype}, rel L2 out {rel(r[0], ro[0]):.1e} ssm {rel(r[2], ro[2]):.1e}; "
         f"ours {bench(lambda: mimo_call(x)):.1f} us, official {bench(off):.1f} us")


if __name__ == "__main__":
    if sys.argv[1] == "compile":
        compile_bundles(sys.argv[2])
    else:
        p = torch.cuda.get_device_properties(0)
        emit(f"device {p.name} torch {torch.__version__}")
        for part in sys.argv[2:] or ["golden", "graph", "compile", "threads", "time", "official"]:
            try:
                globals()["check_" + part]()
            except Exception as e:
                import traceback
                traceback.print_exc()
                emit(f"{part.upper()}: ERROR {e!r}"[:400])
        if os.environ.get("OUT"):
            with open(os.path.join(os.environ["OUT"], "torch-ops.txt"), "w") as f:
                f.write("\n".join(ROWS) + "\n")
