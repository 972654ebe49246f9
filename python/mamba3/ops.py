"""The Mamba-3 layer core as PyTorch ops, with the official functions' signatures.

Each public function checks its arguments (device, dtype, shape) with a message
naming the argument, derives the layer configuration from the shapes, and calls
one custom op registered with torch.library (`mamba3::*`), whose fake
implementation gives torch.compile the output shapes without running anything.
The op gets the configuration's bundle (compiled on first use or found, see
_bundles.py) and launches it on the tensors' memory: CUDA tensors on torch's
current stream with no copy and no synchronisation, CPU tensors through the
CPU bundle. The data, Trap, the biases and the k/v states are read by the
kernel in the dtype they come in (f32, bf16 or f16: the bundle is compiled for
it; CPU kernels take the data in f32); other inputs whose dtype differs from
the kernel's (bf16 Angles, say) are converted first, as the official functions
convert theirs.
"""
import contextlib
import math
import threading
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ._bundles import LayerSpec, get_bundle, gpu_shapes_at_launch, tuning_db
from ._runtime import MANIFEST_DTYPES, Mamba3Error

_FLOATS = (torch.float32, torch.bfloat16, torch.float16)
GPU_TARGET = "sm_90a"


# --------------------------------------------------------------------------- checks

def _fail(fn, msg, exc=ValueError):
    raise exc(f"mamba3.{fn}: {msg}")


def _check_tensor(fn, name, t, shape, device, floating=True):
    if not isinstance(t, Tensor):
        _fail(fn, f"{name} must be a torch.Tensor, not {type(t).__name__}", TypeError)
    if t.device != device:
        _fail(fn, f"{name} is on {t.device}, Q on {device}; all tensors must be on one device")
    if floating and t.dtype not in _FLOATS:
        _fail(fn, f"{name} has dtype {t.dtype}; it must be bfloat16, float16 or float32", TypeError)
    want = tuple(shape)
    if tuple(t.shape) != want:
        _fail(fn, f"{name} has shape {tuple(t.shape)}, expected {want}")


def _check_device(fn, device):
    if device.type == "cuda":
        cap = torch.cuda.get_device_capability(device)
        if cap != (9, 0):
            _fail(fn, f"the CUDA kernels are compiled for sm_90a (H100/H200); {device} is "
                      f"{torch.cuda.get_device_name(device)} (sm_{cap[0]}{cap[1]})", Mamba3Error)
    elif device.type != "cpu":
        _fail(fn, f"tensors on {device.type} are not supported (CUDA sm_90a or CPU)", Mamba3Error)


def _check_out(fn, name, t, shape, device):
    _check_tensor(fn, name, t, shape, device)
    if not t.is_contiguous():
        _fail(fn, f"{name} is not contiguous; out= tensors are written in place and must be")


def _check_layer(fn, dev, G, N, H, S, tensors, D, Z, z_shape):
    """The checks every op makes: head and angle counts, then each (name, tensor, shape) and the
    optional skip weight D (H,) and gate Z."""
    if H % G:
        _fail(fn, f"nheads ({H}) must be a multiple of nheads_qk ({G})")
    if 2 * S > N:
        _fail(fn, f"headdim_angles ({S}) must be at most headdim_qk / 2 ({N // 2})")
    for name, t, shape in tensors:
        _check_tensor(fn, name, t, shape, dev)
    if D is not None:
        _check_tensor(fn, "D", D, (H,), dev)
    if Z is not None:
        _check_tensor(fn, "Z", Z, z_shape, dev)


def _state_shapes(nseq, H, S, P, N):
    """(angle, ssm, k, v) state shapes, one state per sequence."""
    return (nseq, H, S), (nseq, H, P, N), (nseq, H, N), (nseq, H, P)


def _state_names(what):
    return tuple(f"{what}[{i}] ({n})" for i, n in enumerate(("angle", "ssm", "k", "v")))


def _check_states(fn, states, nseq, H, S, P, N, dev):
    for name, t, shape in zip(_state_names("Input_States"), states, _state_shapes(nseq, H, S, P, N)):
        _check_tensor(fn, name, t, shape, dev)


