//===- mamba3-tune.cpp - Tune a layer's GPU kernels into a database -------===//
//
// Searches the variants the compiler exposes for one layer (schedule,
// chunk size, chunks per block, the chunked kernel's matmul engines and Q/K
// buffers; a decode step's block size) over a set of launch shapes: each
// variant is compiled by mamba3-compile into a bundle taking batch and length at
// launch, then all are timed on the GPU on the same inputs, and the winner
// of every shape bucket goes into a tuning database (runtime TuningDb.h)
// that `mamba3-compile --tuning-db` turns into a tuned bundle.
//
// The two halves run where their tools are: `compile` on the machine with
// MLIR, `time` on the GPU machine (this program links no MLIR, so it builds
// with MAMBA3_RUNTIME_ONLY); without a subcommand it does both. The flags:
// TuneOptions.cpp; compile: TuneCompile.cpp; time: TuneTime.cpp; this file
// runs the subcommands and merges the database.
//
//===----------------------------------------------------------------------===//

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

using namespace mamba3::tune;
namespace fs = std::filesystem;

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
