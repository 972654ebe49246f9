//===- GpuBundle.cpp - Load and launch a GPU kernel bundle ----------------===//
//
// GpuBundle: a bundle's modules loaded through the driver (every manifest
// field and digest checked first), its workspace, tensor maps and launches
// on the caller's stream. Which variant runs and its launch plan:
// GpuLaunchPlan.cpp.
//
//===----------------------------------------------------------------------===//

#include "mamba3/GpuBundle.h"

#include "mamba3/Launch.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace mamba3;

namespace {

bool readFile(const std::string &path, std::string &text) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return false;
  std::stringstream s;
  s << file.rdbuf();
  text = s.str();
  return true;
}

const char *const kCompileHint =
    " (build it with `mamba3-compile <config flags> --batch B --seqlen L "
    "--target sm_90a -o DIR` on a machine with MLIR, then copy DIR here)";

/// Tensor-map slots are added this many at a time; past kMaxMapSlots the
/// cache drops the maps no graph holds.
constexpr size_t kMapSlabSlots = 64;
constexpr size_t kMaxMapSlots = 16384;
/// The chunk-parallel schedule has three launches; the manifest reader
/// allows any number, the launcher this many.
constexpr size_t kMaxLaunches = 8;

/// Makes the bundle's context current for one scope, restoring the caller's.
class ContextScope {
public:
  ContextScope(const CudaDriver &d, CUcontext context) : d(d) {
    CUcontext current = nullptr;
    d.cuCtxGetCurrent(&current);
    if (current != context)
      pushed = d.cuCtxPushCurrent(context) == 0;
  }
  ~ContextScope() {
    if (pushed) {
      CUcontext popped;
      d.cuCtxPopCurrent(&popped);
    }
  }

private:
  const CudaDriver &d;
  bool pushed = false;
};

/// Device buffers freed on every exit path.
struct DeviceBuffers {
  const CudaDriver *driver;
  std::vector<CUdeviceptr> pointers;
  ~DeviceBuffers() {
    for (CUdeviceptr p : pointers)
      if (p)
        driver->cuMemFree(p);
  }
};

} // namespace

