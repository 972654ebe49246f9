//===- Tune.h - What the halves of mamba3-tune share --------*- C++ -*-===//
//
// The options of mamba3-tune and the pieces its halves share: the flag
// parser (TuneOptions.cpp), the candidate variants and compiling them
// (TuneCompile.cpp), timing them into a database (TuneTime.cpp); main is
// in mamba3-tune.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_TOOLS_MAMBA3_TUNE_TUNE_H
#define MAMBA3_TOOLS_MAMBA3_TUNE_TUNE_H

#include "mamba3/TuningDb.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mamba3::tune {

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

/// Reads the command line into `o`; false with `error` set on a bad flag
/// (--help prints the usage and exits).
bool parseOptions(int argc, char **argv, Options &o, std::string &error);
/// The launch shapes timed when --shapes is not given.
std::vector<std::pair<int64_t, int64_t>> defaultShapes(bool step);

/// The candidate variants, in a fixed order: per chunk, the compiler's
/// engines and buffers first, so that a combination compiling to the same
/// kernels is the one dropped. A decode step's: the token-sequential kernel
/// at each block size.
std::vector<TunedVariant> candidates(const Options &o, bool step);
/// Elements of a tensor of `shape`.
size_t elementCount(const std::vector<int64_t> &shape);
/// Compiles every candidate into WORKDIR/<name>, and the compiler's own
/// dynamic bundle into WORKDIR/untuned (the before of the report), then
/// writes WORKDIR/plan.json. Returns the exit status.
int compileVariants(const Options &o, const std::string &workDir);
/// Times the variants of WORKDIR/plan.json on this machine's GPU at every
/// shape and appends the winners to `entries` (merged into `db` by main).
/// Returns the exit status.
int timeVariants(const Options &o, const std::string &workDir, TuningDb &db,
                 std::vector<TuningEntry> &entries);

} // namespace mamba3::tune

#endif // MAMBA3_TOOLS_MAMBA3_TUNE_TUNE_H
