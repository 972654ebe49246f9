//===- GpuBundle.h - Load and launch a GPU kernel bundle --------*- C++ -*-===//
//
// A bundle written by `mamba3-compile ... --target sm_90a -o DIR` holds
// DIR/manifest.json, DIR/kernel.cubin and DIR/kernel.ptx (see
// codegen/BundleWriter.h). The loader needs neither MLIR nor the CUDA
// toolkit: it talks to libcuda through CudaDriver (dlopened), loads the
// cubin (the PTX when the driver rejects the cubin), and runs the manifest's
// launches in order (one kernel, or the three of the chunk-parallel
// schedule), each with its grid and block, one device pointer per argument,
// then one per scratch buffer, then one per TMA tensor map (encoded here
// with cuTensorMapEncodeTiled over an argument's buffer, 128 bytes in
// device memory).
//
// `launch` is the product path: caller-owned device buffers and the caller's
// stream, no allocation, copy or synchronisation once warm. Scratch lives in
// a caller's workspace (workspaceBytes) or, without one, in a workspace the
// bundle owns per stream. Tensor maps are encoded once per (map, pointer)
// and kept in device memory; the copy that puts a new one there is ordered
// on the caller's stream (from pinned host memory), so a launch inside CUDA
// graph capture is captured whole and its maps are never reused for other
// pointers. `run` (host arrays in and out) is a layer over `launch` for the
// tests and mamba3-run.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_GPUBUNDLE_H
#define MAMBA3_GPUBUNDLE_H

#include "mamba3/CpuBundle.h"
#include "mamba3/CudaDriver.h"
#include "mamba3/GpuLaunchPlan.h"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mamba3 {

/// Kernel timing with CUDA events: the median of `repeats` timed launches
/// after `warmup` untimed ones, in seconds.
struct GpuTiming {
  int warmup = 3, repeats = 20;
  /// Also time `repeats` launches captured into one CUDA graph and replayed
  /// (what a decode loop does: a single step is launch-bound).
  bool graph = false;
  double launchSeconds = -1, graphSeconds = -1;
  /// Bytes of every argument (inputs read once, outputs written once): the
  /// traffic floor of one launch.
  double bytes = 0;
};

struct BufferArg;

class GpuBundle {
public:
  /// Loads DIR/manifest.json, opens device `deviceOrdinal` (its primary
  /// context, the one PyTorch uses) and loads the module. Returns null with
  /// `error` set for a missing or corrupt bundle, a bundle for another
  /// target, no driver or GPU, or a module the driver refuses.
  static std::unique_ptr<GpuBundle> load(const std::string &dir,
                                         std::string &error,
                                         int deviceOrdinal = 0);
  ~GpuBundle();
  GpuBundle(const GpuBundle &) = delete;
  GpuBundle &operator=(const GpuBundle &) = delete;

  const BundleManifest &manifest() const { return manifest_; }
  const CudaDevice &device() const { return device_; }
  /// "cubin" or "ptx": what the driver loaded (of the first variant; a
  /// bundle's variants come from one compiler run, so all load alike).
  const std::string &loadedImage() const { return variants_.front().image; }

  /// Bytes of the workspace a launch of `shape` needs (0 when none: the
  /// bundle has no scratch buffers, or `shape` is not one it takes).
  size_t workspaceBytes(const LaunchShape &shape) const;

  /// planGpuLaunch on this bundle's device.
  bool plan(const LaunchShape &shape, GpuLaunchPlan &plan,
            std::string &error) const;

  /// Runs the bundle's launches on `stream` over device buffers `args` (one
  /// per manifest argument, Launch.h), after checking them against the
  /// manifest and `shape`. `workspace` holds workspaceBytes(shape) bytes of
  /// device memory the launches may overwrite (16-byte aligned), or is 0:
  /// then a workspace the bundle owns for `stream` is used (allocated on the
  /// first launch there, which must not be under graph capture). Returns at
  /// once; nothing waits for the kernels. Safe from several threads.
  bool launch(const LaunchShape &shape, const BufferArg *args, size_t n,
              CUdeviceptr workspace, size_t workspaceSize, CUstream stream,
              std::string &error) const;

  /// Copies `in` to the device, runs the launches once, copies `out` back.
  /// With `timing`, then times the launches on the same device buffers.
  /// `inPlaceStates` (decode-step bundles only) passes each state input's
  /// buffer as its output too (angle0 -> angle, ssm0 -> ssm, k0 -> k,
  /// v0 -> v): the step updates the states in place, as a decode loop does.
  bool run(const LayerConfig &cfg, const LayerInputs &in, LayerOutputs &out,
           std::string &error, GpuTiming *timing = nullptr,
           bool inPlaceStates = false) const;

private:
  GpuBundle() = default;

  /// The device copy of the tensor map `map` over `pointer`: encoded and
  /// copied (ordered on `stream`) on first use. `capturing`: `stream` is
  /// under graph capture, so the slot must outlive the bundle's cache.
  bool tensorMap(const BundleManifest &variant, size_t variantIndex,
                 size_t map, CUdeviceptr pointer, const LaunchShape &launch,
                 const std::vector<int64_t> &shape, CUstream stream,
                 bool capturing, CUdeviceptr &slot, std::string &error) const;
  bool ownedWorkspace(CUstream stream, size_t bytes, CUdeviceptr &workspace,
                      std::string &error) const;

  BundleManifest manifest_;
  std::string dir_;
  CudaDevice device_;
  /// One per variant (gpuVariant's order): its module, one function per
  /// launch in order, and "cubin" or "ptx".
  struct LoadedVariant {
    CUmodule module = nullptr;
    std::vector<CUfunction> functions;
    std::string image;
  };
  std::vector<LoadedVariant> variants_;

  /// Encoded tensor maps: slabs of kMapSlabSlots device slots of 128 bytes,
  /// each with the pinned host copy it was uploaded from; slot s is entry
  /// s % kMapSlabSlots of slab s / kMapSlabSlots. A slot a graph captured
  /// stays for the bundle's life (the graph holds its address).
  struct MapSlab {
    CUdeviceptr device = 0;
    unsigned char *host = nullptr;
  };
  struct MapEntry {
    size_t slot = 0;
    bool captured = false;
  };
  mutable std::mutex mutex_;
  mutable std::vector<MapSlab> slabs_;
  mutable std::vector<size_t> freeSlots_;
  /// Keyed by (variant << 32 | map, pointer, batch, seqlen).
  mutable std::map<std::array<uint64_t, 4>, MapEntry> maps_;
  mutable std::map<CUstream, std::pair<CUdeviceptr, size_t>> workspaces_;
};

} // namespace mamba3

#endif // MAMBA3_GPUBUNDLE_H
