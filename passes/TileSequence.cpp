//===- TileSequence.cpp - A scan as a loop over chunks of its sequence ----===//
//
// The chunked form of spec/mamba3-core.md walks the sequence chunk by chunk,
// carrying the angle, ssm, k and v states from one chunk to the next; those
// are exactly the states a scan starts from and returns. So the sequence
// axis of a scan tiles like a loop: an scf.for over chunk starts c slices
// tokens [c, c + min(C, L - c)) out of every token operand, runs an ssm.scan
// of that chunk from the carried states, inserts its out and carries its
// final states. This loop is the chunked IR both targets start from: the CPU
// path expands each chunk's scan (ssm-decompose ... ssm-chunk), the GPU path
// (ssm-gpu-schedule tiles, ssm-to-gpu lowers) maps the loop onto the blocks'
// chunk loops and the chunk's scan onto the kernel's per-chunk phases.
//
// The ssm state is carried in f32 whatever the scan's state type: a bf16
// state is widened before the loop and narrowed once after it.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "dialect/SsmLayerOperands.h"
#include "passes/Builders.h"
#include "passes/Passes.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMTILESEQUENCE
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// `type` with axis `axis` of size `size` (dynamic: ShapedType::kDynamic).
RankedTensorType withAxis(Type type, int64_t axis, int64_t size) {
  auto t = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(t.getShape());
  shape[axis] = size;
  return RankedTensorType::get(shape, t.getElementType());
}

/// The chunk [start, start + len) of `v` along its token axis `axis`, whose
/// type has `staticLen` there (or a dynamic size).
Value sliceChunk(OpBuilder &b, Location loc, Value v, int64_t axis,
                 Value start, OpFoldResult len, int64_t staticLen) {
  if (!v)
    return v;
  auto type = cast<RankedTensorType>(v.getType());
  // An empty tensor (the angles of a layer without rotary angles) has no
  // in-bounds offsets to slice at; its chunk is empty too.
  if (llvm::is_contained(type.getShape(), 0)) {
    SmallVector<OpFoldResult> sizes = sizesOf(b, loc, v);
    sizes[axis] = len;
    return emptyTensor(b, loc, sizes, type.getElementType());
  }
  return extractSliceAlong(b, loc, v, axis, start, len,
                           withAxis(type, axis, staticLen));
}

/// `value` converted to `elementType` by a linalg.copy (the named op casts),
/// or `value` itself when the element types agree.
Value convertStateTo(OpBuilder &b, Location loc, Value value, Type elementType) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getElementType() == elementType)
    return value;
  Value init = emptyTensor(b, loc, sizesOf(b, loc, value), elementType);
  return linalg::CopyOp::create(b, loc, value, init).getResult(0);
}

} // namespace

