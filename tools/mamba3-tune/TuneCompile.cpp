//===- TuneCompile.cpp - mamba3-tune compile: the candidate bundles -----===//

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

namespace {

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

} // namespace

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

} // namespace mamba3::tune
