"""ctypes binding of the runtime's C API (runtime/include/mamba3/mamba3.h).

The runtime library is found, in order: $MAMBA3_RUNTIME_LIBRARY; the copy
installed inside this package (pip install ./python); the build tree of the
checkout this package sits in (build/lib); the system's library path.
"""
import ctypes
import ctypes.util
import json
import os
import threading

import torch

API_VERSION = 1
MAX_RANK = 8
DTYPE_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.int32: 2, torch.float64: 3, torch.float16: 4}
MANIFEST_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16, "i32": torch.int32}


class Mamba3Error(RuntimeError):
    """A bundle, a launch or a configuration the runtime refused; the message says why."""


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("shape", ctypes.c_int64 * MAX_RANK)]


_lib = None
_lib_lock = threading.Lock()


def _library_candidates():
    env = os.environ.get("MAMBA3_RUNTIME_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "lib", "libmamba3_runtime.so")
    for build in ("build", "build-runtime"):
        yield os.path.join(os.path.dirname(os.path.dirname(here)), build, "lib",
                           "libmamba3_runtime.so")
    found = ctypes.util.find_library("mamba3_runtime")
    if found:
        yield found


def library():
    """The loaded runtime library (loaded on first use)."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _library_candidates():
            tried.append(path)
            if os.path.sep in path and not os.path.exists(path):
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried[-1] += f" ({e})"
                continue
            lib.mamba3_api_version.restype = ctypes.c_int
            lib.mamba3_last_error.restype = ctypes.c_char_p
            lib.mamba3_bundle_load.restype = ctypes.c_void_p
            lib.mamba3_bundle_load.argtypes = [ctypes.c_char_p, ctypes.c_int]
            lib.mamba3_bundle_free.argtypes = [ctypes.c_void_p]
            lib.mamba3_bundle_workspace_bytes.restype = ctypes.c_int64
            lib.mamba3_bundle_workspace_bytes.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
            lib.mamba3_bundle_launch.restype = ctypes.c_int
            lib.mamba3_bundle_launch.argtypes = [
                ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(_Buffer),
                ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
            lib.mamba3_bundle_reference.restype = ctypes.c_int
            lib.mamba3_bundle_reference.argtypes = [
                ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(_Buffer), ctypes.c_int32]
            version = lib.mamba3_api_version()
            if version != API_VERSION:
                raise Mamba3Error(f"{path} has C API version {version}, this package needs {API_VERSION}: "
                                  "rebuild the runtime from the same checkout")
            _lib = lib
            return lib
        raise Mamba3Error("libmamba3_runtime.so not found (tried: " + "; ".join(tried) + "); build it "
                          "(scripts/build.sh, or cmake -DMAMBA3_RUNTIME_ONLY=ON) or set MAMBA3_RUNTIME_LIBRARY")


def _last_error(lib):
    return lib.mamba3_last_error().decode(errors="replace")


class Bundle:
    """A loaded bundle: its manifest and launches on torch tensors."""

    def __init__(self, directory, device_index=0):
        lib = library()
        self.directory = directory
        with open(os.path.join(directory, "manifest.json")) as f:
            self.manifest = json.load(f)
        handle = lib.mamba3_bundle_load(directory.encode(), int(device_index))
        if not handle:
            raise Mamba3Error(_last_error(lib))
        self._handle = handle
        self._lib = lib
        self.arguments = self.manifest["arguments"]
        self.is_gpu = self.manifest["target"] != "cpu"
        self._workspace_bytes = {}  # (batch, seqlen) -> bytes: asked once per shape, not per launch

    def __del__(self):
        if getattr(self, "_handle", None):
            self._lib.mamba3_bundle_free(self._handle)
            self._handle = None

    def workspace_bytes(self, batch, seqlen):
        n = self._lib.mamba3_bundle_workspace_bytes(self._handle, batch, seqlen)
        if n < 0:
            raise Mamba3Error(_last_error(self._lib))
        return n

    @staticmethod
    def _buffers(tensors):
        arr = (_Buffer * len(tensors))()
        for i, t in enumerate(tensors):
            b = arr[i]
            b.data = t.data_ptr()
            b.dtype = DTYPE_CODES.get(t.dtype, -1)
            b.rank = t.dim()
            for d, s in enumerate(t.shape[:MAX_RANK]):
                b.shape[d] = s
        return arr

    def launch(self, tensors, batch, seqlen):
        """Launches on `tensors` (manifest order). GPU: on torch's current stream of their device,
        with a workspace from torch's allocator; returns without waiting."""
        arr = self._buffers(tensors)
        workspace, nbytes, stream = None, 0, None
        if self.is_gpu:
            device = tensors[0].device
            nbytes = self._workspace_bytes.get((batch, seqlen))
            if nbytes is None:
                nbytes = self._workspace_bytes[(batch, seqlen)] = self.workspace_bytes(batch, seqlen)
            if nbytes:
                ws = torch.empty(nbytes, dtype=torch.uint8, device=device)
                workspace = ws.data_ptr()
            stream = torch.cuda.current_stream(device).cuda_stream
        r = self._lib.mamba3_bundle_launch(self._handle, batch, seqlen, arr, len(tensors),
                                           workspace, nbytes, stream)
        if r != 0:
            raise Mamba3Error(f"{self.directory}: {_last_error(self._lib)}")

    def reference(self, tensors, batch, seqlen):
        """The float64 reference on host tensors laid out as the arguments (outputs float64)."""
        arr = self._buffers(tensors)
        if self._lib.mamba3_bundle_reference(self._handle, batch, seqlen, arr, len(tensors)) != 0:
            raise Mamba3Error(_last_error(self._lib))
