//===- Reference.cpp - Float64 reference of the Mamba-3 layer core --------===//
//
// Two independent evaluations of ../shared/spec/mamba3-core.md: the token by
// token recurrence (the definition) and the chunked form that prefill kernels
// compute. Both share the per-token front end (angles, bias and rotation,
// MIMO up-projections, the gates) and the output epilogue (D skip, SiLU gate,
// MIMO down-projection); they differ in how the state space is accumulated,
// which is what the chunked kernels reorganize.
//
// Internally a SISO layer is a rank-1 layer: its row-major layouts are those of
// the MIMO layouts with the R axis (of size 1) dropped, so the same flat
// offsets serve both.
//
//===----------------------------------------------------------------------===//

#include "mamba3/Reference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

using namespace mamba3;

namespace {

constexpr double kPi = 3.14159265358979323846;

//===----------------------------------------------------------------------===//
// Operand shapes
//===----------------------------------------------------------------------===//

enum class Presence { Required, Optional, Absent };

struct OperandSpec {
  const char *name;
  Tensor LayerInputs::*member;
  std::vector<int64_t> shape;
  Presence presence;
};

/// Every operand of LayerInputs with the shape `cfg` gives it and whether it
/// must, may or must not be given. Initial states are always optional to the
/// reference (empty ones are zeros); cfg.hasInitialState only tells
/// randomInputs to draw them.
std::vector<OperandSpec> operandSpecs(const LayerConfig &cfg, bool decode) {
  const int64_t b = cfg.batch, L = cfg.seqlen, H = cfg.heads, G = cfg.groups,
                N = cfg.state, P = cfg.headdim, S = cfg.angles, R = cfg.rank;
  // Token tensors of a varlen layer pack every sequence into batch row 0.
  const int64_t bd = cfg.varlen ? 1 : b;
  // Prefill layouts carry L where the comment in Reference.h puts it; decode
  // layouts drop it.
  auto withL = [&](std::vector<int64_t> shape, size_t at) {
    if (!decode)
      shape.insert(shape.begin() + at, L);
    return shape;
  };
  std::vector<int64_t> qk = cfg.mimo ? std::vector<int64_t>{bd, R, G, N}
                                     : std::vector<int64_t>{bd, G, N};
  std::vector<int64_t> bias =
      cfg.mimo ? std::vector<int64_t>{H, R, N} : std::vector<int64_t>{H, N};
  std::vector<int64_t> k0 = cfg.mimo ? std::vector<int64_t>{b, H, R, N}
                                     : std::vector<int64_t>{b, H, N};
  std::vector<int64_t> v0 = cfg.mimo ? std::vector<int64_t>{b, H, R, P}
                                     : std::vector<int64_t>{b, H, P};
  auto when = [](bool cond) {
    return cond ? Presence::Required : Presence::Absent;
  };
  using I = LayerInputs;
  return {
      {"Q", &I::Q, withL(qk, 1), Presence::Required},
      {"K", &I::K, withL(qk, 1), Presence::Required},
      {"V", &I::V, withL({bd, H, P}, 1), Presence::Required},
      {"ADT", &I::ADT, withL({bd, H}, 2), Presence::Required},
      {"DT", &I::DT, withL({bd, H}, 2), Presence::Required},
      // The Euler rule fixes lambda to 1 and does not read Trap.
      {"Trap", &I::Trap, withL({bd, H}, 2),
       cfg.rule == Discretization::Euler ? Presence::Optional
                                         : Presence::Required},
      {"Q_bias", &I::QBias, bias, Presence::Required},
      {"K_bias", &I::KBias, bias, Presence::Required},
      {"Angles", &I::Angles,
       withL(cfg.broadcastAngles ? std::vector<int64_t>{bd, S}
                                 : std::vector<int64_t>{bd, H, S},
             1),
       Presence::Required},
      {"D", &I::D, {H}, when(cfg.hasD)},
      {"Z", &I::Z, withL({bd, H, P}, 1), when(cfg.hasZ)},
      {"MIMO_V", &I::MimoV, {H, R, P}, when(cfg.mimo)},
      {"MIMO_Z", &I::MimoZ, {H, R, P}, when(cfg.mimo && cfg.hasZ)},
      {"MIMO_O", &I::MimoO, {H, R, P}, when(cfg.mimo && !cfg.perRankOutputs)},
      {"angle0", &I::angle0, {b, H, S}, Presence::Optional},
      {"ssm0", &I::ssm0, {b, H, P, N}, Presence::Optional},
      {"k0", &I::k0, k0, Presence::Optional},
      {"v0", &I::v0, v0, Presence::Optional},
      {"norm_weight", &I::NormWeight, {H, P}, when(cfg.rmsNorm)},
      {"cu_seqlens", &I::CuSeqlens, {b + 1}, when(cfg.varlen)},
  };
}

std::string shapeText(const std::vector<int64_t> &shape) {
  Tensor t;
  t.shape = shape;
  return t.shapeString();
}

//===----------------------------------------------------------------------===//
// Front end and epilogue
//===----------------------------------------------------------------------===//

/// Per-token quantities of one (batch, head) sequence.
struct HeadSequence {
  int64_t L = 0, R = 1, N = 0, P = 0;
  std::vector<double> q, k;            // (L, R, N): biased, then rotated
  std::vector<double> v;               // (L, R, P): up-projected for MIMO
  std::vector<double> dt, adt, lambda; // (L)
  std::vector<double> theta;           // (S): the angle after the last token

