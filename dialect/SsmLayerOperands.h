//===- SsmLayerOperands.h - The operands of a layer op by name --*- C++ -*-===//
//
// ssm.scan and ssm.step take up to twenty operands, most of them optional.
// Passes that rebuild a layer op (a chunk of the sequence, one sequence of
// a varlen batch) read them into a LayerOperands, replace the ones they
// slice, and create the op again from it, instead of writing the positional
// operand list out once more.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_DIALECT_SSMLAYEROPERANDS_H
#define MAMBA3_DIALECT_SSMLAYEROPERANDS_H

#include "dialect/SsmDialect.h"

namespace mlir::ssm {

struct LayerOperands {
  /// Token tensors: Q, K, V (b, L, ...); ADT, DT, Trap (b, H, L); the angle
  /// increments; the optional gate Z.
  Value q, k, v, adt, dt, trap, angles, z;
  /// Per-head parameters: the q/k biases and the optional skip D.
  Value qBias, kBias, d;
  /// The states the layer starts from (optional for ssm.scan, required for
  /// ssm.step): angle, ssm, k and v.
  Value angleState, ssmState, kState, vState;
  /// MIMO's V/Z up- and O down-projections; the RMSNorm weight.
  Value mimoV, mimoZ, mimoO, normWeight;
  /// The sequence offsets of a varlen batch (ssm.scan only).
  Value cuSeqlens;

  static LayerOperands of(ScanOp op);
  static LayerOperands of(StepOp op);

  /// Replaces each token tensor by `f(tensor, its L axis)`, in operand
  /// order (Q, K, V on axis 1; ADT, DT, Trap on axis 2; the angles and Z on
  /// axis 1); `f` sees null for an absent Z.
  void mapTokenTensors(function_ref<Value(Value, int64_t)> f);
};

/// An ssm.scan over `operands`, with `like`'s layer attributes (rule,
/// rotary, rank, angle wrap, norm eps) and the state type `stateType`
/// (null: fp32 states).
ScanOp createScanLike(OpBuilder &b, Location loc, TypeRange resultTypes,
                      const LayerOperands &operands, ScanOp like,
                      TypeAttr stateType);

} // namespace mlir::ssm

#endif // MAMBA3_DIALECT_SSMLAYEROPERANDS_H
