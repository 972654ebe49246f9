//===- mamba3-run.cpp - Run a Mamba-3 layer target and check it -----------===//
//
// Runs one target (the float64 reference, or compiled CPU kernels) on the
// golden cases or on random inputs and prints, per case and output, the
// relative L2 error against the answers:
//
//   mamba3-run --target reference --golden BASE [--case NAME] [--chunk C]
//   mamba3-run --target reference --random --chunk C [config flags]
//   mamba3-run --target cpu --golden BASE [--case NAME] [--chunk C]
//   mamba3-run --target cpu --bundle DIR --golden BASE --case NAME
//
// A target is one entry of targets(): a function from a layer config and its
// inputs to the layer outputs. The cpu target runs bundles through
// runtime/CpuBundle; when it must compile one it runs the mamba3-compile
// program rather than linking the compiler, so this tool stays MLIR-free and
// builds with MAMBA3_RUNTIME_ONLY.
//
// Exit status: 0 all within tolerance, 1 some output is not (or the target
// failed on a case), 2 bad usage, unreadable files, or a target that cannot
// be readied (missing bundle, failed compile).
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"
#include "mamba3/GpuBundle.h"
#include "mamba3/Golden.h"
#include "mamba3/Launch.h"
#include "mamba3/Reference.h"
#include "common/Process.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char **environ;

using namespace mamba3;

using mamba3::tools::executableDirectory;
using mamba3::tools::readFile;
using mamba3::tools::runProgram;

namespace {

constexpr int kExitPass = 0, kExitMismatch = 1, kExitUsage = 2;

const char *const kUsage = R"(usage:
  mamba3-run --target T --golden BASE [--case NAME[,NAME...]] [--chunk C] [--tol X]
  mamba3-run --target T --random [config flags] [--seed X] [--chunk C] [--tol X]
  mamba3-run --target cpu --bundle DIR (--golden BASE --case NAME | --random ...)

Runs target T on the golden cases of BASE (BASE.json and BASE.bin; a folder
holding mamba3_cases.{json,bin} also works) or on random inputs, and prints the
relative L2 error ||got - ref|| / ||ref|| of every output. On random inputs the
answers come from the token-by-token float64 reference.

targets:
  reference   float64 reference: the chunked form with --chunk C (C >= 1), the
              token-by-token recurrence without it or with --chunk 0;
              tolerance 1e-12. With --random it needs --chunk.
  cpu         kernels compiled by mamba3-compile, run through a CPU bundle;
              tolerance 1e-5 (fp32 data), 1e-2 (--dtype bf16). Without
              --bundle, every case's config is compiled into a temporary
              folder by the mamba3-compile next to this program (or
              --compiler PATH); batch and sequence length stay dynamic, so
              cases that differ only there share a bundle.

options:
  --tol X               fail above this relative L2 error (default: per target)
  --chunk C             chunk size (0: token by token; cpu default 64)
cpu options:
  --bundle DIR          run this bundle (from mamba3-compile --target cpu -o
                        DIR); it fixes chunk, dtype and scan/step, and the
                        config of every case must match it
  --compiler PATH       the mamba3-compile program to build bundles with
  --dtype f32|bf16      data type of Q, K, V, Z, out [f32]
  --step                decode-step bundles: one-token cases only (golden
                        cases with L > 1 are skipped; naming one is an error)
  --repeats N           time N kernel calls per case, report the mean [1]
sm_90a options:
  --bundle DIR          the GPU bundle to run (mamba3-compile --target sm_90a)
  --in-place            decode-step bundles: the new states overwrite the
                        state inputs (one buffer each), as in a decode loop

  mamba3-run --explain --bundle DIR [--batch B] [--seqlen L] [--sm-count N]
                        print what GPU bundle DIR runs for that launch shape
                        (schedule, chunks per block, grids, scratch,
                        parameters) on a GPU of N SMs [132: H100 SXM, H200];
                        needs no GPU. B and L default to the bundle's static
                        ones.
config flags (with --random; defaults in brackets):
  --batch B [1]  --seqlen L [64]  --heads H [4]  --groups G [1]
  --state N [64]  --headdim P [32]  --angles S [16]  --rank R [1]
  --mimo  --no-d  --no-z  --init  --no-wrap-angle  --broadcast-angles
  --varlen              B sequences of random lengths (the first one token
                        long) packed into L tokens, offsets in cu_seqlens
  --rmsnorm [--norm-eps X]  per-head RMSNorm of y before the gate, weights
                        norm_weight (H, P) [eps 1e-5]
  --state-dtype f32|bf16
  --rule trapezoid|euler [trapezoid]  --pairing adjacent|half_split [adjacent]
  --seed X [0]

exit status: 0 pass, 1 some error above the tolerance, 2 usage or file errors
(also a missing bundle, a config it does not fit, or a failed compile)
)";

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

