//===- ReferenceTest.cpp - The float64 reference on random inputs ---------===//
//
// The chunked form and the decode step against the recurrence, the half-split
// pairing as a permutation of the adjacent one, the Euler rule against an
// independent Mamba-2 recurrence, and the checks around them.
//
//===----------------------------------------------------------------------===//

#include "mamba3/Reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace mamba3;

namespace {

constexpr double kTolerance = 1e-12;
constexpr double kPi = 3.14159265358979323846;

void expectClose(const LayerOutputs &got, const LayerOutputs &ref,
                 const std::string &what, double tolerance = kTolerance) {
  const std::pair<const char *, std::pair<const Tensor *, const Tensor *>>
      outputs[] = {{"out", {&got.out, &ref.out}},
                   {"angle", {&got.angle, &ref.angle}},
                   {"ssm", {&got.ssm, &ref.ssm}},
                   {"k", {&got.k, &ref.k}},
                   {"v", {&got.v, &ref.v}}};
  for (const auto &[name, pair] : outputs) {
    EXPECT_FALSE(pair.second->empty()) << what << ": no reference " << name;
    EXPECT_LT(relativeL2(*pair.first, *pair.second), tolerance)
        << what << ": output " << name << " (shape "
        << pair.first->shapeString() << ", reference "
        << pair.second->shapeString() << ")";
  }
}

LayerConfig siso(int64_t b, int64_t L, int64_t H, int64_t G, int64_t N,
                 int64_t P, int64_t S) {
  LayerConfig c;
  c.batch = b, c.seqlen = L, c.heads = H, c.groups = G;
  c.state = N, c.headdim = P, c.angles = S;
  return c;
}

LayerConfig mimo(LayerConfig c, int64_t R) {
  c.mimo = true;
  c.rank = R;
  c.wrapAngle = false;
  return c;
}

template <typename F> LayerConfig with(LayerConfig c, F f) {
  f(c);
  return c;
}

struct NamedConfig {
  const char *name;
  LayerConfig cfg;
};

void PrintTo(const NamedConfig &c, std::ostream *os) { *os << c.name; }

std::string configName(const ::testing::TestParamInfo<NamedConfig> &info) {
  return info.param.name;
}

// Shapes of every kind the kernels meet: groups, non-power-of-two N and P,
// L = 1, L not a multiple of any chunk, partial and full rotation, no
// rotation, all optional operands on and off, MIMO ranks 1 to 4.
std::vector<NamedConfig> configs() {
  auto init = [](LayerConfig &c) { c.hasInitialState = true; };
  auto noDZ = [](LayerConfig &c) { c.hasD = c.hasZ = false; };
  return {
      {"siso_groups", siso(2, 33, 4, 2, 16, 8, 4)},
      {"siso_one_token", with(siso(3, 1, 2, 1, 16, 8, 8), init)},
      {"siso_n96_p48_init", with(siso(1, 130, 2, 1, 96, 48, 24), init)},
      {"siso_no_d_no_z_init",
       with(with(siso(2, 130, 4, 4, 32, 16, 16), init), noDZ)},
      {"siso_no_z", with(siso(1, 33, 2, 2, 24, 12, 6),
                         [](LayerConfig &c) { c.hasZ = false; })},
      {"siso_no_rotation_no_wrap",
       with(siso(1, 33, 2, 1, 16, 8, 0),
            [](LayerConfig &c) { c.wrapAngle = false; })},
      {"siso_half_split_euler", with(siso(2, 33, 2, 1, 16, 8, 4),
                                     [](LayerConfig &c) {
                                       c.pairing = RotaryPairing::HalfSplit;
                                       c.rule = Discretization::Euler;
                                       c.hasInitialState = true;
                                     })},
      {"mimo_r1", with(mimo(siso(2, 33, 2, 1, 16, 8, 4), 1), init)},
      {"mimo_r2_groups", mimo(siso(1, 130, 4, 2, 32, 16, 8), 2)},
      {"mimo_r3_n96_p48_init",
       with(mimo(siso(1, 33, 2, 1, 96, 48, 24), 3), init)},
      {"mimo_r4_no_d_no_z",
       with(with(mimo(siso(2, 33, 2, 2, 16, 8, 8), 4), init), noDZ)},
      {"mimo_r4_one_token", with(mimo(siso(2, 1, 4, 1, 32, 16, 8), 4), init)},
      {"mimo_r2_half_split_wrap", with(mimo(siso(1, 33, 2, 1, 16, 8, 4), 2),
                                       [](LayerConfig &c) {
                                         c.pairing = RotaryPairing::HalfSplit;
                                         c.wrapAngle = true;
                                       })},
  };
}

/// `t` with index `index` of axis `axis` taken (the axis removed).
Tensor sliceAxis(const Tensor &t, size_t axis, int64_t index) {
  if (t.empty())
    return Tensor();
  std::vector<int64_t> shape = t.shape;
  int64_t outer = 1, inner = 1, size = shape[axis];
  for (size_t i = 0; i < axis; ++i)
    outer *= shape[i];
  for (size_t i = axis + 1; i < shape.size(); ++i)
    inner *= shape[i];
  shape.erase(shape.begin() + axis);
  Tensor r(shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      r.data[o * inner + i] = t.data[(o * size + index) * inner + i];
  return r;
}

/// result[..., j] = t[..., perm[j]] along the last axis.
Tensor permuteLast(const Tensor &t, const std::vector<int64_t> &perm) {
  if (t.empty())
    return t;
  Tensor r = t;
  int64_t n = t.shape.back();
  for (int64_t row = 0; row < t.numel() / n; ++row)
    for (int64_t j = 0; j < n; ++j)
      r.data[row * n + j] = t.data[row * n + perm[j]];
  return r;
}

} // namespace

//===----------------------------------------------------------------------===//
// Chunked form and decode step against the recurrence
//===----------------------------------------------------------------------===//

class ReferenceConfigTest : public ::testing::TestWithParam<NamedConfig> {};

TEST_P(ReferenceConfigTest, ChunkedMatchesRecurrence) {
  const LayerConfig &cfg = GetParam().cfg;
  ASSERT_EQ(cfg.validate(), "");
  LayerInputs in = randomInputs(cfg, /*seed=*/42);
  ASSERT_EQ(checkInputs(cfg, in), "");
  LayerOutputs recurrent = referenceScan(cfg, in);
  for (int64_t chunk : {int64_t(1), int64_t(7), int64_t(64), cfg.seqlen + 3}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    expectClose(referenceScanChunked(cfg, in, chunk), recurrent,
                std::string(GetParam().name) + ", chunk " +
                    std::to_string(chunk));
  }
}

TEST_P(ReferenceConfigTest, StepsMatchRecurrence) {
  const LayerConfig &cfg = GetParam().cfg;
  LayerInputs in = randomInputs(cfg, /*seed=*/7);
  LayerOutputs scan = referenceScan(cfg, in);
  const int64_t L = cfg.seqlen;

  // Token t of the prefill inputs, in decode layouts, starting from the
  // states the previous step returned.
  LayerOutputs state;
  state.angle = in.angle0, state.ssm = in.ssm0, state.k = in.k0,
  state.v = in.v0;
  Tensor out(scan.out.shape);
  const int64_t tokenSize = cfg.heads * cfg.headdim;
  for (int64_t t = 0; t < L; ++t) {
    LayerInputs step = in;
    for (Tensor *x : {&step.Q, &step.K, &step.V, &step.Z, &step.Angles})
      *x = sliceAxis(*x, 1, t);
    for (Tensor *x : {&step.ADT, &step.DT, &step.Trap})
      *x = sliceAxis(*x, 2, t);
    step.angle0 = state.angle, step.ssm0 = state.ssm, step.k0 = state.k,
    step.v0 = state.v;
    ASSERT_EQ(checkInputs(cfg, step, /*decode=*/true), "") << "token " << t;
    state = referenceStep(cfg, step);
    ASSERT_EQ(state.out.shape,
              (std::vector<int64_t>{cfg.batch, cfg.heads, cfg.headdim}));
    for (int64_t b = 0; b < cfg.batch; ++b)
      std::copy_n(&state.out.data[b * tokenSize], tokenSize,
                  &out.data[(b * L + t) * tokenSize]);
  }
  state.out = out;
  expectClose(state, scan, std::string(GetParam().name) + ", steps");
}

INSTANTIATE_TEST_SUITE_P(Configs, ReferenceConfigTest,
                         ::testing::ValuesIn(configs()), configName);

TEST(Reference, StepStartsFromZeroStates) {
  LayerConfig cfg = siso(2, 1, 2, 1, 8, 4, 2);
  cfg.hasInitialState = true;
  LayerInputs in = randomInputs(cfg, 3, /*decode=*/true);
  for (Tensor *t : {&in.angle0, &in.ssm0, &in.k0, &in.v0})
    *t = Tensor(t->shape, 0.0);
  LayerOutputs withZeros = referenceStep(cfg, in);
  in.angle0 = in.ssm0 = in.k0 = in.v0 = Tensor();
  expectClose(referenceStep(cfg, in), withZeros, "empty states", 1e-300);
}

//===----------------------------------------------------------------------===//
// Rotary pairing
//===----------------------------------------------------------------------===//

// Half-split pairs (i, i + N/2) are adjacent pairs (2i, 2i + 1) after a fixed
// permutation of the N axis of Q, K and their biases: the outputs are equal
// and the ssm and k states come out permuted.
// Angles (b, L, S) shared by all heads give the outputs of (b, L, H, S)
// angles that repeat them for every head: prefill (SISO and MIMO) and a step.
TEST(Reference, BroadcastAnglesAreRepeatedPerHead) {
  for (bool isMimo : {false, true})
    for (bool step : {false, true}) {
      SCOPED_TRACE(std::string(isMimo ? "mimo" : "siso") +
                   (step ? " step" : " scan"));
      LayerConfig shared = siso(2, step ? 1 : 19, 4, 2, 16, 8, 5);
      shared.hasInitialState = true;
      shared.broadcastAngles = true;
      if (isMimo)
        shared = mimo(shared, 2);
      LayerConfig perHead = shared;
      perHead.broadcastAngles = false;
      LayerInputs in = randomInputs(shared, 5, step);
      ASSERT_EQ(in.Angles.shape.size(), step ? 2u : 3u);
      LayerInputs repeated = in;
      const int64_t b = shared.batch, L = step ? 1 : shared.seqlen,
                    H = shared.heads, S = shared.angles;
      repeated.Angles = Tensor(step ? std::vector<int64_t>{b, H, S}
                                    : std::vector<int64_t>{b, L, H, S});
      for (int64_t i = 0; i < b * L; ++i)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t s = 0; s < S; ++s)
            repeated.Angles.data[(i * H + h) * S + s] = in.Angles.data[i * S + s];
      LayerOutputs got = step ? referenceStep(shared, in)
                              : referenceScan(shared, in);
      LayerOutputs want = step ? referenceStep(perHead, repeated)
                               : referenceScan(perHead, repeated);
      expectClose(got, want, "broadcast angles");
      if (!step)
        expectClose(referenceScanChunked(shared, in, 8), want,
                    "broadcast angles, chunked");
    }
}

