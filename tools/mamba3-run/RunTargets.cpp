//===- RunTargets.cpp - What mamba3-run runs a layer on -----------------===//

#include "RunTargets.h"

#include "mamba3/CpuBundle.h"
#include "mamba3/GpuBundle.h"
#include "mamba3/Launch.h"
#include "common/Process.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unistd.h>

using mamba3::tools::executableDirectory;
using mamba3::tools::runProgram;

namespace mamba3::run {

namespace {


bool runReference(const Options &opts, const LayerConfig &cfg,
                  const LayerInputs &in, LayerOutputs &out,
                  double & /*kernelSeconds*/, std::string &error) {
  bool chunked = opts.hasChunk && opts.chunk > 0;
  out = chunked ? referenceScanChunked(cfg, in, opts.chunk)
                : referenceScan(cfg, in);
  if (!out.out.empty())
    return true;
  error = cfg.validate();
  if (error.empty())
    error = checkInputs(cfg, in);
  if (error.empty())
    error = "the reference returned no outputs";
  return false;
}

//===----------------------------------------------------------------------===//
// The cpu target
//===----------------------------------------------------------------------===//

constexpr int64_t kDefaultCpuChunk = 64;

int64_t cpuChunk(const Options &opts) {
  return opts.hasChunk ? opts.chunk : kDefaultCpuChunk;
}


/// The bundles of the cpu target: the one of --bundle, or those compiled for
/// the cases into a temporary folder (removed at exit).
class CpuBundles {
public:
  ~CpuBundles() {
    bundles.clear(); // dlclose before the files go
    if (!tempDir.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(tempDir, ignored);
    }
  }

  bool setup(Options &opts, std::string &error) {
    if (!opts.bundle.empty()) {
      std::unique_ptr<CpuBundle> b = CpuBundle::load(opts.bundle, error);
      if (!b)
        return false;
      // The manifest decides what the run is: dtype for the tolerance, and a
      // step bundle takes one-token cases.
      opts.dtype = b->manifest().dtype;
      opts.step = b->manifest().isStep();
      opts.chunk = b->manifest().chunkSize;
      opts.hasChunk = true;
      bundles.push_back(std::move(b));
      return true;
    }
    compiler = opts.compiler;
    if (compiler.empty()) {
      std::string dir = executableDirectory();
      compiler = (dir.empty() ? std::string(".") : dir) + "/mamba3-compile";
      if (access(compiler.c_str(), X_OK) != 0) {
        error = "no mamba3-compile next to this program (" + compiler +
                "): give --compiler PATH, or --bundle DIR with a bundle "
                "built elsewhere (the runtime-only build has no compiler)";
        return false;
      }
    } else if (access(compiler.c_str(), X_OK) != 0) {
      error = "--compiler " + compiler + ": not an executable program";
      return false;
    }
    return true;
  }

  /// The loaded bundle that runs `cfg`, compiling one when there is none.
  const CpuBundle *get(const Options &opts, const LayerConfig &cfg,
                       std::string &error) {
    if (opts.step && cfg.seqlen != 1) {
      error = "a decode step runs one token; this case has L = " +
              std::to_string(cfg.seqlen) + " (drop --step)";
      return nullptr;
    }
    for (const std::unique_ptr<CpuBundle> &b : bundles)
      if (checkBundleConfig(b->manifest(), cfg).empty())
        return b.get();
    if (!opts.bundle.empty()) {
      error = checkBundleConfig(bundles.front()->manifest(), cfg) +
              " (bundle " + opts.bundle + ")";
      return nullptr;
    }
    if (tempDir.empty()) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "mamba3-run.XXXXXX")
              .string();
      if (!mkdtemp(pattern.data())) {
        error = "cannot create a temporary folder from " + pattern + ": " +
                std::strerror(errno);
        return nullptr;
      }
      tempDir = pattern;
    }
    std::string dir = tempDir + "/bundle" + std::to_string(bundles.size());
    std::vector<std::string> args =
        cpuCompileArguments(cfg, opts.step, cpuChunk(opts), dir);
    // cpuCompileArguments states the dtype as f32; --dtype replaces it.
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--dtype")
        args[i + 1] = opts.dtype;
    auto start = std::chrono::steady_clock::now();
    if (!runProgram(compiler, args, dir + ".log", error)) {
      error = "compiling a bundle failed: " + error;
      return nullptr;
    }
    compileSeconds += std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    std::unique_ptr<CpuBundle> b = CpuBundle::load(dir, error);
    if (!b)
      return nullptr;
    bundles.push_back(std::move(b));
    return bundles.back().get();
  }

