//===- GpuCompile.h - One GPU variant of a layer, to a cubin ----*- C++ -*-===//
//
// The whole GPU compile of one kernel variant of a layer module: the
// stages of ssm-to-nvvm (GpuLowering.h's SsmToNvvmStage: the schedule; the
// gpu.module and its kernels, with the launch shapes, scratch buffers,
// tensor maps and launch parameters recorded on them as attributes, which
// are read here into the bundle's launch description, and each chunked
// kernel's #ssmk.plan; the kernel bodies; the NVVM lowering), PTX and cubin.
// mamba3-compile chooses the variants and writes the bundle; it assembles
// no pipeline of its own.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_GPUCOMPILE_H
#define MAMBA3_CODEGEN_GPUCOMPILE_H

#include "codegen/BundleWriter.h"
#include "codegen/GpuLowering.h"
#include "codegen/LayerModule.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir {
namespace ssm {

/// Where compileGpuKernels stops (mamba3-compile --emit): after
/// ssm-gpu-schedule, after ssm-to-gpu, after the NVVM lowering (the module
/// holds that stage), after PTX (in kernel.ptx), or with the cubin.
/// Where compileGpuKernels stops: after ssm-gpu-schedule, after ssm-to-gpu
/// (kernels as ssmk ops), after ssmk-build-kernels (the gpu dialect
/// kernels), after the NVVM lowering, at PTX, or with the cubin.
enum class GpuCompileStage { Scheduled, Kernels, Gpu, Lowered, Ptx, Cubin };

/// Compiles the layer module `module` of `spec` (rewritten in place) for
/// the variant `options` asks for, into `kernel`: launches, scratch, tensor
/// maps, parameters, schedule, chunk, the pipeline strings, PTX and cubin.
/// The CUDA toolkit at `toolkit` gives libdevice and ptxas. Fails with
/// `error` set (after the diagnostics of a failed pass).
LogicalResult compileGpuKernels(ModuleOp module, LayerSpec spec,
                                const SsmToNvvmOptions &options,
                                llvm::StringRef toolkit, GpuCompileStage stop,
                                GpuKernelBuild &kernel, std::string &error);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_GPUCOMPILE_H