  const double *qAt(int64_t t, int64_t r) const { return &q[(t * R + r) * N]; }
  const double *kAt(int64_t t, int64_t r) const { return &k[(t * R + r) * N]; }
  const double *vAt(int64_t t, int64_t r) const { return &v[(t * R + r) * P]; }
};

/// The pairs Rot(theta) rotates: (first(i), second(i)) for i < S.
struct Pairing {
  int64_t stride, offset;
  explicit Pairing(const LayerConfig &cfg)
      : stride(cfg.pairing == RotaryPairing::Adjacent ? 2 : 1),
        offset(cfg.pairing == RotaryPairing::Adjacent ? 1 : cfg.state / 2) {}
  int64_t first(int64_t i) const { return stride * i; }
  int64_t second(int64_t i) const { return stride * i + offset; }
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

HeadSequence prepareHead(const LayerConfig &cfg, const LayerInputs &in,
                         int64_t b, int64_t h) {
  const int64_t L = cfg.seqlen, H = cfg.heads, G = cfg.groups, N = cfg.state,
                P = cfg.headdim, S = cfg.angles, R = cfg.rank;
  const int64_t g = h / (H / G);
  const Pairing pairs(cfg);

  HeadSequence seq;
  seq.L = L, seq.R = R, seq.N = N, seq.P = P;
  seq.q.resize(L * R * N);
  seq.k.resize(L * R * N);
  seq.v.resize(L * R * P);
  seq.dt.resize(L);
  seq.adt.resize(L);
  seq.lambda.resize(L);
  seq.theta.assign(S, 0.0);
  if (!in.angle0.empty())
    for (int64_t s = 0; s < S; ++s)
      seq.theta[s] = in.angle0.data[(b * H + h) * S + s];

  std::vector<double> cosT(S), sinT(S);
  for (int64_t t = 0; t < L; ++t) {
    const int64_t gate = (b * H + h) * L + t; // (b, H, L) operands
    seq.dt[t] = in.DT.data[gate];
    seq.adt[t] = in.ADT.data[gate];
    seq.lambda[t] =
        cfg.rule == Discretization::Euler ? 1.0 : sigmoid(in.Trap.data[gate]);

    for (int64_t s = 0; s < S; ++s) {
      double &theta = seq.theta[s];
      const int64_t angle =
          cfg.broadcastAngles ? (b * L + t) * S + s
                              : ((b * L + t) * H + h) * S + s;
      theta += kPi * std::tanh(in.Angles.data[angle]) * seq.dt[t];
      if (cfg.wrapAngle)
        theta -= 2 * kPi * std::floor(theta / (2 * kPi));
      cosT[s] = std::cos(theta);
      sinT[s] = std::sin(theta);
    }

    for (int64_t r = 0; r < R; ++r) {
      // Q, K: (b, L, [R,] G, N); biases (H, [R,] N).
      const int64_t src = (((b * L + t) * R + r) * G + g) * N;
      const int64_t bias = (h * R + r) * N;
      double *q = &seq.q[(t * R + r) * N];
      double *k = &seq.k[(t * R + r) * N];
      for (int64_t n = 0; n < N; ++n) {
        q[n] = in.Q.data[src + n] + in.QBias.data[bias + n];
        k[n] = in.K.data[src + n] + in.KBias.data[bias + n];
      }
      for (int64_t s = 0; s < S; ++s) {
        for (double *x : {q, k}) {
          double x0 = x[pairs.first(s)], x1 = x[pairs.second(s)];
          x[pairs.first(s)] = x0 * cosT[s] - x1 * sinT[s];
          x[pairs.second(s)] = x0 * sinT[s] + x1 * cosT[s];
        }
      }

      const double *V = &in.V.data[((b * L + t) * H + h) * P];
      double *v = &seq.v[(t * R + r) * P];
      for (int64_t p = 0; p < P; ++p)
        v[p] = cfg.mimo ? in.MimoV.data[(h * R + r) * P + p] * V[p] : V[p];
    }
  }
  return seq;
}

/// Turns y (L, R, P) = H_t q_{t,r} into the layer output of head h: adds
/// D * v (in place), applies the RMSNorm when asked and the SiLU gate, sums
/// the ranks through MIMO_O, and writes out (b, L, H, P); with per-rank
/// outputs writes each rank's term to out (b, L, R, H, P) instead.
void writeOutput(const LayerConfig &cfg, const LayerInputs &in, int64_t b,
                 int64_t h, const HeadSequence &seq, std::vector<double> &y,
                 Tensor &out) {
  const int64_t L = cfg.seqlen, H = cfg.heads, P = cfg.headdim, R = cfg.rank;
  for (int64_t t = 0; t < L; ++t) {
    double *o = &out.data[((b * L + t) * H + h) * P];
    if (!cfg.perRankOutputs)
      std::fill(o, o + P, 0.0);
    const double *Z =
        cfg.hasZ ? &in.Z.data[((b * L + t) * H + h) * P] : nullptr;
    for (int64_t r = 0; r < R; ++r) {
      double *yr = &y[(t * R + r) * P];
      const double *v = seq.vAt(t, r);
      if (cfg.hasD)
        for (int64_t p = 0; p < P; ++p)
          yr[p] += in.D.data[h] * v[p];
      // The per-head RMSNorm before the gate.
      double scale = 1.0;
      const double *weight = nullptr;
      if (cfg.rmsNorm) {
        double sumSq = 0;
        for (int64_t p = 0; p < P; ++p)
          sumSq += yr[p] * yr[p];
        scale = 1.0 / std::sqrt(sumSq / P + cfg.normEps);
        weight = &in.NormWeight.data[h * P];
      }
      for (int64_t p = 0; p < P; ++p) {
        double value = yr[p];
        if (weight)
          value *= scale * weight[p];
        if (Z) {
          double z =
              cfg.mimo ? in.MimoZ.data[(h * R + r) * P + p] * Z[p] : Z[p];
          value *= z * sigmoid(z);
        }
        if (cfg.perRankOutputs)
          out.data[(((b * L + t) * R + r) * H + h) * P + p] = value;
        else
          o[p] += cfg.mimo ? in.MimoO.data[(h * R + r) * P + p] * value
                           : value;
      }
    }
  }
}

/// The states a head's sequence starts from (zeros where none are given).
struct HeadState {
  std::vector<double> ssm;          // (P, N)
  std::vector<double> kPrev, vPrev; // (R, N), (R, P)
};

HeadState initialState(const LayerConfig &cfg, const LayerInputs &in, int64_t b,
                       int64_t h) {
  const int64_t H = cfg.heads, N = cfg.state, P = cfg.headdim, R = cfg.rank;
  const int64_t bh = b * H + h;
  auto slice = [](const Tensor &t, int64_t offset, int64_t count) {
    if (t.empty())
      return std::vector<double>(count, 0.0);
    return std::vector<double>(t.data.begin() + offset,
                               t.data.begin() + offset + count);
  };
  HeadState st;
  st.ssm = slice(in.ssm0, bh * P * N, P * N);
  st.kPrev = slice(in.k0, bh * R * N, R * N);
  st.vPrev = slice(in.v0, bh * R * P, R * P);
  return st;
}

/// Allocates the outputs with the prefill shapes of `cfg`.
LayerOutputs allocateOutputs(const LayerConfig &cfg) {
  const int64_t b = cfg.batch, L = cfg.seqlen, H = cfg.heads, N = cfg.state,
                P = cfg.headdim, S = cfg.angles, R = cfg.rank;
  LayerOutputs o;
  o.out = cfg.perRankOutputs ? Tensor({cfg.varlen ? 1 : b, L, R, H, P})
                             : Tensor({cfg.varlen ? 1 : b, L, H, P});
  o.angle = Tensor({b, H, S});
  o.ssm = Tensor({b, H, P, N});
  o.k = cfg.mimo ? Tensor({b, H, R, N}) : Tensor({b, H, N});
  o.v = cfg.mimo ? Tensor({b, H, R, P}) : Tensor({b, H, P});
  return o;
}

double toBf16(double x);

/// Stores the final states of head (b, h).
void writeStates(const LayerConfig &cfg, int64_t b, int64_t h,
                 const HeadSequence &seq, const HeadState &st,
                 LayerOutputs &o) {
  const int64_t H = cfg.heads, N = cfg.state, P = cfg.headdim, S = cfg.angles,
                R = cfg.rank;
  const int64_t bh = b * H + h;
  // data() + offset, not &data[offset]: with S = 0 the angle state is empty.
  std::copy(seq.theta.begin(), seq.theta.end(), o.angle.data.data() + bh * S);
  std::transform(st.ssm.begin(), st.ssm.end(), &o.ssm.data[bh * P * N],
                 [&](double x) { return cfg.bf16State ? toBf16(x) : x; });
  std::copy(st.kPrev.begin(), st.kPrev.end(), &o.k.data[bh * R * N]);
  std::copy(st.vPrev.begin(), st.vPrev.end(), &o.v.data[bh * R * P]);
}

double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += a[i] * b[i];
  return s;
}

/// ssm += w * sum_r v_r k_r^T over the R rank-1 terms of one token.
void addOuter(std::vector<double> &ssm, double w, const double *k,
              const double *v, int64_t R, int64_t N, int64_t P) {
  if (w == 0)
    return;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t p = 0; p < P; ++p) {
      double wv = w * v[r * P + p];
      double *row = &ssm[p * N];
      const double *kr = &k[r * N];
      for (int64_t n = 0; n < N; ++n)
        row[n] += wv * kr[n];
    }
}

