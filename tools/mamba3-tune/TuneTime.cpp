//===- TuneTime.cpp - mamba3-tune time: the variants on the GPU ---------===//

#include "Tune.h"


#include "common/Process.h"

#include "mamba3/CudaDriver.h"
#include "mamba3/GpuBundle.h"
#include "mamba3/Json.h"
#include "mamba3/Launch.h"
#include "mamba3/Reference.h"
#include "mamba3/Tensor.h"
#include "mamba3/TuningDb.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace mamba3;

namespace mamba3::tune {

namespace fs = std::filesystem;

namespace {


struct PlannedVariant {
  TunedVariant variant;
  std::unique_ptr<GpuBundle> bundle;
};

/// Buckets from the shapes' grid: a shape's batch bucket runs from above
/// the next smaller batch timed to its own (the largest: no upper bound),
/// and so does its length.
void bucketOf(const std::vector<std::pair<int64_t, int64_t>> &shapes,
              int64_t b, int64_t l, TuningEntry &e) {
  std::set<int64_t> batches, lengths;
  for (auto [sb, sl] : shapes) {
    batches.insert(sb);
    lengths.insert(sl);
  }
  auto range = [](const std::set<int64_t> &points, int64_t v, int64_t &lo,
                  int64_t &hi) {
    auto it = points.find(v);
    lo = it == points.begin() ? 1 : *std::prev(it) + 1;
    hi = std::next(it) == points.end() ? 0 : v;
  };
  range(batches, b, e.batchMin, e.batchMax);
  range(lengths, l, e.seqlenMin, e.seqlenMax);
  e.batch = b;
  e.seqlen = l;
}

/// The candidate a bundle variant is: its schedule, the chunk, engines and
/// buffers its pipeline was asked for (the compiler's: auto, 0), its fixed
/// chunks per block (0: at launch), a tokens kernel's block size.
TunedVariant variantOf(const BundleManifest &m) {
  TunedVariant v;
  v.schedule = m.schedule;
  auto option = [&](const std::string &name) -> std::string {
    size_t at = m.pipeline.find(" " + name + "=");
    if (at == std::string::npos)
      return "";
    at += name.size() + 2;
    return m.pipeline.substr(at, m.pipeline.find_first_of(" }", at) - at);
  };
  if (v.schedule == "tokens") {
    v.blockSize = std::atoll(option("block-size").c_str());
    return v;
  }
  v.chunk = std::atoll(option("chunk-size").c_str());
  v.chunksPerBlock = std::max<int64_t>(m.chunksPerBlock, 0);
  if (std::string mma = option("mma"); !mma.empty())
    v.mma = mma;
  v.qkBuffers = std::atoll(option("qk-buffers").c_str());
  return v;
}

struct TimedShape {
  int64_t batch, seqlen;
  /// Bytes the layer must move at this shape: every input read and every
  /// output written once (the memory floor's numerator).
  double bytes = 0;
  double untunedMicros = -1;
  std::string untunedVariant;
  std::vector<double> micros; // per variant, -1: failed
};

} // namespace

int timeVariants(const Options &o, const std::string &workDir, TuningDb &db,
                 std::vector<TuningEntry> &entries) {
  std::string text = tools::readFile(workDir + "/plan.json"), error;
  JsonValue plan;
  if (text.empty() || !parseJson(text, plan, error) ||
      !plan.get("format") || !plan.get("format")->isString() ||
      plan.get("format")->asString() != "mamba3-tune-plan" ||
      !plan.get("format_version") ||
      plan.get("format_version")->asInt() != 2) {
    std::fprintf(stderr, "mamba3-tune: %s/plan.json is missing or not a plan "
                 "of this mamba3-tune (%s); run `mamba3-tune compile` again\n",
                 workDir.c_str(), error.c_str());
    return kExitFailure;
  }
  const std::string arch = plan.get("arch")->asString();
  const std::string config = plan.get("config")->asString();
  if (arch != db.arch) {
    std::fprintf(stderr, "mamba3-tune: %s is a tuning database for %s; the "
                 "variants in %s are for %s (use another --db)\n",
                 o.db.c_str(), db.arch.c_str(), workDir.c_str(), arch.c_str());
    return kExitFailure;
  }
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (const JsonValue &s : plan.get("shapes")->items())
    shapes.push_back({s.items()[0].asInt(), s.items()[1].asInt()});
  std::vector<PlannedVariant> variants;
  auto load = [&](const std::string &name, std::unique_ptr<GpuBundle> &b) {
    b = GpuBundle::load(workDir + "/" + name, error, o.device);
    if (!b) {
      std::fprintf(stderr, "mamba3-tune: %s\n", error.c_str());
      return false;
    }
    if (tuningConfigKey(b->manifest().configString) != config) {
      std::fprintf(stderr, "mamba3-tune: %s/%s is not a bundle of the plan's "
                   "layer\n", workDir.c_str(), name.c_str());
      return false;
    }
    return true;
  };
  std::unique_ptr<GpuBundle> untuned;
  if (!load(plan.get("untuned")->asString(), untuned))
    return kExitFailure;
  for (const JsonValue &v : plan.get("variants")->items()) {
    PlannedVariant p;
    p.variant.schedule = v.get("schedule")->asString();
    p.variant.chunk = v.get("chunk")->asInt();
    p.variant.chunksPerBlock = v.get("chunks_per_block")->asInt();
    p.variant.mma = v.get("mma")->asString();
    p.variant.qkBuffers = v.get("qk_buffers")->asInt();
    p.variant.blockSize = v.get("block_size")->asInt();
    if (!load(v.get("bundle")->asString(), p.bundle))
      return kExitFailure;
    variants.push_back(std::move(p));
  }
  const CudaDevice &dev = untuned->device();
  const CudaDriver &d = *dev.driver;
  std::printf("mamba3-tune: %s on %s (%d SMs): %zu variants x %zu shapes\n",
              config.c_str(), dev.name.c_str(), dev.smCount, variants.size(),
              shapes.size());
  auto check = [&](CUresult r, const char *what) {
    if (r == 0)
      return true;
    std::fprintf(stderr, "mamba3-tune: %s failed: %s\n", what,
                 d.describe(r).c_str());
    return false;
  };
  CUstream stream = nullptr;
  CUevent start = nullptr, stop = nullptr;
  if (!check(d.cuCtxSetCurrent(dev.context), "cuCtxSetCurrent") ||
      !check(d.cuStreamCreate(&stream, 1), "cuStreamCreate") ||
      !check(d.cuEventCreate(&start, 0), "cuEventCreate") ||
      !check(d.cuEventCreate(&stop, 0), "cuEventCreate"))
    return kExitFailure;
  const BundleManifest &m = untuned->manifest();
  // The memory floor's rate, measured in this run: a 1 GiB device-to-device
  // copy (read + write), the median of 5.
  double copyRate = 0;
  {
    const size_t n = size_t(1) << 30;
    CUdeviceptr from = 0, to = 0;
    if (!check(d.cuMemAlloc(&from, n), "cuMemAlloc") ||
        !check(d.cuMemAlloc(&to, n), "cuMemAlloc"))
      return kExitFailure;
    std::vector<float> ms;
    for (int i = 0; i < 6; ++i) {
      float t = 0;
      // (On the legacy stream, where cuMemcpyDtoD runs.)
      if (!check(d.cuEventRecord(start, nullptr), "cuEventRecord") ||
          !check(d.cuMemcpyDtoD(to, from, n), "cuMemcpyDtoD") ||
          !check(d.cuEventRecord(stop, nullptr), "cuEventRecord") ||
          !check(d.cuEventSynchronize(stop), "the copy") ||
          !check(d.cuEventElapsedTime(&t, start, stop), "cuEventElapsedTime"))
        return kExitFailure;
      if (i > 0)
        ms.push_back(t);
    }
    d.cuMemFree(from);
    d.cuMemFree(to);
    std::sort(ms.begin(), ms.end());
    copyRate = 2.0 * n / (ms[ms.size() / 2] * 1e-3);
    std::printf("mamba3-tune: copy rate %.0f GB/s (read + write, 1 GiB "
                "device to device): the memory floor of a shape is its bytes "
                "at this rate\n",
                copyRate / 1e9);
  }
  size_t total = shapes.size() * variants.size(), done = 0;
  std::vector<TimedShape> report;
  // The launch configs first (a shape the bundle refuses stops the run
  // before any timing); each shape's inputs are drawn on another thread
  // while the shape before it is timed (drawing 10^8 float64 values takes
  // seconds).
  std::vector<LayerConfig> configs(shapes.size());
  for (size_t s = 0; s < shapes.size(); ++s)
    if (!launchConfig(m, LaunchShape{shapes[s].first, shapes[s].second},
                      configs[s], error)) {
      std::fprintf(stderr, "mamba3-tune: shape %lldx%lld: %s\n",
                   static_cast<long long>(shapes[s].first),
                   static_cast<long long>(shapes[s].second), error.c_str());
      return kExitFailure;
    }
  // A shape's inputs, drawn and packed as the bundle's arguments.
  struct ShapeInputs {
    std::vector<std::vector<unsigned char>> host;
    std::vector<std::vector<int64_t>> argShapes;
    std::string error;
  };
  auto draw = [&](size_t s) {
    return std::async(std::launch::async, [&m, &configs, &o, s]() {
      ShapeInputs packed;
      // A step's inputs have no L axis.
      LayerInputs in = randomInputs(configs[s], o.seed, m.isStep());
      if (!packBundleArguments(m, configs[s], in, packed.host,
                               packed.argShapes, packed.error) &&
          packed.error.empty())
        packed.error = "cannot pack the inputs";
      return packed;
    });
  };
  // Drawing a large shape's inputs takes seconds of one core, longer than
  // timing every variant on it: draw the next few shapes' on threads of
  // their own while one is timed.
  constexpr size_t kDrawAhead = 4;
  std::vector<std::future<ShapeInputs>> ahead(shapes.size());
  for (size_t s = 0; s < std::min(kDrawAhead, shapes.size()); ++s)
    ahead[s] = draw(s);
  for (size_t s = 0; s < shapes.size(); ++s) {
    const auto [b, l] = shapes[s];
    LaunchShape shape{b, l};
    // One set of inputs per shape, on the tuner's own device buffers (no
    // caller's state is touched), shared by every variant.
    ShapeInputs inputs = ahead[s].get();
    if (s + kDrawAhead < shapes.size())
      ahead[s + kDrawAhead] = draw(s + kDrawAhead);
    if (!inputs.error.empty()) {
      std::fprintf(stderr, "mamba3-tune: %s\n", inputs.error.c_str());
      return kExitFailure;
    }
    std::vector<std::vector<unsigned char>> &host = inputs.host;
    std::vector<std::vector<int64_t>> &argShapes = inputs.argShapes;
    std::vector<CUdeviceptr> buffers(host.size(), 0);
    std::vector<void *> pointers(host.size());
    struct Free {
      const CudaDriver &d;
      std::vector<CUdeviceptr> &p;
      ~Free() {
        for (CUdeviceptr x : p)
          if (x)
            d.cuMemFree(x);
      }
    } freeBuffers{d, buffers};
    for (size_t i = 0; i < host.size(); ++i) {
      if (!check(d.cuMemAlloc(&buffers[i], std::max<size_t>(host[i].size(), 16)),
                 "cuMemAlloc") ||
          (!m.arguments[i].isOutput &&
           !check(d.cuMemcpyHtoD(buffers[i], host[i].data(), host[i].size()),
                  "cuMemcpyHtoD")))
        return kExitFailure;
      pointers[i] = reinterpret_cast<void *>(static_cast<uintptr_t>(buffers[i]));
    }
    std::vector<BufferArg> args = bufferArgs(m, host, argShapes, &pointers);
    std::vector<size_t> outputs;
    for (size_t i = 0; i < m.arguments.size(); ++i)
      if (m.arguments[i].isOutput)
        outputs.push_back(i);
    // Times `bundle` on the shape's buffers; with `results`, first zeroes
    // the outputs and keeps what one launch writes (every output, packed as
    // the manifest's dtype, in its order).
    auto timeBundle = [&](const GpuBundle &bundle, double &micros,
                          std::vector<std::vector<unsigned char>> *results) {
      auto launch = [&]() {
        if (bundle.launch(shape, args.data(), args.size(), 0, 0, stream, error))
          return true;
        std::fprintf(stderr, "mamba3-tune: %s\n", error.c_str());
        return false;
      };
      if (results) {
        // The memsets are on the legacy stream and the launches on a
        // non-blocking one: wait for them.
        for (size_t i : outputs)
          if (!check(d.cuMemsetD8(buffers[i], 0, host[i].size()), "cuMemsetD8"))
            return false;
        if (!check(d.cuCtxSynchronize(), "cuCtxSynchronize") || !launch() ||
            !check(d.cuStreamSynchronize(stream), "the kernel"))
          return false;
        results->resize(outputs.size());
        for (size_t k = 0; k < outputs.size(); ++k) {
          std::vector<unsigned char> &bytes = (*results)[k];
          bytes.resize(host[outputs[k]].size());
          if (!check(d.cuMemcpyDtoH(bytes.data(), buffers[outputs[k]],
                                    bytes.size()),
                     "cuMemcpyDtoH"))
            return false;
        }
      }
      for (int i = 0; i < o.warmup; ++i)
        if (!launch())
          return false;
      std::vector<float> ms;
      for (int i = 0; i < o.repeats; ++i) {
        float t = 0;
        if (!check(d.cuEventRecord(start, stream), "cuEventRecord") ||
            !launch() || !check(d.cuEventRecord(stop, stream), "cuEventRecord") ||
            !check(d.cuEventSynchronize(stop), "the kernel") ||
            !check(d.cuEventElapsedTime(&t, start, stop), "cuEventElapsedTime"))
          return false;
        ms.push_back(t);
      }
      std::sort(ms.begin(), ms.end());
      micros = ms[ms.size() / 2] * 1e3;
      return true;
    };
    TimedShape row{b, l, 0, -1, "", {}};
    for (const std::vector<unsigned char> &buffer : host)
      row.bytes += static_cast<double>(buffer.size());
    std::vector<std::vector<unsigned char>> reference, got;
    GpuLaunchPlan before;
    untuned->plan(shape, before, error);
    row.untunedVariant = before.variantName;
    const TunedVariant untunedKernel =
        variantOf(gpuVariant(untuned->manifest(), before.variant));
    // The GPU idled while the inputs were drawn and its clocks dropped:
    // launch for at least 50 ms before the first timing, so that the
    // untuned bundle, timed first, is not timed on a slower clock.
    {
      double spent = 0;
      while (spent < 50e3) {
        double micros = 0;
        if (!timeBundle(*untuned, micros, nullptr))
          return kExitFailure;
        spent += micros * (1 + o.warmup + o.repeats);
        if (micros <= 0)
          break;
      }
    }
    if (!timeBundle(*untuned, row.untunedMicros, &reference))
      return kExitFailure;
    // Every variant computes the same layer: one that disagrees with the
    // compiler's own bundle is broken, reported, and never a winner.
    const double tolerance = m.dtype == "f32" ? 1e-4 : 2e-2;
    TuningEntry entry;
    entry.config = config;
    entry.device = dev.name;
    entry.smCount = dev.smCount;
    bucketOf(shapes, b, l, entry);
    int best = -1, second = -1;
    for (size_t v = 0; v < variants.size(); ++v) {
      double micros = -1;
      ++done;
      if (!timeBundle(*variants[v].bundle, micros, &got))
        return kExitFailure;
      // The worst output (out and the final states).
      double diff = 0;
      std::string worst;
      for (size_t k = 0; k < outputs.size(); ++k)
        if (double e = relativeL2Packed(
                got[k].data(), reference[k].data(),
                elementCount(argShapes[outputs[k]]),
                m.arguments[outputs[k]].dtype,
                outputPeriod(configs[s], m.arguments[outputs[k]].name));
            !(e <= diff)) {
          diff = e;
          worst = m.arguments[outputs[k]].name;
        }
      if (!(diff <= tolerance)) {
        std::printf("  [%zu/%zu] b=%lld L=%lld %s: %s differs from the "
                    "untuned bundle's (relative L2 %.3g > %.3g): not a "
                    "candidate\n",
                    done, total, static_cast<long long>(b),
                    static_cast<long long>(l),
                    variants[v].variant.name().c_str(), worst.c_str(), diff,
                    tolerance);
        row.micros.push_back(-1);
        continue;
      }
      row.micros.push_back(micros);
      if (best < 0 || micros < row.micros[best]) {
        second = best;
        best = static_cast<int>(v);
      } else if (second < 0 || micros < row.micros[second]) {
        second = static_cast<int>(v);
      }
      std::printf("  [%zu/%zu] b=%lld L=%lld %s: %.1f us (best so far %s "
                  "%.1f us; untuned %.1f us)\n",
                  done, total, static_cast<long long>(b),
                  static_cast<long long>(l),
                  variants[v].variant.name().c_str(), micros,
                  variants[best].variant.name().c_str(), row.micros[best],
                  row.untunedMicros);
      std::fflush(stdout);
    }
    // Timed again after the variants: the faster of its two medians.
    {
      double again = 0;
      if (!timeBundle(*untuned, again, nullptr))
        return kExitFailure;
      row.untunedMicros = std::min(row.untunedMicros, again);
    }
    // No candidate faster than the untuned bundle's own measurement: its
    // kernel stays (two measurements of one kernel differ by a few percent,
    // and a winner by noise would make the tuned bundle slower).
    if (best >= 0 && row.micros[best] >= row.untunedMicros)
      for (size_t v = 0; v < variants.size(); ++v)
        if (variants[v].variant.sameKernel(untunedKernel) && row.micros[v] > 0) {
          if (static_cast<int>(v) != best)
            second = best;
          best = static_cast<int>(v);
          row.micros[v] = row.untunedMicros;
        }
    if (best >= 0) {
      entry.candidates = 0;
      for (double t : row.micros)
        entry.candidates += t > 0;
      entry.best = variants[best].variant;
      entry.best.micros = row.micros[best];
      if (second >= 0) {
        entry.runnerUp = variants[second].variant;
        entry.runnerUp.micros = row.micros[second];
      }
      entries.push_back(entry);
    }
    report.push_back(row);
  }
  d.cuEventDestroy(start);
  d.cuEventDestroy(stop);
  d.cuStreamDestroy(stream);

  // Before / after: the compiler's own bundle (its cost model's choice)
  // against the winner, in this run.
  // GB/s and floor ratios are the tuned winner's; the untuned bundle's
  // floor ratio is ratio x the tuned one's.
  std::printf("\n%s\n%-7s %-7s %-26s %10s %-32s %10s %7s %9s %7s %7s\n",
              config.c_str(), "batch", "seqlen", "untuned runs", "us",
              "tuned winner", "us", "ratio", "MB", "GB/s", "floor");
  for (const TimedShape &r : report) {
    auto found = std::find_if(entries.begin(), entries.end(),
                              [&](const TuningEntry &e) {
                                return e.batch == r.batch && e.seqlen == r.seqlen;
                              });
    const TuningEntry *winner = found == entries.end() ? nullptr : &*found;
    const double micros = winner ? winner->best.micros : r.untunedMicros;
    std::printf("%-7lld %-7lld %-26s %10.1f %-32s %10.1f %7.3f %9.2f %7.0f "
                "%7.2f\n",
                static_cast<long long>(r.batch),
                static_cast<long long>(r.seqlen), r.untunedVariant.c_str(),
                r.untunedMicros,
                winner ? winner->best.name().c_str() : "(none)",
                winner ? winner->best.micros : -1.0,
                winner ? winner->best.micros / r.untunedMicros : -1.0,
                r.bytes / 1e6, r.bytes / (micros * 1e3),
                micros / (r.bytes / copyRate * 1e6));
  }
  return 0;
}

} // namespace mamba3::tune
