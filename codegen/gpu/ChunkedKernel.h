//===- ChunkedKernel.h - Internals of the chunked scan kernel ---*- C++ -*-===//
//
// What the files of the chunked tensor-core kernel share: its limits, the
// shared-memory layout (SharedLayout) and the builder (ChunkedKernelBuilder)
// whose phases are defined one group per file:
//
//   ChunkedKernelLayout.cpp     the shared-memory layout and the planner
//                               (planChunkedScanKernel: chunk size, threads,
//                               occupancy, the limits it names)
//   ChunkedKernelLoads.cpp      copy and stage: the raw q/k rows by TMA or
//                               cp.async, V and Z rows, the staged weights
//                               and angle increments, V^T
//   ChunkedKernelScan.cpp       the chunk prefix scans and the rotation
//   ChunkedKernelMatmuls.cpp    scores, output and state matmuls (mma.sync
//                               or wgmma)
//   ChunkedKernelEpilogue.cpp   the epilogue, the carried previous token and
//                               angles, the final angle/k/v states
//   ChunkedScanKernel.cpp       the kernel: the chunk loop that calls them
//                               (the algorithm is described at its top)
//
// This header is over 600 lines on purpose: most of it is the builder's
// declaration, the kernel's state (views, fragments, lane offsets) and its
// one-line index helpers, which every phase reads.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_CODEGEN_GPU_CHUNKEDKERNEL_H
#define MAMBA3_CODEGEN_GPU_CHUNKEDKERNEL_H

#include "codegen/gpu/GpuKernel.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "llvm/Support/MathExtras.h"

#include <array>

namespace mlir::ssm::chunked {

/// The most dynamic shared memory one block may use on sm_90 (227 KiB).
constexpr int64_t kMaxSharedBytes = 232448;
/// Shared memory of one sm_90 SM (228 KiB) and what the driver reserves per
/// block (1 KiB): how many blocks a layout lets an SM hold.
constexpr int64_t kSharedBytesPerSm = 233472;
constexpr int64_t kReservedSharedBytesPerBlock = 1024;

inline int64_t blocksPerSm(int64_t sharedBytes) {
  return kSharedBytesPerSm / (sharedBytes + kReservedSharedBytesPerBlock);
}

/// Registers a thread may hold (255, allocated in units that round to 256).
constexpr int64_t kRegistersPerThread = 256;

/// Blocks of `threads` an SM holds when ptxas gives each thread the 255
/// registers the state fragments and the unrolled phases usually take.
/// (Capping them for a third block at N = 64 with .minnctapersm 3 gave 168
/// registers without spills but ran 40% slower on an H200: 837 against
/// 596 us at b=8, L=4096, H=32, P=64.)
inline int64_t blocksPerSmByRegisters(int64_t threads) {
  return std::max<int64_t>(1, 65536 / (threads * kRegistersPerThread));
}

/// The largest cp.async piece (16, 8 or 4 bytes) that divides a row of
/// `bytes`, or 0.
inline int64_t copyPieceBytes(int64_t bytes) {
  for (int64_t piece : {16, 8, 4})
    if (bytes % piece == 0)
      return piece;
  return 0;
}
/// Largest state size: the state fragments take N/2 registers per thread.
constexpr int64_t kMaxStateSize = 256;
/// Largest head dim: one warp per 16 state rows, at most 16 warps.
constexpr int64_t kMaxHeadDim = 256;
/// Largest MIMO rank: a chunk's C * R rank-1 terms stay within 128 rows.
constexpr int64_t kMaxRank = 8;

inline int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/// Where each shared-memory array lives (byte offsets into the dynamic
/// shared memory) and its padded row stride in elements.
struct SharedLayout {
  /// Tokens per chunk, ranks, and rows: the chunk's C * R rank-1 terms
  /// (row t * R + r is rank r of token t; R = 1 for SISO).
  int64_t C = 0, R = 0, CR = 0, Np = 0, Pp = 0, S = 0;
  /// The head dim and whether the layer has a gate (the Z rows).
  int64_t P = 0;
  bool hasZ = false;
  /// Chunks in the sequence.
  int64_t chunks = 0;
  int64_t qkStride = 0, tStride = 0, ysStride = 0;
  /// Columns of the scanned array: S angles, then the decay exponent a.
  int64_t scanCols = 0;
  /// The scan splits the chunk into this many segments of tokens.
  static constexpr int64_t kSegments = 8;
  /// The mbarriers (one per q/k buffer) that the TMA copies of the swizzled
  /// tiles complete on.
  int64_t mbar = 0;
  int64_t qs = 0, ks = 0, vt = 0, sm = 0, ys = 0, scan = 0, segSum = 0,
          gamma = 0, beta = 0, wEnd = 0, decay = 0, kPrev = 0, vPrev = 0,
          qBias = 0, kBias = 0, thetaCarry = 0, total = 0;
  /// Raw V and Z rows ((C, P) bf16 each) that cp.async fills at the start
  /// of a chunk, when the rows split into copy pieces and the bytes cost
  /// no block per SM (then vzPiece > 0); Z only with a gate.
  int64_t vzPiece = 0, vs = 0, zs = 0;
  /// Whether q and k live in the 128-byte-swizzled K-major layout of
  /// warpgroup MMA (wgmma), which then computes the scores: element
  /// (row, n) of a tile at [n / 64][row][(n / 8 % 8 xor row % 8) * 8 + n % 8],
  /// atoms of 8 rows x 128 bytes that start 1024-byte aligned. Needs
  /// N % 64 == 0 (whole atoms), 64-row chunks and whole warpgroups.
  bool swizzledQK = false;
  /// Whether the output and state matmuls run on warpgroup MMA as well,
  /// with A in registers (the state and V^T fragments, already in the
  /// m64k16 A layout) and B read through descriptors: Q^T and S^T from the
  /// K-major swizzled q and score tiles, K from the k tile as MN-major.
  /// Needs the swizzled q/k tiles and whole warpgroups of state rows with
  /// no other warps (P % 64 == 0); the score tile is then swizzled too.
  /// SISO with N <= 128 only: the 64 x 64 output accumulator lives beside
  /// the state and its bf16 copy (N / 2 + N / 4 + 32 registers), and past
  /// that, or with MIMO's epilogue, ptxas spills (MIMO R = 4, N = 128 on an
  /// H200: 160 bytes, 4.38 ms against 2.83 ms on mma.sync).
  bool matmulsOnWgmma = false;
  /// Bytes the kernel may skip at the start of the dynamic shared memory to
  /// align the swizzled tiles to 1024.
  static constexpr int64_t kSwizzleAlign = 1024;
  /// Whether the staged V rows serve as V^T (SISO, P % 16 == 0: the
  /// matmuls read them through ldmatrix's transpose, and there is no V^T
  /// tile), and the row stride of the staged V rows in elements (padded
  /// then, so that the eight rows of an ldmatrix hit different banks).
  bool vtFromRaw = false;
  int64_t vRawStride = 0;

