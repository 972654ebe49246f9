//===- ExpandRotary.cpp - ssm.rotary to a scan over angles and a rotation -===//
//
// theta_t is a prefix sum over the sequence, so it is an scf.for carrying the
// (b, H, S) angles; the rotation itself is elementwise over (b, L, R, H, N)
// once theta is known, with the pair partner and the group read by index.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

#include "llvm/Support/MathExtras.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMEXPANDROTARY
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// theta (b, L, H, S): theta_t = theta_{t-1} + pi tanh(Angles_t) DT_t.
/// Angles (b, L, S) shared by all heads are read per head through the
/// indexing map (no broadcast copy). Returns {all angles, final angle}.
std::pair<Value, Value> buildCumulativeAngles(OpBuilder &b, Location loc,
                                              RotaryOp op) {
  Value angles = op.getAngles(), dt = op.getDT();
  bool shared = cast<RankedTensorType>(angles.getType()).getRank() == 3;
  SmallVector<OpFoldResult> inSizes = sizesOf(b, loc, angles);
  OpFoldResult bSize = inSizes[0], lSize = inSizes[1];
  OpFoldResult hSize = sizesOf(b, loc, dt)[1], sSize = inSizes.back();
  SmallVector<OpFoldResult> angleSizes = {bSize, lSize, hSize, sSize};
  Type f32 = b.getF32Type();
  Value theta0 = op.getInitAngle()
                     ? op.getInitAngle()
                     : filledTensor(b, loc, {bSize, hSize, sSize}, f32, 0.0);
  Value all = emptyTensor(b, loc, angleSizes, f32);
  // Without angles (S = 0) there is nothing to scan; slicing the empty
  // tensors would fail tensor's bounds verifier (offset 0 >= size 0).
  if (op.getRotary().getAngles() == 0)
    return {all, theta0};
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  Value seqLen = getValueOrCreateConstantIndexOp(b, loc, lSize);
  bool wrap = op.getWrapAngle();
  OpFoldResult zeroA = b.getIndexAttr(0), oneA = b.getIndexAttr(1);

  auto loop = scf::ForOp::create(
      b, loc, zero, seqLen, one, ValueRange{theta0, all},
      [&](OpBuilder &lb, Location ll, Value t, ValueRange iter) {
        Value angT =
            shared ? extractSlice(lb, ll, angles, {zeroA, t, zeroA},
                                  {bSize, oneA, sSize}, {1})
                   : extractSlice(lb, ll, angles, {zeroA, t, zeroA, zeroA},
                                  {bSize, oneA, hSize, sSize}, {1});
        Value dtT = extractSlice(lb, ll, dt, {zeroA, zeroA, t},
                                 {bSize, hSize, oneA}, {2});
        MLIRContext *ctx = lb.getContext();
        AffineMap id = AffineMap::getMultiDimIdentityMap(3, ctx);
        Value next = buildGeneric(
            lb, ll, ValueRange{angT, dtT}, iter[0],
            {shared ? projection(ctx, 3, {0, 2}) : id,
             projection(ctx, 3, {0, 1}), id},
            {kPar, kPar, kPar},
            [&](OpBuilder &nb, Location nl, ValueRange a) {
              Value pi = f32Constant(nb, nl, llvm::numbers::pi);
              Value step = arith::MulFOp::create(
                  nb, nl, arith::MulFOp::create(nb, nl, pi,
                                                math::TanhOp::create(nb, nl, a[0])),
                  a[1]);
              // Updated in place: the carried angles are the output.
              Value th = arith::AddFOp::create(nb, nl, a[2], step);
              if (wrap) {
                // theta - 2 pi floor(theta / 2 pi): keeps fp32 angles small
                // without changing cos/sin.
                Value twoPi = f32Constant(nb, nl, 2 * llvm::numbers::pi);
                Value turns = math::FloorOp::create(
                    nb, nl, arith::DivFOp::create(nb, nl, th, twoPi));
                th = arith::SubFOp::create(
                    nb, nl, th, arith::MulFOp::create(nb, nl, twoPi, turns));
              }
              linalg::YieldOp::create(nb, nl, th);
            })[0];
        Value updated = tensor::InsertSliceOp::create(
            lb, ll, next, iter[1], ArrayRef<OpFoldResult>{zeroA, t, zeroA, zeroA},
            ArrayRef<OpFoldResult>{bSize, oneA, hSize, sSize},
            ArrayRef<OpFoldResult>{oneA, oneA, oneA, oneA});
        scf::YieldOp::create(lb, ll, ValueRange{next, updated});
      });
  return {loop.getResult(1), loop.getResult(0)};
}

