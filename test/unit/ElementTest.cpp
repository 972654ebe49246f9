//===- ElementTest.cpp - Host conversions of bundle element types ---------===//
//
// packElements / unpackElements turn doubles into the bytes a bundle's
// argument holds and back. The 16-bit types must round as the GPU's
// cvt.rn does (to nearest, ties to even), or host-side checks of bf16 and
// f16 kernels would compare against differently rounded inputs.
// relativeL2Packed compares packed buffers as relativeL2 compares their
// unpacked Tensors.
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"
#include "mamba3/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

using namespace mamba3;

namespace {

std::vector<double> roundTrip(const std::vector<double> &values,
                              const std::string &dtype) {
  std::vector<unsigned char> bytes(values.size() * 4);
  packElements(values, dtype, bytes.data());
  std::vector<double> back(values.size());
  unpackElements(bytes.data(), dtype, back);
  return back;
}

uint16_t f16Bits(double x) {
  unsigned char bytes[2];
  packElements({x}, "f16", bytes);
  uint16_t h;
  std::memcpy(&h, bytes, 2);
  return h;
}

TEST(ElementTest, F16ExactValuesSurvive) {
  // Normal, subnormal (2^-24 is the smallest), the largest finite, zeros.
  const std::vector<double> exact = {0.0,    -0.0,       1.0,     -2.5,
                                     65504.0, 6.103515625e-05, 5.9604644775390625e-08,
                                     1.0009765625, 1025.0};
  EXPECT_EQ(roundTrip(exact, "f16"), exact);
  EXPECT_EQ(f16Bits(1.0), 0x3c00);
  EXPECT_EQ(f16Bits(-2.0), 0xc000);
  EXPECT_EQ(f16Bits(65504.0), 0x7bff);
  EXPECT_EQ(f16Bits(5.9604644775390625e-08), 0x0001);
}

TEST(ElementTest, F16RoundsToNearestEven) {
  // Halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
  EXPECT_EQ(f16Bits(1.0 + std::ldexp(1.0, -11)), 0x3c00);
  // Halfway between 1 + 2^-10 and 1 + 2^-9: up to the even one.
  EXPECT_EQ(f16Bits(1.0 + 3 * std::ldexp(1.0, -11)), 0x3c02);
  // Just above the tie: up.
  EXPECT_EQ(f16Bits(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -20)), 0x3c01);
  // A carry out of the mantissa moves to the next binade.
  EXPECT_EQ(f16Bits(2.0 - std::ldexp(1.0, -12)), 0x4000);
  // Overflow: 65520 rounds past the largest finite value.
  EXPECT_EQ(f16Bits(65519.0), 0x7bff);
  EXPECT_EQ(f16Bits(65520.0), 0x7c00);
  EXPECT_EQ(f16Bits(-1e9), 0xfc00);
  // Subnormals: units of 2^-24, ties to even.
  EXPECT_EQ(f16Bits(1.5 * std::ldexp(1.0, -24)), 0x0002);
  EXPECT_EQ(f16Bits(2.5 * std::ldexp(1.0, -24)), 0x0002);
  EXPECT_EQ(f16Bits(0.25 * std::ldexp(1.0, -24)), 0x0000);
  EXPECT_TRUE(std::isnan(roundTrip({std::nan("")}, "f16")[0]));
  EXPECT_TRUE(std::isinf(roundTrip({INFINITY}, "f16")[0]));
}

TEST(ElementTest, F16RelativeErrorOnRandomValues) {
  // Nearest rounding: at most half an ulp, 2^-11 relative, in the normal
  // range.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(1.0, 2.0);
  std::uniform_int_distribution<int> exponent(-14, 15);
  std::vector<double> values;
  for (int i = 0; i < 10000; ++i)
    values.push_back((i % 2 ? -1 : 1) *
                     std::ldexp(mantissa(rng), exponent(rng)));
  std::vector<double> back = roundTrip(values, "f16");
  for (size_t i = 0; i < values.size(); ++i)
    ASSERT_LE(std::abs(back[i] - values[i]),
              std::ldexp(std::abs(values[i]), -11) * (1 + 1e-12))
        << values[i];
}