struct Options {
  std::string target;
  std::string golden;
  std::vector<std::string> caseNames;
  bool random = false;
  /// --time-only: run and time, no float64 answers (benchmark shapes).
  bool timeOnly = false;
  /// --in-place (sm_90a decode steps): the state outputs share the state
  /// inputs' device buffers.
  bool inPlace = false;
  /// --explain: print what a GPU bundle runs for --batch / --seqlen, on a
  /// GPU of --sm-count SMs; nothing runs.
  bool explain = false;
  int64_t smCount = 132;
  bool hasChunk = false;
  int64_t chunk = 0;
  bool hasTolerance = false;
  double tolerance = 0;
  uint64_t seed = 0;
  LayerConfig config;
  /// Config flags seen, to reject them without --random.
  std::vector<std::string> configFlags;

  // The cpu target's options.
  std::string bundle, compiler;
  std::string dtype = "f32";
  /// Decode-step bundles; also set when --bundle names a step bundle.
  bool step = false;
  int64_t repeats = 1;
  /// cpu-only flags seen, to reject them for other targets.
  std::vector<std::string> cpuFlags;
};

bool parseInt(const std::string &text, int64_t &value) {
  if (text.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  value = v;
  return true;
}

bool parseUnsigned(const std::string &text, uint64_t &value) {
  if (text.empty() || text[0] == '-')
    return false;
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  value = v;
  return true;
}

bool parseDouble(const std::string &text, double &value) {
  if (text.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v))
    return false;
  value = v;
  return true;
}

/// The positive number of option --`name`; false with `error` set otherwise.
bool parsePositive(const std::string &name, const std::string &text,
                   double &value, std::string &error) {
  double v;
  if (!parseDouble(text, v) || v <= 0) {
    error = "--" + name + " expects a positive number, got '" + text + "'";
    return false;
  }
  value = v;
  return true;
}

std::vector<std::string> splitList(const std::string &text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos)
      return parts;
    start = comma + 1;
  }
}

