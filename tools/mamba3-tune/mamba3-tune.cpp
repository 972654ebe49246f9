//===- mamba3-tune.cpp - Tune a layer's GPU kernels into a database -------===//
//
// Searches the variants the compiler exposes for one layer (schedule,
// chunk size, chunks per block, the chunked kernel's matmul engines and Q/K
// buffers; a decode step's block size) over a set of launch shapes: each
// variant
// is compiled by mamba3-compile into a bundle taking batch and length at
// launch, then all are timed on the GPU on the same inputs, and the winner
// of every shape bucket goes into a tuning database (runtime TuningDb.h)
// that `mamba3-compile --tuning-db` turns into a tuned bundle.
//
// The two halves run where their tools are: `compile` on the machine with
// MLIR, `time` on the GPU machine (this program links no MLIR, so it builds
// with MAMBA3_RUNTIME_ONLY); without a subcommand it does both.
//
//===----------------------------------------------------------------------===//

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
namespace fs = std::filesystem;

namespace {

const char *const kUsage =
    "usage:\n"
    "  mamba3-tune [LAYER FLAGS | file.mlir] --db FILE [options]\n"
    "      compile the variants here, time them on this machine's GPU and\n"
    "      merge the winners into the tuning database FILE\n"
    "  mamba3-tune compile [LAYER FLAGS | file.mlir] -o WORKDIR [options]\n"
    "      only compile (a machine with MLIR): WORKDIR/plan.json and one\n"
    "      bundle per variant; copy WORKDIR to the GPU machine\n"
    "  mamba3-tune time WORKDIR... --db FILE [options]\n"
    "      only time (the GPU machine; no MLIR needed) and merge into FILE\n"
    "  mamba3-tune merge DB... --db FILE\n"
    "      merge the entries of other databases into FILE (later ones win)\n"
    "\n"
    "LAYER FLAGS are mamba3-compile's (--heads --state --headdim --angles\n"
    "--dtype bf16 --mimo --rank ...), without --batch and --seqlen: the\n"
    "variants take both at launch (a file's ssm.scan needs ? for both).\n"
    "\n"
    "options:\n"
    "  --shapes BxL,...        launch shapes to time (default: b in\n"
    "                          1,2,4,8,16 x L in 512..16384, b x L <= 32768;\n"
    "                          a step (--step): b in 1,2,4,...,256, L = 1)\n"
    "  --chunks C,...          chunk sizes to try (default 32,64)\n"
    "  --chunks-per-block K,...  chunk-parallel chunks per block (default\n"
    "                          0,2,4; 0 leaves it to the launch)\n"
    "  --schedules S,...       chunked and/or chunk-parallel (default both)\n"
    "  --mma E,...             the one-pass chunked kernel's matmul engines\n"
    "                          (default auto,mma.sync,wgmma-scores,wgmma)\n"
    "  --qk-buffers B,...      its Q/K tile buffers (default 0,1,2; 0: the\n"
    "                          compiler's choice). Chunk-parallel variants\n"
    "                          keep the compiler's engines and buffers.\n"
    "                          Combinations the tiles do not allow are\n"
    "                          skipped, and so are those that compile to\n"
    "                          the kernels of an earlier one\n"
    "  --block-sizes T,...     a decode step's threads per block (default\n"
    "                          128,256,512,1024)\n"
    "  -o WORKDIR              where the variant bundles go (default: a\n"
    "                          fresh folder under /tmp)\n"
    "  --compiler PATH         mamba3-compile (default: next to this tool)\n"
    "  --warmup N --repeats N  launches before / timed per variant and shape\n"
    "                          (default 3 / 20; the median counts)\n"
    "  --device N --seed N     GPU ordinal (0); input seed (1)\n";

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

struct Options {
  std::string subcommand; // "", "compile" or "time"
  std::vector<std::string> layerFlags, workDirs;
  std::string db, workDir, compiler;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  std::vector<int64_t> chunks = {32, 64}, chunksPerBlock = {0, 2, 4};
  std::vector<std::string> schedules = {"chunked", "chunk-parallel"};
  std::vector<std::string> mmas = {"auto", "mma.sync", "wgmma-scores", "wgmma"};
  std::vector<int64_t> qkBuffers = {0, 1, 2};
  std::vector<int64_t> blockSizes = {128, 256, 512, 1024};
  int warmup = 3, repeats = 20, device = 0;
  uint64_t seed = 1;
  /// --step among the layer flags (a file's ssm.step shows in its bundle).
  bool step = false;
};

std::vector<std::string> splitList(const std::string &text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ','))
    if (!item.empty())
      out.push_back(item);
  return out;
}

