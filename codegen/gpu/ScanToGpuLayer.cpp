//===- ScanToGpuLayer.cpp - A scheduled layer as ssm-to-gpu reads it ------===//
//
// The static shape of an ssm.scan / ssm.step (layerShapeOf), the tensor
// types the kernels take (checkKernelTypes), and the layer a kernel computes
// read off what ssm-gpu-schedule left: a marked layer op or a chunk loop
// of scans, with its #ssmk.schedule (ScanToGpuLayer.h).
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ScanToGpuLayer.h"
#include "dialect/SsmDialect.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::scan_to_gpu;

namespace {

template <typename OpTy>
LayerShape shapeOf(OpTy op, bool step) {
  auto dims = [](Value v) { return cast<ShapedType>(v.getType()).getShape(); };
  ArrayRef<int64_t> q = dims(op.getQ()), v = dims(op.getV());
  bool mimo = op.isMimoLayout();
  LayerShape s;
  s.step = step;
  s.mimo = mimo;
  s.hasD = static_cast<bool>(op.getD());
  s.hasZ = static_cast<bool>(op.getZ());
  s.wrap = op.getWrapAngle();
  s.euler = op.getRule() == DiscretizationRule::euler;
  s.halfSplit = op.getRotary().getPairing() == RotaryPairing::half_split;
  s.broadcastAngles = op.hasBroadcastAngles();
  s.rmsNorm = static_cast<bool>(op.getNormWeight());
  s.perRankOutputs = op.hasPerRankOutputs();
  s.normEps = op.getNormEps().convertToFloat();
  s.batch = q[0];
  s.seqLen = step ? 1 : q[1];
  // A step always has its states; a scan may start from zeros.
  s.hasInit = true;
  if constexpr (std::is_same_v<OpTy, ScanOp>) {
    s.hasInit = static_cast<bool>(op.getInitSsm());
    s.varlen = op.isVarlen();
    // The sequences: the states' batch axis.
    if (s.varlen)
      s.batch = dims(op.getFinalSsm())[0];
  }
  s.rank = mimo ? q[q.size() - 3] : 1;
  s.groups = q[q.size() - 2];
  s.n = q.back();
  s.heads = v[v.size() - 2];
  s.p = v.back();
  s.s = op.getRotary().getAngles();
  s.dataType = cast<ShapedType>(op.getV().getType()).getElementType();
  return s;
}

} // namespace

LayerShape mlir::ssm::layerShapeOf(Operation *op) {
  if (auto step = dyn_cast<StepOp>(op))
    return shapeOf(step, true);
  return shapeOf(cast<ScanOp>(op), false);
}

LogicalResult mlir::ssm::checkKernelTypes(Operation *op, TypeRange operands,
                                          TypeRange results) {
  for (Type t : llvm::concat<const Type>(operands, results)) {
    // b and L may be sized at launch (the verifier allows no other
    // dynamic axis).
    ArrayRef<int64_t> shape = cast<ShapedType>(t).getShape();
    // MLIR's bare-pointer kernel ABI (convert-gpu-to-nvvm) has no form for
    // a memref with a zero-sized dimension, such as the angles of a layer
    // without rotary angles.
    if (llvm::is_contained(shape, 0))
      return op->emitOpError(
                 "GPU kernels cannot take empty tensors (MLIR's bare-pointer "
                 "arguments have no zero-sized form); got ")
             << t << ": give the layer rotary angles (S >= 2) or compile it "
                     "for the cpu target";
  }
  return success();
}


