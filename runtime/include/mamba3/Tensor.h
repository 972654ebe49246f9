//===- Tensor.h - Host tensors for the reference and the runtime -*- C++ -*-===//
//
// A dense, row-major host tensor of doubles with its shape. The float64 reference
// works on these; the runtime converts them to the element types a kernel takes.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_TENSOR_H
#define MAMBA3_TENSOR_H

#include <cstdint>
#include <string>
#include <vector>

namespace mamba3 {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape, double fill = 0.0);

  /// True for an absent optional operand (no shape, no data).
  bool empty() const { return shape.empty() && data.empty(); }
  int64_t numel() const;
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  /// Row-major flat index of a full multi-index.
  int64_t index(std::initializer_list<int64_t> idx) const;
  double &at(std::initializer_list<int64_t> idx) { return data[index(idx)]; }
  double at(std::initializer_list<int64_t> idx) const { return data[index(idx)]; }
  std::string shapeString() const;
};

/// Entries [start, start + length) of axis `axis`, all of the other axes.
Tensor sliceAxis(const Tensor &t, int64_t axis, int64_t start, int64_t length);

/// Writes `part` into `dst` at `start` along `axis` (the inverse of
/// sliceAxis; the other axes must match).
void insertAxis(Tensor &dst, const Tensor &part, int64_t axis, int64_t start);

/// ||got - ref||_2 / ||ref||_2 (0 when both are zero). Returns +inf when the
/// shapes differ or when `got` holds a NaN, so that a comparison always fails.
/// With `period` > 0 each difference is taken modulo `period`, into
/// [-period/2, period/2]: a wrapped angle state (period 2*pi) of 6.2831 and
/// one of 0.0001 are the same angle, and an fp32 sum that lands on the other
/// side of the wrap than the float64 one is not an error (only cos and sin
/// of the angle are ever read).
double relativeL2(const Tensor &got, const Tensor &ref, double period = 0);

} // namespace mamba3

#endif // MAMBA3_TENSOR_H