bool parseInt(const std::string &text, int64_t &out, int64_t lo, int64_t hi) {
  char *end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi)
    return false;
  out = v;
  return true;
}

std::vector<std::pair<int64_t, int64_t>> defaultShapes(bool step) {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  if (step) {
    for (int64_t b = 1; b <= 256; b *= 2)
      shapes.push_back({b, 1});
    return shapes;
  }
  for (int64_t b : {1, 2, 4, 8, 16})
    for (int64_t l : {512, 1024, 2048, 4096, 8192, 16384})
      if (b * l <= 32768)
        shapes.push_back({b, l});
  return shapes;
}

bool parseOptions(int argc, char **argv, Options &o, std::string &error) {
  int i = 1;
  if (argc > 1 && (std::string(argv[1]) == "compile" ||
                   std::string(argv[1]) == "time" ||
                   std::string(argv[1]) == "merge"))
    o.subcommand = argv[i++];
  // Flags of mamba3-compile that the tuner sets itself.
  static const std::set<std::string> owned = {
      "--batch", "--seqlen", "--schedule", "--chunk", "--target", "--emit",
      "--tuning-db", "--sm-count", "--block-size"};
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string &out) {
      if (i + 1 >= argc) {
        error = a + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string v;
    int64_t n = 0;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--db") {
      if (!value(o.db))
        return false;
    } else if (a == "-o") {
      if (!value(o.workDir))
        return false;
    } else if (a == "--compiler") {
      if (!value(o.compiler))
        return false;
    } else if (a == "--shapes") {
      if (!value(v))
        return false;
      o.shapes.clear();
      for (const std::string &s : splitList(v)) {
        size_t x = s.find('x');
        int64_t b = 0, l = 0;
        if (x == std::string::npos || !parseInt(s.substr(0, x), b, 1, 65535) ||
            !parseInt(s.substr(x + 1), l, 1, int64_t(1) << 31)) {
          error = "--shapes takes BxL,... (e.g. 1x2048,8x4096), got '" + s + "'";
          return false;
        }
        o.shapes.push_back({b, l});
      }
    } else if (a == "--chunks" || a == "--chunks-per-block") {
      if (!value(v))
        return false;
      std::vector<int64_t> &list =
          a == "--chunks" ? o.chunks : o.chunksPerBlock;
      list.clear();
      for (const std::string &s : splitList(v)) {
        if (!parseInt(s, n, a == "--chunks" ? 16 : 0, 4096)) {
          error = a + " takes a list of " +
                  (a == "--chunks" ? "chunk sizes (16 or more)"
                                   : "counts (0: at launch)") +
                  ", got '" + s + "'";
          return false;
        }
        list.push_back(n);
      }
    } else if (a == "--mma") {
      if (!value(v))
        return false;
      o.mmas = splitList(v);
      for (const std::string &s : o.mmas)
        if (!isTunedMma(s)) {
          error = "--mma takes auto, mma.sync, wgmma-scores and/or wgmma, "
                  "got '" + s + "'";
          return false;
        }
    } else if (a == "--qk-buffers" || a == "--block-sizes") {
      if (!value(v))
        return false;
      const bool buffers = a == "--qk-buffers";
      std::vector<int64_t> &list = buffers ? o.qkBuffers : o.blockSizes;
      list.clear();
      for (const std::string &s : splitList(v)) {
        if (!parseInt(s, n, buffers ? 0 : 32, buffers ? 2 : 1024) ||
            (!buffers && n % 32 != 0)) {
          error = a + " takes a list of " +
                  (buffers ? std::string("0, 1 or 2")
                           : std::string("multiples of 32 in [32, 1024]")) +
                  ", got '" + s + "'";
          return false;
        }
        list.push_back(n);
      }
    } else if (a == "--schedules") {
      if (!value(v))
        return false;
      o.schedules = splitList(v);
      for (const std::string &s : o.schedules)
        if (s != "chunked" && s != "chunk-parallel") {
          error = "--schedules takes chunked and/or chunk-parallel, got '" +
                  s + "'";
          return false;
        }
    } else if (a == "--warmup" || a == "--repeats" || a == "--device") {
      if (!value(v) || !parseInt(v, n, a == "--repeats" ? 1 : 0, 10000)) {
        error = a + " takes a count";
        return false;
      }
      (a == "--warmup" ? o.warmup : a == "--repeats" ? o.repeats : o.device) =
          static_cast<int>(n);
    } else if (a == "--seed") {
      if (!value(v) || !parseInt(v, n, 0, INT64_MAX)) {
        error = "--seed takes a number";
        return false;
      }
      o.seed = static_cast<uint64_t>(n);
    } else if (o.subcommand == "time" || o.subcommand == "merge") {
      if (a.rfind("--", 0) == 0) {
        error = "'" + a + "' is not an option of mamba3-tune " + o.subcommand;
        return false;
      }
      o.workDirs.push_back(a);
    } else {
      std::string name = a.substr(0, a.find('='));
      if (owned.count(name)) {
        error = name + " is the tuner's to set: the variants take batch and "
                "length at launch and are compiled for sm_90a with each "
                "schedule and chunk (see --shapes, --chunks, --schedules)";
        return false;
      }
      if (name == "--step")
        o.step = true;
      o.layerFlags.push_back(a);
    }
  }
  if (o.subcommand == "time" && o.workDirs.empty()) {
    error = "mamba3-tune time needs the WORKDIR(s) of mamba3-tune compile";
    return false;
  }
  if (o.subcommand == "merge" && o.workDirs.empty()) {
    error = "mamba3-tune merge needs the databases to merge";
    return false;
  }
  if (o.subcommand == "compile" && o.workDir.empty()) {
    error = "mamba3-tune compile needs -o WORKDIR";
    return false;
  }
  if (o.subcommand != "compile" && o.db.empty()) {
    error = "give --db FILE: the tuning database to merge the results into";
    return false;
  }
  if ((o.subcommand == "" || o.subcommand == "compile") &&
      o.layerFlags.empty()) {
    error = "give the layer (mamba3-compile's flags, or a .mlir file)";
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// compile
//===----------------------------------------------------------------------===//

/// The candidate variants, in a fixed order: per chunk, the compiler's
/// engines and buffers first, so that a combination compiling to the same
/// kernels is the one dropped. A decode step's: the token-sequential kernel
/// at each block size.
std::vector<TunedVariant> candidates(const Options &o, bool step) {
  std::vector<TunedVariant> out;
  if (step) {
    for (int64_t threads : o.blockSizes) {
      TunedVariant v;
      v.schedule = "tokens";
      v.blockSize = threads;
      out.push_back(v);
    }
    return out;
  }
  for (const std::string &schedule : o.schedules)
    for (int64_t chunk : o.chunks) {
      TunedVariant v;
      v.schedule = schedule;
      v.chunk = chunk;
      if (schedule == "chunked") {
        for (const std::string &mma : o.mmas)
          for (int64_t buffers : o.qkBuffers) {
            v.mma = mma;
            v.qkBuffers = buffers;
            out.push_back(v);
          }
        continue;
      }
      for (int64_t k : o.chunksPerBlock) {
        v.chunksPerBlock = k;
        out.push_back(v);
      }
    }
  return out;
}

/// The kernels of a compiled bundle, for telling variants apart: its PTX
/// files' contents in name order (empty if it has none).
std::string kernelText(const std::string &bundleDir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry &e : fs::directory_iterator(bundleDir, ec))
    if (e.path().extension() == ".ptx")
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::string text;
  for (const std::string &f : files)
    text += f.substr(f.rfind('/') + 1) + "\n" + tools::readFile(f);
  return text;
}

