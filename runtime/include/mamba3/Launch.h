//===- Launch.h - Launching a bundle on caller-owned buffers ----*- C++ -*-===//
//
// What a launch takes, for every target: one buffer per manifest argument,
// in the manifest's order (a pointer, its element type and its row-major,
// contiguous shape), and the launch shape (batch and sequence length; for a
// varlen bundle the number of sequences and the packed tokens). The runtime
// trusts none of it: checkLaunchBuffers compares every buffer with what the
// manifest and the launch shape imply before a kernel sees a pointer.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_LAUNCH_H
#define MAMBA3_LAUNCH_H

#include "mamba3/CpuBundle.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mamba3 {

/// Element types of bundle arguments (the values of the C API's
/// MAMBA3_DTYPE_*). F64 only for the float64 reference's outputs.
enum class ElementType : int32_t { F32 = 0, BF16 = 1, I32 = 2, F64 = 3, F16 = 4 };

/// "f32", "bf16", "i32", "f64", "f16".
const char *elementTypeName(ElementType type);
/// Bytes of one element.
size_t elementTypeSize(ElementType type);
/// The type of a manifest dtype ("f32", "bf16", "f16", "i32"); false when
/// unknown.
bool parseElementType(const std::string &dtype, ElementType &type);

/// The most dimensions an argument has (MIMO ssm state: b, H, P, N; Q:
/// b, L, R, G, N).
constexpr int kMaxBufferRank = 8;

/// One argument: a pointer (device memory for GPU bundles, host memory for
/// CPU bundles) to a dense row-major tensor of `shape`.
struct BufferArg {
  void *data = nullptr;
  ElementType type = ElementType::F32;
  int32_t rank = 0;
  int64_t shape[kMaxBufferRank] = {};
};

/// The sizes a launch takes from its caller. For a varlen bundle `batch` is
/// the number of sequences and `seqlen` the packed tokens; a step ignores
/// `seqlen`.
struct LaunchShape {
  int64_t batch = 0, seqlen = 0;
};

/// The bundle's config with the launch's batch and seqlen, or an error when
/// the bundle is static and they differ, or they are not positive.
bool launchConfig(const BundleManifest &m, const LaunchShape &shape,
                  LayerConfig &cfg, std::string &error);

/// Each argument's shape under `cfg` (manifest order).
bool argumentShapes(const BundleManifest &m, const LayerConfig &cfg,
                    std::vector<std::vector<int64_t>> &shapes,
                    std::string &error);

/// What checkLaunchBuffers requires of pointers besides their shapes.
struct BufferRules {
  /// Alignment of every pointer in bytes (the GPU kernels load 16 bytes at
  /// a time and TMA needs 16-byte aligned tensors).
  size_t alignment = 1;
  /// Step bundles only: a state output may be the very buffer of its input
  /// (angle0 -> angle, ...), the decode loop's in-place update.
  bool allowInPlaceStates = true;
  /// The buffers are host memory the check may read: the values of
  /// cu_seqlens are checked too (the kernels trust them).
  bool hostMemory = false;
  /// Every output is f64 instead of its manifest dtype (the float64
  /// reference writes them).
  bool float64Outputs = false;
};

/// Empty when `args` (count `n`) are the bundle's arguments for `cfg`: as
/// many as the manifest lists, each of its element type and shape, non-null,
/// aligned, no output overlapping another argument (except a step's in-place
/// states), and with `rules.hostMemory` valid cu_seqlens offsets. Otherwise a
/// message naming the argument, what it is and what the bundle expects.
std::string checkLaunchBuffers(const BundleManifest &m, const LayerConfig &cfg,
                               const BufferArg *args, size_t n,
                               const BufferRules &rules);

/// Host buffers of packBundleArguments as BufferArgs (for the host-copy
/// runs); `pointers` replaces the host data pointers when given (the
/// device copies).
std::vector<BufferArg>
bufferArgs(const BundleManifest &m,
           std::vector<std::vector<unsigned char>> &buffers,
           const std::vector<std::vector<int64_t>> &shapes,
           const std::vector<void *> *pointers = nullptr);

/// Runs the float64 reference of the bundle's layer on host buffers laid
/// out as the bundle's arguments: inputs of the manifest's element types,
/// outputs of type F64. checkLaunchBuffers applies (host memory, f64
/// outputs).
bool runReferenceOnBuffers(const BundleManifest &m, const LaunchShape &shape,
                           const BufferArg *args, size_t n,
                           std::string &error);

} // namespace mamba3

#endif // MAMBA3_LAUNCH_H
