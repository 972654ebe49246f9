//===- SplitSequences.cpp - A packed varlen scan as a loop of scans -------===//
//
// A scan with cu_seqlens packs independent sequences along L. On tensors the
// simplest exact form is a loop over the sequences that slices each one out
// of the packed operands (its length is data, so the slices have a dynamic
// L), runs an ordinary batch-1 scan on it with that sequence's initial
// states, and inserts its out and final states into the packed results.
// Every later pass (decompose, chunking, lowering) then sees plain scans with
// a dynamic sequence length, which they support.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "dialect/SsmLayerOperands.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMSPLITSEQUENCES
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// The type of `v` with axis `axis` made dynamic and axis 0 set to 1.
RankedTensorType sliceType(Value v, int64_t axis) {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape[0] = 1;
  if (axis >= 0)
    shape[axis] = ShapedType::kDynamic;
  return RankedTensorType::get(shape, type.getElementType());
}

void splitSequences(ScanOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  Value cu = op.getCuSeqlens();
  Value one = indexConstant(b, loc, 1);
  Value sequences = b.createOrFold<arith::SubIOp>(
      loc, b.createOrFold<tensor::DimOp>(loc, cu, 0), one);

  // The packed results start empty: the sequences cover every token and
  // every state entry (cu_seqlens is increasing from 0 to L).
  SmallVector<Value> inits;
  for (Value result : op->getResults()) {
    auto type = cast<RankedTensorType>(result.getType());
    SmallVector<OpFoldResult> sizes;
    for (int64_t i = 0; i < type.getRank(); ++i) {
      if (!type.isDynamicDim(i)) {
        sizes.push_back(b.getIndexAttr(type.getDimSize(i)));
        continue;
      }
      // out's dynamic L is V's; a state's dynamic batch is the sequences.
      if (result == op.getOut())
        sizes.push_back(tensor::DimOp::create(b, loc, op.getV(), i).getResult());
      else
        sizes.push_back(sequences);
    }
    inits.push_back(emptyTensor(b, loc, sizes, type.getElementType()));
  }

  Value zero = indexConstant(b, loc, 0);
  auto loop = scf::ForOp::create(
      b, loc, zero, sequences, one, inits,
      [&](OpBuilder &nb, Location l, Value s, ValueRange packed) {
        auto offset = [&](Value i) {
          Value x = tensor::ExtractOp::create(nb, l, cu, ValueRange{i});
          return arith::IndexCastOp::create(nb, l, nb.getIndexType(), x)
              .getResult();
        };
        Value start = offset(s);
        Value end = offset(arith::AddIOp::create(nb, l, s, one));
        Value len = arith::SubIOp::create(nb, l, end, start);
        // Token axes: 1 for (b, L, ...), 2 for ADT/DT/Trap (b, H, L); a
        // state's entry s of its batch (sequence) axis.
        auto tokens = [&](Value v, int64_t axis) {
          return v ? extractSliceAlong(nb, l, v, axis, start, len,
                                       sliceType(v, axis))
                   : v;
        };
        auto state = [&](Value v) {
          return v ? extractSliceAlong(nb, l, v, 0, s, nb.getIndexAttr(1),
                                       sliceType(v, -1))
                   : v;
        };

        SmallVector<Type> types;
        for (auto [i, init] : llvm::enumerate(packed))
          types.push_back(i == 0 ? sliceType(init, 1) : sliceType(init, -1));
        // The sequence's slices, in operand order (one statement each, so
        // the IR is the same on every compiler).
        LayerOperands o = LayerOperands::of(op);
        o.mapTokenTensors(tokens);
        o.angleState = state(o.angleState);
        o.ssmState = state(o.ssmState);
        o.kState = state(o.kState);
        o.vState = state(o.vState);
        o.cuSeqlens = Value();
        auto scan = createScanLike(nb, l, types, o, op,
                                   op.getStateTypeAttr());

        SmallVector<Value> next;
        for (auto [i, part] : llvm::enumerate(scan->getResults()))
          next.push_back(i == 0
                             ? insertSliceAlong(nb, l, part, packed[i], 1, start)
                             : insertSliceAlong(nb, l, part, packed[i], 0, s));
        scf::YieldOp::create(nb, l, next);
      });
  op->replaceAllUsesWith(loop.getResults());
  op->erase();
}

struct SsmSplitSequencesPass
    : public ssm::impl::SsmSplitSequencesBase<SsmSplitSequencesPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<ScanOp> scans;
    getOperation()->walk([&](ScanOp op) {
      if (op.isVarlen())
        scans.push_back(op);
    });
    for (ScanOp op : scans)
      splitSequences(op);
  }
};

} // namespace