  size_t compiled() const { return tempDir.empty() ? 0 : bundles.size(); }
  double compileTime() const { return compileSeconds; }

private:
  std::vector<std::unique_ptr<CpuBundle>> bundles;
  std::string compiler, tempDir;
  double compileSeconds = 0;
};

CpuBundles &cpuBundles() {
  static CpuBundles bundles;
  return bundles;
}

/// Prefill inputs of a one-token case -> decode layouts (no L axis).
LayerInputs decodeInputs(const LayerInputs &in) {
  LayerInputs step = in;
  auto dropAxis = [](Tensor &t, size_t axis) {
    if (!t.empty())
      t.shape.erase(t.shape.begin() + axis);
  };
  for (Tensor *t : {&step.Q, &step.K, &step.V, &step.Z, &step.Angles})
    dropAxis(*t, 1); // (b, L, ...)
  for (Tensor *t : {&step.ADT, &step.DT, &step.Trap})
    dropAxis(*t, 2); // (b, H, L)
  return step;
}

/// Runs a bundle on a case: as is for a scan, or for a step bundle with
/// the one-token case in decode layouts and `out` put back to the prefill
/// layout of the answers, (b, L = 1, H, P).
template <typename RunFn>
bool runScanOrStep(const Options &opts, const LayerInputs &in,
                   LayerOutputs &out, RunFn run) {
  if (!opts.step)
    return run(in);
  if (!run(decodeInputs(in)))
    return false;
  out.out.shape.insert(out.out.shape.begin() + 1, 1);
  return true;
}

bool runCpu(const Options &opts, const LayerConfig &cfg, const LayerInputs &in,
            LayerOutputs &out, double &kernelSeconds, std::string &error) {
  const CpuBundle *bundle = cpuBundles().get(opts, cfg, error);
  if (!bundle)
    return false;
  return runScanOrStep(opts, in, out, [&](const LayerInputs &layerIn) {
    return bundle->run(cfg, layerIn, out, error,
                       static_cast<int>(opts.repeats), &kernelSeconds);
  });
}

std::string describeCpu(const Options &opts) {
  std::string what = std::string(opts.step ? "decode step" : "scan") + ", " +
                     opts.dtype + ", " +
                     (cpuChunk(opts) > 0
                          ? "chunk " + std::to_string(cpuChunk(opts))
                          : std::string("token by token"));
  if (!opts.bundle.empty())
    return "CPU bundle " + opts.bundle + " (" + what + ")";
  return "CPU bundles from mamba3-compile (" + what +
         ", batch and seqlen dynamic)";
}

//===----------------------------------------------------------------------===//
// The sm_90a target: a GPU bundle through GpuBundle
//===----------------------------------------------------------------------===//

/// GPU bundles are compiled for one shape on a machine with MLIR, so the
/// target always runs the bundle of --bundle.
std::unique_ptr<GpuBundle> &gpuBundle() {
  static std::unique_ptr<GpuBundle> bundle;
  return bundle;
}

bool setupGpu(Options &opts, std::string &error) {
  if (opts.bundle.empty()) {
    error = "--target sm_90a runs a bundle compiled elsewhere: give --bundle "
            "DIR (from mamba3-compile <config> --batch B --seqlen L --target "
            "sm_90a -o DIR)";
    return false;
  }
  gpuBundle() = GpuBundle::load(opts.bundle, error);
  if (!gpuBundle())
    return false;
  const BundleManifest &m = gpuBundle()->manifest();
  opts.dtype = m.dtype;
  opts.step = m.isStep();
  // With --random and no config flags but --batch / --seqlen, the inputs
  // take the bundle's config at that launch shape (a dynamic bundle needs
  // both; a static one has its own).
  bool configGiven = false, batchGiven = false, seqlenGiven = false;
  for (const std::string &flag : opts.configFlags) {
    batchGiven |= flag == "batch";
    seqlenGiven |= flag == "seqlen";
    configGiven |= flag != "seed" && flag != "batch" && flag != "seqlen";
  }
  if (opts.random && !configGiven) {
    LayerConfig cfg = m.config;
    if (batchGiven)
      cfg.batch = opts.config.batch;
    if (seqlenGiven || m.isStep())
      cfg.seqlen = m.isStep() ? 1 : opts.config.seqlen;
    if (cfg.batch < 0 || cfg.seqlen < 0) {
      error = opts.bundle + " takes " + (cfg.batch < 0 ? "batch" : "seqlen") +
              " at launch: give --batch B --seqlen L with --random";
      return false;
    }
    opts.config = cfg;
  }
  return true;
}

