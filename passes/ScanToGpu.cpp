//===- ScanToGpu.cpp - ssm.scan / ssm.step as a GPU kernel ----------------===//
//
// The sequential-over-tokens schedule: one block per (head, batch) walks the
// sequence carrying the P x N fp32 state in registers. Rotation, the
// discretization rule, skip, gate and the MIMO projections are fused, so
// every input is read once and only out and the final states are written.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "passes/GpuKernel.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMTOGPU
#include "passes/Passes.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// How the token-sequential kernel spreads the P x N state over a block.
/// A thread owns groups of `width` adjacent columns of a row (16-byte
/// loads and stores of the state when N % 4 == 0); `lanesPerRow` lanes of a
/// warp share a row (all 32 when a row has that many groups), so a warp
/// covers 32 / lanesPerRow rows at a time.
struct StateLayout {
  int64_t width, lanesPerRow, rowsPerWarp, rowTrips, colTrips;

  StateLayout(const LayerShape &shape, int64_t warps) {
    width = shape.n % 4 == 0 ? 4 : 1;
    int64_t groups = shape.n / width + (shape.n % width != 0);
    lanesPerRow = std::min<int64_t>(32, llvm::PowerOf2Ceil(groups));
    rowsPerWarp = 32 / lanesPerRow;
    rowTrips = llvm::divideCeil(shape.p, warps * rowsPerWarp);
    colTrips = llvm::divideCeil(groups, lanesPerRow);
  }
  /// State elements per thread.
  int64_t elements() const { return rowTrips * colTrips * width; }
};

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
  const StateLayout layout(L, warps);
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
    // needs (P values each; a step's P is small).
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
        if (L.mimo)
          y = mul(y, load(a.mimoO, {hIdx, idx(r), row.pClamped}));
        outAcc = add(outAcc, y);
      }
      Value writes = arith::AndIOp::create(b, eq(laneInRow, 0),
                                           ult(row.p, idx(P)));
      ifThen(writes, [&] { store(outAcc, a.out, tokenIndex(t, row.p)); });
    }
    next.push_back(theta);
    scf::YieldOp::create(b, next);
  }

  // Final states: ssm from registers, angle from its owner, k/v from the
  // half the last token wrote.
  ValueRange results = loop.getResults();
  for (auto [ci, c] : llvm::enumerate(cells))
    storeState(results.slice(ci * W, W), a.ssm, c);
  if (S > 0)
    ifThen(ownsAngle, [&] { store(results.back(), a.angle, {bIdx, hIdx, tid}); });
  // Token L - 1 wrote half (L - 1) % 2 = (L + 1) % 2.
  Value lastHalf = L.varlen ? remui(addi(seqLength, 1), 2)
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

template <typename OpTy>
LayerShape shapeOf(OpTy op, bool step) {
  auto dims = [](Value v) { return cast<ShapedType>(v.getType()).getShape(); };
  ArrayRef<int64_t> q = dims(op.getQ()), v = dims(op.getV());
  bool mimo = op.isMimoLayout();
  LayerShape s;
  s.step = step;
  s.mimo = mimo;
  s.hasD = static_cast<bool>(op.getD());
  s.hasZ = static_cast<bool>(op.getZ());
  s.wrap = op.getWrapAngle();
  s.euler = op.getRule() == DiscretizationRule::euler;
  s.halfSplit = op.getRotary().getPairing() == RotaryPairing::half_split;
  s.broadcastAngles = op.hasBroadcastAngles();
  s.rmsNorm = static_cast<bool>(op.getNormWeight());
  s.normEps = op.getNormEps().convertToFloat();
  s.batch = q[0];
  s.seqLen = step ? 1 : q[1];
  // A step always has its states; a scan may start from zeros.
  s.hasInit = true;
  if constexpr (std::is_same_v<OpTy, ScanOp>) {
    s.hasInit = static_cast<bool>(op.getInitSsm());
    s.varlen = op.isVarlen();
    // The sequences: the states' batch axis.
    if (s.varlen)
      s.batch = dims(op.getFinalSsm())[0];
  }
  s.rank = mimo ? q[q.size() - 3] : 1;
  s.groups = q[q.size() - 2];
  s.n = q.back();
  s.heads = v[v.size() - 2];
  s.p = v.back();
  s.s = op.getRotary().getAngles();
  s.dataType = cast<ShapedType>(op.getV().getType()).getElementType();
  return s;
}

} // namespace