// A bf16 state: bf16-valued random initial states, the same recurrence, and
// the final state rounded to bf16; every other output is unchanged.
TEST(Reference, Bf16StateRoundsTheFinalState) {
  LayerConfig bf16 = siso(2, 9, 4, 2, 16, 8, 4);
  bf16.hasInitialState = true;
  bf16.bf16State = true;
  LayerConfig fp32 = bf16;
  fp32.bf16State = false;
  LayerInputs in = randomInputs(bf16, 3);
  for (double x : in.ssm0.data) {
    float f = static_cast<float>(x);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    EXPECT_EQ(bits & 0xffffu, 0u) << x << " is not a bf16 value";
  }
  LayerOutputs got = referenceScan(bf16, in), full = referenceScan(fp32, in);
  EXPECT_EQ(relativeL2(got.out, full.out), 0.0);
  EXPECT_EQ(relativeL2(got.k, full.k), 0.0);
  double changed = relativeL2(got.ssm, full.ssm);
  EXPECT_GT(changed, 0.0);
  EXPECT_LT(changed, 4e-3); // bf16 has 8 significant bits
}

TEST(Reference, HalfSplitIsPermutedAdjacent) {
  for (bool isMimo : {false, true}) {
    for (auto [N, S] : {std::pair<int64_t, int64_t>{16, 4}, {12, 6}, {18, 3}}) {
      SCOPED_TRACE((isMimo ? "mimo N=" : "siso N=") + std::to_string(N) +
                   " S=" + std::to_string(S));
      LayerConfig adjacent = siso(2, 21, 4, 2, N, 8, S);
      adjacent.hasInitialState = true;
      if (isMimo)
        adjacent = mimo(adjacent, 3);
      LayerConfig half = adjacent;
      half.pairing = RotaryPairing::HalfSplit;

      // perm[j] = the adjacent-pairing index that half-split index j holds.
      std::vector<int64_t> perm(N, -1);
      for (int64_t i = 0; i < S; ++i) {
        perm[i] = 2 * i;
        perm[i + N / 2] = 2 * i + 1;
      }
      int64_t rest = 2 * S;
      for (int64_t j = 0; j < N; ++j)
        if (perm[j] < 0)
          perm[j] = rest++;
      ASSERT_EQ(rest, N);

      LayerInputs in = randomInputs(adjacent, 11);
      LayerInputs permuted = in;
      for (Tensor *t : {&permuted.Q, &permuted.K, &permuted.QBias,
                        &permuted.KBias, &permuted.ssm0, &permuted.k0})
        *t = permuteLast(*t, perm);

      LayerOutputs a = referenceScan(adjacent, in);
      LayerOutputs h = referenceScan(half, permuted);
      a.ssm = permuteLast(a.ssm, perm);
      a.k = permuteLast(a.k, perm);
      expectClose(h, a, "half split");
      expectClose(referenceScanChunked(half, permuted, 8), a,
                  "half split, chunked");
    }
  }
}

