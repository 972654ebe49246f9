//===- KernelOps.cpp - The ssmk kernel ops: emitted and built -------------===//
//
// ssm-to-gpu emits one ssmk op per kernel body (ssmk.token_scan,
// ssmk.decode_step, ssmk.chunked_scan, ssmk.chunk_boundaries): the layer as
// a typed #ssmk.layer, the kernel's buffers by role, and the block size,
// chunk, phase and span it is built for; ssmk-plan-shared-memory adds a
// chunked kernel's #ssmk.plan. ssmk-build-kernels then builds each body
// with the kernel builders of this folder. Between the two the IR states
// what each kernel is, in a few lines per kernel.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/GpuKernel.h"
#include "codegen/gpu/GpuPasses.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

using namespace mlir;
using namespace mlir::ssm;

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMKBUILDKERNELS
#include "codegen/gpu/GpuPasses.h.inc"
} // namespace mlir::ssm

ssmk::LayerAttr mlir::ssm::layerAttrOf(MLIRContext *ctx,
                                       const LayerShape &s) {
  // Sizes at launch are 0 in the attribute.
  auto size = [](int64_t v) { return ShapedType::isDynamic(v) ? 0 : v; };
  FloatAttr eps = s.normEps != 0
                      ? FloatAttr::get(Float32Type::get(ctx), s.normEps)
                      : FloatAttr();
  return ssmk::LayerAttr::get(
      ctx, size(s.batch), size(s.seqLen), s.heads, s.groups, s.n, s.p, s.s,
      s.rank, s.dataType, s.step, s.mimo, s.hasD, s.hasZ, s.hasInit, s.wrap,
      s.euler, s.halfSplit, s.broadcastAngles, s.varlen, s.rmsNorm,
      s.perRankOutputs, s.fullChunks, s.mma, s.qkBuffers, eps);
}

LayerShape mlir::ssm::layerShapeOf(ssmk::LayerAttr l) {
  auto size = [](int64_t v) { return v == 0 ? ShapedType::kDynamic : v; };
  LayerShape s;
  s.step = l.getStep();
  s.mimo = l.getMimo();
  s.hasD = l.getHasD();
  s.hasZ = l.getHasZ();
  s.hasInit = l.getHasInit();
  s.wrap = l.getWrap();
  s.euler = l.getEuler();
  s.halfSplit = l.getHalfSplit();
  s.broadcastAngles = l.getBroadcastAngles();
  s.varlen = l.getVarlen();
  s.rmsNorm = l.getRmsNorm();
  s.perRankOutputs = l.getPerRankOutputs();
  s.fullChunks = l.getFullChunks();
  s.mma = l.getMma();
  s.qkBuffers = l.getQkBuffers();
  s.normEps = l.getNormEps()
                  ? static_cast<float>(l.getNormEps().getValueAsDouble())
                  : 0.0f;
  s.batch = size(l.getBatch());
  s.seqLen = size(l.getSeqLen());
  s.rank = l.getRank();
  s.groups = l.getGroups();
  s.n = l.getState();
  s.heads = l.getHeads();
  s.p = l.getHeadDim();
  s.s = l.getAngles();
  s.dataType = l.getDataType();
  return s;
}

namespace {

/// Ends the body of `kernel` (so far without a terminator) with a KernelOp
/// over the buffers `a` by role, `shape` as its #ssmk.layer and then
/// `attributes`, and a gpu.return that keeps the function valid until the
/// body is built.
template <typename KernelOp, typename... Attributes>
void emitKernelOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                  const KernelArgs &a, Attributes... attributes) {
  OpBuilder b(kernel.getContext());
  b.setInsertionPointToEnd(&kernel.getBody().front());
  Location loc = kernel.getLoc();
  KernelOp::create(b, loc, a.Q, a.K, a.V, a.ADT, a.DT, a.Trap, a.QBias,
                   a.KBias, a.Angles, a.D, a.Z, a.angle0, a.ssm0, a.k0, a.v0,
                   a.mimoV, a.mimoZ, a.mimoO, a.normWeight, a.out, a.angle,
                   a.ssm, a.k, a.v, a.cuSeqlens, a.chunkStates, a.chunkDecay,
                   a.chunkAngleEnd, a.chunkAngleStart, a.qMap, a.kMap,
                   a.seqLen, a.chunksPerBlock, a.spans,
                   layerAttrOf(b.getContext(), shape), attributes...);
  gpu::ReturnOp::create(b, loc);
}

