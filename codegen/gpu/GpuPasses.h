//===- GpuPasses.h - The GPU kernel lowering passes -------------*- C++ -*-===//
//
// ssm-gpu-schedule and ssm-to-gpu (GpuPasses.td), and the attributes
// ssm-to-gpu records on its kernels for the bundle writer
// (codegen/GpuCompile.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_GPU_GPUPASSES_H
#define MAMBA3_CODEGEN_GPU_GPUPASSES_H

#include "dialect/SsmkDialect.h"
#include "passes/Passes.h"

namespace mlir {
namespace ssm {

#define GEN_PASS_DECL
#include "codegen/gpu/GpuPasses.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/gpu/GpuPasses.h.inc"

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

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_GPU_GPUPASSES_H