/// Checks config and inputs; on failure the reference returns empty outputs
/// (every relativeL2 against them is +inf).
bool usable(const LayerConfig &cfg, const LayerInputs &in, bool decode) {
  return cfg.validate().empty() && checkInputs(cfg, in, decode).empty();
}

} // namespace

//===----------------------------------------------------------------------===//
// LayerConfig / checks
//===----------------------------------------------------------------------===//

std::string LayerConfig::validate() const {
  auto atLeast = [](const char *field, int64_t value, int64_t limit) {
    if (value >= limit)
      return std::string();
    return std::string(field) + " must be at least " + std::to_string(limit) +
           ", got " + std::to_string(value);
  };
  const std::pair<const char *, int64_t> positive[] = {
      {"batch", batch},   {"seqlen", seqlen},   {"heads", heads},
      {"groups", groups}, {"state (N)", state}, {"headdim (P)", headdim},
      {"rank (R)", rank}};
  for (const auto &[field, value] : positive)
    if (std::string e = atLeast(field, value, 1); !e.empty())
      return e;
  if (std::string e = atLeast("angles (S)", angles, 0); !e.empty())
    return e;
  // Host tensors hold doubles: bound the largest one (in doubles, so the
  // products cannot overflow) before anything is allocated.
  constexpr double kMaxHostElements = 268435456.0; // 2^28: 2 GiB of doubles
  // A varlen batch packs its sequences into one row of L tokens.
  const double b = varlen ? 1.0 : static_cast<double>(batch),
               L = static_cast<double>(seqlen),
               R = static_cast<double>(rank);
  const std::pair<const char *, double> tensors[] = {
      {"Q/K (b, L, R, G, N)", b * L * R * groups * state},
      {"V/Z/out (b, L, H, P)", b * L * heads * headdim * (perRankOutputs ? R : 1)},
      {"the ssm state (b, H, P, N)",
       static_cast<double>(batch) * heads * headdim * state},
      {"Angles (b, L, H, S)", b * L * heads * angles}};
  for (const auto &[what, elements] : tensors)
    if (elements > kMaxHostElements) {
      char count[32];
      std::snprintf(count, sizeof count, "%.3g", elements);
      return what + std::string(" would hold ") + count +
             " elements, more than the host runtime's limit of 2^28 (2 GiB "
             "of doubles); use smaller sizes for host runs";
    }
  if (heads % groups != 0)
    return "heads (" + std::to_string(heads) +
           ") must be a multiple of groups (" + std::to_string(groups) + ")";
  if (2 * angles > state)
    return "angles (S = " + std::to_string(angles) +
           ") must be at most state / 2 (N = " + std::to_string(state) + ")";
  if (perRankOutputs && !mimo)
    return "per-rank outputs (no MIMO_O) need a MIMO layer";
  if (!mimo && rank != 1)
    return "rank (R = " + std::to_string(rank) +
           ") must be 1 for a SISO layer (set mimo for rank > 1)";
  if (rmsNorm && !(normEps > 0))
    return "normEps must be positive, got " + std::to_string(normEps);
  if (varlen && seqlen < batch)
    return "a varlen batch of " + std::to_string(batch) +
           " sequences needs at least as many tokens, got seqlen = " +
           std::to_string(seqlen);
  return "";
}

