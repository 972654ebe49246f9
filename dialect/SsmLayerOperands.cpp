//===- SsmLayerOperands.cpp - The operands of a layer op by name ----------===//

#include "dialect/SsmLayerOperands.h"

using namespace mlir;
using namespace mlir::ssm;

namespace {
/// What ssm.scan and ssm.step name alike.
template <typename LayerOp> LayerOperands sharedOperands(LayerOp op) {
  LayerOperands o;
  o.q = op.getQ();
  o.k = op.getK();
  o.v = op.getV();
  o.adt = op.getADT();
  o.dt = op.getDT();
  o.trap = op.getTrap();
  o.angles = op.getAngles();
  o.z = op.getZ();
  o.qBias = op.getQBias();
  o.kBias = op.getKBias();
  o.d = op.getD();
  o.mimoV = op.getMimoV();
  o.mimoZ = op.getMimoZ();
  o.mimoO = op.getMimoO();
  o.normWeight = op.getNormWeight();
  return o;
}
} // namespace

LayerOperands LayerOperands::of(ScanOp op) {
  LayerOperands o = sharedOperands(op);
  o.angleState = op.getInitAngle();
  o.ssmState = op.getInitSsm();
  o.kState = op.getInitK();
  o.vState = op.getInitV();
  o.cuSeqlens = op.getCuSeqlens();
  return o;
}

LayerOperands LayerOperands::of(StepOp op) {
  LayerOperands o = sharedOperands(op);
  o.angleState = op.getStateAngle();
  o.ssmState = op.getStateSsm();
  o.kState = op.getStateK();
  o.vState = op.getStateV();
  return o;
}

void LayerOperands::mapTokenTensors(function_ref<Value(Value, int64_t)> f) {
  q = f(q, 1);
  k = f(k, 1);
  v = f(v, 1);
  adt = f(adt, 2);
  dt = f(dt, 2);
  trap = f(trap, 2);
  angles = f(angles, 1);
  z = f(z, 1);
}

ScanOp mlir::ssm::createScanLike(OpBuilder &b, Location loc,
                                 TypeRange resultTypes,
                                 const LayerOperands &o, ScanOp like,
                                 TypeAttr stateType) {
  return ScanOp::create(
      b, loc, resultTypes, o.q, o.k, o.v, o.adt, o.dt, o.trap, o.qBias,
      o.kBias, o.angles, o.d, o.z, o.angleState, o.ssmState, o.kState,
      o.vState, o.mimoV, o.mimoZ, o.mimoO, o.normWeight, o.cuSeqlens,
      like.getRuleAttr(), like.getRotaryAttr(), like.getRankAttr(), stateType,
      like.getWrapAngleAttr(), like.getNormEpsAttr());
}