std::unique_ptr<GpuBundle> GpuBundle::load(const std::string &dir,
                                           std::string &error,
                                           int deviceOrdinal) {
  std::unique_ptr<GpuBundle> bundle(new GpuBundle());
  bundle->dir_ = dir;
  BundleManifest &m = bundle->manifest_;
  if (!loadBundleManifest(dir, m, error)) {
    error += kCompileHint;
    return nullptr;
  }
  if (m.target.rfind("sm_", 0) != 0) {
    error = dir + ": the bundle is for target '" + m.target +
            "'; GpuBundle runs GPU (sm_*) bundles";
    return nullptr;
  }
  // The kernel images are checked against the manifest's digests before
  // the driver sees them (and before a GPU is needed): a cubin from another
  // bundle would run with this manifest's launches and arguments.
  const size_t variantCount = 1 + m.variants.size();
  std::vector<std::string> images(variantCount), ptxs(variantCount);
  std::vector<bool> haveImages(variantCount), havePtxs(variantCount);
  for (size_t v = 0; v < variantCount; ++v) {
    const BundleManifest &vm = gpuVariant(m, v);
    if (vm.launches.empty()) {
      error = dir + "/manifest.json: variant '" + vm.variant +
              "' has no 'launches' (kernel, grid, block)" +
              std::string(kCompileHint);
      return nullptr;
    }
    std::string &image = images[v], &ptx = ptxs[v];
    bool haveImage = readFile(dir + "/" + vm.library, image) && !image.empty();
    bool havePtx = readFile(dir + "/" + vm.ptx, ptx);
    if (haveImage) {
      if (std::string why = checkBundleFileDigest(dir + "/" + vm.library, image,
                                                  vm.libraryDigest,
                                                  gpuDigestKey(vm));
          !why.empty()) {
        error = why;
        return nullptr;
      }
    }
    if (havePtx && !vm.ptxDigest.empty()) {
      if (std::string why = checkBundleFileDigest(dir + "/" + vm.ptx, ptx,
                                                  vm.ptxDigest, gpuDigestKey(vm));
          !why.empty()) {
        error = why;
        return nullptr;
      }
    }
    if (!haveImage && !havePtx) {
      error = dir + ": neither " + vm.library + " nor " + vm.ptx +
              " can be read" + std::string(kCompileHint);
      return nullptr;
    }
    haveImages[v] = haveImage;
    havePtxs[v] = havePtx;
  }

  if (!bundle->device_.open(error, deviceOrdinal))
    return nullptr;
  const CudaDriver &d = *bundle->device_.driver;
  bundle->variants_.resize(variantCount);
  for (size_t v = 0; v < variantCount; ++v) {
    const BundleManifest &vm = gpuVariant(m, v);
    LoadedVariant &loaded = bundle->variants_[v];
    CUresult r = 1;
    if (haveImages[v]) {
      r = d.cuModuleLoadData(&loaded.module, images[v].data());
      loaded.image = "cubin";
    }
    if (r != 0 && havePtxs[v]) {
      // The driver JIT-compiles PTX for the GPU at hand.
      r = d.cuModuleLoadData(&loaded.module, ptxs[v].c_str());
      loaded.image = "ptx";
    }
    if (r != 0) {
      loaded.module = nullptr;
      error = dir + ": the driver loads neither " + vm.library + " nor " +
              vm.ptx + ": " + d.describe(r) + " (device " +
              bundle->device_.name + ", compute capability " +
              std::to_string(bundle->device_.ccMajor) + "." +
              std::to_string(bundle->device_.ccMinor) + "; the bundle is for " +
              vm.target + ")";
      return nullptr;
    }
    for (const BundleManifest::Launch &launch : vm.launches) {
      CUfunction function = nullptr;
      if ((r = d.cuModuleGetFunction(&function, loaded.module,
                                     launch.kernel.c_str()))) {
        error = dir + ": the module " + vm.library + " has no kernel '" +
                launch.kernel + "': " + d.describe(r);
        return nullptr;
      }
      // Past 48 KiB of static plus dynamic shared memory a kernel must opt
      // in to its dynamic part (the static part is at least the 1-byte
      // dynamic-shared-memory symbol, so exactly 48 KiB dynamic needs it
      // too); opting in below that is harmless.
      if (launch.dynamicSharedBytes > 0 &&
          (r = d.cuFuncSetAttribute(
               function, kCuFuncAttrMaxDynamicSharedSize,
               static_cast<int>(launch.dynamicSharedBytes)))) {
        error = dir + ": kernel '" + launch.kernel + "' cannot have " +
                std::to_string(launch.dynamicSharedBytes) +
                " bytes of shared memory on " + bundle->device_.name + ": " +
                d.describe(r);
        return nullptr;
      }
      loaded.functions.push_back(function);
    }
  }
  return bundle;
}

GpuBundle::~GpuBundle() {
  const CudaDriver *d = device_.driver;
  if (!d)
    return;
  // Kernels still in flight may read the tensor maps and workspaces.
  d->cuCtxSetCurrent(device_.context);
  d->cuCtxSynchronize();
  for (const MapSlab &slab : slabs_) {
    d->cuMemFree(slab.device);
    d->cuMemFreeHost(slab.host);
  }
  for (const auto &entry : workspaces_)
    d->cuMemFree(entry.second.first);
  for (const LoadedVariant &v : variants_)
    if (v.module)
      d->cuModuleUnload(v.module);
}

bool GpuBundle::plan(const LaunchShape &shape, GpuLaunchPlan &plan,
                     std::string &error) const {
  return planGpuLaunch(manifest_, shape, device_.smCount, plan, error);
}

size_t GpuBundle::workspaceBytes(const LaunchShape &shape) const {
  GpuLaunchPlan p;
  std::string error;
  return planGpuLaunch(manifest_, shape, device_.smCount, p, error,
                       /*explain=*/false)
             ? p.workspaceBytes
             : 0;
}