def _check_cu_seqlens(fn, cu_seqlens, b, L, dev):
    """The number of sequences cu_seqlens gives, after checking it (its values only on the CPU:
    on the GPU that would synchronise, and the kernels trust them)."""
    if b != 1:
        _fail(fn, f"with cu_seqlens the batch must be 1 (sequences packed along seqlen), got {b}")
    if not isinstance(cu_seqlens, Tensor) or cu_seqlens.dim() != 1 or cu_seqlens.shape[0] < 2:
        _fail(fn, "cu_seqlens must be a 1-D tensor of num_sequences + 1 offsets")
    if cu_seqlens.dtype not in (torch.int32, torch.int64):
        _fail(fn, f"cu_seqlens has dtype {cu_seqlens.dtype}; it must be int32", TypeError)
    if cu_seqlens.device != dev:
        _fail(fn, f"cu_seqlens is on {cu_seqlens.device}, Q on {dev}")
    if cu_seqlens.device.type == "cpu":
        c = cu_seqlens.tolist()
        if c[0] != 0 or c[-1] != L or any(x >= y for x, y in zip(c, c[1:])):
            _fail(fn, f"cu_seqlens must rise strictly from 0 to seqlen ({L}); got {c}")
    return cu_seqlens.shape[0] - 1


def _with_optional(inputs, **optional):
    """inputs plus the optional ones (D, Z, ...) that are given."""
    inputs.update({k: v for k, v in optional.items() if v is not None})
    return inputs


def _target(device):
    return "cpu" if device.type == "cpu" else GPU_TARGET


def _device_index(device):
    return 0 if device.type == "cpu" else (device.index if device.index is not None
                                           else torch.cuda.current_device())


# --------------------------------------------------------------------------- launching

def _kernel_float(t):
    """The element type a kernel reads t in: bf16 and f16 tensors as they are, everything else as f32."""
    if t is None:
        return "f32"
    return {torch.bfloat16: "bf16", torch.float16: "f16"}.get(t.dtype, "f32")


def _argument_dtypes(Trap, Q_bias, K_bias, k0=None, v0=None):
    """The spec's trap/bias/k-state/v-state dtypes for these tensors (the biases share one)."""
    bias = _kernel_float(Q_bias) if Q_bias.dtype == K_bias.dtype else "f32"
    return dict(trap_dtype=_kernel_float(Trap), bias_dtype=bias, k_state_dtype=_kernel_float(k0),
                v_state_dtype=_kernel_float(v0))


def _as_kernel_input(t, dtype):
    if t.dtype != dtype:
        t = t.to(dtype)
    if not t.is_contiguous():
        t = t.contiguous()
    if t.data_ptr() % 16:
        t = t.clone()  # the kernels load 16 bytes at a time
    return t


_reference = threading.local()


def _out_dtype(dtype):
    """The dtype an op returns its outputs in: the official one, or float64 under float64_reference."""
    return torch.float64 if getattr(_reference, "on", False) else dtype


def _launch(spec, device, batch, seqlen, inputs, outputs, in_place=()):
    """Runs spec's bundle. inputs/outputs: manifest name -> tensor (outputs may be absent: then
    allocated; of another dtype or layout: written through a copy). in_place: state names whose
    output is the buffer of their input (names without the 0). Returns name -> output tensor."""
    bundle = get_bundle(spec, _device_index(device))
    if getattr(_reference, "on", False):
        return _launch_reference(bundle, spec, batch, seqlen, inputs)
    tensors, results, copy_back = [], {}, []
    kernel_inputs = {}
    for a in bundle.arguments:
        name, want = a["name"], MANIFEST_DTYPES[a["dtype"]]
        if a["role"] == "input":
            t = inputs.get(name)
            if t is None:
                raise Mamba3Error(f"bundle {bundle.directory} takes '{name}', which the call does not give")
            t = _as_kernel_input(t, want)
            kernel_inputs[name] = t
        elif name in in_place:
            t = kernel_inputs[name + "0"]
            if t is not inputs[name + "0"]:
                copy_back.append((inputs[name + "0"], t))
        else:
            user = outputs.get(name)
            if user is not None and user.dtype == want and user.is_contiguous() and user.data_ptr() % 16 == 0:
                t = user
            else:
                shape = [_axis(spec, batch, seqlen, x) for x in a["axes"]]
                t = torch.empty(shape, dtype=want, device=device)
                if user is not None:
                    copy_back.append((user, t))
        results[name] = t
        tensors.append(t)
    bundle.launch(tensors, batch, seqlen)
    for user, t in copy_back:
        user.copy_(t)
    return results