LayerShape mlir::ssm::layerShapeOf(Operation *op) {
  if (auto step = dyn_cast<StepOp>(op))
    return shapeOf(step, true);
  return shapeOf(cast<ScanOp>(op), false);
}

LogicalResult mlir::ssm::checkKernelTypes(Operation *op, TypeRange types) {
  for (Type t : types) {
    if (!cast<ShapedType>(t).hasStaticShape())
      return op->emitOpError("GPU kernels need static shapes (compile the "
                             "kernel for its batch and sequence length); got ")
             << t;
    // MLIR's bare-pointer kernel ABI (convert-gpu-to-nvvm) has no form for
    // a memref with a zero-sized dimension, such as the angles of a layer
    // without rotary angles.
    if (llvm::is_contained(cast<ShapedType>(t).getShape(), 0))
      return op->emitOpError(
                 "GPU kernels cannot take empty tensors (MLIR's bare-pointer "
                 "arguments have no zero-sized form); got ")
             << t << ": give the layer rotary angles (S >= 2) or compile it "
                     "for the cpu target";
  }
  return success();
}

namespace {

/// The ODS operand segments shared by ssm.scan and ssm.step (cu_seqlens,
/// the last, is the scan's only).
enum Segment : unsigned {
  kQ, kK, kV, kADT, kDT, kTrap, kQBias, kKBias, kAngles, kD, kZ, kInitAngle,
  kInitSsm, kInitK, kInitV, kMimoV, kMimoZ, kMimoO, kNormWeight, kCuSeqlens
};

/// One layer as its kernels see it: the values it reads (in op order, with
/// the op's operand segments) and the types of what it writes. For a chunk
/// loop: the whole-sequence tensors its chunks slice, the states it starts
/// from (none when it starts from zeros), and its results.
struct Layer {
  /// The ssm.scan / ssm.step whose attributes describe the layer (the chunk
  /// scan of a loop).
  Operation *op = nullptr;
  /// The chunk loop (null for a layer op).
  scf::ForOp loop;
  SmallVector<Value> operands;
  SmallVector<int32_t> segments;
  SmallVector<Type> resultTypes;
  LayerShape shape;
  std::string schedule;
  /// Tokens per chunk (chunked schedules), chunks per block (chunk-parallel),
  /// the requested threads per block (tokens; 0: chosen here).
  int64_t chunkTokens = 0, chunksPerBlock = 0, blockSize = 0;

