//===- ChunkedKernelLayout.cpp - Shared-memory layout and planner -----------===//
//
// Where each tile of the chunked kernel lives in shared memory, and the
// planner that picks the chunk size and checks the kernel's limits
// (planChunkedScanKernel), naming the limit a shape exceeds.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

#include <numeric>

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

void SharedLayout::layOut(const LayerShape &L, int64_t chunk, int64_t threads,
            int64_t buffers) {
  qkBuffers = buffers;
  vzPiece = vs = zs = 0;
  vtFromRaw = false;
  vRawStride = 0;
  C = chunk;
  R = L.rank;
  CR = C * R;
  // (Unknown, 0, when L is sized at launch: the kernel computes it.)
  chunks = L.dynamicSeqLen() ? 0 : llvm::divideCeil(L.seqLen, C);
  Np = roundUp(L.n, 16);
  Pp = roundUp(L.p, 16);
  S = std::max<int64_t>(L.s, 1);
  scanCols = L.s + 1;
  // +8 bf16 (4 words) per row: rows of a fragment load start 4 banks apart.
  qkStride = Np + 8;
  tStride = CR + 8;
  // +4 f32: the (t, p) stores of an accumulator tile spread over 32 banks.
  ysStride = Pp + 4;
  int64_t at = 0;
  auto take = [&](int64_t bytes) {
    int64_t offset = at;
    at = roundUp(at + bytes, 16);
    return offset;
  };
  swizzledQK = scoresFitWgmma(L, CR, threads) && L.mma != ssmk::MmaEngines::mma_sync;
  matmulsOnWgmma =
      swizzledQK && matmulsFitWgmma(L, CR, threads) &&
      (L.mma == ssmk::MmaEngines::wgmma ||
       (L.mma == ssmk::MmaEngines::auto_ && !L.mimo && L.n <= 128));
  if (swizzledQK)
    qkStride = Np;
  if (matmulsOnWgmma)
    tStride = CR;
  tileBytes = CR * qkStride * 2;
  qs = take(qkBuffers * tileBytes);
  ks = take(qkBuffers * tileBytes);
  sm = take(CR * tStride * 2);
  // The q/k tiles are whole 1 KiB atoms, so the score tile starts aligned.
  assert((!matmulsOnWgmma || sm % kSwizzleAlign == 0) &&
         "the swizzled score tile must start 1 KiB aligned");
  // The scanned angles and decay exponents are dead
  // once the scores are weighted, before the output tile is written: they
  // share bytes with it.
  ys = scan = take(std::max(CR * ysStride, C * scanCols) * 4);
  segSum = take(scanCols * kSegments * 4);
  gamma = take(C * 4);
  beta = take(C * 4);
  // Per row (the rows of a token share their token's value).
  wEnd = take(CR * 4);
  decay = take(CR * 4);
  // Per rank.
  kPrev = take(R * Np * 4);
  qBias = take(R * Np * 4);
  kBias = take(R * Np * 4);
  vPrev = take(R * Pp * 4);
  thetaCarry = take(S * 4);
  if (swizzledQK)
    mbar = take(8 * qkBuffers);
  // V: a V^T tile, or the staged raw V (and Z) rows, with or without the
  // V^T tile. Staging may not cost a block per SM: the blocks an SM holds
  // are the fewer of what the shared memory and the registers allow.
  const int64_t vtBytes = roundUp(Pp * tStride * 2, 16);
  const int64_t piece = copyPieceBytes(L.p * 2);
  const bool rawIsVt = !L.mimo && L.p % 16 == 0;
  const int64_t rawStride = L.p + (rawIsVt ? 8 : 0);
  const int64_t vRows = roundUp(C * rawStride * 2, 16);
  const int64_t zRows = L.hasZ ? roundUp(C * L.p * 2, 16) : 0;
  const int64_t pad = swizzledQK ? kSwizzleAlign : 0;
  const int64_t plain = at + vtBytes + pad;
  const int64_t staged = at + vRows + zRows + (rawIsVt ? 0 : vtBytes) + pad;
  int64_t blocks = std::min(blocksPerSm(plain), blocksPerSmByRegisters(threads));
  if (piece && staged <= kMaxSharedBytes && blocksPerSm(staged) >= blocks) {
    vzPiece = piece;
    vtFromRaw = rawIsVt;
    vRawStride = rawStride;
    vs = take(C * rawStride * 2);
    if (L.hasZ)
      zs = take(C * L.p * 2);
  }
  if (!vtFromRaw)
    vt = take(vtBytes);
  total = at + pad;
}

namespace {
ChunkedKernelPlan planForChunkSize(const LayerShape &shape, int64_t chunkSize);

/// Blocks of the plan an SM holds: the fewer of what its shared memory and
/// (estimated) registers allow.
int64_t occupancy(const ChunkedKernelPlan &plan) {
  return std::min(blocksPerSm(plan.sharedBytes),
                  blocksPerSmByRegisters(plan.threads));
}
} // namespace

ChunkedKernelPlan mlir::ssm::planChunkedScanKernel(const LayerShape &shape,
                                                   int64_t chunkSize) {
  if (chunkSize != 0)
    return planForChunkSize(shape, chunkSize);
  // Chosen by the compiler: 64 terms, or 32 where the smaller tiles let an
  // SM hold more blocks, or where the state fragments alone take half of a
  // thread's registers (N > 224: N / 2 f32 values), so that the 64-term
  // output tiles spill. Measured at b=8, L=4096, H=32, N=256, P=64: 3.13 ms
  // at 64 against 2.04 at 32 with a K^T tile (one block per SM at 64); with
  // ldmatrix's transpose both hold two blocks, and 64 spills 544 bytes
  // (2.32 ms against 1.56 on an H200).
  ChunkedKernelPlan wide = planForChunkSize(shape, 64);
  ChunkedKernelPlan narrow = planForChunkSize(shape, 32);
  if (!narrow.unsupported.empty())
    return wide;
  if (!wide.unsupported.empty() || occupancy(narrow) > occupancy(wide) ||
      roundUp(shape.n, 16) / 2 >= kRegistersPerThread / 2)
    return narrow;
  return wide;
}