std::string mamba3::checkInputs(const LayerConfig &cfg, const LayerInputs &in,
                                bool decode) {
  for (const OperandSpec &spec : operandSpecs(cfg, decode)) {
    const Tensor &t = in.*spec.member;
    if (t.empty()) {
      if (spec.presence == Presence::Required)
        return std::string("input ") + spec.name + " is missing; expected " +
               shapeText(spec.shape);
      continue;
    }
    if (spec.presence == Presence::Absent) {
      std::string why = spec.name == std::string("D")   ? "cfg.hasD is false"
                        : spec.name == std::string("Z") ? "cfg.hasZ is false"
                        : spec.name == std::string("cu_seqlens")
                            ? "cfg.varlen is false"
                        : spec.name == std::string("norm_weight")
                            ? "cfg.rmsNorm is false"
                        : !cfg.mimo ? "the layer is SISO (cfg.mimo is false)"
                                    : "cfg.hasZ is false";
      return std::string("input ") + spec.name + " is given but " + why;
    }
    if (t.shape != spec.shape ||
        static_cast<int64_t>(t.data.size()) != t.numel())
      return std::string("input ") + spec.name + " has shape " +
             t.shapeString() + ", expected " + shapeText(spec.shape);
  }
  if (cfg.varlen)
    return checkSequenceOffsets(in.CuSeqlens, cfg.seqlen);
  return "";
}