bool GpuBundle::ownedWorkspace(CUstream stream, size_t bytes,
                               CUdeviceptr &workspace,
                               std::string &error) const {
  const CudaDriver &d = *device_.driver;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = workspaces_.find(stream);
  if (it != workspaces_.end() && it->second.second >= bytes) {
    workspace = it->second.first;
    return true;
  }
  int status = kCuStreamCaptureStatusNone;
  d.cuStreamIsCapturing(stream, &status);
  if (status != kCuStreamCaptureStatusNone) {
    error = "the bundle's first launch on this stream is under graph capture "
            "and has no workspace: pass a workspace of " +
            std::to_string(bytes) + " bytes, or launch once before capture";
    return false;
  }
  CUdeviceptr p = 0;
  CUresult r = d.cuMemAlloc(&p, bytes);
  if (r != 0) {
    error = "cuMemAlloc (workspace, " + std::to_string(bytes) +
            " bytes) failed: " + d.describe(r);
    return false;
  }
  if (it != workspaces_.end()) {
    // Launches already queued on this stream may use the old one.
    d.cuStreamSynchronize(stream);
    d.cuMemFree(it->second.first);
  }
  workspaces_[stream] = {p, bytes};
  workspace = p;
  return true;
}

bool GpuBundle::tensorMap(const BundleManifest &variant, size_t variantIndex,
                          size_t j, CUdeviceptr pointer,
                          const LaunchShape &launchShape,
                          const std::vector<int64_t> &shape, CUstream stream,
                          bool capturing, CUdeviceptr &slot,
                          std::string &error) const {
  const CudaDriver &d = *device_.driver;
  const std::array<uint64_t, 4> key = {
      static_cast<uint64_t>(variantIndex) << 32 | j, pointer, static_cast<uint64_t>(launchShape.batch),
      static_cast<uint64_t>(launchShape.seqlen)};
  std::lock_guard<std::mutex> lock(mutex_);
  auto deviceSlot = [&](size_t s) {
    return slabs_[s / kMapSlabSlots].device + (s % kMapSlabSlots) * kCuTensorMapBytes;
  };
  auto found = maps_.find(key);
  if (found != maps_.end()) {
    // A graph captured now keeps reading this slot: never free it.
    found->second.captured |= capturing;
    slot = deviceSlot(found->second.slot);
    return true;
  }
  auto check = [&](CUresult r, const std::string &what) {
    if (r == 0)
      return true;
    error = what + " failed: " + d.describe(r);
    return false;
  };
  if (freeSlots_.empty() && slabs_.size() * kMapSlabSlots >= kMaxMapSlots &&
      !capturing) {
    // Every slot is taken: wait for the kernels that read them, then free
    // the ones no graph holds.
    if (!check(d.cuCtxSynchronize(), "cuCtxSynchronize (tensor-map cache)"))
      return false;
    for (auto it = maps_.begin(); it != maps_.end();)
      if (!it->second.captured) {
        freeSlots_.push_back(it->second.slot);
        it = maps_.erase(it);
      } else {
        ++it;
      }
  }
  if (freeSlots_.empty()) {
    if (capturing) {
      error = "graph capture meets a new tensor map and the cache has no free "
              "slot; launch once on these buffers before capture";
      return false;
    }
    MapSlab slab;
    void *host = nullptr;
    if (!check(d.cuMemAlloc(&slab.device, kMapSlabSlots * kCuTensorMapBytes),
               "cuMemAlloc (tensor maps)"))
      return false;
    if (!check(d.cuMemHostAlloc(&host, kMapSlabSlots * kCuTensorMapBytes, 0),
               "cuMemHostAlloc (tensor maps)")) {
      d.cuMemFree(slab.device);
      return false;
    }
    slab.host = static_cast<unsigned char *>(host);
    const size_t first = slabs_.size() * kMapSlabSlots;
    for (size_t s = kMapSlabSlots; s-- > 0;)
      freeSlots_.push_back(first + s);
    slabs_.push_back(slab);
  }
  size_t s = freeSlots_.back();
  // Row-major buffer: dimensions innermost first, strides in bytes; boxes
  // may reach past the tensor (TMA fills zeros there) and must not shrink.
  const BundleManifest::TensorMap &t = variant.tensorMaps[j];
  const size_t rank = shape.size();
  std::vector<unsigned long long> dims(rank), strides(rank);
  std::vector<unsigned> box(rank), elementStrides(rank, 1);
  unsigned long long stride = 2; // bf16 or f16
  for (size_t k = 0; k < rank; ++k) {
    dims[k] = static_cast<unsigned long long>(shape[rank - 1 - k]);
    strides[k] = stride;
    stride *= dims[k];
    box[k] = static_cast<unsigned>(t.box[k]);
  }
  void *host = slabs_[s / kMapSlabSlots].host + (s % kMapSlabSlots) * kCuTensorMapBytes;
  CUresult r = d.cuTensorMapEncodeTiled(
      host,
      variant.arguments[t.argument].dtype == "f16"
          ? kCuTensorMapDataTypeFloat16
          : kCuTensorMapDataTypeBfloat16,
      static_cast<unsigned>(rank),
      reinterpret_cast<void *>(static_cast<uintptr_t>(pointer)), dims.data(),
      strides.data() + 1, box.data(), elementStrides.data(),
      kCuTensorMapInterleaveNone, kCuTensorMapSwizzle128B,
      kCuTensorMapL2Promotion256B, kCuTensorMapFloatOobFillNone);
  slot = deviceSlot(s);
  if (!check(r, "cuTensorMapEncodeTiled (tensor map '" + t.name + "')") ||
      !check(d.cuMemcpyHtoDAsync(slot, host, kCuTensorMapBytes, stream),
             "cuMemcpyHtoDAsync (tensor map '" + t.name + "')"))
    return false;
  freeSlots_.pop_back();
  maps_[key] = MapEntry{s, capturing};
  return true;
}

