//===- GpuLaunchPlan.cpp - Which variant a GPU bundle runs, and how -----===//
//
// The choice among a bundle's variants at a launch shape (its dispatch
// table, else the cost model; then the full-chunk twin where the chunk
// divides L) and the launch plan of the chosen one (grids, chunks per
// block, scratch, parameters): pure functions of the manifest and the
// shape, with no CUDA, so that the tests and the tools can ask them.
//
//===----------------------------------------------------------------------===//

#include "mamba3/GpuLaunchPlan.h"

#include "mamba3/Launch.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace mamba3;

namespace {

/// Scratch buffers start at this alignment inside a workspace.
constexpr size_t kScratchAlignment = 256;

size_t alignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

} // namespace

int64_t mamba3::launchChunksPerBlock(int64_t chunks, int64_t batchHeads,
                                     int64_t smCount, int64_t blocksPerSm) {
  if (chunks < 1)
    return 1;
  int64_t slots = std::max<int64_t>(smCount, 1) * std::max<int64_t>(blocksPerSm, 1);
  int64_t spans = std::clamp<int64_t>(slots / std::max<int64_t>(batchHeads, 1),
                                      1, chunks);
  return (chunks + spans - 1) / spans;
}

namespace {

/// The chunks of a sequence and, for chunk-parallel, the chunks per block
/// and the spans they make, of variant `m` at `cfg` on `smCount` SMs.
void planChunks(const BundleManifest &m, const LayerConfig &cfg,
                int64_t smCount, GpuLaunchPlan &plan) {
  plan.chunks = plan.chunksPerBlock = plan.spans = 0;
  if (m.chunkSize > 0 && !m.isStep())
    plan.chunks = (cfg.seqlen + m.chunkSize - 1) / m.chunkSize;
  if (m.chunksPerBlock >= 0) {
    plan.chunksPerBlock =
        m.chunksPerBlock > 0
            ? std::min(m.chunksPerBlock, plan.chunks)
            : launchChunksPerBlock(plan.chunks, cfg.batch * cfg.heads,
                                   smCount, m.blocksPerSm);
    plan.chunksPerBlock = std::max<int64_t>(plan.chunksPerBlock, 1);
    plan.spans = (plan.chunks + plan.chunksPerBlock - 1) / plan.chunksPerBlock;
  }
}

} // namespace

const BundleManifest &mamba3::gpuVariant(const BundleManifest &m,
                                         size_t index) {
  return index == 0 ? m : m.variants.at(index - 1);
}

namespace {

/// chooseGpuVariant among the variants that take every length: the table,
/// else the cost model. The reason is built only when `why` is given: a
/// launch needs the choice, not the words (mamba3-run --explain does).
size_t chooseGeneralVariant(const BundleManifest &m, const LayerConfig &cfg,
                            int64_t smCount, std::string *why) {
  const size_t count = 1 + m.variants.size();
  size_t general = 0;
  for (size_t v = 0; v < count; ++v)
    general += gpuVariant(m, v).seqlenMultiple == 0;
  if (general == 1) {
    if (why)
      *why = "the bundle's only variant for every length";
    return 0;
  }
  auto shape = [&] {
    return "b=" + std::to_string(cfg.batch) + " L=" + std::to_string(cfg.seqlen);
  };
  for (size_t r = 0; r < m.dispatch.size(); ++r) {
    const BundleManifest::DispatchRow &row = m.dispatch[r];
    if (!row.holds(cfg.batch, cfg.seqlen))
      continue;
    for (size_t v = 0; v < count; ++v)
      if (gpuVariant(m, v).variant == row.variant) {
        auto bound = [](int64_t hi) {
          return hi == 0 ? std::string("inf") : std::to_string(hi);
        };
        if (why)
          *why = "dispatch table row " + std::to_string(r) + " (b " +
                 std::to_string(row.batchMin) + ".." + bound(row.batchMax) +
                 ", L " + std::to_string(row.seqlenMin) + ".." +
                 bound(row.seqlenMax) + ", " + m.dispatchSource + ") holds " +
                 shape();
        return v;
      }
  }
  // The cost model: what ssm-gpu-schedule's auto picks for a static shape.
  size_t chunked = count, parallel = count;
  for (size_t v = count; v-- > 0;) {
    if (gpuVariant(m, v).seqlenMultiple > 0)
      continue;
    const std::string &schedule = gpuVariant(m, v).schedule;
    if (schedule == "chunked")
      chunked = v;
    else if (schedule == "chunk-parallel")
      parallel = v;
  }
  auto prefix = [&] {
    return (m.dispatch.empty() ? "" : "no table row holds " + shape() + "; ") +
           std::string("cost model: ");
  };
  if (chunked == count || parallel == count) {
    if (why)
      *why = prefix() + "the first variant (the bundle has not both a "
                        "chunked and a chunk-parallel one)";
    return 0;
  }
  // The spans the chunk-parallel variant would run at this shape.
  GpuLaunchPlan spanPlan;
  planChunks(gpuVariant(m, parallel), cfg, smCount, spanPlan);
  const int64_t batchHeads = cfg.batch * cfg.heads;
  const int64_t chunks = spanPlan.chunks, spans = spanPlan.spans;
  auto blocks = [&] {
    return "b x H = " + std::to_string(batchHeads) + " blocks on " +
           std::to_string(smCount) + " SMs";
  };
  if (batchHeads < smCount && spans >= 3) {
    if (why)
      *why = prefix() + blocks() + " leave SMs idle, and " +
             std::to_string(chunks) + " chunks make " + std::to_string(spans) +
             " spans";
    return parallel;
  }
  if (why)
    *why = prefix() + blocks() +
           (batchHeads >= smCount ? " fill the SMs"
                                  : ", and " + std::to_string(chunks) +
                                        " chunks make only " +
                                        std::to_string(spans) +
                                        " spans (chunk-parallel needs 3)");
  return chunked;
}

} // namespace

