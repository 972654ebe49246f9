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
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_GPUBUNDLE_H
#define MAMBA3_GPUBUNDLE_H

#include "mamba3/CpuBundle.h"
#include "mamba3/CudaDriver.h"

#include <array>
#include <memory>
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

class GpuBundle {
public:
  /// Loads DIR/manifest.json, opens device 0 and loads the module. Returns
  /// null with `error` set for a missing or corrupt bundle, a bundle for
  /// another target, no driver or GPU, or a module the driver refuses.
  static std::unique_ptr<GpuBundle> load(const std::string &dir,
                                         std::string &error);
  ~GpuBundle();
  GpuBundle(const GpuBundle &) = delete;
  GpuBundle &operator=(const GpuBundle &) = delete;

  const BundleManifest &manifest() const { return manifest_; }
  const CudaDevice &device() const { return device_; }
  /// "cubin" or "ptx": what the driver loaded.
  const std::string &loadedImage() const { return image_; }

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

  BundleManifest manifest_;
  std::string dir_, image_;
  CudaDevice device_;
  CUmodule module_ = nullptr;
  /// One per manifest launch, in order.
  std::vector<CUfunction> functions_;
};

} // namespace mamba3

#endif // MAMBA3_GPUBUNDLE_H