void expandRotary(RotaryOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  auto [theta, finalAngle] = buildCumulativeAngles(b, loc, op);

  auto qType = cast<RankedTensorType>(op.getQ().getType());
  bool mimo = qType.getRank() == 5;
  int64_t numGroups = qType.getDimSize(qType.getRank() - 2);
  int64_t n = qType.getDimSize(qType.getRank() - 1);
  auto outType = cast<RankedTensorType>(op.getRotatedQ().getType());
  int64_t numHeads = outType.getDimSize(3);
  int64_t headsPerGroup = numHeads / numGroups;
  int64_t s = op.getRotary().getAngles();
  bool halfSplit = op.getRotary().getPairing() == RotaryPairing::half_split;

  SmallVector<OpFoldResult> outSizes = sizesOf(b, loc, op.getQ());
  if (!mimo)
    outSizes.insert(outSizes.begin() + 2, b.getIndexAttr(1));
  outSizes[3] = b.getIndexAttr(numHeads);
  Type f32 = b.getF32Type();
  SmallVector<Value> inits = {emptyTensor(b, loc, outSizes, f32),
                              emptyTensor(b, loc, outSizes, f32)};
  AffineMap id = AffineMap::getMultiDimIdentityMap(5, ctx);

  Value Q = op.getQ(), K = op.getK(), qBias = op.getQBias(),
        kBias = op.getKBias();
  SmallVector<Value> results = buildGeneric(
      b, loc, ValueRange{}, inits, {id, id}, SmallVector<Iter>(5, kPar),
      [&](OpBuilder &nb, Location nl, ValueRange) {
        auto idx = [&](unsigned d) {
          return linalg::IndexOp::create(nb, nl, d).getResult();
        };
        auto cst = [&](int64_t v) { return indexConstant(nb, nl, v); };
        Value ib = idx(0), il = idx(1), ir = idx(2), ih = idx(3), in = idx(4);
        Value ig = arith::DivUIOp::create(nb, nl, ih, cst(headsPerGroup));

        // Pair index i, partner entry and whether this entry is the first
        // of its pair (it then takes -sin).
        Value pairIdx, partner, isFirst;
        if (halfSplit) {
          Value half = cst(n / 2);
          isFirst = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                          in, half);
          Value lower = arith::SubIOp::create(nb, nl, in, half);
          pairIdx = arith::SelectOp::create(nb, nl, isFirst, in, lower);
          partner = arith::SelectOp::create(
              nb, nl, isFirst, arith::AddIOp::create(nb, nl, in, half), lower);
        } else {
          pairIdx = arith::DivUIOp::create(nb, nl, in, cst(2));
          Value bit = arith::RemUIOp::create(nb, nl, in, cst(2));
          isFirst = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq,
                                          bit, cst(0));
          partner = arith::SelectOp::create(
              nb, nl, isFirst, arith::AddIOp::create(nb, nl, in, cst(1)),
              arith::SubIOp::create(nb, nl, in, cst(1)));
        }
        Value rotated = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                              pairIdx, cst(s));
        // Entries past 2S keep their value; clamp their reads in bounds.
        partner = arith::SelectOp::create(nb, nl, rotated, partner, in);

        auto biased = [&](Value x, Value bias, Value entry) {
          SmallVector<Value> xIdx = {ib, il};
          if (mimo)
            xIdx.push_back(ir);
          xIdx.append({ig, entry});
          SmallVector<Value> bIdx = {ih};
          if (mimo)
            bIdx.push_back(ir);
          bIdx.push_back(entry);
          Value xv = scalarToF32(nb, nl, tensor::ExtractOp::create(nb, nl, x, xIdx));
          Value bv = scalarToF32(nb, nl,
                                 tensor::ExtractOp::create(nb, nl, bias, bIdx));
          return arith::AddFOp::create(nb, nl, xv, bv).getResult();
        };
        SmallVector<Value> outs;
        if (s == 0) {
          outs = {biased(Q, qBias, in), biased(K, kBias, in)};
        } else {
          Value clamped = arith::MinUIOp::create(nb, nl, pairIdx, cst(s - 1));
          Value th = tensor::ExtractOp::create(nb, nl, theta,
                                               ValueRange{ib, il, ih, clamped});
          Value c = math::CosOp::create(nb, nl, th);
          Value sn = math::SinOp::create(nb, nl, th);
          // first of pair: x c - x' s; second: x c + x' s.
          Value signedSin = arith::SelectOp::create(
              nb, nl, isFirst, arith::NegFOp::create(nb, nl, sn), sn);
          for (auto [x, bias] : {std::pair<Value, Value>{Q, qBias}, {K, kBias}}) {
            Value self = biased(x, bias, in);
            Value other = biased(x, bias, partner);
            Value rot = arith::AddFOp::create(
                nb, nl, arith::MulFOp::create(nb, nl, self, c),
                arith::MulFOp::create(nb, nl, other, signedSin));
            outs.push_back(arith::SelectOp::create(nb, nl, rotated, rot, self));
          }
        }
        linalg::YieldOp::create(nb, nl, outs);
      });
  op.getRotatedQ().replaceAllUsesWith(results[0]);
  op.getRotatedK().replaceAllUsesWith(results[1]);
  op.getFinalAngle().replaceAllUsesWith(finalAngle);
  op->erase();
}

struct SsmExpandRotaryPass
    : public ssm::impl::SsmExpandRotaryBase<SsmExpandRotaryPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<RotaryOp> ops;
    getOperation()->walk([&](RotaryOp op) { ops.push_back(op); });
    for (RotaryOp op : ops)
      expandRotary(op);
  }
};

} // namespace
