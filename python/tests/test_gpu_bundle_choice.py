"""Which GPU bundle a call asks for: one per shape (default), one per layer for every shape
(MAMBA3_GPU_SHAPES=launch), and compiled with a tuning database (MAMBA3_TUNING_DB). No GPU needed: the
specs and their compiles are checked, not launches."""
import json
import os
import shutil

import pytest
import torch

from mamba3 import Mamba3Error
from mamba3._bundles import LayerSpec, _compile, bundle_key, compiler
from mamba3.ops import _spec

DB = os.path.join(os.path.dirname(__file__), "..", "..", "test", "codegen", "Inputs", "tuning-db-h4-n64.json")
LAYER = dict(heads=4, groups=1, state=64, headdim=32, angles=16)
CUDA = torch.device("cuda", 0)


def test_static_shapes_by_default(monkeypatch):
    monkeypatch.delenv("MAMBA3_GPU_SHAPES", raising=False)
    monkeypatch.delenv("MAMBA3_TUNING_DB", raising=False)
    spec = _spec(CUDA, False, 3, 1000, **LAYER)
    assert (spec.batch, spec.seqlen) == (3, 1000)
    assert "--tuning-db" not in spec.flags()


def test_shapes_at_launch(monkeypatch):
    monkeypatch.setenv("MAMBA3_GPU_SHAPES", "launch")
    monkeypatch.delenv("MAMBA3_TUNING_DB", raising=False)
    a, b = _spec(CUDA, False, 3, 1000, **LAYER), _spec(CUDA, False, 8, 4096, **LAYER)
    assert a == b and (a.batch, a.seqlen) == (-1, -1)
    flags = a.flags()
    assert flags[flags.index("--batch") + 1] == "?" and flags[flags.index("--seqlen") + 1] == "?"
    monkeypatch.setenv("MAMBA3_GPU_SHAPES", "sometimes")
    with pytest.raises(Mamba3Error, match="MAMBA3_GPU_SHAPES is 'sometimes'"):
        _spec(CUDA, False, 3, 1000, **LAYER)


def test_tuning_db_is_a_flag_and_part_of_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMBA3_GPU_SHAPES", "launch")
    db = tmp_path / "db.json"
    shutil.copy(DB, db)
    monkeypatch.setenv("MAMBA3_TUNING_DB", str(db))
    spec = _spec(CUDA, False, 3, 1000, **LAYER)
    flags = spec.flags()
    assert flags[flags.index("--tuning-db") + 1] == str(db)
    key = bundle_key(spec)
    # Another database's contents under the same name: another bundle.
    text = db.read_text().replace('"us": 80', '"us": 81')
    db.write_text(text)
    assert bundle_key(_spec(CUDA, False, 3, 1000, **LAYER)) != key
    # CPU calls ignore it.
    assert "--tuning-db" not in _spec(torch.device("cpu"), False, 3, 1000, **LAYER).flags()
    monkeypatch.setenv("MAMBA3_TUNING_DB", str(tmp_path / "missing.json"))
    with pytest.raises(Mamba3Error, match="MAMBA3_TUNING_DB=.*missing.json cannot be read"):
        _spec(CUDA, False, 3, 1000, **LAYER)


def _have_ptxas():
    return os.path.exists(os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "ptxas"))


@pytest.mark.skipif(not _have_ptxas(), reason="no ptxas (CUDA toolkit) on this machine")
def test_tuned_bundle_for_every_shape(tmp_path):
    # What a call with MAMBA3_GPU_SHAPES=launch and MAMBA3_TUNING_DB compiles: the database's winners as
    # variants (each with its full-chunk twin for lengths that are whole chunks), its buckets as the
    # dispatch table.
    spec = LayerSpec(target="sm_90a", step=False, batch=-1, seqlen=-1, **LAYER, tuning_db=os.path.abspath(DB))
    _compile(spec, compiler(), str(tmp_path / "b"))
    with open(tmp_path / "b" / "manifest.json") as f:
        m = json.load(f)
    assert m["config"]["batch"] == -1 and m["config"]["seqlen"] == -1
    # (The b >= 2 winner runs every matmul on mma.sync.)
    assert m["variant"] == "chunked-c64-mma.sync"
    assert "mma=mma.sync" in m["pipeline"]
    assert [v["variant"] for v in m["variants"]] == [
        "chunk-parallel-c32-k2", "chunked-c64-mma.sync-full-chunks", "chunk-parallel-c32-k2-full-chunks"]
    assert [v.get("specializes") for v in m["variants"]] == [None, "chunked-c64-mma.sync", "chunk-parallel-c32-k2"]
    assert [row["variant"] for row in m["dispatch"]["table"]] == ["chunk-parallel-c32-k2", "chunked-c64-mma.sync"]
