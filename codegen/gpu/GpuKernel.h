//===- GpuKernel.h - Shared pieces of the ssm-to-gpu kernel builders -*- C++ -*-===//
//
// ssm-to-gpu's kernels each have their own builder: the token-sequential
// kernel (TokenScanKernel.cpp), the chunked tensor-core kernel
// (ChunkedScanKernel.cpp) and chunk-parallel's boundary pass
// (ChunkBoundaryKernel.cpp). They read the same facts off the layer and
// address the same kernel arguments; the helpers that emit arith/memref/scf
// code are here so that the builders say the same thing the same way.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_GPU_GPUKERNEL_H
#define MAMBA3_CODEGEN_GPU_GPUKERNEL_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/Support/MathExtras.h"
#include "dialect/SsmkDialect.h"
#include "codegen/gpu/GpuPasses.h"

namespace mlir::ssm {

/// The ssm-gpu-schedule mma= / mamba3-compile --mma spelling of the chunked
/// kernel's matmul engines ("auto", "mma.sync", "wgmma-scores", "wgmma"),
/// and its parse (nullopt for anything else).
llvm::StringRef chunkedMmaName(ssmk::MmaEngines mma);
std::optional<ssmk::MmaEngines> parseChunkedMma(llvm::StringRef name);

/// Static facts of one layer, read off the op's types and attributes.
struct LayerShape {
  bool step, mimo, hasD, hasZ, hasInit, wrap, euler, halfSplit;
  /// Angles (b, [L,] S) shared by all heads.
  bool broadcastAngles;
  /// A packed variable-length batch: `batch` sequences (the states' batch
  /// axis and grid y) share the single batch row of `seqLen` tokens, at the
  /// offsets in cu_seqlens.
  bool varlen = false;
  /// The per-head RMSNorm of y before the gate (norm_weight, norm_eps).
  bool rmsNorm = false;
  /// A MIMO layer without the down projection: out (b, [L,] R, H, P).
  bool perRankOutputs = false;
  /// A length sized at launch that is a whole number of chunks
  /// (#ssmk.schedule full_chunks): every chunk's tokens are real, so the chunked
  /// kernels read them without bounds checks. The runtime launches such
  /// kernels only for lengths the chunk divides.
  bool fullChunks = false;
  /// The chunked kernel's matmul engines (#ssmk.schedule mma): auto lets its planner
  /// choose; mma.sync runs all three matmuls on mma.sync (no swizzled tiles,
  /// no TMA); wgmma-scores the scores on warpgroup MMA and the output and
  /// state matmuls on mma.sync; wgmma all three on warpgroup MMA. Asked for
  /// where the tiles do not allow it, the planner says which limit.
  ssmk::MmaEngines mma = ssmk::MmaEngines::auto_;
  /// Q/K tile buffers of the one-pass chunked kernel (qk_buffers): 2
  /// loads chunk c + 1 by TMA while chunk c computes, 1 does not; 0 lets the
  /// planner choose (2 where it costs no block per SM).
  int64_t qkBuffers = 0;
  float normEps = 0;
  /// batch and seqLen are ShapedType::kDynamic for a bundle that takes them
  /// at launch (the kernels read them from the grid and a parameter).
  int64_t batch, seqLen, rank, groups, n, heads, p, s;
  /// Element type of Q, K and V (bf16 or f32).
  Type dataType;

