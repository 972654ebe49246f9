//===- MimoToMatmul.cpp - Fold the MIMO rank axis into the term axis ------===//
//
// A token's R rank-1 terms share its decay and trapezoid weights, so a rank-R
// recurrence over L tokens equals a rank-1 recurrence over L*R terms whose
// weights are constant on R x R blocks (terms_per_token = R). In that form a
// chunk of C tokens is a (C*R)-row operand of ssm-chunk's matmuls.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMMIMOTOMATMUL
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// (b, T, R, H, X) -> (b, T*R, 1, H, X): row t*R + r is term (t, r).
Value foldRankIntoTerms(OpBuilder &b, Location loc, Value v) {
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, v, SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}});
  auto flatType = cast<RankedTensorType>(flat.getType());
  SmallVector<int64_t> shape(flatType.getShape());
  shape.insert(shape.begin() + 2, 1);
  SmallVector<OpFoldResult> sizes = sizesOf(b, loc, flat);
  sizes.insert(sizes.begin() + 2, b.getIndexAttr(1));
  return tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get(shape, flatType.getElementType()), flat,
      SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}}, sizes);
}

/// (b, T*R, 1, H, X) -> (b, T, R, H, X).
Value unfoldRank(OpBuilder &b, Location loc, Value v, Value like) {
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, v, SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}});
  return tensor::ExpandShapeOp::create(
      b, loc, like.getType(), flat,
      SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}, {4}},
      sizesOf(b, loc, like));
}

struct SsmMimoToMatmulPass
    : public ssm::impl::SsmMimoToMatmulBase<SsmMimoToMatmulPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<RecurrenceOp> ops;
    getOperation()->walk([&](RecurrenceOp op) {
      if (op.getQ().getType().getDimSize(2) > 1)
        ops.push_back(op);
    });
    for (RecurrenceOp op : ops) {
      OpBuilder b(op);
      Location loc = op.getLoc();
      int64_t rank = op.getQ().getType().getDimSize(2);
      Value q = foldRankIntoTerms(b, loc, op.getQ());
      Value k = foldRankIntoTerms(b, loc, op.getK());
      Value v = foldRankIntoTerms(b, loc, op.getV());
      auto rec = RecurrenceOp::create(
          b, loc, TypeRange{v.getType(), op.getFinalSsm().getType()}, q, k, v,
          op.getLogAlpha(), op.getBetaOverAlpha(), op.getGamma(),
          op.getInitSsm(), op.getInitK(), op.getInitV(),
          op.getTermsPerToken() * rank);
      Value y = unfoldRank(b, loc, rec.getY(), op.getV());
      op.getY().replaceAllUsesWith(y);
      op.getFinalSsm().replaceAllUsesWith(rec.getFinalSsm());
      op->erase();
    }
  }
};

} // namespace