def _launch_reference(bundle, spec, batch, seqlen, inputs):
    if bundle.is_gpu:
        raise Mamba3Error("float64_reference runs on CPU tensors")
    tensors, results = [], {}
    for a in bundle.arguments:
        if a["role"] == "input":
            t = _as_kernel_input(inputs[a["name"]], MANIFEST_DTYPES[a["dtype"]])
        else:
            t = torch.empty([_axis(spec, batch, seqlen, x) for x in a["axes"]], dtype=torch.float64)
            results[a["name"]] = t
        tensors.append(t)
    bundle.reference(tensors, batch, seqlen)
    return results


@contextlib.contextmanager
def float64_reference():
    """Within this block (on this thread) the ops on CPU tensors run the runtime's float64 reference
    of the layer (the definition, token by token) instead of the kernel, and return float64 tensors:
    what the tests compare the kernels with."""
    _reference.on = True
    try:
        yield
    finally:
        _reference.on = False


def _axis(spec, batch, seqlen, axis):
    return {"b": batch, "L": seqlen, "R": spec.rank, "G": spec.groups, "H": spec.heads, "N": spec.state,
            "P": spec.headdim, "S": spec.angles, "1": 1, "b+1": batch + 1}[axis]


def _spec(device, step, batch, seqlen, data=None, **kw):
    """The LayerSpec of a call on `device`; `data` (V) picks the GPU kernels' data type: f16 kernels for
    f16 tensors, bf16 ones otherwise (fp32 data is rounded to bf16, as the official kernels' matmuls do)."""
    target = _target(device)
    db, db_digest = "", ""
    if target == "cpu" or gpu_shapes_at_launch():
        batch, seqlen = -1, -1  # CPU bundles, and dynamic GPU ones, take any batch and length
    if target != "cpu" and not step:
        db, db_digest = tuning_db()  # a decode step has one kernel: nothing tuned
    gpu_dtype = "f16" if data is not None and data.dtype == torch.float16 else "bf16"
    return LayerSpec(target=target, step=step, batch=batch, seqlen=-1 if step else seqlen, gpu_dtype=gpu_dtype,
                     tuning_db=db, tuning_db_digest=db_digest, **kw)


# --------------------------------------------------------------------------- SISO prefill

def _siso_shapes(Q, V, Angles, cu_seqlens):
    b, L, G, N = Q.shape
    H, P = V.shape[2], V.shape[3]
    S = Angles.shape[-1]
    nseq = cu_seqlens.shape[0] - 1 if cu_seqlens is not None else b
    return b, L, G, N, H, P, S, nseq


