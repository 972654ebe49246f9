//===- LayerModule.cpp - One Mamba-3 layer as a kernel module -------------===//

#include "codegen/LayerModule.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <tuple>

using namespace mlir;
using namespace mlir::ssm;

//===----------------------------------------------------------------------===//
// LayerSpec
//===----------------------------------------------------------------------===//

std::string LayerSpec::kindName() const { return step ? "step" : "scan"; }

std::string LayerSpec::entryName() const { return "mamba3_" + kindName(); }

StringRef mlir::ssm::stringifyLayerDataType(LayerDataType type) {
  switch (type) {
  case LayerDataType::f32:
    return "f32";
  case LayerDataType::bf16:
    return "bf16";
  case LayerDataType::f16:
    return "f16";
  case LayerDataType::i32:
    return "i32";
  }
  llvm_unreachable("unknown LayerDataType");
}

static std::string dimString(int64_t size) {
  return ShapedType::isDynamic(size) ? "?" : std::to_string(size);
}

std::string LayerSpec::canonicalString() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  // A step has no sequence axis: seqlen must not make two identical step
  // kernels hash differently.
  os << "kind=" << kindName() << ";batch=" << dimString(batch)
     << ";seqlen=" << (step ? "-" : dimString(seqlen)) << ";heads=" << heads
     << ";groups=" << groups << ";state=" << state << ";headdim=" << headdim
     << ";angles=" << angles << ";rank=" << rank << ";mimo=" << mimo
     << ";d=" << hasD << ";z=" << hasZ
     << ";init=" << (step || hasInitialState) << ";wrap=" << wrapAngle
     << ";broadcast_angles=" << broadcastAngles << ";varlen=" << varlen;
  // Only when on, so that the hashes of layers without it stay as they were.
  if (!finalStates)
    os << ";final_states=0";
  if (perRankOutputs)
    os << ";per_rank_outputs=1";
  if (rmsNorm)
    os << ";rmsnorm=1;norm_eps=" << llvm::format("%g", normEps);
  os << ";state_dtype=" << (bf16State ? "bf16" : "f32")
     << ";rule=" << stringifyDiscretizationRule(rule)
     << ";pairing=" << stringifyRotaryPairing(pairing)
     << ";dtype=" << stringifyLayerDataType(dataType);
  // Only when not f32, so that the hashes of earlier layers stay as they were.
  for (auto [name, type] : {std::pair<const char *, LayerDataType>{
                                "trap_dtype", trapType},
                            {"bias_dtype", biasType},
                            {"k_state_dtype", kStateType},
                            {"v_state_dtype", vStateType}})
    if (type != LayerDataType::f32)
      os << ";" << name << "=" << stringifyLayerDataType(type);
  os << ";chunk=" << chunkSize;
  return s;
}

uint64_t mlir::ssm::fnv1a64(llvm::StringRef bytes, uint64_t hash) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL; // FNV prime
  }
  return hash;
}

std::string LayerSpec::configHash() const {
  std::string s;
  llvm::raw_string_ostream(s)
      << llvm::format_hex_no_prefix(fnv1a64(canonicalString()), 16);
  return s;
}

