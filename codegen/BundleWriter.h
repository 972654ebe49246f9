//===- BundleWriter.h - Kernel bundles on disk ------------------*- C++ -*-===//
//
// A bundle is a directory that the runtime (no MLIR) can load:
//   manifest.json  what the kernel is and how to call it (below)
//   kernel.so      the host build (target "cpu")
//   kernel.cubin   the GPU build (target "sm_90a"), with
//   kernel.ptx     its PTX (the runtime's fallback, and for reading)
//   kernel.mlir    the ssm-level input module, for inspection
//
// manifest.json (format_version 5):
//   format, format_version, target, kind ("scan" | "step"), library, entry,
//   calling_convention, host {triple, cpu}, config {batch, seqlen (-1:
//   dynamic, given at launch), heads, groups, state, headdim, angles, rank,
//   mimo, has_d, has_z, has_initial_state, wrap_angle, rule, pairing,
//   dtype, ...}, chunk_size, pipeline, pass_pipeline, config_string,
//   config_hash, library_digest, ptx_digest,
//   arguments [{index, name, role ("input" | "output"), dtype, axes, shape}]
// GPU bundles add
//   ptx, schedule, schedule_reason (when auto fell back to tokens),
//   launches [{kernel, grid, block, dynamic_shared_bytes, ptxas}] in launch
//     order: grid and block entries are integers or the names of sizes the
//     runtime computes for each launch ("H", "b", "spans" =
//     ceil(ceil(L / chunk_size) / chunks per block)); ptxas {registers,
//     spill_store_bytes, spill_load_bytes, stack_bytes, shared_bytes} is
//     what ptxas reported, for reading and for tests,
//   scratch [{name, element_bytes, shape}]: device buffers the runtime
//     allocates (contents undefined) for the kernels to pass data between
//     launches, `shape` of integers and the names "b" and "spans",
//   tensor_maps [{name, argument, box, swizzle_bytes}]: TMA tensor maps the
//     runtime encodes (cuTensorMapEncodeTiled) over the buffer of argument
//     `argument` (row-major, its dims innermost first, at the launch's
//     shape), copying boxes of `box` elements (innermost first) with that
//     swizzle, and places in device memory (128 bytes each),
//   parameters: the names of the i64 values every kernel takes last
//     ("seqlen": L, the total tokens for varlen; "chunks_per_block"),
//   chunks_per_block (chunk-parallel): the chunks a block of phases 1 and 3
//     walks, or 0: chosen per launch as the fewest that let b x H x spans
//     blocks fit on the device's SMs at blocks_per_sm each.
// A GPU bundle with a schedule chosen at launch (several variants) adds
//   variant: the name of the variant the top level describes,
//   variants [{variant, schedule, library, library_digest, ptx, ptx_digest,
//     chunk_size, pipeline, launches, scratch, parameters, tensor_maps,
//     chunks_per_block, blocks_per_sm, seqlen_multiple, specializes}]: the
//     others, each with its own kernel files (kernel-<variant>.cubin /
//     .ptx); a variant with seqlen_multiple (tokens per chunk) and
//     specializes (a variant without them, same schedule and chunk) has
//     kernels for lengths it divides only (full chunks, no per-token
//     bounds) and runs in place of that variant at such lengths,
//   dispatch {source, table [{batch: [lo, hi], seqlen: [lo, hi], variant}]}:
//     the first row holding a launch's batch and seqlen (hi 0: unbounded)
//     picks the variant (never a full-chunk one); other shapes get the
//     runtime's cost model (the chunk-parallel variant when batch x heads
//     leaves SMs idle over at least three spans, else the chunked one;
//     runtime GpuBundle.h); then the full-chunk variant that specializes
//     the pick, if the length allows it.
// Every GPU kernel takes one device pointer per argument in the order above,
// then one per scratch buffer, then one per tensor map, then the parameters.
//
// The manifest is written last, so a directory with a manifest holds a
// complete bundle.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_BUNDLEWRITER_H
#define MAMBA3_CODEGEN_BUNDLEWRITER_H