def _check_siso(fn, Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states, cu_seqlens):
    if not isinstance(Q, Tensor) or Q.dim() != 4:
        _fail(fn, f"Q must be a (batch, seqlen, nheads_qk, headdim_qk) tensor, got "
                  f"{tuple(Q.shape) if isinstance(Q, Tensor) else type(Q).__name__}")
    if not isinstance(V, Tensor) or V.dim() != 4:
        _fail(fn, "V must be a (batch, seqlen, nheads, headdim_v) tensor")
    if not isinstance(Angles, Tensor) or Angles.dim() != 4:
        _fail(fn, "Angles must be a (batch, seqlen, nheads, headdim_angles) tensor")
    dev = Q.device
    _check_device(fn, dev)
    b, L, G, N = Q.shape
    H, P, S = V.shape[2], V.shape[3], Angles.shape[3]
    _check_layer(fn, dev, G, N, H, S, (
        ("Q", Q, Q.shape), ("K", K, Q.shape), ("V", V, (b, L, H, P)), ("ADT", ADT, (b, H, L)), ("DT", DT, (b, H, L)),
        ("Trap", Trap, (b, H, L)), ("Q_bias", Q_bias, (H, N)), ("K_bias", K_bias, (H, N)),
        ("Angles", Angles, (b, L, H, S))), D, Z, (b, L, H, P))
    nseq = b if cu_seqlens is None else _check_cu_seqlens(fn, cu_seqlens, b, L, dev)
    if states is not None:
        if not isinstance(states, (tuple, list)) or len(states) != 4 or \
                any(s is None for s in states) != all(s is None for s in states):
            _fail(fn, "Input_States must be a tuple of four tensors (angle, ssm, k, v), all given")
        _check_states(fn, states, nseq, H, S, P, N, dev)
    return b, L, G, N, H, P, S, nseq


def _siso_run(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states, cu_seqlens, chunk_size,
              outputs, final_states=True):
    b, L, G, N, H, P, S, nseq = _siso_shapes(Q, V, Angles, cu_seqlens)
    init = states is not None and states[0] is not None
    # The final k is f32 as the official function returns it; the final v takes V's dtype (it is V of
    # the last token), or v0's.
    spec = _spec(Q.device, False, nseq, L, data=V, heads=H, groups=G, state=N, headdim=P, angles=S,
                 has_d=D is not None, has_z=Z is not None, init=init, varlen=cu_seqlens is not None,
                 final_states=final_states, chunk=chunk_size,
                 **_argument_dtypes(Trap, Q_bias, K_bias, None, states[3] if init else V))
    inputs = _with_optional(dict(Q=Q, K=K, V=V, ADT=ADT, DT=DT, Trap=Trap, Q_bias=Q_bias, K_bias=K_bias,
                                 Angles=Angles), D=D, Z=Z, cu_seqlens=cu_seqlens)
    if init:
        inputs.update(angle0=states[0], ssm0=states[1], k0=states[2], v0=states[3])
    return _launch(spec, Q.device, nseq, L, inputs, outputs)


@torch.library.custom_op("mamba3::siso_combined", mutates_args=())
def _siso_combined_op(Q: Tensor, K: Tensor, V: Tensor, ADT: Tensor, DT: Tensor, Trap: Tensor,
                      Q_bias: Tensor, K_bias: Tensor, Angles: Tensor, D: Optional[Tensor],
                      Z: Optional[Tensor], angle0: Optional[Tensor], ssm0: Optional[Tensor],
                      k0: Optional[Tensor], v0: Optional[Tensor], cu_seqlens: Optional[Tensor],
                      chunk_size: int, return_final_states: bool) -> List[Tensor]:
    # Without return_final_states the kernel writes out only.
    r = _siso_run(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, (angle0, ssm0, k0, v0),
                  cu_seqlens, chunk_size, {}, final_states=return_final_states)
    out = r["out"].to(_out_dtype(V.dtype))
    if not return_final_states:
        return [out]
    return [out, r["angle"], r["ssm"], r["k"], r["v"].to(_out_dtype(V.dtype))]


@_siso_combined_op.register_fake
def _(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, angle0, ssm0, k0, v0, cu_seqlens, chunk_size,
      return_final_states):
    b, L, G, N, H, P, S, nseq = _siso_shapes(Q, V, Angles, cu_seqlens)
    out = V.new_empty((b, L, H, P))
    if not return_final_states:
        return [out]
    f = dict(dtype=torch.float32, device=V.device)
    return [out, torch.empty((nseq, H, S), **f), torch.empty((nseq, H, P, N), **f),
            torch.empty((nseq, H, N), **f), V.new_empty((nseq, H, P))]


