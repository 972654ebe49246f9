//===- ChunkedScanKernel.cpp - The chunked tensor-core scan kernel ---------===//
//
// One block per (head, batch) walks the sequence chunk by chunk (the chunked
// form of spec/mamba3-core.md), carrying the P x N fp32 state in registers as
// mma.sync accumulator fragments. Per chunk of C tokens:
//
//   copy      the chunk's raw bf16 q, k rows into the q/k tiles: by TMA
//             (bulk tensor copies completing on an mbarrier; with two
//             buffers, started during the previous chunk) into swizzled
//             tiles, else by cp.async; its V and Z rows by cp.async where
//             the tiles fit; issued first so that their latency overlaps
//             staging and the scan
//   stage     the trapezoid weights and the angle increments
//             pi tanh(angle) dt into shared memory (in the one-pass kernel
//             from registers loaded during the previous chunk); prefix-sum
//             the decay a_t and the angles theta_t over the chunk
//             (segmented, two short chains)
//   rotate    q and k (bias, then Rot(theta_t), cos/sin on the SFU) in
//             place as bf16, and V^T where the staged V rows cannot serve
//             as it
//   scores    S = Q K^T on tensor cores, weighted by the causal 3-term
//             mask W(t, u) = exp(a_t - a_u) (gamma_u + [u < t] beta_{u+1})
//   output    Y^T = (H + beta_c v_{c-1} k_{c-1}^T) Q^T diag(exp(a_t))
//                   + V^T S^T                       (H as the A operand)
//   state     H <- exp(a_end) H' + V^T diag(w_end) K
//   (prefetch the next chunk's stage loads)
//   epilogue  skip, gate and the bf16 store of out, 16 bytes at a time
//             along P
//
// The previous-token term of the trapezoid rule that crosses the chunk
// boundary is folded into the state before the chunk (H' above), so chunks
// need nothing but H, k_{c-1} and v_{c-1} from their predecessor.
//
// The scores run on warpgroup MMA (wgmma m64nWk16, both operands read by
// the tensor cores from q and k tiles in the 128-byte-swizzled layout of
// its matrix descriptors) where N % 64 == 0, chunks are 64 rows and the
// block is whole warpgroups; where moreover the block is exactly the
// warpgroups of state rows (P % 64 == 0), SISO and N <= 128, so do the
// output and state matmuls, with the state and V^T fragments as register
// A operands (their mma.sync A layout is wgmma's) and B from the q, score
// and k tiles; everything else is m16n8k16 bf16 x bf16 -> f32
// (nvvm.mma.sync) with the state as accumulator fragments (the same
// layout as wgmma's accumulator). Their fragments
// are read from shared memory with ldmatrix (four 8x8 matrices per
// instruction; the transposed operands, K of the state update and V^T from
// the staged V rows, through its transpose, so there is no K^T or V^T
// copy); padded row strides (or the swizzle) make the eight rows of a
// matrix hit different banks. The warps that own state rows (16 rows each)
// do the output and state matmuls; all warps stage, rotate and compute the
// scores.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

#include <utility>

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

SmallVector<Value> ChunkedKernelBuilder::processChunk(Value chunkStart,
                                                      ValueRange state,
                                                      ValueRange stage) {
  // The previous chunk's epilogue still reads ys, ks and vt.
  gpu::BarrierOp::create(b);
  if (a.qMap && chunkIndex) {
    // The next chunk's q/k into the other buffer, while this one computes
    // (its buffer's last reader, chunk c - 1, is past the barrier above).
    Value next = addi(chunkIndex, 1);
    ifThen(ult(next, chunkCount),
           [&] { loadRawQKWithTma(addi(chunkStart, M.C), remui(next, 2)); });
  } else if (a.qMap) {
    loadRawQKWithTma(chunkStart, qkBuf);
  } else if (qkCopyBytes())
    copyRawQK(chunkStart);
  if (M.vzPiece)
    copyRawVZ(chunkStart);
  if (stage.empty())
    stageChunk(chunkStart);
  else
    storeStage(chunkStart, stage);
  if (!M.vzPiece)
    transposeV(chunkStart, /*fromRaw=*/false);
  gpu::BarrierOp::create(b);
  scanChunk();
  if ((qkCopyBytes() && !a.qMap) || M.vzPiece) {
    // This thread's copies have landed; the barrier makes all of them
    // visible.
    NVVM::CpAsyncWaitGroupOp::create(b, 0);
  }
  if (a.qMap)
    // Every thread waits for the chunk's phase of the TMA mbarrier.
    NVVM::MBarrierTryWaitParityOp::create(
        b, sharedPtr(M.mbar, muli(qkBuf, 8)), tmaPhase, i32(0x989680));
  gpu::BarrierOp::create(b);
  rotateChunk(chunkStart);
  if (M.vzPiece && !M.vtFromRaw)
    transposeV(chunkStart, /*fromRaw=*/true);
  gpu::BarrierOp::create(b);
  if (computesOutput()) {
    scoreTiles();
    // The output's warpgroup MMA reads the scores through the async proxy.
    if (M.matmulsOnWgmma)
      fenceProxyAsync();
    gpu::BarrierOp::create(b);
  }
  SmallVector<Value> next = inOwnerWarps(state, [&] {
    return outputAndState(SmallVector<Value>(state));
  });
  // The next chunk's stage loads, past this chunk's register peak; past
  // the last chunk they read clamped tokens and are not used.
  if (!stage.empty()) {
    // The next chunk may be the last, partial one.
    bool full = std::exchange(fullChunk, false);
    llvm::append_range(next, prefetchStage(addi(chunkStart, M.C)));
    fullChunk = full;
  }
  gpu::BarrierOp::create(b);
  if (computesOutput())
    epilogue(chunkStart);
  savePreviousToken(chunkStart);
  return next;
}


