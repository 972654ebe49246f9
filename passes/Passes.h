//===- Passes.h - ssm passes and pipelines ----------------------*- C++ -*-===//
#ifndef MAMBA3_PASSES_PASSES_H
#define MAMBA3_PASSES_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir {
namespace ssm {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

class ScanOp;

/// Tiles the sequence of `scan` (not varlen) into an scf.for over chunks of
/// `tokens` tokens, each running an ssm.scan of its chunk from the carried
/// states (ssm-tile-sequence); replaces and erases `scan`.
FailureOr<scf::ForOp> tileScanSequence(OpBuilder &b, ScanOp scan,
                                       int64_t tokens);

/// Options of the named pipelines.
struct SsmPipelineOptions : public PassPipelineOptions<SsmPipelineOptions> {
  Option<int64_t> chunkSize{
      *this, "chunk-size",
      llvm::cl::desc("tokens per chunk; 0 lowers the recurrence token by "
                     "token (no chunking)"),
      llvm::cl::init(64)};
};

/// The ssm passes shared by every target: decompose, expand the rule and
/// the rotary, then either chunk (MIMO folded into matmuls) or lower the
/// recurrence token by token. Leaves linalg/scf/tensor/arith/math on tensors.
void buildSsmExpansionPipeline(OpPassManager &pm,
                               const SsmPipelineOptions &options);

/// Registers `ssm-expand` (buildSsmExpansionPipeline) as a named pipeline.
/// The target pipelines (`ssm-to-cpu`, ...) live in codegen/Pipelines.h.
void registerSsmExpansionPipeline();

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_PASSES_PASSES_H