def siso_combined(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D=None, Z=None, Input_States=None,
                  chunk_size=64, return_final_states=False, cu_seqlens=None):
    """mamba3_siso_combined's forward: out (batch, seqlen, nheads, headdim_v), or with
    return_final_states (out, angle, ssm, k, v) final states per sequence. Layouts as the official
    function's (see its docstring); chunk_size sets the CPU kernel's chunk (the GPU compiler chooses)."""
    states = tuple(Input_States) if Input_States is not None else None
    _check_siso("siso_combined", Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states, cu_seqlens)
    s = states or (None,) * 4
    r = torch.ops.mamba3.siso_combined(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, *s, cu_seqlens,
                                       int(chunk_size), bool(return_final_states))
    return tuple(r) if return_final_states else r[0]


@torch.library.custom_op("mamba3::siso_combined_out",
                         mutates_args=("out", "final_angle", "final_ssm", "final_k", "final_v"))
def _siso_combined_out_op(Q: Tensor, K: Tensor, V: Tensor, ADT: Tensor, DT: Tensor, Trap: Tensor,
                          Q_bias: Tensor, K_bias: Tensor, Angles: Tensor, D: Optional[Tensor],
                          Z: Optional[Tensor], angle0: Optional[Tensor], ssm0: Optional[Tensor],
                          k0: Optional[Tensor], v0: Optional[Tensor], cu_seqlens: Optional[Tensor],
                          chunk_size: int, out: Tensor, final_angle: Optional[Tensor],
                          final_ssm: Optional[Tensor], final_k: Optional[Tensor],
                          final_v: Optional[Tensor]) -> None:
    outputs = dict(out=out, angle=final_angle, ssm=final_ssm, k=final_k, v=final_v)
    _siso_run(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, (angle0, ssm0, k0, v0), cu_seqlens,
              chunk_size, {k: v for k, v in outputs.items() if v is not None},
              final_states=final_angle is not None)


@_siso_combined_out_op.register_fake
def _(*args):
    return None


def siso_combined_out(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D=None, Z=None, Input_States=None,
                      chunk_size=64, cu_seqlens=None, *, out, final_states=None):
    """siso_combined writing into preallocated tensors: `out` (batch, seqlen, nheads, headdim_v) and,
    when given, `final_states` = (angle, ssm, k, v) tensors of the final-state shapes. Returns `out`.
    The tensors must be contiguous; out= tensors whose dtype differs from the kernel's get a copy."""
    fn = "siso_combined_out"
    states = tuple(Input_States) if Input_States is not None else None
    b, L, G, N, H, P, S, nseq = _check_siso(fn, Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states,
                                            cu_seqlens)
    _check_out(fn, "out", out, (b, L, H, P), Q.device)
    fs = (None,) * 4
    if final_states is not None:
        fs = tuple(final_states)
        if len(fs) != 4:
            _fail(fn, "final_states must be (angle, ssm, k, v)")
        for name, t, shape in zip(_state_names("final_states"), fs, _state_shapes(nseq, H, S, P, N)):
            _check_out(fn, name, t, shape, Q.device)
    s = states or (None,) * 4
    torch.ops.mamba3.siso_combined_out(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, *s, cu_seqlens,
                                       int(chunk_size), out, *fs)
    return out


# --------------------------------------------------------------------------- SISO decode step

def _check_step(fn, Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states):
    if not isinstance(Q, Tensor) or Q.dim() != 3:
        _fail(fn, "Q must be a (batch, nheads_qk, headdim_qk) tensor")
    if not isinstance(V, Tensor) or V.dim() != 3:
        _fail(fn, "V must be a (batch, nheads, headdim_v) tensor")
    if not isinstance(Angles, Tensor) or Angles.dim() != 3:
        _fail(fn, "Angles must be a (batch, nheads, headdim_angles) tensor")
    dev = Q.device
    _check_device(fn, dev)
    b, G, N = Q.shape
    H, P, S = V.shape[1], V.shape[2], Angles.shape[2]
    _check_layer(fn, dev, G, N, H, S, (
        ("Q", Q, Q.shape), ("K", K, Q.shape), ("V", V, (b, H, P)), ("ADT", ADT, (b, H)), ("DT", DT, (b, H)),
        ("Trap", Trap, (b, H)), ("Q_bias", Q_bias, (H, N)), ("K_bias", K_bias, (H, N)),
        ("Angles", Angles, (b, H, S))), D, Z, (b, H, P))
    if states is None or len(states) != 4 or any(s is None for s in states):
        _fail(fn, "Input_States must be a tuple of four tensors (angle, ssm, k, v)")
    _check_states(fn, states, b, H, S, P, N, dev)
    return b, G, N, H, P, S


