//===- RunTargets.h - What mamba3-run runs a layer on -------*- C++ -*-===//
//
// The targets of mamba3-run (RunTargets.cpp): the float64 reference,
// compiled CPU bundles (compiled on demand with mamba3-compile, or one
// --bundle) and a GPU bundle through the runtime.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_TOOLS_MAMBA3_RUN_RUNTARGETS_H
#define MAMBA3_TOOLS_MAMBA3_RUN_RUNTARGETS_H

#include "RunOptions.h"

#include <functional>

namespace mamba3::run {


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

/// Every target, in the order --help lists them.
const std::vector<Target> &targets();
/// The target named `name`, or null.
const Target *findTarget(const std::string &name);
/// How long compiling took, when the cpu target compiled bundles.
void printPreparation();

} // namespace mamba3::run

#endif // MAMBA3_TOOLS_MAMBA3_RUN_RUNTARGETS_H
