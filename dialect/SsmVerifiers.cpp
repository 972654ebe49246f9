//===- SsmVerifiers.cpp - Shape and type rules of the ssm ops -------------===//
//
// ssm.scan and ssm.step share one set of rules (the step drops the L axis).
// Every size is taken from the operand that defines it (b, L, R, G, N from Q;
// H, P from V; S from the rotary attribute) and every other operand is checked
// against it, so a message names the operand, the axis and where the expected
// size came from. Dynamic sizes (only b and L may be dynamic) match anything.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// One expected axis: its size (kDynamic: any) and the name the spec uses.
struct Axis {
  int64_t size;
  const char *name;
  const char *source; // operand that fixed the size, for messages
};

std::string axesString(ArrayRef<Axis> axes) {
  std::string s = "(";
  for (auto [i, a] : llvm::enumerate(axes))
    s += (i ? ", " : "") + std::string(a.name);
  return s + ")";
}

bool isStateFloat(Type t) { return t.isF32() || t.isBF16(); }
bool isDataFloat(Type t) { return t.isF32() || t.isBF16() || t.isF16(); }

/// Static sizes of the axes the layer is built from must be at least 1
/// (an empty axis has no layer, and the checks that follow divide by G).
LogicalResult checkNonEmpty(Operation *op, std::initializer_list<Axis> axes) {
  for (const Axis &a : axes)
    if (a.size != ShapedType::kDynamic && a.size < 1)
      return op->emitOpError() << "the " << a.name << " axis of '" << a.source
                               << "' must have at least one entry, got "
                               << a.size;
  return success();
}

class LayerVerifier {
public:
  LayerVerifier(Operation *op, bool hasSeq) : op(op), hasSeq(hasSeq) {}

  /// Checks rank and every static size of `value` against `axes`.
  LogicalResult shape(StringRef what, Value value, ArrayRef<Axis> axes) {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getRank() != static_cast<int64_t>(axes.size()))
      return op->emitOpError() << "'" << what << "' must have rank "
                               << axes.size() << " " << axesString(axes)
                               << ", got " << type;
    for (auto [i, a] : llvm::enumerate(axes)) {
      int64_t got = type.getDimSize(i);
      if (a.size == ShapedType::kDynamic || got == ShapedType::kDynamic)
        continue;
      if (got != a.size)
        return op->emitOpError()
               << "'" << what << "' dimension " << i << " (" << a.name
               << ") is " << got << ", but '" << a.source << "' gives "
               << a.name << " = " << a.size;
    }
    return success();
  }

  LogicalResult elementType(StringRef what, Value value,
                            function_ref<bool(Type)> ok, StringRef expected) {
    Type t = cast<RankedTensorType>(value.getType()).getElementType();
    if (!ok(t))
      return op->emitOpError() << "'" << what << "' must have element type "
                               << expected << ", got " << t;
    return success();
  }

  LogicalResult f32(StringRef what, Value value) {
    return elementType(what, value, [](Type t) { return t.isF32(); }, "f32");
  }
  LogicalResult data(StringRef what, Value value) {
    return elementType(what, value, isDataFloat, "bf16, f16 or f32");
  }

  Operation *op;
  bool hasSeq;
};

/// The operands and attributes both ops have, under one view.
struct LayerOperands {
  Value Q, K, V, ADT, DT, Trap, QBias, KBias, Angles, D, Z;
  Value angle0, ssm0, k0, v0;
  Value mimoV, mimoZ, mimoO;
  /// Optional per-head RMSNorm weights (H, P).
  Value normWeight;
  /// ssm.scan only: packed variable-length batch.
  Value cuSeqlens;
  ValueRange results;
  RotaryAttr rotary;
  int64_t rank;
  Type stateType;
};

template <typename OpTy>
LayerOperands getLayerOperands(OpTy op, Value angle0, Value ssm0, Value k0,
                               Value v0, Value cuSeqlens) {
  return LayerOperands{op.getQ(),      op.getK(),      op.getV(),
                       op.getADT(),    op.getDT(),     op.getTrap(),
                       op.getQBias(), op.getKBias(), op.getAngles(),
                       op.getD(),      op.getZ(),      angle0,
                       ssm0,           k0,             v0,
                       op.getMimoV(), op.getMimoZ(), op.getMimoO(),
                       op.getNormWeight(), cuSeqlens, op->getResults(),
                       op.getRotary(),
                       op.getRank(),  op.getStateElementType()};
}