template <typename KernelOp> KernelArgs kernelArgsOf(KernelOp op) {
  KernelArgs a;
  a.Q = op.getQ();
  a.K = op.getK();
  a.V = op.getV();
  a.ADT = op.getADT();
  a.DT = op.getDT();
  a.Trap = op.getTrap();
  a.QBias = op.getQBias();
  a.KBias = op.getKBias();
  a.Angles = op.getAngles();
  a.D = op.getD();
  a.Z = op.getZ();
  a.angle0 = op.getInitAngle();
  a.ssm0 = op.getInitSsm();
  a.k0 = op.getInitK();
  a.v0 = op.getInitV();
  a.mimoV = op.getMimoV();
  a.mimoZ = op.getMimoZ();
  a.mimoO = op.getMimoO();
  a.normWeight = op.getNormWeight();
  a.out = op.getOut();
  a.angle = op.getFinalAngle();
  a.ssm = op.getFinalSsm();
  a.k = op.getFinalK();
  a.v = op.getFinalV();
  a.cuSeqlens = op.getCuSeqlens();
  a.chunkStates = op.getSpanStates();
  a.chunkDecay = op.getSpanDecay();
  a.chunkAngleEnd = op.getSpanAngleEnd();
  a.chunkAngleStart = op.getSpanAngleStart();
  a.qMap = op.getQMap();
  a.kMap = op.getKMap();
  a.seqLen = op.getLaunchSeqlen();
  a.chunksPerBlock = op.getLaunchChunksPerBlock();
  a.spans = op.getLaunchSpans();
  return a;
}

/// Erases `op` and the gpu.return after it: the builders append the body
/// and its own return to the block.
gpu::GPUFuncOp takeKernelOp(Operation *op) {
  auto kernel = cast<gpu::GPUFuncOp>(op->getParentOp());
  Operation *terminator = op->getNextNode();
  op->erase();
  terminator->erase();
  return kernel;
}

} // namespace

void mlir::ssm::emitTokenScanOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                                const KernelArgs &a, int64_t threads) {
  Builder b(kernel.getContext());
  emitKernelOp<ssmk::TokenScanOp>(kernel, shape, a,
                                  b.getI64IntegerAttr(threads));
}

void mlir::ssm::emitDecodeStepOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                                 const KernelArgs &a, int64_t threads) {
  Builder b(kernel.getContext());
  emitKernelOp<ssmk::DecodeStepOp>(kernel, shape, a,
                                   b.getI64IntegerAttr(threads));
}

void mlir::ssm::emitChunkedScanOp(gpu::GPUFuncOp kernel,
                                  const LayerShape &shape, const KernelArgs &a,
                                  int64_t threads, int64_t tokensPerChunk,
                                  ssmk::ChunkedPhase phase,
                                  int64_t chunksPerBlock) {
  Builder b(kernel.getContext());
  // The plan is ssmk-plan-shared-memory's.
  emitKernelOp<ssmk::ChunkedScanOp>(
      kernel, shape, a, b.getI64IntegerAttr(threads),
      b.getI64IntegerAttr(tokensPerChunk),
      ssmk::ChunkedPhaseAttr::get(b.getContext(), phase),
      b.getI64IntegerAttr(chunksPerBlock), ssmk::SharedPlanAttr());
}

void mlir::ssm::emitChunkBoundariesOp(gpu::GPUFuncOp kernel,
                                      const LayerShape &shape,
                                      const KernelArgs &a, int64_t threads,
                                      int64_t spans) {
  Builder b(kernel.getContext());
  emitKernelOp<ssmk::ChunkBoundariesOp>(kernel, shape, a,
                                        b.getI64IntegerAttr(threads),
                                        b.getI64IntegerAttr(spans));
}