std::string mamba3::checkSequenceOffsets(const Tensor &cu, int64_t seqlen) {
  const std::vector<double> &x = cu.data;
  if (cu.rank() != 1 || x.size() < 2)
    return "cu_seqlens must hold at least 2 offsets (one sequence), got shape " +
           cu.shapeString();
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] != std::floor(x[i]) || x[i] < 0 || x[i] > 2147483647.0)
      return "cu_seqlens[" + std::to_string(i) + "] = " + std::to_string(x[i]) +
             " is not a non-negative int32";
  if (x.front() != 0)
    return "cu_seqlens[0] must be 0, got " +
           std::to_string(static_cast<int64_t>(x.front()));
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] <= x[i - 1])
      return "cu_seqlens must increase strictly (every sequence has at least "
             "one token), but cu_seqlens[" +
             std::to_string(i) + "] = " +
             std::to_string(static_cast<int64_t>(x[i])) + " after " +
             std::to_string(static_cast<int64_t>(x[i - 1]));
  if (x.back() != static_cast<double>(seqlen))
    return "cu_seqlens ends at " + std::to_string(static_cast<int64_t>(x.back())) +
           ", but the packed sequence has seqlen = " + std::to_string(seqlen) +
           " tokens";
  return "";
}

namespace {

/// Runs `scan` on every sequence of a packed varlen batch as a batch of one
/// and packs the results back: the definition of cu_seqlens.
template <typename ScanFn>
LayerOutputs scanEachSequence(const LayerConfig &cfg, const LayerInputs &in,
                              ScanFn scan) {
  LayerOutputs o = allocateOutputs(cfg);
  // Token axis of each packed input: 1 for (1, L, ...), 2 for (1, H, L).
  const std::pair<Tensor LayerInputs::*, int64_t> tokenInputs[] = {
      {&LayerInputs::Q, 1},    {&LayerInputs::K, 1},   {&LayerInputs::V, 1},
      {&LayerInputs::ADT, 2},  {&LayerInputs::DT, 2},  {&LayerInputs::Trap, 2},
      {&LayerInputs::Angles, 1}, {&LayerInputs::Z, 1}};
  Tensor LayerInputs::*const states[] = {&LayerInputs::angle0, &LayerInputs::ssm0,
                                         &LayerInputs::k0, &LayerInputs::v0};
  for (int64_t s = 0; s < cfg.batch; ++s) {
    const int64_t start = static_cast<int64_t>(in.CuSeqlens.data[s]);
    const int64_t len = static_cast<int64_t>(in.CuSeqlens.data[s + 1]) - start;
    LayerConfig one = cfg;
    one.varlen = false;
    one.batch = 1;
    one.seqlen = len;
    LayerInputs part = in;
    part.CuSeqlens = Tensor();
    for (const auto &[member, axis] : tokenInputs)
      if (!(in.*member).empty())
        part.*member = sliceAxis(in.*member, axis, start, len);
    for (Tensor LayerInputs::*member : states)
      if (!(in.*member).empty())
        part.*member = sliceAxis(in.*member, 0, s, 1);
    LayerOutputs r = scan(one, part);
    insertAxis(o.out, r.out, 1, start);
    insertAxis(o.angle, r.angle, 0, s);
    insertAxis(o.ssm, r.ssm, 0, s);
    insertAxis(o.k, r.k, 0, s);
    insertAxis(o.v, r.v, 0, s);
  }
  return o;
}

} // namespace

//===----------------------------------------------------------------------===//
// Token-by-token recurrence
//===----------------------------------------------------------------------===//

