"""Bad input gets a clear error naming what is wrong, from the Python checks and from the runtime."""
import json
import os
import shutil

import pytest
import torch

import mamba3
from mamba3 import Mamba3Error
from conftest import random_siso


def _x():
    return random_siso(2, 10, 2, 1, 16, 8, 4, seed=1)[0]


def test_wrong_dtype():
    x = _x()
    x["Q"] = x["Q"].to(torch.int64)
    with pytest.raises(TypeError, match="Q has dtype torch.int64"):
        mamba3.siso_combined(**x)


def test_wrong_shape():
    x = _x()
    x["Q_bias"] = torch.zeros(2, 15)
    with pytest.raises(ValueError, match=r"Q_bias has shape \(2, 15\), expected \(2, 16\)"):
        mamba3.siso_combined(**x)


def test_wrong_rank():
    x = _x()
    x["Q"] = x["Q"][0]
    with pytest.raises(ValueError, match="Q must be a"):
        mamba3.siso_combined(**x)


def test_mixed_devices():
    x = _x()
    x["K"] = x["K"].to("meta")
    with pytest.raises(ValueError, match="K is on meta"):
        mamba3.siso_combined(**x)


def test_unsupported_device():
    x = {k: v.to("meta") for k, v in _x().items()}
    with pytest.raises(Mamba3Error, match="not supported"):
        mamba3.siso_combined(**x)


def test_non_contiguous_input_is_accepted_like_the_official_function():
    x = _x()
    want = mamba3.siso_combined(**x)
    x["V"] = x["V"].transpose(0, 1).contiguous().transpose(0, 1)
    assert not x["V"].is_contiguous()
    assert torch.equal(mamba3.siso_combined(**x), want)


def test_non_contiguous_out_tensor():
    x = _x()
    out = torch.empty(2, 10, 8, 2).transpose(2, 3)
    with pytest.raises(ValueError, match="out is not contiguous"):
        mamba3.siso_combined_out(**x, out=out)


def test_partial_states():
    x, st = random_siso(2, 10, 2, 1, 16, 8, 4, seed=1, init=True)
    with pytest.raises(ValueError, match="Input_States must be a tuple of four tensors"):
        mamba3.siso_combined(**x, Input_States=(st[0], None, None, None))


def test_bad_cu_seqlens():
    x = random_siso(1, 10, 2, 1, 16, 8, 4, seed=1)[0]
    with pytest.raises(ValueError, match="cu_seqlens must rise strictly"):
        mamba3.siso_combined(**x, cu_seqlens=torch.tensor([0, 6, 6, 10], dtype=torch.int32))
    with pytest.raises(TypeError, match="cu_seqlens has dtype torch.float32"):
        mamba3.siso_combined(**x, cu_seqlens=torch.tensor([0.0, 10.0]))


def test_too_many_angles():
    x = _x()
    x["Angles"] = torch.zeros(2, 10, 2, 9)
    with pytest.raises(ValueError, match=r"headdim_angles \(9\) must be at most headdim_qk / 2 \(8\)"):
        mamba3.siso_combined(**x)


def test_mimo_out_projection_shape():
    x, _ = random_siso(1, 10, 2, 1, 16, 8, 4, seed=3, R=2)
    with pytest.raises(ValueError, match=r"MIMO_Out has shape \(2, 8\), expected \(2, 2, 8\)"):
        mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"],
                    x["MIMO_Z"], x["MIMO_Out"][:, 0], x["Angles"], x["D"], x["Z"])


def test_no_bundle_and_no_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA3_COMPILE", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("MAMBA3_BUNDLE_DIR", str(tmp_path))
    x = random_siso(1, 10, 2, 1, 16, 8, 4, seed=1)[0]
    x["Z"] = None  # a configuration no earlier test loaded
    x["D"] = None
    with pytest.raises(Mamba3Error, match=r"no bundle for this configuration(.|\n)*--no-d --no-z(.|\n)*fix:"):
        mamba3.siso_combined(**x)


