//===- GpuPasses.td - The GPU kernel lowering passes -------*- tablegen -*-===//
//
// The passes that take a layer from the ssm level to GPU kernels: the
// schedule (ssm-gpu-schedule, which writes #ssmk.schedule and tiles a
// chunked scan) and the kernels (ssm-to-gpu). They live with the kernel
// builders, under codegen/gpu/; passes/ holds the ssm-level transformations.
//
//===----------------------------------------------------------------------===//
#ifndef SSM_GPU_PASSES_TD
#define SSM_GPU_PASSES_TD

include "mlir/Pass/PassBase.td"

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
    Each kernel's body is one ssmk kernel op (`ssmk.token_scan`,
    `ssmk.decode_step`, `ssmk.chunked_scan`, `ssmk.chunk_boundaries`) that
    states what the kernels below compute, for ssmk-build-kernels to build.

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
                           "::mlir::nvgpu::NVGPUDialect",
                           "::mlir::ssmk::SsmkDialect"];
}

def SsmkPlanSharedMemory
    : Pass<"ssmk-plan-shared-memory", "::mlir::ModuleOp"> {
  let summary = "Choose each chunked kernel's engines, buffers and shared "
                "memory";
  let description = [{
    Writes the `plan` (#ssmk.plan) of every `ssmk.chunked_scan` that has
    none: the engines of its three matmuls (mma.sync, or warpgroup MMA for
    the scores or for all three, where the tiles allow it and the layer's
    `mma` asks for it or leaves it to the planner), its Q/K tile buffers
    (two where they cost no block per SM, or as the layer asks), whether
    the V/Z rows are staged by cp.async, and the byte offset of each
    shared-memory array (codegen/gpu/ChunkedKernelLayout.cpp). An existing
    plan is kept, so a plan written by hand or by a tuner is built as it
    stands (ssmk-build-kernels checks it against the layer).
  }];
  let dependentDialects = ["::mlir::ssmk::SsmkDialect"];
}

def SsmkBuildKernels : Pass<"ssmk-build-kernels", "::mlir::ModuleOp"> {
  let summary = "Build each kernel body that an ssmk kernel op states";
  let description = [{
    Replaces each `ssmk.token_scan`, `ssmk.decode_step`, `ssmk.chunked_scan`
    and `ssmk.chunk_boundaries` (the last op of a gpu.func that ssm-to-gpu
    made, before its gpu.return) by the kernel body it states; a
    chunked_scan with the engines, buffers and shared memory of its
    #ssmk.plan (ssmk-plan-shared-memory's), refused with the reason where
    the plan does not fit its layer or the launch's dynamic shared memory.
    Built by
    TokenScanKernel.cpp, StepKernel.cpp, the ChunkedKernel*.cpp files and
    ChunkBoundaryKernel.cpp: scalar arith / memref / scf / vector code
    with nvvm and nvgpu ops for the tensor cores, TMA and mbarriers.
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

#endif // SSM_GPU_PASSES_TD
