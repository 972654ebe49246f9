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
#include "dialect/SsmkDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir {
namespace ssm {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Discardable attributes ssm-to-gpu puts on each kernel for the bundle
/// writer: the schedule ("tokens", "chunked" or "chunk-parallel"), the bytes
/// of dynamic shared memory a launch must pass, the chunk size of the
/// chunked schedules (tokens) and chunk-parallel's chunks per block (what
/// each block of phases 1 and 3 walks). ssm-gpu-schedule states a layer's
/// schedule for ssm-to-gpu as one typed #ssmk.schedule
/// (ssmk::kScheduleAttrName, dialect/SsmkDialect.td).
inline constexpr llvm::StringLiteral kScheduleAttrName = "ssm.schedule";
inline constexpr llvm::StringLiteral kDynamicSharedBytesAttrName =
    "ssm.dynamic_shared_bytes";
inline constexpr llvm::StringLiteral kChunkSizeAttrName = "ssm.chunk_size";
inline constexpr llvm::StringLiteral kChunksPerBlockAttrName =
    "ssm.chunks_per_block";
/// ssm-gpu-schedule: why `auto` gave a layer the token-sequential kernel and
/// not the chunked tensor-core one (the limit that blocked it); ssm-to-gpu
/// copies it onto the kernel and the bundle writer into the manifest.
inline constexpr llvm::StringLiteral kScheduleReasonAttrName =
    "ssm.schedule_reason";
/// A schedule of several launches (chunk-parallel) numbers its kernels in
/// launch order; their extra arguments are scratch buffers, each marked with
/// its role (an argument attribute).
inline constexpr llvm::StringLiteral kLaunchIndexAttrName = "ssm.launch_index";
/// A scratch argument's dictionary: `name`, `shape` (sizes and the axis
/// names "b" and "spans", which the runtime sizes per launch) and
/// `element_bytes`.
inline constexpr llvm::StringLiteral kScratchAttrName = "ssm.scratch";
/// Each kernel's launch grid: three entries, each a block count or the name
/// of a launch size ("H", "b", "spans": ceil(ceil(L / chunk) / chunks per
/// block)).
inline constexpr llvm::StringLiteral kGridAttrName = "ssm.grid";
/// The i64 scalars a dynamic-shape kernel takes after its tensor maps, by
/// name: "seqlen" (L; the total tokens for varlen) and "chunks_per_block"
/// (chunk-parallel, when the runtime chooses it).
inline constexpr llvm::StringLiteral kLaunchParametersAttrName =
    "ssm.launch_parameters";
/// chunk-parallel kernels whose chunks per block the runtime chooses: the
/// blocks of phases 1 and 3 an SM holds, for that rule.
inline constexpr llvm::StringLiteral kBlocksPerSmAttrName = "ssm.blocks_per_sm";
/// Marks a kernel argument that points at a TMA tensor map (a 128-byte
/// CUtensorMap in device memory) of a layer argument: a dictionary with
/// `argument` (the layer argument's index), `box` (the copied box, innermost
/// dimension first) and `swizzle` (bytes: 128).
inline constexpr llvm::StringLiteral kTensorMapAttrName = "ssm.tensor_map";

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
