//===- Chunk.cpp - ssm.recurrence in the chunked (matmul) form ------------===//
//
// For a chunk of tokens [c, c + n) with chunk-relative cumulative log decays
// a_t (a_{c-1} = 0), the spec's chunked form is
//
//   H'    = H_{c-1} + (beta/alpha)_c sum_j v_{c-1,j} k_{c-1,j}^T
//   Y     = ((Q K^T) o W) V + diag(exp(a_t)) Q H'^T
//   H_end = exp(a_end) H' + sum_u w(end, u) v_u k_u^T
//   W(t, u) = exp(a_t - a_u) (gamma_u + [u < t] (beta/alpha)_{u+1}),  u <= t
//
// Folding the pending previous-token term into H' (it decays exactly like
// the entering state, exp(a_t - a_{c-1})) removes the separate term of the
// spec's form. With terms_per_token = R (after ssm-mimo-to-matmul) a chunk of
// n tokens has n*R term rows and W is constant on R x R blocks.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMCHUNK
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

constexpr int64_t kMaxChunkSize = 1024;

void chunkRecurrence(RecurrenceOp op, int64_t chunkSize) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  int64_t tpt = op.getTermsPerToken();
  SmallVector<OpFoldResult> qSizes = sizesOf(b, loc, op.getQ()); // b T 1 H N
  SmallVector<OpFoldResult> vSizes = sizesOf(b, loc, op.getV()); // b T 1 H P
  OpFoldResult bS = qSizes[0], hS = qSizes[3], nS = qSizes[4], pS = vSizes[4];
  OpFoldResult z0 = b.getIndexAttr(0), o1 = b.getIndexAttr(1);
  Value seqLen = tensor::DimOp::create(b, loc, op.getLogAlpha(), 2);
  Value tptV = indexConstant(b, loc, tpt);

  auto loop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), seqLen,
      indexConstant(b, loc, chunkSize),
      ValueRange{emptyTensor(b, loc, vSizes, f32), op.getInitSsm(),
                 op.getInitK(), op.getInitV()},
      [&](OpBuilder &lb, Location ll, Value c0, ValueRange iter) {
        Value yAcc = iter[0], state = iter[1], kPrev = iter[2], vPrev = iter[3];
        // n tokens in this chunk (the last one may be short), n*tpt terms.
        Value rest = arith::SubIOp::create(lb, ll, seqLen, c0);
        Value n = arith::MinSIOp::create(lb, ll, rest,
                                         indexConstant(lb, ll, chunkSize));
        Value nTerms = arith::MulIOp::create(lb, ll, n, tptV);
        Value row0 = arith::MulIOp::create(lb, ll, c0, tptV);
        Value lastTok = arith::SubIOp::create(lb, ll, n, indexConstant(lb, ll, 1));

        auto coeff = [&](Value c) {
          return extractSlice(lb, ll, c, {z0, z0, c0}, {bS, hS, n});
        };
        Value logAlpha = coeff(op.getLogAlpha());
        Value betaOverAlpha = coeff(op.getBetaOverAlpha());
        Value gamma = coeff(op.getGamma());
        auto rows = [&](Value v, OpFoldResult inner) { // (b, n*tpt, H, X)
          return extractSlice(lb, ll, v, {z0, row0, z0, z0, z0},
                              {bS, nTerms, o1, hS, inner}, {2});
        };
        Value q = rows(op.getQ(), nS), k = rows(op.getK(), nS),
              v = rows(op.getV(), pS);

        // a[b,h,t] = sum_{u <= t} log_alpha[b,h,u]: iteration (b, h, t, u).
        Value a = buildGeneric(
            lb, ll, logAlpha, filledTensor(lb, ll, {bS, hS, n}, f32, 0.0),
            {projection(ctx, 4, {0, 1, 3}), projection(ctx, 4, {0, 1, 2})},
            {kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value t = linalg::IndexOp::create(nb, nl, 2);
              Value u = linalg::IndexOp::create(nb, nl, 3);
              Value in = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ule,
                                               u, t);
              Value term = arith::SelectOp::create(nb, nl, in, x[0],
                                                   f32Constant(nb, nl, 0.0));
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, x[1], term).getResult());
            })[0];

        // Per-term weights read by token index t = row / tpt.
        auto tokenOf = [&](OpBuilder &nb, Location nl, unsigned dim) {
          return arith::DivUIOp::create(nb, nl,
                                        linalg::IndexOp::create(nb, nl, dim),
                                        indexConstant(nb, nl, tpt))
              .getResult();
        };
        auto at = [&](OpBuilder &nb, Location nl, Value tensor, Value bIdx,
                      Value hIdx, Value t) {
          return tensor::ExtractOp::create(nb, nl, tensor,
                                           ValueRange{bIdx, hIdx, t})
              .getResult();
        };
        // w(t, u) = exp(a_t - a_u) (gamma_u + [u < t] (beta/alpha)_{u+1}).
        auto weight = [&](OpBuilder &nb, Location nl, Value bIdx, Value hIdx,
                          Value t, Value u) {
          Value before = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                               u, t);
          Value next = arith::SelectOp::create(
              nb, nl, before,
              arith::AddIOp::create(nb, nl, u, indexConstant(nb, nl, 1)), u);
          Value shift = arith::SelectOp::create(
              nb, nl, before, at(nb, nl, betaOverAlpha, bIdx, hIdx, next),
              f32Constant(nb, nl, 0.0));
          Value coef = arith::AddFOp::create(
              nb, nl, at(nb, nl, gamma, bIdx, hIdx, u), shift);
          Value decay = math::ExpOp::create(
              nb, nl,
              arith::SubFOp::create(nb, nl, at(nb, nl, a, bIdx, hIdx, t),
                                    at(nb, nl, a, bIdx, hIdx, u)));
          return arith::MulFOp::create(nb, nl, decay, coef).getResult();
        };

        // H' = H + (beta/alpha)_c sum_j v_{c-1,j} k_{c-1,j}^T: (b, h, p, n, j).
        Value entering = buildGeneric(
            lb, ll, ValueRange{betaOverAlpha, vPrev, kPrev}, state,
            {AffineMap::get(5, 0,
                            {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
                             getAffineConstantExpr(0, ctx)},
                            ctx),
             projection(ctx, 5, {0, 1, 4, 2}), projection(ctx, 5, {0, 1, 4, 3}),
             projection(ctx, 5, {0, 1, 2, 3})},
            {kPar, kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value vk = arith::MulFOp::create(nb, nl, x[1], x[2]);
              Value w = arith::MulFOp::create(nb, nl, x[0], vk);
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, x[3], w).getResult());
            })[0];

        // Scores (q_i . k_j) W(i, j), masked to j <= i by token: (b, h, i, j).
        Value scores = buildGeneric(
            lb, ll, ValueRange{q, k},
            filledTensor(lb, ll, {bS, hS, nTerms, nTerms}, f32, 0.0),
            {projection(ctx, 5, {0, 2, 1, 4}), projection(ctx, 5, {0, 3, 1, 4}),
             projection(ctx, 5, {0, 1, 2, 3})},
            {kPar, kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value qk = arith::MulFOp::create(nb, nl, x[0], x[1]);
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, x[2], qk).getResult());
            })[0];
        AffineMap id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
        Value masked = buildGeneric(
            lb, ll, scores, emptyTensor(lb, ll, {bS, hS, nTerms, nTerms}, f32),
            {id4, id4}, {kPar, kPar, kPar, kPar},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value bIdx = linalg::IndexOp::create(nb, nl, 0);
              Value hIdx = linalg::IndexOp::create(nb, nl, 1);
              Value t = tokenOf(nb, nl, 2), u = tokenOf(nb, nl, 3);
              Value causal = arith::CmpIOp::create(
                  nb, nl, arith::CmpIPredicate::ule, u, t);
              // Clamp u for the reads of the masked upper triangle.
              Value uIn = arith::SelectOp::create(nb, nl, causal, u, t);
              Value w = weight(nb, nl, bIdx, hIdx, t, uIn);
              Value sw = arith::MulFOp::create(nb, nl, x[0], w);
              linalg::YieldOp::create(
                  nb, nl,
                  arith::SelectOp::create(nb, nl, causal, sw,
                                          f32Constant(nb, nl, 0.0))
                      .getResult());
            })[0];

        // Y = masked V: (b, i, h, p, j).
        Value yIntra = buildGeneric(
            lb, ll, ValueRange{masked, v},
            filledTensor(lb, ll, {bS, nTerms, hS, pS}, f32, 0.0),
            {projection(ctx, 5, {0, 2, 1, 4}), projection(ctx, 5, {0, 4, 2, 3}),
             projection(ctx, 5, {0, 1, 2, 3})},
            {kPar, kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value mv = arith::MulFOp::create(nb, nl, x[0], x[1]);
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, x[2], mv).getResult());
            })[0];
        // exp(a_t) per term row: (b, h, i).
        AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
        Value rowDecay = buildGeneric(
            lb, ll, ValueRange{}, emptyTensor(lb, ll, {bS, hS, nTerms}, f32),
            {id3}, {kPar, kPar, kPar},
            [&](OpBuilder &nb, Location nl, ValueRange) {
              Value bIdx = linalg::IndexOp::create(nb, nl, 0);
              Value hIdx = linalg::IndexOp::create(nb, nl, 1);
              Value e = math::ExpOp::create(
                  nb, nl, at(nb, nl, a, bIdx, hIdx, tokenOf(nb, nl, 2)));
              linalg::YieldOp::create(nb, nl, e);
            })[0];
        // Y += exp(a_t) q_i H'^T: (b, i, h, p, n).
        Value y = buildGeneric(
            lb, ll, ValueRange{rowDecay, q, entering}, yIntra,
            {projection(ctx, 5, {0, 2, 1}), projection(ctx, 5, {0, 1, 2, 4}),
             projection(ctx, 5, {0, 2, 3, 4}), projection(ctx, 5, {0, 1, 2, 3})},
            {kPar, kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value qh = arith::MulFOp::create(nb, nl, x[1], x[2]);
              Value w = arith::MulFOp::create(nb, nl, x[0], qh);
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, x[3], w).getResult());
            })[0];

        // State at the chunk's end.
        Value endWeight = buildGeneric(
            lb, ll, ValueRange{}, emptyTensor(lb, ll, {bS, hS, nTerms}, f32),
            {id3}, {kPar, kPar, kPar},
            [&](OpBuilder &nb, Location nl, ValueRange) {
              Value bIdx = linalg::IndexOp::create(nb, nl, 0);
              Value hIdx = linalg::IndexOp::create(nb, nl, 1);
              linalg::YieldOp::create(
                  nb, nl, weight(nb, nl, bIdx, hIdx, lastTok, tokenOf(nb, nl, 2)));
            })[0];
        Value decayedState = buildGeneric(
            lb, ll, ValueRange{}, entering, {id4}, {kPar, kPar, kPar, kPar},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value bIdx = linalg::IndexOp::create(nb, nl, 0);
              Value hIdx = linalg::IndexOp::create(nb, nl, 1);
              Value e = math::ExpOp::create(nb, nl,
                                            at(nb, nl, a, bIdx, hIdx, lastTok));
              linalg::YieldOp::create(
                  nb, nl, arith::MulFOp::create(nb, nl, e, x[0]).getResult());
            })[0];
        // (P x C*R) . (C*R x N) per (b, h): iteration (b, h, p, n, j).
        Value nextState = buildGeneric(
            lb, ll, ValueRange{endWeight, v, k}, decayedState,
            {projection(ctx, 5, {0, 1, 4}), projection(ctx, 5, {0, 4, 1, 2}),
             projection(ctx, 5, {0, 4, 1, 3}), projection(ctx, 5, {0, 1, 2, 3})},
            {kPar, kPar, kPar, kPar, kRed},
            [&](OpBuilder &nb, Location nl, ValueRange x) {
              Value vk = arith::MulFOp::create(nb, nl, x[1], x[2]);
              Value w = arith::MulFOp::create(nb, nl, x[0], vk);
              linalg::YieldOp::create(
                  nb, nl, arith::AddFOp::create(nb, nl, x[3], w).getResult());
            })[0];

        // The last token's terms enter the next chunk's pending term.
        Value lastRow = arith::SubIOp::create(lb, ll, nTerms, tptV);
        OpFoldResult tptS = lb.getIndexAttr(tpt);
        Value kLast = transpose(
            lb, ll, extractSlice(lb, ll, k, {z0, lastRow, z0, z0}, {bS, tptS, hS, nS}),
            {0, 2, 1, 3}, kPrev);
        Value vLast = transpose(
            lb, ll, extractSlice(lb, ll, v, {z0, lastRow, z0, z0}, {bS, tptS, hS, pS}),
            {0, 2, 1, 3}, vPrev);
        auto yType = cast<RankedTensorType>(y.getType());
        SmallVector<int64_t> y5Shape(yType.getShape());
        y5Shape.insert(y5Shape.begin() + 2, 1);
        Value y5 = tensor::ExpandShapeOp::create(
            lb, ll, RankedTensorType::get(y5Shape, f32), y,
            SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}},
            SmallVector<OpFoldResult>{bS, nTerms, o1, hS, pS});
        Value yNext = tensor::InsertSliceOp::create(
            lb, ll, y5, yAcc, ArrayRef<OpFoldResult>{z0, row0, z0, z0, z0},
            ArrayRef<OpFoldResult>{bS, nTerms, o1, hS, pS},
            ArrayRef<OpFoldResult>{o1, o1, o1, o1, o1});
        scf::YieldOp::create(lb, ll, ValueRange{yNext, nextState, kLast, vLast});
      });
  op.getY().replaceAllUsesWith(loop.getResult(0));
  op.getFinalSsm().replaceAllUsesWith(loop.getResult(1));
  op->erase();
}

struct SsmChunkPass : public ssm::impl::SsmChunkBase<SsmChunkPass> {
  using Base::Base;
  void runOnOperation() override {
    if (chunkSize < 1 || chunkSize > kMaxChunkSize) {
      getOperation()->emitError()
          << "ssm-chunk: chunk-size must be in [1, " << kMaxChunkSize
          << "], got " << static_cast<int64_t>(chunkSize);
      return signalPassFailure();
    }
    SmallVector<RecurrenceOp> ops;
    WalkResult result = getOperation()->walk([&](RecurrenceOp op) {
      if (op.getQ().getType().getDimSize(2) != 1) {
        op.emitOpError()
            << "has rank " << op.getQ().getType().getDimSize(2)
            << " on its R axis; ssm-chunk needs one term per row: run "
               "ssm-mimo-to-matmul first";
        return WalkResult::interrupt();
      }
      ops.push_back(op);
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    for (RecurrenceOp op : ops)
      chunkRecurrence(op, chunkSize);
  }
};

} // namespace
