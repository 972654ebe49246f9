//===- Decompose.cpp - ssm.scan / ssm.step to their ingredients -----------===//
//
// A model-level op becomes ssm.discretize + ssm.rotary + ssm.recurrence and
// linalg ops for what surrounds the recurrence (f32 conversion, the MIMO
// up/down projections, zero initial states, skip, gate, final k/v). A step is
// a scan of one token: its operands gain a unit L axis and its out loses it.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMDECOMPOSE
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// The operands of a scan, or of a step after inserting the L axis.
struct ScanOperands {
  Value Q, K, V, ADT, DT, Trap, QBias, KBias, Angles, D, Z;
  Value angle0, ssm0, k0, v0;
  Value mimoV, mimoZ, mimoO;
  /// Per-head RMSNorm weights (H, P) and epsilon (null: no norm).
  Value normWeight;
  float normEps = 0;
};

/// Inserts a unit axis at position `axis` (reassociation groups it with the
/// axis before it, or with the next one at position 0).
Value insertUnitAxis(OpBuilder &b, Location loc, Value v, int64_t axis) {
  if (!v)
    return v;
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape.insert(shape.begin() + axis, 1);
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0, e = type.getRank(); i < e; ++i) {
    int64_t out = i < axis ? i : i + 1;
    groups.push_back({out});
  }
  // The unit axis joins the group of the axis right before it.
  groups[axis - 1].push_back(axis);
  llvm::sort(groups[axis - 1]);
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  SmallVector<OpFoldResult> outSizes = sizesOf(b, loc, v);
  outSizes.insert(outSizes.begin() + axis, b.getIndexAttr(1));
  return tensor::ExpandShapeOp::create(b, loc, resultType, v, groups, outSizes);
}

/// Drops the unit axis at `axis` (inverse of insertUnitAxis).
Value dropUnitAxis(OpBuilder &b, Location loc, Value v, int64_t axis) {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0, e = type.getRank(); i < e; ++i) {
    if (i == axis)
      continue;
    groups.push_back({i});
  }
  groups[axis - 1].push_back(axis);
  return tensor::CollapseShapeOp::create(b, loc, v, groups);
}

struct Decomposed {
  Value out, angle, ssm, k, v;
};

