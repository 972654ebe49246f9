//===- ChunkedKernelScan.cpp - Prefix scans and rotation of a chunk ---------===//
//
// The segmented prefix sums of the decay exponents and the angles over a
// chunk, and the rotation of q and k (bias, then Rot(theta_t)) in place.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

void ChunkedKernelBuilder::scanChunk() {
  // Inclusive prefix sums down the columns of `scan`: theta_t (S columns,
  // starting from the carried angles) and a_t - a_{c-1} (the last column,
  // starting from 0). Each column is cut into segments: segment sums, then
  // each segment rescans from the sum of the segments before it, so the
  // dependent chain is two segments long instead of the chunk.
  const int64_t C = M.C, S = L.s, cols = M.scanCols;
  const int64_t segs = SharedLayout::kSegments, segLen = C / segs;
  auto item = [&](Value i) {
    return std::pair<Value, Value>{divui(i, segs), remui(i, segs)};
  };
  strided(cols * segs, [&](Value i) {
    auto [col, seg] = item(i);
    Value t0 = muli(seg, segLen);
    Value sum = f32(0.0);
    for (int64_t j = 0; j < segLen; ++j)
      sum = add(sum, memref::LoadOp::create(b, scan, ValueRange{addi(t0, j), col}));
    memref::StoreOp::create(b, sum, segSum, ValueRange{col, seg});
  });
  gpu::BarrierOp::create(b);
  strided(cols * segs, [&](Value i) {
    auto [col, seg] = item(i);
    Value carry = f32(0.0);
    if (S > 0)
      carry = select(ult(col, S),
                     memref::LoadOp::create(b, thetaCarry,
                                            ValueRange{minui(col, S - 1)}),
                     f32(0.0));
    Value run = carry;
    for (int64_t j = 0; j + 1 < segs; ++j) {
      Value part = memref::LoadOp::create(b, segSum, ValueRange{col, idx(j)});
      run = add(run, select(ult(idx(j), seg), part, f32(0.0)));
    }
    Value t0 = muli(seg, segLen);
    for (int64_t j = 0; j < segLen; ++j) {
      Value t = addi(t0, j);
      run = add(run, memref::LoadOp::create(b, scan, ValueRange{t, col}));
      memref::StoreOp::create(b, run, scan, ValueRange{t, col});
    }
  });
}

void ChunkedKernelBuilder::rotateGroups(Value chunkStart) {
  // Eight adjacent entries (four rotary pairs) of a row per item: one
  // 16-byte access each for raw q and k and for their rotated bf16 values,
  // in place of eight 2-byte ones. N % 8 == 0: a group is wholly in or out.
  const int64_t N = L.n, S = L.s, groups = M.Np / 8;
  const bool groupMajor = M.R == 1;
  Type elem16 = elt(), f32t = b.getF32Type();
  auto vec = [&](int64_t n, Type elem) { return VectorType::get({n}, elem); };
  strided(
      M.CR * groups,
      [&](Value i) {
        // SISO: rows run fastest, so the 32 items of a warp share a group
        // (CR is a multiple of 32), the branch past the S rotated pairs
        // below is uniform and the warps of unrotated groups skip cos/sin
        // and the rotation (3/4 of the groups at N = 128, S = 16; on an
        // H200 496 against 555 us at b=8, L=4096, H=32, P=64). MIMO keeps
        // groups fastest and rotates every group (the R ranks of a token
        // would repeat its cos/sin in one warp: 2.88 against 2.70 ms at
        // R = 4, N = 128).
        Value row = groupMajor ? remui(i, M.CR) : divui(i, groups);
        Value group = groupMajor ? divui(i, M.CR) : remui(i, groups);
        Value t = tokenOf(row), r = rankOf(row);
        Value n0 = muli(group, 8);
        Value in = andi(token(chunkStart, t).valid, ult(n0, N));
        auto biased = [&](Value rows, Value bias) {
          Value raw = arith::ExtFOp::create(
              b, vec(8, f32t), loadVector(vec(8, elem16), rows, qkAt(row, n0)));
          Value x = add(raw, loadVector(vec(8, f32t), bias, {r, n0}));
          return select(in, x, arith::ConstantOp::create(
                                   b, DenseElementsAttr::get(
                                          cast<ShapedType>(x.getType()), 0.0f)));
        };
        Value qv = biased(qs, qBiasS), kv = biased(ks, kBiasS);
        if (S > 0) {
          Value pair0 = muli(group, 4);
          // q and k rotated by the angles of pairs 4 group .. 4 group + 3
          // (identity past S).
          auto rotate = [&]() -> SmallVector<Value> {
            SmallVector<Value> c4, s4;
            for (int64_t e = 0; e < 4; ++e) {
              auto [c, sn] = pairCosSin(t, addi(pair0, e));
              c4.push_back(c);
              s4.push_back(sn);
            }
            Value cs = vector::FromElementsOp::create(b, vec(4, f32t), c4);
            Value sn = vector::FromElementsOp::create(b, vec(4, f32t), s4);
            SmallVector<Value> rotated;
            for (Value x : {qv, kv}) {
              Value x0 = vector::ShuffleOp::create(b, x, x, ArrayRef<int64_t>{0, 2, 4, 6});
              Value x1 = vector::ShuffleOp::create(b, x, x, ArrayRef<int64_t>{1, 3, 5, 7});
              rotatePair(x0, x1, cs, sn);
              rotated.push_back(vector::ShuffleOp::create(
                  b, x0, x1, ArrayRef<int64_t>{0, 4, 1, 5, 2, 6, 3, 7}));
            }
            return rotated;
          };
          SmallVector<Value> rotated;
          if (groupMajor) {
            auto op = scf::IfOp::create(b, TypeRange{qv.getType(), kv.getType()},
                                        ult(pair0, S), /*withElseRegion=*/true);
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(&op.getThenRegion().front());
            scf::YieldOp::create(b, rotate());
            b.setInsertionPointToStart(&op.getElseRegion().front());
            scf::YieldOp::create(b, ValueRange{qv, kv});
            rotated = op.getResults();
          } else {
            rotated = rotate();
          }
          qv = rotated[0];
          kv = rotated[1];
        }
        for (auto [x, rows] : {std::pair<Value, Value>{qv, qs}, {kv, ks}})
          vector::StoreOp::create(b, arith::TruncFOp::create(b, vec(8, elem16), x),
                                  rows, qkAt(row, n0),
                                  /*nontemporal=*/false, llvm::MaybeAlign(16));
      },
      // Two items per trip: four left MIMO R = 4 at N = 128 spilling 128
      // bytes (3.22 ms against 2.69 ms on an H200) and gained nothing at
      // N = 64 and 128 (the raw rows come from shared memory).
      2);
}