  /// Q/K tiles per kind: 2 where the one-pass kernel loads chunk c + 1 by
  /// TMA while chunk c computes (when the second pair of tiles costs no
  /// block per SM), else 1. Buffer b of q starts at qs + b * tileBytes.
  int64_t qkBuffers = 1, tileBytes = 0;

  /// The planner (ssmk-plan-shared-memory's choices): the matmul engines
  /// the tiles allow and L.mma asks for; two Q/K buffers where they cost no
  /// block per SM (with L.qkBuffers = 2 whatever they cost; the planner
  /// refuses a layout without TMA or past the shared memory); the V/Z rows
  /// staged where they cost no block per SM; the arrays in a fixed order.
  SharedLayout(const LayerShape &L, int64_t chunk, int64_t threads);

  /// The layout a #ssmk.plan states, or std::nullopt and `why` where the
  /// tiles do not allow its engines or the layer's arrays do not fit where
  /// it puts them (past its total, overlapping, or missing).
  static std::optional<SharedLayout> fromPlan(const LayerShape &L,
                                              int64_t chunk, int64_t threads,
                                              ssmk::SharedPlanAttr plan,
                                              std::string &why);
  ssmk::SharedPlanAttr toPlan(MLIRContext *ctx) const;

  /// The resolved engines: mma_sync, wgmma_scores or wgmma.
  ssmk::MmaEngines mma() const {
    if (!swizzledQK)
      return ssmk::MmaEngines::mma_sync;
    return matmulsOnWgmma ? ssmk::MmaEngines::wgmma
                          : ssmk::MmaEngines::wgmma_scores;
  }