//===----------------------------------------------------------------------===//
// Euler rule
//===----------------------------------------------------------------------===//

namespace {

/// Mamba-2's exponential-Euler recurrence H = exp(ADT) H + DT v k^T with the
/// Mamba-3 front end (angles, biases, adjacent rotation) and back end (D, the
/// gate, MIMO projections), written independently of the library with
/// Tensor::at on the API layouts.
LayerOutputs mamba2Recurrence(const LayerConfig &c, const LayerInputs &in) {
  const int64_t B = c.batch, L = c.seqlen, H = c.heads, N = c.state,
                P = c.headdim, S = c.angles, R = c.rank;
  const int64_t headsPerGroup = H / c.groups;
  LayerOutputs o;
  o.out = Tensor({B, L, H, P});
  o.angle = Tensor({B, H, S});
  o.ssm = Tensor({B, H, P, N});
  o.k = c.mimo ? Tensor({B, H, R, N}) : Tensor({B, H, N});
  o.v = c.mimo ? Tensor({B, H, R, P}) : Tensor({B, H, P});
  auto qk = [&](const Tensor &x, int64_t b, int64_t t, int64_t r, int64_t g,
                int64_t n) {
    return c.mimo ? x.at({b, t, r, g, n}) : x.at({b, t, g, n});
  };
  auto bias = [&](const Tensor &x, int64_t h, int64_t r, int64_t n) {
    return c.mimo ? x.at({h, r, n}) : x.at({h, n});
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / headsPerGroup;
      std::vector<double> theta(S, 0.0);
      std::vector<std::vector<double>> state(P, std::vector<double>(N, 0.0));
      std::vector<std::vector<double>> k(R), v(R);
      for (int64_t t = 0; t < L; ++t) {
        double dt = in.DT.at({b, h, t});
        for (int64_t s = 0; s < S; ++s) {
          theta[s] += kPi * std::tanh(in.Angles.at({b, t, h, s})) * dt;
          if (c.wrapAngle)
            theta[s] = std::fmod(theta[s], 2 * kPi) +
                       (std::fmod(theta[s], 2 * kPi) < 0 ? 2 * kPi : 0);
        }
        std::vector<std::vector<double>> q(R);
        for (int64_t r = 0; r < R; ++r) {
          q[r].resize(N);
          k[r].resize(N);
          v[r].resize(P);
          for (int64_t n = 0; n < N; ++n) {
            q[r][n] = qk(in.Q, b, t, r, g, n) + bias(in.QBias, h, r, n);
            k[r][n] = qk(in.K, b, t, r, g, n) + bias(in.KBias, h, r, n);
          }
          for (int64_t s = 0; s < S; ++s) {
            double co = std::cos(theta[s]), si = std::sin(theta[s]);
            for (auto *x : {&q[r], &k[r]}) {
              double x0 = (*x)[2 * s], x1 = (*x)[2 * s + 1];
              (*x)[2 * s] = co * x0 - si * x1;
              (*x)[2 * s + 1] = si * x0 + co * x1;
            }
          }
          for (int64_t p = 0; p < P; ++p)
            v[r][p] =
                in.V.at({b, t, h, p}) * (c.mimo ? in.MimoV.at({h, r, p}) : 1.0);
        }
        double decay = std::exp(in.ADT.at({b, h, t}));
        for (int64_t p = 0; p < P; ++p)
          for (int64_t n = 0; n < N; ++n) {
            double sum = 0;
            for (int64_t r = 0; r < R; ++r)
              sum += v[r][p] * k[r][n];
            state[p][n] = decay * state[p][n] + dt * sum;
          }
        for (int64_t p = 0; p < P; ++p) {
          double out = 0;
          for (int64_t r = 0; r < R; ++r) {
            double y = 0;
            for (int64_t n = 0; n < N; ++n)
              y += state[p][n] * q[r][n];
            if (c.hasD)
              y += in.D.at({h}) * v[r][p];
            if (c.hasZ) {
              double z = in.Z.at({b, t, h, p}) *
                         (c.mimo ? in.MimoZ.at({h, r, p}) : 1.0);
              y *= z / (1 + std::exp(-z));
            }
            out += y * (c.mimo ? in.MimoO.at({h, r, p}) : 1.0);
          }
          o.out.at({b, t, h, p}) = out;
        }
      }
      for (int64_t s = 0; s < S; ++s)
        o.angle.at({b, h, s}) = theta[s];
      for (int64_t p = 0; p < P; ++p)
        for (int64_t n = 0; n < N; ++n)
          o.ssm.at({b, h, p, n}) = state[p][n];
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t n = 0; n < N; ++n)
          (c.mimo ? o.k.at({b, h, r, n}) : o.k.at({b, h, n})) = k[r][n];
        for (int64_t p = 0; p < P; ++p)
          (c.mimo ? o.v.at({b, h, r, p}) : o.v.at({b, h, p})) = v[r][p];
      }
    }
  }
  return o;
}

} // namespace