namespace {

/// The operand segment sizes of an ssm.scan (20 segments) or ssm.step (19).
SmallVector<int32_t> segmentsOf(Operation *op) {
  SmallVector<int32_t> result;
  auto fill = [&](auto layerOp, unsigned count) {
    for (unsigned i = 0; i < count; ++i)
      result.push_back(layerOp.getODSOperandIndexAndLength(i).second);
  };
  if (auto scan = dyn_cast<ScanOp>(op))
    fill(scan, kCuSeqlens + 1);
  else
    fill(cast<StepOp>(op), kCuSeqlens);
  return result;
}

/// Whether `value` is read: by an op other than a narrowing linalg.copy
/// (the bf16 ssm state's) whose own result nobody reads.
bool isUsed(Value value) {
  return llvm::any_of(value.getUsers(), [](Operation *user) {
    auto copy = dyn_cast<linalg::CopyOp>(user);
    return !copy || copy->getNumResults() == 0 ||
           !copy->getResult(0).use_empty();
  });
}

/// The #ssmk.schedule ssm-gpu-schedule put on `holder` (the chunk loop, or
/// the layer op), into `layer`: its kind, the chunk, chunks per block, block
/// size, and the chunked kernel's full chunks, engines and buffers in its
/// shape.
LogicalResult readSchedule(Operation *holder, Layer &layer) {
  auto schedule =
      holder->getAttrOfType<ssmk::ScheduleAttr>(ssmk::kScheduleAttrName);
  if (!schedule)
    return holder->emitOpError()
           << "ssm-to-gpu: the layer has no " << ssmk::kScheduleAttrName
           << "; run ssm-gpu-schedule first";
  layer.schedule = schedule.getKind();
  layer.chunkTokens = schedule.getChunk();
  layer.chunksPerBlock = schedule.getChunksPerBlock();
  layer.blockSize = schedule.getBlockSize();
  layer.shape.fullChunks = schedule.getFullChunks();
  layer.shape.mma = schedule.getMma();
  layer.shape.qkBuffers = schedule.getQkBuffers();
  return success();
}

} // namespace

/// A layer op that ssm-gpu-schedule marked.
FailureOr<Layer> scan_to_gpu::layerOfOp(Operation *op) {
  Layer layer;
  layer.op = op;
  llvm::append_range(layer.operands, op->getOperands());
  layer.segments = segmentsOf(op);
  llvm::append_range(layer.resultTypes, op->getResultTypes());
  if (failed(checkKernelTypes(op, op->getOperandTypes(), op->getResultTypes())))
    return failure();
  layer.shape = layerShapeOf(op);
  if (failed(readSchedule(op, layer)))
    return failure();
  layer.writesStates = llvm::any_of(op->getResults().drop_front(), isUsed);
  return layer;
}