def _step_run(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states, outputs, in_place):
    b, G, N = Q.shape
    H, P, S = V.shape[1], V.shape[2], Angles.shape[2]
    spec = _spec(Q.device, True, b, 1, data=V, heads=H, groups=G, state=N, headdim=P, angles=S,
                 has_d=D is not None, has_z=Z is not None, init=True,
                 **_argument_dtypes(Trap, Q_bias, K_bias, states[2], states[3]))
    inputs = _with_optional(dict(Q=Q, K=K, V=V, ADT=ADT, DT=DT, Trap=Trap, Q_bias=Q_bias, K_bias=K_bias,
                                 Angles=Angles, angle0=states[0], ssm0=states[1], k0=states[2], v0=states[3]),
                            D=D, Z=Z)
    return _launch(spec, Q.device, b, 1, inputs, outputs, in_place)


@torch.library.custom_op("mamba3::siso_step", mutates_args=())
def _siso_step_op(Q: Tensor, K: Tensor, V: Tensor, ADT: Tensor, DT: Tensor, Trap: Tensor, Q_bias: Tensor,
                  K_bias: Tensor, Angles: Tensor, D: Optional[Tensor], Z: Optional[Tensor], angle0: Tensor,
                  ssm0: Tensor, k0: Tensor, v0: Tensor) -> List[Tensor]:
    r = _step_run(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, (angle0, ssm0, k0, v0), {}, ())
    # The kernel writes k in k0's dtype; the official function returns it in f32.
    return [r["out"].to(_out_dtype(V.dtype)), r["angle"], r["ssm"], r["k"].to(_out_dtype(torch.float32))]


@_siso_step_op.register_fake
def _(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, angle0, ssm0, k0, v0):
    b, G, N = Q.shape
    H, P, S = V.shape[1], V.shape[2], Angles.shape[2]
    f = dict(dtype=torch.float32, device=V.device)
    return [V.new_empty((b, H, P)), torch.empty((b, H, S), **f), torch.empty((b, H, P, N), **f),
            torch.empty((b, H, N), **f)]


@torch.library.custom_op("mamba3::siso_step_", mutates_args=("angle_state", "ssm_state", "k_state", "v_state"))
def _siso_step_inplace_op(Q: Tensor, K: Tensor, V: Tensor, ADT: Tensor, DT: Tensor, Trap: Tensor,
                          Q_bias: Tensor, K_bias: Tensor, Angles: Tensor, D: Optional[Tensor],
                          Z: Optional[Tensor], angle_state: Tensor, ssm_state: Tensor, k_state: Tensor,
                          v_state: Tensor) -> Tensor:
    r = _step_run(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z,
                  (angle_state, ssm_state, k_state, v_state), {}, ("angle", "ssm", "k", "v"))
    return r["out"].to(V.dtype)


@_siso_step_inplace_op.register_fake
def _(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, angle_state, ssm_state, k_state, v_state):
    return V.new_empty((Q.shape[0], V.shape[1], V.shape[2]))


def siso_step(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D=None, Z=None, Input_States=None, *,
              inplace_states=False):
    """mamba3_siso_step: one decode token. Returns (out (batch, nheads, headdim_v), [angle, ssm, k, v])
    like the official function (v is V). With inplace_states=True the four Input_States tensors are
    updated in place (the decode loop's form, no new state tensors) and returned."""
    fn = "siso_step"
    states = tuple(Input_States) if Input_States is not None else None
    _check_step(fn, Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, states)
    if inplace_states:
        for name, t in zip(("angle", "ssm", "k", "v"), states):
            if not t.is_contiguous():
                _fail(fn, f"Input_States ({name}) is not contiguous; in-place states must be")
        out = torch.ops.mamba3.siso_step_(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z, *states)
        return out, list(states)
    out, angle, ssm, k = torch.ops.mamba3.siso_step(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D, Z,
                                                    *states)
    return out, [angle, ssm, k, V]


