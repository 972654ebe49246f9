//===- CpuCompile.h - A layer module to the host's LLVM dialect -*- C++ -*-===//
//
// The CPU compile of a layer module, the passes in order: ssm-expand (the
// ssm ops to linalg/scf on tensors, the chunked form at the spec's chunk
// size), then, unless asked to stop there, the host lowering
// (addCpuLoweringPasses: bufferization, deallocation, loops, the
// conversions to LLVM). mamba3-compile writes the bundle from the result
// (writeCpuBundle); it assembles no pipeline of its own, as compileGpuKernels
// does for the GPU targets.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_CPUCOMPILE_H
#define MAMBA3_CODEGEN_CPUCOMPILE_H

#include "codegen/LayerModule.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir {
namespace ssm {

/// Where compileCpuKernels stops: after ssm-expand (mamba3-compile
/// --emit=mlir-expanded), or in the LLVM dialect.
enum class CpuCompileStage { Expanded, Lowered };

/// Rewrites the layer module `module` of `spec` in place to `stop`, with
/// ssm-expand's chunk size `spec.chunkSize`. `passPipeline` receives the
/// textual pipeline that ran (for the manifest). Fails with `error` set
/// (after the diagnostics of a failed pass).
LogicalResult compileCpuKernels(ModuleOp module, const LayerSpec &spec,
                                CpuCompileStage stop, std::string &passPipeline,
                                std::string &error);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_CPUCOMPILE_H
