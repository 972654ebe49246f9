# -*- Python -*-
# lit configuration of the mamba3 FileCheck suites.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "MAMBA3"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.mamba3_obj_root, "test")
# GoogleTest sources and inputs shared by several tests are not lit tests.
config.excludes = ["unit", "Inputs", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%golden", config.mamba3_golden_dir))
config.substitutions.append(("%examples",
                             os.path.join(config.mamba3_src_root, "examples")))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
# `not`, `count` and `split-file` come with FileCheck in LLVM's tools folder.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.mamba3_tools_dir, config.llvm_tools_dir]
tools = ["mamba3-opt", "mamba3-run", "mamba3-compile", "mamba3-tune"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# GPU code generation needs the CUDA toolkit's ptxas (not a GPU).
import os
_cuda = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
if os.access(os.path.join(_cuda, "bin", "ptxas"), os.X_OK):
    config.available_features.add("ptxas")
    config.environment["CUDA_HOME"] = _cuda

# Tests that launch kernels need a CUDA driver (libcuda.so.1) and a GPU.
import ctypes
try:
    ctypes.CDLL("libcuda.so.1")
    config.available_features.add("cuda-driver")
except OSError:
    pass