  /// Whether the tiles allow the scores, and the output and state matmuls,
  /// on warpgroup MMA (whatever L.mma asks).
  static bool scoresFitWgmma(const LayerShape &L, int64_t CR, int64_t threads) {
    return L.n % 64 == 0 && CR == 64 && threads % 128 == 0;
  }
  static bool matmulsFitWgmma(const LayerShape &L, int64_t CR,
                              int64_t threads) {
    return scoresFitWgmma(L, CR, threads) && L.p % 64 == 0 &&
           threads == 32 * (L.p / 16);
  }

private:
  SharedLayout() = default;
  /// What a layout is built from besides the layer: the plan's choices.
  struct Choices {
    ssmk::MmaEngines mma;
    int64_t qkBuffers;
    bool stagedVZ;
  };
  /// The layout the planner picks between for one number of Q/K buffers:
  /// with the V/Z rows staged where that costs no block per SM.
  static SharedLayout planned(const LayerShape &L, int64_t chunk,
                              int64_t threads, ssmk::MmaEngines mma,
                              int64_t buffers);
  /// Strides and flags from the choices, the arrays one after another.
  void layOut(const LayerShape &L, int64_t chunk, int64_t threads,
              Choices choices);
  /// One array: its name in #ssmk.plan, its offset field and its bytes.
  struct Array {
    const char *name;
    int64_t SharedLayout::*offset;
    int64_t bytes;
  };
  /// The arrays this layout has, in layout order (the sizes follow from
  /// the layer, the chunk and the choices; ys also holds scan).
  SmallVector<Array> arrays() const;
};

/// An m16n8 f32 accumulator tile: c0, c1 at (row g, cols 2q, 2q+1), c2, c3 at
/// row g + 8 (g = lane / 4, q = lane % 4).
using Acc = std::array<Value, 4>;

class ChunkedKernelBuilder : public KernelEmitter {
public:
  ChunkedKernelBuilder(ImplicitLocOpBuilder &b, const LayerShape &shape,
                       const KernelArgs &args, int64_t threads,
                       const SharedLayout &layout, ssmk::ChunkedPhase phase,
                       int64_t chunksPerBlock)
      : KernelEmitter(b, shape, args, threads), M(layout), phase(phase),
        chunksPerBlock(chunksPerBlock), ownerWarps(layout.Pp / 16) {}

  void build();

private:
  // Shared-memory views.
  Value view(int64_t offset, ArrayRef<int64_t> shape, Type elem) {
    auto wg = gpu::AddressSpaceAttr::get(b.getContext(),
                                         gpu::AddressSpace::Workgroup);
    auto type = MemRefType::get(shape, elem, MemRefLayoutAttrInterface(), wg);
    return memref::ViewOp::create(b, type, smem, addi(smemPad, offset),
                                  ValueRange{});
  }
  /// Indices of element (row, column) of a shared tile: the q and k tiles
  /// may be swizzled (qkAt), the others are row-major.
  SmallVector<Value> tileIndex(Value view, Value row, Value column) {
    if (view == qs || view == ks)
      return qkAt(row, column);
    if (view == sm && M.matmulsOnWgmma)
      return {row, swizzledColumn(row, column)};
    return {row, column};
  }
  /// Indices of element (row, n) of the q or k tile.
  SmallVector<Value> qkAt(Value row, Value n) {
    if (!M.swizzledQK)
      return {row, n};
    return {qkBuf, divui(n, 64), row, swizzledColumn(row, n)};
  }
  /// Where entry n of a row of a 128-byte-swizzled atom lives: the 16-byte
  /// piece n / 8 moves to piece (n / 8) xor (row % 8).
  Value swizzledColumn(Value row, Value n) {
    Value piece = arith::XOrIOp::create(b, remui(divui(n, 8), 8), remui(row, 8));
    return addi(muli(piece, 8), remui(n, 8));
  }

  /// The 16-bit element type of the matmul operands: the data type, bf16
  /// or f16 (the official kernels multiply in the inputs' type too).
  Type elt() { return L.dataType; }
  bool isF16() { return L.dataType.isF16(); }
  NVVM::MMATypes mmaType() {
    return isF16() ? NVVM::MMATypes::f16 : NVVM::MMATypes::bf16;
  }

