//===- LayerModule.h - One Mamba-3 layer as a kernel module -----*- C++ -*-===//
//
// A LayerSpec is the configuration a kernel is compiled for. buildLayerModule
// turns it into the module every target compiles: one entry function whose
// memref arguments form the kernel's calling convention, wrapping exactly
// one ssm.scan or ssm.step. The argument order is fixed and documented here
// because the bundle manifest and the runtime rely on it:
//
//   inputs   Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles,
//            [D], [Z],                      (hasD, hasZ)
//            [angle0, ssm0, k0, v0],        (hasInitialState; always for step)
//            [mimo_v, [mimo_z], [mimo_o]]   (mimo; mimo_z with hasZ, mimo_o
//                                            unless perRankOutputs)
//            [norm_weight]                  (rmsNorm)
//            [cu_seqlens]                   (varlen)
//   outputs  out, [angle, ssm, k, v]        (final / new states; finalStates)
//
// Layouts are those of ssm.scan / ssm.step (dialect/SsmOps.td). Element
// types: Q, K, V, Z and out take the data type; Trap, the biases and the
// k and v states take theirs from the spec (f32 or bf16, f32 by default);
// the ssm states take the state type; everything else (ADT, DT, Angles, D,
// MIMO projections, the angle state) is f32; cu_seqlens is i32.
//
// A varlen layer packs `batch` sequences of varying length into one batch
// row of `seqlen` tokens: the data tensors have batch 1, the states one
// entry per sequence, and cu_seqlens (batch + 1) gives the offsets.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_LAYERMODULE_H
#define MAMBA3_CODEGEN_LAYERMODULE_H

#include "dialect/SsmDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>
#include <vector>

namespace mlir {
namespace ssm {

/// Element type of the data tensors (Q, K, V, Z, out), and of the tensors
/// whose type the spec chooses.
enum class LayerDataType { f32, bf16, f16, i32 };

struct LayerSpec {
  /// ShapedType::kDynamic makes the axis dynamic (sized at run time). With
  /// `varlen`, the number of sequences.
  int64_t batch = ShapedType::kDynamic;
  /// Ignored for a step (no sequence axis). With `varlen`, the packed tokens
  /// of all sequences.
  int64_t seqlen = ShapedType::kDynamic;
  int64_t heads = 1, groups = 1;
  int64_t state = 16;   // N
  int64_t headdim = 16; // P
  int64_t angles = 4;   // S
  int64_t rank = 1;     // R
  /// MIMO layouts (rank axis in Q, K, biases, k/v states, MIMO projections).
  bool mimo = false;
  bool hasD = true, hasZ = true;
  /// Initial states as inputs (scan only; a step always takes its states).
  bool hasInitialState = false;
  bool wrapAngle = true;
  /// Angles (b, [L,] S) shared by all heads instead of (b, [L,] H, S).
  bool broadcastAngles = false;
  /// The ssm state (ssm0 and the final ssm) in bf16: the op's state_type.
  bool bf16State = false;
  DiscretizationRule rule = DiscretizationRule::trapezoid;
  RotaryPairing pairing = RotaryPairing::adjacent;
  /// ssm.step (one decode token) instead of ssm.scan.
  bool step = false;
  /// A packed variable-length batch (scan only): cu_seqlens is an input.
  bool varlen = false;
  /// The per-head RMSNorm of y before the gate: norm_weight (H, P) is an
  /// input, normEps the op's norm_eps.
  bool rmsNorm = false;
  float normEps = 1e-5f;
  LayerDataType dataType = LayerDataType::f32;
  /// Element types (f32, bf16 or f16) of Trap, of Q_bias and K_bias
  /// (together), and of the k and v states (k0 and k, v0 and v: one type per pair, so that a step
  /// can update them in place). The official module hands Trap over in the
  /// model's dtype and keeps k and v in its decode cache in that dtype; a
  /// kernel that reads them as they are saves the caller a conversion. The
  /// kernels widen every load to f32, so the math does not change.
  LayerDataType trapType = LayerDataType::f32;
  LayerDataType biasType = LayerDataType::f32;
  LayerDataType kStateType = LayerDataType::f32;
  LayerDataType vStateType = LayerDataType::f32;
  /// A MIMO layer without the down projection (no mimo_o): out holds the
  /// per-rank outputs, (b, L, R, H, P) (the official MIMO_Out=None).
  bool perRankOutputs = false;
  /// The final (new) states as outputs. Off, the kernel writes `out` only:
  /// a prefill whose caller does not keep the states saves their writes.
  bool finalStates = true;
  /// Tokens per chunk for ssm-chunk; 0 lowers the recurrence token by token.
  int64_t chunkSize = 64;

  /// "scan" or "step".
  std::string kindName() const;
  /// Entry function symbol: "mamba3_scan" or "mamba3_step".
  std::string entryName() const;
  /// A stable one-line description of every field, e.g. for hashing.
  std::string canonicalString() const;
  /// FNV-1a (64 bit) of canonicalString(), as 16 hex digits.
  std::string configHash() const;
  /// Empty when sizes and flags are in range for building a module (positive
  /// sizes, chunk >= 0, ...), else a message naming the field. The shape
  /// rules between fields are the ssm op verifier's job.
  std::string checkRanges() const;
};

/// One argument of the entry function.
struct LayerArgument {
  std::string name;
  bool isOutput = false;
  /// Axis names as the spec uses them: "b", "L", "R", "G", "H", "N", "P",
  /// "S"; for varlen layers "1" (the packed batch of the data tensors) and
  /// "b+1" (cu_seqlens).
  std::vector<std::string> axes;
  /// ShapedType::kDynamic for dynamic axes.
  std::vector<int64_t> shape;
  /// True when the element type is the spec's data type (else f32).
  bool isData = false;
};

/// FNV-1a, 64 bit, of `bytes`, continuing from `hash` (the offset basis
/// by default): configHash and the bundle's file digests, which the runtime
/// recomputes.
uint64_t fnv1a64(llvm::StringRef bytes,
                 uint64_t hash = 0xcbf29ce484222325ULL);

/// The entry function's arguments, in order.
std::vector<LayerArgument> getLayerArguments(const LayerSpec &spec);

/// "f32", "bf16", "f16" or "i32".
StringRef stringifyLayerDataType(LayerDataType type);

/// The element type of `arg` in `spec`'s kernel interface: the data type for
/// data tensors, the spec's types for Trap, the biases and the k/v states,
/// bf16 for the ssm states of a bf16-state layer, i32 for cu_seqlens, else
/// f32.
LayerDataType argumentDataType(const LayerSpec &spec, const LayerArgument &arg);

/// Builds `func.func @mamba3_scan` / `@mamba3_step` for `spec` (see the file
/// comment) in a new module, at `loc`. The module is not verified: run
/// mlir::verify on it to get the ssm verifier's diagnostics for an invalid
/// configuration. Returns null (after emitting an error at `loc`) when
/// checkRanges() fails.
OwningOpRef<ModuleOp> buildLayerModule(MLIRContext &context,
                                       const LayerSpec &spec, Location loc);

/// Derives the spec of the single ssm.scan or ssm.step in `module` (chunk
/// size left at its default). Fails with an error when there is none, more
/// than one, or when an operand type differs from the kernel interface that
/// buildLayerModule would give (e.g. a bf16 Trap or state).
FailureOr<LayerSpec> layerSpecFromModule(ModuleOp module);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_LAYERMODULE_H
