//===- CudaDriver.cpp - The CUDA driver API, loaded at run time -----------===//

#include "mamba3/CudaDriver.h"

#include <dlfcn.h>

#include <mutex>

using namespace mamba3;

namespace {

template <typename Fn>
bool bind(void *lib, Fn &fn, const char *name, const char *v2, std::string &missing) {
  void *sym = v2 ? dlsym(lib, v2) : nullptr;
  if (!sym)
    sym = dlsym(lib, name);
  if (!sym) {
    missing = name;
    return false;
  }
  fn = reinterpret_cast<Fn>(sym);
  return true;
}

} // namespace

const CudaDriver *CudaDriver::get(std::string &error) {
  static CudaDriver driver;
  static std::string loadError;
  static std::once_flag once;
  std::call_once(once, [] {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      loadError = "no CUDA driver: libcuda.so.1 could not be loaded (" +
                  std::string(dlerror()) +
                  "); run on a machine with an NVIDIA GPU and its driver, "
                  "or use --target cpu";
      return;
    }
    std::string missing;
    CudaDriver &d = driver;
    bool ok =
        bind(lib, d.cuInit, "cuInit", nullptr, missing) &&
        bind(lib, d.cuDeviceGetCount, "cuDeviceGetCount", nullptr, missing) &&
        bind(lib, d.cuDeviceGet, "cuDeviceGet", nullptr, missing) &&
        bind(lib, d.cuDeviceGetName, "cuDeviceGetName", nullptr, missing) &&
        bind(lib, d.cuDeviceGetAttribute, "cuDeviceGetAttribute", nullptr, missing) &&
        bind(lib, d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", nullptr, missing) &&
        bind(lib, d.cuCtxSetCurrent, "cuCtxSetCurrent", nullptr, missing) &&
        bind(lib, d.cuCtxSynchronize, "cuCtxSynchronize", nullptr, missing) &&
        bind(lib, d.cuCtxGetCurrent, "cuCtxGetCurrent", nullptr, missing) &&
        bind(lib, d.cuCtxPushCurrent, "cuCtxPushCurrent", "cuCtxPushCurrent_v2", missing) &&
        bind(lib, d.cuCtxPopCurrent, "cuCtxPopCurrent", "cuCtxPopCurrent_v2", missing) &&
        bind(lib, d.cuModuleLoadData, "cuModuleLoadData", nullptr, missing) &&
        bind(lib, d.cuModuleUnload, "cuModuleUnload", nullptr, missing) &&
        bind(lib, d.cuModuleGetFunction, "cuModuleGetFunction", nullptr, missing) &&
        bind(lib, d.cuFuncSetAttribute, "cuFuncSetAttribute", nullptr, missing) &&
        bind(lib, d.cuMemAlloc, "cuMemAlloc", "cuMemAlloc_v2", missing) &&
        bind(lib, d.cuMemFree, "cuMemFree", "cuMemFree_v2", missing) &&
        bind(lib, d.cuMemcpyHtoD, "cuMemcpyHtoD", "cuMemcpyHtoD_v2", missing) &&
        bind(lib, d.cuMemcpyDtoH, "cuMemcpyDtoH", "cuMemcpyDtoH_v2", missing) &&
        bind(lib, d.cuMemcpyDtoD, "cuMemcpyDtoD", "cuMemcpyDtoD_v2", missing) &&
        bind(lib, d.cuMemsetD8, "cuMemsetD8", "cuMemsetD8_v2", missing) &&
        bind(lib, d.cuMemHostAlloc, "cuMemHostAlloc", nullptr, missing) &&
        bind(lib, d.cuMemFreeHost, "cuMemFreeHost", nullptr, missing) &&
        bind(lib, d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync", "cuMemcpyHtoDAsync_v2", missing) &&
        bind(lib, d.cuLaunchKernel, "cuLaunchKernel", nullptr, missing) &&
        bind(lib, d.cuStreamCreate, "cuStreamCreate", nullptr, missing) &&
        bind(lib, d.cuStreamDestroy, "cuStreamDestroy", "cuStreamDestroy_v2", missing) &&
        bind(lib, d.cuStreamSynchronize, "cuStreamSynchronize", nullptr, missing) &&
        bind(lib, d.cuStreamIsCapturing, "cuStreamIsCapturing", nullptr, missing) &&
        bind(lib, d.cuStreamBeginCapture, "cuStreamBeginCapture", "cuStreamBeginCapture_v2", missing) &&
        bind(lib, d.cuStreamEndCapture, "cuStreamEndCapture", nullptr, missing) &&
        bind(lib, d.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags", nullptr, missing) &&
        bind(lib, d.cuGraphLaunch, "cuGraphLaunch", nullptr, missing) &&
        bind(lib, d.cuGraphExecDestroy, "cuGraphExecDestroy", nullptr, missing) &&
        bind(lib, d.cuGraphDestroy, "cuGraphDestroy", nullptr, missing) &&
        bind(lib, d.cuEventCreate, "cuEventCreate", nullptr, missing) &&
        bind(lib, d.cuEventDestroy, "cuEventDestroy", "cuEventDestroy_v2", missing) &&
        bind(lib, d.cuEventRecord, "cuEventRecord", nullptr, missing) &&
        bind(lib, d.cuEventSynchronize, "cuEventSynchronize", nullptr, missing) &&
        bind(lib, d.cuEventElapsedTime, "cuEventElapsedTime", nullptr, missing) &&
        bind(lib, d.cuGetErrorName, "cuGetErrorName", nullptr, missing) &&
        bind(lib, d.cuGetErrorString, "cuGetErrorString", nullptr, missing);
    // Optional: only bundles whose kernels load by TMA need it (drivers of
    // CUDA 12 and later have it); GpuBundle says so when it is absent.
    d.cuTensorMapEncodeTiled =
        reinterpret_cast<decltype(d.cuTensorMapEncodeTiled)>(
            dlsym(lib, "cuTensorMapEncodeTiled"));
    if (!ok) {
      loadError = "the CUDA driver in libcuda.so.1 lacks " + missing +
                  "; update the NVIDIA driver";
      return;
    }
    CUresult r = d.cuInit(0);
    if (r != 0)
      loadError = "cuInit failed: " + d.describe(r) +
                  " (is a GPU visible to this process?)";
  });
  if (!loadError.empty()) {
    error = loadError;
    return nullptr;
  }
  return &driver;
}

std::string CudaDriver::describe(CUresult result) const {
  const char *name = nullptr, *text = nullptr;
  if (cuGetErrorName)
    cuGetErrorName(result, &name);
  if (cuGetErrorString)
    cuGetErrorString(result, &text);
  std::string s = name ? name : "CUDA error " + std::to_string(result);
  if (text)
    s += std::string(" (") + text + ")";
  return s;
}

bool CudaDevice::open(std::string &error, int ordinal) {
  driver = CudaDriver::get(error);
  if (!driver)
    return false;
  int count = 0;
  CUresult r = driver->cuDeviceGetCount(&count);
  if (r != 0 || count == 0) {
    error = "no CUDA device found" +
            (r ? ": " + driver->describe(r) : std::string());
    return false;
  }
  if (ordinal < 0 || ordinal >= count) {
    error = "no CUDA device " + std::to_string(ordinal) + ": this machine has " +
            std::to_string(count) + " (ordinals 0 to " +
            std::to_string(count - 1) + ")";
    return false;
  }
  if ((r = driver->cuDeviceGet(&device, ordinal)) ||
      (r = driver->cuDevicePrimaryCtxRetain(&context, device)) ||
      (r = driver->cuCtxSetCurrent(context))) {
    error = "cannot open CUDA device " + std::to_string(ordinal) + ": " +
            driver->describe(r);
    return false;
  }
  char buf[256] = {0};
  driver->cuDeviceGetName(buf, sizeof(buf), device);
  name = buf;
  driver->cuDeviceGetAttribute(&smCount, kCuDevAttrMultiprocessorCount, device);
  driver->cuDeviceGetAttribute(&ccMajor, kCuDevAttrComputeCapabilityMajor, device);
  driver->cuDeviceGetAttribute(&ccMinor, kCuDevAttrComputeCapabilityMinor, device);
  return true;
}