std::string LayerSpec::checkRanges() const {
  auto positive = [](int64_t v) { return v > 0; };
  auto positiveOrDynamic = [](int64_t v) {
    return v > 0 || ShapedType::isDynamic(v);
  };
  if (!positiveOrDynamic(batch))
    return "batch must be positive (or dynamic), got " + std::to_string(batch);
  if (!step && !positiveOrDynamic(seqlen))
    return "seqlen must be positive (or dynamic), got " +
           std::to_string(seqlen);
  for (auto [name, value] : {std::pair<const char *, int64_t>{"heads", heads},
                             {"groups", groups},
                             {"state (N)", state},
                             {"headdim (P)", headdim},
                             {"rank (R)", rank}})
    if (!positive(value))
      return std::string(name) + " must be positive, got " +
             std::to_string(value);
  if (angles < 0)
    return "angles (S) must be >= 0, got " + std::to_string(angles);
  // Bounds that keep every element count and byte offset in 64 bits and
  // the token offsets (i32 cu_seqlens, 32-bit grid axes) in 32; real layers
  // are far inside them.
  for (auto [name, value, limit] :
       {std::tuple<const char *, int64_t, int64_t>{"heads", heads, 1 << 16},
        {"groups", groups, 1 << 16},
        {"state (N)", state, 1 << 16},
        {"headdim (P)", headdim, 1 << 16},
        {"rank (R)", rank, 1 << 10},
        {"angles (S)", angles, 1 << 15}})
    if (value > limit)
      return std::string(name) + " = " + std::to_string(value) +
             " exceeds the compiler's limit of " + std::to_string(limit);
  constexpr int64_t kMaxTokens = (int64_t(1) << 31) - 1;
  if (!ShapedType::isDynamic(batch) && batch > kMaxTokens)
    return "batch = " + std::to_string(batch) + " exceeds 2^31 - 1";
  if (!step && !ShapedType::isDynamic(seqlen) && seqlen > kMaxTokens)
    return "seqlen = " + std::to_string(seqlen) +
           " exceeds 2^31 - 1 (cu_seqlens and the grid are 32-bit)";
  if (varlen && !ShapedType::isDynamic(batch) &&
      !ShapedType::isDynamic(seqlen) && seqlen < batch)
    return "varlen packs " + std::to_string(batch) +
           " sequences of at least one token each into seqlen = " +
           std::to_string(seqlen) + " tokens; seqlen must be at least the "
           "batch";
  if (!std::isfinite(normEps) || !(normEps > 0))
    return "norm eps must be a positive finite number";
  if (!mimo && rank != 1)
    return "rank (R) = " + std::to_string(rank) +
           " needs the MIMO layout (--mimo); SISO layers have rank 1";
  if (perRankOutputs && !mimo)
    return "per-rank outputs (no down projection mimo_o) need the MIMO "
           "layout (--mimo)";
  if (!finalStates && step)
    return "a decode step writes its new states; leaving out the final "
           "states applies to a scan";
  if (varlen && step)
    return "varlen (cu_seqlens) applies to a scan; a decode step has one "
           "token per sequence";
  for (auto [name, type] : {std::pair<const char *, LayerDataType>{
                                "Trap", trapType},
                            {"the biases", biasType},
                            {"the k state", kStateType},
                            {"the v state", vStateType}})
    if (type == LayerDataType::i32)
      return std::string(name) + " must be f32, bf16 or f16, not i32";
  if (chunkSize < 0 || chunkSize > 1024)
    return "chunk size must be 0 (token by token) or 1 to 1024, got " +
           std::to_string(chunkSize);
  return "";
}

//===----------------------------------------------------------------------===//
// Arguments
//===----------------------------------------------------------------------===//

/// Arguments with a token axis: packed into batch 1 in a varlen layer.
static const char *const kTokenArguments[] = {"Q", "K", "V", "ADT", "DT",
                                              "Trap", "Angles", "Z", "out"};

