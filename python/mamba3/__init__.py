"""Mamba-3 layer kernels compiled by mamba3-compiler, as PyTorch ops.

Drop-in for the official functions (state-spaces/mamba):

    from mamba3 import siso_combined as mamba3_siso_combined
    from mamba3 import siso_step as mamba3_siso_step
    from mamba3 import mimo as mamba3_mimo

CUDA tensors run the generated sm_90a kernels on torch's current stream; CPU
tensors run the CPU bundles. See python/README.md.
"""
from ._runtime import Mamba3Error, Bundle, library
from ._bundles import LayerSpec, get_bundle, bundle_key, cache_dir
from .ops import siso_combined, siso_combined_out, siso_step, mimo, float64_reference

__all__ = ["siso_combined", "siso_combined_out", "siso_step", "mimo", "float64_reference", "Mamba3Error", "Bundle", "LayerSpec",
           "get_bundle", "bundle_key", "cache_dir", "library"]
