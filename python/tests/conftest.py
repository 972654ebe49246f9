"""Shared helpers: the golden cases (../shared/golden) and random official-API inputs."""
import json
import math
import os

import pytest
import torch

GOLDEN_DIR = os.environ.get("MAMBA3_GOLDEN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "golden")


def relative_l2(got, ref, period=None):
    """||got - ref|| / ||ref||. With a period (an angle state kept modulo 2 pi) each difference first loses
    its nearest multiple of the period, as the runtime's relativeL2 does: the remainders of both sides would
    differ by a whole period where the two sit on either side of a wrap."""
    got, ref = got.double(), ref.double()
    if got.shape != ref.shape or torch.isnan(got).any():
        return math.inf
    d = got - ref
    if period is not None:
        d = d - period * torch.round(d / period)
    n = ref.norm()
    return (d.norm() / n).item() if n > 0 else d.norm().item()


def golden_cases():
    path = os.path.join(GOLDEN_DIR, "mamba3_cases.json")
    if not os.path.exists(path):
        pytest.skip(f"no golden cases at {path} (set MAMBA3_GOLDEN_DIR)")
    with open(path) as f:
        meta = json.load(f)
    with open(os.path.join(GOLDEN_DIR, "mamba3_cases.bin"), "rb") as f:
        blob = f.read()

    def tensor(entry):
        dtype = {"float32": torch.float32, "float64": torch.float64}[entry["dtype"]]
        size = torch.tensor([], dtype=dtype).element_size()
        t = torch.frombuffer(bytearray(blob[entry["offset"]:entry["offset"] + entry["count"] * size]),
                             dtype=dtype)
        return t.reshape(entry["shape"])

    cases = []
    for c in meta["cases"]:
        cases.append(dict(name=c["name"], kind=c["kind"], params=c["params"],
                          inputs={k: tensor(v) for k, v in c["inputs"].items() if v is not None},
                          initial_state={k: tensor(v) for k, v in (c.get("initial_state") or {}).items()},
                          expected={k: tensor(v) for k, v in c["expected"].items()}))
    return cases


def random_siso(b, L, H, G, N, P, S, seed, init=False, nseq=None, step=False, R=0, dtype=torch.float32):
    """Official-API inputs drawn like the model's: bf16-valued data (held in `dtype`), ADT < 0, DT > 0,
    Trap in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g)
    _to = dtype

    class _Round:  # bf16 values in `dtype`, so that fp32 kernels see exactly what the reference sees
        @staticmethod
        def to(t, d):
            return t.to(torch.bfloat16).to(d)
    qk = (b, L, R, G, N) if R else (b, L, G, N)
    r = lambda t: _Round.to(t, _to)
    x = dict(Q=r(rn(*qk)), K=r(rn(*qk)), V=r(rn(b, L, H, P)),
             ADT=-(0.1 + torch.rand(b, H, L, generator=g)) * 0.5, DT=0.02 + 0.1 * torch.rand(b, H, L, generator=g),
             Trap=r(torch.rand(b, H, L, generator=g)),
             Q_bias=rn(H, R, N) if R else r(rn(H, N)), K_bias=rn(H, R, N) if R else r(rn(H, N)),
             Angles=rn(b, L, H, S), D=1 + 0.5 * rn(H), Z=r(rn(b, L, H, P)))
    ns = nseq if nseq is not None else b
    states = (rn(ns, H, S), 0.3 * rn(ns, H, P, N), rn(ns, H, N), r(rn(ns, H, P))) if init else None
    if R:
        x.update(MIMO_V=(1 + 0.3 * rn(H, R, P)) / R, MIMO_Z=1 + 0.3 * rn(H, R, P), MIMO_Out=(1 + 0.3 * rn(H, R, P)) / R)
    if step:
        for k in ("Q", "K", "V", "Z", "Angles"):
            x[k] = x[k][:, 0].contiguous()
        for k in ("ADT", "DT", "Trap"):
            x[k] = x[k][:, :, 0].contiguous()
    return x, states
