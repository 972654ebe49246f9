//===- StepKernel.cpp - The decode-step GPU kernel ------------------------===//
//
// One token per sequence (ssm.step): one block per (head, batch) updates the
// P x N state once, laid out over the block as the token-sequential kernel
// lays it (TokenStateLayout). A step is a stream, so the kernel is built for
// one DRAM round trip and one barrier: every thread first issues its state
// loads and the loads of its share of the per-token vectors (q and k of each
// rank with their biases, rotary partners and angles, the previous k; v, the
// previous v, the gate, the projections), rotates and combines those into
// shared memory, and after the barrier updates its cells from there, sums y
// over the lanes of a row with warp shuffles and writes. The token-sequential
// kernel (one shared stage after another, each behind its own loads and
// barrier) costs a step three dependent round trips; holding every rank's
// vectors in each thread's registers instead costs MIMO its occupancy.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/GpuKernel.h"

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// The kernel's shared buffers (f32 elements), in workgroup-attribution
/// order: rotated q, rotated k and the previous k of every rank (R N each),
/// v and the previous v (R P each), the factor y takes on its way out (the
/// norm weight, silu of the gate, the down projection: R P, where there is
/// one), and y for the RMSNorm (R P).
struct StepBuffers {
  bool outFactor;
  SmallVector<int64_t> sizes;

  explicit StepBuffers(const LayerShape &shape) {
    const int64_t R = shape.rank, N = shape.n, P = shape.p;
    outFactor = shape.rmsNorm || shape.hasZ || (shape.mimo && !shape.perRankOutputs);
    sizes = {R * N, R * N, R * N, R * P, R * P};
    if (outFactor)
      sizes.push_back(R * P);
    if (shape.rmsNorm)
      sizes.push_back(R * P);
  }
};

class StepKernelBuilder : public KernelEmitter {
public:
  using KernelEmitter::KernelEmitter;
  void build(ArrayRef<BlockArgument> workgroup);

private:
  /// `count` values of `memref` from `indices` on along its last axis,
  /// widened to f32: one vector access when `aligned` (the run starts at a
  /// multiple of `count`, and rows are whole runs), else scalar loads.
  SmallVector<Value> loadRun(Value memref, SmallVector<Value> indices,
                             int64_t count, bool aligned);
  /// Items 0 .. count - 1 spread over the block (item tid + u threads on
  /// trip u): `loads` issues an item's global loads, `finish` computes and
  /// stores it. The loads of up to kTripsInFlight trips go first, so that
  /// they are in flight together.
  void produce(int64_t count, function_ref<SmallVector<Value>(Value)> loads,
               function_ref<void(Value, ArrayRef<Value>)> finish);
  static constexpr int64_t kTripsInFlight = 4;
  /// The store of such a run, narrowed to the memref's element type.
  void storeRun(ValueRange values, Value memref, SmallVector<Value> indices,
                bool aligned);
  /// The alignment of a vector access of `count` elements of `memref`.
  llvm::MaybeAlign alignOf(Value memref, int64_t count) {
    return llvm::MaybeAlign(
        count * cast<MemRefType>(memref.getType()).getElementTypeBitWidth() / 8);
  }
};

SmallVector<Value> StepKernelBuilder::loadRun(Value memref,
                                              SmallVector<Value> indices,
                                              int64_t count, bool aligned) {
  SmallVector<Value> values;
  if (aligned && count > 1) {
    auto type = VectorType::get(
        {count}, cast<MemRefType>(memref.getType()).getElementType());
    Value v = vector::LoadOp::create(b, type, memref, indices,
                                     /*nontemporal=*/false,
                                     alignOf(memref, count));
    for (int64_t e = 0; e < count; ++e)
      values.push_back(toF32(vector::ExtractOp::create(b, v, e)));
    return values;
  }
  Value first = indices.back();
  for (int64_t e = 0; e < count; ++e) {
    indices.back() = addi(first, e);
    values.push_back(load(memref, indices));
  }
  return values;
}

