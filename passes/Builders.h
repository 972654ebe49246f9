//===- Builders.h - Small helpers to build linalg/tensor IR ------*- C++ -*-===//
//
// The ssm passes build many linalg.generic ops over tensors whose batch and
// sequence sizes may be dynamic; these helpers keep that code about the math.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_PASSES_BUILDERS_H
#define MAMBA3_PASSES_BUILDERS_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir {
namespace ssm {

using Iter = utils::IteratorType;
constexpr Iter kPar = utils::IteratorType::parallel;
constexpr Iter kRed = utils::IteratorType::reduction;

/// The sizes of a ranked tensor (static as attributes, dynamic as tensor.dim).
SmallVector<OpFoldResult> sizesOf(OpBuilder &b, Location loc, Value tensor);

/// A tensor.empty of the given sizes.
Value emptyTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
                  Type elementType);

/// A tensor of the given sizes filled with `value`.
Value filledTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
                   Type elementType, double value);

Value f32Constant(OpBuilder &b, Location loc, double value);
Value indexConstant(OpBuilder &b, Location loc, int64_t value);

/// The map (d0..d{numDims-1}) -> (d{dims[0]}, d{dims[1]}, ...).
AffineMap projection(MLIRContext *ctx, unsigned numDims, ArrayRef<int64_t> dims);

/// Builds a linalg.generic and returns its results.
SmallVector<Value>
buildGeneric(OpBuilder &b, Location loc, ValueRange inputs, ValueRange outputs,
             ArrayRef<AffineMap> maps, ArrayRef<Iter> iterators,
             function_ref<void(OpBuilder &, Location, ValueRange)> body);

/// Scalar conversion to f32 / from f32 (no-op when the type already matches).
Value scalarToF32(OpBuilder &b, Location loc, Value scalar);
Value scalarFromF32(OpBuilder &b, Location loc, Value scalar, Type target);

/// Elementwise conversion of a tensor to the element type `target`.
Value castTensor(OpBuilder &b, Location loc, Value tensor, Type target);

/// A slice whose unit dimensions listed in `dropDims` are removed.
Value extractSlice(OpBuilder &b, Location loc, Value source,
                   ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes,
                   ArrayRef<int64_t> dropDims = {});

/// The slice [start, start + len) of `source` along `axis`, all of every
/// other axis, typed `resultType`.
Value extractSliceAlong(OpBuilder &b, Location loc, Value source, int64_t axis,
                        OpFoldResult start, OpFoldResult len,
                        RankedTensorType resultType);

/// Inserts all of `part` into `dest` at `start` along `axis` (0 elsewhere);
/// `len`, when given, is `part`'s size along `axis`.
Value insertSliceAlong(OpBuilder &b, Location loc, Value part, Value dest,
                       int64_t axis, OpFoldResult start,
                       OpFoldResult len = nullptr);

/// Permutes a tensor's axes (result axis i is source axis perm[i]) into
/// `init` (a new tensor when null). Loops pass their iteration argument as
/// `init` so that bufferization can update the carried buffer in place.
Value transpose(OpBuilder &b, Location loc, Value source,
                ArrayRef<int64_t> perm, Value init = nullptr);

/// 1 / (1 + exp(-x)).
Value sigmoid(OpBuilder &b, Location loc, Value x);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_PASSES_BUILDERS_H