TEST(ElementTest, Bf16AndF32) {
  EXPECT_EQ(roundTrip({1.0, -3.0, 0.5}, "bf16"),
            (std::vector<double>{1.0, -3.0, 0.5}));
  // bf16 keeps 8 bits: 1 + 2^-8 ties to 1.
  EXPECT_EQ(roundTrip({1.0 + std::ldexp(1.0, -8)}, "bf16")[0], 1.0);
  EXPECT_EQ(roundTrip({0.1}, "f32")[0], static_cast<double>(0.1f));
}

TEST(ElementTest, RelativeL2PackedMatchesTheUnpackedComparison) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  // Sizes below and above the one-thread slice (2^16 elements).
  for (size_t n : {size_t(1), size_t(1000), size_t(300000)})
    for (const char *dtype : {"bf16", "f16", "f32"}) {
      std::vector<double> ref(n), got(n);
      for (size_t i = 0; i < n; ++i) {
        ref[i] = normal(rng);
        got[i] = ref[i] + 0.01 * normal(rng);
      }
      const size_t width = std::string(dtype) == "f32" ? 4 : 2;
      std::vector<unsigned char> refBytes(n * width), gotBytes(n * width);
      packElements(ref, dtype, refBytes.data());
      packElements(got, dtype, gotBytes.data());
      Tensor refT({static_cast<int64_t>(n)}), gotT({static_cast<int64_t>(n)});
      unpackElements(refBytes.data(), dtype, refT.data);
      unpackElements(gotBytes.data(), dtype, gotT.data);
      const double want = relativeL2(gotT, refT);
      const double have =
          relativeL2Packed(gotBytes.data(), refBytes.data(), n, dtype);
      EXPECT_NEAR(have, want, 1e-12 * want) << dtype << " n=" << n;
      EXPECT_EQ(relativeL2Packed(refBytes.data(), refBytes.data(), n, dtype),
                0.0);
    }
  // A NaN in either buffer, or values against an all-zero reference, fail
  // every tolerance; zeros against zeros agree.
  std::vector<unsigned char> zeros(4 * 8, 0), nan(4 * 8, 0), one(4 * 8, 0);
  packElements({0, 0, std::nan(""), 0, 0, 0, 0, 0}, "f32", nan.data());
  packElements({0, 0, 0, 0, 0, 0, 0, 1}, "f32", one.data());
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(relativeL2Packed(nan.data(), one.data(), 8, "f32"), inf);
  EXPECT_EQ(relativeL2Packed(one.data(), nan.data(), 8, "f32"), inf);
  EXPECT_EQ(relativeL2Packed(one.data(), zeros.data(), 8, "f32"), inf);
  EXPECT_EQ(relativeL2Packed(zeros.data(), zeros.data(), 8, "f32"), 0.0);
}

TEST(ElementTest, RelativeL2PackedOfWrappedAngles) {
  // The tuner compares a wrapped angle state modulo 2 pi, as mamba3-run
  // does (Tensor.h): an fp32 sum just below 2 pi against one just above 0.
  std::vector<double> ref = {0.5, 3.0, 1e-3, 6.0}, got = ref;
  got[2] = 2 * M_PI - 1e-3;
  std::vector<unsigned char> refBytes(4 * 4), gotBytes(4 * 4);
  packElements(ref, "f32", refBytes.data());
  packElements(got, "f32", gotBytes.data());
  Tensor refT({4}), gotT({4});
  unpackElements(refBytes.data(), "f32", refT.data);
  unpackElements(gotBytes.data(), "f32", gotT.data);
  const double want = relativeL2(gotT, refT, 2 * M_PI);
  EXPECT_LT(want, 1e-3);
  EXPECT_NEAR(relativeL2Packed(gotBytes.data(), refBytes.data(), 4, "f32",
                               2 * M_PI),
              want, 1e-12);
  EXPECT_GT(relativeL2Packed(gotBytes.data(), refBytes.data(), 4, "f32"), 0.5);
}

} // namespace