  // 16-bit pairs packed in 32-bit words, the operand format of mma.sync.
  /// One vector truncation: cvt.rn.bf16x2.f32 (f16x2) converts and packs
  /// both in one instruction (two scalar conversions and a permute
  /// otherwise).
  Value pack(Value lo, Value hi) {
    Value pair = vector::FromElementsOp::create(
        b, VectorType::get({2}, b.getF32Type()), ValueRange{lo, hi});
    Value narrow = arith::TruncFOp::create(
        b, VectorType::get({2}, elt()), pair);
    Value word = vector::BitCastOp::create(
        b, VectorType::get({1}, b.getI32Type()), narrow);
    return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
  }
  /// The two f32 values of a packed pair (bf16 is the top half of f32: two
  /// integer operations; f16 widens with one conversion each).
  std::pair<Value, Value> unpack(Value w) {
    if (isF16()) {
      Value pair = vector::BitCastOp::create(
          b, VectorType::get({2}, elt()),
          vector::FromElementsOp::create(b, VectorType::get({1}, b.getI32Type()),
                                         ValueRange{w}));
      Value wide = arith::ExtFOp::create(b, VectorType::get({2}, b.getF32Type()), pair);
      return {vector::ExtractOp::create(b, wide, ArrayRef<int64_t>{0}),
              vector::ExtractOp::create(b, wide, ArrayRef<int64_t>{1})};
    }
    Value lo = arith::ShLIOp::create(b, w, i32(16));
    Value hi = arith::AndIOp::create(b, w, i32(static_cast<int32_t>(0xffff0000u)));
    return {arith::BitcastOp::create(b, b.getF32Type(), lo),
            arith::BitcastOp::create(b, b.getF32Type(), hi)};
  }
  Acc mma(ArrayRef<Value> a, ArrayRef<Value> bw, const Acc &c) {
    Type f32t = b.getF32Type();
    auto structTy = LLVM::LLVMStructType::getLiteral(
        b.getContext(), {f32t, f32t, f32t, f32t});
    // nvvm.mma.sync takes bf16 operands as i32 words, f16 ones as
    // vector<2xf16> pairs: the same 32 bits.
    auto operands = [&](ArrayRef<Value> words) {
      SmallVector<Value> v(words.begin(), words.end());
      if (isF16())
        for (Value &w : v)
          w = vector::BitCastOp::create(
              b, VectorType::get({2}, elt()),
              vector::FromElementsOp::create(
                  b, VectorType::get({1}, b.getI32Type()), ValueRange{w}));
      return v;
    };
    auto op = NVVM::MmaOp::create(
        b, structTy, operands(a), operands(bw), ValueRange(c), {16, 8, 16},
        std::nullopt,
        std::nullopt,
        std::array<NVVM::MMATypes, 2>{mmaType(), mmaType()},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    Acc d;
    for (int64_t i = 0; i < 4; ++i)
      d[i] = LLVM::ExtractValueOp::create(b, op.getResult(),
                                         ArrayRef<int64_t>{i});
    return d;
  }
  /// Row and column of element e of the accumulator tile at (r0, c0).
  Value accRow(Value r0, int64_t e) { return addi(addi(r0, g), (e / 2) * 8); }
  Value accCol(Value c0, int64_t e) { return addi(addi(c0, muli(q, 2)), e % 2); }
  Acc zeroAcc() {
    Value z = f32(0.0);
    return {z, z, z, z};
  }
  /// Where lane l points ldmatrix: matrix m = l / 8 has its row l % 8 at
  /// (row, column) offset (8 * rowSel(m) + l % 8, 8 * colSel(m)) from the
  /// origin of a call.
  struct LaneOffsets {
    Value row, col;
  };
  /// Four 8x8 bf16 matrices of `view`, one 32-bit word each per lane (the
  /// pair of row lane / 4, columns 2 (lane % 4) and + 1; with `transpose`
  /// of the transposed matrix): one shared-memory instruction in place of
  /// four 32-bit loads. Row strides are odd multiples of 16 bytes, so the
  /// eight rows of a matrix hit eight different 4-bank groups.
  SmallVector<Value> ldmatrix(Value view, Value r0, Value c0,
                              const LaneOffsets &at, bool transpose = false) {
    Type i32t = b.getI32Type();
    auto type = VectorType::get({4, 2}, elt());
    Value tiles = nvgpu::LdMatrixOp::create(
        b, type, view,
        tileIndex(view, addi(r0, at.row), addi(c0, at.col)), transpose,
        /*numTiles=*/4);
    SmallVector<Value> words;
    for (int64_t m = 0; m < 4; ++m) {
      Value pair = vector::ExtractOp::create(b, tiles, ArrayRef<int64_t>{m});
      Value word = vector::BitCastOp::create(b, VectorType::get({1}, i32t), pair);
      words.push_back(vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0}));
    }
    return words;
  }
  /// The A operand (16 x 16 at rows r0, columns c0) of a row-major bf16
  /// array.
  SmallVector<Value> loadA(Value view, Value r0, int64_t c0) {
    return ldmatrix(view, r0, idx(c0), aLanes);
  }
  /// The B operands (16 x 8, k x n) of n-tiles n0 and n0 + 8 at k0, from
  /// an array stored n-major (element (k, n) at [n][k]): {b(n0), b(n0 + 8)}.
  std::pair<SmallVector<Value>, SmallVector<Value>>
  loadBPair(Value view, Value n0, int64_t k0) {
    SmallVector<Value> w = ldmatrix(view, n0, idx(k0), nPairLanes);
    return {{w[0], w[1]}, {w[2], w[3]}};
  }
  /// The same from an array stored k-major (element (k, n) at [k][n]),
  /// through ldmatrix's transpose.
  std::pair<SmallVector<Value>, SmallVector<Value>>
  loadBPairKMajor(Value view, int64_t k0, Value n0) {
    SmallVector<Value> w = ldmatrix(view, idx(k0), n0, aLanes, /*transpose=*/true);
    return {{w[0], w[1]}, {w[2], w[3]}};
  }