void StepKernelBuilder::storeRun(ValueRange values, Value memref,
                                 SmallVector<Value> indices, bool aligned) {
  const int64_t count = values.size();
  Type elem = cast<MemRefType>(memref.getType()).getElementType();
  if (aligned && count > 1) {
    SmallVector<Value> narrow;
    for (Value x : values)
      narrow.push_back(elem.isF32() ? x : arith::TruncFOp::create(b, elem, x));
    Value v = vector::FromElementsOp::create(
        b, VectorType::get({count}, elem), narrow);
    vector::StoreOp::create(b, v, memref, indices, /*nontemporal=*/false,
                            alignOf(memref, count));
    return;
  }
  Value first = indices.back();
  for (int64_t e = 0; e < count; ++e) {
    indices.back() = addi(first, e);
    store(values[e], memref, indices);
  }
}

void StepKernelBuilder::produce(int64_t count,
                                function_ref<SmallVector<Value>(Value)> loads,
                                function_ref<void(Value, ArrayRef<Value>)> finish) {
  const int64_t trips = llvm::divideCeil(count, threads);
  for (int64_t first = 0; first < trips; first += kTripsInFlight) {
    const int64_t last = std::min(trips, first + kTripsInFlight);
    SmallVector<SmallVector<Value>> loaded;
    for (int64_t u = first; u < last; ++u)
      loaded.push_back(loads(minui(addi(tid, u * threads), count - 1)));
    for (int64_t u = first; u < last; ++u) {
      Value i = addi(tid, u * threads);
      auto body = [&] { finish(i, loaded[u - first]); };
      if ((u + 1) * threads <= count)
        body();
      else
        ifThen(ult(i, count), body);
    }
  }
}