Decomposed decomposeScan(OpBuilder &b, Location loc, const ScanOperands &x,
                         DiscretizationRule rule, RotaryAttr rotary,
                         bool wrapAngle, TypeRange resultTypes) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  auto qType = cast<RankedTensorType>(x.Q.getType());
  bool mimo = qType.getRank() == 5;
  int64_t R = mimo ? qType.getDimSize(2) : 1;
  int64_t N = qType.getDimSize(qType.getRank() - 1);
  SmallVector<OpFoldResult> vSizes = sizesOf(b, loc, x.V); // b L H P
  OpFoldResult bS = vSizes[0], lS = vSizes[1], hS = vSizes[2], pS = vSizes[3];
  OpFoldResult rS = b.getIndexAttr(R), nS = b.getIndexAttr(N);
  OpFoldResult sS = b.getIndexAttr(rotary.getAngles());
  auto tensorType = [&](ArrayRef<OpFoldResult> sizes) {
    SmallVector<int64_t> shape;
    for (OpFoldResult s : sizes)
      shape.push_back(getConstantIntValue(s).value_or(ShapedType::kDynamic));
    return RankedTensorType::get(shape, f32);
  };

  // Coefficients of the rule.
  auto bhl = tensorType({bS, hS, lS});
  auto disc = DiscretizeOp::create(b, loc, TypeRange{bhl, bhl, bhl}, x.ADT,
                                   x.DT, x.Trap, rule);

  // Rotated, biased q/k in (b, L, R, H, N) and the cumulative angles.
  auto qkType = tensorType({bS, lS, rS, hS, nS});
  auto rot = RotaryOp::create(b, loc,
                              TypeRange{qkType, qkType, tensorType({bS, hS, sS})},
                              x.Q, x.K, x.QBias, x.KBias, x.Angles, x.DT,
                              x.angle0, rotary, wrapAngle);

  // v_{t,r} = MIMO_V[h,r] * V_t (SISO: V itself) in (b, L, R, H, P), f32.
  Value vUp = buildGeneric(
      b, loc, mimo ? ValueRange{x.V, x.mimoV} : ValueRange{x.V},
      emptyTensor(b, loc, {bS, lS, rS, hS, pS}, f32),
      mimo ? SmallVector<AffineMap>{projection(ctx, 5, {0, 1, 3, 4}),
                                    projection(ctx, 5, {3, 2, 4}),
                                    AffineMap::getMultiDimIdentityMap(5, ctx)}
           : SmallVector<AffineMap>{projection(ctx, 5, {0, 1, 3, 4}),
                                    AffineMap::getMultiDimIdentityMap(5, ctx)},
      SmallVector<Iter>(5, kPar),
      [&](OpBuilder &nb, Location nl, ValueRange a) {
        Value v = scalarToF32(nb, nl, a[0]);
        if (mimo)
          v = arith::MulFOp::create(nb, nl, v, a[1]);
        linalg::YieldOp::create(nb, nl, v);
      })[0];

  // States entering the recurrence, f32, k/v with an explicit rank axis.
  Value h0 = x.ssm0 ? castTensor(b, loc, x.ssm0, f32)
                    : filledTensor(b, loc, {bS, hS, pS, nS}, f32, 0.0);
  Value k0, v0;
  if (x.k0) {
    k0 = castTensor(b, loc, mimo ? x.k0 : insertUnitAxis(b, loc, x.k0, 2), f32);
    v0 = castTensor(b, loc, mimo ? x.v0 : insertUnitAxis(b, loc, x.v0, 2), f32);
  } else {
    k0 = filledTensor(b, loc, {bS, hS, rS, nS}, f32, 0.0);
    v0 = filledTensor(b, loc, {bS, hS, rS, pS}, f32, 0.0);
  }

  auto rec = RecurrenceOp::create(
      b, loc,
      TypeRange{tensorType({bS, lS, rS, hS, pS}), tensorType({bS, hS, pS, nS})},
      rot.getRotatedQ(), rot.getRotatedK(), vUp, disc.getLogAlpha(),
      disc.getBetaOverAlpha(), disc.getGamma(), h0, k0, v0,
      /*terms_per_token=*/1);

  // y + D v inside a linalg body (d null: no skip).
  auto withSkip = [](OpBuilder &nb, Location nl, Value y, Value d, Value v) {
    return d ? arith::AddFOp::create(nb, nl, y, arith::MulFOp::create(nb, nl, d, v))
                   .getResult()
             : y;
  };

  // The per-head RMSNorm scale of y_{t,r} + D v_{t,r}: rsqrt(mean over P of
  // its squares + eps), in (b, L, R, H).
  Value normScale;
  if (x.normWeight) {
    SmallVector<Value> sqIns = {rec.getY(), vUp};
    SmallVector<AffineMap> sqMaps = {AffineMap::getMultiDimIdentityMap(5, ctx),
                                     AffineMap::getMultiDimIdentityMap(5, ctx)};
    if (x.D) {
      sqIns.push_back(x.D);
      sqMaps.push_back(projection(ctx, 5, {3}));
    }
    sqMaps.push_back(projection(ctx, 5, {0, 1, 2, 3}));
    Value sumSq = buildGeneric(
        b, loc, sqIns, filledTensor(b, loc, {bS, lS, rS, hS}, f32, 0.0), sqMaps,
        {kPar, kPar, kPar, kPar, kRed},
        [&](OpBuilder &nb, Location nl, ValueRange a) {
          Value y = withSkip(nb, nl, a[0], x.D ? a[2] : Value(), a[1]);
          Value sq = arith::MulFOp::create(nb, nl, y, y);
          linalg::YieldOp::create(
              nb, nl, arith::AddFOp::create(nb, nl, a.back(), sq).getResult());
        })[0];
    // P is static (the verifier's rule).
    Value invP = f32Constant(b, loc, 1.0 / *getConstantIntValue(pS));
    normScale = buildGeneric(
        b, loc, {sumSq}, emptyTensor(b, loc, {bS, lS, rS, hS}, f32),
        {AffineMap::getMultiDimIdentityMap(4, ctx),
         AffineMap::getMultiDimIdentityMap(4, ctx)},
        SmallVector<Iter>(4, kPar),
        [&](OpBuilder &nb, Location nl, ValueRange a) {
          Value mean = arith::MulFOp::create(nb, nl, a[0], invP);
          Value eps = f32Constant(nb, nl, x.normEps);
          linalg::YieldOp::create(
              nb, nl,
              math::RsqrtOp::create(nb, nl, arith::AddFOp::create(nb, nl, mean, eps))
                  .getResult());
        })[0];
  }

  // out = sum_r MIMO_O[h,r] * norm(y + D v) * silu(z), z = MIMO_Z[h,r] * Z;
  // without MIMO_O, the terms themselves: out (b, l, r, h, p).
  const bool perRank = mimo && !x.mimoO;
  SmallVector<Value> ins = {rec.getY(), vUp};
  SmallVector<AffineMap> maps = {projection(ctx, 5, {0, 1, 4, 2, 3}),
                                 projection(ctx, 5, {0, 1, 4, 2, 3})};
  auto addInput = [&](Value v, ArrayRef<int64_t> dims) {
    ins.push_back(v);
    maps.push_back(projection(ctx, 5, dims));
    return ins.size() - 1;
  };
  // Iteration space (b, l, h, p, r): r is reduced by the down-projection.
  int64_t dIdx = x.D ? addInput(x.D, {2}) : -1;
  int64_t zIdx = x.Z ? addInput(x.Z, {0, 1, 2, 3}) : -1;
  int64_t mzIdx = x.mimoZ ? addInput(x.mimoZ, {2, 4, 3}) : -1;
  int64_t moIdx = x.mimoO ? addInput(x.mimoO, {2, 4, 3}) : -1;
  int64_t scaleIdx = normScale ? addInput(normScale, {0, 1, 4, 2}) : -1;
  int64_t weightIdx = normScale ? addInput(x.normWeight, {2, 3}) : -1;
  maps.push_back(perRank ? projection(ctx, 5, {0, 1, 4, 2, 3})
                         : projection(ctx, 5, {0, 1, 2, 3}));
  Value outInit =
      perRank ? emptyTensor(b, loc, {bS, lS, rS, hS, pS}, f32)
              : filledTensor(b, loc, {bS, lS, hS, pS}, f32, 0.0);
  Value outF32 = buildGeneric(
      b, loc, ins, outInit, maps,
      {kPar, kPar, kPar, kPar, perRank ? kPar : kRed},
      [&](OpBuilder &nb, Location nl, ValueRange a) {
        Value y = withSkip(nb, nl, a[0], dIdx >= 0 ? a[dIdx] : Value(), a[1]);
        if (scaleIdx >= 0)
          y = arith::MulFOp::create(
              nb, nl, y, arith::MulFOp::create(nb, nl, a[scaleIdx], a[weightIdx]));
        if (zIdx >= 0) {
          Value z = scalarToF32(nb, nl, a[zIdx]);
          if (mzIdx >= 0)
            z = arith::MulFOp::create(nb, nl, z, a[mzIdx]);
          Value silu = arith::MulFOp::create(nb, nl, z, sigmoid(nb, nl, z));
          y = arith::MulFOp::create(nb, nl, y, silu);
        }
        if (perRank) {
          linalg::YieldOp::create(nb, nl, y);
          return;
        }
        if (moIdx >= 0)
          y = arith::MulFOp::create(nb, nl, y, a[moIdx]);
        linalg::YieldOp::create(nb, nl,
                                arith::AddFOp::create(nb, nl, a.back(), y).getResult());
      })[0];

  // Final k/v: the last token's rotated k and up-projected v, (b, H, R, *).
  OpFoldResult lastT;
  if (std::optional<int64_t> seqLen = getConstantIntValue(lS))
    lastT = b.getIndexAttr(*seqLen - 1);
  else
    lastT = arith::SubIOp::create(b, loc,
                                  getValueOrCreateConstantIndexOp(b, loc, lS),
                                  indexConstant(b, loc, 1))
                .getResult();
  OpFoldResult z0 = b.getIndexAttr(0), o1 = b.getIndexAttr(1);
  auto lastToken = [&](Value v, OpFoldResult inner) {
    Value slice = extractSlice(b, loc, v, {z0, lastT, z0, z0, z0},
                               {bS, o1, rS, hS, inner}, {1});
    Value t = transpose(b, loc, slice, {0, 2, 1, 3});
    return mimo ? t : dropUnitAxis(b, loc, t, 2);
  };
  Value kFinal = lastToken(rot.getRotatedK(), nS);
  Value vFinal = lastToken(vUp, pS);

  auto elem = [](Type t) { return cast<RankedTensorType>(t).getElementType(); };
  return Decomposed{castTensor(b, loc, outF32, elem(resultTypes[0])),
                    rot.getFinalAngle(),
                    castTensor(b, loc, rec.getFinalSsm(), elem(resultTypes[2])),
                    castTensor(b, loc, kFinal, elem(resultTypes[3])),
                    castTensor(b, loc, vFinal, elem(resultTypes[4]))};
}