bool GpuBundle::launch(const LaunchShape &shape, const BufferArg *args,
                       size_t n, CUdeviceptr workspace, size_t workspaceSize,
                       CUstream stream, std::string &error) const {
  GpuLaunchPlan plan;
  if (!planGpuLaunch(manifest_, shape, device_.smCount, plan, error,
                     /*explain=*/false))
    return false;
  const BundleManifest &m = gpuVariant(manifest_, plan.variant);
  const LoadedVariant &loaded = variants_[plan.variant];
  if (m.launches.size() > kMaxLaunches) {
    error = "manifest: more than " + std::to_string(kMaxLaunches) + " launches";
    return false;
  }
  const LayerConfig &cfg = plan.config;
  BufferRules rules;
  rules.alignment = 16;
  error = checkLaunchBuffers(m, cfg, args, n, rules);
  if (!error.empty())
    return false;
  const size_t needed = plan.workspaceBytes;
  if (workspace && workspaceSize < needed) {
    error = "the workspace has " + std::to_string(workspaceSize) +
            " bytes; this launch needs " + std::to_string(needed) +
            " (workspaceBytes)";
    return false;
  }
  if (workspace % 16) {
    error = "the workspace is not 16-byte aligned";
    return false;
  }
  if (!m.tensorMaps.empty() && !device_.driver->cuTensorMapEncodeTiled) {
    error = "the bundle's kernels load by TMA, and the CUDA driver in "
            "libcuda.so.1 lacks cuTensorMapEncodeTiled; use a driver of CUDA "
            "12 or later";
    return false;
  }

  const CudaDriver &d = *device_.driver;
  ContextScope scope(d, device_.context);
  if (needed > 0 && !workspace &&
      !ownedWorkspace(stream, needed, workspace, error))
    return false;
  // Kernel parameters: the arguments, the scratch buffers, the tensor maps,
  // the i64 launch values (all 8 bytes wide).
  const size_t firstParameter = n + m.scratch.size() + m.tensorMaps.size();
  const size_t count = firstParameter + plan.parameters.size();
  std::vector<CUdeviceptr> values(count);
  std::vector<void *> params(count);
  for (size_t i = 0; i < n; ++i)
    values[i] = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(args[i].data));
  for (size_t j = 0; j < m.scratch.size(); ++j)
    values[n + j] = workspace + plan.scratchOffsets[j];
  for (size_t j = 0; j < plan.parameters.size(); ++j)
    values[firstParameter + j] = static_cast<CUdeviceptr>(plan.parameters[j]);
  int captureStatus = kCuStreamCaptureStatusNone;
  if (!m.tensorMaps.empty())
    d.cuStreamIsCapturing(stream, &captureStatus);
  for (size_t j = 0; j < m.tensorMaps.size(); ++j) {
    const BundleManifest::TensorMap &t = m.tensorMaps[j];
    const BufferArg &a = args[t.argument];
    std::vector<int64_t> dims(a.shape, a.shape + a.rank);
    if (!tensorMap(m, plan.variant, j, values[t.argument], shape, dims, stream,
                   captureStatus != kCuStreamCaptureStatusNone,
                   values[n + m.scratch.size() + j], error))
      return false;
  }
  for (size_t i = 0; i < count; ++i)
    params[i] = &values[i];
  for (size_t k = 0; k < loaded.functions.size(); ++k) {
    const BundleManifest::Launch &l = m.launches[k];
    CUresult r = d.cuLaunchKernel(
        loaded.functions[k], plan.grids[k][0], plan.grids[k][1], plan.grids[k][2],
        static_cast<unsigned>(l.block[0]), static_cast<unsigned>(l.block[1]),
        static_cast<unsigned>(l.block[2]),
        static_cast<unsigned>(l.dynamicSharedBytes), stream, params.data(),
        nullptr);
    if (r != 0) {
      error = "cuLaunchKernel ('" + l.kernel + "') failed: " + d.describe(r);
      return false;
    }
  }
  return true;
}

