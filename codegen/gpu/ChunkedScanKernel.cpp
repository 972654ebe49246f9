//===- ChunkedScanKernel.cpp - The chunked tensor-core scan kernel ---------===//
//
// One block per (head, batch) walks the sequence chunk by chunk (the chunked
// form of spec/mamba3-core.md), carrying the P x N fp32 state in registers as
// mma.sync accumulator fragments. Per chunk of C tokens:
//
//   copy      the chunk's raw bf16 q, k rows into the q/k tiles: by TMA
//             (bulk tensor copies completing on an mbarrier; with two
//             buffers, started during the previous chunk) into swizzled
//             tiles, else by cp.async; its V and Z rows by cp.async where
//             the tiles fit; issued first so that their latency overlaps
//             staging and the scan
//   stage     the trapezoid weights and the angle increments
//             pi tanh(angle) dt into shared memory (in the one-pass kernel
//             from registers loaded during the previous chunk); prefix-sum
//             the decay a_t and the angles theta_t over the chunk
//             (segmented, two short chains)
//   rotate    q and k (bias, then Rot(theta_t), cos/sin on the SFU) in
//             place as bf16, and V^T where the staged V rows cannot serve
//             as it
//   scores    S = Q K^T on tensor cores, weighted by the causal 3-term
//             mask W(t, u) = exp(a_t - a_u) (gamma_u + [u < t] beta_{u+1})
//   output    Y^T = (H + beta_c v_{c-1} k_{c-1}^T) Q^T diag(exp(a_t))
//                   + V^T S^T                       (H as the A operand)
//   state     H <- exp(a_end) H' + V^T diag(w_end) K
//   (prefetch the next chunk's stage loads)
//   epilogue  skip, gate and the bf16 store of out, 16 bytes at a time
//             along P
//
// The previous-token term of the trapezoid rule that crosses the chunk
// boundary is folded into the state before the chunk (H' above), so chunks
// need nothing but H, k_{c-1} and v_{c-1} from their predecessor.
//
// The scores run on warpgroup MMA (wgmma m64nWk16, both operands read by
// the tensor cores from q and k tiles in the 128-byte-swizzled layout of
// its matrix descriptors) where N % 64 == 0, chunks are 64 rows and the
// block is whole warpgroups; where moreover the block is exactly the
// warpgroups of state rows (P % 64 == 0), SISO and N <= 128, so do the
// output and state matmuls, with the state and V^T fragments as register
// A operands (their mma.sync A layout is wgmma's) and B from the q, score
// and k tiles; everything else is m16n8k16 bf16 x bf16 -> f32
// (nvvm.mma.sync) with the state as accumulator fragments (the same
// layout as wgmma's accumulator). Their fragments
// are read from shared memory with ldmatrix (four 8x8 matrices per
// instruction; the transposed operands, K of the state update and V^T from
// the staged V rows, through its transpose, so there is no K^T or V^T
// copy); padded row strides (or the swizzle) make the eight rows of a
// matrix hit different banks. The warps that own state rows (16 rows each)
// do the output and state matmuls; all warps stage, rotate and compute the
// scores.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/GpuKernel.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "llvm/Support/MathExtras.h"

#include <numeric>
#include <utility>

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// The most dynamic shared memory one block may use on sm_90 (227 KiB).
constexpr int64_t kMaxSharedBytes = 232448;
/// Shared memory of one sm_90 SM (228 KiB) and what the driver reserves per
/// block (1 KiB): how many blocks a layout lets an SM hold.
constexpr int64_t kSharedBytesPerSm = 233472;
constexpr int64_t kReservedSharedBytesPerBlock = 1024;

int64_t blocksPerSm(int64_t sharedBytes) {
  return kSharedBytesPerSm / (sharedBytes + kReservedSharedBytesPerBlock);
}

/// Registers a thread may hold (255, allocated in units that round to 256).
constexpr int64_t kRegistersPerThread = 256;

/// Blocks of `threads` an SM holds when ptxas gives each thread the 255
/// registers the state fragments and the unrolled phases usually take.
/// (Capping them for a third block at N = 64 with .minnctapersm 3 gave 168
/// registers without spills but ran 40% slower on an H200: 837 against
/// 596 us at b=8, L=4096, H=32, P=64.)
int64_t blocksPerSmByRegisters(int64_t threads) {
  return std::max<int64_t>(1, 65536 / (threads * kRegistersPerThread));
}