size_t mamba3::chooseGpuVariant(const BundleManifest &m, const LayerConfig &cfg,
                                int64_t smCount, std::string *why) {
  if (m.variants.empty()) {
    if (why)
      *why = "the bundle's only variant";
    return 0;
  }
  const size_t chosen = chooseGeneralVariant(m, cfg, smCount, why);
  const std::string &name = gpuVariant(m, chosen).variant;
  for (size_t v = 1; v <= m.variants.size(); ++v) {
    const BundleManifest &twin = gpuVariant(m, v);
    if (twin.seqlenMultiple > 0 && twin.specializes == name &&
        cfg.seqlen % twin.seqlenMultiple == 0) {
      if (why)
        *why += "; L=" + std::to_string(cfg.seqlen) + " is a whole number of " +
                std::to_string(twin.seqlenMultiple) +
                "-token chunks: its full-chunk kernels";
      return v;
    }
  }
  return chosen;
}

bool mamba3::planGpuLaunch(const BundleManifest &top, const LaunchShape &shape,
                           int64_t smCount, GpuLaunchPlan &plan,
                           std::string &error, bool explain) {
  plan = GpuLaunchPlan();
  if (!launchConfig(top, shape, plan.config, error))
    return false;
  plan.variant = chooseGpuVariant(top, plan.config, smCount,
                                  explain ? &plan.choice : nullptr);
  const BundleManifest &m = gpuVariant(top, plan.variant);
  plan.variantName = m.variant;
  const LayerConfig &cfg = plan.config;
  // CUDA's grid limits: x below 2^31, y and z at most 65535.
  const int64_t gridLimit[3] = {INT32_MAX, 65535, 65535};
  if (cfg.batch > gridLimit[1]) {
    error = std::string("launch shape: ") +
            (cfg.varlen ? "the number of sequences" : "batch") + " is " +
            std::to_string(cfg.batch) +
            "; the kernels run one block row per sequence and a grid holds "
            "at most 65535 (split the batch into launches)";
    return false;
  }
  planChunks(m, cfg, smCount, plan);
  auto size = [&](const std::string &name, int64_t &value) {
    if (std::isdigit(static_cast<unsigned char>(name[0])))
      value = std::atoll(name.c_str());
    else if (name == "H")
      value = cfg.heads;
    else if (name == "b")
      value = cfg.batch;
    else if (name == "spans")
      value = plan.spans;
    else
      return false;
    return value >= 1;
  };
  for (size_t k = 0; k < m.launches.size(); ++k) {
    std::array<unsigned, 3> grid{};
    for (int i = 0; i < 3; ++i) {
      const std::string &g = m.launches[k].grid[i];
      int64_t v = 0;
      if (!size(g, v)) {
        error = "manifest: launches[" + std::to_string(k) + "].grid[" +
                std::to_string(i) + "] = '" + g +
                "' is not a positive block count for this shape";
        return false;
      }
      if (v > gridLimit[i]) {
        error = "launch shape: kernel '" + m.launches[k].kernel + "' needs " +
                std::to_string(v) + " blocks along grid " + "xyz"[i] +
                " ('" + g + "'), past CUDA's limit of " +
                std::to_string(gridLimit[i]) +
                (g == "spans" ? " (a longer sequence needs a bundle with more "
                                "chunks per block)"
                              : "");
        return false;
      }
      grid[i] = static_cast<unsigned>(v);
    }
    plan.grids.push_back(grid);
  }
  // Scratch sizes, guarded against overflow: a workspace is at most 2^48
  // bytes, well past any GPU's memory.
  constexpr uint64_t kMaxWorkspace = uint64_t(1) << 48;
  size_t offset = 0;
  for (const BundleManifest::Scratch &b : m.scratch) {
    uint64_t bytes = static_cast<uint64_t>(b.elementBytes);
    for (const std::string &d : b.shape) {
      int64_t v = 0;
      if (!size(d, v)) {
        error = "manifest: scratch '" + b.name + "' has size '" + d +
                "', not a positive size for this shape";
        return false;
      }
      if (static_cast<uint64_t>(v) > kMaxWorkspace / bytes) {
        error = "launch shape: scratch '" + b.name + "' would exceed 2^48 "
                "bytes";
        return false;
      }
      bytes *= static_cast<uint64_t>(v);
    }
    offset = alignUp(offset, kScratchAlignment);
    plan.scratchOffsets.push_back(offset);
    plan.scratchBytes.push_back(static_cast<size_t>(bytes));
    offset += static_cast<size_t>(bytes);
    if (offset > kMaxWorkspace) {
      error = "launch shape: the workspace would exceed 2^48 bytes";
      return false;
    }
  }
  plan.workspaceBytes = offset;
  for (const std::string &p : m.parameters)
    plan.parameters.push_back(p == "seqlen" ? cfg.seqlen : plan.chunksPerBlock);
  return true;
}