/// Parses argv into `opts`; on a usage error returns false and sets `error`.
/// Sets `help` for --help.
bool parseOptions(int argc, char **argv, Options &opts, bool &help,
                  std::string &error) {
  LayerConfig &cfg = opts.config;
  // The defaults of random mode: a small layer of the official shape family.
  cfg.seqlen = 64, cfg.heads = 4, cfg.state = 64, cfg.headdim = 32;
  cfg.angles = 16;

  struct IntFlag {
    const char *name;
    int64_t *field;
  };
  const IntFlag configInts[] = {
      {"batch", &cfg.batch},   {"seqlen", &cfg.seqlen},
      {"heads", &cfg.heads},   {"groups", &cfg.groups},
      {"state", &cfg.state},   {"headdim", &cfg.headdim},
      {"angles", &cfg.angles}, {"rank", &cfg.rank}};

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help = true;
      return true;
    }
    if (arg.rfind("--", 0) != 0) {
      error = "unexpected argument '" + arg + "' (options start with --)";
      return false;
    }
    // --flag=value or --flag value.
    std::string name = arg.substr(2), value;
    bool inlineValue = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inlineValue = true;
    }
    auto takeValue = [&]() -> bool {
      if (inlineValue)
        return true;
      if (i + 1 >= argc) {
        error = "--" + name + " expects a value";
        return false;
      }
      value = argv[++i];
      return true;
    };
    auto noValue = [&]() -> bool {
      if (inlineValue) {
        error = "--" + name + " takes no value";
        return false;
      }
      return true;
    };

    bool isConfigInt = false;
    for (const IntFlag &flag : configInts) {
      if (name != flag.name)
        continue;
      isConfigInt = true;
      if (!takeValue())
        return false;
      if (!parseInt(value, *flag.field)) {
        error = "--" + name + " expects an integer, got '" + value + "'";
        return false;
      }
      opts.configFlags.push_back(name);
    }
    if (isConfigInt)
      continue;

    if (name == "bundle" || name == "compiler" || name == "dtype" ||
        name == "repeats") {
      if (!takeValue())
        return false;
      opts.cpuFlags.push_back(name);
      if (name == "bundle") {
        opts.bundle = value;
      } else if (name == "compiler") {
        opts.compiler = value;
      } else if (name == "dtype") {
        if (value != "f32" && value != "bf16") {
          error = "--dtype must be f32 or bf16, got '" + value + "'";
          return false;
        }
        opts.dtype = value;
      } else if (!parseInt(value, opts.repeats) || opts.repeats < 1 ||
                 opts.repeats > INT_MAX) {
        error = "--repeats expects a positive integer, got '" + value + "'";
        return false;
      }
      continue;
    }

    if (name == "target" || name == "golden" || name == "case" ||
        name == "chunk" || name == "tol" || name == "seed" || name == "rule" ||
        name == "pairing" || name == "state-dtype" || name == "norm-eps") {
      if (!takeValue())
        return false;
      if (name == "target") {
        opts.target = value;
      } else if (name == "golden") {
        opts.golden = value;
      } else if (name == "case") {
        opts.caseNames = splitList(value);
      } else if (name == "chunk") {
        if (!parseInt(value, opts.chunk) || opts.chunk < 0) {
          error = "--chunk expects an integer >= 0 (0: token by token), got '" +
                  value + "'";
          return false;
        }
        opts.hasChunk = true;
      } else if (name == "tol") {
        if (!parsePositive(name, value, opts.tolerance, error))
          return false;
        opts.hasTolerance = true;
      } else if (name == "seed") {
        if (!parseUnsigned(value, opts.seed)) {
          error = "--seed expects an unsigned integer, got '" + value + "'";
          return false;
        }
        opts.configFlags.push_back(name);
      } else if (name == "rule") {
        if (value != "trapezoid" && value != "euler") {
          error = "--rule must be trapezoid or euler, got '" + value + "'";
          return false;
        }
        cfg.rule = value == "euler" ? Discretization::Euler
                                    : Discretization::Trapezoid;
        opts.configFlags.push_back(name);
      } else if (name == "norm-eps") {
        if (!parsePositive(name, value, cfg.normEps, error))
          return false;
        opts.configFlags.push_back(name);
      } else if (name == "state-dtype") {
        if (value != "f32" && value != "bf16") {
          error = "--state-dtype must be f32 or bf16, got '" + value + "'";
          return false;
        }
        cfg.bf16State = value == "bf16";
        opts.configFlags.push_back(name);
      } else {
        if (value != "adjacent" && value != "half_split") {
          error =
              "--pairing must be adjacent or half_split, got '" + value + "'";
          return false;
        }
        cfg.pairing = value == "half_split" ? RotaryPairing::HalfSplit
                                            : RotaryPairing::Adjacent;
        opts.configFlags.push_back(name);
      }
      continue;
    }

    if (name == "in-place" || name == "explain") {
      if (!noValue())
        return false;
      (name == "explain" ? opts.explain : opts.inPlace) = true;
      continue;
    }
    if (name == "sm-count") {
      if (!takeValue())
        return false;
      if (!parseInt(value, opts.smCount) || opts.smCount < 1 ||
          opts.smCount > 1024) {
        error = "--sm-count expects an SM count in [1, 1024], got '" + value +
                "'";
        return false;
      }
      continue;
    }
    if (name == "random" || name == "time-only" || name == "step" || name == "mimo" ||
        name == "no-d" || name == "no-z" || name == "init" ||
        name == "no-wrap-angle" || name == "broadcast-angles" ||
        name == "varlen" || name == "rmsnorm") {
      if (!noValue())
        return false;
      if (name == "time-only") {
        opts.timeOnly = true;
        continue;
      }
      if (name == "random") {
        opts.random = true;
        continue;
      }
      if (name == "step") {
        opts.step = true;
        opts.cpuFlags.push_back(name);
        continue;
      }
      if (name == "mimo")
        cfg.mimo = true;
      else if (name == "no-d")
        cfg.hasD = false;
      else if (name == "no-z")
        cfg.hasZ = false;
      else if (name == "init")
        cfg.hasInitialState = true;
      else if (name == "broadcast-angles")
        cfg.broadcastAngles = true;
      else if (name == "varlen")
        cfg.varlen = true;
      else if (name == "rmsnorm")
        cfg.rmsNorm = true;
      else
        cfg.wrapAngle = false;
      opts.configFlags.push_back(name);
      continue;
    }

    error = "unknown option '" + arg + "'";
    return false;
  }

  if (opts.explain) {
    // Only the bundle and the launch shape matter.
    if (opts.bundle.empty()) {
      error = "--explain needs --bundle DIR (a GPU bundle)";
      return false;
    }
    for (const std::string &flag : opts.configFlags)
      if (flag != "batch" && flag != "seqlen") {
        error = "--" + flag + " has no meaning with --explain (the bundle "
                "fixes the config; give --batch and --seqlen)";
        return false;
      }
    return true;
  }
  if (opts.target.empty()) {
    error = "--target is required";
    return false;
  }
  if (opts.random == !opts.golden.empty()) {
    error = opts.random ? "--golden and --random exclude each other"
                        : "give --golden BASE or --random";
    return false;
  }
  if (opts.random && !opts.caseNames.empty()) {
    error = "--case selects golden cases; it has no meaning with --random";
    return false;
  }
  if (!opts.random && !opts.configFlags.empty()) {
    error = "--" + opts.configFlags.front() +
            " configures random inputs; it needs --random (golden cases "
            "carry their own config)";
    return false;
  }
  if (opts.random) {
    if (std::string e = cfg.validate(); !e.empty()) {
      error = "invalid config: " + e;
      return false;
    }
  }
  if (!opts.bundle.empty()) {
    // The manifest states these; a second source could only disagree.
    for (const std::string &flag : opts.cpuFlags)
      if (flag == "compiler" || flag == "dtype" || flag == "step") {
        error = "--" + flag + " conflicts with --bundle (the bundle's "
                "manifest fixes it)";
        return false;
      }
    if (opts.hasChunk) {
      error = "--chunk conflicts with --bundle (the bundle's manifest fixes "
              "it)";
      return false;
    }
  }
  if (opts.step && opts.random && cfg.seqlen != 1) {
    error = "--step runs one decode token: give --seqlen 1";
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Targets
//===----------------------------------------------------------------------===//

/// One way to run the layer. A target gets the config and inputs of a case
/// and fills the outputs (prefill layouts); it returns false and sets `error`
/// when it cannot run the case.
struct Target {
  const char *name;
  /// Tolerance when --tol is not given (it may depend on the data type).
  std::function<double(const Options &)> defaultTolerance;
  /// Whether random mode needs --chunk (it picks what is compared).
  bool randomNeedsChunk;
  /// "reference, chunk 64" and the like, for the report's header.
  std::function<std::string(const Options &)> describe;
  /// Optional, once before any case: checks the options against the machine
  /// (finds the compiler, loads --bundle) and may complete `opts` from what
  /// it finds. False stops the run with exit status 2.
  std::function<bool(Options &, std::string &)> setup;
  /// Optional, per case before any case runs: readies the target for the
  /// config (compiles a bundle). False stops the run with exit status 2, so
  /// that a broken toolchain is not reported as a numerical failure.
  std::function<bool(const Options &, const LayerConfig &, std::string &)>
      prepare;
  /// Fills `out`; `kernelSeconds` receives the time of one kernel call when
  /// the target can measure it apart from conversions (else stays negative).
  std::function<bool(const Options &, const LayerConfig &, const LayerInputs &,
                     LayerOutputs &, double &kernelSeconds, std::string &)>
      run;
};

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

//===----------------------------------------------------------------------===//
// Report
//===----------------------------------------------------------------------===//

/// A text table with columns sized to their contents.
class Table {
public:
  /// `rightAligned` per column (numbers are).
  Table(std::vector<std::string> header, std::vector<bool> rightAligned)
      : rightAligned(std::move(rightAligned)) {
    rows.push_back(std::move(header));
  }
  void addRow(std::vector<std::string> row) { rows.push_back(std::move(row)); }

  void print(FILE *os) const {
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto &row : rows)
      for (size_t c = 0; c < row.size(); ++c)
        width[c] = std::max(width[c], row[c].size());
    for (const auto &row : rows) {
      std::string line;
      for (size_t c = 0; c < row.size(); ++c) {
        std::string pad(width[c] - row[c].size(), ' ');
        line += c ? "  " : "";
        line += rightAligned[c] ? pad + row[c] : row[c] + pad;
      }
      while (!line.empty() && line.back() == ' ')
        line.pop_back();
      std::fprintf(os, "%s\n", line.c_str());
    }
  }

private:
  std::vector<bool> rightAligned;
  std::vector<std::vector<std::string>> rows;
};

