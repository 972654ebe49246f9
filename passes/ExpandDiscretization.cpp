//===- ExpandDiscretization.cpp - ssm.discretize to arithmetic ------------===//
//
// The discretization rule becomes per-token coefficients: one elementwise
// linalg.generic over (b, H, L) producing log(alpha), beta/alpha and gamma.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMEXPANDDISCRETIZATION
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

void expandDiscretize(DiscretizeOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  SmallVector<OpFoldResult> sizes = sizesOf(b, loc, op.getADT());
  Type f32 = b.getF32Type();
  SmallVector<Value> inits = {emptyTensor(b, loc, sizes, f32),
                              emptyTensor(b, loc, sizes, f32),
                              emptyTensor(b, loc, sizes, f32)};
  AffineMap id = b.getMultiDimIdentityMap(3);
  bool euler = op.getRule() == DiscretizationRule::euler;
  SmallVector<Value> results = buildGeneric(
      b, loc, ValueRange{op.getADT(), op.getDT(), op.getTrap()}, inits,
      SmallVector<AffineMap>(6, id), {kPar, kPar, kPar},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value adt = args[0], dt = args[1];
        Value betaOverAlpha, gamma;
        if (euler) {
          // lambda = 1: exponential Euler, the previous token drops out.
          betaOverAlpha = f32Constant(nb, nl, 0.0);
          gamma = dt;
        } else {
          Value lambda = sigmoid(nb, nl, scalarToF32(nb, nl, args[2]));
          Value one = f32Constant(nb, nl, 1.0);
          Value oneMinus = arith::SubFOp::create(nb, nl, one, lambda);
          betaOverAlpha = arith::MulFOp::create(nb, nl, oneMinus, dt);
          gamma = arith::MulFOp::create(nb, nl, lambda, dt);
        }
        linalg::YieldOp::create(nb, nl, ValueRange{adt, betaOverAlpha, gamma});
      });
  op->replaceAllUsesWith(results);
  op->erase();
}

struct SsmExpandDiscretizationPass
    : public ssm::impl::SsmExpandDiscretizationBase<
          SsmExpandDiscretizationPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<DiscretizeOp> ops;
    getOperation()->walk([&](DiscretizeOp op) { ops.push_back(op); });
    for (DiscretizeOp op : ops)
      expandDiscretize(op);
  }
};

} // namespace