void ChunkedKernelBuilder::rotateChunk(Value chunkStart) {
  const int64_t C = M.C, N = L.n, S = L.s;
  const int64_t pairs = M.Np / 2;
  if (qkCopyBytes() == 16 && !L.halfSplit)
    rotateGroups(chunkStart);
  else
    strided(
        M.CR * pairs,
        [&](Value i) {
          Value row = divui(i, pairs), pair = remui(i, pairs);
          Value t = tokenOf(row), r = rankOf(row);
          auto [tok, tc, valid] = token(chunkStart, t);
          // Entries (n0, n1) rotate together by angle `pair`.
          auto [n0, n1] = pairEntries(pair);
          Value in0 = andi(valid, ult(n0, N)), in1 = andi(valid, ult(n1, N));
          Value c0 = minui(n0, N - 1), c1 = minui(n1, N - 1);
          // Raw values from the cp.async rows (each thread rotates its pair in
          // place), or from global memory for an odd N. Out-of-range entries
          // read a clamped neighbour and are zeroed by the select.
          bool staged = qkCopyBytes() != 0;
          auto biased = [&](Value src, Value rows, Value bias, Value n, Value in) {
            Value raw = staged ? load(rows, qkAt(row, n)) : load(src, qkIndex(tc, r, n));
            Value x = add(raw, memref::LoadOp::create(b, bias, ValueRange{r, n}));
            return select(in, x, f32(0.0));
          };
          Value q0 = biased(a.Q, qs, qBiasS, c0, in0),
                q1 = biased(a.Q, qs, qBiasS, c1, in1);
          Value k0 = biased(a.K, ks, kBiasS, c0, in0),
                k1 = biased(a.K, ks, kBiasS, c1, in1);
          if (S > 0) {
            auto [cs, sn] = pairCosSin(t, pair);
            rotatePair(q0, q1, cs, sn);
            rotatePair(k0, k1, cs, sn);
          }
          store(q0, qs, qkAt(row, n0));
          store(q1, qs, qkAt(row, n1));
          store(k0, ks, qkAt(row, n0));
          store(k1, ks, qkAt(row, n1));
        },
        8);
  // The angles the next chunk starts from (sin and cos do not see the wrap).
  if (S > 0)
    strided(S, [&](Value s) {
      Value last = memref::LoadOp::create(b, scan, ValueRange{idx(C - 1), s});
      if (L.wrap)
        last = wrapAngle(last);
      memref::StoreOp::create(b, last, thetaCarry, ValueRange{s});
    });
  // The decay of the chunk's state contributions, after the a-scan, per row.
  strided(M.CR, [&](Value row) {
    Value t = tokenOf(row);
    store(weight(idx(C - 1), t), wEnd, {row});
    store(fastExp(aAt(t)), decay, {row});
  });
  // The rotated tiles were written through the generic proxy; warpgroup
  // MMA reads them through the async proxy (after the barrier that follows).
  if (M.swizzledQK)
    fenceProxyAsync();
}
