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

#include "LayerOperands.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

using namespace mamba3;
using namespace mamba3::detail;

namespace {

constexpr double kPi = 3.14159265358979323846;

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