void StepKernelBuilder::build(ArrayRef<BlockArgument> workgroup) {
  const int64_t R = L.rank, N = L.n, P = L.p, S = L.s;
  const StepBuffers buffers(L);
  Value qRotBuf = workgroup[0], kRotBuf = workgroup[1], kPrevBuf = workgroup[2],
        vCurBuf = workgroup[3], vPrevBuf = workgroup[4];
  Value outFactorBuf = buffers.outFactor ? Value(workgroup[5]) : Value();
  Value normBuf = L.rmsNorm ? Value(workgroup.back()) : Value();
  const TokenStateLayout layout(L, warps);
  const int64_t W = layout.width;
  // Runs of W columns start at multiples of W, and N % W == 0.
  const bool aligned = W > 1;
  const bool statesOut = static_cast<bool>(a.ssm);

  emitIds();
  Value t = idx(0);
  Value laneInRow = remui(lane, layout.lanesPerRow);
  Value rowInWarp = divui(lane, layout.lanesPerRow);
  Value firstRow = addi(muli(warp, layout.rowsPerWarp), rowInWarp);

  // The rows (p) and column runs (n .. n + W - 1) of the thread's cells;
  // clamped indices keep the loads of idle cells in bounds.
  struct Line {
    Value at, clamped, valid;
  };
  SmallVector<Line> rows, cols;
  for (int64_t i = 0; i < layout.rowTrips; ++i) {
    Value p = addi(firstRow, warps * layout.rowsPerWarp * i);
    rows.push_back({p, minui(p, P - 1), ult(p, P)});
  }
  for (int64_t j = 0; j < layout.colTrips; ++j) {
    Value n = muli(addi(laneInRow, layout.lanesPerRow * j), W);
    cols.push_back({n, minui(n, N - W), ult(n, N)});
  }

  // ---- Phase 1: every global load in flight together. ----
  Value dt = load(a.DT, coeffIndex(t));
  Value adt = load(a.ADT, coeffIndex(t));
  Value trap = L.euler ? Value() : load(a.Trap, coeffIndex(t));
  Value d = L.hasD ? load(a.D, {hIdx}) : Value();

  // state[i][j]: the W values of cell (row i, run j).
  SmallVector<SmallVector<SmallVector<Value>>> state(layout.rowTrips);
  for (auto [i, row] : llvm::enumerate(rows))
    for (const Line &col : cols) {
      SmallVector<Value> h(W, f32(0.0));
      if (L.hasInit)
        h = loadRun(a.ssm0, {bIdx, hIdx, row.clamped, col.clamped}, W, aligned);
      state[i].push_back(h);
    }

  // The rotation angle of pair s: theta_0 + pi tanh(angle) dt.
  auto angleLoads = [&](Value s) {
    return std::pair<Value, Value>{
        L.hasInit ? load(a.angle0, {bIdx, hIdx, s}) : f32(0.0),
        load(a.Angles, angleIndex(t, s))};
  };
  auto theta = [&](std::pair<Value, Value> loaded) {
    Value next = add(loaded.first,
                     mul(mul(f32(llvm::numbers::pi),
                             math::TanhOp::create(b, loaded.second)),
                         dt));
    return L.wrap ? wrapAngle(next) : next;
  };
  // Thread s < S writes angle s of the final states. (In place, the k and v
  // states are safe: item (r, n) reads k0[r, n] and writes k[r, n] in the
  // same thread, as each cell its state.)
  std::pair<Value, Value> ownedAngle;
  if (statesOut && S > 0)
    ownedAngle = angleLoads(minui(tid, S - 1));

  // q and k of rank r, entry n (item r N + n): biased, rotated with the
  // partner entry of its pair, into shared memory with the previous k.
  produce(
      R * N,
      [&](Value item) {
        Value r = divui(item, N), n = remui(item, N);
        Value pair, first, partner;
        if (L.halfSplit) {
          first = ult(n, N / 2);
          Value lower = arith::SubIOp::create(b, n, idx(N / 2));
          pair = select(first, n, lower);
          partner = select(first, addi(n, N / 2), lower);
        } else {
          pair = divui(n, 2);
          first = eq(remui(n, 2), 0);
          partner = select(first, addi(n, 1), arith::SubIOp::create(b, n, idx(1)));
        }
        Value rotated = ult(pair, S);
        partner = select(rotated, partner, n);
        SmallVector<Value> v = {first, rotated};
        for (Value src : {a.Q, a.QBias, a.K, a.KBias}) {
          bool bias = src == a.QBias || src == a.KBias;
          auto at = [&](Value x) {
            return bias ? biasIndex(r, x) : qkIndex(t, r, x);
          };
          v.push_back(load(src, at(n)));
          v.push_back(S > 0 ? load(src, at(partner)) : Value());
        }
        v.push_back(L.hasInit ? load(a.k0, stateIndex(r, n)) : f32(0.0));
        if (S > 0) {
          auto [start, angle] = angleLoads(minui(pair, S - 1));
          v.append({start, angle});
        }
        return v;
      },
      [&](Value item, ArrayRef<Value> v) {
        Value first = v[0], rotated = v[1];
        Value q = add(v[2], v[4]), k = add(v[6], v[8]);
        if (S > 0) {
          auto [cs, sn] = cosSin(theta({v[11], v[12]}));
          sn = select(first, arith::NegFOp::create(b, sn), sn);
          Value qOther = add(v[3], v[5]), kOther = add(v[7], v[9]);
          q = select(rotated, add(mul(q, cs), mul(qOther, sn)), q);
          k = select(rotated, add(mul(k, cs), mul(kOther, sn)), k);
        }
        memref::StoreOp::create(b, q, qRotBuf, ValueRange{item});
        memref::StoreOp::create(b, k, kRotBuf, ValueRange{item});
        memref::StoreOp::create(b, v[10], kPrevBuf, ValueRange{item});
        if (statesOut)
          store(k, a.k, stateIndex(divui(item, N), remui(item, N)));
      });

  // v_r = MIMO_V[h, r] V of rank r, entry p (item r P + p), the previous v,
  // and the factor y_r[p] takes on its way out: the norm weight, the gate
  // silu(z_r) and the down projection.
  produce(
      R * P,
      [&](Value item) {
        Value r = divui(item, P), p = remui(item, P);
        SmallVector<Value> v = {
            load(a.V, tokenIndex(t, p)),
            L.mimo ? load(a.mimoV, {hIdx, r, p}) : Value(),
            L.hasInit ? load(a.v0, stateIndex(r, p)) : f32(0.0),
            L.rmsNorm ? load(a.normWeight, {hIdx, p}) : Value(),
            L.hasZ ? load(a.Z, tokenIndex(t, p)) : Value(),
            L.hasZ && L.mimo ? load(a.mimoZ, {hIdx, r, p}) : Value(),
            L.mimo && !L.perRankOutputs ? load(a.mimoO, {hIdx, r, p}) : Value()};
        return v;
      },
      [&](Value item, ArrayRef<Value> v) {
        Value vCur = L.mimo ? mul(v[0], v[1]) : v[0];
        memref::StoreOp::create(b, vCur, vCurBuf, ValueRange{item});
        memref::StoreOp::create(b, v[2], vPrevBuf, ValueRange{item});
        if (buffers.outFactor) {
          Value factor = f32(1.0);
          if (v[3])
            factor = v[3];
          if (v[4]) {
            Value z = v[5] ? mul(v[4], v[5]) : v[4];
            factor = mul(factor, mul(z, sigmoid(z)));
          }
          if (v[6])
            factor = mul(factor, v[6]);
          memref::StoreOp::create(b, factor, outFactorBuf, ValueRange{item});
        }
        if (statesOut)
          store(vCur, a.v, stateIndex(divui(item, P), remui(item, P)));
      });
  gpu::BarrierOp::create(b);
  // After the barrier: in place (angle0 = angle), every producer has read
  // angle0[s] by now.
  if (statesOut && S > 0) {
    Value owned = theta(ownedAngle);
    ifThen(ult(tid, S), [&] { store(owned, a.angle, {bIdx, hIdx, tid}); });
  }

  // ---- Phase 2: H_t = alpha (H + (1 - lambda) dt v_{t-1} k_{t-1}^T)
  //                     + lambda dt v_t k_t^T,
  // accumulated into the state itself, rank by rank, with the row factors
  // alpha (1 - lambda) dt v_{t-1}[p] and lambda dt v_t[p] taken first: one
  // register per state value (sums per rank kept beside the state took 168
  // registers against 96 at N = 128, 128 threads: 3 blocks per SM, not 5).
  auto shared = [&](Value buf, Value at) {
    return memref::LoadOp::create(b, buf, ValueRange{at}).getResult();
  };
  Value alpha = math::ExpOp::create(b, adt);
  Value lambda = L.euler ? f32(1.0) : sigmoid(trap);
  Value beta = mul(alpha, mul(arith::SubFOp::create(b, f32(1.0), lambda), dt));
  Value gamma = mul(lambda, dt);
  for (auto &rowCells : state)
    for (auto &run : rowCells)
      for (Value &h : run)
        h = mul(alpha, h);
  for (int64_t r = 0; r < R; ++r) {
    SmallVector<Value> vCur, vPrev;
    for (const Line &row : rows) {
      vCur.push_back(mul(gamma, shared(vCurBuf, addi(row.clamped, r * P))));
      vPrev.push_back(mul(beta, shared(vPrevBuf, addi(row.clamped, r * P))));
    }
    for (auto [j, col] : llvm::enumerate(cols))
      for (int64_t e = 0; e < W; ++e) {
        Value at = addi(col.clamped, r * N + e);
        Value kCur = shared(kRotBuf, at), kPrev = shared(kPrevBuf, at);
        for (size_t i = 0; i < rows.size(); ++i) {
          Value &h = state[i][j][e];
          h = add(h, add(mul(vPrev[i], kPrev), mul(vCur[i], kCur)));
        }
      }
  }
  for (auto [i, row] : llvm::enumerate(rows))
    for (auto [j, col] : llvm::enumerate(cols)) {
      Value valid = andi(row.valid, col.valid);
      for (int64_t e = 0; e < W; ++e)
        state[i][j][e] = select(valid, state[i][j][e], f32(0.0));
      // The state leaves as soon as it is known: the stores drain while y
      // is summed.
      if (statesOut)
        ifThen(valid, [&] {
          storeRun(state[i][j], a.ssm, {bIdx, hIdx, row.at, col.at}, aligned);
        });
    }

  // ---- y_r[p] = sum_n H[p,n] q_r[n] (+ D v_r[p]): lane partials of every
  // row and rank, then a reduction over the lanesPerRow lanes of a row.
  // MIMO transposes while it reduces: each XOR step sends half of a lane's
  // rows to its partner and adds the half it receives, so the rows end
  // spread over the lanes, each with all its ranks (R (rows - 1) shuffles
  // to the row butterfly's 5 R rows; H200, R = 4, N = 128, b = 64: 61.7 ->
  // 48.8 us). SISO keeps the butterfly per row, whose partials die at once
  // (the transposing one held them all: within 2% at N = 64 to 256, 10%
  // slower at N = 32).
  struct OwnedRow {
    Value p, pClamped, writes;
    SmallVector<Value> ys;
  };
  SmallVector<OwnedRow> owned;
  auto shuffle = [&](Value x, int64_t offset) {
    return gpu::ShuffleOp::create(b, x, offset, 32, gpu::ShuffleMode::XOR)
        .getShuffleResult();
  };
  auto lanePartial = [&](int64_t i, int64_t r) {
    Value sum = f32(0.0);
    for (auto [j, col] : llvm::enumerate(cols))
      for (int64_t e = 0; e < W; ++e)
        sum = add(sum, mul(state[i][j][e],
                           shared(qRotBuf, addi(col.clamped, r * N + e))));
    return sum;
  };
  if (R == 1) {
    for (auto [i, row] : llvm::enumerate(rows)) {
      Value y = lanePartial(i, 0);
      for (int64_t offset = layout.lanesPerRow / 2; offset > 0; offset /= 2)
        y = add(y, shuffle(y, offset));
      owned.push_back({row.at, row.clamped, andi(eq(laneInRow, 0), row.valid), {y}});
    }
  } else {
    // partial[i][r], rows padded to a power of two.
    const int64_t paddedRows = llvm::PowerOf2Ceil(rows.size());
    SmallVector<SmallVector<Value>> partial(paddedRows,
                                            SmallVector<Value>(R, f32(0.0)));
    for (int64_t r = 0; r < R; ++r)
      for (size_t i = 0; i < rows.size(); ++i)
        partial[i][r] = lanePartial(i, r);
    // rowOf[k]: the row (0 .. paddedRows - 1) that slot k of this lane holds.
    SmallVector<Value> rowOf;
    for (int64_t i = 0; i < paddedRows; ++i)
      rowOf.push_back(idx(i));
    Value writer = arith::ConstantOp::create(b, b.getBoolAttr(true));
    Value trueValue = writer;
    for (int64_t offset = layout.lanesPerRow / 2; offset > 0; offset /= 2) {
      Value upper = arith::CmpIOp::create(
          b, arith::CmpIPredicate::ne,
          arith::AndIOp::create(b, lane, idx(offset)), idx(0));
      const int64_t half = partial.size() / 2;
      if (half == 0) {
        // One row left: a plain butterfly; the lower lane writes it.
        for (Value &y : partial[0])
          y = add(y, shuffle(y, offset));
        writer = andi(writer, arith::XOrIOp::create(b, upper, trueValue));
        continue;
      }
      SmallVector<SmallVector<Value>> kept(half);
      SmallVector<Value> keptRows(half);
      for (int64_t k = 0; k < half; ++k) {
        for (int64_t r = 0; r < R; ++r) {
          Value lo = partial[k][r], hi = partial[half + k][r];
          Value sent = shuffle(select(upper, lo, hi), offset);
          kept[k].push_back(add(select(upper, hi, lo), sent));
        }
        keptRows[k] = select(upper, rowOf[half + k], rowOf[k]);
      }
      partial = std::move(kept);
      rowOf = std::move(keptRows);
    }
    // Slot k is row rowOf[k] of the thread's layout.
    const int64_t rowStride = warps * layout.rowsPerWarp;
    for (auto [k, ys] : llvm::enumerate(partial)) {
      Value p = addi(firstRow, muli(rowOf[k], rowStride));
      Value writes =
          andi(writer, andi(ult(rowOf[k], idx(rows.size())), ult(p, P)));
      owned.push_back({p, minui(p, P - 1), writes, ys});
    }
  }
  if (d)
    for (OwnedRow &row : owned)
      for (int64_t r = 0; r < R; ++r)
        row.ys[r] = add(row.ys[r],
                        mul(d, shared(vCurBuf, addi(row.pClamped, r * P))));

  // The per-head RMSNorm needs all P values of a rank: they meet in shared
  // memory, and every thread sums the squares of the ranks it needs.
  SmallVector<Value> scale;
  if (L.rmsNorm) {
    for (const OwnedRow &row : owned)
      ifThen(row.writes, [&] {
        for (int64_t r = 0; r < R; ++r)
          memref::StoreOp::create(b, row.ys[r], normBuf,
                                  ValueRange{addi(row.p, r * P)});
      });
    gpu::BarrierOp::create(b);
    for (int64_t r = 0; r < R; ++r) {
      auto sum = scf::ForOp::create(
          b, idx(0), idx(P), idx(1), ValueRange{f32(0.0)},
          [&](OpBuilder &nb, Location loc, Value p, ValueRange acc) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            Value y = shared(normBuf, addi(p, r * P));
            scf::YieldOp::create(b, add(acc[0], mul(y, y)));
          });
      Value mean = mul(sum.getResult(0), f32(1.0 / P));
      scale.push_back(math::RsqrtOp::create(b, add(mean, f32(L.normEps))));
    }
  }

  // ---- out: the lane that holds a row writes it (per rank without the
  // down projection).
  for (const OwnedRow &row : owned)
    ifThen(row.writes, [&] {
      Value outAcc = f32(0.0);
      for (int64_t r = 0; r < R; ++r) {
        Value y = row.ys[r];
        if (L.rmsNorm)
          y = mul(y, scale[r]);
        if (outFactorBuf)
          y = mul(y, shared(outFactorBuf, addi(row.p, r * P)));
        if (L.perRankOutputs)
          store(y, a.out, outIndex(t, idx(r), row.p));
        else
          outAcc = add(outAcc, y);
      }
      if (!L.perRankOutputs)
        store(outAcc, a.out, tokenIndex(t, row.p));
    });
  gpu::ReturnOp::create(b);
}

} // namespace

SmallVector<int64_t> mlir::ssm::stepKernelWorkgroupSizes(const LayerShape &shape) {
  return StepBuffers(shape).sizes;
}

void mlir::ssm::buildStepKernel(gpu::GPUFuncOp kernel, const LayerShape &shape,
                                const KernelArgs &args, int64_t threads) {
  ImplicitLocOpBuilder b(kernel.getLoc(), kernel.getContext());
  // After the views of dynamic-shape arguments ssm-to-gpu put there.
  b.setInsertionPointToEnd(&kernel.getBody().front());
  StepKernelBuilder(b, shape, args, threads)
      .build(kernel.getWorkgroupAttributions());
}
