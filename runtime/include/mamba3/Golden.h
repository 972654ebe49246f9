//===- Golden.h - Reader for the golden reference cases ---------*- C++ -*-===//
//
// Reads ../shared/golden/mamba3_cases.{json,bin} (format in its README.md).
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_GOLDEN_H
#define MAMBA3_GOLDEN_H

#include "mamba3/Reference.h"

#include <string>
#include <vector>

namespace mamba3 {

struct GoldenCase {
  std::string name;
  std::string kind; // "siso" or "mimo"
  LayerConfig config;
  LayerInputs inputs;
  LayerOutputs expected;
  /// Relative L2 errors of the official bf16 kernel (-1 when not given).
  double officialOutErr = -1, officialSsmErr = -1;
};

/// Loads every case of `base`.json / `base`.bin (base without extension).
/// Returns false and sets `error` (naming the file and what is wrong) on a
/// missing file, malformed JSON, or a tensor that runs past the end of the .bin.
bool loadGoldenCases(const std::string &base, std::vector<GoldenCase> &cases,
                     std::string &error);

} // namespace mamba3

#endif // MAMBA3_GOLDEN_H
