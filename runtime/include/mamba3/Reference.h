//===- Reference.h - Float64 reference of the Mamba-3 layer core -*- C++ -*-===//
//
// Follows ../shared/spec/mamba3-core.md. Tensors use the official API layouts:
//   SISO: Q, K (b,L,G,N); Q_bias, K_bias (H,N); k state (b,H,N); v state (b,H,P)
//   MIMO: Q, K (b,L,R,G,N); Q_bias, K_bias (H,R,N); MIMO_V/Z/O (H,R,P);
//         k state (b,H,R,N); v state (b,H,R,P)
//   both: V, Z, out (b,L,H,P); ADT, DT, Trap (b,H,L); Angles (b,L,H,S); D (H);
//         angle state (b,H,S); ssm state (b,H,P,N)
// Decode (step) inputs drop the L axis.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_REFERENCE_H
#define MAMBA3_REFERENCE_H

#include "mamba3/Tensor.h"

#include <cstdint>
#include <string>

namespace mamba3 {

enum class Discretization { Trapezoid, Euler };
enum class RotaryPairing { Adjacent, HalfSplit };

struct LayerConfig {
  /// With `varlen`: batch is the number of sequences and seqlen the packed
  /// tokens of all of them.
  int64_t batch = 1, seqlen = 1, heads = 1, groups = 1;
  int64_t state = 16;   // N
  int64_t headdim = 16; // P
  int64_t angles = 4;   // S, rotary angles per head (S <= N/2)
  int64_t rank = 1;     // R
  /// MIMO layouts (rank axis present in Q/K/biases/k,v states). A MIMO layer
  /// may have rank 1; a SISO layer always has rank 1.
  bool mimo = false;
  bool hasD = true, hasZ = true;
  /// Initial states given (angle, ssm, k, v all together).
  bool hasInitialState = false;
  /// Wrap the angle state into [0, 2*pi) after every token (the official SISO
  /// kernels do; MIMO does not). cos/sin are unchanged by the wrap.
  bool wrapAngle = true;
  /// Angles (b, [L,] S) shared by all heads instead of (b, [L,] H, S) (what
  /// the model's projection produces).
  bool broadcastAngles = false;
  /// The ssm state (initial and final) is stored in bf16 (the op's
  /// state_type); the recurrence still runs in full precision, and the
  /// final state is rounded to bf16. Random initial states are bf16 values.
  bool bf16State = false;
  /// A packed variable-length batch (prefill only, as the official API's
  /// cu_seqlens): data tensors have batch 1 and `seqlen` tokens holding the
  /// `batch` sequences back to back; CuSeqlens (batch + 1) gives their
  /// offsets; states have one entry per sequence.
  bool varlen = false;
  /// The per-head RMSNorm before the gate (the spec's optional fused
  /// variant): y_{t,r} <- y_{t,r} rsqrt(mean_p y^2 + normEps) NormWeight[h].
  bool rmsNorm = false;
  double normEps = 1e-5;
  /// MIMO without the down projection (no MIMO_O): out holds each rank's
  /// term, (b, L, R, H, P) (a step: (b, R, H, P)), the official
  /// MIMO_Out=None.
  bool perRankOutputs = false;
  Discretization rule = Discretization::Trapezoid;
  RotaryPairing pairing = RotaryPairing::Adjacent;

  /// Empty string when the config is consistent, else a message naming the
  /// field and the limit it breaks.
  std::string validate() const;
};

struct LayerInputs {
  Tensor Q, K, V, ADT, DT, Trap, QBias, KBias, Angles;
  Tensor D, Z;                   // optional (empty when absent)
  Tensor MimoV, MimoZ, MimoO;    // MIMO only
  Tensor angle0, ssm0, k0, v0;   // optional initial states (empty: zeros)
  /// varlen only: (batch + 1) integer offsets, 0 = cu[0] < cu[1] < ... <
  /// cu[batch] = seqlen (every sequence has at least one token).
  Tensor CuSeqlens;
  /// rmsNorm only: (H, P) weights.
  Tensor NormWeight;
};

struct LayerOutputs {
  Tensor out, angle, ssm, k, v;
};

/// The period relativeL2 compares output `name` ("out", "angle", "ssm",
/// "k", "v") with: 2 pi for the angle state of a layer that wraps it (the
/// same angle may land on either side of the wrap), else 0.
double outputPeriod(const LayerConfig &cfg, const std::string &name);

/// Empty when `in` fits `cfg` (prefill layouts, or decode layouts when
/// `decode`), else a message naming the first operand that is missing, has
/// the wrong shape, or is given although the config excludes it (D without
/// hasD, Z without hasZ, MIMO_* on a SISO layer). Initial states are
/// optional. The reference functions return empty outputs for inputs (or a
/// config) that fail this check, so every comparison against them fails.
std::string checkInputs(const LayerConfig &cfg, const LayerInputs &in,
                        bool decode = false);

/// Empty when `cu` is a valid cu_seqlens for `seqlen` packed tokens, else a
/// message naming the first bad offset.
std::string checkSequenceOffsets(const Tensor &cu, int64_t seqlen);
/// Token-by-token recurrence (the definition).
LayerOutputs referenceScan(const LayerConfig &cfg, const LayerInputs &in);

/// The chunked form of the spec, chunk >= 1 (any value, also > L).
LayerOutputs referenceScanChunked(const LayerConfig &cfg, const LayerInputs &in,
                                  int64_t chunk);

/// One decode step: inputs without the L axis, initial states required
/// (empty ones mean zeros). cfg.seqlen is ignored.
LayerOutputs referenceStep(const LayerConfig &cfg, const LayerInputs &in);

/// Fresh random inputs of the given config (prefill layouts, or decode layouts
/// when `decode`), drawn like the model's: bf16-representable Q/K/V/Z/Trap and
/// SISO biases, ADT < 0, DT > 0. Initial states drawn when cfg.hasInitialState.
/// A varlen config gets random sequence lengths (the first sequence one
/// token long when there are at least two).
LayerInputs randomInputs(const LayerConfig &cfg, uint64_t seed,
                         bool decode = false);

} // namespace mamba3

#endif // MAMBA3_REFERENCE_H
