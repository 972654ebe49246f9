//===- ChunkBoundaryKernel.cpp - Phase 2 of the chunk-parallel schedule ----===//
//
// The chunk-parallel schedule splits the chunked form of spec/mamba3-core.md
// into three launches over spans of consecutive chunks: per-span state
// contributions (phase 1), this short sequential pass over the span
// boundaries (phase 2), and per-span outputs (phase 3). Phase 1 computes span
// c's contribution X_c from a zero state with angles counted from the span's
// start (from the initial angles for span 0), so X_c must still be rotated by
// the angles theta_c entering the span: a contribution v (Rot(theta_c + phi)
// k)^T is X_c's v (Rot(phi) k)^T with each state row rotated by theta_c, pair
// by pair. Then
//
//   H_0 = initial ssm state,   theta_0 = initial angles,
//   H_{c+1} = exp(a_end,c) H_c + Rot_rows(theta_c) X_c   (no rotation, c = 0)
//   theta_{c+1} = theta_c + phi_end,c                     (phi_end,0 itself)
//
// with exp(a_end,c) the product of the span's chunk decays. Each thread owns
// one rotary pair (n0, n1) of one state row p and walks the spans,
// overwriting X_c with H_c (what phase 3 starts span c from); the threads of
// row 0 write theta_c, and every thread writes its part of the final ssm
// state. The loads of a group of spans are issued before the dependent
// updates so that they are in flight together.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/GpuKernel.h"

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// Spans whose loads one thread issues together.
constexpr int64_t kSpansInFlight = 8;

class ChunkBoundaryBuilder : public KernelEmitter {
public:
  ChunkBoundaryBuilder(ImplicitLocOpBuilder &b, const LayerShape &shape,
                       const KernelArgs &args, int64_t threads, int64_t spans)
      : KernelEmitter(b, shape, args, threads), spans(spans) {}

  void build();

private:
  int64_t spans;
};

int64_t pairsOf(const LayerShape &shape) { return (shape.n + 1) / 2; }

void ChunkBoundaryBuilder::build() {
  const int64_t N = L.n, P = L.p, S = L.s, pairs = pairsOf(L);
  emitIds();
  Value block = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value flat = addi(muli(block, threads), tid);
  ifThen(ult(flat, P * pairs), [&] {
    Value p = divui(flat, pairs), pair = remui(flat, pairs);
    Value n0, n1;
    std::tie(n0, n1) = pairEntries(pair);
    Value has1 = ult(n1, N), n1c = minui(n1, N - 1);
    Value rotated = S > 0 ? ult(pair, S) : Value();
    Value s = S > 0 ? minui(pair, S - 1) : Value();
    Value writesAngle = S > 0 ? andi(rotated, eq(p, 0)) : Value();

    Value zero = f32(0.0);
    Value h0 = zero, h1 = zero, theta = zero;
    if (L.hasInit) {
      h0 = load(a.ssm0, {bIdx, hIdx, p, n0});
      h1 = select(has1, load(a.ssm0, {bIdx, hIdx, p, n1c}), zero);
      if (S > 0)
        theta = load(a.angle0, {bIdx, hIdx, s});
    }

    // Spans counted at launch (a.spans) take whole groups of loads.
    int64_t group = a.spans ? kSpansInFlight : std::min(kSpansInFlight, spans);
    Value spanCount = a.spans ? a.spans : idx(spans);
    Value groups = a.spans ? divui(addi(spanCount, group - 1), group)
                           : idx(llvm::divideCeil(spans, group));
    Value lastSpan = arith::SubIOp::create(b, spanCount, idx(1));
    auto loop = scf::ForOp::create(b, idx(0), groups, idx(1),
                                   ValueRange{h0, h1, theta});
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      Value first = muli(loop.getInductionVar(), group);
      Value c0 = loop.getRegionIterArgs()[0], c1 = loop.getRegionIterArgs()[1],
            th = loop.getRegionIterArgs()[2];
      struct SpanLoads {
        Value span, clamped, valid, x0, x1, decay, phi;
      };
      SmallVector<SpanLoads> loads;
      for (int64_t u = 0; u < group; ++u) {
        SpanLoads l;
        l.span = addi(first, u);
        l.clamped = arith::MinUIOp::create(b, l.span, lastSpan);
        l.valid = ult(l.span, spanCount);
        l.x0 = load(a.chunkStates, {bIdx, hIdx, l.clamped, p, n0});
        l.x1 = select(has1, load(a.chunkStates, {bIdx, hIdx, l.clamped, p, n1c}),
                      zero);
        l.decay = load(a.chunkDecay, {bIdx, hIdx, l.clamped});
        l.phi = S > 0 ? load(a.chunkAngleEnd, {bIdx, hIdx, l.clamped, s}) : zero;
        loads.push_back(l);
      }
      for (const SpanLoads &l : loads) {
        // H_c and theta_c: the state and angles entering span c.
        Value hIn0 = c0, hIn1 = c1, thIn = th;
        ifThen(l.valid, [&] {
          store(hIn0, a.chunkStates, {bIdx, hIdx, l.span, p, n0});
          ifThen(has1, [&] {
            store(hIn1, a.chunkStates, {bIdx, hIdx, l.span, p, n1c});
          });
          if (S > 0)
            ifThen(writesAngle, [&] {
              store(thIn, a.chunkAngleStart, {bIdx, hIdx, l.span, s});
            });
        });
        Value notFirst = ult(idx(0), l.span);
        Value x0 = l.x0, x1 = l.x1;
        if (S > 0) {
          // Span 0's angles already started from theta_0.
          Value angle = select(andi(rotated, notFirst), th, zero);
          auto [cs, sn] = cosSin(angle);
          rotatePair(x0, x1, cs, sn);
        }
        Value next0 = add(mul(l.decay, c0), x0);
        Value next1 = add(mul(l.decay, c1), x1);
        Value nextTh = select(notFirst, add(th, l.phi), l.phi);
        if (L.wrap)
          nextTh = wrapAngle(nextTh);
        c0 = select(l.valid, next0, c0);
        c1 = select(l.valid, next1, c1);
        th = select(l.valid, nextTh, th);
      }
      scf::YieldOp::create(b, ValueRange{c0, c1, th});
    }
    // The final ssm state, where the layer's is used.
    if (!a.ssm)
      return;
    store(loop.getResult(0), a.ssm, {bIdx, hIdx, p, n0});
    ifThen(has1, [&] { store(loop.getResult(1), a.ssm, {bIdx, hIdx, p, n1c}); });
  });
  gpu::ReturnOp::create(b);
}

} // namespace

int64_t mlir::ssm::chunkBoundaryBlocks(const LayerShape &shape,
                                       int64_t threads) {
  return llvm::divideCeil(shape.p * pairsOf(shape), threads);
}

void mlir::ssm::buildChunkBoundaryKernel(gpu::GPUFuncOp kernel,
                                         const LayerShape &shape,
                                         const KernelArgs &args,
                                         int64_t threads, int64_t spans) {
  ImplicitLocOpBuilder b(kernel.getLoc(), kernel.getContext());
  // After the views of dynamic-shape arguments ssm-to-gpu put there.
  b.setInsertionPointToEnd(&kernel.getBody().front());
  ChunkBoundaryBuilder(b, shape, args, threads, spans).build();
}