LogicalResult verifyLayer(Operation *op, const LayerOperands &x, bool hasSeq) {
  LayerVerifier v(op, hasSeq);
  const int64_t dyn = ShapedType::kDynamic;
  auto qType = cast<RankedTensorType>(x.Q.getType());
  auto vType = cast<RankedTensorType>(x.V.getType());

  // Q fixes the layout: SISO (b, [L,] G, N) or MIMO (b, [L,] R, G, N).
  int64_t sisoRank = hasSeq ? 4 : 3;
  if (qType.getRank() != sisoRank && qType.getRank() != sisoRank + 1)
    return op->emitOpError()
           << "'Q' must have rank " << sisoRank << " (SISO: b, "
           << (hasSeq ? "L, " : "") << "G, N) or " << sisoRank + 1
           << " (MIMO: b, " << (hasSeq ? "L, " : "") << "R, G, N), got "
           << qType;
  bool mimo = qType.getRank() == sisoRank + 1;
  int64_t pos = 0;
  Axis b{qType.getDimSize(pos++), "b", "Q"};
  Axis L{hasSeq ? qType.getDimSize(pos++) : 1, "L", "Q"};
  Axis R{mimo ? qType.getDimSize(pos++) : 1, "R", "Q"};
  Axis G{qType.getDimSize(pos++), "G", "Q"};
  Axis N{qType.getDimSize(pos++), "N", "Q"};
  if (G.size == dyn || N.size == dyn || R.size == dyn)
    return op->emitOpError("only the batch and sequence axes may be dynamic; "
                           "'Q' has a dynamic R, G or N axis");

  // A packed variable-length batch: data (1, L, ...), states per sequence.
  Axis stateBatch = b;
  if (x.cuSeqlens) {
    auto cuType = cast<RankedTensorType>(x.cuSeqlens.getType());
    if (cuType.getRank() != 1 || !cuType.getElementType().isSignlessInteger(32))
      return op->emitOpError() << "'cu_seqlens' must be a 1-D tensor of i32 "
                                  "(sequences + 1 offsets), got "
                               << cuType;
    if (b.size != 1)
      return op->emitOpError()
             << "with 'cu_seqlens' the sequences are packed along L: 'Q' "
                "dimension 0 (b) must be 1, got "
             << (b.size == dyn ? std::string("?") : std::to_string(b.size));
    int64_t offsets = cuType.getDimSize(0);
    if (offsets != dyn && offsets < 2)
      return op->emitOpError() << "'cu_seqlens' needs at least 2 entries "
                                  "(one sequence), got "
                               << offsets;
    stateBatch = Axis{offsets == dyn ? dyn : offsets - 1, "sequences",
                      "cu_seqlens"};
  }

  // The rank attribute must match the layout.
  if (!mimo && x.rank != 1)
    return op->emitOpError() << "rank = " << x.rank
                             << " needs the MIMO layout of 'Q' (b, "
                             << (hasSeq ? "L, " : "")
                             << "R, G, N), but 'Q' is SISO-shaped: " << qType;
  if (mimo && R.size != x.rank)
    return op->emitOpError() << "rank = " << x.rank
                             << " but 'Q' dimension " << (hasSeq ? 2 : 1)
                             << " (R) is " << R.size;

  // V fixes H and P.
  if (vType.getRank() != (hasSeq ? 4 : 3))
    return op->emitOpError() << "'V' must have rank " << (hasSeq ? 4 : 3)
                             << (hasSeq ? " (b, L, H, P)" : " (b, H, P)")
                             << ", got " << vType;
  Axis H{vType.getDimSize(hasSeq ? 2 : 1), "H", "V"};
  Axis P{vType.getDimSize(hasSeq ? 3 : 2), "P", "V"};
  if (H.size == dyn || P.size == dyn)
    return op->emitOpError("only the batch and sequence axes may be dynamic; "
                           "'V' has a dynamic H or P axis");
  if (failed(checkNonEmpty(op, {R, G, N, H, P})))
    return failure();
  SmallVector<Axis> seq = hasSeq ? SmallVector<Axis>{L} : SmallVector<Axis>{};
  auto cat = [](std::initializer_list<ArrayRef<Axis>> parts) {
    SmallVector<Axis> all;
    for (ArrayRef<Axis> p : parts)
      all.append(p.begin(), p.end());
    return all;
  };
  SmallVector<Axis> rAxis = mimo ? SmallVector<Axis>{R} : SmallVector<Axis>{};

  if (failed(v.shape("V", x.V, cat({{b}, seq, {H, P}}))))
    return failure();
  if (H.size % G.size != 0)
    return op->emitOpError() << "the number of heads H = " << H.size
                             << " (from 'V') must be a multiple of the number "
                                "of groups G = "
                             << G.size << " (from 'Q')";

  // S: from the attribute, checked against N and Angles.
  Axis S{x.rotary.getAngles(), "S", "rotary"};
  if (2 * S.size > N.size)
    return op->emitOpError() << "rotary angles per head S = " << S.size
                             << " exceed N/2 = " << N.size / 2
                             << " (N = " << N.size << " from 'Q')";
  if (x.rotary.getPairing() == RotaryPairing::half_split && N.size % 2 != 0)
    return op->emitOpError() << "half_split rotary pairing needs an even N, "
                                "got N = "
                             << N.size;

  SmallVector<Axis> qkAxes = cat({{b}, seq, rAxis, {G, N}});
  SmallVector<Axis> bhl = cat({{b, H}, seq});
  SmallVector<Axis> biasAxes = cat({{H}, rAxis, {N}});
  SmallVector<Axis> stateK = cat({{stateBatch, H}, rAxis, {N}});
  SmallVector<Axis> stateV = cat({{stateBatch, H}, rAxis, {P}});
  SmallVector<Axis> ssmAxes{stateBatch, H, P, N};
  SmallVector<Axis> angleAxes{stateBatch, H, S};
  SmallVector<Axis> mimoAxes{H, R, P};

  if (failed(v.shape("K", x.K, qkAxes)) ||
      failed(v.shape("ADT", x.ADT, bhl)) || failed(v.shape("DT", x.DT, bhl)) ||
      failed(v.shape("Trap", x.Trap, bhl)) ||
      failed(v.shape("Q_bias", x.QBias, biasAxes)) ||
      failed(v.shape("K_bias", x.KBias, biasAxes)))
    return failure();
  // Angles per head (b, [L,] H, S), or shared by all heads (b, [L,] S):
  // what the model's projection produces, broadcast without a copy.
  SmallVector<Axis> perHead = cat({{b}, seq, {H, S}});
  SmallVector<Axis> shared = cat({{b}, seq, {S}});
  int64_t angleRank = cast<RankedTensorType>(x.Angles.getType()).getRank();
  if (angleRank != static_cast<int64_t>(perHead.size()) &&
      angleRank != static_cast<int64_t>(shared.size()))
    return op->emitOpError()
           << "'Angles' must have rank " << perHead.size() << " "
           << axesString(perHead) << " or " << shared.size() << " "
           << axesString(shared) << " (shared by all heads), got "
           << x.Angles.getType();
  if (failed(v.shape("Angles", x.Angles,
                     angleRank == static_cast<int64_t>(shared.size())
                         ? shared
                         : perHead)))
    return failure();
  if (x.D && failed(v.shape("D", x.D, {H})))
    return failure();
  if (x.Z && failed(v.shape("Z", x.Z, cat({{b}, seq, {H, P}}))))
    return failure();

  // Element types: data in bf16/f16/f32, decay/dt/angles in f32 (as the
  // official API has them), the state in the state type.
  if (!isStateFloat(x.stateType))
    return op->emitOpError() << "state_type must be f32 or bf16, got "
                             << x.stateType;
  Type qElem = qType.getElementType();
  if (failed(v.data("Q", x.Q)) || failed(v.data("V", x.V)) ||
      failed(v.data("Trap", x.Trap)) || failed(v.data("Q_bias", x.QBias)) ||
      failed(v.data("K_bias", x.KBias)) || failed(v.f32("ADT", x.ADT)) ||
      failed(v.f32("DT", x.DT)) || failed(v.f32("Angles", x.Angles)))
    return failure();
  if (cast<RankedTensorType>(x.K.getType()).getElementType() != qElem)
    return op->emitOpError() << "'K' must have the element type of 'Q' ("
                             << qElem << "), got "
                             << cast<RankedTensorType>(x.K.getType())
                                    .getElementType();
  if (x.D && failed(v.f32("D", x.D)))
    return failure();
  if (x.Z && cast<RankedTensorType>(x.Z.getType()).getElementType() !=
                 vType.getElementType())
    return op->emitOpError() << "'Z' must have the element type of 'V' ("
                             << vType.getElementType() << ")";

  // States (all four together for the scan; always present for the step).
  bool anyState = x.angle0 || x.ssm0 || x.k0 || x.v0;
  bool allStates = x.angle0 && x.ssm0 && x.k0 && x.v0;
  if (anyState && !allStates)
    return op->emitOpError("initial states come together: angle, ssm, k and "
                           "v are all given or none is");
  if (allStates) {
    if (failed(v.shape("angle state", x.angle0, angleAxes)) ||
        failed(v.f32("angle state", x.angle0)) ||
        failed(v.shape("ssm state", x.ssm0, ssmAxes)) ||
        failed(v.shape("k state", x.k0, stateK)) ||
        failed(v.shape("v state", x.v0, stateV)) ||
        failed(v.data("k state", x.k0)) || failed(v.data("v state", x.v0)))
      return failure();
    Type ssmElem = cast<RankedTensorType>(x.ssm0.getType()).getElementType();
    if (ssmElem != x.stateType)
      return op->emitOpError() << "'ssm state' must have element type "
                               << x.stateType << " (state_type), got "
                               << ssmElem;
  }

  // MIMO projections: V and O always with the MIMO layout, Z with Z.
  if (!mimo && (x.mimoV || x.mimoZ || x.mimoO))
    return op->emitOpError("MIMO projections need the MIMO layout of 'Q' "
                           "(a rank axis R)");
  if (mimo) {
    if (!x.mimoV)
      return op->emitOpError() << "the MIMO layout (R = " << R.size
                               << ") needs the 'mimo_v' projection (H, R, P)";
    if (x.Z && !x.mimoZ)
      return op->emitOpError("a MIMO layer with 'Z' needs the 'mimo_z' "
                             "projection (H, R, P)");
    if (!x.Z && x.mimoZ)
      return op->emitOpError("'mimo_z' is given but 'Z' is not");
    for (auto [name, value] :
         {std::pair<const char *, Value>{"mimo_v", x.mimoV},
          {"mimo_z", x.mimoZ},
          {"mimo_o", x.mimoO}})
      if (value && (failed(v.shape(name, value, mimoAxes)) ||
                    failed(v.f32(name, value))))
        return failure();
  }

  if (x.normWeight && (failed(v.shape("norm_weight", x.normWeight, {H, P})) ||
                       failed(v.f32("norm_weight", x.normWeight))))
    return failure();

  // Results: out in V's type, then the final angle, ssm, k and v states.
  Value out = x.results[0], angle = x.results[1], ssm = x.results[2],
        k = x.results[3], vs = x.results[4];
  // Without the down projection 'mimo_o' a MIMO layer's out keeps the rank
  // axis: y_{t,r} per rank, (b, [L,] R, H, P).
  SmallVector<Axis> outAxes =
      mimo && !x.mimoO ? cat({{b}, seq, {R, H, P}}) : cat({{b}, seq, {H, P}});
  if (failed(v.shape("out", out, outAxes)) ||
      failed(v.shape("final angle", angle, angleAxes)) ||
      failed(v.f32("final angle", angle)) ||
      failed(v.shape("final ssm", ssm, ssmAxes)) ||
      failed(v.shape("final k", k, stateK)) ||
      failed(v.shape("final v", vs, stateV)) ||
      failed(v.data("final k", k)) || failed(v.data("final v", vs)))
    return failure();
  if (cast<RankedTensorType>(out.getType()).getElementType() !=
      vType.getElementType())
    return op->emitOpError() << "'out' must have the element type of 'V' ("
                             << vType.getElementType() << ")";
  if (cast<RankedTensorType>(ssm.getType()).getElementType() != x.stateType)
    return op->emitOpError() << "'final ssm' must have element type "
                             << x.stateType << " (state_type)";
  return success();
}

} // namespace