# --------------------------------------------------------------------------- MIMO prefill

def _check_mimo(fn, Q, K, V, ADT, DT, Trap, Q_bias, K_bias, MIMO_V, MIMO_Z, MIMO_Out, Angles, D, Z,
                cu_seqlens, norm_weight):
    if not isinstance(Q, Tensor) or Q.dim() != 5:
        _fail(fn, "Q must be a (batch, seqlen, mimo_rank, nheads_qk, headdim_qk) tensor")
    if not isinstance(V, Tensor) or V.dim() != 4:
        _fail(fn, "V must be a (batch, seqlen, nheads, headdim_v) tensor")
    if not isinstance(Angles, Tensor) or Angles.dim() != 4:
        _fail(fn, "Angles must be a (batch, seqlen, nheads, headangles) tensor")
    dev = Q.device
    _check_device(fn, dev)
    b, L, R, G, N = Q.shape
    H, P, S = V.shape[2], V.shape[3], Angles.shape[3]
    _check_layer(fn, dev, G, N, H, S, (
        ("Q", Q, Q.shape), ("K", K, Q.shape), ("V", V, (b, L, H, P)), ("ADT", ADT, (b, H, L)), ("DT", DT, (b, H, L)),
        ("Trap", Trap, (b, H, L)), ("Q_bias", Q_bias, (H, R, N)), ("K_bias", K_bias, (H, R, N)),
        ("MIMO_V", MIMO_V, (H, R, P)), ("MIMO_Z", MIMO_Z, (H, R, P)), ("Angles", Angles, (b, L, H, S))),
        D, Z, (b, L, H, P))
    if MIMO_Out is not None:
        _check_tensor(fn, "MIMO_Out", MIMO_Out, (H, R, P), dev)
    if norm_weight is not None:
        _check_tensor(fn, "outproj_norm_weight", norm_weight.reshape(-1), (H * P,), dev)
    nseq = b if cu_seqlens is None else _check_cu_seqlens(fn, cu_seqlens, b, L, dev)
    return b, L, R, G, N, H, P, S, nseq


def _mimo_final_states(r, V, cu_seqlens):
    # The official function's layouts: the angle sum wrapped into [0, 2 pi), K (b, R, H, N), and V of
    # each sequence's last token (b, H, P).
    angle = torch.remainder(r["angle"], 2 * math.pi)
    k = r["k"].permute(0, 2, 1, 3).contiguous()
    if cu_seqlens is None:
        v = V[:, -1].clone(memory_format=torch.contiguous_format)
    else:
        v = V[0, cu_seqlens[1:].long() - 1].clone(memory_format=torch.contiguous_format)
    return [angle, r["ssm"], k, v]