std::string formatError(double e) {
  if (std::isinf(e))
    return "inf";
  if (std::isnan(e))
    return "nan";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2e", e);
  return buf;
}

std::string formatMs(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", seconds * 1e3);
  return buf;
}

std::string configText(const LayerConfig &c) {
  std::string s =
      "b=" + std::to_string(c.batch) + " L=" + std::to_string(c.seqlen) +
      " H=" + std::to_string(c.heads) + " G=" + std::to_string(c.groups) +
      " N=" + std::to_string(c.state) + " P=" + std::to_string(c.headdim) +
      " S=" + std::to_string(c.angles) + " R=" + std::to_string(c.rank);
  if (!c.hasD)
    s += " noD";
  if (!c.hasZ)
    s += " noZ";
  if (c.broadcastAngles)
    s += " broadcast-angles";
  if (c.varlen)
    s += " varlen";
  if (c.rmsNorm)
    s += " rmsnorm";
  if (c.bf16State)
    s += " bf16-state";
  if (c.hasInitialState)
    s += " init";
  if (c.rule == Discretization::Euler)
    s += " euler";
  if (c.pairing == RotaryPairing::HalfSplit)
    s += " half-split";
  return s;
}

const char *const kOutputNames[] = {"out", "angle", "ssm", "k", "v"};

