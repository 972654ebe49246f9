//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// The runtime never links libcuda: it dlopens libcuda.so.1 on first use, so
// the same binary runs (and says so) on a machine without a GPU driver. The
// few driver types it needs are declared here with the driver's ABI, so no
// CUDA header is needed either.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CUDADRIVER_H
#define MAMBA3_CUDADRIVER_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace mamba3 {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;

/// The driver entry points the runtime uses (names without the _v2 suffix).
struct CudaDriver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuCtxGetCurrent)(CUcontext *);
  CUresult (*cuCtxPushCurrent)(CUcontext);
  CUresult (*cuCtxPopCurrent)(CUcontext *);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuMemHostAlloc)(void **, size_t, unsigned);
  CUresult (*cuMemFreeHost)(void *);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, unsigned, CUstream,
                             void **, void **);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuStreamSynchronize)(CUstream);
  /// *status: kCuStreamCaptureStatus*.
  CUresult (*cuStreamIsCapturing)(CUstream, int *status);
  CUresult (*cuStreamBeginCapture)(CUstream, int);
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *);
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph,
                                          unsigned long long);
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
  CUresult (*cuGraphExecDestroy)(CUgraphExec);
  CUresult (*cuGraphDestroy)(CUgraph);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*cuGetErrorName)(CUresult, const char **);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  /// Encodes a TMA tensor map (CUtensorMap: 128 opaque bytes). The enums
  /// are ints (kCuTensorMap* below). Null with a driver older than CUDA 12.
  CUresult (*cuTensorMapEncodeTiled)(void *tensorMap, int dataType,
                                     unsigned rank, void *globalAddress,
                                     const unsigned long long *globalDim,
                                     const unsigned long long *globalStrides,
                                     const unsigned *boxDim,
                                     const unsigned *elementStrides,
                                     int interleave, int swizzle,
                                     int l2Promotion, int oobFill);

  /// Loads libcuda.so.1 and initializes the driver once per process. Returns
  /// nullptr with `error` set ("no CUDA driver ...") when that fails.
  static const CudaDriver *get(std::string &error);

  /// "CUDA_ERROR_X (description)" for a result code.
  std::string describe(CUresult result) const;
};

/// Attribute numbers used by the runtime (the driver ABI's values).
enum : int {
  kCuDevAttrMultiprocessorCount = 16,
  kCuDevAttrComputeCapabilityMajor = 75,
  kCuDevAttrComputeCapabilityMinor = 76,
  kCuFuncAttrMaxDynamicSharedSize = 8,
  kCuStreamCaptureModeGlobal = 0,
  kCuStreamCaptureStatusNone = 0,
  kCuTensorMapDataTypeFloat16 = 6,
  kCuTensorMapDataTypeBfloat16 = 9,
  kCuTensorMapInterleaveNone = 0,
  kCuTensorMapSwizzle128B = 3,
  kCuTensorMapL2Promotion256B = 3,
  kCuTensorMapFloatOobFillNone = 0,
  /// Bytes of a CUtensorMap.
  kCuTensorMapBytes = 128,
};

/// The primary context of one device (the one PyTorch and the runtime API
/// use), current on the calling thread after open.
struct CudaDevice {
  const CudaDriver *driver = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr;
  std::string name;
  int smCount = 0, ccMajor = 0, ccMinor = 0;

  /// Opens device `ordinal`. False with `error` set when there is no driver,
  /// no GPU, or no device of that ordinal.
  bool open(std::string &error, int ordinal = 0);
};

} // namespace mamba3

#endif // MAMBA3_CUDADRIVER_H