  /// The position among the operands of segment `index`'s operand, if the
  /// segment has one.
  std::optional<unsigned> position(unsigned index) const {
    if (index >= segments.size() || segments[index] == 0)
      return std::nullopt;
    unsigned start = 0;
    for (unsigned i = 0; i < index; ++i)
      start += segments[i];
    return start;
  }
  Value operand(unsigned index) const {
    std::optional<unsigned> at = position(index);
    return at ? operands[*at] : Value();
  }
};

/// The operand segment sizes of an ssm.scan (20 segments) or ssm.step (19).
SmallVector<int32_t> segmentsOf(Operation *op) {
  SmallVector<int32_t> result;
  auto fill = [&](auto layerOp, unsigned count) {
    for (unsigned i = 0; i < count; ++i)
      result.push_back(layerOp.getODSOperandIndexAndLength(i).second);
  };
  if (auto scan = dyn_cast<ScanOp>(op))
    fill(scan, kCuSeqlens + 1);
  else
    fill(cast<StepOp>(op), kCuSeqlens);
  return result;
}

int64_t intAttr(Operation *op, StringRef name) {
  auto attr = op->getAttrOfType<IntegerAttr>(name);
  return attr ? attr.getInt() : 0;
}

/// A layer op that ssm-gpu-schedule marked.
FailureOr<Layer> layerOfOp(Operation *op) {
  Layer layer;
  layer.op = op;
  llvm::append_range(layer.operands, op->getOperands());
  layer.segments = segmentsOf(op);
  llvm::append_range(layer.resultTypes, op->getResultTypes());
  auto schedule = op->getAttrOfType<StringAttr>(kScheduleAttrName);
  if (!schedule)
    return op->emitOpError("ssm-to-gpu: the layer has no schedule; run "
                           "ssm-gpu-schedule first");
  layer.schedule = schedule.str();
  layer.chunkTokens = intAttr(op, kChunkSizeAttrName);
  layer.blockSize = intAttr(op, kBlockSizeAttrName);
  if (failed(checkKernelTypes(op, op->getOperandTypes())) ||
      failed(checkKernelTypes(op, op->getResultTypes())))
    return failure();
  layer.shape = layerShapeOf(op);
  return layer;
}

/// A chunk loop of ssm-gpu-schedule (ssm-tile-sequence's form): the layer
/// it computes, read off the loop. The chunk scan's token operands are
/// slices of whole-sequence tensors defined above the loop; its states are
/// the loop's carried values, which start from the layer's initial states
/// (widened to f32 by a linalg.copy for a bf16 state) or from zeros (a
/// linalg.fill); the ssm result may be narrowed after the loop.
FailureOr<Layer> layerOfLoop(scf::ForOp loop) {
  SmallVector<ScanOp> scans;
  loop.getBody()->walk([&](ScanOp scan) { scans.push_back(scan); });
  if (scans.size() != 1 || loop.getNumResults() != 5)
    return loop.emitOpError("ssm-to-gpu: a chunk loop runs one ssm.scan per "
                            "chunk and carries out and the four states");
  ScanOp scan = scans.front();
  auto schedule = loop->getAttrOfType<StringAttr>(kScheduleAttrName);
  if (!schedule)
    return loop.emitOpError("ssm-to-gpu: ssm.schedule is a string");
  Layer layer;
  layer.op = scan;
  layer.loop = loop;
  layer.schedule = schedule.str();
  layer.chunksPerBlock = intAttr(loop, kChunksPerBlockAttrName);
  std::optional<int64_t> step = getConstantIntValue(loop.getStep());
  std::optional<int64_t> lower = getConstantIntValue(loop.getLowerBound());
  if (!step || !lower || *lower != 0)
    return loop.emitOpError("ssm-to-gpu: a chunk loop starts at 0 and steps "
                            "by a constant chunk");
  layer.chunkTokens = *step;

  // The initial state behind a carried value, or null for zeros.
  auto initialState = [&](Value init) -> FailureOr<Value> {
    if (auto fill = init.getDefiningOp<linalg::FillOp>()) {
      if (matchPattern(fill.getInputs()[0], m_AnyZeroFloat()))
        return Value();
      return FailureOr<Value>(failure());
    }
    if (auto copy = init.getDefiningOp<linalg::CopyOp>())
      return copy.getInputs()[0];
    return init;
  };
  Block *body = loop.getBody();
  SmallVector<Value> states;
  for (Value operand : scan->getOperands()) {
    Value outer = operand;
    if (auto arg = dyn_cast<BlockArgument>(operand);
        arg && arg.getOwner() == body && arg.getArgNumber() > 0) {
      FailureOr<Value> init =
          initialState(loop.getInitArgs()[arg.getArgNumber() - 1]);
      if (failed(init))
        return loop.emitOpError("ssm-to-gpu: a chunk loop's states start from "
                                "the layer's initial states or zeros");
      states.push_back(*init);
      if (!*init)
        continue;
      outer = *init;
    } else if (auto slice = operand.getDefiningOp<tensor::ExtractSliceOp>();
               slice && loop->isProperAncestor(slice)) {
      // The chunk's tokens: offset c on the token axis, 0 elsewhere.
      int64_t atChunk = 0;
      for (OpFoldResult offset : slice.getMixedOffsets()) {
        if (auto v = dyn_cast<Value>(offset); v == loop.getInductionVar())
          ++atChunk;
        else if (!isZeroInteger(offset))
          atChunk = 2;
      }
      if (atChunk != 1)
        return slice.emitOpError("ssm-to-gpu: a chunk scan reads its chunk's "
                                 "tokens, at the loop's chunk start");
      outer = slice.getSource();
    }
    if (!loop.isDefinedOutsideOfLoop(outer))
      return loop.emitOpError("ssm-to-gpu: a chunk scan reads slices of "
                              "values defined above its loop");
    layer.operands.push_back(outer);
  }
  layer.segments = segmentsOf(scan);
  // All four states, or none (zeros).
  bool hasInit = llvm::all_of(states, [](Value v) { return v; });
  if (states.size() != 4 ||
      (!hasInit && llvm::any_of(states, [](Value v) { return v; })))
    return loop.emitOpError("ssm-to-gpu: a chunk loop carries the four "
                            "states, all from the layer's or all zeros");
  for (unsigned i = kInitAngle; i <= kInitV; ++i)
    layer.segments[i] = hasInit ? 1 : 0;
  for (Value result : loop.getResults()) {
    Type type = result.getType();
    // A narrowed ssm state: the layer writes the narrow type.
    if (result == loop.getResult(2) && result.hasOneUse())
      if (auto copy = dyn_cast<linalg::CopyOp>(*result.getUsers().begin()))
        type = copy.getResultTypes()[0];
    layer.resultTypes.push_back(type);
  }
  SmallVector<Type> operandTypes;
  for (Value v : layer.operands)
    operandTypes.push_back(v.getType());
  if (failed(checkKernelTypes(loop, operandTypes)) ||
      failed(checkKernelTypes(loop, layer.resultTypes)))
    return failure();
  layer.shape = layerShapeOf(scan);
  layer.shape.seqLen =
      cast<ShapedType>(layer.operand(kV).getType()).getDimSize(1);
  layer.shape.hasInit = hasInit;
  return layer;
}

KernelArgs argsOf(const Layer &layer, ValueRange kernelArgs) {
  // Kernel arguments mirror the layer: operands in order, then the 5
  // results; optional operands by their segment.
  KernelArgs a;
  unsigned res = layer.operands.size();
  auto segment = [&](unsigned index) -> Value {
    std::optional<unsigned> at = layer.position(index);
    return at ? kernelArgs[*at] : Value();
  };
  a.Q = segment(kQ);
  a.K = segment(kK);
  a.V = segment(kV);
  a.ADT = segment(kADT);
  a.DT = segment(kDT);
  a.Trap = segment(kTrap);
  a.QBias = segment(kQBias);
  a.KBias = segment(kKBias);
  a.Angles = segment(kAngles);
  a.D = segment(kD);
  a.Z = segment(kZ);
  a.angle0 = segment(kInitAngle);
  a.ssm0 = segment(kInitSsm);
  a.k0 = segment(kInitK);
  a.v0 = segment(kInitV);
  a.mimoV = segment(kMimoV);
  a.mimoZ = segment(kMimoZ);
  a.mimoO = segment(kMimoO);
  a.normWeight = segment(kNormWeight);
  a.cuSeqlens = segment(kCuSeqlens);
  a.out = kernelArgs[res];
  a.angle = kernelArgs[res + 1];
  a.ssm = kernelArgs[res + 2];
  a.k = kernelArgs[res + 3];
  a.v = kernelArgs[res + 4];
  return a;
}

/// The fewest warps (4 to 32, a power of two) that leave each thread at most
/// 32 state elements, 16 for a decode step: a step's block loads its whole
/// state before it computes, and lighter threads let more blocks (and their
/// loads) share an SM (H100, N = 128, P = 64: 512 threads beat 256 by 8% to
/// 10% at b = 64 and 256; 1024 lose 18%).
int64_t chooseBlockSize(const LayerShape &shape) {
  const int64_t limit = shape.step ? 16 : 32;
  int64_t warps = 4;
  while (warps < 32 && StateLayout(shape, warps).elements() > limit)
    warps *= 2;
  return 32 * warps;
}

/// Appends the kernel arguments for the TMA tensor maps of Q and K (layer
/// arguments 0 and 1) where the plan loads with TMA; returns how many.
unsigned appendTensorMapArgs(OpBuilder &ob, const ChunkedKernelPlan &plan,
                             SmallVector<Type> &argTypes) {
  if (!plan.tensorMaps)
    return 0;
  // A CUtensorMap: 128 bytes.
  Type map = MemRefType::get({16}, ob.getI64Type());
  argTypes.append({map, map});
  return 2;
}

/// Marks the tensor-map arguments from `first` on and points `args` at them.
void markTensorMapArgs(OpBuilder &ob, gpu::GPUFuncOp kernel, unsigned first,
                       unsigned count, const ChunkedKernelPlan &plan,
                       KernelArgs &args) {
  for (unsigned i = 0; i < count; ++i)
    kernel.setArgAttr(
        first + i, kTensorMapAttrName,
        ob.getDictionaryAttr(
            {ob.getNamedAttr("argument", ob.getI64IntegerAttr(i)),
             ob.getNamedAttr("box", ob.getDenseI64ArrayAttr(plan.tensorMapBox)),
             ob.getNamedAttr("swizzle", ob.getI64IntegerAttr(128))}));
  if (count) {
    args.qMap = kernel.getArgument(first);
    args.kMap = kernel.getArgument(first + 1);
  }
}

/// Threads per block of the chunk-boundary pass (phase 2).
constexpr int64_t kChunkBoundaryThreads = 128;

/// The kernel arguments for `layer`: one memref per operand and result.
SmallVector<Type> layerArgumentTypes(const Layer &layer) {
  SmallVector<Type> types;
  for (Value v : layer.operands) {
    auto t = cast<RankedTensorType>(v.getType());
    types.push_back(MemRefType::get(t.getShape(), t.getElementType()));
  }
  for (Type t : layer.resultTypes) {
    auto tt = cast<RankedTensorType>(t);
    types.push_back(MemRefType::get(tt.getShape(), tt.getElementType()));
  }
  return types;
}

gpu::GPUFuncOp createKernel(OpBuilder &ob, Location loc, StringRef name,
                            ArrayRef<Type> argTypes,
                            ArrayRef<Type> workgroup, int64_t blockSize,
                            std::array<int64_t, 3> grid, StringRef schedule,
                            int64_t sharedBytes) {
  auto kernel = gpu::GPUFuncOp::create(
      ob, loc, name, ob.getFunctionType(argTypes, {}), workgroup);
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  kernel.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({static_cast<int32_t>(blockSize), 1, 1}));
  kernel.setKnownGridSizeAttr(ob.getDenseI32ArrayAttr(
      {static_cast<int32_t>(grid[0]), static_cast<int32_t>(grid[1]),
       static_cast<int32_t>(grid[2])}));
  kernel->setAttr(kScheduleAttrName, ob.getStringAttr(schedule));
  kernel->setAttr(kDynamicSharedBytesAttrName, ob.getI64IntegerAttr(sharedBytes));
  return kernel;
}