const Tensor &outputTensor(const LayerOutputs &o, size_t i) {
  const Tensor *all[] = {&o.out, &o.angle, &o.ssm, &o.k, &o.v};
  return *all[i];
}

Table makeTable() {
  std::vector<std::string> header = {"case", "kind", "config"};
  std::vector<bool> right = {false, false, false};
  for (const char *name : kOutputNames) {
    header.push_back(name);
    right.push_back(true);
  }
  // time: the whole target call (input conversions included); kernel: one
  // kernel call, where the target measures it.
  header.insert(header.end(), {"time (ms)", "kernel (ms)", "result"});
  right.insert(right.end(), {true, true, false});
  return Table(header, right);
}

/// Runs `target` on one case, adds its row and returns its worst error
/// (+inf when the target failed; the reason goes to `failures`).
double runCase(const Target &target, const Options &opts,
               const std::string &name, const std::string &kind,
               const LayerConfig &cfg, const LayerInputs &in,
               const LayerOutputs &expected, double tolerance, Table &table,
               std::vector<std::string> &failures) {
  std::vector<std::string> row = {name, kind, configText(cfg)};
  LayerOutputs got;
  std::string error;
  double kernelSeconds = -1;
  auto start = std::chrono::steady_clock::now();
  bool ok = target.run(opts, cfg, in, got, kernelSeconds, error);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  double worst = 0;
  for (size_t i = 0; i < std::size(kOutputNames); ++i) {
    double e = ok ? relativeL2(outputTensor(got, i), outputTensor(expected, i),
                               outputPeriod(cfg, kOutputNames[i]))
                  : HUGE_VAL;
    // NaN never compares greater; count it as the worst.
    worst = std::isnan(e) || e > worst ? e : worst;
    row.push_back(ok ? formatError(e) : "-");
  }
  row.push_back(formatMs(seconds));
  row.push_back(ok && kernelSeconds >= 0 ? formatMs(kernelSeconds) : "-");
  bool pass = ok && worst <= tolerance;
  row.push_back(!ok ? "ERROR" : pass ? "ok" : "FAIL");
  table.addRow(row);
  if (!ok)
    failures.push_back(name + ": " + error);
  return ok ? worst : HUGE_VAL;
}

