//===- ChunkedKernelMatmuls.cpp - The chunk's matmuls -----------------------===//
//
// The score matmul S = Q K^T with its causal weights, and the output and
// state matmuls, on mma.sync or on warpgroup MMA (the layout's choice).
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

void ChunkedKernelBuilder::scoreTilesWgmma() {
  // S = Q K^T as one chain of m64nWk16 warpgroup MMAs per warpgroup, both
  // operands read from the swizzled tiles through descriptors: warpgroup w
  // computes score columns [w W, (w + 1) W), W = CR / warpgroups.
  const int64_t CR = M.CR, groups = warps / 4, width = CR / groups;
  MLIRContext *ctx = b.getContext();
  Type f32t = b.getF32Type();
  auto accType = LLVM::LLVMStructType::getLiteral(
      ctx, SmallVector<Type>(width / 2, f32t));
  Value acc = LLVM::PoisonOp::create(b, accType);
  for (int64_t i = 0; i < width / 2; ++i)
    acc = LLVM::InsertValueOp::create(b, acc, f32(0.0), ArrayRef<int64_t>{i});
  Value u0 = muli(divui(warp, 4), width);
  auto descriptor = [&](int64_t tile, Value row0, int64_t kk) {
    return kMajorDescriptor(tile, muli(qkBuf, M.tileBytes), row0, kk);
  };
  auto bf16t = NVVM::WGMMATypesAttr::get(
      ctx, isF16() ? NVVM::WGMMATypes::f16 : NVVM::WGMMATypes::bf16);
  auto one = NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one);
  NVVM::WgmmaFenceAlignedOp::create(b);
  for (int64_t kk = 0; kk < M.Np / 16; ++kk)
    acc = NVVM::WgmmaMmaAsyncOp::create(
        b, accType, acc, descriptor(M.qs, idx(0), kk), descriptor(M.ks, u0, kk),
        NVVM::MMAShapeAttr::get(ctx, 64, width, 16), bf16t, bf16t,
        NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::f32),
        NVVM::WGMMAScaleOutAttr::get(ctx, NVVM::WGMMAScaleOut::one), one, one,
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::row),
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::col),
        NVVM::MMAIntOverflowAttr());
  NVVM::WgmmaGroupSyncAlignedOp::create(b);
  NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
  // The accumulator layout is that of m16n8 tiles: warp w % 4 of the
  // warpgroup holds rows 16 (w % 4) .. + 15, n-tile j in values 4j .. 4j + 3.
  Value t0 = muli(remui(warp, 4), 16);
  auto value = [&](int64_t i) {
    return LLVM::ExtractValueOp::create(b, acc, ArrayRef<int64_t>{i}).getResult();
  };
  for (int64_t j = 0; j < width / 8; ++j)
    for (int64_t e = 0; e < 4; e += 2)
      storeScorePair(accRow(t0, e), accCol(addi(u0, j * 8), e),
                     value(4 * j + e), value(4 * j + e + 1));
}

void ChunkedKernelBuilder::scoreTiles() {
  if (M.swizzledQK)
    return scoreTilesWgmma();
  // 16 x 16 tiles: one A fragment of Q serves two n-tiles of K.
  const int64_t CR = M.CR;
  const int64_t tilesPerRow = CR / 16, tiles = tilesPerRow * tilesPerRow;
  const int64_t slots = llvm::divideCeil(tiles, warps);
  scf::ForOp::create(
      b, idx(0), idx(slots), idx(1), ValueRange{},
      [&](OpBuilder &nb, Location, Value slot, ValueRange) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value tile = addi(warp, muli(slot, warps));
        Value mt = divui(tile, tilesPerRow), nt = remui(tile, tilesPerRow);
        Value t0 = muli(mt, 16), u0 = muli(nt, 16);
        // Slots past the end do nothing; tiles wholly above the diagonal
        // (of tokens: the ranks of a token weigh each other) are zero.
        Value live = ule(tokenOf(u0), tokenOf(addi(t0, 15)));
        ifThen(ult(tile, tiles), [&] {
          auto op = scf::IfOp::create(b, SmallVector<Type>(8, b.getF32Type()),
                                      live, /*withElseRegion=*/true);
          {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToStart(&op.getThenRegion().front());
            Acc lo = zeroAcc(), hi = zeroAcc();
            for (int64_t kk = 0; kk < M.Np / 16; ++kk) {
              SmallVector<Value> qA = loadA(qs, t0, kk * 16);
              auto [kLo, kHi] = loadBPair(ks, u0, kk * 16);
              lo = mma(qA, kLo, lo);
              hi = mma(qA, kHi, hi);
            }
            SmallVector<Value> both(lo.begin(), lo.end());
            both.append(hi.begin(), hi.end());
            scf::YieldOp::create(b, both);
            b.setInsertionPointToStart(&op.getElseRegion().front());
            scf::YieldOp::create(b, SmallVector<Value>(8, f32(0.0)));
          }
          for (int64_t half = 0; half < 2; ++half)
            for (int64_t e = 0; e < 4; e += 2)
              storeScorePair(accRow(t0, e), accCol(addi(u0, half * 8), e),
                             op.getResult(half * 4 + e),
                             op.getResult(half * 4 + e + 1));
        });
        scf::YieldOp::create(b);
      });
}