LogicalResult ScanOp::verify() {
  return verifyLayer(*this,
                     getLayerOperands(*this, getInitAngle(), getInitSsm(),
                                      getInitK(), getInitV(), getCuSeqlens()),
                     /*hasSeq=*/true);
}

LogicalResult StepOp::verify() {
  return verifyLayer(*this,
                     getLayerOperands(*this, getStateAngle(), getStateSsm(),
                                      getStateK(), getStateV(), Value()),
                     /*hasSeq=*/false);
}

//===----------------------------------------------------------------------===//
// Expanded ops
//===----------------------------------------------------------------------===//

namespace {
int64_t dimOf(Value v, unsigned i) {
  return cast<RankedTensorType>(v.getType()).getDimSize(i);
}
int64_t rankOf(Value v) { return cast<RankedTensorType>(v.getType()).getRank(); }
} // namespace

LogicalResult DiscretizeOp::verify() {
  LayerVerifier v(*this, true);
  if (rankOf(getADT()) != 3)
    return emitOpError() << "'ADT' must have rank 3 (b, H, L), got "
                         << getADT().getType();
  Axis b{dimOf(getADT(), 0), "b", "ADT"}, H{dimOf(getADT(), 1), "H", "ADT"},
      L{dimOf(getADT(), 2), "L", "ADT"};
  for (auto [name, value] : {std::pair<const char *, Value>{"DT", getDT()},
                             {"Trap", getTrap()},
                             {"log_alpha", getLogAlpha()},
                             {"beta_over_alpha", getBetaOverAlpha()},
                             {"gamma", getGamma()}})
    if (failed(v.shape(name, value, {b, H, L})))
      return failure();
  if (failed(v.f32("ADT", getADT())) || failed(v.f32("DT", getDT())) ||
      failed(v.data("Trap", getTrap())) ||
      failed(v.f32("log_alpha", getLogAlpha())) ||
      failed(v.f32("beta_over_alpha", getBetaOverAlpha())) ||
      failed(v.f32("gamma", getGamma())))
    return failure();
  return success();
}

