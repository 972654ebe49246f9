//===- Elements.cpp - Packed tensor elements: bf16, f16, f32, i32 --------===//
//
// The element types of bundle arguments: packing doubles into them and
// back (round to nearest even), their sizes, and the relative L2 error of
// packed buffers (wrapped angles compared modulo their period).
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace mamba3 {

namespace {

//===----------------------------------------------------------------------===//
// Element conversion
//===----------------------------------------------------------------------===//

uint16_t toBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep it a (quiet) NaN
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  // Round to nearest, ties to even.
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float fromBf16(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// IEEE binary16, rounded to nearest even (overflow to infinity, subnormals
/// kept), as the GPU's cvt.rn.f16.f32.
uint16_t toF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) // NaN
    return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) // rounds past 65504: infinity
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) { // below 2^-14: a subnormal half (or zero)
    float magnitude;
    std::memcpy(&magnitude, &abs, 4);
    // Units of 2^-24, rounded to nearest even by the float addition.
    float scaled = magnitude * 16777216.0f;
    uint32_t units = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | units);
  }
  uint32_t exponent = (abs >> 23) - 127 + 15, mantissa = abs & 0x7fffffu;
  uint32_t half = (exponent << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half; // may carry into the exponent: still right
  return static_cast<uint16_t>(sign | half);
}

float fromF16(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  float f;
  if (exponent == 0) { // zero or subnormal: mantissa * 2^-24
    f = static_cast<float>(mantissa) / 16777216.0f;
    return sign ? -f : f;
  }
  uint32_t bits = exponent == 0x1fu
                      ? sign | 0x7f800000u | (mantissa << 13)
                      : sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  std::memcpy(&f, &bits, 4);
  return f;
}

} // namespace

size_t elementSize(const std::string &dtype) {
  return dtype == "f32" || dtype == "i32"    ? 4
         : dtype == "bf16" || dtype == "f16" ? 2
                                             : 0;
}

void packElements(const std::vector<double> &src, const std::string &dtype,
                  unsigned char *dst) {
  if (dtype == "f32") {
    for (size_t i = 0; i < src.size(); ++i) {
      float f = static_cast<float>(src[i]);
      std::memcpy(dst + 4 * i, &f, 4);
    }
  } else if (dtype == "i32") {
    for (size_t i = 0; i < src.size(); ++i) {
      int32_t x = static_cast<int32_t>(src[i]);
      std::memcpy(dst + 4 * i, &x, 4);
    }
  } else {
    const bool f16 = dtype == "f16";
    for (size_t i = 0; i < src.size(); ++i) {
      float f = static_cast<float>(src[i]);
      uint16_t h = f16 ? toF16(f) : toBf16(f);
      std::memcpy(dst + 2 * i, &h, 2);
    }
  }
}

namespace {

/// Calls `body(decode)` with `decode(src, i)`, element `i` of packed `dtype`
/// data as a double: the dtype is decided once per buffer, not per element
/// (these loops run over 10^8 elements of a long prefill).
template <typename Body>
void withDecoder(const std::string &dtype, Body body) {
  if (dtype == "f32") {
    body([](const unsigned char *src, size_t i) {
      float f;
      std::memcpy(&f, src + 4 * i, 4);
      return static_cast<double>(f);
    });
  } else if (dtype == "i32") {
    body([](const unsigned char *src, size_t i) {
      int32_t x;
      std::memcpy(&x, src + 4 * i, 4);
      return static_cast<double>(x);
    });
  } else if (dtype == "f16") {
    body([](const unsigned char *src, size_t i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      return static_cast<double>(fromF16(h));
    });
  } else {
    body([](const unsigned char *src, size_t i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      return static_cast<double>(fromBf16(h));
    });
  }
}

} // namespace

void unpackElements(const unsigned char *src, const std::string &dtype,
                    std::vector<double> &dst) {
  withDecoder(dtype, [&](auto decode) {
    for (size_t i = 0; i < dst.size(); ++i)
      dst[i] = decode(src, i);
  });
}

double relativeL2Packed(const unsigned char *got, const unsigned char *ref,
                        size_t count, const std::string &dtype, double period) {
  // Sums over slices on several threads, added in slice order: the same
  // inputs give the same result on any machine with as many threads.
  const size_t threads = std::clamp<size_t>(
      std::min<size_t>(std::thread::hardware_concurrency(), 16), 1,
      std::max<size_t>(count / (1 << 16), 1));
  std::vector<double> diff(threads, 0), norm(threads, 0);
  auto slice = [&](size_t t) {
    const size_t begin = count * t / threads, end = count * (t + 1) / threads;
    double d2 = 0, n2 = 0;
    withDecoder(dtype, [&](auto decode) {
      for (size_t i = begin; i < end; ++i) {
        double r = decode(ref, i), d = decode(got, i) - r;
        if (period > 0 && std::isfinite(d))
          d = std::remainder(d, period);
        d2 += d * d;
        n2 += r * r;
      }
    });
    diff[t] = d2;
    norm[t] = n2;
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back(slice, t);
  slice(0);
  for (std::thread &th : pool)
    th.join();
  double d2 = 0, n2 = 0;
  for (size_t t = 0; t < threads; ++t) {
    d2 += diff[t];
    n2 += norm[t];
  }
  // As relativeL2: NaN anywhere and an infinity in `got` fail everything.
  const double inf = std::numeric_limits<double>::infinity();
  if (std::isnan(d2) || std::isnan(n2))
    return inf;
  if (n2 == 0)
    return d2 == 0 ? 0.0 : inf;
  return std::sqrt(d2 / n2);
}


} // namespace mamba3
