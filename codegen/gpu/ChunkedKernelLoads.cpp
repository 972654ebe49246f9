//===- ChunkedKernelLoads.cpp - Copy and stage a chunk ----------------------===//
//
// How a chunk's inputs reach shared memory: the raw q/k rows by TMA
// (completing on an mbarrier) or cp.async, the V and Z rows by cp.async, the
// staged trapezoid weights and angle increments (loaded into registers one
// chunk ahead), and V^T where the staged rows cannot serve as it.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

void ChunkedKernelBuilder::copyRows(
    Value src, Value dst, int64_t count, int64_t rowElems, int64_t pieceBytes,
    function_ref<SmallVector<Value>(Value, Value)> srcIndex,
    function_ref<SmallVector<Value>(Value, Value)> dstIndex) {
  const int64_t elems = pieceBytes / 2, pieces = rowElems / elems;
  auto dstElements = b.getIndexAttr(elems);
  // 16-byte copies bypass L1 (.cg): the rows are read once per block.
  UnitAttr bypassL1 = pieceBytes == 16 ? b.getUnitAttr() : UnitAttr();
  strided(
      count * pieces,
      [&](Value i) {
        Value row = divui(i, pieces), col = muli(remui(i, pieces), elems);
        nvgpu::DeviceAsyncCopyOp::create(b, dst, dstIndex(row, col), src,
                                         srcIndex(row, col), dstElements,
                                         /*srcElements=*/Value(), bypassL1);
      },
      4);
}

void ChunkedKernelBuilder::copyRawQK(Value chunkStart) {
  // Row t * R + r of the tile is rank r of token t.
  for (auto [src, rows] : {std::pair<Value, Value>{a.Q, qs}, {a.K, ks}})
    copyRows(
        src, rows, M.CR, L.n, qkCopyBytes(),
        [&](Value row, Value n) {
          Value tc = token(chunkStart, tokenOf(row)).clamped;
          return qkIndex(tc, rankOf(row), n);
        },
        [&](Value row, Value n) { return qkAt(row, n); });
  NVVM::CpAsyncCommitGroupOp::create(b);
}

Value ChunkedKernelBuilder::sharedPtr(int64_t offset, Value extra) {
  Value address = addi(smemBase, offset);
  if (extra)
    address = addi(address, extra);
  Value i64v = arith::IndexCastUIOp::create(b, b.getI64Type(), address);
  return LLVM::IntToPtrOp::create(
      b, LLVM::LLVMPointerType::get(b.getContext(), /*addressSpace=*/3), i64v);
}

Value ChunkedKernelBuilder::globalPtr(Value memref) {
  Value address = memref::ExtractAlignedPointerAsIndexOp::create(b, memref);
  Value i64v = arith::IndexCastUIOp::create(b, b.getI64Type(), address);
  return LLVM::IntToPtrOp::create(b, LLVM::LLVMPointerType::get(b.getContext()),
                                  i64v);
}

void ChunkedKernelBuilder::loadRawQKWithTma(Value chunkStart, Value buffer) {
  const int64_t atoms = M.Np / 64, boxBytes = 128 * M.CR;
  Type i32t = b.getI32Type();
  auto i32of = [&](Value v) {
    return arith::IndexCastOp::create(b, i32t, v).getResult();
  };
  ifThen(eq(tid, 0), [&] {
    Value bar = sharedPtr(M.mbar, muli(buffer, 8));
    NVVM::MBarrierArriveExpectTxOp::create(
        b, Type(), bar, i32(static_cast<int32_t>(2 * atoms * boxBytes)),
        NVVM::MemScopeKindAttr(), BoolAttr(), Value());
    // Box coordinates, innermost first: entry, group, [rank,] token, batch.
    // Tokens past L (or past the packed row) read as zeros.
    for (auto [map, tile] : {std::pair<Value, int64_t>{a.qMap, M.qs}, {a.kMap, M.ks}})
      for (int64_t atom = 0; atom < atoms; ++atom) {
        SmallVector<Value> coords = {i32(static_cast<int32_t>(atom * 64)),
                                     i32of(gIdx)};
        if (L.mimo)
          coords.push_back(i32(0));
        coords.append({i32of(packed(chunkStart)), i32of(dataBatch)});
        // The destination in the shared::cluster window (a block is a
        // cluster of one).
        Value dst = LLVM::AddrSpaceCastOp::create(
            b, LLVM::LLVMPointerType::get(b.getContext(), /*addressSpace=*/7),
            sharedPtr(tile + atom * boxBytes, muli(buffer, M.tileBytes)));
        NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
            b, dst, globalPtr(map), coords, bar,
            ValueRange{}, Value(), Value(), NVVM::TMALoadModeAttr(), BoolAttr(),
            NVVM::CTAGroupKindAttr(), Value());
      }
  });
}

void ChunkedKernelBuilder::stageChunk(Value chunkStart) {
  const int64_t C = M.C, S = L.s;
  // Per-token coefficients; padding tokens past L get dt = 0 and a = 0, so
  // they neither decay nor feed the state.
  strided(C, [&](Value t) {
    storeTokenStage(chunkStart, t, loadTokenStage(chunkStart, t));
  });
  if (S > 0)
    strided(
        C * S,
        [&](Value i) { storeAngleStage(chunkStart, i, loadAngleStage(chunkStart, i)); },
        8);
}

