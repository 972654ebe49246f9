//===- LowerRecurrence.cpp - ssm.recurrence token by token ----------------===//
//
// The definition of the recurrence as an scf.for over tokens carrying the
// (b, H, P, N) state and the previous token's terms. It is the unchunked path
// and the yardstick for ssm-chunk.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMLOWERRECURRENCE
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

void lowerRecurrence(RecurrenceOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  int64_t tpt = op.getTermsPerToken();
  SmallVector<OpFoldResult> qSizes = sizesOf(b, loc, op.getQ()); // b T R H N
  SmallVector<OpFoldResult> vSizes = sizesOf(b, loc, op.getV()); // b T R H P
  OpFoldResult bS = qSizes[0], rS = qSizes[2], hS = qSizes[3], nS = qSizes[4];
  OpFoldResult pS = vSizes[4];
  int64_t rank = op.getQ().getType().getDimSize(2);
  OpFoldResult tptS = b.getIndexAttr(tpt), rtS = b.getIndexAttr(tpt * rank);
  OpFoldResult z0 = b.getIndexAttr(0), o1 = b.getIndexAttr(1);
  Value seqLen = tensor::DimOp::create(b, loc, op.getLogAlpha(), 2);

  Value yInit = emptyTensor(b, loc, vSizes, f32);
  auto loop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), seqLen, indexConstant(b, loc, 1),
      ValueRange{yInit, op.getInitSsm(), op.getInitK(), op.getInitV()},
      [&](OpBuilder &lb, Location ll, Value t, ValueRange iter) {
        Value yAcc = iter[0], state = iter[1], kPrev = iter[2], vPrev = iter[3];
        Value row = arith::MulIOp::create(lb, ll, t, indexConstant(lb, ll, tpt));
        // This token's terms as (b, R*tpt, H, X).
        auto terms = [&](Value v, OpFoldResult inner) {
          Value s = extractSlice(lb, ll, v, {z0, row, z0, z0, z0},
                                 {bS, tptS, rS, hS, inner});
          return tensor::CollapseShapeOp::create(
                     lb, ll, s,
                     SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}})
              .getResult();
        };
        Value qT = terms(op.getQ(), nS), kT = terms(op.getK(), nS),
              vT = terms(op.getV(), pS);
        auto coeff = [&](Value c) {
          return extractSlice(lb, ll, c, {z0, z0, t}, {bS, hS, o1}, {2});
        };
        Value logAlpha = coeff(op.getLogAlpha()),
              betaOverAlpha = coeff(op.getBetaOverAlpha()),
              gamma = coeff(op.getGamma());

        // Iteration space (b, h, p, n, j), j over the terms of one token.
        SmallVector<AffineMap> rankOneMaps = {
            projection(ctx, 5, {0, 1}), projection(ctx, 5, {0, 1, 4, 2}),
            projection(ctx, 5, {0, 1, 4, 3}), projection(ctx, 5, {0, 1, 2, 3})};
        auto accumulate = [&](OpBuilder &nb, Location nl, ValueRange a) {
          Value vk = arith::MulFOp::create(nb, nl, a[1], a[2]);
          Value w = arith::MulFOp::create(nb, nl, a[0], vk);
          linalg::YieldOp::create(nb, nl,
                                  arith::AddFOp::create(nb, nl, a[3], w).getResult());
        };
        // H + beta/alpha * sum_j v_{t-1,j} k_{t-1,j}^T
        Value withPrev = buildGeneric(
            lb, ll, ValueRange{betaOverAlpha, vPrev, kPrev}, state, rankOneMaps,
            {kPar, kPar, kPar, kPar, kRed}, accumulate)[0];
        // alpha * (...)
        AffineMap id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
        // (in place: the state buffer carried by the loop is the output)
        Value decayed = buildGeneric(
            lb, ll, ValueRange{logAlpha}, withPrev,
            {projection(ctx, 4, {0, 1}), id4}, {kPar, kPar, kPar, kPar},
            [&](OpBuilder &nb, Location nl, ValueRange a) {
              Value alpha = math::ExpOp::create(nb, nl, a[0]);
              linalg::YieldOp::create(
                  nb, nl, arith::MulFOp::create(nb, nl, alpha, a[1]).getResult());
            })[0];
        // + gamma * sum_j v_{t,j} k_{t,j}^T   (terms as (b, j, h, x))
        SmallVector<AffineMap> currentMaps = {
            projection(ctx, 5, {0, 1}), projection(ctx, 5, {0, 4, 1, 2}),
            projection(ctx, 5, {0, 4, 1, 3}), projection(ctx, 5, {0, 1, 2, 3})};
        Value next = buildGeneric(lb, ll, ValueRange{gamma, vT, kT}, decayed,
                                  currentMaps, {kPar, kPar, kPar, kPar, kRed},
                                  accumulate)[0];
        // y_j = H_t q_j: iteration (b, j, h, p, n).
        Value yT = buildGeneric(
            lb, ll, ValueRange{qT, next},
            filledTensor(lb, ll, {bS, rtS, hS, pS}, f32, 0.0),
            {projection(ctx, 5, {0, 1, 2, 4}), projection(ctx, 5, {0, 2, 3, 4}),
             projection(ctx, 5, {0, 1, 2, 3})},
            {kPar, kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange a) {
              Value qh = arith::MulFOp::create(nb, nl, a[0], a[1]);
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, a[2], qh).getResult());
            })[0];
        auto yType = cast<RankedTensorType>(yAcc.getType());
        SmallVector<int64_t> yShape(yType.getShape());
        yShape[1] = tpt;
        Value y5 = tensor::ExpandShapeOp::create(
            lb, ll, RankedTensorType::get(yShape, f32), yT,
            SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}},
            SmallVector<OpFoldResult>{bS, tptS, rS, hS, pS});
        Value yNext = tensor::InsertSliceOp::create(
            lb, ll, y5, yAcc, ArrayRef<OpFoldResult>{z0, row, z0, z0, z0},
            ArrayRef<OpFoldResult>{bS, tptS, rS, hS, pS},
            ArrayRef<OpFoldResult>{o1, o1, o1, o1, o1});
        scf::YieldOp::create(
            lb, ll,
            ValueRange{yNext, next, transpose(lb, ll, kT, {0, 2, 1, 3}, kPrev),
                       transpose(lb, ll, vT, {0, 2, 1, 3}, vPrev)});
      });
  op.getY().replaceAllUsesWith(loop.getResult(0));
  op.getFinalSsm().replaceAllUsesWith(loop.getResult(1));
  op->erase();
}

struct SsmLowerRecurrencePass
    : public ssm::impl::SsmLowerRecurrenceBase<SsmLowerRecurrencePass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<RecurrenceOp> ops;
    getOperation()->walk([&](RecurrenceOp op) { ops.push_back(op); });
    for (RecurrenceOp op : ops)
      lowerRecurrence(op);
  }
};

} // namespace
