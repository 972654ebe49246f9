//===- Pipelines.h - Named target pipelines ---------------------*- C++ -*-===//
//
// The target pipelines of the ssm compiler. The target-independent part,
// `ssm-expand`, is declared in passes/Passes.h.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_PIPELINES_H
#define MAMBA3_CODEGEN_PIPELINES_H

#include "passes/Passes.h"

namespace mlir {
namespace ssm {

/// ssm dialect on tensors to the LLVM dialect for the host:
/// buildSsmExpansionPipeline followed by addCpuLoweringPasses.
void buildSsmToCpuPipeline(OpPassManager &pm,
                           const SsmPipelineOptions &options);

/// Registers the named pipelines `ssm-expand`, `ssm-to-cpu` (with
/// chunk-size) and `ssm-cpu-lowering` (the host lowering alone, for tensor
/// level IR without ssm ops), and the pass `ssm-cpu-strided-copy-to-linalg`.
void registerSsmPipelines();

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_PIPELINES_H