  bool dynamicBatch() const { return ShapedType::isDynamic(batch); }
  bool dynamicSeqLen() const { return ShapedType::isDynamic(seqLen); }
  /// Whether a block's sequence length is a value of the launch (varlen's
  /// cu_seqlens, or the seqlen parameter) rather than a constant.
  bool lengthAtLaunch() const { return varlen || dynamicSeqLen(); }
};

/// The static facts of an ssm.scan / ssm.step (ScanToGpu.cpp). For the scan
/// of a chunk loop, seqLen and hasInit are the chunk's.
LayerShape layerShapeOf(Operation *op);

/// Fails with a message naming the limit when a kernel cannot take a tensor
/// of one of the layer's operand or result types (empty shapes).
LogicalResult checkKernelTypes(Operation *op, TypeRange operands,
                               TypeRange results);

/// The kernel's memref arguments (null where the op has no such operand).
struct KernelArgs {
  Value Q, K, V, ADT, DT, Trap, QBias, KBias, Angles, D, Z;
  Value angle0, ssm0, k0, v0, mimoV, mimoZ, mimoO, normWeight;
  Value out, angle, ssm, k, v;
  /// varlen only: the (batch + 1) i32 sequence offsets.
  Value cuSeqlens;
  /// Scratch buffers of the chunk-parallel schedule (null otherwise), one
  /// entry per span of consecutive chunks: its state contribution, then
  /// the state entering it (b, H, spans, P, N), its decay exp(sum of a_end)
  /// (b, H, spans), its angle increment and the angles entering it
  /// (b, H, spans, max(S, 1)).
  Value chunkStates, chunkDecay, chunkAngleEnd, chunkAngleStart;
  /// TMA tensor maps of Q and K (memref<16xi64> in device memory; null when
  /// the kernel copies with cp.async).
  Value qMap, kMap;
  /// Kernels of a dynamic-shape bundle: the sequence length L (index; the
  /// total tokens for varlen) from the `seqlen` launch parameter, and the
  /// chunk-parallel phases' chunks per block when the runtime chooses it
  /// (the `chunks_per_block` parameter); null where the value is static.
  Value seqLen, chunksPerBlock;
  /// chunk-parallel with L sized at launch: the number of spans,
  /// ceil(ceil(L / C) / chunks per block) (the scratch buffers' span axis).
  Value spans;
};

/// Emits scalar arith/memref/scf code into a kernel body. Loads widen to
/// f32 and stores narrow to the memref's element type.
class KernelEmitter {
public:
  KernelEmitter(ImplicitLocOpBuilder &b, const LayerShape &shape,
                const KernelArgs &args, int64_t threads)
      : b(b), L(shape), a(args), threads(threads), warps(threads / 32) {}

protected:
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value i32(int64_t v) {
    return arith::ConstantOp::create(b, b.getI32IntegerAttr(v));
  }
  Value f32(double v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
  }
  Value toF32(Value v) {
    return v.getType().isF32() ? v
                               : arith::ExtFOp::create(b, b.getF32Type(), v);
  }
  Value load(Value memref, ValueRange indices) {
    return toF32(memref::LoadOp::create(b, memref, indices));
  }
  void store(Value value, Value memref, ValueRange indices) {
    Type elem = cast<MemRefType>(memref.getType()).getElementType();
    if (elem != value.getType())
      value = arith::TruncFOp::create(b, elem, value);
    memref::StoreOp::create(b, value, memref, indices);
  }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value addi(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value addi(Value x, int64_t y) { return addi(x, idx(y)); }
  Value muli(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value muli(Value x, int64_t y) { return muli(x, idx(y)); }
  Value divui(Value x, int64_t y) { return arith::DivUIOp::create(b, x, idx(y)); }
  Value remui(Value x, int64_t y) { return arith::RemUIOp::create(b, x, idx(y)); }
  Value minui(Value x, int64_t y) { return arith::MinUIOp::create(b, x, idx(y)); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
  }
  Value ult(Value x, int64_t y) { return ult(x, idx(y)); }
  Value ule(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ule, x, y);
  }
  Value eq(Value x, int64_t y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, idx(y));
  }
  Value andi(Value x, Value y) { return arith::AndIOp::create(b, x, y); }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  /// 1 / (1 + exp(-x)) with libdevice's expf and an IEEE division (the
  /// token-sequential kernel; the chunked one takes fastSigmoid).
  Value sigmoid(Value x) {
    Value e = math::ExpOp::create(b, arith::NegFOp::create(b, x));
    return arith::DivFOp::create(b, f32(1.0), add(f32(1.0), e));
  }
  /// exp(x) as ex2.approx.ftz(x log2 e): about 2 ulp in two instructions
  /// (libdevice's expf takes nine, its fast one without ftz five, scaling
  /// subnormal results that the callers' sums and products do not need).
  Value fastExp(Value x) {
    Value scaled = mul(x, f32(static_cast<float>(llvm::numbers::log2e)));
    return LLVM::CallIntrinsicOp::create(b, b.getF32Type(),
                                         b.getStringAttr("llvm.nvvm.ex2.approx.ftz.f"),
                                         ValueRange{scaled})
        .getResult(0);
  }
  /// sigmoid on the special function unit: ex2.approx and rcp.approx.ftz
  /// (1 + exp(-x) >= 1 is never subnormal; +inf gives 0), about 3 ulp in
  /// four instructions where the afn division alone takes seven.
  Value fastSigmoid(Value x) {
    Value e = fastExp(arith::NegFOp::create(b, x));
    return NVVM::RcpApproxFtzF32Op::create(b, b.getF32Type(), add(f32(1.0), e));
  }
  /// theta mod 2 pi in [0, 2 pi): the angle states the reference returns.
  Value wrapAngle(Value theta) {
    Value twoPi = f32(2 * llvm::numbers::pi);
    Value turns =
        math::FloorOp::create(b, arith::DivFOp::create(b, theta, twoPi));
    return sub(theta, mul(twoPi, turns));
  }
  /// for (i = tid; i < count; i += threads) body(i), with `unroll` copies of
  /// the body per trip so that their global loads are in flight together.
  void strided(int64_t count, function_ref<void(Value)> body,
               int64_t unroll = 1) {
    int64_t trips = (count + threads - 1) / threads;
    unroll = std::max<int64_t>(1, std::min(unroll, trips));
    auto emitBody = [&](Value first) {
      for (int64_t u = 0; u < unroll; ++u) {
        Value i = addi(first, u * threads);
        if (count % (threads * unroll) == 0)
          body(i);
        else
          ifThen(ult(i, count), [&] { body(i); });
      }
    };
    scf::ForOp::create(b, tid, idx(count), idx(threads * unroll), ValueRange{},
                       [&](OpBuilder &nb, Location loc, Value i, ValueRange) {
                         OpBuilder::InsertionGuard guard(b);
                         b.setInsertionPoint(nb.getInsertionBlock(),
                                             nb.getInsertionPoint());
                         emitBody(i);
                         scf::YieldOp::create(b);
                       });
  }
  void ifThen(Value cond, function_ref<void()> body) {
    auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    body();
  }
  /// Token t of the block's sequence in the L axis of the token tensors.
  Value packed(Value t) { return tokenStart ? addi(t, tokenStart) : t; }
  /// Indices of Q/K for token t (absent for a step), rank r, group g, entry n.
  SmallVector<Value> qkIndex(Value t, Value r, Value n) {
    SmallVector<Value> i = {dataBatch};
    if (!L.step)
      i.push_back(packed(t));
    if (L.mimo)
      i.push_back(r);
    i.append({gIdx, n});
    return i;
  }
  SmallVector<Value> biasIndex(Value r, Value n) {
    return L.mimo ? SmallVector<Value>{hIdx, r, n} : SmallVector<Value>{hIdx, n};
  }
  /// (b, [t,] h, x) for V, Z, out and per-head Angles.
  SmallVector<Value> tokenIndex(Value t, Value x) {
    return L.step ? SmallVector<Value>{dataBatch, hIdx, x}
                  : SmallVector<Value>{dataBatch, packed(t), hIdx, x};
  }
  /// Where rank r's output element x of token t goes: (b, [t,] r, h, x)
  /// for per-rank outputs, else tokenIndex(t, x).
  SmallVector<Value> outIndex(Value t, Value r, Value x) {
    if (!L.perRankOutputs)
      return tokenIndex(t, x);
    SmallVector<Value> i = {dataBatch};
    if (!L.step)
      i.push_back(packed(t));
    i.append({r, hIdx, x});
    return i;
  }
  /// Angle s of token t: (b, [t,] [h,] s), without h when the angles are
  /// shared by all heads.
  SmallVector<Value> angleIndex(Value t, Value s) {
    SmallVector<Value> i = {dataBatch};
    if (!L.step)
      i.push_back(packed(t));
    if (!L.broadcastAngles)
      i.push_back(hIdx);
    i.push_back(s);
    return i;
  }
  /// (b, h, [t]) for ADT, DT, Trap.
  SmallVector<Value> coeffIndex(Value t) {
    return L.step ? SmallVector<Value>{dataBatch, hIdx}
                  : SmallVector<Value>{dataBatch, hIdx, packed(t)};
  }
  /// The two state entries rotary pair `pair` (0 .. roundUp(N, 2) / 2)
  /// rotates together: (2i, 2i + 1), or (i, i + N/2) for half-split pairs
  /// (past N/2 the pairs cover the odd entry and the padding). Entries may be
  /// N or past it; callers guard them.
  std::pair<Value, Value> pairEntries(Value pair) {
    const int64_t N = L.n;
    if (!L.halfSplit) {
      Value n0 = muli(pair, 2);
      return {n0, addi(n0, 1)};
    }
    // Pairs past N/2 cover entries 2 (N/2) onwards: 2 pair, 2 pair + 1.
    Value inHalf = ult(pair, N / 2);
    Value padded = muli(pair, 2);
    return {select(inHalf, pair, padded),
            select(inHalf, addi(pair, N / 2), addi(padded, 1))};
  }
  /// cos and sin of an angle on the special function unit (sin.approx /
  /// cos.approx, absolute error about 2^-21 on [-pi, pi]) after reducing it
  /// to [-pi, pi] with a two-part 2 pi, so that large unwrapped angles stay
  /// accurate; the libdevice functions cost ~40 instructions and a
  /// slow-path branch each.
  std::pair<Value, Value> cosSin(Value theta) {
    auto afn = arith::FastMathFlags::afn;
    // 2 pi = twoPiHigh + twoPiLow; twoPiHigh has 8 significant bits, so
    // turns * twoPiHigh is exact below 2^16 turns.
    const float twoPiHigh = 6.28125f;
    const float twoPiLow = static_cast<float>(2 * llvm::numbers::pi - 6.28125);
    Value turns = math::RoundEvenOp::create(
        b, mul(theta, f32(static_cast<float>(1 / (2 * llvm::numbers::pi)))));
    Value reduced = math::FmaOp::create(b, arith::NegFOp::create(b, turns),
                                        f32(twoPiHigh), theta);
    reduced = math::FmaOp::create(b, arith::NegFOp::create(b, turns),
                                  f32(twoPiLow), reduced);
    return {math::CosOp::create(b, reduced, afn),
            math::SinOp::create(b, reduced, afn)};
  }
  /// Rotates the pair (x0, x1) in place by the angle with cosine `cs` and
  /// sine `sn`: Rot(theta) of spec/mamba3-core.md.
  void rotatePair(Value &x0, Value &x1, Value cs, Value sn) {
    Value y0 = sub(mul(x0, cs), mul(x1, sn));
    x1 = add(mul(x0, sn), mul(x1, cs));
    x0 = y0;
  }
  SmallVector<Value> stateIndex(Value r, Value x) {
    return L.mimo ? SmallVector<Value>{bIdx, hIdx, r, x}
                  : SmallVector<Value>{bIdx, hIdx, x};
  }
  /// Thread, lane, warp and (head, batch, group) of the block, and where
  /// its sequence lies in the token tensors.
  void emitIds() {
    tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
    lane = remui(tid, 32);
    warp = divui(tid, 32);
    hIdx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
    bIdx = gpu::BlockIdOp::create(b, gpu::Dimension::y);
    gIdx = divui(hIdx, L.heads / L.groups);
    if (!L.varlen) {
      dataBatch = bIdx;
      seqLength = a.seqLen ? a.seqLen : idx(L.step ? 1 : L.seqLen);
      return;
    }
    // Sequence bIdx is tokens [cu[bIdx], cu[bIdx + 1]) of batch row 0.
    auto offset = [&](Value i) -> Value {
      Value x = memref::LoadOp::create(b, a.cuSeqlens, ValueRange{i});
      return arith::IndexCastUIOp::create(b, b.getIndexType(), x);
    };
    dataBatch = idx(0);
    tokenStart = offset(bIdx);
    seqLength = arith::SubIOp::create(b, offset(addi(bIdx, 1)), tokenStart);
  }