void ChunkedKernelBuilder::build() {
  const int64_t C = M.C, N = L.n, P = L.p, Np = M.Np;
  emitIds();
  g = divui(lane, 4);
  q = remui(lane, 4);
  Value lrow = remui(lane, 8), mat = divui(lane, 8);
  Value matLow = muli(remui(mat, 2), 8), matHigh = muli(divui(mat, 2), 8);
  aLanes = {addi(lrow, matLow), matHigh};
  nPairLanes = {addi(lrow, matHigh), matLow};
  auto wg = gpu::AddressSpaceAttr::get(b.getContext(),
                                       gpu::AddressSpace::Workgroup);
  smem = gpu::DynamicSharedMemoryOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                         MemRefLayoutAttrInterface(), wg));
  Type elem16 = elt(), f32t = b.getF32Type();
  const int64_t CR = M.CR, R = M.R;
  qkBuf = idx(0);
  if (M.swizzledQK) {
    Value address = memref::ExtractAlignedPointerAsIndexOp::create(b, smem);
    const int64_t align = SharedLayout::kSwizzleAlign;
    smemPad = remui(arith::SubIOp::create(b, idx(align), remui(address, align)),
                    align);
    smemBase = addi(address, smemPad);
    qs = view(M.qs, {M.qkBuffers, M.Np / 64, CR, 64}, elem16);
    ks = view(M.ks, {M.qkBuffers, M.Np / 64, CR, 64}, elem16);
  } else {
    smemPad = idx(0);
    qs = view(M.qs, {CR, M.qkStride}, elem16);
    ks = view(M.ks, {CR, M.qkStride}, elem16);
  }
  if (!M.vtFromRaw)
    vt = view(M.vt, {M.Pp, M.tStride}, elem16);
  sm = view(M.sm, {CR, M.tStride}, elem16);
  ys = view(M.ys, {CR, M.ysStride}, f32t);
  scan = view(M.scan, {C, M.scanCols}, f32t);
  segSum = view(M.segSum, {M.scanCols, SharedLayout::kSegments}, f32t);
  qBiasS = view(M.qBias, {R, Np}, f32t);
  kBiasS = view(M.kBias, {R, Np}, f32t);
  gammaS = view(M.gamma, {C}, f32t);
  betaS = view(M.beta, {C}, f32t);
  wEnd = view(M.wEnd, {CR}, f32t);
  decay = view(M.decay, {CR}, f32t);
  kPrev = view(M.kPrev, {R, Np}, f32t);
  vPrev = view(M.vPrev, {R, M.Pp}, f32t);
  thetaCarry = view(M.thetaCarry, {M.S}, f32t);
  if (M.vzPiece) {
    vRaw = view(M.vs, {C, M.vRawStride}, elem16);
    if (L.hasZ)
      zRaw = view(M.zs, {C, P}, elem16);
  }

  if (a.qMap) {
    // One arrival (thread 0's expect-tx) per phase; the TMA copies complete
    // the transaction bytes.
    ifThen(eq(tid, 0), [&] {
      for (int64_t buffer = 0; buffer < M.qkBuffers; ++buffer)
        NVVM::MBarrierInitOp::create(b, sharedPtr(M.mbar + 8 * buffer), i32(1),
                                     Value());
      NVVM::FenceMbarrierInitOp::create(b);
    });
    gpu::BarrierOp::create(b);
  }

  Value zero = idx(0);
  bool sequential = phase == ssmk::ChunkedPhase::one_pass;
  // The block walks chunks [firstChunk, endChunk): all of them in the
  // one-pass kernel (ceil(length / C) for a varlen sequence), span z of
  // chunksPerBlock chunks in the chunk-parallel phases.
  Value span = zero, firstChunk = zero, endChunk;
  Value chunks = idx(M.chunks);
  if (L.lengthAtLaunch()) {
    chunks = L.fullChunks ? divui(seqLength, C)
                          : divui(addi(seqLength, C - 1), C);
    // The runtime launches lengths of one token or more (the launch-shape
    // check), so the block has a chunk; saying so lets LLVM drop the chunk
    // loop's zero-trip guard, whose merge of the carried state with its
    // initial value cost ptxas up to 400 bytes of spills (b=8 layers, the
    // length at launch: N = 256 352 -> 180, MIMO R = 4 496 -> 132). A
    // varlen sequence may be empty.
    if (!L.varlen)
      chunks = arith::MaxUIOp::create(b, chunks, idx(1));
  }
  if (sequential) {
    endChunk = chunks;
  } else {
    Value perBlock =
        a.chunksPerBlock ? a.chunksPerBlock : idx(chunksPerBlock);
    span = gpu::BlockIdOp::create(b, gpu::Dimension::z);
    firstChunk = muli(span, perBlock);
    endChunk = arith::MinUIOp::create(b, addi(firstChunk, perBlock), chunks);
    // The grid has ceil(chunks / perBlock) spans, so a span has a chunk:
    // the same guard, for the launch-time spans.
    if (L.lengthAtLaunch())
      endChunk = arith::MaxUIOp::create(b, endChunk, addi(firstChunk, 1));
  }
  Value firstStart = muli(firstChunk, C);
  loadStartAngles(span, firstChunk);
  loadPreviousToken(span, firstChunk, firstStart);
  // The per-head (and rank) biases, read by every token (zero in the
  // padding).
  strided(R * Np, [&](Value i) {
    Value r = divui(i, Np), n = remui(i, Np);
    Value in = ult(n, N), nc = minui(n, N - 1);
    store(select(in, load(a.QBias, biasIndex(r, nc)), f32(0.0)), qBiasS, {r, n});
    store(select(in, load(a.KBias, biasIndex(r, nc)), f32(0.0)), kBiasS, {r, n});
  });

  // State fragments: tile j holds rows p0 + g (+8), columns 8j + 2q (+1).
  // ChunkStates starts from zero; the others from the initial state or
  // the state entering the span.
  SmallVector<Value> init;
  for (int64_t j = 0; j < Np / 8; ++j)
    for (int64_t e = 0; e < 4; ++e) {
      auto [p, n] = cellOf(j, e);
      Value in = andi(ult(p, P), ult(n, N));
      Value pc = minui(p, P - 1), nc = minui(n, N - 1);
      Value h = f32(0.0);
      if (phase == ssmk::ChunkedPhase::span_outputs)
        h = select(in, load(a.chunkStates, {bIdx, hIdx, span, pc, nc}), h);
      else if (sequential && L.hasInit)
        h = select(in, load(a.ssm0, {bIdx, hIdx, pc, nc}), h);
      init.push_back(h);
    }
  const size_t stateValues = init.size();
  // ChunkStates carries the product of its chunks' decays exp(a_end).
  const bool carriesDecay = phase == ssmk::ChunkedPhase::span_states;
  if (carriesDecay)
    init.push_back(f32(1.0));
  const size_t carriedValues = init.size();

  // With two q/k buffers, the first chunk's copies start before the loop
  // and each chunk starts the next one's.
  const bool prefetch = a.qMap && M.qkBuffers == 2;
  if (prefetch)
    loadRawQKWithTma(firstStart, zero);
  if (prefetchesStage())
    llvm::append_range(init, prefetchStage(firstStart));
  // The chunks [from, to) as one loop from `carriedInit`.
  auto chunkLoop = [&](Value from, Value to, ValueRange carriedInit) {
    auto loop = scf::ForOp::create(b, from, to, idx(1), carriedInit);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value c = loop.getInductionVar();
    Value chunkStart = muli(c, C);
    // The block's i-th chunk uses buffer i % 2 for the (i / 2)-th time with
    // two buffers, buffer 0 for the i-th time with one; phases alternate
    // per use.
    Value local = arith::SubIOp::create(b, c, firstChunk);
    Value use = local;
    qkBuf = zero;
    if (prefetch) {
      qkBuf = remui(local, 2);
      use = divui(local, 2);
      chunkIndex = local;
      chunkCount = arith::SubIOp::create(b, endChunk, firstChunk);
    }
    tmaPhase = arith::IndexCastOp::create(b, b.getI32Type(), remui(use, 2));
    ValueRange carried = loop.getRegionIterArgs();
    SmallVector<Value> next =
        processChunk(chunkStart, carried.take_front(stateValues),
                     carried.drop_front(carriedValues));
    if (carriesDecay) {
      // decay still holds this chunk's exp(a_t) (the next chunk's scan is
      // past its first barrier).
      Value chunkDecay =
          memref::LoadOp::create(b, decay, ValueRange{idx(M.CR - 1)});
      next.insert(next.begin() + stateValues,
                  mul(carried[stateValues], chunkDecay));
    }
    scf::YieldOp::create(b, next);
    return loop;
  };
  // One loop: a kernel for full chunks drops the per-token bounds in all
  // of it, and the runtime picks it where the length allows. (Two loops in
  // one kernel made ptxas spill more at b=8, length at launch: the full
  // chunks then the partial last one, MIMO R = 4 824 bytes against 132;
  // both under a branch on the length, N = 256 436 against 180.)
  fullChunk = L.fullChunks;
  scf::ForOp loop = chunkLoop(firstChunk, endChunk, init);
  fullChunk = false;

  gpu::BarrierOp::create(b);
  ValueRange finalState = loop.getResults();
  if (phase == ssmk::ChunkedPhase::span_states) {
    // The span's contribution, its decay and its angle increment (the
    // carried angles after the rotation: counted from zero, or from the
    // initial angles for span 0).
    for (int64_t j = 0; j < Np / 8; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        auto [p, n] = cellOf(j, e);
        ifThen(andi(ult(p, P), ult(n, N)), [&] {
          store(finalState[4 * j + e], a.chunkStates, {bIdx, hIdx, span, p, n});
        });
      }
    ifThen(eq(tid, 0), [&] {
      store(finalState[stateValues], a.chunkDecay, {bIdx, hIdx, span});
    });
    if (L.s > 0)
      strided(L.s, [&](Value s) {
        store(memref::LoadOp::create(b, thetaCarry, ValueRange{s}),
              a.chunkAngleEnd, {bIdx, hIdx, span, s});
      });
    gpu::ReturnOp::create(b);
    return;
  }
  if (phase == ssmk::ChunkedPhase::span_outputs) {
    // The last span's block writes the final angle, k and v states (phase 2
    // wrote the final ssm state).
    ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, endChunk,
                                 chunks),
           [&] { writeFinalAngleKV(); });
    gpu::ReturnOp::create(b);
    return;
  }
  // Final states: ssm from the fragments, angle, k and v from shared memory.
  for (int64_t j = 0; a.ssm && j < Np / 8; ++j)
    for (int64_t e = 0; e < 4; ++e) {
      auto [p, n] = cellOf(j, e);
      ifThen(andi(ult(p, P), ult(n, N)),
             [&] { store(finalState[4 * j + e], a.ssm, {bIdx, hIdx, p, n}); });
    }
  writeFinalAngleKV();
  gpu::ReturnOp::create(b);
}

void mlir::ssm::buildChunkedScanKernel(gpu::GPUFuncOp kernel,
                                       const LayerShape &shape,
                                       const KernelArgs &args, int64_t threads,
                                       int64_t tokensPerChunk,
                                       ssmk::ChunkedPhase phase,
                                       int64_t chunksPerBlock,
                                       ssmk::SharedPlanAttr plan) {
  std::string why;
  std::optional<SharedLayout> layout =
      SharedLayout::fromPlan(shape, tokensPerChunk, threads, plan, why);
  assert(layout && "buildChunkedScanKernel: a plan checkSharedPlan refuses");
  ImplicitLocOpBuilder b(kernel.getLoc(), kernel.getContext());
  // After the views of dynamic-shape arguments ssm-to-gpu put there.
  b.setInsertionPointToEnd(&kernel.getBody().front());
  ChunkedKernelBuilder(b, shape, args, threads, *layout, phase, chunksPerBlock)
      .build();
}
