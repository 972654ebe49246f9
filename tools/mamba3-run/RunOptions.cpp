//===- RunOptions.cpp - mamba3-run's command line ----------------------===//

#include "RunOptions.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace mamba3::run {

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

namespace {


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
} // namespace

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

} // namespace mamba3::run