#include "codegen/GpuLowering.h"
#include "codegen/HostObject.h"
#include "codegen/LayerModule.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir {
namespace ssm {

/// Version of the manifest layout; the runtime refuses other versions.
constexpr int kBundleFormatVersion = 6;

/// What a bundle records besides the spec.
struct BundleDescription {
  std::string target = "cpu";
  /// The named pipeline that produced the kernel, e.g.
  /// "ssm-to-cpu{chunk-size=64}".
  std::string pipeline;
  /// The full textual pass pipeline that ran.
  std::string passPipeline;
  HostTargetOptions host;
};

/// One kernel launch of a GPU bundle.
struct GpuLaunchBuild {
  std::string kernel;
  /// Launch shape: integers or axis names (see the file comment).
  std::array<llvm::json::Value, 3> grid = {1, 1, 1};
  std::array<int64_t, 3> block = {1, 1, 1};
  /// Bytes of dynamic shared memory each launch passes.
  int64_t dynamicSharedBytes = 0;
};

/// A device buffer the runtime allocates for the kernels' own use.
struct GpuScratchBuild {
  std::string name;
  int64_t elementBytes = 4;
  /// Sizes and launch-size names ("b", "spans").
  llvm::json::Array shape;
};

/// A TMA tensor map the runtime encodes over a layer argument's buffer.
struct GpuTensorMapBuild {
  std::string name;
  int64_t argument = 0;
  std::vector<int64_t> box;
  int64_t swizzleBytes = 0;
};

/// The GPU kernels of a bundle, as the runtime launches them.
struct GpuKernelBuild {
  std::string ptx;
  CubinResult cubin;
  /// In launch order; every launch takes the same parameters.
  std::vector<GpuLaunchBuild> launches;
  std::vector<GpuScratchBuild> scratch;
  std::vector<GpuTensorMapBuild> tensorMaps;
  /// ssm-to-gpu's schedule: "tokens", "chunked" or "chunk-parallel".
  std::string schedule = "tokens";
  /// Why the compiler's `auto` schedule gave the token-sequential kernel
  /// (empty when it did not, or when it was asked for).
  std::string scheduleReason;
  /// The i64 launch parameters after the tensor maps, by name.
  std::vector<std::string> parameters;
  /// chunk-parallel: chunks per block (0: per launch, with blocksPerSm);
  /// -1 for the other schedules.
  int64_t chunksPerBlock = -1, blocksPerSm = 0;
  /// Tokens per chunk (0: token-sequential).
  int64_t chunkSize = 0;
  /// The named pipeline that built these kernels, e.g.
  /// "ssm-to-nvvm{chip=sm_90a ... schedule=chunked chunk-size=64}", and the
  /// textual pass pipeline.
  std::string pipeline, passPipeline;
  /// The variant's name in a bundle of several (empty in a bundle of one).
  std::string variant;
  /// A full-chunk variant (ssm-gpu-schedule full-chunks): the tokens per
  /// chunk, which must divide the launch's length, and the variant it
  /// stands in for at such lengths; 0 and empty otherwise.
  int64_t seqlenMultiple = 0;
  std::string specializes;
};

/// How a bundle of several GPU variants picks one per launch shape.
struct GpuDispatchBuild {
  /// "cost-model", or the tuning database the table came from.
  std::string source = "cost-model";
  struct Row {
    /// Inclusive; a max of 0 is unbounded.
    int64_t batchMin = 1, batchMax = 0, seqlenMin = 1, seqlenMax = 0;
    std::string variant;
  };
  std::vector<Row> table;
};

/// The manifest of a bundle for `spec`.
llvm::json::Object buildManifest(const LayerSpec &spec,
                                 const BundleDescription &description,
                                 const GpuKernelBuild *gpu = nullptr);

/// Prints `manifest` as JSON: the top-level keys in a fixed, readable order,
/// "fnv1a64:<16 hex digits>" of a kernel file's bytes followed by "\n" and
/// the config string: the manifest's library_digest / ptx_digest
/// (runtime/lib/BundleChecks.cpp checks them).
std::string bundleFileDigest(llvm::StringRef bytes,
                             llvm::StringRef configString);

/// one line per argument.
void printManifest(llvm::raw_ostream &os, const llvm::json::Object &manifest);

/// Writes a CPU bundle into `dir` (created if needed): kernel.mlir from
/// `inputModule`, kernel.so compiled from `llvmModule` (LLVM dialect), then
/// manifest.json.
llvm::Error writeCpuBundle(llvm::StringRef dir, const LayerSpec &spec,
                           ModuleOp inputModule, ModuleOp llvmModule,
                           const BundleDescription &description);

/// Writes a GPU bundle into `dir`: kernel.mlir, kernel.ptx and kernel.cubin
/// of the first variant, kernel-<variant>.ptx / .cubin of the others, then
/// manifest.json. More than one variant needs their names and `dispatch`.
llvm::Error writeGpuBundle(llvm::StringRef dir, const LayerSpec &spec,
                           ModuleOp inputModule,
                           llvm::ArrayRef<GpuKernelBuild> variants,
                           const GpuDispatchBuild &dispatch,
                           const BundleDescription &description);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_BUNDLEWRITER_H
