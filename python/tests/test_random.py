"""The ops on fresh random CPU inputs against the runtime's float64 reference of the same call.

The kernels run in fp32 on bf16-valued inputs; the reference in float64 on the same values:
relative L2 error under 1e-5 for the output and every final state."""
import pytest
import torch

import mamba3
from conftest import random_siso, relative_l2

TOL = 1e-5


def _check(got, ref):
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.shape == r.shape, i
        assert relative_l2(g, r) < TOL, (i, relative_l2(g, r))


def _specs_used(monkeypatch):
    """The LayerSpecs the ops ask bundles for, recorded."""
    import mamba3.ops as ops
    seen, real = [], ops.get_bundle
    monkeypatch.setattr(ops, "get_bundle", lambda spec, dev: seen.append(spec) or real(spec, dev))
    return seen


@pytest.mark.parametrize("cfg", [
    dict(b=2, L=37, H=4, G=1, N=16, P=8, S=4, init=False),
    dict(b=1, L=80, H=4, G=2, N=32, P=16, S=8, init=True),
    dict(b=3, L=20, H=2, G=2, N=24, P=8, S=6, init=True, no_d=True, no_z=True),
], ids=["plain", "groups-states", "no-d-z"])
def test_siso_combined_random(cfg, tmp_path):
    x, states = random_siso(cfg["b"], cfg["L"], cfg["H"], cfg["G"], cfg["N"], cfg["P"], cfg["S"], seed=7,
                            init=cfg["init"])
    if cfg.get("no_d"):
        x["D"] = None
    if cfg.get("no_z"):
        x["Z"] = None
    call = lambda: mamba3.siso_combined(**x, Input_States=states, chunk_size=16, return_final_states=True)
    got = call()
    with mamba3.float64_reference():
        ref = call()
    _check(got, ref)
    assert got[0].dtype == torch.float32 and ref[0].dtype == torch.float64


def test_siso_combined_bf16_data():
    # bf16 tensors in, bf16 out (the official dtypes): the output is rounded to bf16 (1e-2 tolerance).
    x, states = random_siso(2, 30, 4, 1, 16, 8, 4, seed=23, init=True, dtype=torch.bfloat16)
    got = mamba3.siso_combined(**x, Input_States=states, return_final_states=True)
    with mamba3.float64_reference():
        ref = mamba3.siso_combined(**x, Input_States=states, return_final_states=True)
    assert got[0].dtype == torch.bfloat16 and got[2].dtype == torch.float32 and got[4].dtype == torch.bfloat16
    for g, r in zip(got, ref):
        assert relative_l2(g, r) < 1e-2


def test_siso_combined_varlen_random():
    lengths = [1, 30, 17, 52]
    T = sum(lengths)
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32)
    x, states = random_siso(1, T, 4, 1, 16, 8, 4, seed=11, init=True, nseq=len(lengths))
    call = lambda: mamba3.siso_combined(**x, Input_States=states, chunk_size=16, return_final_states=True,
                                        cu_seqlens=cu)
    got = call()
    with mamba3.float64_reference():
        ref = call()
    _check(got, ref)
    assert got[2].shape == (len(lengths), 4, 8, 16)


def test_siso_combined_without_states_returns_out_only(monkeypatch):
    # return_final_states=False: a bundle whose kernel has no state outputs, same out.
    seen = _specs_used(monkeypatch)
    x, states = random_siso(2, 41, 2, 1, 16, 8, 4, seed=3, init=True)
    out = mamba3.siso_combined(**x, Input_States=states, chunk_size=16)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 41, 2, 8)
    assert not seen[-1].final_states
    outputs = [a["name"] for a in mamba3.ops.get_bundle(seen[-1], 0).arguments if a["role"] == "output"]
    assert outputs == ["out"]
    with mamba3.float64_reference():
        ref = mamba3.siso_combined(**x, Input_States=states, chunk_size=16)
    assert relative_l2(out, ref) < TOL
    assert torch.equal(out, mamba3.siso_combined(**x, Input_States=states, chunk_size=16,
                                                 return_final_states=True)[0])


def test_out_variant_without_final_states():
    x, _ = random_siso(2, 21, 4, 1, 16, 8, 4, seed=37)
    out = torch.full((2, 21, 4, 8), float("nan"))
    mamba3.siso_combined_out(**x, out=out)
    assert torch.equal(out, mamba3.siso_combined(**x))


