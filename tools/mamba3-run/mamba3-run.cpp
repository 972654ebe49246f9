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
// A target is one entry of targets() (RunTargets.cpp): a function from a
// layer config and its inputs to the layer outputs; the flags are read by
// RunOptions.cpp. This file holds the report and the drivers. The cpu target runs bundles through
// runtime/CpuBundle; when it must compile one it runs the mamba3-compile
// program rather than linking the compiler, so this tool stays MLIR-free and
// builds with MAMBA3_RUNTIME_ONLY.
//
// Exit status: 0 all within tolerance, 1 some output is not (or the target
// failed on a case), 2 bad usage, unreadable files, or a target that cannot
// be readied (missing bundle, failed compile).
//
//===----------------------------------------------------------------------===//

#include "RunOptions.h"
#include "RunTargets.h"

#include "mamba3/CpuBundle.h"
#include "mamba3/GpuBundle.h"
#include "mamba3/Golden.h"
#include "mamba3/Launch.h"
#include "mamba3/Reference.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace mamba3;
using namespace mamba3::run;

namespace {

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