def test_bundle_dir_without_compiler(tmp_path, monkeypatch):
    # A bundle compiled elsewhere and copied into MAMBA3_BUNDLE_DIR under any name is found by its manifest;
    # it writes the final states, and serves the call that drops them.
    from mamba3._bundles import LayerSpec, compiler, _compile
    comp = compiler()
    spec = LayerSpec(target="cpu", step=False, batch=-1, seqlen=-1, heads=2, groups=1, state=16, headdim=8,
                     angles=2, has_z=False)
    _compile(spec, comp, str(tmp_path / "copied-here"))
    monkeypatch.setenv("MAMBA3_COMPILE", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("MAMBA3_BUNDLE_DIR", str(tmp_path))
    x = random_siso(1, 10, 2, 1, 16, 8, 2, seed=1)[0]
    x["Z"] = None
    assert mamba3.siso_combined(**x).shape == (1, 10, 2, 8)


def test_corrupt_bundle(tmp_path):
    from mamba3._bundles import LayerSpec, compiler, _compile
    spec = LayerSpec(target="cpu", step=False, batch=-1, seqlen=-1, heads=2, groups=1, state=16, headdim=8,
                     angles=2)
    d = tmp_path / "b"
    _compile(spec, compiler(), str(d))
    m = json.loads((d / "manifest.json").read_text())
    m["format_version"] = 99
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(Mamba3Error, match="format_version 99"):
        mamba3.Bundle(str(d))
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(Exception, match="JSON|Expecting"):
        mamba3.Bundle(str(d))


class TestLaunchChecks:
    """The runtime checks every buffer of a launch against the manifest (C API level)."""

    @pytest.fixture
    def bundle_and_args(self):
        from mamba3._bundles import LayerSpec, get_bundle
        spec = LayerSpec(target="cpu", step=False, batch=-1, seqlen=-1, heads=2, groups=1, state=16, headdim=8,
                         angles=4)
        b = get_bundle(spec)
        x = _x()
        args = []
        for a in b.arguments:
            if a["role"] == "input":
                args.append(x[a["name"]].float().contiguous())
            else:
                shape = [{"b": 2, "L": 10, "H": 2, "N": 16, "P": 8, "S": 4, "G": 1}[s] for s in a["axes"]]
                args.append(torch.zeros(shape))
        return b, args

    def test_good_launch(self, bundle_and_args):
        b, args = bundle_and_args
        b.launch(args, 2, 10)
        assert args[[a["name"] for a in b.arguments].index("out")].abs().sum() > 0

    def test_argument_count(self, bundle_and_args):
        b, args = bundle_and_args
        with pytest.raises(Mamba3Error, match="the bundle takes 16 arguments, the launch passes 15"):
            b.launch(args[:-1], 2, 10)

    def test_argument_dtype(self, bundle_and_args):
        b, args = bundle_and_args
        args[2] = args[2].bfloat16()
        with pytest.raises(Mamba3Error, match=r"argument 2 \('V'\) is bf16, the bundle takes f32"):
            b.launch(args, 2, 10)

    def test_argument_shape(self, bundle_and_args):
        b, args = bundle_and_args
        with pytest.raises(Mamba3Error, match=r"argument 0 \('Q'\) has shape \(2, 10, 1, 16\), the bundle "
                                              r"expects \(2, 11, 1, 16\) for batch 2, seqlen 11"):
            b.launch(args, 2, 11)

    def test_output_overlaps_input(self, bundle_and_args):
        b, args = bundle_and_args
        names = [a["name"] for a in b.arguments]
        args[names.index("out")] = args[names.index("V")]
        with pytest.raises(Mamba3Error, match="output 'out' overlaps argument 'V'"):
            b.launch(args, 2, 10)

    def test_launch_shape(self, bundle_and_args):
        b, args = bundle_and_args
        with pytest.raises(Mamba3Error, match="must be positive"):
            b.launch(args, 0, 10)


def test_mimo_bad_cu_seqlens():
    x, _ = random_siso(1, 10, 2, 1, 16, 8, 4, seed=3, R=2)
    with pytest.raises(ValueError, match="cu_seqlens must rise strictly"):
        mamba3.mimo(x["Q"], x["K"], x["V"], x["ADT"], x["DT"], x["Trap"], x["Q_bias"], x["K_bias"], x["MIMO_V"],
                    x["MIMO_Z"], x["MIMO_Out"], x["Angles"], x["D"], x["Z"],
                    cu_seqlens=torch.tensor([0, 7, 3, 10], dtype=torch.int32))


def test_runtime_checks_cu_seqlens_of_host_launches():
    # The CPU launch reads the offsets from host memory: bad ones never reach the kernel, and the
    # float64 reference refuses them too.
    from mamba3._bundles import LayerSpec, get_bundle
    spec = LayerSpec(target="cpu", step=False, batch=-1, seqlen=-1, heads=2, groups=1, state=16, headdim=8,
                     angles=4, varlen=True)
    b = get_bundle(spec)
    x = random_siso(1, 10, 2, 1, 16, 8, 4, seed=1)[0]
    x["cu_seqlens"] = torch.tensor([0, 6, 6, 10], dtype=torch.int32)
    sizes = {"b": 3, "L": 10, "H": 2, "N": 16, "P": 8, "S": 4, "G": 1, "1": 1, "b+1": 4}
    for dtype, run in ((torch.float32, b.launch), (torch.float64, b.reference)):
        args = [x[a["name"]].float().contiguous() if a["role"] == "input" and a["name"] != "cu_seqlens"
                else x["cu_seqlens"] if a["role"] == "input"
                else torch.zeros([sizes[s] for s in a["axes"]], dtype=dtype) for a in b.arguments]
        with pytest.raises(Mamba3Error, match=r"cu_seqlens\[2\]"):
            run(args, 3, 10)
