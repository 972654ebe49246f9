//===- ChunkedKernelLayout.cpp - Shared-memory layout and planner -----------===//
//
// Where each tile of the chunked kernel lives in shared memory, and the
// planner that picks the chunk size and checks the kernel's limits
// (planChunkedScanKernel), naming the limit a shape exceeds.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <numeric>

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

SharedLayout::SharedLayout(const LayerShape &L, int64_t chunk,
                           int64_t threads) {
  const int64_t CR = chunk * L.rank;
  ssmk::MmaEngines mma = ssmk::MmaEngines::mma_sync;
  if (scoresFitWgmma(L, CR, threads) && L.mma != ssmk::MmaEngines::mma_sync) {
    mma = ssmk::MmaEngines::wgmma_scores;
    if (matmulsFitWgmma(L, CR, threads) &&
        (L.mma == ssmk::MmaEngines::wgmma ||
         (L.mma == ssmk::MmaEngines::auto_ && !L.mimo && L.n <= 128)))
      mma = ssmk::MmaEngines::wgmma;
  }
  *this = planned(L, chunk, threads, mma, 1);
  if (!swizzledQK || L.qkBuffers == 1)
    return;
  SharedLayout doubled = planned(L, chunk, threads, mma, 2);
  int64_t blocks = std::min(blocksPerSm(total), blocksPerSmByRegisters(threads));
  if (L.qkBuffers == 2 ||
      (doubled.total <= kMaxSharedBytes && blocksPerSm(doubled.total) >= blocks))
    *this = doubled;
}

SharedLayout SharedLayout::planned(const LayerShape &L, int64_t chunk,
                                   int64_t threads, ssmk::MmaEngines mma,
                                   int64_t buffers) {
  // Staging the V (and Z) rows may not cost a block per SM: the blocks an
  // SM holds are the fewer of what the shared memory and the registers
  // allow.
  SharedLayout plain;
  plain.layOut(L, chunk, threads, {mma, buffers, /*stagedVZ=*/false});
  if (!copyPieceBytes(L.p * 2))
    return plain;
  SharedLayout staged;
  staged.layOut(L, chunk, threads, {mma, buffers, /*stagedVZ=*/true});
  int64_t blocks =
      std::min(blocksPerSm(plain.total), blocksPerSmByRegisters(threads));
  if (staged.total <= kMaxSharedBytes && blocksPerSm(staged.total) >= blocks)
    return staged;
  return plain;
}

void SharedLayout::layOut(const LayerShape &L, int64_t chunk, int64_t threads,
                          Choices choices) {
  qkBuffers = choices.qkBuffers;
  C = chunk;
  R = L.rank;
  CR = C * R;
  P = L.p;
  hasZ = L.hasZ;
  // (Unknown, 0, when L is sized at launch: the kernel computes it.)
  chunks = L.dynamicSeqLen() ? 0 : llvm::divideCeil(L.seqLen, C);
  Np = roundUp(L.n, 16);
  Pp = roundUp(L.p, 16);
  S = std::max<int64_t>(L.s, 1);
  scanCols = L.s + 1;
  swizzledQK = choices.mma != ssmk::MmaEngines::mma_sync;
  matmulsOnWgmma = choices.mma == ssmk::MmaEngines::wgmma;
  // +8 bf16 (4 words) per row: rows of a fragment load start 4 banks apart;
  // the swizzled tiles need no padding.
  qkStride = swizzledQK ? Np : Np + 8;
  tStride = matmulsOnWgmma ? CR : CR + 8;
  // +4 f32: the (t, p) stores of an accumulator tile spread over 32 banks.
  ysStride = Pp + 4;
  tileBytes = CR * qkStride * 2;
  // V: a V^T tile, or the staged raw V (and Z) rows, with or without the
  // V^T tile (SISO with P % 16 == 0 reads V^T from the raw rows, padded so
  // that the eight rows of an ldmatrix hit different banks).
  const bool rawIsVt = !L.mimo && L.p % 16 == 0;
  vzPiece = choices.stagedVZ ? copyPieceBytes(L.p * 2) : 0;
  vtFromRaw = choices.stagedVZ && rawIsVt;
  vRawStride = choices.stagedVZ ? L.p + (rawIsVt ? 8 : 0) : 0;
  vs = zs = vt = mbar = 0;
  int64_t at = 0;
  for (const Array &array : arrays()) {
    this->*array.offset = at;
    at = roundUp(at + array.bytes, 16);
  }
  scan = ys;
  total = at + (swizzledQK ? kSwizzleAlign : 0);
  // The q/k tiles are whole 1 KiB atoms, so the score tile starts aligned.
  assert((!matmulsOnWgmma || sm % kSwizzleAlign == 0) &&
         "the swizzled score tile must start 1 KiB aligned");
}