LayerOutputs mamba3::referenceScan(const LayerConfig &cfg,
                                   const LayerInputs &in) {
  if (!usable(cfg, in, /*decode=*/false))
    return {};
  if (cfg.varlen)
    return scanEachSequence(cfg, in, referenceScan);
  const int64_t L = cfg.seqlen, N = cfg.state, P = cfg.headdim, R = cfg.rank;
  LayerOutputs o = allocateOutputs(cfg);
  std::vector<double> y(L * R * P);

  for (int64_t b = 0; b < cfg.batch; ++b) {
    for (int64_t h = 0; h < cfg.heads; ++h) {
      HeadSequence seq = prepareHead(cfg, in, b, h);
      HeadState st = initialState(cfg, in, b, h);
      for (int64_t t = 0; t < L; ++t) {
        // H_t = alpha H_{t-1} + beta sum_r v_{t-1,r} k_{t-1,r}^T
        //                     + gamma sum_r v_{t,r} k_{t,r}^T
        const double alpha = std::exp(seq.adt[t]);
        const double beta = (1 - seq.lambda[t]) * seq.dt[t] * alpha;
        const double gamma = seq.lambda[t] * seq.dt[t];
        for (double &x : st.ssm)
          x *= alpha;
        addOuter(st.ssm, beta, st.kPrev.data(), st.vPrev.data(), R, N, P);
        addOuter(st.ssm, gamma, seq.kAt(t, 0), seq.vAt(t, 0), R, N, P);
        // y_{t,r} = H_t q_{t,r}
        for (int64_t r = 0; r < R; ++r)
          for (int64_t p = 0; p < P; ++p)
            y[(t * R + r) * P + p] = dot(&st.ssm[p * N], seq.qAt(t, r), N);
        st.kPrev.assign(seq.kAt(t, 0), seq.kAt(t, 0) + R * N);
        st.vPrev.assign(seq.vAt(t, 0), seq.vAt(t, 0) + R * P);
      }
      writeOutput(cfg, in, b, h, seq, y, o.out);
      writeStates(cfg, b, h, seq, st, o);
    }
  }
  return o;
}

//===----------------------------------------------------------------------===//
// Chunked form
//===----------------------------------------------------------------------===//

LayerOutputs mamba3::referenceScanChunked(const LayerConfig &cfg,
                                          const LayerInputs &in,
                                          int64_t chunk) {
  if (chunk < 1 || !usable(cfg, in, /*decode=*/false))
    return {};
  if (cfg.varlen)
    return scanEachSequence(cfg, in,
                            [chunk](const LayerConfig &c, const LayerInputs &i) {
                              return referenceScanChunked(c, i, chunk);
                            });
  const int64_t L = cfg.seqlen, N = cfg.state, P = cfg.headdim, R = cfg.rank;
  LayerOutputs o = allocateOutputs(cfg);
  std::vector<double> y(L * R * P);
  const int64_t C = std::min(chunk, L);
  std::vector<double> a(C), gamma(C), next(C), W(C * C);

  for (int64_t b = 0; b < cfg.batch; ++b) {
    for (int64_t h = 0; h < cfg.heads; ++h) {
      HeadSequence seq = prepareHead(cfg, in, b, h);
      HeadState st = initialState(cfg, in, b, h);
      for (int64_t c0 = 0; c0 < L; c0 += C) {
        const int64_t n = std::min(C, L - c0);
        // a[i] = a_{c0+i} - a_{c0-1}: the log decay from the chunk's start.
        // next[i] = (1 - lambda) DT of token c0+i: the weight that token gives
        // the pair of the token before it (the trapezoid's second point).
        double acc = 0;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t t = c0 + i;
          acc += seq.adt[t];
          a[i] = acc;
          gamma[i] = seq.lambda[t] * seq.dt[t];
          next[i] = (1 - seq.lambda[t]) * seq.dt[t];
        }
        // W(t, u) = exp(a_t - a_u) (gamma_u + [u < t] next_{u+1}), u <= t.
        for (int64_t t = 0; t < n; ++t)
          for (int64_t u = 0; u < n; ++u)
            W[t * C + u] = u > t ? 0.0
                                 : std::exp(a[t] - a[u]) *
                                       (gamma[u] + (u < t ? next[u + 1] : 0.0));
        const double pending = next[0]; // (1 - lambda_c) DT_c

        for (int64_t t = 0; t < n; ++t) {
          const double decay = std::exp(a[t]);
          for (int64_t r = 0; r < R; ++r) {
            const double *q = seq.qAt(c0 + t, r);
            double *yr = &y[((c0 + t) * R + r) * P];
            std::fill(yr, yr + P, 0.0);
            // Intra-chunk: ((Q K^T) o W) V over the R x R blocks.
            for (int64_t u = 0; u <= t; ++u)
              for (int64_t s = 0; s < R; ++s) {
                double score = dot(q, seq.kAt(c0 + u, s), N) * W[t * C + u];
                const double *v = seq.vAt(c0 + u, s);
                for (int64_t p = 0; p < P; ++p)
                  yr[p] += score * v[p];
              }
            // The state entering the chunk: exp(a_t) H_{c-1} q.
            for (int64_t p = 0; p < P; ++p)
              yr[p] += decay * dot(&st.ssm[p * N], q, N);
            // The previous chunk's last token, which the trapezoid weighs
            // with the first token of this chunk.
            for (int64_t s = 0; s < R; ++s) {
              double score = pending * decay * dot(q, &st.kPrev[s * N], N);
              for (int64_t p = 0; p < P; ++p)
                yr[p] += score * st.vPrev[s * P + p];
            }
          }
        }

        // H_{c+n-1} = exp(a_end) H_{c-1} + sum_u w(end, u) v_u k_u^T
        //             + pending exp(a_end) v_{c-1} k_{c-1}^T
        const double endDecay = std::exp(a[n - 1]);
        for (double &x : st.ssm)
          x *= endDecay;
        addOuter(st.ssm, pending * endDecay, st.kPrev.data(), st.vPrev.data(),
                 R, N, P);
        for (int64_t u = 0; u < n; ++u)
          addOuter(st.ssm, W[(n - 1) * C + u], seq.kAt(c0 + u, 0),
                   seq.vAt(c0 + u, 0), R, N, P);
        st.kPrev.assign(seq.kAt(c0 + n - 1, 0), seq.kAt(c0 + n - 1, 0) + R * N);
        st.vPrev.assign(seq.vAt(c0 + n - 1, 0), seq.vAt(c0 + n - 1, 0) + R * P);
      }
      writeOutput(cfg, in, b, h, seq, y, o.out);
      writeStates(cfg, b, h, seq, st, o);
    }
  }
  return o;
}