TEST(Reference, EulerIsMamba2) {
  for (bool isMimo : {false, true}) {
    SCOPED_TRACE(isMimo ? "mimo" : "siso");
    LayerConfig cfg = siso(2, 19, 4, 2, 12, 6, 3);
    if (isMimo)
      cfg = mimo(cfg, 2);
    cfg.rule = Discretization::Euler;
    LayerInputs in = randomInputs(cfg, 5);
    LayerOutputs ref = mamba2Recurrence(cfg, in);
    expectClose(referenceScan(cfg, in), ref, "Euler recurrence");
    expectClose(referenceScanChunked(cfg, in, 4), ref, "Euler chunked");

    // Euler does not read Trap; the trapezoid with lambda = sigmoid(40),
    // which is 1 in double precision, is the same rule.
    LayerInputs noTrap = in;
    noTrap.Trap = Tensor();
    expectClose(referenceScan(cfg, noTrap), ref, "Euler without Trap");
    LayerConfig trapezoid = cfg;
    trapezoid.rule = Discretization::Trapezoid;
    LayerInputs saturated = in;
    for (double &x : saturated.Trap.data)
      x = 40;
    expectClose(referenceScan(trapezoid, saturated), ref,
                "trapezoid with lambda = 1");
    // Any other lambda differs.
    EXPECT_GT(relativeL2(referenceScan(trapezoid, in).out, ref.out), 1e-3);
  }
}