FailureOr<scf::ForOp> mlir::ssm::tileScanSequence(OpBuilder &b, ScanOp op,
                                                  int64_t tokens) {
  if (op.isVarlen())
    return op.emitOpError("ssm-tile-sequence: a varlen scan's chunks follow "
                          "cu_seqlens; run ssm-split-sequences first");
  if (tokens < 1)
    return op.emitOpError("ssm-tile-sequence: chunks of ")
           << tokens << " tokens";
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(op);
  Location loc = op.getLoc();
  Type f32 = b.getF32Type();
  Value seqLen = b.createOrFold<tensor::DimOp>(loc, op.getV(), 1);
  int64_t staticSeqLen = op.getV().getType().getDimSize(1);
  // Every chunk is whole when the length is a static multiple of C: the
  // chunk scans then have a static length.
  int64_t chunkLen = !ShapedType::isDynamic(staticSeqLen) &&
                             staticSeqLen % tokens == 0
                         ? tokens
                         : ShapedType::kDynamic;

  // Loop-carried values: out, then the angle, ssm (f32), k and v states,
  // from the scan's initial states or zeros.
  SmallVector<Value> inits;
  auto out = cast<RankedTensorType>(op.getOut().getType());
  SmallVector<OpFoldResult> outSizes = sizesOf(b, loc, op.getV());
  // Per-rank outputs (b, L, R, H, P): V's sizes with R after L.
  if (out.getRank() == 5)
    outSizes.insert(outSizes.begin() + 2, b.getIndexAttr(out.getDimSize(2)));
  inits.push_back(emptyTensor(b, loc, outSizes, out.getElementType()));
  Value initStates[] = {op.getInitAngle(), op.getInitSsm(), op.getInitK(),
                        op.getInitV()};
  for (auto [i, result] : llvm::enumerate(op->getResults().drop_front())) {
    auto type = cast<RankedTensorType>(result.getType());
    Type element = i == 1 ? f32 : type.getElementType();
    if (initStates[i]) {
      inits.push_back(convertStateTo(b, loc, initStates[i], element));
      continue;
    }
    // A state's dynamic axis is the batch, V's axis 0.
    SmallVector<OpFoldResult> sizes;
    for (int64_t d = 0; d < type.getRank(); ++d)
      sizes.push_back(type.isDynamicDim(d)
                          ? OpFoldResult(b.createOrFold<tensor::DimOp>(
                                loc, op.getV(), 0))
                          : OpFoldResult(b.getIndexAttr(type.getDimSize(d))));
    inits.push_back(filledTensor(b, loc, sizes, element, 0.0));
  }

  Value zero = indexConstant(b, loc, 0);
  Value step = indexConstant(b, loc, tokens);
  auto loop = scf::ForOp::create(
      b, loc, zero, seqLen, step, inits,
      [&](OpBuilder &nb, Location l, Value c, ValueRange carried) {
        OpFoldResult len = nb.getIndexAttr(tokens);
        if (ShapedType::isDynamic(chunkLen))
          len = arith::MinSIOp::create(
                    nb, l, arith::SubIOp::create(nb, l, seqLen, c), step)
                    .getResult();
        // Token axes: 1 for (b, L, ...), 2 for ADT/DT/Trap (b, H, L).
        auto chunk = [&](Value v, int64_t axis) {
          return sliceChunk(nb, l, v, axis, c, len, chunkLen);
        };
        // The chunk's slices of the token tensors, the carried states.
        LayerOperands o = LayerOperands::of(op);
        o.mapTokenTensors(chunk);
        o.angleState = carried[1];
        o.ssmState = carried[2];
        o.kState = carried[3];
        o.vState = carried[4];
        o.cuSeqlens = Value();
        SmallVector<Type> types{withAxis(out, 1, chunkLen)};
        for (Value state : carried.drop_front())
          types.push_back(state.getType());
        // The carried states are fp32 (converted to the state type after
        // the loop).
        auto scan = createScanLike(nb, l, types, o, op,
                                   /*stateType=*/TypeAttr());
        SmallVector<Value> next{
            insertSliceAlong(nb, l, scan.getOut(), carried[0], 1, c, len)};
        llvm::append_range(next, scan->getResults().drop_front());
        scf::YieldOp::create(nb, l, next);
      });
  b.setInsertionPointAfter(loop);
  SmallVector<Value> results(loop.getResults());
  results[2] = convertStateTo(b, loc, results[2], op.getStateElementType());
  op->replaceAllUsesWith(results);
  op->erase();
  return loop;
}

namespace {

struct SsmTileSequencePass
    : public ssm::impl::SsmTileSequenceBase<SsmTileSequencePass> {
  using Base::Base;
  void runOnOperation() override {
    if (chunkSize < 1) {
      getOperation()->emitError()
          << "ssm-tile-sequence: chunk-size must be positive, got "
          << static_cast<int64_t>(chunkSize);
      return signalPassFailure();
    }
    SmallVector<ScanOp> scans;
    getOperation()->walk([&](ScanOp op) { scans.push_back(op); });
    OpBuilder b(&getContext());
    for (ScanOp op : scans)
      if (failed(tileScanSequence(b, op, chunkSize)))
        return signalPassFailure();
  }
};

} // namespace
