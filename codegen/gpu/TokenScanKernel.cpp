//===- TokenScanKernel.cpp - The token-sequential GPU kernel --------------===//
//
// The sequential-over-tokens schedule: one block per (head, batch) walks the
// sequence carrying the P x N fp32 state in registers. Rotation, the
// discretization rule, skip, gate and the MIMO projections are fused, so
// every input is read once and only out and the final states are written.
// It covers every scan: MIMO, fp32 data, any length; a decode step
// (ssm.step, ssmk.decode_step) is built by StepKernel.cpp instead.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/GpuKernel.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// The token-sequential kernel: one block per (head, batch) walks the
/// tokens with the state in registers.
class KernelBuilder : public KernelEmitter {
public:
  using KernelEmitter::KernelEmitter;
  void build(ArrayRef<BlockArgument> workgroup);
};

void KernelBuilder::build(ArrayRef<BlockArgument> workgroup) {
  Value kBuf = workgroup[0], vBuf = workgroup[1], qBuf = workgroup[2],
        cosBuf = workgroup[3], sinBuf = workgroup[4];
  // y + D v of every rank, for the RMSNorm.
  Value normBuf = L.rmsNorm ? Value(workgroup[5]) : Value();
  const int64_t R = L.rank, N = L.n, P = L.p, S = L.s;
  const TokenStateLayout layout(L, warps);
  const int64_t W = layout.width;

  emitIds();
  Value zero = idx(0);

  // The state elements this thread owns: groups of W adjacent columns
  // starting at n (element e is column n + e), and whether they are in range
  // (N % W == 0, so a group is all in or all out).
  struct Cell {
    Value p, n, pClamped, nClamped, valid;
  };
  Value laneInRow = remui(lane, layout.lanesPerRow);
  Value rowInWarp = divui(lane, layout.lanesPerRow);
  Value firstRow = addi(muli(warp, layout.rowsPerWarp), rowInWarp);
  SmallVector<Cell> cells;
  for (int64_t i = 0; i < layout.rowTrips; ++i)
    for (int64_t j = 0; j < layout.colTrips; ++j) {
      Value p = addi(firstRow, warps * layout.rowsPerWarp * i);
      Value n = muli(addi(laneInRow, layout.lanesPerRow * j), W);
      Value pIn = ult(p, idx(P)), nIn = ult(n, idx(N));
      cells.push_back({p, n, minui(p, P - 1), minui(n, N - W),
                       arith::AndIOp::create(b, pIn, nIn)});
    }
  // W state values at (p, n..n+W-1) of a (b, H, P, N) state in one access
  // (16 bytes for W = 4 fp32 values, 8 for a bf16 state; rows start aligned
  // as N % 4 == 0). The values widen to f32 and narrow back on the store.
  auto vectorOf = [&](Value memref) {
    return VectorType::get(
        {W}, cast<MemRefType>(memref.getType()).getElementType());
  };
  auto alignOf = [&](Value memref) {
    return llvm::MaybeAlign(
        W * cast<MemRefType>(memref.getType()).getElementTypeBitWidth() / 8);
  };
  auto loadState = [&](Value memref, const Cell &c) {
    Value v = vector::LoadOp::create(b, vectorOf(memref), memref,
                                     ValueRange{bIdx, hIdx, c.pClamped, c.nClamped},
                                     /*nontemporal=*/false, alignOf(memref));
    SmallVector<Value> values;
    for (int64_t e = 0; e < W; ++e)
      values.push_back(select(
          c.valid, toF32(vector::ExtractOp::create(b, v, e)), f32(0.0)));
    return values;
  };
  auto storeState = [&](ValueRange values, Value memref, const Cell &c) {
    Type elem = vectorOf(memref).getElementType();
    SmallVector<Value> narrow;
    for (Value x : values)
      narrow.push_back(elem.isF32() ? x : arith::TruncFOp::create(b, elem, x));
    Value v = vector::FromElementsOp::create(b, vectorOf(memref), narrow);
    ifThen(c.valid, [&] {
      vector::StoreOp::create(b, v, memref, ValueRange{bIdx, hIdx, c.p, c.n},
                              /*nontemporal=*/false, alignOf(memref));
    });
  };

  SmallVector<Value> init;
  for (const Cell &c : cells) {
    if (L.hasInit)
      llvm::append_range(init, loadState(a.ssm0, c));
    else
      init.append(W, f32(0.0));
  }
  Value sClamped = arith::MinUIOp::create(b, tid, idx(std::max<int64_t>(S - 1, 0)));
  Value ownsAngle = ult(tid, idx(S));
  Value theta0 = f32(0.0);
  if (L.hasInit && S > 0)
    theta0 = select(ownsAngle, load(a.angle0, {bIdx, hIdx, sClamped}), f32(0.0));
  init.push_back(theta0);
  strided(R * N, [&](Value i) {
    Value r = divui(i, N), n = remui(i, N);
    Value k = L.hasInit ? load(a.k0, stateIndex(r, n)) : f32(0.0);
    memref::StoreOp::create(b, k, kBuf, ValueRange{addi(i, idx(R * N))});
  });
  strided(R * P, [&](Value i) {
    Value r = divui(i, P), p = remui(i, P);
    Value v = L.hasInit ? load(a.v0, stateIndex(r, p)) : f32(0.0);
    memref::StoreOp::create(b, v, vBuf, ValueRange{addi(i, idx(R * P))});
  });

  auto loop = scf::ForOp::create(b, zero, seqLength, idx(1), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value t = loop.getInductionVar();
    ValueRange iter = loop.getRegionIterArgs();
    Value cur = remui(t, 2);
    Value prev = arith::SubIOp::create(b, idx(1), cur);
    Value kCur = muli(cur, idx(R * N)), kPrev = muli(prev, idx(R * N));
    Value vCur = muli(cur, idx(R * P)), vPrev = muli(prev, idx(R * P));
    // The half written now was read as `prev` by the last token.
    gpu::BarrierOp::create(b);

    Value dt = load(a.DT, coeffIndex(t));
    Value adt = load(a.ADT, coeffIndex(t));

    // theta_t for the angle this thread owns; cos/sin go to shared memory.
    Value theta = iter.back();
    if (S > 0) {
      Value ang = load(a.Angles, angleIndex(t, sClamped));
      Value next = add(theta, mul(mul(f32(llvm::numbers::pi),
                                      math::TanhOp::create(b, ang)),
                                  dt));
      if (L.wrap) {
        next = wrapAngle(next);
      }
      theta = select(ownsAngle, next, theta);
      ifThen(ownsAngle, [&] {
        memref::StoreOp::create(b, math::CosOp::create(b, theta), cosBuf,
                                ValueRange{tid});
        memref::StoreOp::create(b, math::SinOp::create(b, theta), sinBuf,
                                ValueRange{tid});
      });
    }
    gpu::BarrierOp::create(b);

    // Rotated, biased q and k of every rank into shared memory.
    strided(R * N, [&](Value i) {
      Value r = divui(i, N), n = remui(i, N);
      Value pair, partner, first;
      if (L.halfSplit) {
        first = ult(n, idx(N / 2));
        Value lower = arith::SubIOp::create(b, n, idx(N / 2));
        pair = select(first, n, lower);
        partner = select(first, addi(n, idx(N / 2)), lower);
      } else {
        pair = divui(n, 2);
        first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, remui(n, 2),
                                      idx(0));
        partner = select(first, addi(n, idx(1)), arith::SubIOp::create(b, n, idx(1)));
      }
      Value rotated = ult(pair, idx(S));
      partner = select(rotated, partner, n);
      Value c, sn;
      if (S > 0) {
        Value pc = arith::MinUIOp::create(b, pair, idx(S - 1));
        c = memref::LoadOp::create(b, cosBuf, ValueRange{pc});
        sn = memref::LoadOp::create(b, sinBuf, ValueRange{pc});
        sn = select(first, arith::NegFOp::create(b, sn), sn);
      }
      for (auto [src, bias, dst, offset] :
           {std::tuple<Value, Value, Value, Value>{a.Q, a.QBias, qBuf, idx(0)},
            {a.K, a.KBias, kBuf, kCur}}) {
        Value self = add(load(src, qkIndex(t, r, n)), load(bias, biasIndex(r, n)));
        Value out = self;
        if (S > 0) {
          Value other = add(load(src, qkIndex(t, r, partner)),
                            load(bias, biasIndex(r, partner)));
          out = select(rotated, add(mul(self, c), mul(other, sn)), self);
        }
        memref::StoreOp::create(b, out, dst, ValueRange{addi(offset, i)});
      }
    });
    // v_{t,r} = MIMO_V[h,r] * V_t.
    strided(R * P, [&](Value i) {
      Value r = divui(i, P), p = remui(i, P);
      Value v = load(a.V, tokenIndex(t, p));
      if (L.mimo)
        v = mul(v, load(a.mimoV, {hIdx, r, p}));
      memref::StoreOp::create(b, v, vBuf, ValueRange{addi(vCur, i)});
    });
    gpu::BarrierOp::create(b);

    // H_t = alpha (H + (1 - lambda) dt v_{t-1} k_{t-1}^T) + lambda dt v_t k_t^T
    Value alpha = math::ExpOp::create(b, adt);
    Value lambda = L.euler ? f32(1.0) : sigmoid(load(a.Trap, coeffIndex(t)));
    Value betaOverAlpha = mul(arith::SubFOp::create(b, f32(1.0), lambda), dt);
    Value gamma = mul(lambda, dt);
    SmallVector<Value> next;
    for (auto [ci, c] : llvm::enumerate(cells))
      for (int64_t e = 0; e < W; ++e) {
        Value prevSum = f32(0.0), curSum = f32(0.0);
        Value n = addi(c.nClamped, e);
        for (int64_t r = 0; r < R; ++r) {
          auto term = [&](Value vOff, Value kOff) {
            Value v = memref::LoadOp::create(
                b, vBuf, ValueRange{addi(vOff, addi(idx(r * P), c.pClamped))});
            Value k = memref::LoadOp::create(
                b, kBuf, ValueRange{addi(kOff, addi(idx(r * N), n))});
            return mul(v, k);
          };
          prevSum = add(prevSum, term(vPrev, kPrev));
          curSum = add(curSum, term(vCur, kCur));
        }
        Value h = add(mul(alpha, add(iter[ci * W + e],
                                     mul(betaOverAlpha, prevSum))),
                      mul(gamma, curSum));
        next.push_back(select(c.valid, h, f32(0.0)));
      }

    // y_{t,r}[p] = sum_n H[p,n] q_r[n]: lane partials, then a warp butterfly.
    Value d = L.hasD ? load(a.D, {hIdx}) : Value();
    const int64_t colTrips = layout.colTrips;
    // ys[i][r]: y + D v of row i's p and rank r.
    SmallVector<SmallVector<Value>> ys(layout.rowTrips);
    for (int64_t i = 0; i < layout.rowTrips; ++i) {
      const Cell &row = cells[i * colTrips];
      for (int64_t r = 0; r < R; ++r) {
        Value partial = f32(0.0);
        for (int64_t j = 0; j < colTrips; ++j)
          for (int64_t e = 0; e < W; ++e) {
            const Cell &c = cells[i * colTrips + j];
            Value q = memref::LoadOp::create(
                b, qBuf, ValueRange{addi(idx(r * N), addi(c.nClamped, e))});
            partial = add(partial, mul(next[(i * colTrips + j) * W + e], q));
          }
        // The lanes of one row are lanesPerRow adjacent lanes.
        for (int32_t offset = layout.lanesPerRow / 2; offset > 0; offset /= 2)
          partial = add(partial, gpu::ShuffleOp::create(b, partial, offset, 32,
                                                         gpu::ShuffleMode::XOR)
                                     .getShuffleResult());
        Value y = partial;
        Value v = memref::LoadOp::create(
            b, vBuf, ValueRange{addi(vCur, addi(idx(r * P), row.pClamped))});
        if (d)
          y = add(y, mul(d, v));
        ys[i].push_back(y);
      }
    }
    // The per-head RMSNorm needs all P values of a rank: they meet in
    // shared memory, and every thread sums the squares of the ranks it
    // needs (P values each).
    SmallVector<Value> scale;
    if (L.rmsNorm) {
      for (int64_t i = 0; i < layout.rowTrips; ++i) {
        const Cell &row = cells[i * colTrips];
        Value writes = arith::AndIOp::create(b, eq(laneInRow, 0),
                                             ult(row.p, idx(P)));
        for (int64_t r = 0; r < R; ++r)
          ifThen(writes, [&] {
            memref::StoreOp::create(b, ys[i][r], normBuf,
                                    ValueRange{addi(row.p, idx(r * P))});
          });
      }
      gpu::BarrierOp::create(b);
      for (int64_t r = 0; r < R; ++r) {
        auto sum = scf::ForOp::create(
            b, zero, idx(P), idx(1), ValueRange{f32(0.0)},
            [&](OpBuilder &nb, Location loc, Value p, ValueRange acc) {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
              Value y = memref::LoadOp::create(b, normBuf,
                                               ValueRange{addi(p, idx(r * P))});
              scf::YieldOp::create(b, add(acc[0], mul(y, y)));
            });
        Value mean = mul(sum.getResult(0), f32(1.0 / P));
        scale.push_back(math::RsqrtOp::create(b, add(mean, f32(L.normEps))));
      }
    }
    for (int64_t i = 0; i < layout.rowTrips; ++i) {
      const Cell &row = cells[i * colTrips];
      Value outAcc = f32(0.0);
      for (int64_t r = 0; r < R; ++r) {
        Value y = ys[i][r];
        if (L.rmsNorm)
          y = mul(y, mul(scale[r], load(a.normWeight, {hIdx, row.pClamped})));
        if (L.hasZ) {
          Value z = load(a.Z, tokenIndex(t, row.pClamped));
          if (L.mimo)
            z = mul(z, load(a.mimoZ, {hIdx, idx(r), row.pClamped}));
          y = mul(y, mul(z, sigmoid(z)));
        }
        if (L.perRankOutputs) {
          // No down projection: rank r's term is its own output.
          Value writes = arith::AndIOp::create(b, eq(laneInRow, 0),
                                               ult(row.p, idx(P)));
          ifThen(writes,
                 [&] { store(y, a.out, outIndex(t, idx(r), row.p)); });
          continue;
        }
        if (L.mimo)
          y = mul(y, load(a.mimoO, {hIdx, idx(r), row.pClamped}));
        outAcc = add(outAcc, y);
      }
      Value writes = arith::AndIOp::create(b, eq(laneInRow, 0),
                                           ult(row.p, idx(P)));
      if (!L.perRankOutputs)
        ifThen(writes, [&] { store(outAcc, a.out, tokenIndex(t, row.p)); });
    }
    next.push_back(theta);
    scf::YieldOp::create(b, next);
  }

  // Final states: ssm from registers, angle from its owner, k/v from the
  // half the last token wrote; none where nothing uses them.
  if (!a.ssm) {
    gpu::ReturnOp::create(b);
    return;
  }
  ValueRange results = loop.getResults();
  for (auto [ci, c] : llvm::enumerate(cells))
    storeState(results.slice(ci * W, W), a.ssm, c);
  if (S > 0)
    ifThen(ownsAngle, [&] { store(results.back(), a.angle, {bIdx, hIdx, tid}); });
  // Token L - 1 wrote half (L - 1) % 2 = (L + 1) % 2.
  Value lastHalf = L.lengthAtLaunch() ? remui(addi(seqLength, 1), 2)
                            : idx((L.seqLen + 1) % 2);
  Value kLast = muli(lastHalf, R * N), vLast = muli(lastHalf, R * P);
  strided(R * N, [&](Value i) {
    Value v = memref::LoadOp::create(b, kBuf, ValueRange{addi(i, kLast)});
    store(v, a.k, stateIndex(divui(i, N), remui(i, N)));
  });
  strided(R * P, [&](Value i) {
    Value v = memref::LoadOp::create(b, vBuf, ValueRange{addi(i, vLast)});
    store(v, a.v, stateIndex(divui(i, P), remui(i, P)));
  });
  gpu::ReturnOp::create(b);
}

} // namespace