//===----------------------------------------------------------------------===//
// Random inputs
//===----------------------------------------------------------------------===//

namespace {

bool isBf16(double x) {
  float f = static_cast<float>(x);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<double>(f) == x && (bits & 0xffffu) == 0;
}

bool isFloat(double x) {
  return static_cast<double>(static_cast<float>(x)) == x;
}

} // namespace

TEST(RandomInputs, DeterministicAndRealistic) {
  LayerConfig cfg = siso(2, 50, 4, 2, 16, 8, 4);
  cfg.hasInitialState = true;
  LayerInputs a = randomInputs(cfg, 1), b = randomInputs(cfg, 1),
              c = randomInputs(cfg, 2);
  EXPECT_EQ(a.Q.data, b.Q.data);
  EXPECT_EQ(a.ADT.data, b.ADT.data);
  EXPECT_EQ(a.ssm0.data, b.ssm0.data);
  EXPECT_NE(a.Q.data, c.Q.data);
  EXPECT_EQ(checkInputs(cfg, a), "");

  for (const Tensor *t : {&a.Q, &a.K, &a.V, &a.Z, &a.Trap, &a.QBias, &a.KBias})
    for (double x : t->data)
      ASSERT_TRUE(isBf16(x))
          << x << " in a tensor of shape " << t->shapeString();
  for (const Tensor *t :
       {&a.ADT, &a.DT, &a.Angles, &a.D, &a.angle0, &a.ssm0, &a.k0, &a.v0})
    for (double x : t->data)
      ASSERT_TRUE(isFloat(x)) << x;
  for (size_t i = 0; i < a.DT.data.size(); ++i) {
    EXPECT_GE(a.DT.data[i], 0.00999);
    EXPECT_LE(a.DT.data[i], 1.0);
    EXPECT_LT(a.ADT.data[i], 0.0);
  }
  for (double x : a.angle0.data) {
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 2 * kPi + 1e-6);
  }
  // N(0, 1) draws look like it.
  double sum = 0, sq = 0;
  for (double x : a.V.data)
    sum += x, sq += x * x;
  double n = static_cast<double>(a.V.data.size());
  EXPECT_NEAR(sum / n, 0.0, 0.1);
  EXPECT_NEAR(sq / n, 1.0, 0.15);
}

