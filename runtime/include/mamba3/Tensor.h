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

/// ||got - ref||_2 / ||ref||_2 (0 when both are zero). Returns +inf when the
/// shapes differ or when `got` holds a NaN, so that a comparison always fails.
double relativeL2(const Tensor &got, const Tensor &ref);

} // namespace mamba3

#endif // MAMBA3_TENSOR_H