SmallVector<Value> ChunkedKernelBuilder::loadTokenStage(Value chunkStart, Value t) {
  Value tc = token(chunkStart, t).clamped;
  SmallVector<Value> x = {load(a.DT, coeffIndex(tc)), load(a.ADT, coeffIndex(tc))};
  if (tokenStageValues() == 3)
    x.push_back(load(a.Trap, coeffIndex(tc)));
  return x;
}

void ChunkedKernelBuilder::storeTokenStage(Value chunkStart, Value t,
                                           ValueRange x) {
  Value valid = token(chunkStart, t).valid;
  Value dt = select(valid, x[0], f32(0.0));
  Value adt = select(valid, x[1], f32(0.0));
  Value lambda = L.euler ? f32(1.0) : fastSigmoid(x[2]);
  store(adt, scan, {t, idx(L.s)});
  store(mul(lambda, dt), gammaS, {t});
  store(mul(sub(f32(1.0), lambda), dt), betaS, {t});
}

SmallVector<Value> ChunkedKernelBuilder::loadAngleStage(Value chunkStart, Value i) {
  Value t = divui(i, L.s), s = remui(i, L.s);
  Value tc = token(chunkStart, t).clamped;
  return {load(a.Angles, angleIndex(tc, s)), load(a.DT, coeffIndex(tc))};
}

void ChunkedKernelBuilder::storeAngleStage(Value chunkStart, Value i,
                                           ValueRange x) {
  Value t = divui(i, L.s), s = remui(i, L.s);
  Value inc = mul(mul(f32(llvm::numbers::pi), math::TanhOp::create(b, x[0])), x[1]);
  store(select(token(chunkStart, t).valid, inc, f32(0.0)), scan, {t, s});
}


SmallVector<Value> ChunkedKernelBuilder::prefetchStage(Value chunkStart) {
  // Item k of a stage loop is i = tid + k * threads, clamped so that every
  // load is in bounds; storeStage skips the items past the loop's end.
  SmallVector<Value> x;
  for (int64_t k = 0; k < tokenStageItems(); ++k)
    llvm::append_range(x, loadTokenStage(chunkStart,
                                         minui(addi(tid, k * threads), M.C - 1)));
  for (int64_t k = 0; k < angleStageItems(); ++k)
    llvm::append_range(
        x, loadAngleStage(chunkStart, minui(addi(tid, k * threads), M.C * L.s - 1)));
  return x;
}

void ChunkedKernelBuilder::storeStage(Value chunkStart, ValueRange x) {
  const int64_t perToken = tokenStageValues();
  size_t at = 0;
  for (int64_t k = 0; k < tokenStageItems(); ++k, at += perToken) {
    Value t = addi(tid, k * threads);
    ValueRange values = x.slice(at, perToken);
    ifThen(ult(t, M.C), [&] { storeTokenStage(chunkStart, t, values); });
  }
  for (int64_t k = 0; k < angleStageItems(); ++k, at += 2) {
    Value i = addi(tid, k * threads);
    ValueRange values = x.slice(at, 2);
    ifThen(ult(i, M.C * L.s), [&] { storeAngleStage(chunkStart, i, values); });
  }
}

void ChunkedKernelBuilder::transposeV(Value chunkStart, bool fromRaw) {
  const int64_t P = L.p;
  // V^T, so that both of its matmuls read k-contiguous pairs; for MIMO the
  // column of row (t, r) is v_{t,r} = MIMO_V[h, r] * V_t.
  strided(
      M.CR * M.Pp,
      [&](Value i) {
        // Consecutive threads read consecutive p: coalesced loads of V.
        Value row = divui(i, M.Pp), p = remui(i, M.Pp);
        Value t = tokenOf(row);
        auto [tok, tc, valid] = token(chunkStart, t);
        Value pc = minui(p, P - 1);
        Value v = fromRaw ? load(vRaw, {t, pc}) : load(a.V, tokenIndex(tc, pc));
        if (L.mimo)
          v = mul(v, load(a.mimoV, {hIdx, rankOf(row), pc}));
        store(select(andi(valid, ult(p, P)), v, f32(0.0)), vt, {p, row});
      },
      8);
}

void ChunkedKernelBuilder::copyRawVZ(Value chunkStart) {
  // Phase 1 of chunk-parallel computes no outputs: no Z.
  Value gate = computesOutput() ? zRaw : Value();
  for (auto [src, rows] : {std::pair<Value, Value>{a.V, vRaw}, {a.Z, gate}})
    if (rows)
      copyRows(
          src, rows, M.C, L.p, M.vzPiece,
          [&](Value t, Value p) {
            return tokenIndex(token(chunkStart, t).clamped, p);
          },
          [](Value t, Value p) { return SmallVector<Value>{t, p}; });
  NVVM::CpAsyncCommitGroupOp::create(b);
}
