"""The ops on CPU tensors against the golden cases' float64 answers (official reference).

The CPU bundles compute in fp32 on the golden inputs (float32 holding bf16 values): relative L2
error under 1e-5 for every output and final state, as the project holds its fp32 kernels to."""
import math

import pytest
import torch

import mamba3
from conftest import golden_cases, relative_l2

TOL = 1e-5
CASES = golden_cases()


def _states(case):
    s = case["initial_state"]
    return (s["angle"], s["ssm"], s["k"], s["v"]) if s else None


def _optional(case, x=None):
    p, x = case["params"], x if x is not None else case["inputs"]
    d = x.get("D") if p.get("has_D", True) else None
    z = x.get("Z") if p.get("has_Z", True) else None
    return d, z


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "siso"], ids=lambda c: c["name"])
def test_siso_combined_golden(case):
    x = case["inputs"]
    d, z = _optional(case)
    out, angle, ssm, k, v = mamba3.siso_combined(
        x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["Angles"], d, z,
        Input_States=_states(case), chunk_size=16, return_final_states=True)
    e = case["expected"]
    for name, got in (("out", out), ("angle", angle), ("ssm", ssm), ("k", k), ("v", v)):
        assert relative_l2(got, e[name]) < TOL, name


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "siso" and c["params"]["L"] == 1],
                         ids=lambda c: c["name"])
def test_siso_step_golden(case):
    x = {k: (v[:, 0] if k in ("Q", "K", "V", "Z", "Angles") else v[:, :, 0] if k in ("ADT", "DT", "Trap") else v)
         for k, v in case["inputs"].items()}
    d, z = _optional(case, x)
    states = _states(case)
    out, (angle, ssm, k, v) = mamba3.siso_step(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"],
                                               x["K_bias"], x["Angles"], d, z, Input_States=states)
    e = case["expected"]
    assert relative_l2(out, e["out"][:, 0]) < TOL
    for name, got in (("angle", angle), ("ssm", ssm), ("k", k), ("v", v)):
        assert relative_l2(got, e[name]) < TOL, name


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "mimo" and not c["initial_state"]],
                         ids=lambda c: c["name"])
def test_mimo_golden(case):
    # The golden MIMO cases rotate adjacent pairs (the reference's), the TileLang kernel half-split ones.
    x = case["inputs"]
    d, z = _optional(case)
    out, angle, ssm, k, v = mamba3.mimo(
        x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"], x["MIMO_Z"],
        x["MIMO_O"], x["Angles"], d, z, chunk_size=16, return_state=True, rotary_pairing="adjacent")
    e = case["expected"]
    assert relative_l2(out, e["out"]) < TOL
    assert relative_l2(ssm, e["ssm"]) < TOL
    assert relative_l2(angle, e["angle"], period=2 * math.pi) < TOL
    # Official layouts: K (b, R, H, N), V of the last token (b, H, P).
    assert relative_l2(k, e["k"].permute(0, 2, 1, 3)) < TOL
    assert torch.equal(v, x["V"][:, -1])