@pytest.mark.parametrize("inplace", [False, True])
def test_siso_step_random(inplace):
    x, states = random_siso(3, 1, 4, 2, 32, 16, 8, seed=5, init=True, step=True)
    states = tuple(s.float() for s in states)  # in place: the kernel's own dtypes, no copy
    with mamba3.float64_reference():
        ref_out, ref_states = mamba3.siso_step(**x, Input_States=states)
    given = tuple(s.clone() for s in states)
    out, new = mamba3.siso_step(**x, Input_States=given, inplace_states=inplace)
    assert relative_l2(out, ref_out) < TOL
    for g, r in zip(new, ref_states):
        assert relative_l2(g, r) < TOL
    if inplace:
        assert all(a is b for a, b in zip(new, given))
    else:
        assert all(torch.equal(a, b) for a, b in zip(given, states))
    assert new[3].data_ptr() == (given[3].data_ptr() if inplace else x["V"].data_ptr())


def test_siso_step_inplace_with_bf16_v_state():
    # The official v state is V's dtype (bf16): the kernel reads and writes it in bf16.
    x, states = random_siso(2, 1, 2, 1, 16, 8, 4, seed=9, init=True, step=True, dtype=torch.bfloat16)
    v = states[3].clone()
    assert v.dtype == torch.bfloat16
    given = (states[0].clone(), states[1].clone(), states[2].clone(), v)
    mamba3.siso_step(**x, Input_States=given, inplace_states=True)
    assert torch.equal(v, x["V"])


@pytest.mark.parametrize("inplace", [False, True])
def test_siso_step_model_dtypes_are_kernel_dtypes(inplace, monkeypatch):
    # The model's decode call: bf16 Trap and biases, bf16 k and v cache entries. The bundle reads them
    # as they are (no conversion); the results match the float64 reference of the same bf16 values
    # (1e-2: the new k state is rounded to bf16 when it is written in place).
    seen = _specs_used(monkeypatch)
    x, states = random_siso(3, 1, 4, 2, 16, 8, 4, seed=29, init=True, step=True, dtype=torch.bfloat16)
    x["Q_bias"], x["K_bias"] = x["Q_bias"].bfloat16(), x["K_bias"].bfloat16()
    states = (states[0], states[1], states[2].bfloat16(), states[3])
    with mamba3.float64_reference():
        ref_out, ref_states = mamba3.siso_step(**x, Input_States=states)
    given = tuple(s.clone() for s in states)
    out, new = mamba3.siso_step(**x, Input_States=given, inplace_states=inplace)
    spec = seen[-1]
    assert (spec.trap_dtype, spec.bias_dtype, spec.k_state_dtype, spec.v_state_dtype) == ("bf16",) * 4
    args = {a["name"]: a["dtype"] for a in mamba3.ops.get_bundle(spec, 0).arguments}
    assert [args[n] for n in ("Trap", "Q_bias", "K_bias", "k0", "v0", "k", "v")] == ["bf16"] * 7
    assert relative_l2(out, ref_out) < 1e-2
    for g, r in zip(new, ref_states):
        assert relative_l2(g, r) < 1e-2
    # The official return dtypes: k in fp32 (unless updated in place), v is V.
    assert new[2].dtype == (torch.bfloat16 if inplace else torch.float32)
    if inplace:
        assert all(a is b for a, b in zip(new, given))


def test_siso_combined_model_dtypes_are_kernel_dtypes(monkeypatch):
    seen = _specs_used(monkeypatch)
    x, states = random_siso(2, 45, 4, 1, 16, 8, 4, seed=31, init=True, dtype=torch.bfloat16)
    call = lambda: mamba3.siso_combined(**x, Input_States=states, chunk_size=16, return_final_states=True)
    got = call()
    spec = seen[-1]
    assert (spec.trap_dtype, spec.bias_dtype, spec.k_state_dtype, spec.v_state_dtype) == \
        ("bf16", "bf16", "f32", "bf16")
    with mamba3.float64_reference():
        ref = call()
    assert [t.dtype for t in got] == [torch.bfloat16, torch.float32, torch.float32, torch.float32,
                                      torch.bfloat16]
    for g, r in zip(got, ref):
        assert relative_l2(g, r) < 1e-2


@pytest.mark.parametrize("R,pairing", [(2, "half_split"), (4, "adjacent")])
def test_mimo_random(R, pairing):
    x, _ = random_siso(2, 40, 4, 1, 16, 8, 4, seed=13, R=R)
    call = lambda: mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"],
                               x["MIMO_V"], x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"],
                               chunk_size=16, return_state=True, rotary_pairing=pairing)
    got = call()
    with mamba3.float64_reference():
        ref = call()
    _check(got, ref)
    assert got[3].shape == (2, R, 4, 16) and got[4].shape == (2, 4, 8)


