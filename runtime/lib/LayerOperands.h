//===- LayerOperands.h - A layer's operands by config -------*- C++ -*-===//
//
// Private to the runtime: every operand of LayerInputs with the shape a
// config gives it (LayerInputs.cpp), which the input checks, the random
// inputs and the reference's varlen split all walk.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_RUNTIME_LIB_LAYEROPERANDS_H
#define MAMBA3_RUNTIME_LIB_LAYEROPERANDS_H

#include "mamba3/Reference.h"

#include <cstdint>
#include <vector>

namespace mamba3::detail {

enum class Presence { Required, Optional, Absent };

struct OperandSpec {
  const char *name;
  Tensor LayerInputs::*member;
  std::vector<int64_t> shape;
  Presence presence;
};

/// Every operand of LayerInputs with the shape `cfg` gives it and whether it
/// must, may or must not be given. Initial states are always optional to the
/// reference (empty ones are zeros); cfg.hasInitialState only tells
/// randomInputs to draw them.
std::vector<OperandSpec> operandSpecs(const LayerConfig &cfg, bool decode);

/// `x` rounded to bf16 (nearest even; NaN stays NaN) and back: what a bf16
/// state stores, for the reference and the random states.
double toBf16(double x);

} // namespace mamba3::detail

#endif // MAMBA3_RUNTIME_LIB_LAYEROPERANDS_H