/// The three launches of the chunk-parallel schedule. Each kernel takes the
/// op's memrefs, then the four scratch buffers (marked `ssm.scratch`).
void buildChunkParallelKernels(const Layer &layer, func::FuncOp func,
                               gpu::GPUModuleOp module,
                               const ChunkedKernelPlan &plan) {
  const LayerShape &shape = layer.shape;
  const int64_t chunksPerBlock = layer.chunksPerBlock;
  const int64_t chunkSize = plan.tokensPerChunk;
  OpBuilder ob(module.getBodyRegion());
  ob.setInsertionPointToEnd(module.getBody());
  Type f32 = ob.getF32Type();
  const int64_t B = shape.batch, H = shape.heads;
  // Scratch entries and phase 1 / 3 blocks along z: one per span.
  const int64_t spans = llvm::divideCeil(plan.chunks, chunksPerBlock);
  const int64_t angles = std::max<int64_t>(shape.s, 1);
  SmallVector<Type> argTypes = layerArgumentTypes(layer);
  unsigned layerArgs = argTypes.size();
  static constexpr StringLiteral scratchNames[] = {
      "chunk_states", "chunk_decay", "chunk_angle_end", "chunk_angle_start"};
  argTypes.append({MemRefType::get({B, H, spans, shape.p, shape.n}, f32),
                   MemRefType::get({B, H, spans}, f32),
                   MemRefType::get({B, H, spans, angles}, f32),
                   MemRefType::get({B, H, spans, angles}, f32)});
  // Every launch of a bundle takes the same parameters: the tensor maps too.
  unsigned maps = appendTensorMapArgs(ob, plan, argTypes);

  auto create = [&](StringRef suffix, int64_t launchIndex, int64_t threads,
                    int64_t gridZ, int64_t sharedBytes) {
    gpu::GPUFuncOp kernel = createKernel(
        ob, func.getLoc(), (func.getName() + suffix).str(), argTypes, {},
        threads, {H, B, gridZ}, "chunk-parallel", sharedBytes);
    kernel->setAttr(kLaunchIndexAttrName, ob.getI64IntegerAttr(launchIndex));
    kernel->setAttr(kChunkSizeAttrName, ob.getI64IntegerAttr(chunkSize));
    kernel->setAttr(kChunksPerBlockAttrName,
                    ob.getI64IntegerAttr(chunksPerBlock));
    for (unsigned i = 0; i < 4; ++i)
      kernel.setArgAttr(layerArgs + i, kScratchAttrName,
                        ob.getStringAttr(scratchNames[i]));
    KernelArgs args = argsOf(layer, kernel.getArguments());
    args.chunkStates = kernel.getArgument(layerArgs);
    args.chunkDecay = kernel.getArgument(layerArgs + 1);
    args.chunkAngleEnd = kernel.getArgument(layerArgs + 2);
    args.chunkAngleStart = kernel.getArgument(layerArgs + 3);
    markTensorMapArgs(ob, kernel, layerArgs + 4, maps, plan, args);
    return std::make_pair(kernel, args);
  };
  auto [states, statesArgs] =
      create("_chunk_states", 0, plan.threads, spans, plan.sharedBytes);
  buildChunkedScanKernel(states, shape, statesArgs, plan.threads, chunkSize,
                         ChunkedScanPhase::ChunkStates, chunksPerBlock);
  auto [boundaries, boundaryArgs] =
      create("_chunk_boundaries", 1, kChunkBoundaryThreads,
             chunkBoundaryBlocks(shape, kChunkBoundaryThreads), 0);
  buildChunkBoundaryKernel(boundaries, shape, boundaryArgs,
                           kChunkBoundaryThreads, spans);
  auto [outputs, outputArgs] =
      create("_chunk_outputs", 2, plan.threads, spans, plan.sharedBytes);
  buildChunkedScanKernel(outputs, shape, outputArgs, plan.threads, chunkSize,
                         ChunkedScanPhase::ChunkOutputs, chunksPerBlock);
}

