//===- ChunkedKernelEpilogue.cpp - Epilogue and carried state ---------------===//
//
// The epilogue (skip, gate, the bf16 store of out), the previous token and
// the start angles a chunk carries across a chunk or a span boundary, and the
// final angle, k and v states.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/ChunkedKernel.h"

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::chunked;

void ChunkedKernelBuilder::epilogue(Value chunkStart) {
  const int64_t C = M.C, R = M.R, P = L.p;
  Value d = L.hasD ? load(a.D, {hIdx}) : Value();
  // y + D v of row (t, r), from the output tile and V^T.
  auto yOf = [&](Value row, Value p) {
    Value y = memref::LoadOp::create(b, ys, ValueRange{row, p});
    return d ? add(y, mul(d, vOf(row, p))) : y;
  };
  if (L.rmsNorm) {
    // The RMSNorm scale of each row, rsqrt(mean_p y^2 + eps), into wEnd
    // (its state-update weights are used by now).
    strided(M.CR, [&](Value row) {
      auto sum = scf::ForOp::create(
          b, idx(0), idx(P), idx(1), ValueRange{f32(0.0)},
          [&](OpBuilder &nb, Location loc, Value p, ValueRange acc) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            Value y = yOf(row, p);
            scf::YieldOp::create(b, add(acc[0], mul(y, y)));
          });
      Value mean = mul(sum.getResult(0), f32(1.0 / P));
      memref::StoreOp::create(
          b, math::RsqrtOp::create(b, add(mean, f32(L.normEps))), wEnd,
          ValueRange{row});
    });
    gpu::BarrierOp::create(b);
  }
  // Rank r's term (y_{t,r} + D v_{t,r}) silu(z_{t,r}), y scaled by the
  // RMSNorm: one element.
  auto rankTerm = [&](Value t, int64_t r, Value p, Value z,
                      function_ref<Value(Value row)> yOfRow) {
    Value row = R == 1 ? t : addi(muli(t, R), r);
    Value y = yOfRow(row);
    if (L.rmsNorm)
      y = mul(y, mul(memref::LoadOp::create(b, wEnd, ValueRange{row}),
                     load(a.normWeight, {hIdx, p})));
    if (z) {
      Value zr = L.mimo ? mul(z, load(a.mimoZ, {hIdx, idx(r), p})) : z;
      y = mul(y, mul(zr, fastSigmoid(zr)));
    }
    return y;
  };
  // out_t = sum_r MIMO_O[h, r] * term_r: one output element.
  auto outOf = [&](Value t, Value p, Value z,
                   function_ref<Value(Value row)> yOfRow) {
    Value out;
    for (int64_t r = 0; r < R; ++r) {
      Value y = rankTerm(t, r, p, z, yOfRow);
      if (L.mimo)
        y = mul(y, load(a.mimoO, {hIdx, idx(r), p}));
      out = out ? add(out, y) : y;
    }
    return out;
  };
  if (!L.perRankOutputs && R == 1 && P % 8 == 0) {
    // Eight adjacent p per item: 16-byte accesses to y, the staged V and Z
    // rows and out, in place of 2- and 4-byte ones.
    const int64_t groups = P / 8;
    Type elem16 = elt(), f32t = b.getF32Type();
    auto vload = [&](int64_t n, Type elem, Value view, ValueRange at) {
      SmallVector<Value> values;
      for (int64_t k = 0; k < 8; k += n) {
        SmallVector<Value> idxs(at.begin(), at.end());
        idxs.back() = addi(idxs.back(), k);
        Value v = loadVector(VectorType::get({n}, elem), view, idxs);
        for (int64_t e = 0; e < n; ++e)
          values.push_back(toF32(vector::ExtractOp::create(b, v, e)));
      }
      return values;
    };
    strided(
        C * groups,
        [&](Value i) {
          Value t = divui(i, groups), p0 = muli(remui(i, groups), 8);
          auto [tok, tc, valid] = token(chunkStart, t);
          SmallVector<Value> y = vload(4, f32t, ys, {t, p0});
          SmallVector<Value> v, z;
          if (d && M.vtFromRaw)
            v = vload(8, elem16, vRaw, {t, p0});
          if (L.hasZ)
            z = zRaw ? vload(8, elem16, zRaw, {t, p0})
                     : vload(8, elem16, a.Z, tokenIndex(tc, p0));
          SmallVector<Value> outs;
          for (int64_t e = 0; e < 8; ++e) {
            Value p = addi(p0, e);
            outs.push_back(outOf(t, p, z.empty() ? Value() : z[e], [&](Value) {
              if (!d)
                return y[e];
              return add(y[e], mul(d, v.empty() ? vOf(t, p) : v[e]));
            }));
          }
          SmallVector<Value> narrow;
          for (Value x : outs)
            narrow.push_back(arith::TruncFOp::create(b, elem16, x));
          Value packed =
              vector::FromElementsOp::create(b, VectorType::get({8}, elem16), narrow);
          ifThen(valid, [&] {
            vector::StoreOp::create(b, packed, a.out, tokenIndex(tok, p0),
                                    /*nontemporal=*/false, llvm::MaybeAlign(16));
          });
        },
        2);
  } else {
    strided(
        C * P,
        [&](Value i) {
          Value t = divui(i, P), p = remui(i, P);
          // Loads from a clamped token, only the store under the condition:
          // the unrolled copies' loads are then all in flight together.
          auto [tok, tc, valid] = token(chunkStart, t);
          Value z;
          if (L.hasZ)
            z = zRaw ? load(zRaw, {t, p}) : load(a.Z, tokenIndex(tc, p));
          auto yOfRow = [&](Value row) { return yOf(row, p); };
          if (L.perRankOutputs) {
            // No down projection: each rank's term is an output element.
            for (int64_t r = 0; r < R; ++r) {
              Value y = rankTerm(t, r, p, z, yOfRow);
              ifThen(valid, [&] { store(y, a.out, outIndex(tok, idx(r), p)); });
            }
            return;
          }
          Value out = outOf(t, p, z, yOfRow);
          ifThen(valid, [&] { store(out, a.out, tokenIndex(tok, p)); });
        },
        L.perRankOutputs ? 2 : 4);
  }
}