std::vector<LayerArgument> mlir::ssm::getLayerArguments(const LayerSpec &s) {
  auto size = [&](StringRef axis) -> int64_t {
    return llvm::StringSwitch<int64_t>(axis)
        .Case("b", s.batch)
        .Case("L", s.seqlen)
        .Case("R", s.rank)
        .Case("G", s.groups)
        .Case("H", s.heads)
        .Case("N", s.state)
        .Case("P", s.headdim)
        .Case("S", s.angles);
  };
  std::vector<LayerArgument> args;
  auto add = [&](StringRef name, bool isOutput,
                 std::initializer_list<const char *> parts, bool isData) {
    LayerArgument a;
    a.name = name.str();
    a.isOutput = isOutput;
    a.isData = isData;
    for (const char *axis : parts) {
      // "L" and "R" are present only for a scan / a MIMO layer.
      if ((axis == StringRef("L") && s.step) ||
          (axis == StringRef("R") && !s.mimo))
        continue;
      // Shared angles have no head axis.
      if (axis == StringRef("H") && name == "Angles" && s.broadcastAngles)
        continue;
      // Varlen data tensors pack every sequence into one batch row.
      if (axis == StringRef("b") && s.varlen &&
          llvm::is_contained(kTokenArguments, a.name)) {
        a.axes.push_back("1");
        a.shape.push_back(1);
        continue;
      }
      a.axes.push_back(axis);
      a.shape.push_back(size(axis));
    }
    args.push_back(std::move(a));
  };
  const bool in = false, out = true;
  add("Q", in, {"b", "L", "R", "G", "N"}, true);
  add("K", in, {"b", "L", "R", "G", "N"}, true);
  add("V", in, {"b", "L", "H", "P"}, true);
  add("ADT", in, {"b", "H", "L"}, false);
  add("DT", in, {"b", "H", "L"}, false);
  add("Trap", in, {"b", "H", "L"}, false);
  add("Q_bias", in, {"H", "R", "N"}, false);
  add("K_bias", in, {"H", "R", "N"}, false);
  add("Angles", in, {"b", "L", "H", "S"}, false);
  if (s.hasD)
    add("D", in, {"H"}, false);
  if (s.hasZ)
    add("Z", in, {"b", "L", "H", "P"}, true);
  if (s.step || s.hasInitialState) {
    add("angle0", in, {"b", "H", "S"}, false);
    add("ssm0", in, {"b", "H", "P", "N"}, false);
    add("k0", in, {"b", "H", "R", "N"}, false);
    add("v0", in, {"b", "H", "R", "P"}, false);
  }
  if (s.mimo) {
    // With the MIMO layout the R axis is always there, even for R = 1.
    add("mimo_v", in, {"H", "R", "P"}, false);
    if (s.hasZ)
      add("mimo_z", in, {"H", "R", "P"}, false);
    if (!s.perRankOutputs)
      add("mimo_o", in, {"H", "R", "P"}, false);
  }
  if (s.rmsNorm)
    add("norm_weight", in, {"H", "P"}, false);
  if (s.varlen) {
    LayerArgument cu;
    cu.name = "cu_seqlens";
    cu.axes = {"b+1"};
    cu.shape = {ShapedType::isDynamic(s.batch) ? ShapedType::kDynamic
                                                : s.batch + 1};
    args.push_back(std::move(cu));
  }
  if (s.perRankOutputs)
    add("out", out, {"b", "L", "R", "H", "P"}, true);
  else
    add("out", out, {"b", "L", "H", "P"}, true);
  if (s.finalStates) {
    add("angle", out, {"b", "H", "S"}, false);
    add("ssm", out, {"b", "H", "P", "N"}, false);
    add("k", out, {"b", "H", "R", "N"}, false);
    add("v", out, {"b", "H", "R", "P"}, false);
  }
  return args;
}

LayerDataType mlir::ssm::argumentDataType(const LayerSpec &spec,
                                          const LayerArgument &arg) {
  if (arg.name == "cu_seqlens")
    return LayerDataType::i32;
  if (arg.isData)
    return spec.dataType;
  if (spec.bf16State && (arg.name == "ssm0" || arg.name == "ssm"))
    return LayerDataType::bf16;
  return llvm::StringSwitch<LayerDataType>(arg.name)
      .Case("Trap", spec.trapType)
      .Cases({"Q_bias", "K_bias"}, spec.biasType)
      .Cases({"k0", "k"}, spec.kStateType)
      .Cases({"v0", "v"}, spec.vStateType)
      .Default(LayerDataType::f32);
}

static Type elementType(MLIRContext &ctx, const LayerSpec &spec,
                        const LayerArgument &arg) {
  switch (argumentDataType(spec, arg)) {
  case LayerDataType::bf16:
    return BFloat16Type::get(&ctx);
  case LayerDataType::f16:
    return Float16Type::get(&ctx);
  case LayerDataType::i32:
    return IntegerType::get(&ctx, 32);
  case LayerDataType::f32:
    break;
  }
  return Float32Type::get(&ctx);
}

//===----------------------------------------------------------------------===//
// buildLayerModule
//===----------------------------------------------------------------------===//