int finish(const Table &table, const std::vector<std::string> &failures,
           size_t cases, size_t failed, double worst, double tolerance) {
  table.print(stdout);
  for (const std::string &f : failures)
    std::printf("error: %s\n", f.c_str());
  bool pass = failed == 0;
  std::printf("%zu case%s, %zu failed; worst relative L2 error %s "
              "(tolerance %.0e): %s\n",
              cases, cases == 1 ? "" : "s", failed, formatError(worst).c_str(),
              tolerance, pass ? "PASS" : "FAIL");
  return pass ? kExitPass : kExitMismatch;
}

//===----------------------------------------------------------------------===//
// Drivers
//===----------------------------------------------------------------------===//

bool isDirectory(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// BASE, BASE.json or a folder holding mamba3_cases.{json,bin} -> BASE.
std::string goldenBase(std::string path) {
  if (isDirectory(path))
    return path + "/mamba3_cases";
  for (const char *ext : {".json", ".bin"}) {
    size_t n = std::strlen(ext);
    if (path.size() > n && path.compare(path.size() - n, n, ext) == 0)
      return path.substr(0, path.size() - n);
  }
  return path;
}

/// How long compiling took, when the cpu target compiled bundles.
void printPreparation() {
  if (size_t n = cpuBundles().compiled())
    std::printf("compiled %zu bundle%s with mamba3-compile in %.2f s\n", n,
                n == 1 ? "" : "s", cpuBundles().compileTime());
}

int runGolden(const Target &target, const Options &opts, double tolerance) {
  std::string base = goldenBase(opts.golden), error;
  std::vector<GoldenCase> cases;
  if (!loadGoldenCases(base, cases, error)) {
    std::fprintf(stderr, "mamba3-run: %s\n", error.c_str());
    return kExitUsage;
  }
  std::vector<const GoldenCase *> selected;
  for (const std::string &name : opts.caseNames) {
    const GoldenCase *found = nullptr;
    for (const GoldenCase &c : cases)
      if (c.name == name)
        found = &c;
    if (!found) {
      std::string known;
      for (const GoldenCase &c : cases)
        known += (known.empty() ? "" : ", ") + c.name;
      std::fprintf(stderr, "mamba3-run: no case '%s' in %s.json (cases: %s)\n",
                   name.c_str(), base.c_str(), known.c_str());
      return kExitUsage;
    }
    selected.push_back(found);
  }
  size_t skipped = 0;
  if (opts.caseNames.empty())
    for (const GoldenCase &c : cases) {
      // A decode step is one token: the other cases are no error, only out
      // of its reach.
      if (opts.step && c.config.seqlen != 1) {
        ++skipped;
        continue;
      }
      selected.push_back(&c);
    }
  if (selected.empty()) {
    std::fprintf(stderr, "mamba3-run: no one-token case in %s.json for a "
                 "decode step\n", base.c_str());
    return kExitUsage;
  }
  if (target.prepare)
    for (const GoldenCase *c : selected)
      if (!target.prepare(opts, c->config, error)) {
        std::fprintf(stderr, "mamba3-run: case %s: %s\n", c->name.c_str(),
                     error.c_str());
        return kExitUsage;
      }

  std::printf("target %s: %s\n", target.name, target.describe(opts).c_str());
  std::printf("golden cases: %s.{json,bin}", base.c_str());
  if (skipped)
    std::printf(" (%zu with L > 1 skipped: a decode step is one token)",
                skipped);
  std::printf("\n");
  printPreparation();
  Table table = makeTable();
  std::vector<std::string> failures;
  double worst = 0;
  size_t failed = 0;
  for (const GoldenCase *c : selected) {
    double e = runCase(target, opts, c->name, c->kind, c->config, c->inputs,
                       c->expected, tolerance, table, failures);
    worst = std::isnan(e) || e > worst ? e : worst;
    failed += !(e <= tolerance);
  }
  return finish(table, failures, selected.size(), failed, worst, tolerance);
}

int runRandom(const Target &target, const Options &opts, double tolerance) {
  if (target.randomNeedsChunk && !opts.hasChunk) {
    std::fprintf(stderr,
                 "mamba3-run: --target %s --random compares the chunked form "
                 "with the recurrence: give --chunk C\n",
                 target.name);
    return kExitUsage;
  }
  const LayerConfig &cfg = opts.config;
  std::string error;
  // The config may come from a bundle's manifest (sm_90a).
  if (std::string e = cfg.validate(); !e.empty()) {
    std::fprintf(stderr, "mamba3-run: invalid config: %s\n", e.c_str());
    return kExitUsage;
  }
  if (target.prepare && !target.prepare(opts, cfg, error)) {
    std::fprintf(stderr, "mamba3-run: %s\n", error.c_str());
    return kExitUsage;
  }
  LayerInputs in = randomInputs(cfg, opts.seed);
  if (opts.timeOnly) {
    // Benchmark shapes: the float64 answers would take minutes.
    LayerOutputs got;
    double kernelSeconds = -1;
    std::printf("target %s: %s (timing only, not checked)\n", target.name,
                target.describe(opts).c_str());
    if (!target.run(opts, cfg, in, got, kernelSeconds, error)) {
      std::fprintf(stderr, "mamba3-run: %s\n", error.c_str());
      return 1;
    }
    return 0;
  }
  auto start = std::chrono::steady_clock::now();
  LayerOutputs expected = referenceScan(cfg, in);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  std::printf("target %s: %s\n", target.name, target.describe(opts).c_str());
  std::printf("answers: float64 reference, token by token (%s ms)\n",
              formatMs(seconds).c_str());
  printPreparation();
  Table table = makeTable();
  std::vector<std::string> failures;
  double worst =
      runCase(target, opts, "random seed=" + std::to_string(opts.seed),
              cfg.mimo ? "mimo" : "siso", cfg, in, expected, tolerance, table,
              failures);
  return finish(table, failures, 1, !(worst <= tolerance), worst, tolerance);
}

/// --explain: the launch plan of --bundle for --batch / --seqlen.
int explainBundle(const Options &opts,
                  const std::vector<std::string> &flagsGiven) {
  BundleManifest m;
  std::string error;
  if (!loadBundleManifest(opts.bundle, m, error)) {
    std::fprintf(stderr, "mamba3-run: %s\n", error.c_str());
    return kExitUsage;
  }
  if (m.target == "cpu") {
    std::fprintf(stderr, "mamba3-run: %s is a CPU bundle; --explain prints "
                 "GPU launches\n", opts.bundle.c_str());
    return kExitUsage;
  }
  auto given = [&](const char *flag) {
    return std::find(flagsGiven.begin(), flagsGiven.end(), flag) !=
           flagsGiven.end();
  };
  LaunchShape shape{given("batch") ? opts.config.batch : m.config.batch,
                    m.isStep() ? 1
                    : given("seqlen") ? opts.config.seqlen
                                      : m.config.seqlen};
  if (shape.batch < 0 || shape.seqlen < 0) {
    std::fprintf(stderr, "mamba3-run: the bundle takes %s at launch: give "
                 "--batch and --seqlen\n",
                 shape.batch < 0 ? "batch" : "seqlen");
    return kExitUsage;
  }
  GpuLaunchPlan plan;
  if (!planGpuLaunch(m, shape, opts.smCount, plan, error)) {
    std::fprintf(stderr, "mamba3-run: %s\n", error.c_str());
    return kExitMismatch;
  }
  // What runs is the variant the dispatch rule picks for the shape.
  const BundleManifest &top = m;
  const BundleManifest &v = gpuVariant(top, plan.variant);
  auto dim = [](int64_t v) { return v < 0 ? std::string("?") : std::to_string(v); };
  std::printf("bundle %s: %s %s, batch %s, seqlen %s, schedule %s",
              opts.bundle.c_str(), m.target.c_str(), m.kind.c_str(),
              dim(m.config.batch).c_str(),
              m.isStep() ? "-" : dim(m.config.seqlen).c_str(),
              v.schedule.c_str());
  if (v.chunkSize > 0)
    std::printf(", chunk %lld", static_cast<long long>(v.chunkSize));
  if (v.chunksPerBlock == 0)
    std::printf(", chunks per block chosen per launch (%lld blocks per SM)",
                static_cast<long long>(v.blocksPerSm));
  else if (v.chunksPerBlock > 0)
    std::printf(", %lld chunks per block",
                static_cast<long long>(v.chunksPerBlock));
  std::printf("\nlaunch shape: %s %lld, seqlen %lld, on %lld SMs\n",
              m.config.varlen ? "sequences" : "batch",
              static_cast<long long>(shape.batch),
              static_cast<long long>(shape.seqlen),
              static_cast<long long>(opts.smCount));
  if (!top.variants.empty()) {
    std::printf("  variants:");
    for (size_t i = 0; i <= top.variants.size(); ++i)
      std::printf("%s %s", i ? "," : "", gpuVariant(top, i).variant.c_str());
    std::printf("; dispatch: %s, %zu table rows\n",
                top.dispatchSource.c_str(), top.dispatch.size());
    std::printf("  runs variant %s: %s\n", v.variant.c_str(),
                plan.choice.c_str());
  }
  if (plan.chunks > 0)
    std::printf("  chunks per sequence: %lld\n",
                static_cast<long long>(plan.chunks));
  if (plan.chunksPerBlock > 0)
    std::printf("  chunks per block: %lld, spans: %lld\n",
                static_cast<long long>(plan.chunksPerBlock),
                static_cast<long long>(plan.spans));
  for (size_t k = 0; k < v.launches.size(); ++k) {
    const BundleManifest::Launch &l = v.launches[k];
    const auto &g = plan.grids[k];
    std::printf("  launch %zu: %s grid (%u, %u, %u) = %u blocks of %lld "
                "threads, %lld B dynamic shared memory\n",
                k, l.kernel.c_str(), g[0], g[1], g[2], g[0] * g[1] * g[2],
                static_cast<long long>(l.block[0] * l.block[1] * l.block[2]),
                static_cast<long long>(l.dynamicSharedBytes));
  }
  for (size_t j = 0; j < v.scratch.size(); ++j)
    std::printf("  scratch %s: %zu B at offset %zu\n",
                v.scratch[j].name.c_str(), plan.scratchBytes[j],
                plan.scratchOffsets[j]);
  std::printf("  workspace: %zu B\n", plan.workspaceBytes);
  for (size_t j = 0; j < v.parameters.size(); ++j)
    std::printf("  parameter %s = %lld\n", v.parameters[j].c_str(),
                static_cast<long long>(plan.parameters[j]));
  return kExitPass;
}

} // namespace

