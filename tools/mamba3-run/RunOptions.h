//===- RunOptions.h - mamba3-run's command line -------------*- C++ -*-===//
//
// What mamba3-run was asked to do (Options), its usage text and the parser
// of its flags (RunOptions.cpp); mamba3-run.cpp drives the run and
// RunTargets.cpp holds the targets it runs.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_TOOLS_MAMBA3_RUN_RUNOPTIONS_H
#define MAMBA3_TOOLS_MAMBA3_RUN_RUNOPTIONS_H

#include "mamba3/Reference.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mamba3::run {

constexpr int kExitPass = 0, kExitMismatch = 1, kExitUsage = 2;

/// The text of --help.
extern const char *const kUsage;

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

/// Reads the command line into `opts` (random mode's defaults first);
/// `help` when --help was given. False with `error` set on a bad flag.
bool parseOptions(int argc, char **argv, Options &opts, bool &help,
                  std::string &error);

} // namespace mamba3::run

#endif // MAMBA3_TOOLS_MAMBA3_RUN_RUNOPTIONS_H
