//===- GpuSchedule.cpp - Choose the GPU kernel of each layer --------------===//
//
// The GPU has three schedules for a layer: the chunked tensor-core kernel in
// one pass over the chunks per (head, batch), the same in three
// chunk-parallel launches, and the token-sequential kernel. This pass makes
// the choice by shape and writes it into the IR: a scan that gets a chunked
// schedule is tiled into its chunk loop (ssm-tile-sequence's form, with the
// kernel's chunk), which ssm-to-gpu then lowers; the others are marked.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "codegen/gpu/GpuKernel.h"
#include "codegen/gpu/GpuPasses.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMGPUSCHEDULE
#include "codegen/gpu/GpuPasses.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// What the pass options ask of one layer.
struct ScheduleRequest {
  int64_t blockSize;
  std::string schedule;
  int64_t chunkSize;
  int64_t smCount;
  int64_t chunksPerBlock;
  bool fullChunks;
  ssmk::MmaEngines mma;
  int64_t qkBuffers;
};

/// Chunks per block of the chunk-parallel phases: the request's, or the
/// fewest that let batch x heads x spans blocks all fit on `smCount` SMs at
/// once. One block walking several chunks keeps the one-pass kernel's
/// prefetches (the next chunk's q/k and stage loads) busy, and the scratch
/// states (P x N f32 per span) stay small: at b=1, L=16384, H=32, N=128 a
/// block per chunk wrote and read back 268 MB of them.
int64_t chunksPerBlockOf(const LayerShape &shape, const ChunkedKernelPlan &plan,
                         const ScheduleRequest &request) {
  if (request.chunksPerBlock > 0)
    return shape.dynamicSeqLen()
               ? request.chunksPerBlock
               : std::min(request.chunksPerBlock, plan.chunks);
  // Batch or length sized at launch: the runtime applies the same rule to
  // the shape at hand (0).
  if (shape.dynamicBatch() || shape.dynamicSeqLen())
    return 0;
  int64_t slots = request.smCount * std::max<int64_t>(plan.blocksPerSm, 1);
  int64_t spans = std::clamp<int64_t>(slots / (shape.batch * shape.heads), 1,
                                      plan.chunks);
  return llvm::divideCeil(plan.chunks, spans);
}

/// Puts the layer's #ssmk.schedule on `op` (the chunk loop, or the layer op
/// that stays whole). Engines and buffers are the request's (auto / 0: the
/// planner's choice in ssm-to-gpu as well).
void markSchedule(Operation *op, const ScheduleRequest &request,
                  ssmk::ScheduleKind kind, int64_t chunkTokens,
                  int64_t chunksPerBlock) {
  const bool chunked = kind != ssmk::ScheduleKind::tokens;
  op->setAttr(ssmk::kScheduleAttrName,
              ssmk::ScheduleAttr::get(
                  op->getContext(), kind, chunkTokens, chunksPerBlock,
                  chunked ? 0 : request.blockSize,
                  chunked && request.fullChunks,
                  chunked ? request.mma : ssmk::MmaEngines::auto_,
                  chunked ? request.qkBuffers : 0));
}

