//===- LayerInputs.cpp - A layer's operands: shapes, checks, random draws -===//
//
// The operands a config gives a layer (operandSpecs), the checks of a
// config and of inputs against it, and the random inputs the tests and the
// tools draw; the float64 reference that consumes them is Reference.cpp.
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

std::vector<OperandSpec> mamba3::detail::operandSpecs(const LayerConfig &cfg, bool decode) {
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

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string shapeText(const std::vector<int64_t> &shape) {
  Tensor t;
  t.shape = shape;
  return t.shapeString();
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

//===----------------------------------------------------------------------===//
// Random inputs
//===----------------------------------------------------------------------===//

double mamba3::detail::toBf16(double x) {
  float f = static_cast<float>(x);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN stays NaN
    return x;
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}


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