  ImplicitLocOpBuilder &b;
  const LayerShape &L;
  const KernelArgs &a;
  int64_t threads, warps;
  Value tid, lane, warp, hIdx, bIdx, gIdx;
  /// Batch row of the token tensors (bIdx, or 0 for varlen), the first
  /// token of the block's sequence there (null: 0) and its length.
  Value dataBatch, tokenStart, seqLength;
};

/// How the token-sequential and decode-step kernels spread the P x N state
/// over a block.
/// A thread owns groups of `width` adjacent columns of a row (16-byte
/// loads and stores of the state when N % 4 == 0); `lanesPerRow` lanes of a
/// warp share a row (all 32 when a row has that many groups), so a warp
/// covers 32 / lanesPerRow rows at a time.
struct TokenStateLayout {
  int64_t width, lanesPerRow, rowsPerWarp, rowTrips, colTrips;

  TokenStateLayout(const LayerShape &shape, int64_t warps) {
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

/// The token-sequential kernel (TokenScanKernel.cpp): grid (H, b),
/// `threads` per block, its shared buffers the kernel's workgroup
/// attributions (tokenScanWorkgroup's types, in that order; for a decode
/// step, the decode-step kernel's).
void buildTokenScanKernel(gpu::GPUFuncOp kernel, const LayerShape &shape,
                          const KernelArgs &args, int64_t threads);
SmallVector<Type> tokenScanWorkgroup(const LayerShape &shape, MLIRContext *ctx);
/// The decode-step kernel (StepKernel.cpp) of an ssmk.decode_step (an
/// ssm.step): the token kernel's grid and state layout, one round trip
/// of loads and one barrier; its shared buffers (f32 elements, in
/// workgroup-attribution order) are stepKernelWorkgroupSizes.
void buildStepKernel(gpu::GPUFuncOp kernel, const LayerShape &shape,
                     const KernelArgs &args, int64_t threads);
SmallVector<int64_t> stepKernelWorkgroupSizes(const LayerShape &shape);
/// The token-sequential kernel's block size when none is asked for.
int64_t tokenScanBlockSize(const LayerShape &shape);
/// Empty when the token-sequential kernel can hold `shape`, else why not
/// (its state per thread at 1024 threads, its static shared memory, its
/// unrolled rank loops), naming the limit.
std::string tokenScanUnsupported(const LayerShape &shape);


/// Builds the chunked tensor-core kernel body for `shape` (SISO or MIMO
/// scan, bf16 data) into `kernel`, whose block size is `threads` and whose
/// chunks are `tokensPerChunk` tokens, with the engines, buffers and
/// shared memory of `plan` (which checkSharedPlan accepts). The
/// chunk-parallel phases walk spans of `chunksPerBlock` chunks (block z:
/// the span).
void buildChunkedScanKernel(gpu::GPUFuncOp kernel, const LayerShape &shape,
                            const KernelArgs &args, int64_t threads,
                            int64_t tokensPerChunk, ssmk::ChunkedPhase phase,
                            int64_t chunksPerBlock, ssmk::SharedPlanAttr plan);
/// The planner's #ssmk.plan for the chunked kernel of `shape`
/// (ChunkedKernelLayout.cpp): the engines the tiles allow and the layer
/// asks for, the Q/K buffers and V/Z staging that cost no block per SM,
/// the arrays in order.
ssmk::SharedPlanAttr planSharedMemory(MLIRContext *ctx,
                                      const LayerShape &shape,
                                      int64_t tokensPerChunk, int64_t threads);
/// Empty when the chunked kernel of `shape` can be built with `plan`, else
/// why not (engines the tiles do not allow, arrays missing, unused,
/// overlapping or past the plan's total, the shared memory of a block).
std::string checkSharedPlan(const LayerShape &shape, int64_t tokensPerChunk,
                            int64_t threads, ssmk::SharedPlanAttr plan);

/// Chunk-parallel phase 2 (ChunkBoundaryKernel.cpp): grid (H, b,
/// chunkBoundaryBlocks), `threads` per block. Each thread owns one rotary
/// pair of one state row and walks the `spans` span boundaries, turning the
/// span contributions in `chunkStates` into the states entering each span
/// (in place); it writes the angles entering each span and the final ssm
/// state.
void buildChunkBoundaryKernel(gpu::GPUFuncOp kernel, const LayerShape &shape,
                              const KernelArgs &args, int64_t threads,
                              int64_t spans);
int64_t chunkBoundaryBlocks(const LayerShape &shape, int64_t threads);

/// The kernel ops (KernelOps.cpp): ssm-to-gpu ends each kernel's body with
/// the ssmk op that states it (and a gpu.return), and ssmk-build-kernels
/// replaces the op by the body the build* functions above make of it.
void emitTokenScanOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                     const KernelArgs &args, int64_t threads);
void emitDecodeStepOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                      const KernelArgs &args, int64_t threads);
void emitChunkedScanOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                       const KernelArgs &args, int64_t threads,
                       int64_t tokensPerChunk, ssmk::ChunkedPhase phase,
                       int64_t chunksPerBlock = 1);
