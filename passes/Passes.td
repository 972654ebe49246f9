//===- Passes.td - ssm passes ------------------------------*- tablegen -*-===//
#ifndef SSM_PASSES_TD
#define SSM_PASSES_TD

include "mlir/Pass/PassBase.td"

def SsmSplitSequences : Pass<"ssm-split-sequences"> {
  let summary = "Turn a packed variable-length scan into a loop of scans";
  let description = [{
    Rewrites every ssm.scan with `cu_seqlens` into an scf.for over the
    sequences. Each trip reads the sequence's token range from cu_seqlens,
    slices it out of the packed operands (a dynamic L) together with the
    sequence's initial states, runs a batch-1 ssm.scan without cu_seqlens,
    and inserts its out and final states into the loop-carried packed
    results. Later passes see only ordinary scans.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def SsmDecompose : Pass<"ssm-decompose"> {
  let summary = "Split ssm.scan / ssm.step into discretize, rotary, recurrence and the epilogue";
  let description = [{
    Rewrites every model-level op into the ops that each name one ingredient
    of the layer: `ssm.discretize` (the rule), `ssm.rotary` (cumulative angles
    and rotation), `ssm.recurrence` (the state update on f32 data), and linalg
    ops for the rest: conversion of bf16/f16 data to f32, the MIMO V
    up-projection, zero initial states when none are given, the skip (D), the
    gate (silu(Z), MIMO Z up-projection), the MIMO O down-projection, and the
    final k/v states. A step becomes a one-token scan.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmExpandDiscretization : Pass<"ssm-expand-discretization"> {
  let summary = "Turn the discretization rule into explicit per-token coefficients";
  let description = [{
    Lowers `ssm.discretize` to one elementwise linalg.generic that produces
    log(alpha) = ADT, beta/alpha = (1 - lambda) DT and gamma = lambda DT, with
    lambda = sigmoid(Trap) (trapezoid) or 1 (euler: beta = 0).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmExpandRotary : Pass<"ssm-expand-rotary"> {
  let summary = "Cumulative rotary angles and the rotation of biased q/k";
  let description = [{
    Lowers `ssm.rotary` to an scf.for over the sequence that accumulates
    theta_t = theta_{t-1} + pi tanh(Angles_t) DT_t (wrapped into [0, 2 pi)
    when asked), and a linalg.generic that adds the bias, broadcasts groups to
    heads and rotates adjacent or half-split pairs.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmMimoToMatmul : Pass<"ssm-mimo-to-matmul"> {
  let summary = "Make the R rank-1 terms of a token rows of the term axis";
  let description = [{
    Rewrites an `ssm.recurrence` with rank R > 1 into one with R = 1 and
    terms_per_token = R by folding the rank axis into the term axis. A chunk
    of C tokens then holds C*R terms, and ssm-chunk computes the state update
    as one (P x C*R) . (C*R x N) product and the intra-chunk part as a
    (C*R x C*R) masked product whose weights are constant on R x R blocks.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def SsmTileSequence : Pass<"ssm-tile-sequence"> {
  let summary = "Tile a scan's sequence into a loop over chunks of scans";
  let description = [{
    Rewrites each `ssm.scan` (not varlen: run ssm-split-sequences first)
    into an scf.for over chunk starts c = 0, C, 2C, ... of its sequence that
    carries out and the angle, ssm, k and v states: each iteration slices
    tokens [c, c + min(C, L - c)) out of Q, K, V, ADT, DT, Trap, Angles and
    Z, runs an `ssm.scan` of the chunk from the carried states (zeros for a
    scan without initial states), inserts its out and carries its final
    states. The ssm state is carried in f32 (a bf16 state type is widened
    before the loop and narrowed after it with linalg.copy). This is the
    chunked IR that both targets start from: the CPU path expands each
    chunk's scan, the GPU path lowers the loop onto its kernels
    (`ssm-gpu-schedule` tiles with the kernel's chunk size).
  }];
  let options = [
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "tokens per chunk (positive)">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def SsmChunk : Pass<"ssm-chunk"> {
  let summary = "Rewrite the recurrence into the chunked (matmul) form";
  let description = [{
    Lowers `ssm.recurrence` to an scf.for over chunks of `chunk-size` tokens
    (the last chunk may be shorter; the sequence length may be dynamic). Per
    chunk: cumulative log decays, the pending previous-token term folded into
    the entering state, the intra-chunk masked product ((q k^T) o W) v, the
    contribution of the entering state, and the chunk's state update. The
    recurrence must have R = 1 (run ssm-mimo-to-matmul first for MIMO).
  }];
  let options = [
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "tokens per chunk (1 to 1024)">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmLowerRecurrence : Pass<"ssm-lower-recurrence"> {
  let summary = "Lower the recurrence token by token (no chunking)";
  let description = [{
    Lowers `ssm.recurrence` to an scf.for over tokens carrying the P x N
    state: the definition of the recurrence, used as the unchunked path and
    to check the chunked one.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmGpuSchedule : Pass<"ssm-gpu-schedule", "::mlir::ModuleOp"> {
  let summary = "Choose each layer's GPU schedule and tile chunked scans";
  let description = [{
    Decides, for every `ssm.scan` / `ssm.step`, which kernel `ssm-to-gpu`
    builds, and puts the decision in the IR:

    - chunked or chunk-parallel (bf16 prefill where the chunked tensor-core
      kernel applies): the scan is tiled as `ssm-tile-sequence` does, with
      the kernel's chunk (`chunk-size` rank-1 terms, chunk-size / R tokens;
      chosen by the compiler when 0), and the chunk loop carries its
      `ssmk.schedule = #ssmk.schedule<kind = chunked | chunk_parallel,
      chunk = tokens, ...>` (chunks per block, full chunks, engines and
      buffers as asked). A varlen scan stays whole (its chunk boundaries are
      data) and carries `#ssmk.schedule<kind = chunked, chunk = tokens>`.
    - tokens: the op carries `#ssmk.schedule<kind = tokens>` (with
      `block_size` when `block-size` asks for one).

    `schedule=auto` picks chunked where it applies (chunk-parallel when
    batch * heads is below `sm-count` and the chunks spread over at least
    three spans), tokens elsewhere. Shapes must be static (kernels are
    compiled for one shape) and no tensor may be empty.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"0",
           "threads per block of the tokens schedule (a multiple of 32, 32 "
           "to 1024); 0 picks the fewest warps (at least 4) that keep each "
           "thread's share of the P x N state at 32 registers or less (16 for "
           "a decode step). The "
           "chunked schedule's block size follows P">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"auto\"",
           "auto | chunked | chunk-parallel | tokens">,
    Option<"smCount", "sm-count", "int64_t", /*default=*/"132",
           "streaming multiprocessors of the target (132 on the H100 SXM): "
           "auto takes chunk-parallel when batch * heads is below it">,
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"0",
           "rank-1 terms (tokens x ranks) per chunk of the chunked "
           "schedules (a multiple of 16, 16 to 128); 0 lets the compiler "
           "choose: 64, or 32 where that lets an SM hold more blocks">,
    Option<"chunksPerBlock", "chunks-per-block", "int64_t", /*default=*/"0",
           "chunk-parallel: consecutive chunks that each block of phases 1 "
           "and 3 walks (as the one-pass kernel does, from the state and "
           "angles entering its first chunk); 0 lets the compiler spread "
           "the chunks over the blocks that sm-count SMs hold at once">,
    Option<"fullChunks", "full-chunks", "bool", /*default=*/"false",
           "a length sized at launch (not varlen) that is a whole number of "
           "chunks: the chunk loop's schedule has full_chunks and its kernels "
           "read every token of a chunk without bounds checks. The runtime "
           "runs such a variant only for lengths it divides (the manifest's "
           "seqlen_multiple)">,
    Option<"mma", "mma", "std::string", /*default=*/"\"auto\"",
           "the chunked kernel's matmul engines: auto (its planner's "
           "choice) | mma.sync (all three matmuls; no swizzled tiles, no "
           "TMA) | wgmma-scores (the scores on warpgroup MMA, the output and "
           "state matmuls on mma.sync) | wgmma (all three on warpgroup MMA). "
           "Refused, naming the limit, where the tiles do not allow it">,
    Option<"qkBuffers", "qk-buffers", "int64_t", /*default=*/"0",
           "Q/K tile buffers of the chunked kernel: 2 loads the next "
           "chunk's tiles by TMA while one computes, 1 does not; 0 lets the "
           "planner choose (2 where that costs no block per SM)">
  ];
  let dependentDialects = ["::mlir::ssmk::SsmkDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def SsmToGpu : Pass<"ssm-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Generate the GPU kernels of each scheduled layer";
  let description = [{
    Replaces every function that holds one layer scheduled by
    `ssm-gpu-schedule` (a chunk loop of scans, or an ssm.scan / ssm.step
    marked with `ssmk.schedule`) by `gpu.func` kernels in
    `gpu.module @mamba3_kernels` named after it. A kernel takes one memref
    per operand and result of the layer (operands first, in op order, then
    out, angle, ssm, k, v; for a chunk loop the whole-sequence tensors its
    chunks slice, the states it starts from, and its results), all with
    static shapes. A chunk loop becomes the chunked kernel (its step is the
    kernel's chunk; the loop the blocks' chunk loop, its scan the per-chunk
    phases) or, marked chunk-parallel, the three chunk-parallel kernels.
    The tokens and chunked schedules run one block per (head, batch), grid
    (H, b), and keep the P x N fp32 state in registers. The kernel carries `ssm.schedule`,
    `ssm.dynamic_shared_bytes` (and `ssm.chunk_size`) for the bundle writer.

    chunked (ChunkedScanKernel.cpp): the chunked form of the
    spec. Per chunk the block stages the chunk in
    shared memory, scans the decay and the rotary angles, rotates q/k to
    bf16, and runs the three matmuls on tensor cores (bf16 in, f32
    accumulate): the masked scores Q K^T o W, the output
    Y^T = H' Q^T diag(exp a) + V^T S^T with the state fragments as the A
    operand, and the state update H <- exp(a_end) H' + V^T diag(w) K
    (nvvm.mma.sync m16n8k16 with ldmatrix fragments). Where N % 64 == 0,
    chunks are 64 rows and the block is whole warpgroups, q and k arrive
    by TMA (nvvm.cp.async.bulk.tensor on an mbarrier; the kernel then takes
    two tensor-map arguments marked `ssm.tensor_map` after the others) in
    the 128-byte-swizzled layout, and the scores run on warpgroup MMA
    (nvvm.wgmma.mma_async). One warp per 16 state rows (at least 4 warps);
    shared memory is dynamic. Applies to bf16 prefill with N <= 256, P <= 256, rank <= 8;
    for MIMO a chunk of C tokens has C * R rank-1 terms, row t * R + r
    holding rank r of token t, with the block-structured weights
    W((t, r), (u, r')) = w(t, u).

    tokens (TokenScanKernel.cpp): the token-sequential kernel. Warp w owns
    state rows p = w + W i, lane l owns columns n = l + 32 j. Per token the
    block rotates q/k into shared memory, stages v, updates its state
    elements with the discretized 3-term rule, and reduces y = H q across
    each warp with shuffles; lane 0 applies skip, gate and the MIMO
    down-projection. It covers every layer (decode steps, MIMO, fp32 data).

    chunk-parallel: the same chunk computation in three launches
    (kernels `<name>_chunk_states`, `<name>_chunk_boundaries`,
    `<name>_chunk_outputs`, ordered by `ssm.launch_index`). The sequence is
    cut into spans of `ssm.chunks_per_block` consecutive chunks, one block
    per (head, batch, span): phase 1 walks its span from a zero state and writes the span's state
    contribution, decay and angle increment; a pass over the span
    boundaries (ChunkBoundaryKernel.cpp) rotates the contributions by the
    angles entering each span and chains the states; phase 3 walks its span
    again from those states and writes the outputs. The kernels share four
    scratch buffers, extra arguments after the op's, marked `ssm.scratch`
    with their role. It fills the GPU when batch * heads is small.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::nvgpu::NVGPUDialect"];
}

#endif // SSM_PASSES_TD