SmallVector<SharedLayout::Array> SharedLayout::arrays() const {
  SmallVector<Array> list = {
      {"q", &SharedLayout::qs, qkBuffers * tileBytes},
      {"k", &SharedLayout::ks, qkBuffers * tileBytes},
      {"scores", &SharedLayout::sm, CR * tStride * 2},
      // The scanned angles and decay exponents are dead once the scores
      // are weighted, before the output tile is written: they share bytes.
      {"ys", &SharedLayout::ys, std::max(CR * ysStride, C * scanCols) * 4},
      {"seg_sum", &SharedLayout::segSum, scanCols * kSegments * 4},
      {"gamma", &SharedLayout::gamma, C * 4},
      {"beta", &SharedLayout::beta, C * 4},
      // Per row (the rows of a token share their token's value).
      {"w_end", &SharedLayout::wEnd, CR * 4},
      {"decay", &SharedLayout::decay, CR * 4},
      // Per rank.
      {"k_prev", &SharedLayout::kPrev, R * Np * 4},
      {"q_bias", &SharedLayout::qBias, R * Np * 4},
      {"k_bias", &SharedLayout::kBias, R * Np * 4},
      {"v_prev", &SharedLayout::vPrev, R * Pp * 4},
      {"theta_carry", &SharedLayout::thetaCarry, S * 4}};
  if (swizzledQK)
    list.push_back({"mbar", &SharedLayout::mbar, 8 * qkBuffers});
  if (vzPiece) {
    list.push_back({"v_rows", &SharedLayout::vs, C * vRawStride * 2});
    if (hasZ)
      list.push_back({"z_rows", &SharedLayout::zs, C * P * 2});
  }
  if (!vtFromRaw)
    list.push_back({"vt", &SharedLayout::vt, roundUp(Pp * tStride * 2, 16)});
  return list;
}

ssmk::SharedPlanAttr SharedLayout::toPlan(MLIRContext *ctx) const {
  auto optional = [](bool present, int64_t offset) {
    return present ? std::optional<int64_t>(offset) : std::nullopt;
  };
  return ssmk::SharedPlanAttr::get(
      ctx, mma(), qkBuffers, vzPiece != 0, qs, ks, sm, ys, segSum, gamma, beta,
      wEnd, decay, kPrev, qBias, kBias, vPrev, thetaCarry,
      optional(swizzledQK, mbar), optional(vzPiece != 0, vs),
      optional(vzPiece != 0 && hasZ, zs), optional(!vtFromRaw, vt), total);
}