void ChunkedKernelBuilder::savePreviousToken(Value chunkStart) {
  const int64_t C = M.C, R = M.R, P = L.p, N = L.n;
  // k and v of the chunk's last real token: the next chunk's previous token.
  Value remaining = arith::SubIOp::create(b, seqLength, chunkStart);
  Value lastRow = fullChunk ? idx((C - 1) * R)
                            : muli(arith::SubIOp::create(b, minui(remaining, C),
                                                         idx(1)),
                                   R);
  strided(R * N, [&](Value i) {
    Value r = divui(i, N), n = remui(i, N);
    store(load(ks, qkAt(addi(lastRow, r), n)), kPrev, {r, n});
  });
  strided(R * P, [&](Value i) {
    Value r = divui(i, P), p = remui(i, P);
    store(vOf(addi(lastRow, r), p), vPrev, {r, p});
  });
}

void ChunkedKernelBuilder::loadStartAngles(Value span, Value firstChunk) {
  const int64_t S = L.s;
  strided(M.S, [&](Value s) {
    Value sc = minui(s, std::max<int64_t>(S - 1, 0));
    Value theta = f32(0.0);
    if (S > 0 && phase == ssmk::ChunkedPhase::span_outputs)
      theta = load(a.chunkAngleStart, {bIdx, hIdx, span, sc});
    else if (S > 0 && L.hasInit)
      // Sequential and ChunkStates count chunk 0's angles from the initial
      // angle state, every other span of ChunkStates from zero.
      theta = select(eq(firstChunk, 0), load(a.angle0, {bIdx, hIdx, sc}),
                     f32(0.0));
    store(theta, thetaCarry, {s});
  });
}

void ChunkedKernelBuilder::loadPreviousToken(Value span, Value firstChunk,
                                             Value chunkStart) {
  const int64_t N = L.n, P = L.p, S = L.s;
  Value zero = idx(0);
  Value first = eq(firstChunk, 0);
  // The token before the chunk, clamped to 0 for the first chunk (which
  // takes the initial states instead).
  Value prevTok = arith::SubIOp::create(b, arith::MaxUIOp::create(b, chunkStart, idx(1)),
                                        idx(1));
  const int64_t pairs = M.Np / 2;
  strided(M.R * pairs, [&](Value i) {
    Value r = divui(i, pairs), pair = remui(i, pairs);
    std::array<Value, 2> n, k;
    std::tie(n[0], n[1]) = pairEntries(pair);
    for (int e = 0; e < 2; ++e) {
      Value nc = minui(n[e], N - 1);
      Value biased = add(load(a.K, qkIndex(prevTok, r, nc)),
                         load(a.KBias, biasIndex(r, nc)));
      Value initial = L.hasInit ? load(a.k0, stateIndex(r, nc)) : f32(0.0);
      k[e] = select(first, initial, biased);
    }
    if (S > 0 && phase == ssmk::ChunkedPhase::span_outputs) {
      // k_{c-1} = Rot(theta entering the span) (K_{c-1} + bias).
      Value theta = load(a.chunkAngleStart,
                         {bIdx, hIdx, span, minui(pair, S - 1)});
      Value rotated = andi(ult(pair, S), ult(zero, firstChunk));
      auto [cs, sn] = cosSin(theta);
      rotatePair(k[0], k[1], select(rotated, cs, f32(1.0)),
                 select(rotated, sn, f32(0.0)));
    }
    for (int e = 0; e < 2; ++e)
      ifThen(ult(n[e], M.Np), [&] {
        store(select(ult(n[e], N), k[e], f32(0.0)), kPrev, {r, n[e]});
      });
  });
  strided(M.R * M.Pp, [&](Value i) {
    Value r = divui(i, M.Pp), p = remui(i, M.Pp);
    Value pc = minui(p, P - 1);
    Value initial = L.hasInit ? load(a.v0, stateIndex(r, pc)) : f32(0.0);
    Value v = load(a.V, tokenIndex(prevTok, pc));
    if (L.mimo)
      v = mul(v, load(a.mimoV, {hIdx, r, pc}));
    v = select(first, initial, v);
    store(select(ult(p, P), v, f32(0.0)), vPrev, {r, p});
  });
}


void ChunkedKernelBuilder::writeFinalAngleKV() {
  const int64_t N = L.n, P = L.p, S = L.s;
  // No state arguments: nothing uses the layer's final states.
  if (!a.angle)
    return;
  if (S > 0)
    strided(S, [&](Value s) {
      store(memref::LoadOp::create(b, thetaCarry, ValueRange{s}), a.angle,
            {bIdx, hIdx, s});
    });
  strided(M.R * N, [&](Value i) {
    Value r = divui(i, N), n = remui(i, N);
    store(memref::LoadOp::create(b, kPrev, ValueRange{r, n}), a.k,
          stateIndex(r, n));
  });
  strided(M.R * P, [&](Value i) {
    Value r = divui(i, P), p = remui(i, P);
    store(memref::LoadOp::create(b, vPrev, ValueRange{r, p}), a.v,
          stateIndex(r, p));
  });
}
