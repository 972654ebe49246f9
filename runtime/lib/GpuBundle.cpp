//===- GpuBundle.cpp - Load and launch a GPU kernel bundle ----------------===//

#include "mamba3/GpuBundle.h"

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
                                           std::string &error) {
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
  if (m.launches.empty()) {
    error = dir + "/manifest.json: a GPU bundle needs 'launches' (kernel, "
                  "grid, block)" + std::string(kCompileHint);
    return nullptr;
  }

  if (!bundle->device_.open(error))
    return nullptr;
  const CudaDriver &d = *bundle->device_.driver;
  std::string image;
  CUresult r = 1;
  if (readFile(dir + "/" + m.library, image) && !image.empty()) {
    r = d.cuModuleLoadData(&bundle->module_, image.data());
    bundle->image_ = "cubin";
  }
  std::string ptx;
  if (r != 0 && readFile(dir + "/kernel.ptx", ptx)) {
    // The driver JIT-compiles PTX for the GPU at hand.
    r = d.cuModuleLoadData(&bundle->module_, ptx.c_str());
    bundle->image_ = "ptx";
  }
  if (r != 0) {
    error = dir + ": the driver loads neither " + m.library +
            " nor kernel.ptx: " + d.describe(r) + " (device " +
            bundle->device_.name + ", compute capability " +
            std::to_string(bundle->device_.ccMajor) + "." +
            std::to_string(bundle->device_.ccMinor) + "; the bundle is for " +
            m.target + ")";
    return nullptr;
  }
  for (const BundleManifest::Launch &launch : m.launches) {
    CUfunction function = nullptr;
    if ((r = d.cuModuleGetFunction(&function, bundle->module_,
                                   launch.kernel.c_str()))) {
      error = dir + ": the module has no kernel '" + launch.kernel +
              "': " + d.describe(r);
      return nullptr;
    }
    // Past 48 KiB of static plus dynamic shared memory a kernel must opt
    // in to its dynamic part (the static part is at least the 1-byte
    // dynamic-shared-memory symbol, so exactly 48 KiB dynamic needs it
    // too); opting in below that is harmless.
    if (launch.dynamicSharedBytes > 0 &&
        (r = d.cuFuncSetAttribute(function, kCuFuncAttrMaxDynamicSharedSize,
                                  static_cast<int>(launch.dynamicSharedBytes)))) {
      error = dir + ": kernel '" + launch.kernel + "' cannot have " +
              std::to_string(launch.dynamicSharedBytes) +
              " bytes of shared memory on " + bundle->device_.name + ": " +
              d.describe(r);
      return nullptr;
    }
    bundle->functions_.push_back(function);
  }
  return bundle;
}

GpuBundle::~GpuBundle() {
  if (module_ && device_.driver)
    device_.driver->cuModuleUnload(module_);
}