LogicalResult scheduleLayer(Operation *op, const ScheduleRequest &request) {
  if (failed(checkKernelTypes(op, op->getOperandTypes(), op->getResultTypes())))
    return failure();
  LayerShape shape = layerShapeOf(op);
  shape.mma = request.mma;
  shape.qkBuffers = request.qkBuffers;
  OpBuilder b(op);
  // The chunked tensor-core kernel where it applies (bf16/f16 prefill),
  // else the token-sequential one.
  ChunkedKernelPlan plan = planChunkedScanKernel(shape, request.chunkSize);
  // Full chunks are a promise about the launch's length: only a length
  // sized at launch, one per sequence, can be promised.
  if (request.fullChunks &&
      (shape.step || shape.varlen || !shape.dynamicSeqLen()))
    return op->emitOpError()
           << "ssm-gpu-schedule full-chunks: only for a prefill whose length "
              "is sized at launch (seqlen ?), not varlen; a static length "
              "needs no promise";
  auto markTokens = [&]() -> LogicalResult {
    if (request.fullChunks)
      return op->emitOpError()
             << "ssm-gpu-schedule full-chunks: needs a chunked schedule "
                "(chunked or chunk-parallel), not the token-sequential kernel";
    if (request.mma != ssmk::MmaEngines::auto_ || request.qkBuffers != 0)
      return op->emitOpError()
             << "ssm-gpu-schedule mma / qk-buffers: choose the chunked "
                "kernel's matmul engines and tile buffers; the "
                "token-sequential kernel has neither (leave them out)";
    if (std::string why = tokenScanUnsupported(shape); !why.empty()) {
      InFlightDiagnostic diag = op->emitOpError()
                                << "ssm-gpu-schedule: no GPU kernel for this "
                                   "layer: "
                                << why;
      if (!shape.step && !plan.unsupported.empty())
        diag << "; and " << plan.unsupported;
      return diag;
    }
    markSchedule(op, request, ssmk::ScheduleKind::tokens, 0, 0);
    return success();
  };
  if (shape.step)
    return markTokens();

  // An explicit block size other than the chunked kernel's asks for the
  // token-sequential kernel.
  // A chunk size asked for and not possible is an error, not a quiet
  // change of kernel.
  if (request.chunkSize != 0 && request.schedule == "auto" &&
      !plan.unsupported.empty())
    return op->emitOpError() << "ssm-gpu-schedule chunk-size="
                             << request.chunkSize << ": " << plan.unsupported
                             << " (leave the chunk size out to let the "
                                "compiler choose, or 0 for the "
                                "token-sequential kernel)";
  // So are engines or buffers asked for.
  if ((request.mma != ssmk::MmaEngines::auto_ || request.qkBuffers != 0) &&
      request.schedule == "auto" && !plan.unsupported.empty())
    return op->emitOpError() << "ssm-gpu-schedule mma="
                             << chunkedMmaName(request.mma)
                             << " qk-buffers=" << request.qkBuffers << ": "
                             << plan.unsupported
                             << " (leave them out to let the compiler choose)";
  bool blockSizeFits =
      request.blockSize == 0 || request.blockSize == plan.threads;
  bool parallelAsked = request.schedule == "chunk-parallel";
  bool useChunked = request.schedule == "chunked" || parallelAsked ||
                    (request.schedule == "auto" && plan.unsupported.empty() &&
                     blockSizeFits);
  if (!useChunked) {
    // Auto chose the slow kernel because a limit blocked the fast one: say
    // which, on stderr and in the bundle (never silently).
    if (request.schedule == "auto" && !plan.unsupported.empty()) {
      op->setAttr(kScheduleReasonAttrName, b.getStringAttr(plan.unsupported));
      op->emitWarning() << "ssm-gpu-schedule: the token-sequential kernel, "
                           "since "
                        << plan.unsupported;
    }
    return markTokens();
  }
  if (!plan.unsupported.empty())
    return op->emitOpError() << "ssm-gpu-schedule schedule="
                             << request.schedule << ": " << plan.unsupported;
  if (!blockSizeFits)
    return op->emitOpError()
           << "ssm-gpu-schedule schedule=" << request.schedule
           << ": the block size follows the head dim (one warp per 16 state "
              "rows, at least 4): "
           << plan.threads << " threads, not " << request.blockSize;
  if (shape.varlen) {
    if (parallelAsked)
      return op->emitOpError()
             << "ssm-gpu-schedule schedule=chunk-parallel: a varlen batch "
                "(cu_seqlens) has its chunk boundaries in the data, which "
                "the chunk-parallel grid cannot size; use schedule=chunked "
                "or tokens";
    // The kernel finds each sequence's chunks in cu_seqlens.
    markSchedule(op, request, ssmk::ScheduleKind::chunked,
                 plan.tokensPerChunk, 0);
    return success();
  }
  // Chunk-parallel when one block per (head, batch) leaves SMs idle and
  // the chunks spread over at least three spans: phases 1 and 3 walk every
  // chunk twice (the second time with the scores and outputs), which two
  // spans do not win back (H200, b=4, L=4096, H=32, N=128: 367 us against
  // 357 one-pass; b=2: 193 against 359).
  // With batch or length sized at launch, auto takes the one-pass kernel.
  int64_t chunksPerBlock = chunksPerBlockOf(shape, plan, request);
  bool useParallel =
      parallelAsked ||
      (request.schedule == "auto" && !shape.dynamicBatch() &&
       !shape.dynamicSeqLen() &&
       shape.batch * shape.heads < request.smCount &&
       llvm::divideCeil(plan.chunks, chunksPerBlock) >= 3);
  FailureOr<scf::ForOp> loop =
      tileScanSequence(b, cast<ScanOp>(op), plan.tokensPerChunk);
  if (failed(loop))
    return failure();
  markSchedule(*loop, request,
               useParallel ? ssmk::ScheduleKind::chunk_parallel
                           : ssmk::ScheduleKind::chunked,
               plan.tokensPerChunk, useParallel ? chunksPerBlock : 0);
  return success();
}