/// The fewest warps (4 to 32, a power of two) that leave each thread at most
/// 32 state elements; for a decode step (StepKernel.cpp) at most 128 / R.
/// A step streams its state once, so what counts is the state in flight per
/// SM, and heavy threads carry the most of it per register: H200, P = 64,
/// b = 16 to 256, 128 threads (64 to 128 elements each) beat 512 by 10% to
/// 35% at N = 64 to 256 (N = 256 at 256 or 512 threads loses 25%: one block
/// per SM); with MIMO's R vectors per thread, R = 4 at N = 128 does best
/// with 256.
int64_t mlir::ssm::tokenScanBlockSize(const LayerShape &shape) {
  const int64_t limit = shape.step ? std::max<int64_t>(16, 128 / shape.rank) : 32;
  int64_t warps = 4;
  while (warps < 32 && TokenStateLayout(shape, warps).elements() > limit)
    warps *= 2;
  return 32 * warps;
}

/// f32 elements of the kernel's shared buffers, in workgroup-attribution
/// order: k and v double buffers (token t writes half t % 2), rotated q,
/// the cos and sin of the angles, and y for the RMSNorm; a step's are the
/// decode-step kernel's.
static SmallVector<int64_t> workgroupSizes(const LayerShape &shape) {
  if (shape.step)
    return stepKernelWorkgroupSizes(shape);
  const int64_t R = shape.rank, N = shape.n, P = shape.p;
  const int64_t S = std::max<int64_t>(shape.s, 1);
  SmallVector<int64_t> sizes{2 * R * N, 2 * R * P, R * N, S, S};
  if (shape.rmsNorm)
    sizes.push_back(R * P);
  return sizes;
}