bool GpuBundle::run(const LayerConfig &cfg, const LayerInputs &in,
                    LayerOutputs &out, std::string &error,
                    GpuTiming *timing, bool inPlaceStates) const {
  const BundleManifest &m = manifest_;
  std::string mismatch = checkBundleConfig(m, cfg);
  if (!mismatch.empty()) {
    error = mismatch + " (bundle " + dir_ +
            "; compile it with --batch ? --seqlen ? to take any batch and "
            "length at launch)";
    return false;
  }
  if (inPlaceStates && !m.isStep()) {
    // The prefill kernels read initial states in one block while another
    // writes the final ones; a step kernel's threads read each state value
    // before they write it.
    error = "in-place states are for decode-step bundles; prefill kernels "
            "write their final states to separate buffers";
    return false;
  }
  std::vector<std::vector<unsigned char>> host;
  std::vector<std::vector<int64_t>> shapes;
  if (!packBundleArguments(m, cfg, in, host, shapes, error))
    return false;

  const CudaDriver &d = *device_.driver;
  auto check = [&](CUresult r, const char *what) {
    if (r == 0)
      return true;
    error = std::string(what) + " failed: " + d.describe(r);
    return false;
  };
  ContextScope scope(d, device_.context);
  const LaunchShape shape{cfg.batch, cfg.seqlen};
  // The input whose buffer an output shares (in place), or -1.
  std::vector<int> sharedWith(host.size(), -1);
  for (size_t o = 0; inPlaceStates && o < host.size(); ++o)
    for (size_t i = 0; i < host.size() && m.arguments[o].isOutput; ++i)
      if (!m.arguments[i].isOutput &&
          m.arguments[i].name == m.arguments[o].name + "0")
        sharedWith[o] = static_cast<int>(i);
  DeviceBuffers buffers{&d, std::vector<CUdeviceptr>(host.size() + 1, 0)};
  std::vector<void *> pointers(host.size(), nullptr);
  for (size_t i = 0; i < host.size(); ++i) {
    if (sharedWith[i] >= 0)
      continue; // inputs come first: the buffer exists
    size_t bytes = std::max<size_t>(host[i].size(), 16);
    if (!check(d.cuMemAlloc(&buffers.pointers[i], bytes), "cuMemAlloc"))
      return false;
    if (!m.arguments[i].isOutput &&
        !check(d.cuMemcpyHtoD(buffers.pointers[i], host[i].data(),
                              host[i].size()),
               "cuMemcpyHtoD"))
      return false;
    if (m.arguments[i].isOutput &&
        !check(d.cuMemsetD8(buffers.pointers[i], 0, host[i].size()),
               "cuMemsetD8"))
      return false;
    pointers[i] = reinterpret_cast<void *>(static_cast<uintptr_t>(buffers.pointers[i]));
  }
  for (size_t i = 0; i < host.size(); ++i)
    if (sharedWith[i] >= 0)
      pointers[i] = pointers[sharedWith[i]];
  std::vector<BufferArg> args = bufferArgs(m, host, shapes, &pointers);
  const size_t workspaceSize = workspaceBytes(shape);
  CUdeviceptr &workspace = buffers.pointers.back();
  if (workspaceSize &&
      !check(d.cuMemAlloc(&workspace, workspaceSize), "cuMemAlloc (workspace)"))
    return false;
  CUstream stream = nullptr;
  if (!check(d.cuStreamCreate(&stream, 1), "cuStreamCreate"))
    return false;
  struct StreamGuard {
    const CudaDriver &d;
    CUstream s;
    ~StreamGuard() { d.cuStreamDestroy(s); }
  } streamGuard{d, stream};
  auto launchOnce = [&]() {
    return launch(shape, args.data(), args.size(), workspace, workspaceSize,
                  stream, error);
  };
  if (!launchOnce() || !check(d.cuStreamSynchronize(stream), "the kernel"))
    return false;
  for (size_t i = 0; i < host.size(); ++i)
    if (m.arguments[i].isOutput &&
        !check(d.cuMemcpyDtoH(host[i].data(),
                              static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointers[i])),
                              host[i].size()),
               "cuMemcpyDtoH"))
      return false;
  unpackBundleOutputs(m, host, shapes, out);
  if (!timing)
    return true;
  timing->bytes = 0;
  for (const auto &h : host)
    timing->bytes += static_cast<double>(h.size());

  // Relaunching on the same buffers recomputes the same outputs: the kernels
  // read only inputs and scratch that an earlier launch of the same run
  // wrote, so repeated runs are independent.
  CUevent start = nullptr, stop = nullptr;
  if (!check(d.cuEventCreate(&start, 0), "cuEventCreate") ||
      !check(d.cuEventCreate(&stop, 0), "cuEventCreate"))
    return false;
  bool ok = true;
  for (int i = 0; ok && i < timing->warmup; ++i)
    ok = launchOnce();
  std::vector<float> ms;
  for (int i = 0; ok && i < timing->repeats; ++i) {
    float t = 0;
    ok = check(d.cuEventRecord(start, stream), "cuEventRecord") &&
         launchOnce() &&
         check(d.cuEventRecord(stop, stream), "cuEventRecord") &&
         check(d.cuEventSynchronize(stop), "the kernel") &&
         check(d.cuEventElapsedTime(&t, start, stop), "cuEventElapsedTime");
    ms.push_back(t);
  }
  if (ok && !ms.empty()) {
    std::sort(ms.begin(), ms.end());
    timing->launchSeconds = ms[ms.size() / 2] * 1e-3;
  }
  if (ok && timing->graph) {
    // One graph of `repeats` back-to-back launches, replayed: the per-step
    // time without the CPU launch overhead.
    CUgraph graph = nullptr;
    CUgraphExec exec = nullptr;
    ok = check(d.cuStreamBeginCapture(stream, kCuStreamCaptureModeGlobal),
               "cuStreamBeginCapture");
    for (int i = 0; ok && i < timing->repeats; ++i)
      ok = launchOnce();
    if (ok)
      ok = check(d.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture") &&
           check(d.cuGraphInstantiateWithFlags(&exec, graph, 0),
                 "cuGraphInstantiate");
    std::vector<float> replay;
    for (int i = 0; ok && i < 1 + 10; ++i) {
      float t = 0;
      ok = check(d.cuEventRecord(start, stream), "cuEventRecord") &&
           check(d.cuGraphLaunch(exec, stream), "cuGraphLaunch") &&
           check(d.cuEventRecord(stop, stream), "cuEventRecord") &&
           check(d.cuEventSynchronize(stop), "the graph") &&
           check(d.cuEventElapsedTime(&t, start, stop), "cuEventElapsedTime");
      if (i > 0) // the first replay uploads the graph
        replay.push_back(t / timing->repeats);
    }
    if (ok) {
      std::sort(replay.begin(), replay.end());
      timing->graphSeconds = replay[replay.size() / 2] * 1e-3;
    }
    if (exec)
      d.cuGraphExecDestroy(exec);
    if (graph)
      d.cuGraphDestroy(graph);
  }
  d.cuEventDestroy(start);
  d.cuEventDestroy(stop);
  return ok;
}