OwningOpRef<ModuleOp> mlir::ssm::buildLayerModule(MLIRContext &ctx,
                                                  const LayerSpec &spec,
                                                  Location loc) {
  if (std::string error = spec.checkRanges(); !error.empty()) {
    emitError(loc) << error;
    return nullptr;
  }
  ctx.loadDialect<func::FuncDialect, bufferization::BufferizationDialect,
                  memref::MemRefDialect, tensor::TensorDialect, SsmDialect>();
  RotaryAttr rotary = RotaryAttr::getChecked(
      [&] { return emitError(loc); }, &ctx, spec.angles, spec.pairing);
  if (!rotary)
    return nullptr;

  std::vector<LayerArgument> args = getLayerArguments(spec);
  SmallVector<Type> argTypes;
  for (const LayerArgument &a : args)
    argTypes.push_back(MemRefType::get(a.shape, elementType(ctx, spec, a)));

  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder b(&ctx);
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, loc, spec.entryName(),
                                   b.getFunctionType(argTypes, {}));
  // Asks convert-func-to-llvm for the `_mlir_ciface_` wrapper: the stable
  // ABI (one descriptor pointer per memref) that the runtime calls.
  func->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);

  // `restrict`: the runtime passes distinct, non-aliasing buffers, which lets
  // bufferization read inputs in place and write outputs directly.
  llvm::StringMap<Value> inputs;
  SmallVector<Value> outputs;
  for (auto [a, arg] : llvm::zip(args, entry->getArguments())) {
    auto tensorType =
        RankedTensorType::get(a.shape, elementType(ctx, spec, a));
    if (a.isOutput) {
      outputs.push_back(arg);
      continue;
    }
    inputs[a.name] = bufferization::ToTensorOp::create(
        b, loc, tensorType, arg, /*restrict=*/true, /*writable=*/false);
  }
  auto get = [&](StringRef name) { return inputs.lookup(name); };
  // The op always has its five results; without finalStates the four
  // states are left unused, and ssm-to-gpu gives the kernel no arguments
  // for them (it writes only what is used).
  LayerSpec withStates = spec;
  withStates.finalStates = true;
  SmallVector<Type> resultTypes;
  for (const LayerArgument &a : getLayerArguments(withStates))
    if (a.isOutput)
      resultTypes.push_back(
          RankedTensorType::get(a.shape, elementType(ctx, spec, a)));

  TypeAttr stateType =
      spec.bf16State ? TypeAttr::get(BFloat16Type::get(&ctx)) : TypeAttr();
  Operation *layer;
  if (spec.step)
    layer = StepOp::create(
        b, loc, resultTypes, get("Q"), get("K"), get("V"), get("ADT"),
        get("DT"), get("Trap"), get("Q_bias"), get("K_bias"), get("Angles"),
        get("D"), get("Z"), get("angle0"), get("ssm0"), get("k0"), get("v0"),
        get("mimo_v"), get("mimo_z"), get("mimo_o"), get("norm_weight"),
        spec.rule, rotary, static_cast<uint64_t>(spec.rank), stateType,
        spec.wrapAngle, llvm::APFloat(spec.normEps));
  else
    layer = ScanOp::create(
        b, loc, resultTypes, get("Q"), get("K"), get("V"), get("ADT"),
        get("DT"), get("Trap"), get("Q_bias"), get("K_bias"), get("Angles"),
        get("D"), get("Z"), get("angle0"), get("ssm0"), get("k0"), get("v0"),
        get("mimo_v"), get("mimo_z"), get("mimo_o"), get("norm_weight"),
        get("cu_seqlens"), spec.rule, rotary, static_cast<uint64_t>(spec.rank),
        stateType, spec.wrapAngle, llvm::APFloat(spec.normEps));

  for (auto [result, dest] : llvm::zip(layer->getResults(), outputs))
    bufferization::MaterializeInDestinationOp::create(
        b, loc, /*result=*/Type(), result, dest, /*restrict=*/true,
        /*writable=*/true);
  func::ReturnOp::create(b, loc);
  return module;
}

//===----------------------------------------------------------------------===//
// layerSpecFromModule
//===----------------------------------------------------------------------===//