JsonValue num(double v) { return JsonValue::number(v); }

size_t elementCount(const std::vector<int64_t> &shape) {
  size_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<size_t>(d);
  return n;
}

/// Compiles every candidate into WORKDIR/<name>, and the compiler's own
/// dynamic bundle into WORKDIR/untuned (the before of the report), then
/// writes WORKDIR/plan.json.
int compileVariants(const Options &o, const std::string &workDir) {
  std::string compiler = o.compiler;
  if (compiler.empty())
    compiler = tools::executableDirectory() + "/mamba3-compile";
  if (!fs::exists(compiler)) {
    std::fprintf(stderr,
                 "mamba3-tune: no mamba3-compile at %s: build the full tree "
                 "(not MAMBA3_RUNTIME_ONLY) or give --compiler; on a GPU "
                 "machine without MLIR run `mamba3-tune compile` elsewhere "
                 "and `mamba3-tune time` here\n",
                 compiler.c_str());
    return kExitFailure;
  }
  std::error_code ec;
  fs::create_directories(workDir, ec);
  if (ec) {
    std::fprintf(stderr, "mamba3-tune: cannot create %s: %s\n",
                 workDir.c_str(), ec.message().c_str());
    return kExitFailure;
  }
  std::vector<std::string> base = o.layerFlags;
  base.insert(base.end(), {"--target", "sm_90a"});
  bool fromFile = !base.empty() && base.front().rfind("--", 0) != 0;
  if (!fromFile) {
    base.insert(base.end(), {"--batch", "0"});
    if (!o.step)
      base.insert(base.end(), {"--seqlen", "0"});
  }
  auto compile = [&](const std::string &name,
                     const std::vector<std::string> &extra,
                     std::string &error) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"-o", workDir + "/" + name});
    return tools::runProgram(compiler, args, workDir + "/" + name + ".log",
                             error);
  };
  std::string error;
  std::printf("mamba3-tune: compiling the untuned bundle\n");
  if (!compile("untuned", {}, error)) {
    std::fprintf(stderr, "mamba3-tune: the layer does not compile: %s\n",
                 error.c_str());
    return kExitFailure;
  }
  BundleManifest untuned;
  if (!loadBundleManifest(workDir + "/untuned", untuned, error)) {
    std::fprintf(stderr, "mamba3-tune: %s\n", error.c_str());
    return kExitFailure;
  }
  const bool step = untuned.isStep();
  if (untuned.config.batch >= 0 || (!step && untuned.config.seqlen >= 0)) {
    std::fprintf(stderr, "mamba3-tune: the layer fixes batch or seqlen; the "
                 "tuned variants take both at launch (use ? in the file)\n");
    return kExitFailure;
  }
  std::vector<std::pair<int64_t, int64_t>> timedShapes =
      o.shapes.empty() ? defaultShapes(step) : o.shapes;
  if (step)
    for (auto &shape : timedShapes)
      shape.second = 1;
  std::vector<TunedVariant> all = candidates(o, step);
  // Kernels already compiled, and by which variant.
  std::map<std::string, std::string> kernelsOf;
  if (untuned.config.varlen)
    all.erase(std::remove_if(all.begin(), all.end(),
                             [](const TunedVariant &v) {
                               return v.schedule != "chunked";
                             }),
              all.end());
  JsonValue variants = JsonValue::array(), skipped = JsonValue::array();
  size_t done = 0;
  for (const TunedVariant &v : all) {
    ++done;
    std::printf("mamba3-tune: [%zu/%zu] compiling %s\n", done, all.size(),
                v.name().c_str());
    std::fflush(stdout);
    if (!compile(v.name(), v.compileFlags(), error)) {
      if (error.rfind("cannot run", 0) == 0 ||
          error.find("was killed by signal") != std::string::npos) {
        std::fprintf(stderr, "mamba3-tune: %s\n", error.c_str());
        return kExitFailure;
      }
      // A variant past a kernel limit (shared memory, chunk size) is not a
      // candidate; the message says which limit.
      std::string last = error.substr(error.rfind('\n') + 1);
      for (std::stringstream lines(error); std::getline(lines, last);)
        if (last.find("error:") != std::string::npos)
          break;
      std::printf("  skipped: %s\n", last.c_str());
      JsonValue s = JsonValue::object();
      s.set("name", JsonValue::string(v.name()));
      s.set("reason", JsonValue::string(last));
      skipped.push(s);
      continue;
    }
    // The same kernels as an earlier variant (a combination the compiler
    // chooses by itself, or one that does not change this layer's code):
    // timing it again would only measure noise.
    const std::string kernels = kernelText(workDir + "/" + v.name());
    auto [seen, fresh] = kernelsOf.insert({kernels, v.name()});
    if (!fresh) {
      std::printf("  skipped: the same kernels as %s\n", seen->second.c_str());
      JsonValue s = JsonValue::object();
      s.set("name", JsonValue::string(v.name()));
      s.set("reason", JsonValue::string("the same kernels as " + seen->second));
      skipped.push(s);
      fs::remove_all(workDir + "/" + v.name(), ec);
      continue;
    }
    JsonValue e = JsonValue::object();
    e.set("name", JsonValue::string(v.name()));
    e.set("schedule", JsonValue::string(v.schedule));
    e.set("chunk", num(static_cast<double>(v.chunk)));
    e.set("chunks_per_block", num(static_cast<double>(v.chunksPerBlock)));
    e.set("mma", JsonValue::string(v.mma));
    e.set("qk_buffers", num(static_cast<double>(v.qkBuffers)));
    e.set("block_size", num(static_cast<double>(v.blockSize)));
    e.set("bundle", JsonValue::string(v.name()));
    variants.push(e);
  }
  if (variants.items().empty()) {
    std::fflush(stdout);
    std::fprintf(stderr, "mamba3-tune: no variant of this layer compiles (the "
                 "chunked kernels do not apply; see %s/*.log)\n",
                 workDir.c_str());
    return kExitFailure;
  }
  JsonValue plan = JsonValue::object();
  plan.set("format", JsonValue::string("mamba3-tune-plan"));
  plan.set("format_version", num(2));
  plan.set("arch", JsonValue::string(untuned.target));
  plan.set("config", JsonValue::string(tuningConfigKey(untuned.configString)));
  JsonValue shapes = JsonValue::array();
  for (auto [b, l] : timedShapes) {
    JsonValue s = JsonValue::array();
    s.push(num(static_cast<double>(b)));
    s.push(num(static_cast<double>(l)));
    shapes.push(s);
  }
  plan.set("shapes", shapes);
  plan.set("untuned", JsonValue::string("untuned"));
  plan.set("variants", variants);
  plan.set("skipped", skipped);
  std::ofstream(workDir + "/plan.json") << plan.dump(2) << "\n";
  std::printf("mamba3-tune: %zu variants in %s (%zu skipped); time them "
              "with `mamba3-tune time %s --db FILE`\n",
              variants.items().size(), workDir.c_str(),
              skipped.items().size(), workDir.c_str());
  return 0;
}