int main(int argc, char **argv) {
  Options opts;
  bool help = false;
  std::string error;
  if (!parseOptions(argc, argv, opts, help, error)) {
    std::fprintf(stderr, "mamba3-run: %s (see --help)\n", error.c_str());
    return kExitUsage;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return kExitPass;
  }
  if (opts.explain)
    return explainBundle(opts, opts.configFlags);
  const Target *target = findTarget(opts.target);
  if (!target) {
    std::string known;
    for (const Target &t : targets())
      known += (known.empty() ? "" : ", ") + std::string(t.name);
    std::fprintf(stderr, "mamba3-run: unknown target '%s' (targets: %s)\n",
                 opts.target.c_str(), known.c_str());
    return kExitUsage;
  }
  // The bundle flags are cpu's, but for --bundle, which sm_90a takes too.
  for (const std::string &flag : opts.cpuFlags)
    if (opts.target != "cpu" && !(opts.target == "sm_90a" && flag == "bundle")) {
      std::fprintf(stderr, "mamba3-run: --%s is an option of --target cpu "
                   "(see --help)\n", flag.c_str());
      return kExitUsage;
    }
  if (opts.inPlace && opts.target != "sm_90a") {
    std::fprintf(stderr, "mamba3-run: --in-place is an option of --target "
                 "sm_90a (decode-step bundles)\n");
    return kExitUsage;
  }
  if (target->setup && !target->setup(opts, error)) {
    std::fprintf(stderr, "mamba3-run: %s\n", error.c_str());
    return kExitUsage;
  }
  double tolerance =
      opts.hasTolerance ? opts.tolerance : target->defaultTolerance(opts);
  return opts.random ? runRandom(*target, opts, tolerance)
                     : runGolden(*target, opts, tolerance);
}
