//===- SsmLayerOperands.cpp - The operands of a layer op by name ----------===//

#include "dialect/SsmLayerOperands.h"

using namespace mlir;
using namespace mlir::ssm;

LayerOperands LayerOperands::of(ScanOp op) {
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
  o.angleState = op.getInitAngle();
  o.ssmState = op.getInitSsm();
  o.kState = op.getInitK();
  o.vState = op.getInitV();
  o.mimoV = op.getMimoV();
  o.mimoZ = op.getMimoZ();
  o.mimoO = op.getMimoO();
  o.normWeight = op.getNormWeight();
  o.cuSeqlens = op.getCuSeqlens();
  return o;
}

LayerOperands LayerOperands::of(StepOp op) {
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
  o.angleState = op.getStateAngle();
  o.ssmState = op.getStateSsm();
  o.kState = op.getStateK();
  o.vState = op.getStateV();
  o.mimoV = op.getMimoV();
  o.mimoZ = op.getMimoZ();
  o.mimoO = op.getMimoO();
  o.normWeight = op.getNormWeight();
  return o;
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