//===----------------------------------------------------------------------===//
// time
//===----------------------------------------------------------------------===//

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

} // namespace

int main(int argc, char **argv) {
  Options o;
  std::string error;
  if (!parseOptions(argc, argv, o, error)) {
    std::fprintf(stderr, "mamba3-tune: %s (see --help)\n", error.c_str());
    return kExitUsage;
  }
  if (o.subcommand == "" || o.subcommand == "compile") {
    std::string dir = o.workDir;
    if (dir.empty()) {
      char tmpl[] = "/tmp/mamba3-tune.XXXXXX";
      if (!mkdtemp(tmpl)) {
        std::fprintf(stderr, "mamba3-tune: cannot make a work folder\n");
        return kExitFailure;
      }
      dir = tmpl;
    }
    if (int rc = compileVariants(o, dir))
      return rc;
    if (o.subcommand == "compile")
      return 0;
    o.workDirs = {dir};
  }
  // The database: an existing one must be a valid one of this format (it
  // is never replaced by a fresh one on a parse error).
  TuningDb db;
  const bool fresh = !fs::exists(o.db);
  if (!fresh) {
    if (!loadTuningDb(o.db, db, error)) {
      std::fprintf(stderr, "mamba3-tune: %s (not merging into it)\n",
                   error.c_str());
      return kExitFailure;
    }
  } else {
    db.arch = "sm_90a";
  }
  std::vector<TuningEntry> entries;
  if (o.subcommand == "merge") {
    for (const std::string &path : o.workDirs) {
      TuningDb other;
      if (!loadTuningDb(path, other, error)) {
        std::fprintf(stderr, "mamba3-tune: %s\n", error.c_str());
        return kExitFailure;
      }
      if (fresh && entries.empty())
        db.arch = other.arch;
      if (other.arch != db.arch) {
        std::fprintf(stderr, "mamba3-tune: %s is for %s, %s for %s: one "
                     "database per architecture\n", path.c_str(),
                     other.arch.c_str(), o.db.c_str(), db.arch.c_str());
        return kExitFailure;
      }
      entries.insert(entries.end(), other.entries.begin(), other.entries.end());
    }
    o.workDirs.clear();
  }
  for (const std::string &dir : o.workDirs) {
    std::vector<TuningEntry> measured;
    if (int rc = timeVariants(o, dir, db, measured))
      return rc;
    entries.insert(entries.end(), measured.begin(), measured.end());
  }
  mergeTuningEntries(db, entries);
  if (!saveTuningDb(o.db, db, error)) {
    std::fprintf(stderr, "mamba3-tune: %s\n", error.c_str());
    return kExitFailure;
  }
  std::printf("mamba3-tune: %zu entries into %s (%zu in all)\n",
              entries.size(), o.db.c_str(), db.entries.size());
  return 0;
}
