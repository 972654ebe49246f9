//===- mamba3-run.cpp - Run a Mamba-3 layer target and check it -----------===//
//
// Runs one target (today: the float64 reference) on the golden cases or on
// random inputs and prints, per case and output, the relative L2 error
// against the answers:
//
//   mamba3-run --target reference --golden BASE [--case NAME] [--chunk C]
//   mamba3-run --target reference --random --chunk C [config flags]
//
// A target is one entry of targets(): a function from a layer config and its
// inputs to the layer outputs. Targets that compile or load kernel bundles
// (cpu, sm_90a) slot in there without touching the drivers.
//
// Exit status: 0 all within tolerance, 1 some output is not (or the target
// failed on a case), 2 bad usage or unreadable files.
//
//===----------------------------------------------------------------------===//

#include "mamba3/Golden.h"
#include "mamba3/Reference.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace mamba3;

namespace {

constexpr int kExitPass = 0, kExitMismatch = 1, kExitUsage = 2;

const char *const kUsage = R"(usage:
  mamba3-run --target T --golden BASE [--case NAME[,NAME...]] [--chunk C] [--tol X]
  mamba3-run --target T --random [config flags] [--seed X] [--chunk C] [--tol X]

Runs target T on the golden cases of BASE (BASE.json and BASE.bin; a folder
holding mamba3_cases.{json,bin} also works) or on random inputs, and prints the
relative L2 error ||got - ref|| / ||ref|| of every output. On random inputs the
answers come from the token-by-token float64 reference.

targets:
  reference   float64 reference: the chunked form with --chunk C (C >= 1), the
              token-by-token recurrence without it or with --chunk 0;
              tolerance 1e-12. With --random it needs --chunk.

options:
  --tol X               fail above this relative L2 error (default: per target)
  --chunk C             chunk size (0: token by token)
config flags (with --random; defaults in brackets):
  --batch B [1]  --seqlen L [64]  --heads H [4]  --groups G [1]
  --state N [64]  --headdim P [32]  --angles S [16]  --rank R [1]
  --mimo  --no-d  --no-z  --init  --no-wrap-angle
  --rule trapezoid|euler [trapezoid]  --pairing adjacent|half_split [adjacent]
  --seed X [0]

exit status: 0 pass, 1 some error above the tolerance, 2 usage or file errors
)";

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

struct Options {
  std::string target;
  std::string golden;
  std::vector<std::string> caseNames;
  bool random = false;
  bool hasChunk = false;
  int64_t chunk = 0;
  bool hasTolerance = false;
  double tolerance = 0;
  uint64_t seed = 0;
  LayerConfig config;
  /// Config flags seen, to reject them without --random.
  std::vector<std::string> configFlags;
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

    if (name == "target" || name == "golden" || name == "case" ||
        name == "chunk" || name == "tol" || name == "seed" || name == "rule" ||
        name == "pairing") {
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
        if (!parseDouble(value, opts.tolerance) || opts.tolerance <= 0) {
          error = "--tol expects a positive number, got '" + value + "'";
          return false;
        }
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

    if (name == "random" || name == "mimo" || name == "no-d" ||
        name == "no-z" || name == "init" || name == "no-wrap-angle") {
      if (!noValue())
        return false;
      if (name == "random") {
        opts.random = true;
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
      else
        cfg.wrapAngle = false;
      opts.configFlags.push_back(name);
      continue;
    }

    error = "unknown option '" + arg + "'";
    return false;
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
  double defaultTolerance;
  /// Whether random mode needs --chunk (it picks what is compared).
  bool randomNeedsChunk;
  /// "reference, chunk 64" and the like, for the report's header.
  std::function<std::string(const Options &)> describe;
  std::function<bool(const Options &, const LayerConfig &, const LayerInputs &,
                     LayerOutputs &, std::string &)>
      run;
};

bool runReference(const Options &opts, const LayerConfig &cfg,
                  const LayerInputs &in, LayerOutputs &out,
                  std::string &error) {
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

const std::vector<Target> &targets() {
  static const std::vector<Target> list = {
      {"reference", 1e-12, /*randomNeedsChunk=*/true,
       [](const Options &opts) -> std::string {
         if (opts.hasChunk && opts.chunk > 0)
           return "float64 reference, chunked form, chunk " +
                  std::to_string(opts.chunk);
         return "float64 reference, token by token";
       },
       runReference},
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
  header.insert(header.end(), {"time (ms)", "result"});
  right.insert(right.end(), {true, false});
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
  auto start = std::chrono::steady_clock::now();
  bool ok = target.run(opts, cfg, in, got, error);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  double worst = 0;
  for (size_t i = 0; i < std::size(kOutputNames); ++i) {
    double e = ok ? relativeL2(outputTensor(got, i), outputTensor(expected, i))
                  : HUGE_VAL;
    // NaN never compares greater; count it as the worst.
    worst = std::isnan(e) || e > worst ? e : worst;
    row.push_back(ok ? formatError(e) : "-");
  }
  row.push_back(formatMs(seconds));
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
  if (opts.caseNames.empty())
    for (const GoldenCase &c : cases)
      selected.push_back(&c);

  std::printf("target %s: %s\n", target.name, target.describe(opts).c_str());
  std::printf("golden cases: %s.{json,bin}\n", base.c_str());
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
  LayerInputs in = randomInputs(cfg, opts.seed);
  auto start = std::chrono::steady_clock::now();
  LayerOutputs expected = referenceScan(cfg, in);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  std::printf("target %s: %s\n", target.name, target.describe(opts).c_str());
  std::printf("answers: float64 reference, token by token (%s ms)\n",
              formatMs(seconds).c_str());
  Table table = makeTable();
  std::vector<std::string> failures;
  double worst =
      runCase(target, opts, "random seed=" + std::to_string(opts.seed),
              cfg.mimo ? "mimo" : "siso", cfg, in, expected, tolerance, table,
              failures);
  return finish(table, failures, 1, !(worst <= tolerance), worst, tolerance);
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
  const Target *target = findTarget(opts.target);
  if (!target) {
    std::string known;
    for (const Target &t : targets())
      known += (known.empty() ? "" : ", ") + std::string(t.name);
    std::fprintf(stderr, "mamba3-run: unknown target '%s' (targets: %s)\n",
                 opts.target.c_str(), known.c_str());
    return kExitUsage;
  }
  double tolerance =
      opts.hasTolerance ? opts.tolerance : target->defaultTolerance;
  return opts.random ? runRandom(*target, opts, tolerance)
                     : runGolden(*target, opts, tolerance);
}
