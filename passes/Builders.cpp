//===- Builders.cpp - Small helpers to build linalg/tensor IR -------------===//

#include "passes/Builders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;
using namespace mlir::ssm;

SmallVector<OpFoldResult> mlir::ssm::sizesOf(OpBuilder &b, Location loc,
                                             Value tensor) {
  return tensor::getMixedSizes(b, loc, tensor);
}

Value mlir::ssm::emptyTensor(OpBuilder &b, Location loc,
                             ArrayRef<OpFoldResult> sizes, Type elementType) {
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

Value mlir::ssm::filledTensor(OpBuilder &b, Location loc,
                              ArrayRef<OpFoldResult> sizes, Type elementType,
                              double value) {
  Value empty = emptyTensor(b, loc, sizes, elementType);
  Value scalar = arith::ConstantOp::create(
      b, loc, b.getFloatAttr(elementType, value));
  return linalg::FillOp::create(b, loc, scalar, empty).getResult(0);
}

Value mlir::ssm::f32Constant(OpBuilder &b, Location loc, double value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

Value mlir::ssm::indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

AffineMap mlir::ssm::projection(MLIRContext *ctx, unsigned numDims,
                                ArrayRef<int64_t> dims) {
  SmallVector<AffineExpr> exprs;
  for (int64_t d : dims)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(numDims, 0, exprs, ctx);
}

SmallVector<Value>
mlir::ssm::buildGeneric(OpBuilder &b, Location loc, ValueRange inputs,
                        ValueRange outputs, ArrayRef<AffineMap> maps,
                        ArrayRef<Iter> iterators,
                        function_ref<void(OpBuilder &, Location, ValueRange)> body) {
  auto op = linalg::GenericOp::create(b, loc, ValueRange(outputs).getTypes(),
                                      inputs, outputs, maps, iterators, body);
  return SmallVector<Value>(op->getResults());
}

Value mlir::ssm::scalarToF32(OpBuilder &b, Location loc, Value scalar) {
  if (scalar.getType().isF32())
    return scalar;
  return arith::ExtFOp::create(b, loc, b.getF32Type(), scalar);
}

Value mlir::ssm::scalarFromF32(OpBuilder &b, Location loc, Value scalar,
                               Type target) {
  if (scalar.getType() == target)
    return scalar;
  return arith::TruncFOp::create(b, loc, target, scalar);
}

Value mlir::ssm::castTensor(OpBuilder &b, Location loc, Value tensor,
                            Type target) {
  auto type = cast<RankedTensorType>(tensor.getType());
  Type source = type.getElementType();
  if (source == target)
    return tensor;
  unsigned rank = type.getRank();
  Value init = emptyTensor(b, loc, sizesOf(b, loc, tensor), target);
  AffineMap id = b.getMultiDimIdentityMap(rank);
  return buildGeneric(
      b, loc, tensor, init, {id, id}, SmallVector<Iter>(rank, kPar),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value v = args[0];
        if (source.getIntOrFloatBitWidth() < target.getIntOrFloatBitWidth())
          v = arith::ExtFOp::create(nb, nl, target, v);
        else
          v = arith::TruncFOp::create(nb, nl, target, v);
        linalg::YieldOp::create(nb, nl, v);
      })[0];
}

Value mlir::ssm::extractSlice(OpBuilder &b, Location loc, Value source,
                              ArrayRef<OpFoldResult> offsets,
                              ArrayRef<OpFoldResult> sizes,
                              ArrayRef<int64_t> dropDims) {
  auto srcType = cast<RankedTensorType>(source.getType());
  SmallVector<OpFoldResult> strides(offsets.size(), b.getIndexAttr(1));
  SmallVector<int64_t> staticSizes;
  SmallVector<Value> dynamicSizes;
  dispatchIndexOpFoldResults(sizes, dynamicSizes, staticSizes);
  Type element = srcType.getElementType();
  Value slice = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get(staticSizes, element), source, offsets,
      sizes, strides);
  if (dropDims.empty())
    return slice;
  // The unit axes go by a collapse_shape, not by a rank-reducing slice:
  // once a dynamic size folds to a constant, the canonicalizer re-infers a
  // rank-reducing slice's type dropping the leading unit axes, which with a
  // batch of 1 are the wrong ones (b=1: (1, L, 1, H, N) came out as
  // (L, 1, H, N), cast to (1, L, H, N)).
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices leading;
  SmallVector<int64_t> kept;
  for (auto [i, size] : llvm::enumerate(staticSizes)) {
    if (llvm::is_contained(dropDims, static_cast<int64_t>(i))) {
      assert(size == 1 && "extractSlice drops unit axes only");
      (groups.empty() ? leading : groups.back()).push_back(i);
      continue;
    }
    kept.push_back(size);
    groups.push_back(std::exchange(leading, {}));
    groups.back().push_back(i);
  }
  return tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get(kept, element), slice, groups);
}

namespace {
/// Offsets, sizes and strides of the range [start, start + len) of `v`
/// along `axis`, all of every other axis (`len` null: all of `axis` too).
std::tuple<SmallVector<OpFoldResult>, SmallVector<OpFoldResult>,
           SmallVector<OpFoldResult>>
rangeAlong(OpBuilder &b, Location loc, Value v, int64_t axis,
           OpFoldResult start, OpFoldResult len) {
  int64_t rank = cast<RankedTensorType>(v.getType()).getRank();
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes;
  for (int64_t i = 0; i < rank; ++i)
    sizes.push_back(i == axis && len ? len : tensor::getMixedSize(b, loc, v, i));
  offsets[axis] = start;
  return {offsets, sizes, SmallVector<OpFoldResult>(rank, b.getIndexAttr(1))};
}
} // namespace

Value mlir::ssm::extractSliceAlong(OpBuilder &b, Location loc, Value source,
                                   int64_t axis, OpFoldResult start,
                                   OpFoldResult len,
                                   RankedTensorType resultType) {
  auto [offsets, sizes, strides] = rangeAlong(b, loc, source, axis, start, len);
  return tensor::ExtractSliceOp::create(b, loc, resultType, source, offsets,
                                        sizes, strides);
}

Value mlir::ssm::insertSliceAlong(OpBuilder &b, Location loc, Value part,
                                  Value dest, int64_t axis,
                                  OpFoldResult start, OpFoldResult len) {
  auto [offsets, sizes, strides] = rangeAlong(b, loc, part, axis, start, len);
  return tensor::InsertSliceOp::create(b, loc, part, dest, offsets, sizes,
                                       strides);
}

Value mlir::ssm::transpose(OpBuilder &b, Location loc, Value source,
                           ArrayRef<int64_t> perm, Value init) {
  if (!init) {
    SmallVector<OpFoldResult> srcSizes = sizesOf(b, loc, source);
    SmallVector<OpFoldResult> sizes;
    for (int64_t p : perm)
      sizes.push_back(srcSizes[p]);
    init = emptyTensor(
        b, loc, sizes,
        cast<RankedTensorType>(source.getType()).getElementType());
  }
  return linalg::TransposeOp::create(b, loc, source, init, perm).getResult()[0];
}

Value mlir::ssm::sigmoid(OpBuilder &b, Location loc, Value x) {
  Value one = arith::ConstantOp::create(b, loc, b.getFloatAttr(x.getType(), 1.0));
  Value negX = arith::NegFOp::create(b, loc, x);
  Value e = math::ExpOp::create(b, loc, negX);
  Value den = arith::AddFOp::create(b, loc, one, e);
  return arith::DivFOp::create(b, loc, one, den);
}