LogicalResult RotaryOp::verify() {
  LayerVerifier v(*this, true);
  int64_t qRank = rankOf(getQ());
  if (qRank != 4 && qRank != 5)
    return emitOpError() << "'Q' must have rank 4 (b, L, G, N) or 5 "
                            "(b, L, R, G, N), got "
                         << getQ().getType();
  bool mimo = qRank == 5;
  Axis b{dimOf(getQ(), 0), "b", "Q"}, L{dimOf(getQ(), 1), "L", "Q"};
  Axis R{mimo ? dimOf(getQ(), 2) : 1, "R", "Q"};
  Axis G{dimOf(getQ(), qRank - 2), "G", "Q"}, N{dimOf(getQ(), qRank - 1), "N", "Q"};
  if (rankOf(getAngles()) != 4 && rankOf(getAngles()) != 3)
    return emitOpError() << "'Angles' must have rank 4 (b, L, H, S) or 3 "
                            "(b, L, S), got "
                         << getAngles().getType();
  if (rankOf(getDT()) != 3)
    return emitOpError() << "'DT' must have rank 3 (b, H, L), got "
                         << getDT().getType();
  bool sharedAngles = rankOf(getAngles()) == 3;
  Axis H{dimOf(getDT(), 1), "H", "DT"};
  Axis S{getRotary().getAngles(), "S", "rotary"};
  if (H.size == ShapedType::kDynamic || G.size == ShapedType::kDynamic ||
      N.size == ShapedType::kDynamic)
    return emitOpError("only the batch and sequence axes may be dynamic");
  if (failed(checkNonEmpty(*this, {R, G, N, H})))
    return failure();
  if (H.size % G.size != 0)
    return emitOpError() << "H = " << H.size
                         << " must be a multiple of G = " << G.size;
  if (2 * S.size > N.size)
    return emitOpError() << "rotary angles per head S = " << S.size
                         << " exceed N/2 = " << N.size / 2;
  SmallVector<Axis> qk = mimo ? SmallVector<Axis>{b, L, R, G, N}
                              : SmallVector<Axis>{b, L, G, N};
  SmallVector<Axis> bias =
      mimo ? SmallVector<Axis>{H, R, N} : SmallVector<Axis>{H, N};
  if (failed(v.shape("K", getK(), qk)) ||
      failed(v.shape("Q_bias", getQBias(), bias)) ||
      failed(v.shape("K_bias", getKBias(), bias)) ||
      failed(v.shape("Angles", getAngles(),
                     sharedAngles ? SmallVector<Axis>{b, L, S}
                                  : SmallVector<Axis>{b, L, H, S})) ||
      failed(v.shape("DT", getDT(), {b, H, L})) ||
      failed(v.shape("rotated_q", getRotatedQ(), {b, L, R, H, N})) ||
      failed(v.shape("rotated_k", getRotatedK(), {b, L, R, H, N})) ||
      failed(v.shape("final angle", getFinalAngle(), {b, H, S})) ||
      failed(v.f32("rotated_q", getRotatedQ())) ||
      failed(v.f32("rotated_k", getRotatedK())) ||
      failed(v.f32("Angles", getAngles())) || failed(v.f32("DT", getDT())) ||
      failed(v.f32("final angle", getFinalAngle())))
    return failure();
  if (getInitAngle() &&
      (failed(v.shape("initial angle", getInitAngle(), {b, H, S})) ||
       failed(v.f32("initial angle", getInitAngle()))))
    return failure();
  return success();
}