//===----------------------------------------------------------------------===//
// Decode step
//===----------------------------------------------------------------------===//

LayerOutputs mamba3::referenceStep(const LayerConfig &cfg,
                                   const LayerInputs &in) {
  LayerConfig one = cfg;
  one.seqlen = 1;
  one.varlen = false; // a step has one token per sequence
  if (!usable(one, in, /*decode=*/true))
    return {};
  // A step is the scan of one token: the decode layouts are the prefill ones
  // with an L axis of size 1 removed, so only the shapes change.
  LayerInputs scan = in;
  for (const OperandSpec &spec : operandSpecs(one, /*decode=*/false)) {
    Tensor &t = scan.*spec.member;
    if (!t.empty())
      t.shape = spec.shape;
  }
  LayerOutputs o = referenceScan(one, scan);
  o.out.shape = cfg.perRankOutputs
                    ? std::vector<int64_t>{cfg.batch, cfg.rank, cfg.heads,
                                           cfg.headdim}
                    : std::vector<int64_t>{cfg.batch, cfg.heads, cfg.headdim};
  return o;
}

//===----------------------------------------------------------------------===//
// Random inputs
//===----------------------------------------------------------------------===//

namespace {

/// Normal and uniform draws on top of std::mt19937_64, whose output sequence
/// the standard fixes. std::normal_distribution is implementation-defined, so
/// the same seed would give different inputs with another standard library.
class Random {
public:
  explicit Random(uint64_t seed) : gen(seed) {}

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }

  /// Standard normal (Box-Muller; both values of a pair are used).
  double normal() {
    if (hasSpare) {
      hasSpare = false;
      return spare;
    }
    double u1 = 1.0 - uniform(); // (0, 1]: log(u1) is finite
    double u2 = uniform();
    double radius = std::sqrt(-2.0 * std::log(u1));
    spare = radius * std::sin(2 * kPi * u2);
    hasSpare = true;
    return radius * std::cos(2 * kPi * u2);
  }

private:
  std::mt19937_64 gen;
  bool hasSpare = false;
  double spare = 0;
};

/// The float32 value nearest to x.
double toFloat(double x) { return static_cast<float>(x); }

/// The bf16 value nearest to float32(x), ties to even, as kernels convert.
double toBf16(double x) {
  float f = static_cast<float>(x);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN stays NaN
    return x;
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }

/// Offsets of `sequences` random lengths (each >= 1) that add up to
/// `tokens`: the first sequence is one token long when there are two or more
/// (what a kernel's per-sequence edge cases need), the other cuts are
/// distinct uniform draws.
Tensor randomSequenceOffsets(int64_t sequences, int64_t tokens, Random &rng) {
  std::vector<int64_t> cuts = {0, tokens};
  if (sequences >= 2)
    cuts.push_back(1);
  while (static_cast<int64_t>(cuts.size()) < sequences + 1) {
    int64_t cut = 1 + static_cast<int64_t>(rng.uniform() * (tokens - 1));
    if (std::find(cuts.begin(), cuts.end(), cut) == cuts.end())
      cuts.push_back(cut);
  }
  std::sort(cuts.begin(), cuts.end());
  Tensor cu({sequences + 1});
  for (int64_t i = 0; i <= sequences; ++i)
    cu.data[i] = static_cast<double>(cuts[i]);
  return cu;
}

} // namespace

double mamba3::outputPeriod(const LayerConfig &cfg, const std::string &name) {
  return cfg.wrapAngle && name == "angle" ? 2 * kPi : 0;
}

LayerInputs mamba3::randomInputs(const LayerConfig &cfg, uint64_t seed,
                                 bool decode) {
  LayerInputs in;
  if (!cfg.validate().empty())
    return in;
  Random rng(seed);
  const double invRank = 1.0 / static_cast<double>(cfg.rank);

  // How each operand's values are drawn, rounded to the type the kernel API
  // takes it in, so that fp32 and bf16 kernels see exactly these inputs.
  // Chosen once per operand (not per value: the tuner draws 10^8 values per
  // shape).
  enum class Draw { Bf16Normal, Bias, Dt, RankMix, MimoZ, NormWeight, Angle0,
                    Ssm0, FloatNormal };
  auto drawOf = [&](const std::string &name) {
    if (name == "Q" || name == "K" || name == "V" || name == "Z" ||
        name == "Trap")
      return Draw::Bf16Normal;
    if (name == "Q_bias" || name == "K_bias")
      return Draw::Bias;
    if (name == "DT")
      return Draw::Dt;
    if (name == "MIMO_V" || name == "MIMO_O")
      return Draw::RankMix;
    if (name == "MIMO_Z")
      return Draw::MimoZ;
    if (name == "norm_weight")
      return Draw::NormWeight;
    if (name == "angle0")
      return Draw::Angle0;
    if (name == "ssm0")
      return Draw::Ssm0;
    // Angles, D, k0, v0.
    return Draw::FloatNormal;
  };
  auto draw = [&](Draw kind) -> double {
    switch (kind) {
    case Draw::Bf16Normal:
      return toBf16(rng.normal());
    case Draw::Bias:
      // bf16 in the SISO API, fp32 in the MIMO one.
      return cfg.mimo ? toFloat(0.5 * rng.normal())
                      : toBf16(0.5 * rng.normal());
    case Draw::Dt:
      // softplus(raw - 1), raw ~ N(0, 1): mostly within [0.05, 1].
      return toFloat(std::clamp(softplus(rng.normal() - 1.0), 0.01, 1.0));
    case Draw::RankMix:
      // Near 1/R, so that the R rank terms add up to about one head.
      return toFloat((1.0 + 0.3 * rng.normal()) * invRank);
    case Draw::MimoZ:
      return toFloat(1.0 + 0.3 * rng.normal());
    case Draw::NormWeight:
      return toFloat(1.0 + 0.2 * rng.normal());
    case Draw::Angle0:
      return toFloat(2 * kPi * rng.uniform());
    case Draw::Ssm0:
      return cfg.bf16State ? toBf16(0.5 * rng.normal())
                           : toFloat(0.5 * rng.normal());
    case Draw::FloatNormal:
      break;
    }
    return toFloat(rng.normal());
  };

  // Operands are drawn in the fixed order of operandSpecs, so a seed always
  // gives the same tensors for a config.
  for (const OperandSpec &spec : operandSpecs(cfg, decode)) {
    const std::string name = spec.name;
    bool state =
        name == "angle0" || name == "ssm0" || name == "k0" || name == "v0";
    if (state ? !cfg.hasInitialState : spec.presence == Presence::Absent)
      continue;
    if (name == "cu_seqlens") {
      in.CuSeqlens = randomSequenceOffsets(cfg.batch, cfg.seqlen, rng);
      continue;
    }
    if (name == "ADT")
      continue; // ADT = A * DT needs DT, which comes next
    Tensor t(spec.shape);
    const Draw kind = drawOf(name);
    for (double &x : t.data)
      x = draw(kind);
    in.*spec.member = std::move(t);
    if (name == "DT") {
      // A = -exp(N(0, 0.5)) per token and head, so ADT < 0 always.
      in.ADT = Tensor(spec.shape);
      for (size_t i = 0; i < in.DT.data.size(); ++i)
        in.ADT.data[i] = toFloat(-std::exp(0.5 * rng.normal()) * in.DT.data[i]);
    }
  }
  return in;
}
