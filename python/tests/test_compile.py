"""The ops under torch.compile(fullgraph=True) and torch.library.opcheck (schema, fake tensors)."""
import torch

import mamba3
from conftest import random_siso


def test_opcheck_siso_combined():
    x, st = random_siso(2, 12, 2, 1, 16, 8, 4, seed=1, init=True)
    args = (x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["Angles"], x["D"],
            x["Z"], *st, None, 16, True)
    torch.library.opcheck(torch.ops.mamba3.siso_combined.default, args)


def test_opcheck_siso_step_inplace():
    x, st = random_siso(2, 1, 2, 1, 16, 8, 4, seed=2, init=True, step=True)
    args = (x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["Angles"], x["D"],
            x["Z"], *(s.clone() for s in st))
    torch.library.opcheck(torch.ops.mamba3.siso_step_.default, args)


def test_opcheck_mimo():
    x, _ = random_siso(1, 10, 2, 1, 16, 8, 4, seed=3, R=2)
    args = (x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"],
            x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"], 16, True, None, None, 1e-5, "half_split")
    torch.library.opcheck(torch.ops.mamba3.mimo.default, args)


def test_torch_compile_fullgraph():
    x, st = random_siso(2, 19, 4, 1, 16, 8, 4, seed=4, init=True)
    xs, sts = random_siso(2, 1, 4, 1, 16, 8, 4, seed=5, init=True, step=True)

    def layer(x, st, xs, sts):
        out, angle, ssm, k, v = mamba3.siso_combined(**x, Input_States=st, return_final_states=True)
        y, states = mamba3.siso_step(**xs, Input_States=(angle, ssm, k, v))
        return out * 2, y, states[1]

    eager = layer(x, st, xs, sts)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")(x, st, xs, sts)
    for a, b in zip(eager, compiled):
        assert torch.equal(a, b)


def test_torch_compile_out_variant_and_inplace_step():
    x, st = random_siso(1, 8, 2, 1, 16, 8, 4, seed=6, init=True)
    xs, sts = random_siso(1, 1, 2, 1, 16, 8, 4, seed=7, init=True, step=True)

    def run(out, states):
        mamba3.siso_combined_out(**x, Input_States=st, out=out)
        y, _ = mamba3.siso_step(**xs, Input_States=states, inplace_states=True)
        return y

    out_e, st_e = torch.empty(1, 8, 2, 8), tuple(s.clone() for s in sts)
    out_c, st_c = torch.empty(1, 8, 2, 8), tuple(s.clone() for s in sts)
    y_e = run(out_e, st_e)
    y_c = torch.compile(run, fullgraph=True, backend="aot_eager")(out_c, st_c)
    assert torch.equal(y_e, y_c) and torch.equal(out_e, out_c)
    assert all(torch.equal(a, b) for a, b in zip(st_e, st_c))
    assert not torch.equal(st_c[1], sts[1])  # updated in place