/// The largest cp.async piece (16, 8 or 4 bytes) that divides a row of
/// `bytes`, or 0.
int64_t copyPieceBytes(int64_t bytes) {
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

int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/// Where each shared-memory array lives (byte offsets into the dynamic
/// shared memory) and its padded row stride in elements.
struct SharedLayout {
  /// Tokens per chunk, ranks, and rows: the chunk's C * R rank-1 terms
  /// (row t * R + r is rank r of token t; R = 1 for SISO).
  int64_t C, R, CR, Np, Pp, S;
  /// Chunks in the sequence.
  int64_t chunks;
  int64_t qkStride, tStride, ysStride;
  /// Columns of the scanned array: S angles, then the decay exponent a.
  int64_t scanCols;
  /// The scan splits the chunk into this many segments of tokens.
  static constexpr int64_t kSegments = 8;
  /// The mbarriers (one per q/k buffer) that the TMA copies of the swizzled
  /// tiles complete on.
  int64_t mbar = 0;
  int64_t qs, ks, vt, sm, ys, scan, segSum, gamma, beta,
      wEnd, decay, kPrev, vPrev, qBias, kBias, thetaCarry, total;
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

  /// With L.qkBuffers = 2 the doubled tiles are taken whatever they cost
  /// (the planner refuses a layout without TMA or past the shared memory).
  SharedLayout(const LayerShape &L, int64_t chunk, int64_t threads) {
    layOut(L, chunk, threads, 1);
    if (!swizzledQK || L.qkBuffers == 1)
      return;
    SharedLayout doubled = *this;
    doubled.layOut(L, chunk, threads, 2);
    int64_t blocks = std::min(blocksPerSm(total), blocksPerSmByRegisters(threads));
    if (L.qkBuffers == 2 ||
        (doubled.total <= kMaxSharedBytes && blocksPerSm(doubled.total) >= blocks))
      *this = doubled;
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
  void layOut(const LayerShape &L, int64_t chunk, int64_t threads,
              int64_t buffers) {
    qkBuffers = buffers;
    vzPiece = vs = zs = 0;
    vtFromRaw = false;
    vRawStride = 0;
    C = chunk;
    R = L.rank;
    CR = C * R;
    // (Unknown, 0, when L is sized at launch: the kernel computes it.)
    chunks = L.dynamicSeqLen() ? 0 : llvm::divideCeil(L.seqLen, C);
    Np = roundUp(L.n, 16);
    Pp = roundUp(L.p, 16);
    S = std::max<int64_t>(L.s, 1);
    scanCols = L.s + 1;
    // +8 bf16 (4 words) per row: rows of a fragment load start 4 banks apart.
    qkStride = Np + 8;
    tStride = CR + 8;
    // +4 f32: the (t, p) stores of an accumulator tile spread over 32 banks.
    ysStride = Pp + 4;
    int64_t at = 0;
    auto take = [&](int64_t bytes) {
      int64_t offset = at;
      at = roundUp(at + bytes, 16);
      return offset;
    };
    swizzledQK = scoresFitWgmma(L, CR, threads) && L.mma != ssmk::MmaEngines::mma_sync;
    matmulsOnWgmma =
        swizzledQK && matmulsFitWgmma(L, CR, threads) &&
        (L.mma == ssmk::MmaEngines::wgmma ||
         (L.mma == ssmk::MmaEngines::auto_ && !L.mimo && L.n <= 128));
    if (swizzledQK)
      qkStride = Np;
    if (matmulsOnWgmma)
      tStride = CR;
    tileBytes = CR * qkStride * 2;
    qs = take(qkBuffers * tileBytes);
    ks = take(qkBuffers * tileBytes);
    sm = take(CR * tStride * 2);
    // The q/k tiles are whole 1 KiB atoms, so the score tile starts aligned.
    assert((!matmulsOnWgmma || sm % kSwizzleAlign == 0) &&
           "the swizzled score tile must start 1 KiB aligned");
    // The scanned angles and decay exponents are dead
    // once the scores are weighted, before the output tile is written: they
    // share bytes with it.
    ys = scan = take(std::max(CR * ysStride, C * scanCols) * 4);
    segSum = take(scanCols * kSegments * 4);
    gamma = take(C * 4);
    beta = take(C * 4);
    // Per row (the rows of a token share their token's value).
    wEnd = take(CR * 4);
    decay = take(CR * 4);
    // Per rank.
    kPrev = take(R * Np * 4);
    qBias = take(R * Np * 4);
    kBias = take(R * Np * 4);
    vPrev = take(R * Pp * 4);
    thetaCarry = take(S * 4);
    if (swizzledQK)
      mbar = take(8 * qkBuffers);
    // V: a V^T tile, or the staged raw V (and Z) rows, with or without the
    // V^T tile. Staging may not cost a block per SM: the blocks an SM holds
    // are the fewer of what the shared memory and the registers allow.
    const int64_t vtBytes = roundUp(Pp * tStride * 2, 16);
    const int64_t piece = copyPieceBytes(L.p * 2);
    const bool rawIsVt = !L.mimo && L.p % 16 == 0;
    const int64_t rawStride = L.p + (rawIsVt ? 8 : 0);
    const int64_t vRows = roundUp(C * rawStride * 2, 16);
    const int64_t zRows = L.hasZ ? roundUp(C * L.p * 2, 16) : 0;
    const int64_t pad = swizzledQK ? kSwizzleAlign : 0;
    const int64_t plain = at + vtBytes + pad;
    const int64_t staged = at + vRows + zRows + (rawIsVt ? 0 : vtBytes) + pad;
    int64_t blocks = std::min(blocksPerSm(plain), blocksPerSmByRegisters(threads));
    if (piece && staged <= kMaxSharedBytes && blocksPerSm(staged) >= blocks) {
      vzPiece = piece;
      vtFromRaw = rawIsVt;
      vRawStride = rawStride;
      vs = take(C * rawStride * 2);
      if (L.hasZ)
        zs = take(C * L.p * 2);
    }
    if (!vtFromRaw)
      vt = take(vtBytes);
    total = at + pad;
  }
};

/// An m16n8 f32 accumulator tile: c0, c1 at (row g, cols 2q, 2q+1), c2, c3 at
/// row g + 8 (g = lane / 4, q = lane % 4).
using Acc = std::array<Value, 4>;

class ChunkedKernelBuilder : public KernelEmitter {
public:
  ChunkedKernelBuilder(ImplicitLocOpBuilder &b, const LayerShape &shape,
                       const KernelArgs &args, int64_t threads,
                       const SharedLayout &layout, ChunkedScanPhase phase,
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
  bool computesOutput() const { return phase != ChunkedScanPhase::ChunkStates; }
  /// ChunkOutputs needs the state past its span's first chunk only.
  bool updatesState() const {
    // (0: chosen at launch, possibly more than one.)
    return phase != ChunkedScanPhase::ChunkOutputs || chunksPerBlock != 1;
  }
  /// The fp32 state fragments: (row, column) of element e of tile j.
  std::pair<Value, Value> cellOf(int64_t j, int64_t e) {
    return {accRow(muli(warp, 16), e), accCol(idx(j * 8), e)};
  }
  void writeFinalAngleKV();

  const SharedLayout &M;
  ChunkedScanPhase phase;
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
    if (S > 0 && phase == ChunkedScanPhase::ChunkOutputs)
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
    if (S > 0 && phase == ChunkedScanPhase::ChunkOutputs) {
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

SmallVector<Value> ChunkedKernelBuilder::processChunk(Value chunkStart,
                                                      ValueRange state,
                                                      ValueRange stage) {
  // The previous chunk's epilogue still reads ys, ks and vt.
  gpu::BarrierOp::create(b);
  if (a.qMap && chunkIndex) {
    // The next chunk's q/k into the other buffer, while this one computes
    // (its buffer's last reader, chunk c - 1, is past the barrier above).
    Value next = addi(chunkIndex, 1);
    ifThen(ult(next, chunkCount),
           [&] { loadRawQKWithTma(addi(chunkStart, M.C), remui(next, 2)); });
  } else if (a.qMap) {
    loadRawQKWithTma(chunkStart, qkBuf);
  } else if (qkCopyBytes())
    copyRawQK(chunkStart);
  if (M.vzPiece)
    copyRawVZ(chunkStart);
  if (stage.empty())
    stageChunk(chunkStart);
  else
    storeStage(chunkStart, stage);
  if (!M.vzPiece)
    transposeV(chunkStart, /*fromRaw=*/false);
  gpu::BarrierOp::create(b);
  scanChunk();
  if ((qkCopyBytes() && !a.qMap) || M.vzPiece) {
    // This thread's copies have landed; the barrier makes all of them
    // visible.
    NVVM::CpAsyncWaitGroupOp::create(b, 0);
  }
  if (a.qMap)
    // Every thread waits for the chunk's phase of the TMA mbarrier.
    NVVM::MBarrierTryWaitParityOp::create(
        b, sharedPtr(M.mbar, muli(qkBuf, 8)), tmaPhase, i32(0x989680));
  gpu::BarrierOp::create(b);
  rotateChunk(chunkStart);
  if (M.vzPiece && !M.vtFromRaw)
    transposeV(chunkStart, /*fromRaw=*/true);
  gpu::BarrierOp::create(b);
  if (computesOutput()) {
    scoreTiles();
    // The output's warpgroup MMA reads the scores through the async proxy.
    if (M.matmulsOnWgmma)
      fenceProxyAsync();
    gpu::BarrierOp::create(b);
  }
  SmallVector<Value> next = inOwnerWarps(state, [&] {
    return outputAndState(SmallVector<Value>(state));
  });
  // The next chunk's stage loads, past this chunk's register peak; past
  // the last chunk they read clamped tokens and are not used.
  if (!stage.empty()) {
    // The next chunk may be the last, partial one.
    bool full = std::exchange(fullChunk, false);
    llvm::append_range(next, prefetchStage(addi(chunkStart, M.C)));
    fullChunk = full;
  }
  gpu::BarrierOp::create(b);
  if (computesOutput())
    epilogue(chunkStart);
  savePreviousToken(chunkStart);
  return next;
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

void ChunkedKernelBuilder::build() {
  const int64_t C = M.C, N = L.n, P = L.p, Np = M.Np;
  emitIds();
  g = divui(lane, 4);
  q = remui(lane, 4);
  Value lrow = remui(lane, 8), mat = divui(lane, 8);
  Value matLow = muli(remui(mat, 2), 8), matHigh = muli(divui(mat, 2), 8);
  aLanes = {addi(lrow, matLow), matHigh};
  nPairLanes = {addi(lrow, matHigh), matLow};
  auto wg = gpu::AddressSpaceAttr::get(b.getContext(),
                                       gpu::AddressSpace::Workgroup);
  smem = gpu::DynamicSharedMemoryOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                         MemRefLayoutAttrInterface(), wg));
  Type elem16 = elt(), f32t = b.getF32Type();
  const int64_t CR = M.CR, R = M.R;
  qkBuf = idx(0);
  if (M.swizzledQK) {
    Value address = memref::ExtractAlignedPointerAsIndexOp::create(b, smem);
    const int64_t align = SharedLayout::kSwizzleAlign;
    smemPad = remui(arith::SubIOp::create(b, idx(align), remui(address, align)),
                    align);
    smemBase = addi(address, smemPad);
    qs = view(M.qs, {M.qkBuffers, M.Np / 64, CR, 64}, elem16);
    ks = view(M.ks, {M.qkBuffers, M.Np / 64, CR, 64}, elem16);
  } else {
    smemPad = idx(0);
    qs = view(M.qs, {CR, M.qkStride}, elem16);
    ks = view(M.ks, {CR, M.qkStride}, elem16);
  }
  if (!M.vtFromRaw)
    vt = view(M.vt, {M.Pp, M.tStride}, elem16);
  sm = view(M.sm, {CR, M.tStride}, elem16);
  ys = view(M.ys, {CR, M.ysStride}, f32t);
  scan = view(M.scan, {C, M.scanCols}, f32t);
  segSum = view(M.segSum, {M.scanCols, SharedLayout::kSegments}, f32t);
  qBiasS = view(M.qBias, {R, Np}, f32t);
  kBiasS = view(M.kBias, {R, Np}, f32t);
  gammaS = view(M.gamma, {C}, f32t);
  betaS = view(M.beta, {C}, f32t);
  wEnd = view(M.wEnd, {CR}, f32t);
  decay = view(M.decay, {CR}, f32t);
  kPrev = view(M.kPrev, {R, Np}, f32t);
  vPrev = view(M.vPrev, {R, M.Pp}, f32t);
  thetaCarry = view(M.thetaCarry, {M.S}, f32t);
  if (M.vzPiece) {
    vRaw = view(M.vs, {C, M.vRawStride}, elem16);
    if (L.hasZ)
      zRaw = view(M.zs, {C, P}, elem16);
  }

  if (a.qMap) {
    // One arrival (thread 0's expect-tx) per phase; the TMA copies complete
    // the transaction bytes.
    ifThen(eq(tid, 0), [&] {
      for (int64_t buffer = 0; buffer < M.qkBuffers; ++buffer)
        NVVM::MBarrierInitOp::create(b, sharedPtr(M.mbar + 8 * buffer), i32(1),
                                     Value());
      NVVM::FenceMbarrierInitOp::create(b);
    });
    gpu::BarrierOp::create(b);
  }

  Value zero = idx(0);
  bool sequential = phase == ChunkedScanPhase::Sequential;
  // The block walks chunks [firstChunk, endChunk): all of them in the
  // one-pass kernel (ceil(length / C) for a varlen sequence), span z of
  // chunksPerBlock chunks in the chunk-parallel phases.
  Value span = zero, firstChunk = zero, endChunk;
  Value chunks = idx(M.chunks);
  if (L.lengthAtLaunch()) {
    chunks = L.fullChunks ? divui(seqLength, C)
                          : divui(addi(seqLength, C - 1), C);
    // The runtime launches lengths of one token or more (the launch-shape
    // check), so the block has a chunk; saying so lets LLVM drop the chunk
    // loop's zero-trip guard, whose merge of the carried state with its
    // initial value cost ptxas up to 400 bytes of spills (b=8 layers, the
    // length at launch: N = 256 352 -> 180, MIMO R = 4 496 -> 132). A
    // varlen sequence may be empty.
    if (!L.varlen)
      chunks = arith::MaxUIOp::create(b, chunks, idx(1));
  }
  if (sequential) {
    endChunk = chunks;
  } else {
    Value perBlock =
        a.chunksPerBlock ? a.chunksPerBlock : idx(chunksPerBlock);
    span = gpu::BlockIdOp::create(b, gpu::Dimension::z);
    firstChunk = muli(span, perBlock);
    endChunk = arith::MinUIOp::create(b, addi(firstChunk, perBlock), chunks);
    // The grid has ceil(chunks / perBlock) spans, so a span has a chunk:
    // the same guard, for the launch-time spans.
    if (L.lengthAtLaunch())
      endChunk = arith::MaxUIOp::create(b, endChunk, addi(firstChunk, 1));
  }
  Value firstStart = muli(firstChunk, C);
  loadStartAngles(span, firstChunk);
  loadPreviousToken(span, firstChunk, firstStart);
  // The per-head (and rank) biases, read by every token (zero in the
  // padding).
  strided(R * Np, [&](Value i) {
    Value r = divui(i, Np), n = remui(i, Np);
    Value in = ult(n, N), nc = minui(n, N - 1);
    store(select(in, load(a.QBias, biasIndex(r, nc)), f32(0.0)), qBiasS, {r, n});
    store(select(in, load(a.KBias, biasIndex(r, nc)), f32(0.0)), kBiasS, {r, n});
  });

  // State fragments: tile j holds rows p0 + g (+8), columns 8j + 2q (+1).
  // ChunkStates starts from zero; the others from the initial state or
  // the state entering the span.
  SmallVector<Value> init;
  for (int64_t j = 0; j < Np / 8; ++j)
    for (int64_t e = 0; e < 4; ++e) {
      auto [p, n] = cellOf(j, e);
      Value in = andi(ult(p, P), ult(n, N));
      Value pc = minui(p, P - 1), nc = minui(n, N - 1);
      Value h = f32(0.0);
      if (phase == ChunkedScanPhase::ChunkOutputs)
        h = select(in, load(a.chunkStates, {bIdx, hIdx, span, pc, nc}), h);
      else if (sequential && L.hasInit)
        h = select(in, load(a.ssm0, {bIdx, hIdx, pc, nc}), h);
      init.push_back(h);
    }
  const size_t stateValues = init.size();
  // ChunkStates carries the product of its chunks' decays exp(a_end).
  const bool carriesDecay = phase == ChunkedScanPhase::ChunkStates;
  if (carriesDecay)
    init.push_back(f32(1.0));
  const size_t carriedValues = init.size();

  // With two q/k buffers, the first chunk's copies start before the loop
  // and each chunk starts the next one's.
  const bool prefetch = a.qMap && M.qkBuffers == 2;
  if (prefetch)
    loadRawQKWithTma(firstStart, zero);
  if (prefetchesStage())
    llvm::append_range(init, prefetchStage(firstStart));
  // The chunks [from, to) as one loop from `carriedInit`.
  auto chunkLoop = [&](Value from, Value to, ValueRange carriedInit) {
    auto loop = scf::ForOp::create(b, from, to, idx(1), carriedInit);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value c = loop.getInductionVar();
    Value chunkStart = muli(c, C);
    // The block's i-th chunk uses buffer i % 2 for the (i / 2)-th time with
    // two buffers, buffer 0 for the i-th time with one; phases alternate
    // per use.
    Value local = arith::SubIOp::create(b, c, firstChunk);
    Value use = local;
    qkBuf = zero;
    if (prefetch) {
      qkBuf = remui(local, 2);
      use = divui(local, 2);
      chunkIndex = local;
      chunkCount = arith::SubIOp::create(b, endChunk, firstChunk);
    }
    tmaPhase = arith::IndexCastOp::create(b, b.getI32Type(), remui(use, 2));
    ValueRange carried = loop.getRegionIterArgs();
    SmallVector<Value> next =
        processChunk(chunkStart, carried.take_front(stateValues),
                     carried.drop_front(carriedValues));
    if (carriesDecay) {
      // decay still holds this chunk's exp(a_t) (the next chunk's scan is
      // past its first barrier).
      Value chunkDecay =
          memref::LoadOp::create(b, decay, ValueRange{idx(M.CR - 1)});
      next.insert(next.begin() + stateValues,
                  mul(carried[stateValues], chunkDecay));
    }
    scf::YieldOp::create(b, next);
    return loop;
  };
  // One loop: a kernel for full chunks drops the per-token bounds in all
  // of it, and the runtime picks it where the length allows. (Two loops in
  // one kernel made ptxas spill more at b=8, length at launch: the full
  // chunks then the partial last one, MIMO R = 4 824 bytes against 132;
  // both under a branch on the length, N = 256 436 against 180.)
  fullChunk = L.fullChunks;
  scf::ForOp loop = chunkLoop(firstChunk, endChunk, init);
  fullChunk = false;

  gpu::BarrierOp::create(b);
  ValueRange finalState = loop.getResults();
  if (phase == ChunkedScanPhase::ChunkStates) {
    // The span's contribution, its decay and its angle increment (the
    // carried angles after the rotation: counted from zero, or from the
    // initial angles for span 0).
    for (int64_t j = 0; j < Np / 8; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        auto [p, n] = cellOf(j, e);
        ifThen(andi(ult(p, P), ult(n, N)), [&] {
          store(finalState[4 * j + e], a.chunkStates, {bIdx, hIdx, span, p, n});
        });
      }
    ifThen(eq(tid, 0), [&] {
      store(finalState[stateValues], a.chunkDecay, {bIdx, hIdx, span});
    });
    if (L.s > 0)
      strided(L.s, [&](Value s) {
        store(memref::LoadOp::create(b, thetaCarry, ValueRange{s}),
              a.chunkAngleEnd, {bIdx, hIdx, span, s});
      });
    gpu::ReturnOp::create(b);
    return;
  }
  if (phase == ChunkedScanPhase::ChunkOutputs) {
    // The last span's block writes the final angle, k and v states (phase 2
    // wrote the final ssm state).
    ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, endChunk,
                                 chunks),
           [&] { writeFinalAngleKV(); });
    gpu::ReturnOp::create(b);
    return;
  }
  // Final states: ssm from the fragments, angle, k and v from shared memory.
  for (int64_t j = 0; a.ssm && j < Np / 8; ++j)
    for (int64_t e = 0; e < 4; ++e) {
      auto [p, n] = cellOf(j, e);
      ifThen(andi(ult(p, P), ult(n, N)),
             [&] { store(finalState[4 * j + e], a.ssm, {bIdx, hIdx, p, n}); });
    }
  writeFinalAngleKV();
  gpu::ReturnOp::create(b);
}

} // namespace

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

void mlir::ssm::buildChunkedScanKernel(gpu::GPUFuncOp kernel,
                                       const LayerShape &shape,
                                       const KernelArgs &args, int64_t threads,
                                       int64_t tokensPerChunk,
                                       ChunkedScanPhase phase,
                                       int64_t chunksPerBlock) {
  SharedLayout layout(shape, tokensPerChunk, threads);
  ImplicitLocOpBuilder b(kernel.getLoc(), kernel.getContext());
  // After the views of dynamic-shape arguments ssm-to-gpu put there.
  b.setInsertionPointToEnd(&kernel.getBody().front());
  ChunkedKernelBuilder(b, shape, args, threads, layout, phase, chunksPerBlock)
      .build();
}

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