  /// Orders this thread's generic-proxy writes to shared memory before
  /// reads through the async proxy (warpgroup MMA's descriptors).
  void fenceProxyAsync() {
    NVVM::FenceProxyOp::create(
        b, NVVM::ProxyKindAttr::get(b.getContext(), NVVM::ProxyKind::async_shared),
        NVVM::SharedSpaceAttr::get(b.getContext(), NVVM::SharedSpace::shared_cta));
  }
  /// A wgmma matrix descriptor of a 128-byte-swizzled operand at shared
  /// address `address` (an index): the start address / 16 (bits 0-13), the
  /// leading byte offset / 16 (bits 16-29; the distance between the
  /// 64-entry column blocks of an MN-major operand, unused for K-major
  /// ones), the stride between 8-row groups, 1024 bytes / 16 (bits 32-45),
  /// and the 128-byte swizzle (1 at bit 62). The hardware applies the
  /// swizzle to the addresses it forms, so a start inside an atom (the
  /// k-steps of a K-major operand) is the unswizzled address.
  Value wgmmaDescriptor(Value address, int64_t leadingBytes) {
    Type i64t = b.getI64Type();
    auto c64 = [&](int64_t v) {
      return arith::ConstantIntOp::create(b, i64t, v).getResult();
    };
    Value a64 = arith::IndexCastUIOp::create(b, i64t, address);
    Value start = arith::ShRUIOp::create(
        b, arith::AndIOp::create(b, a64, c64(0x3FFFF)), c64(4));
    int64_t fields = ((leadingBytes >> 4) << 16) | (int64_t(1024 >> 4) << 32) |
                     (int64_t(1) << 62);
    return arith::OrIOp::create(b, start, c64(fields)).getResult();
  }
  /// The descriptor of the K-major operand made of rows row0.. of the
  /// swizzled tile at byte `tile` (+ `extra`), k-columns 16 kk .. 16 kk + 15
  /// (column blocks of 64 entries, CR rows x 128 bytes each).
  Value kMajorDescriptor(int64_t tile, Value extra, Value row0, int64_t kk) {
    Value address =
        addi(addi(smemBase, tile + (kk / 4) * M.CR * 128 + (kk % 4) * 32),
             addi(muli(row0, 128), extra));
    return wgmmaDescriptor(address, 0);
  }
  /// One m64nWk16 warpgroup MMA, D = A B + D with W = 2 acc.size(): A in
  /// registers (four packed bf16 pairs per thread, per warp the m16k16 A
  /// layout of mma.sync), B through `descB`, K-major or, with `transposeB`,
  /// MN-major; D in the m16n8 accumulator layout (value 4 j + e of n-tile
  /// j). MLIR's nvvm.wgmma.mma_async reads A only through a descriptor, so
  /// this is the PTX instruction inline; wgmmaChain fences, commits and
  /// waits.
  SmallVector<Value> wgmmaRegisterA(ArrayRef<Value> acc, ArrayRef<Value> a,
                                    Value descB, bool transposeB) {
    const int64_t k = acc.size();
    std::string text;
    llvm::raw_string_ostream os(text);
    os << "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
       << "wgmma.mma_async.sync.aligned.m64n" << 2 * k
       << (isF16() ? "k16.f32.f16.f16 {" : "k16.f32.bf16.bf16 {");
    for (int64_t i = 0; i < k; ++i)
      os << (i ? ", $" : "$") << i;
    // Outputs $0.., then the tied accumulator inputs, A and the descriptor.
    os << "}, {$" << 2 * k << ", $" << 2 * k + 1 << ", $" << 2 * k + 2
       << ", $" << 2 * k + 3 << "}, $" << 2 * k + 4 << ", p, 1, 1, "
       << (transposeB ? 1 : 0) << ";\n}\n";
    std::string constraints;
    for (int64_t i = 0; i < k; ++i)
      constraints += "=f,";
    for (int64_t i = 0; i < k; ++i)
      constraints += std::to_string(i) + ",";
    constraints += "r,r,r,r,l";
    SmallVector<Value> operands(acc);
    operands.append(a.begin(), a.end());
    operands.push_back(descB);
    auto resultType = LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(k, b.getF32Type()));
    auto op = LLVM::InlineAsmOp::create(
        b, resultType, operands, text, constraints, /*has_side_effects=*/true,
        /*is_align_stack=*/false, LLVM::TailCallKind::None,
        LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
        /*operand_attrs=*/ArrayAttr());
    SmallVector<Value> d;
    for (int64_t i = 0; i < k; ++i)
      d.push_back(LLVM::ExtractValueOp::create(b, op.getRes(), ArrayRef<int64_t>{i}));
    return d;
  }

  /// acc + sum_kk A_kk B_kk as one chain of wgmmaRegisterA, fenced,
  /// committed and waited for: `a` the A fragments per k-step, `descB(kk)`
  /// B's descriptor for k-step kk.
  SmallVector<Value> wgmmaChain(SmallVector<Value> acc,
                                ArrayRef<SmallVector<Value>> a,
                                function_ref<Value(int64_t)> descB,
                                bool transposeB) {
    NVVM::WgmmaFenceAlignedOp::create(b);
    for (int64_t kk = 0; kk < static_cast<int64_t>(a.size()); ++kk)
      acc = wgmmaRegisterA(acc, a[kk], descB(kk), transposeB);
    NVVM::WgmmaGroupSyncAlignedOp::create(b);
    NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
    return acc;
  }

  /// Runs `body` in the warps that own state rows and returns its values;
  /// the other warps pass `current` through.
  SmallVector<Value> inOwnerWarps(ValueRange current,
                                  function_ref<SmallVector<Value>()> body) {
    if (warps == ownerWarps)
      return body();
    auto op = scf::IfOp::create(b, current.getTypes(), ult(warp, ownerWarps),
                                /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&op.getThenRegion().front());
      scf::YieldOp::create(b, body());
      b.setInsertionPointToStart(&op.getElseRegion().front());
      scf::YieldOp::create(b, current);
    }
    return SmallVector<Value>(op.getResults());
  }

  /// Token t of the chunk: its index in the sequence, that index clamped to
  /// the last token (always safe to load), and whether it is a real token.
  struct Token {
    Value index, clamped, valid;
  };
  Token token(Value chunkStart, Value t) {
    Value tok = addi(chunkStart, t);
    if (fullChunk)
      return {tok, tok, arith::ConstantIntOp::create(b, 1, 1)};
    Value last = L.lengthAtLaunch() ? arith::SubIOp::create(b, seqLength, idx(1))
                          : idx(L.seqLen - 1);
    return {tok, arith::MinUIOp::create(b, tok, last), ult(tok, seqLength)};
  }

  /// Bytes of one cp.async of raw Q/K (the largest piece that divides a
  /// row of N bf16), or 0 when N is odd and rotateChunk reads global memory
  /// itself.
  int64_t qkCopyBytes() const { return copyPieceBytes(L.n * 2); }
  /// Starts cp.async copies of `count` rows of `rowElems` bf16 from `src`
  /// into the shared tile `dst` ([row][column]), in pieces of `pieceBytes`;
  /// `srcIndex(row, column)` addresses the first element of a piece.
  void copyRows(Value src, Value dst, int64_t count, int64_t rowElems,
                int64_t pieceBytes,
                function_ref<SmallVector<Value>(Value, Value)> srcIndex,
                function_ref<SmallVector<Value>(Value, Value)> dstIndex);
  /// Starts the asynchronous copies of the chunk's raw bf16 Q and K rows
  /// into qs / ks (rows t * R + r, columns 0..N-1; tokens past the end copy
  /// the clamped last token, which the rotation zeroes).
  void copyRawQK(Value chunkStart);
  /// The same by TMA: thread 0 expects the bytes on the mbarrier and issues
  /// one box per 64 entries of Q and of K into the swizzled tiles.
  void loadRawQKWithTma(Value chunkStart, Value buffer);
  /// A shared-memory pointer (!llvm.ptr<3>) to byte `offset` past the
  /// aligned base, and the generic pointer of a device-memory memref.
  Value sharedPtr(int64_t offset, Value extra = Value());
  Value globalPtr(Value memref);
  /// Starts the copies of the chunk's raw V and Z rows (token t, all P)
  /// into vRaw / zRaw.
  void copyRawVZ(Value chunkStart);
  /// V^T (with the MIMO V up-projection) from the raw V rows, or from
  /// global memory without staging.
  void transposeV(Value chunkStart, bool fromRaw);
  void stageChunk(Value chunkStart);
  /// The stage's global loads of token t (dt, a dt, trap) and of angle
  /// item i (the angle and its token's dt), and what it stores from them.
  SmallVector<Value> loadTokenStage(Value chunkStart, Value t);
  void storeTokenStage(Value chunkStart, Value t, ValueRange loaded);
  SmallVector<Value> loadAngleStage(Value chunkStart, Value i);
  void storeAngleStage(Value chunkStart, Value i, ValueRange loaded);
  /// stageChunk in two halves for the one-pass kernel: this thread's
  /// loads for a chunk, issued a chunk ahead (before the previous chunk's
  /// epilogue, so that their latency hides behind it) and carried through
  /// the loop, then the stores. At most kMaxStagePrefetch items per thread.
  SmallVector<Value> prefetchStage(Value chunkStart);
  void storeStage(Value chunkStart, ValueRange loaded);
  /// A thread's items of the two stage loops, and the values a token item
  /// loads (dt, a dt, and trap unless the rule is Euler).
  int64_t tokenStageItems() const { return llvm::divideCeil(M.C, threads); }
  int64_t angleStageItems() const {
    return L.s > 0 ? llvm::divideCeil(M.C * L.s, threads) : 0;
  }
  int64_t tokenStageValues() const { return L.euler ? 2 : 3; }
  static constexpr int64_t kMaxStagePrefetch = 9;
  bool prefetchesStage() const {
    return tokenStageItems() + angleStageItems() <= kMaxStagePrefetch;
  }
  void scanChunk();
  /// a_t - a_{c-1} for token t of the chunk (after the scan).
  Value aAt(Value t) {
    return memref::LoadOp::create(b, scan, ValueRange{t, idx(L.s)});
  }
  /// w(t, u) = exp(a_t - a_u) (gamma_u + [u < t] beta_{u+1}) for u <= t in
  /// the chunk: the weight of token u's v k^T in the state after token t.
  Value weight(Value t, Value u) {
    Value betaNext = memref::LoadOp::create(
        b, betaS, ValueRange{minui(addi(u, 1), M.C - 1)});
    Value w = add(memref::LoadOp::create(b, gammaS, ValueRange{u}),
                  select(ult(u, t), betaNext, f32(0.0)));
    return mul(w, fastExp(sub(aAt(t), aAt(u))));
  }
  /// A vector of `type` from `view` at `at`: shared arrays, their rows and
  /// the global rows read here start 16-byte aligned.
  Value loadVector(VectorType type, Value view, ValueRange at) {
    int64_t bytes = type.getNumElements() * type.getElementTypeBitWidth() / 8;
    return vector::LoadOp::create(b, type, view, at, /*nontemporal=*/false,
                                  llvm::MaybeAlign(std::min<int64_t>(bytes, 16)));
  }
  /// Stores scores (t, u) and (t, u + 1) of the chunk, u even (the two
  /// columns of an accumulator row), as one 4-byte store of the bf16 pair:
  /// their q.k products `dot0`, `dot1` weighted by the causal 3-term mask
  /// (zero above the diagonal of tokens).
  void storeScorePair(Value t, Value u, Value dot0, Value dot1) {
    Value tt = tokenOf(t);
    SmallVector<Value> pair;
    for (auto [col, dot] : {std::pair<Value, Value>{u, dot0}, {addi(u, 1), dot1}}) {
      Value ut = tokenOf(col);
      Value x = select(ule(ut, tt), mul(dot, weight(tt, ut)), f32(0.0));
      pair.push_back(arith::TruncFOp::create(b, elt(), x));
    }
    vector::StoreOp::create(
        b, vector::FromElementsOp::create(b, VectorType::get({2}, elt()), pair),
        sm, tileIndex(sm, t, u), /*nontemporal=*/false, llvm::MaybeAlign(4));
  }
  /// v of a row of the chunk at p: the staged V rows when they serve as
  /// V^T, else V^T.
  Value vOf(Value row, Value p) {
    return M.vtFromRaw ? load(vRaw, {row, p}) : load(vt, {p, row});
  }
  /// cos and sin of the angle theta_t of rotary pair `pair` (the scanned
  /// angle; identity for pairs past S). Computed where q and k are rotated
  /// (once per token and pair for both) rather than tabulated during the
  /// scan, whose few threads per column would compute them serially.
  std::pair<Value, Value> pairCosSin(Value t, Value pair) {
    Value rotated = ult(pair, L.s);
    Value theta = memref::LoadOp::create(
        b, scan, ValueRange{t, minui(pair, L.s - 1)});
    auto [cs, sn] = cosSin(theta);
    return {select(rotated, cs, f32(1.0)), select(rotated, sn, f32(0.0))};
  }
  /// The token of a row of the chunk (row t * R + r).
  Value tokenOf(Value row) { return M.R == 1 ? row : divui(row, M.R); }
  Value rankOf(Value row) { return M.R == 1 ? idx(0) : remui(row, M.R); }
  void rotateChunk(Value chunkStart);
  /// rotateChunk with 16-byte accesses: adjacent rotary pairs, N % 8 == 0.
  void rotateGroups(Value chunkStart);
  void scoreTiles();
  /// scoreTiles on warpgroup MMA from the swizzled q/k tiles.
  void scoreTilesWgmma();
  SmallVector<Value> outputAndState(ArrayRef<Value> state);
  /// Y^T of the chunk into ys, from H' (the state with the previous-token
  /// term folded in) and the V^T fragments.
  void outputTile(ArrayRef<Value> h, ArrayRef<SmallVector<Value>> vA);
  /// outputTile on warpgroup MMA, from the state's A fragments `hA`.
  void outputTileWgmma(ArrayRef<SmallVector<Value>> hA,
                       ArrayRef<SmallVector<Value>> vA);
  /// exp(a_end) H' + V^T diag(w_end) K.
  SmallVector<Value> stateUpdate(SmallVector<Value> h,
                                 ArrayRef<SmallVector<Value>> vA);
  void epilogue(Value chunkStart);
  /// The rotated k and the v of the chunk's last token into kPrev / vPrev
  /// (the next chunk's pending term).
  void savePreviousToken(Value chunkStart);

  /// The k and v of the token before the block's first chunk (the initial
  /// states before chunk 0) into kPrev / vPrev. The angles decide k's
  /// rotation: none in ChunkStates (phase 2 rotates the whole
  /// contribution), the angles entering the span in ChunkOutputs. `span`
  /// indexes the scratch buffers.
  void loadPreviousToken(Value span, Value firstChunk, Value chunkStart);
  /// The angles the block's first chunk starts from into thetaCarry.
  void loadStartAngles(Value span, Value firstChunk);
  /// One chunk: stage, scan, rotate, and in phases that need them the
  /// scores, the output tile and the state update; returns the state.
  /// With `stage` (prefetchesStage), the chunk's prefetched stage loads;
  /// then the result ends with the next chunk's.
  SmallVector<Value> processChunk(Value chunkStart, ValueRange state,
                                  ValueRange stage = {});
  bool computesOutput() const { return phase != ssmk::ChunkedPhase::span_states; }
  /// ChunkOutputs needs the state past its span's first chunk only.
  bool updatesState() const {
    // (0: chosen at launch, possibly more than one.)
    return phase != ssmk::ChunkedPhase::span_outputs || chunksPerBlock != 1;
  }
  /// The fp32 state fragments: (row, column) of element e of tile j.
  std::pair<Value, Value> cellOf(int64_t j, int64_t e) {
    return {accRow(muli(warp, 16), e), accCol(idx(j * 8), e)};
  }
  void writeFinalAngleKV();

  const SharedLayout &M;
  ssmk::ChunkedPhase phase;
  /// Chunks per block of the chunk-parallel phases (a span); 0 when the
  /// runtime chooses it (KernelArgs::chunksPerBlock).
  int64_t chunksPerBlock;
  int64_t ownerWarps;
  /// smemPad: bytes skipped at the start of the dynamic shared memory so
  /// that the swizzled tiles start 1024-byte aligned; smemBase: the shared
  /// address after them.
  Value smem, smemPad, smemBase, g, q;
  /// The q/k buffer of the current chunk (index), and the parity of the
  /// phase of its mbarrier that the chunk's TMA copies complete (i32).
  Value qkBuf, tmaPhase;
  /// With two q/k buffers: the current chunk's index among the block's
  /// chunks and their count, for loading the next chunk.
  Value chunkIndex, chunkCount;
  /// The chunk being built lies wholly inside the sequence (a kernel for
  /// full chunks only, LayerShape::fullChunks), so its tokens need no
  /// bounds.
  bool fullChunk = false;
  /// ldmatrix lane offsets: A operands (and k-major B pairs, transposed)
  /// take matrices (rows, columns) 0-7 x 0-7, 8-15 x 0-7, 0-7 x 8-15,
  /// 8-15 x 8-15; n-major B pairs 0-7 x 0-7, 0-7 x 8-15, 8-15 x 0-7,
  /// 8-15 x 8-15.
  LaneOffsets aLanes, nPairLanes;
  Value qs, ks, vt, sm;
  Value ys, scan, segSum, gammaS, betaS, wEnd, decay, kPrev,
      vPrev, qBiasS, kBiasS, thetaCarry;
  /// The cp.async rows of V and Z (null without staging).
  Value vRaw, zRaw;
};

} // namespace mlir::ssm::chunked

#endif // MAMBA3_CODEGEN_GPU_CHUNKEDKERNEL_H