@pytest.mark.parametrize("with_z", [False, True])
def test_mimo_per_rank_outputs(with_z):
    # MIMO_Out=None: out (b, L, R, H, P), each rank's gated term (the official module passes Z=None
    # there and projects after its own norm). Against the float64 reference, and summed through MIMO_Out
    # it is the projected output.
    x, _ = random_siso(2, 37, 4, 1, 16, 8, 4, seed=41, R=3)
    Z = x["Z"] if with_z else None
    call = lambda mo, **kw: mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"],
                                        x["K_bias"], x["MIMO_V"], x["MIMO_Z"], mo, x["Angles"], x["D"], Z,
                                        chunk_size=16, **kw)
    got = call(None, return_state=True)
    with mamba3.float64_reference():
        ref = call(None, return_state=True)
    assert got[0].shape == (2, 37, 3, 4, 8)
    _check(got, ref)
    projected = torch.einsum("blrhp,hrp->blhp", got[0].double(), x["MIMO_Out"].double())
    assert relative_l2(projected, call(x["MIMO_Out"])) < TOL


def test_mimo_rmsnorm_random():
    x, _ = random_siso(1, 24, 2, 1, 16, 8, 4, seed=17, R=2)
    w = 1 + 0.2 * torch.randn(2, 8)
    call = lambda: mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"],
                               x["MIMO_V"], x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"],
                               fuse_pregate_headwise_rms_norm=True, outproj_norm_weight=w)
    got = call()
    with mamba3.float64_reference():
        ref = call()
    assert relative_l2(got, ref) < TOL


def test_out_variant_matches():
    x, states = random_siso(2, 21, 4, 1, 16, 8, 4, seed=19, init=True)
    want = mamba3.siso_combined(**x, Input_States=states, return_final_states=True)
    out = torch.full((2, 21, 4, 8), float("nan"))
    finals = (torch.empty(2, 4, 4), torch.empty(2, 4, 8, 16), torch.empty(2, 4, 16), torch.empty(2, 4, 8))
    r = mamba3.siso_combined_out(**x, Input_States=states, out=out, final_states=finals)
    assert r is out
    assert torch.equal(out, want[0])
    for g, w in zip(finals, want[1:]):
        assert torch.equal(g, w)


def test_threads_share_a_bundle():
    from concurrent.futures import ThreadPoolExecutor
    inputs = [random_siso(2, 33, 4, 1, 16, 8, 4, seed=s, init=True) for s in range(8)]
    serial = [mamba3.siso_combined(**x, Input_States=st, return_final_states=True) for x, st in inputs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda a: mamba3.siso_combined(**a[0], Input_States=a[1],
                                                                return_final_states=True), inputs))
    for a, b in zip(serial, parallel):
        assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_fp16_layer(monkeypatch):
    # fp16 tensors (an fp16 model): Trap and the v state are read in f16, out and the v state come back in
    # fp16; the GPU kernels for it multiply in f16 (gpu_dtype). Against the float64 reference of the same
    # fp16 values; fp16 keeps 11 bits, so the output's rounding is about 2e-4.
    seen = _specs_used(monkeypatch)
    x, states = random_siso(2, 30, 4, 1, 16, 8, 4, seed=43, init=True, dtype=torch.float16)
    got = mamba3.siso_combined(**x, Input_States=states, return_final_states=True)
    spec = seen[-1]
    assert spec.gpu_dtype == "f16" and spec.trap_dtype == "f16" and spec.v_state_dtype == "f16"
    with mamba3.float64_reference():
        ref = mamba3.siso_combined(**x, Input_States=states, return_final_states=True)
    assert [t.dtype for t in got] == [torch.float16, torch.float32, torch.float32, torch.float32,
                                      torch.float16]
    for g, r in zip(got, ref):
        assert relative_l2(g, r) < 1e-3
    xs, sts = random_siso(3, 1, 4, 1, 16, 8, 4, seed=47, init=True, step=True, dtype=torch.float16)
    with mamba3.float64_reference():
        ref_out, ref_states = mamba3.siso_step(**xs, Input_States=sts)
    given = tuple(s.clone() for s in sts)
    out, new = mamba3.siso_step(**xs, Input_States=given, inplace_states=True)
    assert out.dtype == torch.float16 and new[3].dtype == torch.float16
    assert relative_l2(out, ref_out) < 1e-3
    for g, r in zip(new, ref_states):
        assert relative_l2(g, r) < 1e-3