SmallVector<Value> ChunkedKernelBuilder::outputAndState(ArrayRef<Value> state) {
  const int64_t Np = M.Np;
  Value p0 = muli(warp, 16);
  // H' = H + beta_c sum_r v_{c-1,r} k_{c-1,r}^T: the previous-token term of
  // the first token of the chunk, which reaches every output of the chunk
  // through H.
  Value betaFirst = memref::LoadOp::create(b, betaS, ValueRange{idx(0)});
  SmallVector<Value> h(state);
  for (int64_t r = 0; r < M.R; ++r) {
    Value rank = idx(r);
    Value vLo = mul(memref::LoadOp::create(b, vPrev, ValueRange{rank, accRow(p0, 0)}),
                    betaFirst);
    Value vHi = mul(memref::LoadOp::create(b, vPrev, ValueRange{rank, accRow(p0, 2)}),
                    betaFirst);
    for (int64_t j = 0; j < Np / 8; ++j)
      for (int64_t e = 0; e < 2; ++e) {
        Value k = memref::LoadOp::create(
            b, kPrev, ValueRange{rank, accCol(idx(j * 8), e)});
        h[4 * j + e] = add(h[4 * j + e], mul(vLo, k));
        h[4 * j + 2 + e] = add(h[4 * j + 2 + e], mul(vHi, k));
      }
  }

  SmallVector<SmallVector<Value>> vA;
  for (int64_t kk = 0; kk < M.CR / 16; ++kk)
    vA.push_back(M.vtFromRaw
                     // V^T (p, u) stored k-major as the V rows [u][p].
                     ? ldmatrix(vRaw, idx(kk * 16), p0, nPairLanes,
                                /*transpose=*/true)
                     : loadA(vt, p0, kk * 16));
  if (computesOutput())
    outputTile(h, vA);
  if (!updatesState())
    return SmallVector<Value>(state);
  return stateUpdate(std::move(h), vA);
}

void ChunkedKernelBuilder::outputTile(ArrayRef<Value> h,
                                      ArrayRef<SmallVector<Value>> vA) {
  const int64_t CR = M.CR, R = M.R, Np = M.Np;
  Value p0 = muli(warp, 16);
  // Y^T (rows p, columns t) = H' Q^T diag(exp(a_t)) + V^T S^T.
  // The state as bf16 A fragments: tiles 2kk and 2kk + 1 of the
  // accumulator layout are the k-tile kk of the A layout.
  SmallVector<SmallVector<Value>> hA;
  for (int64_t kk = 0; kk < Np / 16; ++kk) {
    const Value *lo = &h[8 * kk], *hi = &h[8 * kk + 4];
    hA.push_back({pack(lo[0], lo[1]), pack(lo[2], lo[3]), pack(hi[0], hi[1]),
                  pack(hi[2], hi[3])});
  }
  if (M.matmulsOnWgmma)
    return outputTileWgmma(hA, vA);
  // Column tiles in pairs (t0, t0 + 8): one ldmatrix gives both B operands.
  for (int64_t j = 0; j < CR / 16; ++j) {
    Value t0 = idx(j * 16);
    std::array<Acc, 2> acc = {zeroAcc(), zeroAcc()};
    for (int64_t kk = 0; kk < Np / 16; ++kk) {
      auto [bLo, bHi] = loadBPair(qs, t0, kk * 16);
      acc[0] = mma(hA[kk], bLo, acc[0]);
      acc[1] = mma(hA[kk], bHi, acc[1]);
    }
    for (int64_t half = 0; half < 2; ++half) {
      Value c0 = idx(j * 16 + half * 8);
      Value dLo = memref::LoadOp::create(b, decay, ValueRange{accCol(c0, 0)});
      Value dHi = memref::LoadOp::create(b, decay, ValueRange{accCol(c0, 1)});
      Acc &a = acc[half];
      a = {mul(a[0], dLo), mul(a[1], dHi), mul(a[2], dLo), mul(a[3], dHi)};
    }
    // Causal: score columns u past this pair's last token are zero.
    for (int64_t kk = 0; kk < CR / 16 && kk * 16 / R <= (j * 16 + 15) / R; ++kk) {
      auto [sLo, sHi] = loadBPair(sm, t0, kk * 16);
      acc[0] = mma(vA[kk], sLo, acc[0]);
      acc[1] = mma(vA[kk], sHi, acc[1]);
    }
    Value pLo = accRow(p0, 0), pHi = accRow(p0, 2);
    for (int64_t half = 0; half < 2; ++half) {
      Value c0 = idx(j * 16 + half * 8);
      Value tLo = accCol(c0, 0), tHi = accCol(c0, 1);
      const Acc &a = acc[half];
      store(a[0], ys, {tLo, pLo});
      store(a[1], ys, {tHi, pLo});
      store(a[2], ys, {tLo, pHi});
      store(a[3], ys, {tHi, pHi});
    }
  }
}