LogicalResult RecurrenceOp::verify() {
  LayerVerifier v(*this, true);
  if (rankOf(getQ()) != 5)
    return emitOpError() << "'q' must have rank 5 (b, T, R, H, N), got "
                         << getQ().getType();
  if (rankOf(getLogAlpha()) != 3)
    return emitOpError() << "'log_alpha' must have rank 3 (b, H, L), got "
                         << getLogAlpha().getType();
  int64_t tpt = getTermsPerToken();
  Axis b{dimOf(getQ(), 0), "b", "q"}, T{dimOf(getQ(), 1), "T", "q"},
      R{dimOf(getQ(), 2), "R", "q"}, H{dimOf(getQ(), 3), "H", "q"},
      N{dimOf(getQ(), 4), "N", "q"};
  Axis L{dimOf(getLogAlpha(), 2), "L", "log_alpha"};
  if (rankOf(getV()) != 5)
    return emitOpError() << "'v' must have rank 5 (b, T, R, H, P), got "
                         << getV().getType();
  Axis P{dimOf(getV(), 4), "P", "v"};
  if (R.size == ShapedType::kDynamic || H.size == ShapedType::kDynamic ||
      N.size == ShapedType::kDynamic || P.size == ShapedType::kDynamic)
    return emitOpError("only the batch and sequence axes may be dynamic");
  if (T.size != ShapedType::kDynamic && L.size != ShapedType::kDynamic &&
      T.size != L.size * tpt)
    return emitOpError() << "the term axis T = " << T.size
                         << " must be L * terms_per_token = " << L.size
                         << " * " << tpt;
  Axis Rt{R.size * tpt, "R*terms_per_token", "q"};
  if (failed(v.shape("k", getK(), {b, T, R, H, N})) ||
      failed(v.shape("v", getV(), {b, T, R, H, P})) ||
      failed(v.shape("log_alpha", getLogAlpha(), {b, H, L})) ||
      failed(v.shape("beta_over_alpha", getBetaOverAlpha(), {b, H, L})) ||
      failed(v.shape("gamma", getGamma(), {b, H, L})) ||
      failed(v.shape("init_ssm", getInitSsm(), {b, H, P, N})) ||
      failed(v.shape("init_k", getInitK(), {b, H, Rt, N})) ||
      failed(v.shape("init_v", getInitV(), {b, H, Rt, P})) ||
      failed(v.shape("y", getY(), {b, T, R, H, P})) ||
      failed(v.shape("final_ssm", getFinalSsm(), {b, H, P, N})))
    return failure();
  for (Value value : getOperation()->getOperands())
    if (!cast<RankedTensorType>(value.getType()).getElementType().isF32())
      return emitOpError("operands must be f32 (the recurrence runs in the "
                         "accumulation type)");
  for (Value value : getOperation()->getResults())
    if (!cast<RankedTensorType>(value.getType()).getElementType().isF32())
      return emitOpError("results must be f32");
  return success();
}
