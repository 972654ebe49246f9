//===- Tensor.cpp - Host tensors for the reference and the runtime --------===//

#include "mamba3/Tensor.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>

using namespace mamba3;

Tensor::Tensor(std::vector<int64_t> shapeIn, double fill)
    : shape(std::move(shapeIn)) {
  data.assign(static_cast<size_t>(numel()), fill);
}

int64_t Tensor::numel() const {
  // A rank-0 tensor with one element is never built by this project: no shape
  // means an absent operand, and then it has no elements either.
  if (shape.empty())
    return 0;
  // Shapes come from configurations and files: a product past 64 bits (or a
  // negative size) is a bug upstream, not a tensor to allocate.
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > std::numeric_limits<int64_t>::max() / d))
      throw std::length_error("tensor shape " + shapeString() +
                              " has a negative size or more than 2^63 "
                              "elements");
    n *= d;
  }
  return n;
}

int64_t Tensor::index(std::initializer_list<int64_t> idx) const {
  assert(static_cast<int64_t>(idx.size()) == rank() && "index rank mismatch");
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : idx) {
    assert(i >= 0 && i < shape[d] && "index out of bounds");
    flat = flat * shape[d++] + i;
  }
  return flat;
}

namespace {
/// (outer, axis, inner) extents of `shape` around `axis`.
struct AxisSplit {
  int64_t outer = 1, inner = 1;
  AxisSplit(const std::vector<int64_t> &shape, int64_t axis) {
    for (int64_t i = 0; i < axis; ++i)
      outer *= shape[i];
    for (size_t i = axis + 1; i < shape.size(); ++i)
      inner *= shape[i];
  }
};
} // namespace

Tensor mamba3::sliceAxis(const Tensor &t, int64_t axis, int64_t start,
                         int64_t length) {
  assert(axis < t.rank() && start >= 0 && start + length <= t.shape[axis]);
  std::vector<int64_t> shape = t.shape;
  shape[axis] = length;
  Tensor out(shape);
  AxisSplit split(t.shape, axis);
  for (int64_t o = 0; o < split.outer; ++o)
    for (int64_t i = 0; i < length; ++i)
      for (int64_t n = 0; n < split.inner; ++n)
        out.data[(o * length + i) * split.inner + n] =
            t.data[(o * t.shape[axis] + start + i) * split.inner + n];
  return out;
}

void mamba3::insertAxis(Tensor &dst, const Tensor &part, int64_t axis,
                        int64_t start) {
  const int64_t length = part.shape[axis];
  assert(axis < dst.rank() && start + length <= dst.shape[axis]);
  AxisSplit split(dst.shape, axis);
  for (int64_t o = 0; o < split.outer; ++o)
    for (int64_t i = 0; i < length; ++i)
      for (int64_t n = 0; n < split.inner; ++n)
        dst.data[(o * dst.shape[axis] + start + i) * split.inner + n] =
            part.data[(o * length + i) * split.inner + n];
}

std::string Tensor::shapeString() const {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

double mamba3::relativeL2(const Tensor &got, const Tensor &ref,
                          double period) {
  const double inf = std::numeric_limits<double>::infinity();
  if (got.shape != ref.shape || got.data.size() != ref.data.size())
    return inf;
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.data.size(); ++i) {
    double d = got.data[i] - ref.data[i];
    if (period > 0 && std::isfinite(d))
      d = std::remainder(d, period);
    diff += d * d;
    norm += ref.data[i] * ref.data[i];
  }
  // NaN anywhere (in either tensor) propagates into `diff`; an infinity in
  // `got` makes `diff` infinite. Both must fail every tolerance.
  if (std::isnan(diff) || std::isnan(norm))
    return inf;
  if (norm == 0)
    return diff == 0 ? 0.0 : inf;
  return std::sqrt(diff / norm);
}