namespace {

/// A chunked kernel is built from its #ssmk.plan: there must be one, that
/// fits the layer, within the dynamic shared memory the launch gives.
LogicalResult checkPlan(ssmk::ChunkedScanOp op, const LayerShape &shape) {
  ssmk::SharedPlanAttr plan = op.getPlanAttr();
  if (!plan)
    return op.emitOpError("ssmk-build-kernels: a chunked kernel needs its "
                          "#ssmk.plan (run ssmk-plan-shared-memory first)");
  std::string why = checkSharedPlan(shape, op.getTokensPerChunk(),
                                    op.getThreads(), plan);
  if (!why.empty())
    return op.emitOpError("ssmk-build-kernels: the #ssmk.plan does not fit "
                          "the layer: ")
           << why;
  auto kernel = op->getParentOfType<gpu::GPUFuncOp>();
  auto shared = kernel->getAttrOfType<IntegerAttr>(kDynamicSharedBytesAttrName);
  if (!shared || shared.getInt() < plan.getTotal())
    return op.emitOpError("ssmk-build-kernels: the #ssmk.plan takes ")
           << plan.getTotal() << " bytes of shared memory, the launch gives "
           << (shared ? shared.getInt() : 0) << " ('"
           << kDynamicSharedBytesAttrName << "' of the gpu.func)";
  return success();
}

struct SsmkBuildKernelsPass
    : public ssm::impl::SsmkBuildKernelsBase<SsmkBuildKernelsPass> {
  void runOnOperation() override {
    SmallVector<Operation *> kernelOps;
    getOperation()->walk([&](Operation *op) {
      if (isa<ssmk::TokenScanOp, ssmk::DecodeStepOp, ssmk::ChunkedScanOp,
              ssmk::ChunkBoundariesOp>(op))
        kernelOps.push_back(op);
    });
    for (Operation *op : kernelOps) {
      Operation *next = op->getNextNode();
      if (!isa<gpu::GPUFuncOp>(op->getParentOp()) ||
          op->getBlock() != &op->getParentRegion()->front() || !next ||
          !isa<gpu::ReturnOp>(next) || next->getNextNode()) {
        op->emitOpError("ssmk-build-kernels: a kernel op is the last op of "
                        "a gpu.func's body before its gpu.return");
        return signalPassFailure();
      }
      if (auto token = dyn_cast<ssmk::TokenScanOp>(op)) {
        LayerShape shape = layerShapeOf(token.getLayer());
        KernelArgs args = kernelArgsOf(token);
        int64_t threads = token.getThreads();
        buildTokenScanKernel(takeKernelOp(op), shape, args, threads);
      } else if (auto step = dyn_cast<ssmk::DecodeStepOp>(op)) {
        LayerShape shape = layerShapeOf(step.getLayer());
        KernelArgs args = kernelArgsOf(step);
        int64_t threads = step.getThreads();
        buildStepKernel(takeKernelOp(op), shape, args, threads);
      } else if (auto chunked = dyn_cast<ssmk::ChunkedScanOp>(op)) {
        LayerShape shape = layerShapeOf(chunked.getLayer());
        KernelArgs args = kernelArgsOf(chunked);
        int64_t threads = chunked.getThreads(),
                tokens = chunked.getTokensPerChunk(),
                perBlock = chunked.getChunksPerBlock();
        ssmk::ChunkedPhase phase = chunked.getPhase();
        ssmk::SharedPlanAttr plan = chunked.getPlanAttr();
        if (failed(checkPlan(chunked, shape)))
          return signalPassFailure();
        buildChunkedScanKernel(takeKernelOp(op), shape, args, threads, tokens,
                               phase, perBlock, plan);
      } else {
        auto boundaries = cast<ssmk::ChunkBoundariesOp>(op);
        LayerShape shape = layerShapeOf(boundaries.getLayer());
        KernelArgs args = kernelArgsOf(boundaries);
        int64_t threads = boundaries.getThreads(),
                spans = boundaries.getSpans();
        buildChunkBoundaryKernel(takeKernelOp(op), shape, args, threads,
                                 spans);
      }
    }
  }
};

} // namespace