namespace {

/// bf16 or f16 for a tensor of that type, else f32 (another type then
/// fails the interface check with the type it should have).
LayerDataType floatTypeOf(Value value) {
  Type t = cast<RankedTensorType>(value.getType()).getElementType();
  return t.isBF16() ? LayerDataType::bf16
         : t.isF16() ? LayerDataType::f16
                     : LayerDataType::f32;
}

template <typename OpTy>
LayerSpec specFromOp(OpTy op, bool step) {
  LayerSpec s;
  s.step = step;
  auto qType = cast<RankedTensorType>(op.getQ().getType());
  auto vType = cast<RankedTensorType>(op.getV().getType());
  s.mimo = op.isMimoLayout();
  int64_t pos = 0;
  s.batch = qType.getDimSize(pos++);
  if (!step)
    s.seqlen = qType.getDimSize(pos++);
  if (s.mimo)
    pos++; // R comes from the rank attribute (checked by the verifier)
  s.groups = qType.getDimSize(pos++);
  s.state = qType.getDimSize(pos++);
  s.heads = vType.getDimSize(vType.getRank() - 2);
  s.headdim = vType.getDimSize(vType.getRank() - 1);
  s.rank = op.getRank();
  s.angles = op.getRotary().getAngles();
  s.pairing = op.getRotary().getPairing();
  s.rule = op.getRule();
  s.wrapAngle = op.getWrapAngle();
  s.broadcastAngles = op.hasBroadcastAngles();
  s.bf16State = op.getStateElementType().isBF16();
  s.hasD = static_cast<bool>(op.getD());
  s.hasZ = static_cast<bool>(op.getZ());
  s.rmsNorm = static_cast<bool>(op.getNormWeight());
  s.perRankOutputs = op.hasPerRankOutputs();
  s.normEps = op.getNormEps().convertToFloat();
  s.dataType = floatTypeOf(op.getV());
  s.trapType = floatTypeOf(op.getTrap());
  s.biasType = floatTypeOf(op.getQBias());
  // The final states are always there; the initial ones must match them.
  s.kStateType = floatTypeOf(op->getResult(3));
  s.vStateType = floatTypeOf(op->getResult(4));
  return s;
}

} // namespace

FailureOr<LayerSpec> mlir::ssm::layerSpecFromModule(ModuleOp module) {
  SmallVector<Operation *> layers;
  module.walk([&](Operation *op) {
    if (isa<ScanOp, StepOp>(op))
      layers.push_back(op);
  });
  if (layers.empty())
    return module.emitError(
        "no ssm.scan or ssm.step to compile: the input must hold exactly one");
  if (layers.size() > 1) {
    InFlightDiagnostic diag = layers[1]->emitError()
                              << "the input holds " << layers.size()
                              << " ssm.scan/ssm.step ops; a kernel compiles "
                                 "exactly one";
    diag.attachNote(layers[0]->getLoc()) << "the first one is here";
    return diag;
  }
  Operation *op = layers.front();
  LayerSpec spec;
  if (auto scan = dyn_cast<ScanOp>(op)) {
    spec = specFromOp(scan, /*step=*/false);
    spec.hasInitialState = static_cast<bool>(scan.getInitAngle());
    if (scan.isVarlen()) {
      // The batch is the number of sequences, the states' batch axis.
      spec.varlen = true;
      spec.batch = cast<RankedTensorType>(scan.getFinalSsm().getType())
                       .getDimSize(0);
    }
  } else {
    spec = specFromOp(cast<StepOp>(op), /*step=*/true);
    spec.hasInitialState = true;
  }
  Type vElem = cast<RankedTensorType>(op->getOperand(2).getType())
                   .getElementType();
  if (!vElem.isF32() && !vElem.isBF16() && !vElem.isF16())
    return op->emitError() << "kernels take f32, bf16 or f16 data; 'V' has "
                           << vElem;

  // The op's operands and results are, in order, exactly the entry function's
  // arguments (absent optional operands drop out of both lists), so the
  // interface can be checked one by one.
  std::vector<LayerArgument> args = getLayerArguments(spec);
  SmallVector<Value> values(op->getOperands());
  llvm::append_range(values, op->getResults());
  if (values.size() != args.size())
    return op->emitError() << "internal error: " << values.size()
                           << " operands and results, but the kernel "
                              "interface has "
                           << args.size() << " arguments";
  MLIRContext &ctx = *module.getContext();
  for (auto [a, value] : llvm::zip(args, values)) {
    auto expected = RankedTensorType::get(a.shape, elementType(ctx, spec, a));
    if (value.getType() != expected)
      return op->emitError()
             << "'" << a.name << "' has type " << value.getType()
             << ", but the kernel interface of this configuration takes "
             << expected
             << " (Q, K, V, Z and out share one data type; Q_bias and "
                "K_bias share f32, bf16 or f16, as do k0 and k, and v0 "
                "and v; Trap is f32, bf16 or f16; the ssm states take the state type; "
                "every other tensor is f32; b and L are dynamic in every "
                "tensor or in none)";
  }
  return spec;
}