namespace {
ChunkedKernelPlan planForChunkSize(const LayerShape &shape, int64_t chunkSize) {
  ChunkedKernelPlan plan;
  auto fail = [&](std::string why) {
    plan.unsupported = "the chunked tensor-core kernel " + why;
    return plan;
  };
  if (shape.step)
    return fail("is for prefill (ssm.scan), not a decode step");
  if (shape.rank > kMaxRank)
    return fail("covers ranks up to " + std::to_string(kMaxRank) + ", got " +
                std::to_string(shape.rank));
  if (!shape.dataType.isBF16() && !shape.dataType.isF16())
    return fail("needs bf16 or f16 Q/K/V (its matmuls run on tensor cores "
                "in that type); fp32 data runs the token-sequential kernel");
  if (chunkSize < 16 || chunkSize > 128 || chunkSize % 16 != 0)
    return fail("needs a chunk size that is a multiple of 16 in [16, 128], "
                "got " + std::to_string(chunkSize));
  // A chunk holds chunkSize rank-1 terms (tokens x ranks), rounded so that
  // the terms fill whole 16-row tiles and the token scan has 8 segments.
  const int64_t R = shape.rank;
  const int64_t unit = std::max<int64_t>(8, 16 / std::gcd<int64_t>(R, 16));
  plan.tokensPerChunk = std::max(unit, chunkSize / R / unit * unit);
  if (shape.n > kMaxStateSize)
    return fail("holds the state in registers: N <= " +
                std::to_string(kMaxStateSize) + ", got " +
                std::to_string(shape.n));
  if (shape.p > kMaxHeadDim)
    return fail("uses one warp per 16 state rows: P <= " +
                std::to_string(kMaxHeadDim) + ", got " +
                std::to_string(shape.p));
  // One warp per 16 state rows, at least 4.
  plan.threads = 32 * std::max<int64_t>(4, roundUp(shape.p, 16) / 16);
  SharedLayout layout(shape, plan.tokensPerChunk, plan.threads);
  if (layout.total > kMaxSharedBytes)
    return fail("needs " + std::to_string(layout.total) +
                " bytes of shared memory for chunk " +
                std::to_string(plan.tokensPerChunk) + " tokens, more than the " +
                std::to_string(kMaxSharedBytes) + " of an sm_90 block");
  plan.sharedBytes = layout.total;
  // Engines and buffers asked for: refused where the tiles do not allow
  // them, never quietly changed.
  const int64_t CR = layout.CR;
  if (shape.mma == ssmk::MmaEngines::wgmma_scores && !layout.swizzledQK)
    return fail("computes the scores on wgmma only with N % 64 == 0, 64-term "
                "chunks and whole warpgroups (got N = " +
                std::to_string(shape.n) + ", " + std::to_string(CR) +
                "-term chunks, " + std::to_string(plan.threads) + " threads)");
  if (shape.mma == ssmk::MmaEngines::wgmma && !layout.matmulsOnWgmma)
    return fail("runs all three matmuls on wgmma only with N % 64 == 0, "
                "64-term chunks and P % 64 == 0 (got N = " +
                std::to_string(shape.n) + ", " + std::to_string(CR) +
                "-term chunks, P = " + std::to_string(shape.p) + ")");
  if (shape.qkBuffers == 2 && layout.qkBuffers != 2)
    return fail("double-buffers the Q/K tiles only where they arrive by TMA "
                "(N % 64 == 0, 64-term chunks, not mma=mma.sync)");
  // The swizzled tiles arrive by TMA: one box of 64 entries (128 bytes,
  // the swizzle span) x 1 group [x R ranks] x the chunk's tokens x 1 batch
  // row of Q (b, L, [R,] G, N), innermost first.
  if (layout.swizzledQK) {
    plan.tensorMaps = true;
    plan.tensorMapBox = {64, 1};
    if (shape.mimo)
      plan.tensorMapBox.push_back(shape.rank);
    plan.tensorMapBox.append({plan.tokensPerChunk, 1});
  }
  plan.chunks = layout.chunks;
  plan.blocksPerSm = occupancy(plan);
  return plan;
}
} // namespace

llvm::StringRef mlir::ssm::chunkedMmaName(ssmk::MmaEngines mma) {
  switch (mma) {
  case ssmk::MmaEngines::auto_:
    return "auto";
  case ssmk::MmaEngines::mma_sync:
    return "mma.sync";
  case ssmk::MmaEngines::wgmma_scores:
    return "wgmma-scores";
  case ssmk::MmaEngines::wgmma:
    return "wgmma";
  }
  llvm_unreachable("an MmaEngines value");
}

std::optional<ssmk::MmaEngines> mlir::ssm::parseChunkedMma(llvm::StringRef name) {
  for (ssmk::MmaEngines mma :
       {ssmk::MmaEngines::auto_, ssmk::MmaEngines::mma_sync,
        ssmk::MmaEngines::wgmma_scores, ssmk::MmaEngines::wgmma})
    if (name == chunkedMmaName(mma))
      return mma;
  return std::nullopt;
}