TEST(RandomInputs, LayoutsFollowTheConfig) {
  LayerConfig cfg = mimo(siso(2, 5, 4, 2, 16, 8, 4), 3);
  LayerInputs in = randomInputs(cfg, 1);
  EXPECT_EQ(in.Q.shape, (std::vector<int64_t>{2, 5, 3, 2, 16}));
  EXPECT_EQ(in.QBias.shape, (std::vector<int64_t>{4, 3, 16}));
  EXPECT_EQ(in.MimoZ.shape, (std::vector<int64_t>{4, 3, 8}));
  EXPECT_EQ(in.ADT.shape, (std::vector<int64_t>{2, 4, 5}));
  EXPECT_TRUE(in.ssm0.empty());
  for (double x : in.QBias.data)
    EXPECT_TRUE(isFloat(x));

  cfg.hasD = cfg.hasZ = false;
  cfg.hasInitialState = true;
  LayerInputs step = randomInputs(cfg, 1, /*decode=*/true);
  EXPECT_TRUE(step.D.empty());
  EXPECT_TRUE(step.Z.empty());
  EXPECT_TRUE(step.MimoZ.empty());
  EXPECT_EQ(step.Q.shape, (std::vector<int64_t>{2, 3, 2, 16}));
  EXPECT_EQ(step.V.shape, (std::vector<int64_t>{2, 4, 8}));
  EXPECT_EQ(step.ADT.shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(step.Angles.shape, (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(step.k0.shape, (std::vector<int64_t>{2, 4, 3, 16}));
  EXPECT_EQ(checkInputs(cfg, step, /*decode=*/true), "");
  EXPECT_NE(checkInputs(cfg, step, /*decode=*/false), "");

  EXPECT_TRUE(randomInputs(siso(1, 1, 3, 2, 8, 8, 2), 1).Q.empty())
      << "an invalid config gives no inputs";
}

//===----------------------------------------------------------------------===//
// Checks
//===----------------------------------------------------------------------===//

TEST(LayerConfig, Validate) {
  EXPECT_EQ(LayerConfig().validate(), "");
  EXPECT_EQ(siso(1, 1, 1, 1, 7, 1, 3).validate(), "") << "odd N, S = N/2";
  EXPECT_EQ(siso(1, 1, 1, 1, 8, 1, 0).validate(), "") << "no rotation";

  auto expectError = [](const LayerConfig &c, const std::string &field,
                        const std::string &limit) {
    std::string e = c.validate();
    EXPECT_NE(e.find(field), std::string::npos) << e;
    EXPECT_NE(e.find(limit), std::string::npos) << e;
  };
  expectError(siso(0, 1, 1, 1, 8, 8, 2), "batch", "at least 1");
  expectError(siso(1, 0, 1, 1, 8, 8, 2), "seqlen", "at least 1");
  expectError(siso(1, 1, 0, 1, 8, 8, 2), "heads", "at least 1");
  expectError(siso(1, 1, 1, 0, 8, 8, 2), "groups", "at least 1");
  expectError(siso(1, 1, 1, 1, 0, 8, 0), "state", "at least 1");
  expectError(siso(1, 1, 1, 1, 8, 0, 2), "headdim", "at least 1");
  expectError(siso(1, 1, 1, 1, 8, 8, -1), "angles", "at least 0");
  expectError(siso(1, 1, 6, 4, 8, 8, 2), "multiple of groups", "(4)");
  expectError(siso(1, 1, 1, 1, 8, 8, 5), "angles (S = 5)", "state / 2 (N = 8)");
  LayerConfig rank = siso(1, 1, 1, 1, 8, 8, 2);
  rank.rank = 2;
  expectError(rank, "rank (R = 2)", "SISO");
  rank.mimo = true;
  EXPECT_EQ(rank.validate(), "");
  rank.rank = 0;
  expectError(rank, "rank", "at least 1");
}

TEST(Reference, CheckInputsNamesTheOperand) {
  LayerConfig cfg = siso(1, 4, 2, 1, 8, 4, 2);
  LayerInputs in = randomInputs(cfg, 1);
  EXPECT_EQ(checkInputs(cfg, in), "");

  LayerInputs missing = in;
  missing.Trap = Tensor();
  std::string e = checkInputs(cfg, missing);
  EXPECT_NE(e.find("Trap is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("(1, 2, 4)"), std::string::npos) << e;

  LayerInputs wrong = in;
  wrong.K.shape = {1, 4, 8, 1};
  e = checkInputs(cfg, wrong);
  EXPECT_NE(e.find("K has shape (1, 4, 8, 1), expected (1, 4, 1, 8)"),
            std::string::npos)
      << e;

  LayerConfig noD = cfg;
  noD.hasD = false;
  e = checkInputs(noD, in);
  EXPECT_NE(e.find("D is given but cfg.hasD is false"), std::string::npos) << e;

  LayerInputs mimoOnSiso = in;
  mimoOnSiso.MimoO = Tensor({2, 1, 4});
  e = checkInputs(cfg, mimoOnSiso);
  EXPECT_NE(e.find("MIMO_O"), std::string::npos) << e;

  LayerInputs badState = in;
  badState.ssm0 = Tensor({1, 2, 8, 4});
  e = checkInputs(cfg, badState);
  EXPECT_NE(e.find("ssm0 has shape"), std::string::npos) << e;

  // The reference refuses what checkInputs refuses: empty outputs, so that
  // any comparison fails.
  LayerOutputs o = referenceScan(cfg, wrong);
  EXPECT_TRUE(o.out.empty() && o.ssm.empty());
  EXPECT_TRUE(referenceScanChunked(cfg, in, 0).out.empty());
  EXPECT_TRUE(referenceStep(cfg, in).out.empty()) << "prefill layouts";
  EXPECT_EQ(relativeL2(o.out, referenceScan(cfg, in).out),
            std::numeric_limits<double>::infinity());
}

TEST(Tensor, IndexAndShape) {
  Tensor t({2, 3, 4}, 1.5);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.index({1, 2, 3}), 23);
  EXPECT_EQ(t.index({1, 0, 2}), 14);
  t.at({1, 0, 2}) = 7;
  EXPECT_EQ(t.data[14], 7);
  EXPECT_EQ(t.shapeString(), "(2, 3, 4)");
  EXPECT_FALSE(t.empty());
  EXPECT_TRUE(Tensor().empty());
  EXPECT_EQ(Tensor().numel(), 0);
  EXPECT_EQ(Tensor().shapeString(), "()");
  EXPECT_EQ(Tensor({2, 0}).numel(), 0);
}

TEST(Tensor, RelativeL2) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor ref({2, 2});
  ref.data = {3, 0, 0, 4};
  Tensor got = ref;
  EXPECT_EQ(relativeL2(got, ref), 0);
  for (double &x : got.data)
    x *= 1.1;
  EXPECT_NEAR(relativeL2(got, ref), 0.1, 1e-15);

  Tensor nan = ref;
  nan.data[1] = std::nan("");
  EXPECT_EQ(relativeL2(nan, ref), inf);
  EXPECT_EQ(relativeL2(ref, nan), inf);
  Tensor infinite = ref;
  infinite.data[0] = inf;
  EXPECT_EQ(relativeL2(infinite, ref), inf);

  Tensor reshaped = ref;
  reshaped.shape = {4};
  EXPECT_EQ(relativeL2(reshaped, ref), inf) << "same data, other shape";
  EXPECT_EQ(relativeL2(Tensor(), ref), inf);
  EXPECT_EQ(relativeL2(ref, Tensor()), inf);

  EXPECT_EQ(relativeL2(Tensor({3}), Tensor({3})), 0) << "both zero";
  EXPECT_EQ(relativeL2(ref, Tensor({2, 2})), inf) << "zero reference";
  EXPECT_EQ(relativeL2(Tensor(), Tensor()), 0) << "both absent";
}

TEST(Reference, OutputPeriod) {
  // Only the angle state of a layer that wraps it is compared modulo 2 pi.
  LayerConfig cfg;
  cfg.wrapAngle = true;
  EXPECT_EQ(outputPeriod(cfg, "angle"), 2 * M_PI);
  for (const char *name : {"out", "ssm", "k", "v"})
    EXPECT_EQ(outputPeriod(cfg, name), 0) << name;
  cfg.wrapAngle = false;
  EXPECT_EQ(outputPeriod(cfg, "angle"), 0);
}

TEST(Tensor, RelativeL2OfWrappedAngles) {
  // One angle on each side of the wrap: 2 pi - 1e-4 against 1e-4 is an
  // error of 2e-4 as an angle, and of 2 pi as a number.
  const double twoPi = 2 * M_PI;
  Tensor ref({3});
  ref.data = {1.0, 2.0, 1e-4};
  Tensor got = ref;
  got.data[2] = twoPi - 1e-4;
  const double norm = std::sqrt(1.0 + 4.0 + 1e-8);
  EXPECT_NEAR(relativeL2(got, ref, twoPi), 2e-4 / norm, 1e-12);
  EXPECT_GT(relativeL2(got, ref), 1.0) << "without a period: 2 pi apart";
  // A true error is not hidden: pi apart stays pi apart.
  got.data[2] = 1e-4 + M_PI;
  EXPECT_NEAR(relativeL2(got, ref, twoPi), M_PI / norm, 1e-12);
  // Nor is a NaN or an infinity.
  got.data[2] = std::nan("");
  EXPECT_EQ(relativeL2(got, ref, twoPi),
            std::numeric_limits<double>::infinity());
  got.data[2] = std::numeric_limits<double>::infinity();
  EXPECT_EQ(relativeL2(got, ref, twoPi),
            std::numeric_limits<double>::infinity());
}

//===----------------------------------------------------------------------===//
// Variable-length batches
//===----------------------------------------------------------------------===//

// b sequences of equal length L packed into one row of b*L tokens
// (cu_seqlens = 0, L, 2L, ...) give the outputs of the batched layer: the
// recurrence restarts at every sequence and the states are per sequence.
TEST(Reference, VarlenOfEqualLengthsIsTheBatchedLayer) {
  for (bool isMimo : {false, true}) {
    SCOPED_TRACE(isMimo ? "mimo" : "siso");
    const int64_t b = 3, L = 7;
    LayerConfig batched = siso(b, L, 4, 2, 16, 8, 4);
    batched.hasInitialState = true;
    if (isMimo)
      batched = mimo(batched, 2);
    LayerInputs in = randomInputs(batched, 11);
    LayerConfig packed = batched;
    packed.varlen = true;
    packed.seqlen = b * L;
    LayerInputs pin = in;
    // (b, L, ...) is (1, b*L, ...) in row-major order; (b, H, L) is not.
    for (Tensor *t : {&pin.Q, &pin.K, &pin.V, &pin.Z, &pin.Angles}) {
      t->shape[1] *= t->shape[0];
      t->shape[0] = 1;
    }
    for (Tensor *t : {&pin.ADT, &pin.DT, &pin.Trap}) {
      const int64_t H = t->shape[1];
      Tensor row({1, H, b * L});
      for (int64_t i = 0; i < b; ++i)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t l = 0; l < L; ++l)
            row.data[h * b * L + i * L + l] = t->data[(i * H + h) * L + l];
      *t = row;
    }
    pin.CuSeqlens = Tensor({b + 1});
    for (int64_t i = 0; i <= b; ++i)
      pin.CuSeqlens.data[i] = static_cast<double>(i * L);
    ASSERT_EQ(checkInputs(packed, pin), "");
    LayerOutputs want = referenceScan(batched, in);
    want.out.shape = {1, b * L, batched.heads, batched.headdim};
    expectClose(referenceScan(packed, pin), want, "varlen");
    expectClose(referenceScanChunked(packed, pin, 4), want, "varlen, chunked");
  }
}

// Random lengths: the first sequence is one token, all are at least one,
// they add up to L; the chunked form agrees with the recurrence.
TEST(Reference, VarlenRandomLengths) {
  LayerConfig cfg = siso(5, 40, 2, 1, 16, 8, 4);
  cfg.varlen = true;
  cfg.hasInitialState = true;
  LayerInputs in = randomInputs(cfg, 2);
  ASSERT_EQ(in.CuSeqlens.shape, std::vector<int64_t>{6});
  EXPECT_EQ(in.CuSeqlens.data[0], 0);
  EXPECT_EQ(in.CuSeqlens.data[1], 1);
  EXPECT_EQ(in.CuSeqlens.data[5], 40);
  EXPECT_EQ(in.Q.shape[0], 1);
  EXPECT_EQ(in.ssm0.shape[0], 5);
  ASSERT_EQ(checkInputs(cfg, in), "");
  LayerOutputs tokens = referenceScan(cfg, in);
  EXPECT_EQ(tokens.ssm.shape[0], 5);
  expectClose(referenceScanChunked(cfg, in, 3), tokens, "chunk 3");
}

TEST(Reference, VarlenOffsetsAreChecked) {
  LayerConfig cfg = siso(3, 10, 2, 1, 16, 8, 4);
  cfg.varlen = true;
  LayerInputs in = randomInputs(cfg, 2);
  auto offsets = [&](std::vector<double> cu) {
    in.CuSeqlens = Tensor({static_cast<int64_t>(cu.size())});
    in.CuSeqlens.data = cu;
    return checkInputs(cfg, in);
  };
  EXPECT_EQ(offsets({0, 4, 5, 10}), "");
  EXPECT_EQ(offsets({1, 4, 5, 10}), "cu_seqlens[0] must be 0, got 1");
  EXPECT_EQ(offsets({0, 4, 4, 10}),
            "cu_seqlens must increase strictly (every sequence has at least "
            "one token), but cu_seqlens[2] = 4 after 4");
  EXPECT_EQ(offsets({0, 4, 5, 9}),
            "cu_seqlens ends at 9, but the packed sequence has seqlen = 10 "
            "tokens");
  EXPECT_EQ(offsets({0, 4.5, 5, 10}),
            "cu_seqlens[1] = 4.500000 is not a non-negative int32");
  EXPECT_EQ(offsets({0, 5, 10}),
            "input cu_seqlens has shape (3), expected (4)");
  EXPECT_TRUE(referenceScan(cfg, in).out.empty());
  LayerConfig tooShort = cfg;
  tooShort.seqlen = 2;
  EXPECT_EQ(tooShort.validate(),
            "a varlen batch of 3 sequences needs at least as many tokens, got "
            "seqlen = 2");

  // The host-size bound counts a varlen batch's one row of packed tokens:
  // 8 sequences in 32768 tokens (V: 32768 x 32 x 64 elements) fit, the same
  // sizes as 8 rows do not.
  LayerConfig packed = siso(8, 32768, 32, 1, 128, 64, 16);
  packed.varlen = true;
  EXPECT_EQ(packed.validate(), "");
  packed.varlen = false;
  EXPECT_NE(packed.validate().find("more than the host runtime's limit"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Per-head RMSNorm
//===----------------------------------------------------------------------===//

// y is linear in v (and in the initial states), and the RMSNorm divides
// that scale out: multiplying V and the initial ssm/v states by c leaves
// `out` unchanged up to eps (1e-30 here), while without the norm `out`
// scales by c (the gate does not depend on v). The same holds for MIMO and
// for a step.
TEST(Reference, RmsNormDividesOutTheScaleOfV) {
  for (bool isMimo : {false, true})
    for (bool step : {false, true}) {
      SCOPED_TRACE(std::string(isMimo ? "mimo" : "siso") + (step ? " step" : ""));
      LayerConfig cfg = siso(2, step ? 1 : 13, 4, 2, 16, 8, 4);
      cfg.hasInitialState = true;
      cfg.rmsNorm = true;
      cfg.normEps = 1e-30;
      if (isMimo)
        cfg = mimo(cfg, 2);
      LayerInputs in = randomInputs(cfg, 21, step);
      ASSERT_EQ(in.NormWeight.shape, (std::vector<int64_t>{4, 8}));
      const double c = 3.5;
      LayerInputs scaled = in;
      for (Tensor *t : {&scaled.V, &scaled.ssm0, &scaled.v0})
        for (double &x : t->data)
          x *= c;
      auto run = [&](const LayerConfig &config, const LayerInputs &inputs) {
        return step ? referenceStep(config, inputs)
                    : referenceScan(config, inputs);
      };
      EXPECT_LT(relativeL2(run(cfg, scaled).out, run(cfg, in).out), 1e-12);
      LayerConfig plain = cfg;
      plain.rmsNorm = false;
      LayerInputs plainIn = in, plainScaled = scaled;
      plainIn.NormWeight = plainScaled.NormWeight = Tensor();
      Tensor grown = run(plain, plainIn).out;
      for (double &x : grown.data)
        x *= c;
      EXPECT_LT(relativeL2(run(plain, plainScaled).out, grown), 1e-12);
      if (!step)
        EXPECT_LT(relativeL2(referenceScanChunked(cfg, in, 4).out,
                             referenceScan(cfg, in).out),
                  1e-12);
    }
}