LogicalResult buildKernel(const Layer &layer, func::FuncOp func,
                          gpu::GPUModuleOp module) {
  const LayerShape &shape = layer.shape;
  scf::ForOp loop = layer.loop;
  Operation *op = loop ? loop.getOperation() : layer.op;
  const bool useChunked = layer.schedule != "tokens";
  if (layer.schedule != "tokens" && layer.schedule != "chunked" &&
      layer.schedule != "chunk-parallel")
    return op->emitOpError() << "ssm-to-gpu: unknown schedule '"
                             << layer.schedule << "'";
  // The chunked kernel's plan for the chunk the loop (or the varlen op)
  // was given: C tokens are C * R rank-1 terms.
  ChunkedKernelPlan chunked;
  if (useChunked) {
    if ((layer.schedule == "chunk-parallel") !=
        (layer.loop && layer.chunksPerBlock > 0))
      return op->emitOpError("ssm-to-gpu: chunk-parallel is a chunk loop "
                             "with ssm.chunks_per_block");
    if (!layer.loop && !shape.varlen)
      return op->emitOpError("ssm-to-gpu: a chunked layer is a chunk loop "
                             "(ssm-gpu-schedule tiles it), or varlen");
    chunked = planChunkedScanKernel(shape, layer.chunkTokens * shape.rank);
    if (!chunked.unsupported.empty())
      return op->emitOpError() << "ssm-to-gpu: " << chunked.unsupported;
    if (chunked.tokensPerChunk != layer.chunkTokens)
      return op->emitOpError()
             << "ssm-to-gpu: the chunks have " << layer.chunkTokens
             << " tokens (" << layer.chunkTokens * shape.rank
             << " rank-1 terms), but at rank " << shape.rank
             << " the kernel takes chunks of " << chunked.tokensPerChunk
             << " tokens";
  }
  if (layer.schedule == "chunk-parallel") {
    buildChunkParallelKernels(layer, func, module, chunked);
    return success();
  }
  int64_t blockSize = useChunked ? chunked.threads
                      : layer.blockSize == 0 ? chooseBlockSize(shape)
                                             : layer.blockSize;
  if (!useChunked && shape.s > blockSize)
    return op->emitOpError() << "ssm-to-gpu: S = " << shape.s
                             << " rotary angles exceed the block size "
                             << blockSize;

  SmallVector<Type> argTypes = layerArgumentTypes(layer);
  const unsigned layerArgs = argTypes.size();
  OpBuilder ob(module.getBodyRegion());
  ob.setInsertionPointToEnd(module.getBody());
  const unsigned maps =
      useChunked ? appendTensorMapArgs(ob, chunked, argTypes) : 0;
  auto wg = gpu::AddressSpaceAttr::get(ob.getContext(),
                                       gpu::AddressSpace::Workgroup);
  Type f32 = ob.getF32Type();
  const int64_t R = shape.rank, N = shape.n, P = shape.p;
  SmallVector<Type> workgroup;
  if (!useChunked)
    workgroup = {
        MemRefType::get({2 * R * N}, f32, MemRefLayoutAttrInterface(), wg),
        MemRefType::get({2 * R * P}, f32, MemRefLayoutAttrInterface(), wg),
        MemRefType::get({R * N}, f32, MemRefLayoutAttrInterface(), wg),
        MemRefType::get({std::max<int64_t>(shape.s, 1)}, f32,
                        MemRefLayoutAttrInterface(), wg),
        MemRefType::get({std::max<int64_t>(shape.s, 1)}, f32,
                        MemRefLayoutAttrInterface(), wg)};
  if (!useChunked && shape.rmsNorm)
    workgroup.push_back(
        MemRefType::get({R * P}, f32, MemRefLayoutAttrInterface(), wg));
  gpu::GPUFuncOp kernel = createKernel(
      ob, func.getLoc(), func.getName(), argTypes, workgroup, blockSize,
      {shape.heads, shape.batch, 1}, useChunked ? "chunked" : "tokens",
      useChunked ? chunked.sharedBytes : 0);
  KernelArgs args = argsOf(layer, kernel.getArguments());
  markTensorMapArgs(ob, kernel, layerArgs, maps, chunked, args);
  if (useChunked) {
    buildChunkedScanKernel(kernel, shape, args, blockSize,
                           chunked.tokensPerChunk, ChunkedScanPhase::Sequential);
    kernel->setAttr(kChunkSizeAttrName,
                    ob.getI64IntegerAttr(chunked.tokensPerChunk));
    return success();
  }
  ImplicitLocOpBuilder b(func.getLoc(), ob.getContext());
  b.setInsertionPointToStart(&kernel.getBody().front());
  KernelBuilder(b, shape, args, blockSize).build(kernel.getWorkgroupAttributions());
  return success();
}