void emitChunkBoundariesOp(gpu::GPUFuncOp kernel, const LayerShape &shape,
                           const KernelArgs &args, int64_t threads,
                           int64_t spans);
/// A layer's shape as the ops' #ssmk.layer, and back.
ssmk::LayerAttr layerAttrOf(MLIRContext *ctx, const LayerShape &shape);
LayerShape layerShapeOf(ssmk::LayerAttr layer);

/// The block size and dynamic shared memory of the chunked kernel, or a
/// message naming the limit that `shape` exceeds.
struct ChunkedKernelPlan {
  int64_t threads = 0, sharedBytes = 0;
  /// Tokens per chunk: the chunk size counts rank-1 terms (C * R), as the
  /// spec's MIMO chunking does; for SISO it is the chunk size.
  int64_t tokensPerChunk = 0;
  /// Chunks in the sequence.
  int64_t chunks = 0;
  /// Blocks of this kernel an SM holds at once (shared memory and the
  /// estimated registers).
  int64_t blocksPerSm = 0;
  /// Whether the kernel loads each chunk's raw Q and K rows with TMA (then
  /// it takes their tensor maps, boxes `tensorMapBox`, innermost first).
  bool tensorMaps = false;
  SmallVector<int64_t> tensorMapBox;
  std::string unsupported;
};
/// `chunkSize` counts rank-1 terms; 0 lets the planner choose (64, or 32
/// when that lets an SM hold more blocks).
ChunkedKernelPlan planChunkedScanKernel(const LayerShape &shape,
                                        int64_t chunkSize);

} // namespace mlir::ssm

#endif // MAMBA3_CODEGEN_GPU_GPUKERNEL_H
