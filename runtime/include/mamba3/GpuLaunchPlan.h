//===- GpuLaunchPlan.h - Which variant a GPU bundle runs, and how -*- C++ -*-===//
//
// The variant of a GPU bundle that runs a launch shape and the launch plan
// of it (grids, chunks per block, scratch, parameters): pure functions of
// the manifest and the shape (runtime/lib/GpuLaunchPlan.cpp), with no CUDA,
// which GpuBundle launches and the tools and tests ask directly.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_GPULAUNCHPLAN_H
#define MAMBA3_GPULAUNCHPLAN_H

#include "mamba3/CpuBundle.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mamba3 {

struct LaunchShape;

/// What a GPU bundle runs for one launch shape: the manifest's formulas
/// evaluated. A dynamic bundle (batch / seqlen -1) sizes its grids, scratch
/// and parameters here for each launch; a static one gets its fixed values.
struct GpuLaunchPlan {
  /// The variant that runs (0: the manifest's top level, i: variants[i-1]),
  /// its name, and why the dispatch rule chose it.
  size_t variant = 0;
  std::string variantName, choice;
  /// The bundle's configuration at the launch's batch and seqlen.
  LayerConfig config;
  /// Chunked schedules: chunks of chunk_size tokens in a sequence.
  int64_t chunks = 0;
  /// Chunk-parallel: chunks per block of phases 1 and 3 (the manifest's, or
  /// chosen for this shape when it says 0) and the spans they make; 0
  /// otherwise.
  int64_t chunksPerBlock = 0, spans = 0;
  /// Blocks of each launch (x, y, z), manifest order.
  std::vector<std::array<unsigned, 3>> grids;
  /// Each scratch buffer's offset and size in the workspace, and the total.
  std::vector<size_t> scratchOffsets, scratchBytes;
  size_t workspaceBytes = 0;
  /// The values of the manifest's parameters, in order.
  std::vector<int64_t> parameters;
};

/// The chunks per block the chunk-parallel phases walk when the bundle
/// leaves it to the launch: the fewest that keep every one of `smCount`
/// SMs busy at `blocksPerSm` blocks each with batch x heads x spans blocks,
/// as the compiler's schedule picks it for a static shape.
int64_t launchChunksPerBlock(int64_t chunks, int64_t batchHeads,
                             int64_t smCount, int64_t blocksPerSm);

/// The manifest of variant `index` of `m` (0: `m` itself, i: variants[i-1]).
const BundleManifest &gpuVariant(const BundleManifest &m, size_t index);

/// The variant of `m` that runs `shape` on a GPU with `smCount` SMs, and in
/// `why` the reason: the first dispatch-table row that holds the shape,
/// else the cost model, the compiler's rule for static shapes applied at
/// launch: the chunk-parallel variant when batch x heads blocks leave SMs
/// idle and its chunks spread over at least three spans, else the first
/// one-pass chunked variant (the top level when it is one); both choose
/// among the variants that take every length. Then, when a full-chunk
/// variant specializes the pick and the length is a multiple of its chunk,
/// that one (the same kernels without per-token bounds). `shape` must be
/// one `m` takes (launchConfig). `why` may be null (no words built).
size_t chooseGpuVariant(const BundleManifest &m, const LayerConfig &cfg,
                        int64_t smCount, std::string *why);

/// Chooses the variant for `shape` (chooseGpuVariant) and evaluates its
/// launch formulas there on a GPU with `smCount` SMs (used when the bundle
/// leaves chunks per block to the launch, and by the cost model).
/// Returns false with `error` set for a shape the bundle cannot take (a
/// static size that differs, a non-positive size) or one past a hardware
/// limit (grid y / z above 65535 blocks, sizes that overflow), naming it.
/// `explain` false leaves plan.choice empty (a launch builds no words).
bool planGpuLaunch(const BundleManifest &m, const LaunchShape &shape,
                   int64_t smCount, GpuLaunchPlan &plan, std::string &error,
                   bool explain = true);

} // namespace mamba3

#endif // MAMBA3_GPULAUNCHPLAN_H
