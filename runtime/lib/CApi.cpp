//===- CApi.cpp - C API of the Mamba-3 kernel runtime ---------------------===//

#include "mamba3/mamba3.h"

#include "mamba3/CpuBundle.h"
#include "mamba3/GpuBundle.h"
#include "mamba3/Launch.h"

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

using namespace mamba3;

struct mamba3_bundle {
  std::unique_ptr<CpuBundle> cpu;
  std::unique_ptr<GpuBundle> gpu;
  const BundleManifest &manifest() const {
    return cpu ? cpu->manifest() : gpu->manifest();
  }
};

namespace {

thread_local std::string lastError;

int fail(const std::string &message) {
  lastError = message;
  return -1;
}

/// The C buffers as BufferArgs; false (and the error set) for a bad dtype
/// or rank, which the C++ types cannot hold.
bool toBufferArgs(const mamba3_buffer *args, int32_t nargs,
                  std::vector<BufferArg> &out) {
  if (nargs < 0 || (nargs > 0 && !args)) {
    fail("the launch passes no argument array");
    return false;
  }
  out.resize(static_cast<size_t>(nargs));
  for (int32_t i = 0; i < nargs; ++i) {
    const mamba3_buffer &a = args[i];
    if (a.dtype < MAMBA3_DTYPE_F32 || a.dtype > MAMBA3_DTYPE_F16) {
      fail("argument " + std::to_string(i) + " has dtype code " +
           std::to_string(a.dtype) + " (MAMBA3_DTYPE_F32/BF16/I32/F64/F16)");
      return false;
    }
    if (a.rank < 0 || a.rank > MAMBA3_MAX_RANK) {
      fail("argument " + std::to_string(i) + " has rank " +
           std::to_string(a.rank) + " (at most " +
           std::to_string(MAMBA3_MAX_RANK) + ")");
      return false;
    }
    out[i].data = a.data;
    out[i].type = static_cast<ElementType>(a.dtype);
    out[i].rank = a.rank;
    for (int32_t d = 0; d < a.rank; ++d)
      out[i].shape[d] = a.shape[d];
  }
  return true;
}

} // namespace

extern "C" {

int mamba3_api_version(void) { return MAMBA3_C_API_VERSION; }

const char *mamba3_last_error(void) { return lastError.c_str(); }

mamba3_bundle *mamba3_bundle_load(const char *dir, int device) {
  if (!dir) {
    fail("mamba3_bundle_load: no directory");
    return nullptr;
  }
  try {
    BundleManifest m;
    std::string error;
    if (!loadBundleManifest(dir, m, error)) {
      fail(error);
      return nullptr;
    }
    auto bundle = std::make_unique<mamba3_bundle>();
    if (m.target == "cpu")
      bundle->cpu = CpuBundle::load(dir, error);
    else
      bundle->gpu = GpuBundle::load(dir, error, device);
    if (!bundle->cpu && !bundle->gpu) {
      fail(error);
      return nullptr;
    }
    return bundle.release();
  } catch (const std::exception &e) {
    fail(std::string("mamba3_bundle_load: ") + e.what());
    return nullptr;
  }
}

void mamba3_bundle_free(mamba3_bundle *bundle) { delete bundle; }

const char *mamba3_bundle_target(const mamba3_bundle *bundle) {
  return bundle ? bundle->manifest().target.c_str() : "";
}

const char *mamba3_bundle_kind(const mamba3_bundle *bundle) {
  return bundle ? bundle->manifest().kind.c_str() : "";
}

int64_t mamba3_bundle_workspace_bytes(const mamba3_bundle *bundle,
                                      int64_t batch, int64_t seqlen) {
  if (!bundle)
    return fail("no bundle");
  std::string error;
  LaunchShape shape{batch, seqlen};
  if (!bundle->gpu) {
    LayerConfig cfg;
    return launchConfig(bundle->manifest(), shape, cfg, error) ? 0
                                                               : fail(error);
  }
  // The launch's grids and scratch sizes for this shape, or why it has none.
  GpuLaunchPlan plan;
  if (!bundle->gpu->plan(shape, plan, error))
    return fail(error);
  return static_cast<int64_t>(plan.workspaceBytes);
}

int mamba3_bundle_launch(const mamba3_bundle *bundle, int64_t batch,
                         int64_t seqlen, const mamba3_buffer *args,
                         int32_t nargs, void *workspace,
                         int64_t workspace_bytes, void *stream) {
  if (!bundle)
    return fail("no bundle");
  std::vector<BufferArg> buffers;
  if (!toBufferArgs(args, nargs, buffers))
    return -1;
  if (workspace_bytes < 0)
    return fail("the workspace size is negative");
  try {
    std::string error;
    LaunchShape shape{batch, seqlen};
    bool ok =
        bundle->cpu
            ? bundle->cpu->launch(shape, buffers.data(), buffers.size(), error)
            : bundle->gpu->launch(
                  shape, buffers.data(), buffers.size(),
                  static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(workspace)),
                  static_cast<size_t>(workspace_bytes),
                  static_cast<CUstream>(stream), error);
    return ok ? 0 : fail(error);
  } catch (const std::bad_alloc &) {
    return fail("mamba3_bundle_launch: out of host memory");
  }
}

int mamba3_bundle_reference(const mamba3_bundle *bundle, int64_t batch,
                            int64_t seqlen, const mamba3_buffer *args,
                            int32_t nargs) {
  if (!bundle)
    return fail("no bundle");
  std::vector<BufferArg> buffers;
  if (!toBufferArgs(args, nargs, buffers))
    return -1;
  try {
    std::string error;
    if (!runReferenceOnBuffers(bundle->manifest(), LaunchShape{batch, seqlen},
                               buffers.data(), buffers.size(), error))
      return fail(error);
    return 0;
  } catch (const std::bad_alloc &) {
    return fail("mamba3_bundle_reference: out of host memory");
  }
}

} // extern "C"