void ChunkedKernelBuilder::outputTileWgmma(
    ArrayRef<SmallVector<Value>> hA, ArrayRef<SmallVector<Value>> vA) {
  const int64_t CR = M.CR;
  Value p0 = muli(warp, 16);
  // Each warpgroup: its 64 rows p of Y^T, all CR columns t, in two chains:
  // H' Q^T (K = N; Q^T from the q tile, K-major like the scores' B), then,
  // after the column scaling, + V^T S^T (K = CR; S^T from the swizzled
  // score tile, whose zeros above the diagonal keep it causal).
  SmallVector<Value> acc = wgmmaChain(
      SmallVector<Value>(CR / 2, f32(0.0)), hA,
      [&](int64_t kk) {
        return kMajorDescriptor(M.qs, muli(qkBuf, M.tileBytes), idx(0), kk);
      },
      /*transposeB=*/false);
  for (int64_t j = 0; j < CR / 8; ++j)
    for (int64_t e = 0; e < 2; ++e) {
      Value d = memref::LoadOp::create(b, decay, ValueRange{accCol(idx(j * 8), e)});
      acc[4 * j + e] = mul(acc[4 * j + e], d);
      acc[4 * j + 2 + e] = mul(acc[4 * j + 2 + e], d);
    }
  acc = wgmmaChain(
      std::move(acc), vA,
      [&](int64_t kk) { return kMajorDescriptor(M.sm, idx(0), idx(0), kk); },
      /*transposeB=*/false);
  for (int64_t j = 0; j < CR / 8; ++j)
    for (int64_t e = 0; e < 4; ++e)
      store(acc[4 * j + e], ys, {accCol(idx(j * 8), e), accRow(p0, e)});
}

SmallVector<Value>
ChunkedKernelBuilder::stateUpdate(SmallVector<Value> h,
                                  ArrayRef<SmallVector<Value>> vA) {
  const int64_t CR = M.CR, Np = M.Np;
  // H <- exp(a_end) H' + (V^T diag(w_end)) K.
  Value chunkDecay = memref::LoadOp::create(b, decay, ValueRange{idx(CR - 1)});
  for (Value &x : h)
    x = mul(x, chunkDecay);
  SmallVector<SmallVector<Value>> scaledA;
  for (int64_t kk = 0; kk < CR / 16; ++kk) {
    SmallVector<Value> a = vA[kk];
    for (int64_t half = 0; half < 2; ++half) {
      Value u = addi(muli(q, 2), kk * 16 + half * 8);
      Value wLo = memref::LoadOp::create(b, wEnd, ValueRange{u});
      Value wHi = memref::LoadOp::create(b, wEnd, ValueRange{addi(u, 1)});
      for (int64_t r = 0; r < 2; ++r) {
        auto [lo, hi] = unpack(a[2 * half + r]);
        a[2 * half + r] = pack(mul(lo, wLo), mul(hi, wHi));
      }
    }
    if (M.matmulsOnWgmma) {
      scaledA.push_back(std::move(a));
      continue;
    }
    // K is stored k-major (token rows): ldmatrix transposes it.
    for (int64_t j = 0; j < Np / 8; j += 2) {
      auto [bLo, bHi] = loadBPairKMajor(ks, kk * 16, idx(j * 8));
      for (auto [tile, bw] : {std::pair<int64_t, SmallVector<Value> *>{j, &bLo},
                              {j + 1, &bHi}}) {
        Acc c = {h[4 * tile], h[4 * tile + 1], h[4 * tile + 2], h[4 * tile + 3]};
        c = mma(a, *bw, c);
        for (int64_t e = 0; e < 4; ++e)
          h[4 * tile + e] = c[e];
      }
    }
  }
  if (M.matmulsOnWgmma) {
    // Each warpgroup: its 64 state rows, all N columns, one m64nNk16 per 16
    // rows u of K; the k tile, rows u and columns n in 64-column blocks, is
    // the MN-major B (8-row groups 1024 bytes apart, blocks CR rows apart).
    Value kTile = addi(smemBase, addi(idx(M.ks), muli(qkBuf, M.tileBytes)));
    h = wgmmaChain(
        std::move(h), scaledA,
        [&](int64_t kk) {
          return wgmmaDescriptor(addi(kTile, kk * 16 * 128), CR * 128);
        },
        /*transposeB=*/true);
  }
  return h;
}