std::string mlir::ssm::tokenScanUnsupported(const LayerShape &shape) {
  // Limits checked before any code is built: past them ptxas would spend
  // minutes on an unrolled kernel it then rejects or spills without end.
  constexpr int64_t kMaxStatePerThread = 128, kMaxRank = 16;
  constexpr int64_t kStaticSharedBytes = 48 * 1024;
  const int64_t R = shape.rank, N = shape.n, P = shape.p;
  auto str = [](int64_t v) { return std::to_string(v); };
  if (R > kMaxRank)
    return "the token-sequential kernel unrolls its rank loops up to R = " +
           str(kMaxRank) + ", got " + str(R);
  int64_t perThread = TokenStateLayout(shape, 32).elements();
  if (perThread > kMaxStatePerThread)
    return "the token-sequential kernel holds the P x N state (" + str(P) +
           " x " + str(N) + ") in the registers of 1024 threads: " +
           str(perThread) + " values per thread, more than its limit of " +
           str(kMaxStatePerThread);
  int64_t bytes = 0;
  for (int64_t size : workgroupSizes(shape))
    bytes += 4 * size;
  if (bytes > kStaticSharedBytes)
    return std::string(shape.step
                           ? "the decode-step kernel's shared buffers (rotated "
                             "q and k, the previous k, v, the previous v and "
                             "the output factors per rank)"
                           : "the token-sequential kernel's shared buffers (k, "
                             "v, q per rank and the angles)") +
           " take " + str(bytes) + " bytes, more than the " +
           str(kStaticSharedBytes) + " of static shared memory";
  return "";
}

SmallVector<Type> mlir::ssm::tokenScanWorkgroup(const LayerShape &shape,
                                                MLIRContext *ctx) {
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Type f32 = Float32Type::get(ctx);
  SmallVector<Type> types;
  for (int64_t size : workgroupSizes(shape))
    types.push_back(MemRefType::get({size}, f32, MemRefLayoutAttrInterface(), wg));
  return types;
}

void mlir::ssm::buildTokenScanKernel(gpu::GPUFuncOp kernel,
                                     const LayerShape &shape,
                                     const KernelArgs &args, int64_t threads) {
  assert(!shape.step && "a decode step is built by buildStepKernel");
  ImplicitLocOpBuilder b(kernel.getLoc(), kernel.getContext());
  // After the views of dynamic-shape arguments ssm-to-gpu put there.
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder(b, shape, args, threads).build(kernel.getWorkgroupAttributions());
}