struct SsmGpuSchedulePass
    : public ssm::impl::SsmGpuScheduleBase<SsmGpuSchedulePass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (blockSize != 0 &&
        (blockSize < 32 || blockSize > 1024 || blockSize % 32 != 0)) {
      module.emitError() << "ssm-gpu-schedule: block-size must be 0 (auto) "
                            "or a multiple of 32 in [32, 1024], got "
                         << static_cast<int64_t>(blockSize);
      return signalPassFailure();
    }
    if (schedule != "auto" && schedule != "tokens" && schedule != "chunked" &&
        schedule != "chunk-parallel") {
      module.emitError() << "ssm-gpu-schedule: schedule must be auto, tokens, "
                            "chunked or chunk-parallel, got '"
                         << schedule << "'";
      return signalPassFailure();
    }
    if (smCount < 1) {
      module.emitError() << "ssm-gpu-schedule: sm-count must be positive, got "
                         << static_cast<int64_t>(smCount);
      return signalPassFailure();
    }
    if (chunksPerBlock < 0) {
      module.emitError() << "ssm-gpu-schedule: chunks-per-block must be 0 "
                            "(auto) or positive, got "
                         << static_cast<int64_t>(chunksPerBlock);
      return signalPassFailure();
    }
    std::optional<ssmk::MmaEngines> engines = parseChunkedMma(mma);
    if (!engines) {
      module.emitError() << "ssm-gpu-schedule: mma must be auto, mma.sync, "
                            "wgmma-scores or wgmma, got '"
                         << mma << "'";
      return signalPassFailure();
    }
    if (qkBuffers < 0 || qkBuffers > 2) {
      module.emitError() << "ssm-gpu-schedule: qk-buffers must be 0 (auto), "
                            "1 or 2, got "
                         << static_cast<int64_t>(qkBuffers);
      return signalPassFailure();
    }
    ScheduleRequest request{blockSize, schedule,   chunkSize, smCount,
                            chunksPerBlock, fullChunks, *engines, qkBuffers};
    SmallVector<Operation *> layers;
    module.walk([&](Operation *op) {
      // A layer scheduled before (a marked op, or the scan of a chunk
      // loop) stays as it is.
      if (!isa<ScanOp, StepOp>(op) || op->hasAttr(ssmk::kScheduleAttrName))
        return;
      auto loop = op->getParentOfType<scf::ForOp>();
      if (!loop || !loop->hasAttr(ssmk::kScheduleAttrName))
        layers.push_back(op);
    });
    for (Operation *op : layers)
      if (failed(scheduleLayer(op, request)))
        return signalPassFailure();
  }
};

} // namespace