bool GpuBundle::run(const LayerConfig &cfg, const LayerInputs &in,
                    LayerOutputs &out, std::string &error,
                    GpuTiming *timing, bool inPlaceStates) const {
  const BundleManifest &m = manifest_;
  std::string mismatch = checkBundleConfig(m, cfg);
  if (!mismatch.empty()) {
    error = mismatch + " (bundle " + dir_ +
            "; GPU bundles are compiled for one shape: recompile with "
            "mamba3-compile)";
    return false;
  }
  std::vector<std::vector<unsigned char>> host;
  std::vector<std::vector<int64_t>> shapes;
  if (!packBundleArguments(m, cfg, in, host, shapes, error))
    return false;

  std::vector<std::array<unsigned, 3>> grids;
  for (size_t k = 0; k < m.launches.size(); ++k) {
    std::array<unsigned, 3> grid;
    for (int i = 0; i < 3; ++i) {
      const std::string &g = m.launches[k].grid[i];
      int64_t v = std::isdigit(static_cast<unsigned char>(g[0]))
                      ? std::atoll(g.c_str())
                      : layerAxisSize(cfg, g);
      if (v < 1) {
        error = "manifest: launches[" + std::to_string(k) + "].grid[" +
                std::to_string(i) + "] = '" + g +
                "' is not a positive block count for this config";
        return false;
      }
      grid[i] = static_cast<unsigned>(v);
    }
    grids.push_back(grid);
  }

  const CudaDriver &d = *device_.driver;
  auto check = [&](CUresult r, const char *what) {
    if (r == 0)
      return true;
    error = std::string(what) + " failed: " + d.describe(r);
    return false;
  };
  if (!check(d.cuCtxSetCurrent(device_.context), "cuCtxSetCurrent"))
    return false;
  // The input whose buffer an output shares (in place), or -1.
  std::vector<int> sharedWith(host.size(), -1);
  if (inPlaceStates) {
    // The prefill kernels read initial states in one block while another
    // writes the final ones; a step kernel's threads read each state value
    // before they write it.
    if (!m.isStep()) {
      error = "in-place states are for decode-step bundles; prefill kernels "
              "write their final states to separate buffers";
      return false;
    }
    for (size_t o = 0; o < host.size(); ++o)
      for (size_t i = 0; i < host.size() && m.arguments[o].isOutput; ++i)
        if (!m.arguments[i].isOutput &&
            m.arguments[i].name == m.arguments[o].name + "0") {
          if (host[i].size() != host[o].size()) {
            error = "state '" + m.arguments[o].name + "' differs in size "
                    "from its input '" + m.arguments[i].name + "'";
            return false;
          }
          sharedWith[o] = static_cast<int>(i);
        }
  }
  DeviceBuffers buffers{
      &d, std::vector<CUdeviceptr>(
              host.size() + m.scratch.size() + m.tensorMaps.size(), 0)};
  // What each kernel parameter points at (shared buffers appear twice here,
  // once in `buffers`).
  std::vector<CUdeviceptr> args(buffers.pointers.size(), 0);
  std::vector<void *> params(buffers.pointers.size());
  for (size_t i = 0; i < host.size(); ++i) {
    params[i] = &args[i];
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
    args[i] = buffers.pointers[i];
  }
  for (size_t i = 0; i < host.size(); ++i)
    if (sharedWith[i] >= 0)
      args[i] = args[sharedWith[i]];
  // Scratch: written by one launch before the next reads it.
  for (size_t j = 0; j < m.scratch.size(); ++j) {
    size_t i = host.size() + j;
    if (!check(d.cuMemAlloc(&buffers.pointers[i],
                            static_cast<size_t>(m.scratch[j].bytes)),
               ("cuMemAlloc (scratch '" + m.scratch[j].name + "', " +
                std::to_string(m.scratch[j].bytes) + " bytes)")
                   .c_str()))
      return false;
    args[i] = buffers.pointers[i];
    params[i] = &args[i];
  }
  // TMA tensor maps over argument buffers (row-major: dimensions innermost
  // first, strides in bytes), encoded here and copied to device memory,
  // where the kernels' bulk tensor copies read them.
  if (!m.tensorMaps.empty() && !d.cuTensorMapEncodeTiled) {
    error = "the bundle's kernels load by TMA, and the CUDA driver in "
            "libcuda.so.1 lacks cuTensorMapEncodeTiled; use a driver of CUDA "
            "12 or later";
    return false;
  }
  for (size_t j = 0; j < m.tensorMaps.size(); ++j) {
    const BundleManifest::TensorMap &t = m.tensorMaps[j];
    const std::vector<int64_t> &shape = shapes[t.argument];
    const size_t rank = shape.size();
    std::vector<unsigned long long> dims(rank), strides(rank);
    std::vector<unsigned> box(rank), elementStrides(rank, 1);
    unsigned long long stride = 2; // bf16
    for (size_t k = 0; k < rank; ++k) {
      dims[k] = static_cast<unsigned long long>(shape[rank - 1 - k]);
      strides[k] = stride;
      stride *= dims[k];
      // Boxes may reach past the tensor (TMA fills zeros there) and must
      // not shrink: the kernels expect the whole box's bytes.
      box[k] = static_cast<unsigned>(t.box[k]);
    }
    alignas(64) unsigned char map[kCuTensorMapBytes];
    CUresult r = d.cuTensorMapEncodeTiled(
        map, kCuTensorMapDataTypeBfloat16, static_cast<unsigned>(rank),
        reinterpret_cast<void *>(static_cast<uintptr_t>(args[t.argument])),
        dims.data(), strides.data() + 1, box.data(), elementStrides.data(),
        kCuTensorMapInterleaveNone, kCuTensorMapSwizzle128B,
        kCuTensorMapL2Promotion256B, kCuTensorMapFloatOobFillNone);
    std::string what = "tensor map '" + t.name + "'";
    size_t i = host.size() + m.scratch.size() + j;
    if (!check(r, ("cuTensorMapEncodeTiled (" + what + ")").c_str()) ||
        !check(d.cuMemAlloc(&buffers.pointers[i], kCuTensorMapBytes),
               ("cuMemAlloc (" + what + ")").c_str()) ||
        !check(d.cuMemcpyHtoD(buffers.pointers[i], map, kCuTensorMapBytes),
               ("cuMemcpyHtoD (" + what + ")").c_str()))
      return false;
    args[i] = buffers.pointers[i];
    params[i] = &args[i];
  }
  // Every launch of the bundle, in order, on one stream.
  auto launch = [&](CUstream stream) {
    for (size_t k = 0; k < functions_.size(); ++k) {
      const BundleManifest::Launch &l = m.launches[k];
      CUresult r = d.cuLaunchKernel(
          functions_[k], grids[k][0], grids[k][1], grids[k][2],
          static_cast<unsigned>(l.block[0]), static_cast<unsigned>(l.block[1]),
          static_cast<unsigned>(l.block[2]),
          static_cast<unsigned>(l.dynamicSharedBytes), stream, params.data(),
          nullptr);
      if (r != 0)
        return r;
    }
    return CUresult(0);
  };
  if (!check(launch(nullptr), "cuLaunchKernel") ||
      !check(d.cuCtxSynchronize(), "the kernel"))
    return false;
  for (size_t i = 0; i < host.size(); ++i)
    if (m.arguments[i].isOutput &&
        !check(d.cuMemcpyDtoH(host[i].data(), args[i], host[i].size()),
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
  CUstream stream = nullptr;
  CUevent start = nullptr, stop = nullptr;
  if (!check(d.cuStreamCreate(&stream, 1), "cuStreamCreate") ||
      !check(d.cuEventCreate(&start, 0), "cuEventCreate") ||
      !check(d.cuEventCreate(&stop, 0), "cuEventCreate"))
    return false;
  bool ok = true;
  for (int i = 0; ok && i < timing->warmup; ++i)
    ok = check(launch(stream), "cuLaunchKernel");
  std::vector<float> ms;
  for (int i = 0; ok && i < timing->repeats; ++i) {
    float t = 0;
    ok = check(d.cuEventRecord(start, stream), "cuEventRecord") &&
         check(launch(stream), "cuLaunchKernel") &&
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
      ok = check(launch(stream), "cuLaunchKernel (capture)");
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
  d.cuStreamDestroy(stream);
  return ok;
}