/// A chunk loop of ssm-gpu-schedule (ssm-tile-sequence's form): the layer
/// it computes, read off the loop. The chunk scan's token operands are
/// slices of whole-sequence tensors defined above the loop; its states are
/// the loop's carried values, which start from the layer's initial states
/// (widened to f32 by a linalg.copy for a bf16 state) or from zeros (a
/// linalg.fill); the ssm result may be narrowed after the loop.
FailureOr<Layer> scan_to_gpu::layerOfLoop(scf::ForOp loop) {
  SmallVector<ScanOp> scans;
  loop.getBody()->walk([&](ScanOp scan) { scans.push_back(scan); });
  if (scans.size() != 1 || loop.getNumResults() != 5)
    return loop.emitOpError("ssm-to-gpu: a chunk loop runs one ssm.scan per "
                            "chunk and carries out and the four states");
  ScanOp scan = scans.front();
  Layer layer;
  layer.op = scan;
  layer.loop = loop;
  std::optional<int64_t> step = getConstantIntValue(loop.getStep());
  std::optional<int64_t> lower = getConstantIntValue(loop.getLowerBound());
  if (!step || !lower || *lower != 0)
    return loop.emitOpError("ssm-to-gpu: a chunk loop starts at 0 and steps "
                            "by a constant chunk");

  // The initial state behind a carried value, or null for zeros.
  auto initialState = [&](Value init) -> FailureOr<Value> {
    if (auto fill = init.getDefiningOp<linalg::FillOp>()) {
      if (matchPattern(fill.getInputs()[0], m_AnyZeroFloat()))
        return Value();
      return FailureOr<Value>(failure());
    }
    if (auto copy = init.getDefiningOp<linalg::CopyOp>())
      return copy.getInputs()[0];
    return init;
  };
  Block *body = loop.getBody();
  SmallVector<Value> states;
  for (Value operand : scan->getOperands()) {
    Value outer = operand;
    if (auto arg = dyn_cast<BlockArgument>(operand);
        arg && arg.getOwner() == body && arg.getArgNumber() > 0) {
      FailureOr<Value> init =
          initialState(loop.getInitArgs()[arg.getArgNumber() - 1]);
      if (failed(init))
        return loop.emitOpError("ssm-to-gpu: a chunk loop's states start from "
                                "the layer's initial states or zeros");
      states.push_back(*init);
      if (!*init)
        continue;
      outer = *init;
    } else if (auto slice = operand.getDefiningOp<tensor::ExtractSliceOp>();
               slice && loop->isProperAncestor(slice)) {
      // The chunk's tokens: offset c on the token axis, 0 elsewhere.
      int64_t atChunk = 0;
      for (OpFoldResult offset : slice.getMixedOffsets()) {
        if (auto v = dyn_cast<Value>(offset); v == loop.getInductionVar())
          ++atChunk;
        else if (!isZeroInteger(offset))
          atChunk = 2;
      }
      if (atChunk != 1)
        return slice.emitOpError("ssm-to-gpu: a chunk scan reads its chunk's "
                                 "tokens, at the loop's chunk start");
      outer = slice.getSource();
    }
    if (!loop.isDefinedOutsideOfLoop(outer))
      return loop.emitOpError("ssm-to-gpu: a chunk scan reads slices of "
                              "values defined above its loop");
    layer.operands.push_back(outer);
  }
  layer.segments = segmentsOf(scan);
  // All four states, or none (zeros).
  bool hasInit = llvm::all_of(states, [](Value v) { return v; });
  if (states.size() != 4 ||
      (!hasInit && llvm::any_of(states, [](Value v) { return v; })))
    return loop.emitOpError("ssm-to-gpu: a chunk loop carries the four "
                            "states, all from the layer's or all zeros");
  for (unsigned i = kInitAngle; i <= kInitV; ++i)
    layer.segments[i] = hasInit ? 1 : 0;
  layer.writesStates = llvm::any_of(loop.getResults().drop_front(), isUsed);
  for (Value result : loop.getResults()) {
    Type type = result.getType();
    // A narrowed ssm state: the layer writes the narrow type. (With a
    // dynamic batch, tensor.dim also reads the result, to size the copy's
    // destination.)
    if (result == loop.getResult(2)) {
      SmallVector<Operation *> readers;
      for (Operation *user : result.getUsers())
        if (!isa<tensor::DimOp>(user))
          readers.push_back(user);
      if (readers.size() == 1)
        if (auto copy = dyn_cast<linalg::CopyOp>(readers.front()))
          type = copy.getResultTypes()[0];
    }
    layer.resultTypes.push_back(type);
  }
  if (failed(checkKernelTypes(loop, ValueRange(layer.operands).getTypes(),
                              layer.resultTypes)))
    return failure();
  layer.shape = layerShapeOf(scan);
  layer.shape.seqLen =
      cast<ShapedType>(layer.operand(kV).getType()).getDimSize(1);
  layer.shape.hasInit = hasInit;
  if (failed(readSchedule(loop, layer)))
    return failure();
  if (layer.schedule == ssmk::ScheduleKind::tokens)
    return loop.emitOpError("ssm-to-gpu: a chunk loop has a chunked schedule "
                            "(chunked or chunk_parallel), not tokens");
  if (layer.chunkTokens != *step)
    return loop.emitOpError()
           << "ssm-to-gpu: the schedule's chunk is " << layer.chunkTokens
           << " tokens, but the loop steps by " << *step;
  if (layer.shape.fullChunks && !layer.shape.dynamicSeqLen())
    return loop.emitOpError("ssm-to-gpu: full_chunks is for a chunk loop "
                            "over a length sized at launch");
  return layer;
}

KernelArgs scan_to_gpu::argsOf(const Layer &layer, ValueRange kernelArgs) {
  // Kernel arguments mirror the layer: operands in order, then the 5
  // results (`out` alone when no state is used); optional operands by their
  // segment.
  KernelArgs a;
  unsigned res = layer.operands.size();
  auto segment = [&](unsigned index) -> Value {
    std::optional<unsigned> at = layer.position(index);
    return at ? kernelArgs[*at] : Value();
  };
  a.Q = segment(kQ);
  a.K = segment(kK);
  a.V = segment(kV);
  a.ADT = segment(kADT);
  a.DT = segment(kDT);
  a.Trap = segment(kTrap);
  a.QBias = segment(kQBias);
  a.KBias = segment(kKBias);
  a.Angles = segment(kAngles);
  a.D = segment(kD);
  a.Z = segment(kZ);
  a.angle0 = segment(kInitAngle);
  a.ssm0 = segment(kInitSsm);
  a.k0 = segment(kInitK);
  a.v0 = segment(kInitV);
  a.mimoV = segment(kMimoV);
  a.mimoZ = segment(kMimoZ);
  a.mimoO = segment(kMimoO);
  a.normWeight = segment(kNormWeight);
  a.cuSeqlens = segment(kCuSeqlens);
  a.out = kernelArgs[res];
  if (layer.writesStates) {
    a.angle = kernelArgs[res + 1];
    a.ssm = kernelArgs[res + 2];
    a.k = kernelArgs[res + 3];
    a.v = kernelArgs[res + 4];
  }
  return a;
}