bool runGpu(const Options &opts, const LayerConfig &cfg, const LayerInputs &in,
            LayerOutputs &out, double &kernelSeconds, std::string &error) {
  GpuTiming timing;
  timing.graph = opts.step;
  timing.repeats = std::max<int>(static_cast<int>(opts.repeats), 20);
  const GpuBundle &bundle = *gpuBundle();
  if (!runScanOrStep(opts, in, out, [&](const LayerInputs &layerIn) {
        return bundle.run(cfg, layerIn, out, error, &timing, opts.inPlace);
      }))
    return false;
  kernelSeconds = timing.launchSeconds;
  std::printf("  kernel: %.1f us, %.1f MB moved, %.1f GB/s (%.2fx the "
              "3.0 TB/s copy floor)\n",
              timing.launchSeconds * 1e6, timing.bytes / 1e6,
              timing.bytes / timing.launchSeconds / 1e9,
              timing.launchSeconds / (timing.bytes / 3.0e12));
  if (timing.graphSeconds >= 0)
    std::printf("  decode step: %.2f us per launch, %.2f us per CUDA-graph "
                "replay\n",
                timing.launchSeconds * 1e6, timing.graphSeconds * 1e6);
  return true;
}

std::string describeGpu(const Options &opts) {
  const GpuBundle &b = *gpuBundle();
  return "GPU bundle " + opts.bundle + " (" + b.manifest().kind + ", " +
         b.manifest().dtype + ", " + b.loadedImage() + " on " +
         b.device().name + ", " + std::to_string(b.device().smCount) +
         " SMs); kernel time: median of event-timed launches";
}

/// bf16 anywhere in the kernel interface: the data, or the ssm state.
bool hasBf16(const Options &opts) {
  return opts.dtype == "bf16" || opts.config.bf16State;
}

} // namespace

const std::vector<Target> &targets() {
  static const std::vector<Target> list = {
      {"reference", [](const Options &) { return 1e-12; },
       /*randomNeedsChunk=*/true,
       [](const Options &opts) -> std::string {
         if (opts.hasChunk && opts.chunk > 0)
           return "float64 reference, chunked form, chunk " +
                  std::to_string(opts.chunk);
         return "float64 reference, token by token";
       },
       nullptr, nullptr, runReference},
      // fp32 kernels against float64 answers: 1e-5 (golden/README.md); with
      // bf16 data the rounding of `out` alone is about 3e-3, and a bf16
      // state rounds the final state (the reference rounds too, but a tie
      // decided by fp32 rounding moves an element by one bf16 ulp).
      {"cpu",
       [](const Options &opts) { return hasBf16(opts) ? 1e-2 : 1e-5; },
       /*randomNeedsChunk=*/false, describeCpu,
       [](Options &opts, std::string &error) {
         return cpuBundles().setup(opts, error);
       },
       [](const Options &opts, const LayerConfig &cfg, std::string &error) {
         return cpuBundles().get(opts, cfg, error) != nullptr;
       },
       runCpu},
      // bf16 inputs, fp32 state: 1e-2 (DESIGN.md); fp32 data: 1e-4, since
      // the GPU's exp/sin/tanh are not correctly rounded.
      {"sm_90a",
       [](const Options &opts) { return hasBf16(opts) ? 1e-2 : 1e-4; },
       /*randomNeedsChunk=*/false, describeGpu, setupGpu, nullptr, runGpu},
  };
  return list;
}

const Target *findTarget(const std::string &name) {
  for (const Target &t : targets())
    if (name == t.name)
      return &t;
  return nullptr;
}

/// How long compiling took, when the cpu target compiled bundles.
void printPreparation() {
  if (size_t n = cpuBundles().compiled())
    std::printf("compiled %zu bundle%s with mamba3-compile in %.2f s\n", n,
                n == 1 ? "" : "s", cpuBundles().compileTime());
}

} // namespace mamba3::run
