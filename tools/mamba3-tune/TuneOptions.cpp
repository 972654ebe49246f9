//===- TuneOptions.cpp - mamba3-tune's command line -------------------===//

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

} // namespace

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

} // namespace mamba3::tune