std::optional<SharedLayout>
SharedLayout::fromPlan(const LayerShape &L, int64_t chunk, int64_t threads,
                       ssmk::SharedPlanAttr plan, std::string &why) {
  const int64_t CR = chunk * L.rank;
  ssmk::MmaEngines mma = plan.getMma();
  if (mma != ssmk::MmaEngines::mma_sync && !scoresFitWgmma(L, CR, threads)) {
    why = "the scores run on wgmma only with N % 64 == 0, 64-term chunks and "
          "whole warpgroups";
    return std::nullopt;
  }
  if (mma == ssmk::MmaEngines::wgmma && !matmulsFitWgmma(L, CR, threads)) {
    why = "all three matmuls run on wgmma only with P % 64 == 0 and one warp "
          "per 16 state rows";
    return std::nullopt;
  }
  if (plan.getStagedVz() && !copyPieceBytes(L.p * 2)) {
    why = "staged V rows need rows of whole 4-byte pieces (P even)";
    return std::nullopt;
  }
  SharedLayout m;
  m.layOut(L, chunk, threads, {mma, plan.getQkBuffers(), plan.getStagedVz()});
  // The arrays the plan places, by name, against the ones the layer needs.
  llvm::StringMap<std::optional<int64_t>> placed = {
      {"q", plan.getQ()},           {"k", plan.getK()},
      {"scores", plan.getScores()}, {"ys", plan.getYs()},
      {"seg_sum", plan.getSegSum()}, {"gamma", plan.getGamma()},
      {"beta", plan.getBeta()},     {"w_end", plan.getWEnd()},
      {"decay", plan.getDecay()},   {"k_prev", plan.getKPrev()},
      {"q_bias", plan.getQBias()},  {"k_bias", plan.getKBias()},
      {"v_prev", plan.getVPrev()},  {"theta_carry", plan.getThetaCarry()},
      {"mbar", plan.getMbar()},     {"v_rows", plan.getVRows()},
      {"z_rows", plan.getZRows()},  {"vt", plan.getVt()}};
  SmallVector<Array> arrays = m.arrays();
  llvm::StringSet<> needed;
  for (const Array &array : arrays)
    needed.insert(array.name);
  for (const auto &entry : placed)
    if (entry.second.has_value() != needed.contains(entry.first())) {
      why = (entry.second ? "has a " : "has no ") + entry.first().str() +
            " array, which this layer and plan " +
            (entry.second ? "do not use" : "need");
      return std::nullopt;
    }
  m.total = plan.getTotal();
  const int64_t limit = m.total - (m.swizzledQK ? kSwizzleAlign : 0);
  for (const Array &array : arrays) {
    int64_t offset = *placed.lookup(array.name);
    m.*array.offset = offset;
    if (offset + array.bytes > limit) {
      why = std::string(array.name) + " (" + std::to_string(array.bytes) +
            " bytes at " + std::to_string(offset) + ") ends past the " +
            std::to_string(limit) + " bytes the plan gives its arrays";
      return std::nullopt;
    }
  }
  m.scan = m.ys;
  llvm::sort(arrays, [&](const Array &x, const Array &y) {
    return m.*x.offset < m.*y.offset;
  });
  for (size_t i = 1; i < arrays.size(); ++i)
    if (m.*arrays[i - 1].offset + arrays[i - 1].bytes > m.*arrays[i].offset) {
      why = std::string(arrays[i - 1].name) + " and " + arrays[i].name +
            " overlap";
      return std::nullopt;
    }
  if (m.total > kMaxSharedBytes) {
    why = "needs " + std::to_string(m.total) +
          " bytes of shared memory, more than the " +
          std::to_string(kMaxSharedBytes) + " of an sm_90 block";
    return std::nullopt;
  }
  return m;
}

ssmk::SharedPlanAttr mlir::ssm::planSharedMemory(MLIRContext *ctx,
                                                 const LayerShape &shape,
                                                 int64_t tokensPerChunk,
                                                 int64_t threads) {
  return SharedLayout(shape, tokensPerChunk, threads).toPlan(ctx);
}

std::string mlir::ssm::checkSharedPlan(const LayerShape &shape,
                                       int64_t tokensPerChunk, int64_t threads,
                                       ssmk::SharedPlanAttr plan) {
  std::string why;
  if (!SharedLayout::fromPlan(shape, tokensPerChunk, threads, plan, why))
    return why;
  return "";
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