void decompose(ScanOp op) {
  OpBuilder b(op);
  ScanOperands x{op.getQ(),      op.getK(),        op.getV(),
                 op.getADT(),    op.getDT(),       op.getTrap(),
                 op.getQBias(),  op.getKBias(),    op.getAngles(),
                 op.getD(),      op.getZ(),        op.getInitAngle(),
                 op.getInitSsm(), op.getInitK(),   op.getInitV(),
                 op.getMimoV(),  op.getMimoZ(),    op.getMimoO(),
                 op.getNormWeight(), op.getNormEps().convertToFloat()};
  Decomposed d = decomposeScan(b, op.getLoc(), x, op.getRule(), op.getRotary(),
                               op.getWrapAngle(), op->getResultTypes());
  op->replaceAllUsesWith(ValueRange{d.out, d.angle, d.ssm, d.k, d.v});
  op->erase();
}

void decompose(StepOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto seq = [&](Value v, int64_t axis) { return insertUnitAxis(b, loc, v, axis); };
  ScanOperands x{seq(op.getQ(), 1),      seq(op.getK(), 1),
                 seq(op.getV(), 1),      seq(op.getADT(), 2),
                 seq(op.getDT(), 2),     seq(op.getTrap(), 2),
                 op.getQBias(),          op.getKBias(),
                 seq(op.getAngles(), 1), op.getD(),
                 seq(op.getZ(), 1),      op.getStateAngle(),
                 op.getStateSsm(),       op.getStateK(),
                 op.getStateV(),         op.getMimoV(),
                 op.getMimoZ(),          op.getMimoO(),
                 op.getNormWeight(),     op.getNormEps().convertToFloat()};
  SmallVector<Type> types(op->getResultTypes());
  auto outType = cast<RankedTensorType>(types[0]);
  SmallVector<int64_t> outShape(outType.getShape());
  outShape.insert(outShape.begin() + 1, 1);
  types[0] = RankedTensorType::get(outShape, outType.getElementType());
  Decomposed d = decomposeScan(b, loc, x, op.getRule(), op.getRotary(),
                               op.getWrapAngle(), types);
  Value out = dropUnitAxis(b, loc, d.out, 1);
  op->replaceAllUsesWith(ValueRange{out, d.angle, d.ssm, d.k, d.v});
  op->erase();
}

struct SsmDecomposePass
    : public ssm::impl::SsmDecomposeBase<SsmDecomposePass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<ScanOp, StepOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      if (auto scan = dyn_cast<ScanOp>(op); scan && scan.isVarlen()) {
        scan.emitOpError("has cu_seqlens: run ssm-split-sequences before "
                         "ssm-decompose");
        return signalPassFailure();
      }
    }
    for (Operation *op : ops) {
      if (auto scan = dyn_cast<ScanOp>(op))
        decompose(scan);
      else
        decompose(cast<StepOp>(op));
    }
  }
};

} // namespace