struct SsmToGpuPass : public ssm::impl::SsmToGpuBase<SsmToGpuPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<func::FuncOp, Layer>, 1> work;
    for (auto func : module.getOps<func::FuncOp>()) {
      // The layers: chunk loops, and layer ops outside of them.
      SmallVector<Operation *> found;
      func.walk([&](Operation *op) {
        if (auto loop = dyn_cast<scf::ForOp>(op)) {
          if (loop->hasAttr(kScheduleAttrName))
            found.push_back(op);
          return;
        }
        auto parent = op->getParentOfType<scf::ForOp>();
        if (isa<ScanOp, StepOp>(op) &&
            !(parent && parent->hasAttr(kScheduleAttrName)))
          found.push_back(op);
      });
      if (found.size() > 1) {
        func.emitError("ssm-to-gpu: one layer (ssm.scan, ssm.step or chunk "
                       "loop) per function");
        return signalPassFailure();
      }
      if (found.empty())
        continue;
      FailureOr<Layer> layer =
          isa<scf::ForOp>(found.front())
              ? layerOfLoop(cast<scf::ForOp>(found.front()))
              : layerOfOp(found.front());
      if (failed(layer))
        return signalPassFailure();
      work.push_back({func, std::move(*layer)});
    }
    if (work.empty())
      return;
    OpBuilder ob(module.getBodyRegion());
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    ob.getUnitAttr());
    auto gpuModule = gpu::GPUModuleOp::create(ob, module.getLoc(), "mamba3_kernels");
    for (auto &[func, layer] : work) {
      if (failed(buildKernel(layer, func, gpuModule)))
        return signalPassFailure();
      func.erase();
    }
  }
};

} // namespace