@torch.library.custom_op("mamba3::mimo", mutates_args=())
def _mimo_op(Q: Tensor, K: Tensor, V: Tensor, ADT: Tensor, DT: Tensor, Trap: Tensor, Q_bias: Tensor,
             K_bias: Tensor, MIMO_V: Tensor, MIMO_Z: Tensor, MIMO_Out: Optional[Tensor], Angles: Tensor,
             D: Optional[Tensor], Z: Optional[Tensor], chunk_size: int, return_state: bool,
             cu_seqlens: Optional[Tensor], norm_weight: Optional[Tensor], norm_eps: float,
             pairing: str) -> List[Tensor]:
    b, L, R, G, N = Q.shape
    H, P, S = V.shape[2], V.shape[3], Angles.shape[3]
    nseq = cu_seqlens.shape[0] - 1 if cu_seqlens is not None else b
    spec = _spec(Q.device, False, nseq, L, data=V, heads=H, groups=G, state=N, headdim=P, angles=S, rank=R,
                 mimo=True,
                 has_d=D is not None, has_z=Z is not None, varlen=cu_seqlens is not None,
                 pairing=pairing, wrap_angle=False, rmsnorm=norm_weight is not None,
                 norm_eps=float(norm_eps), chunk=chunk_size, final_states=return_state,
                 per_rank_outputs=MIMO_Out is None, **_argument_dtypes(Trap, Q_bias, K_bias))
    inputs = _with_optional(dict(Q=Q, K=K, V=V, ADT=ADT, DT=DT, Trap=Trap, Q_bias=Q_bias, K_bias=K_bias,
                                 Angles=Angles, mimo_v=MIMO_V, mimo_z=MIMO_Z),
                            D=D, Z=Z, cu_seqlens=cu_seqlens, mimo_o=MIMO_Out,
                            norm_weight=None if norm_weight is None else norm_weight.reshape(H, P))
    r = _launch(spec, Q.device, nseq, L, inputs, {})
    out = r["out"].to(_out_dtype(V.dtype))
    return [out] + (_mimo_final_states(r, V, cu_seqlens) if return_state else [])


@_mimo_op.register_fake
def _(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, MIMO_V, MIMO_Z, MIMO_Out, Angles, D, Z, chunk_size,
      return_state, cu_seqlens, norm_weight, norm_eps, pairing):
    b, L, R, G, N = Q.shape
    H, P, S = V.shape[2], V.shape[3], Angles.shape[3]
    nseq = cu_seqlens.shape[0] - 1 if cu_seqlens is not None else b
    out = V.new_empty((b, L, H, P) if MIMO_Out is not None else (b, L, R, H, P))
    if not return_state:
        return [out]
    f = dict(dtype=torch.float32, device=V.device)
    return [out, torch.empty((nseq, H, S), **f), torch.empty((nseq, H, P, N), **f),
            torch.empty((nseq, R, H, N), **f), V.new_empty((nseq, H, P))]


def mimo(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, MIMO_V, MIMO_Z, MIMO_Out, Angles, D, Z, chunk_size=16,
         rotary_dim_divisor=4, dtype=torch.bfloat16, return_state=False, cu_seqlens=None,
         fuse_pregate_headwise_rms_norm=False, outproj_norm_weight=None, outproj_norm_eps=1e-5, *,
         rotary_pairing="half_split"):
    """mamba3_mimo's forward (the TileLang function's argument order, half-split rotary pairs): out
    (batch, seqlen, nheads, headdim_v), or with return_state (out, angle, ssm, k, v) in its layouts.
    With MIMO_Out=None there is no down projection: out is (batch, seqlen, mimo_rank, nheads, headdim_v),
    each rank's gated term.
    rotary_dim_divisor and dtype are accepted for the signature: the angles' count comes from Angles,
    and the GPU kernels compute in bf16 with an fp32 state. With fuse_pregate_headwise_rms_norm the
    per-head RMSNorm (weights outproj_norm_weight) runs before the gate. rotary_pairing (an extension)
    selects "adjacent" pairs instead of the TileLang kernel's "half_split" ones."""
    fn = "mimo"
    if rotary_pairing not in ("half_split", "adjacent"):
        _fail(fn, f"rotary_pairing is {rotary_pairing!r}, not 'half_split' or 'adjacent'")
    norm = outproj_norm_weight if fuse_pregate_headwise_rms_norm else None
    if fuse_pregate_headwise_rms_norm and outproj_norm_weight is None:
        _fail(fn, "fuse_pregate_headwise_rms_norm needs outproj_norm_weight")
    _check_mimo(fn, Q, K, V, ADT, DT, Trap, Q_bias, K_bias, MIMO_V, MIMO_Z, MIMO_Out, Angles, D, Z, cu_seqlens,
                norm)
    r = torch.ops.mamba3.mimo(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, MIMO_V, MIMO_Z, MIMO_Out, Angles, D, Z,
                              int(chunk_size), bool(return_state), cu_seqlens, norm, float(outproj_norm_eps),
                              rotary_pairing)
    return tuple(r) if return_state else r[0]
