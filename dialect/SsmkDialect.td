//===- SsmkDialect.td - The kernel-level ssmk dialect ------*- tablegen -*-===//
//
// `ssmk` is the level of one GPU kernel, between the tensor-level `ssm` ops
// and NVGPU/NVVM: the kernel schedule of a layer (the choices
// ssm-gpu-schedule makes, one typed attribute with a verifier), the layer
// as a kernel sees it (#ssmk.layer), the chunked kernel's plan
// (#ssmk.plan), and one op per kernel body that ssm-to-gpu emits and
// ssmk-build-kernels builds.
//
//===----------------------------------------------------------------------===//
#ifndef SSMK_DIALECT_TD
#define SSMK_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Ssmk_Dialect : Dialect {
  let name = "ssmk";
  let cppNamespace = "::mlir::ssmk";
  let summary = "Mamba-3 GPU kernels: schedules, tiles and phases";
  let description = [{
    The kernel level of the Mamba-3 compiler. `#ssmk.schedule` states which
    kernel a layer gets and how it is built: ssm-gpu-schedule writes it (as
    the discardable attribute `ssmk.schedule`) on the chunk loop of a
    chunked scan, or on an `ssm.scan` / `ssm.step` that stays whole, and
    ssm-to-gpu reads it. The dialect verifies that the attribute is a
    schedule and sits on one of those ops.

    ssm-to-gpu then ends each gpu.func it makes with one kernel op,
    `ssmk.token_scan`, `ssmk.decode_step`, `ssmk.chunked_scan` or
    `ssmk.chunk_boundaries`, that
    states the kernel: its buffers by role, the layer (`#ssmk.layer`), the
    block size and the chunk, phase or span it is built for;
    ssmk-plan-shared-memory gives each chunked_scan its `#ssmk.plan`
    (matmul engines, Q/K buffers, V/Z staging, shared-memory offsets), and
    ssmk-build-kernels replaces each op by its body.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
}

def Ssmk_ScheduleKind : I32EnumAttr<"ScheduleKind",
    "the kernel a layer gets", [
      // The token-sequential kernel: one block per (head, batch) walks the
      // tokens with the state in registers (decode steps, fp32 data, shapes
      // past the chunked kernel's limits).
      I32EnumAttrCase<"tokens", 0>,
      // The chunked tensor-core kernel in one pass over the chunks of each
      // (head, batch).
      I32EnumAttrCase<"chunked", 1>,
      // The same in three launches: chunk states, the boundary pass, the
      // outputs; blocks per span of consecutive chunks.
      I32EnumAttrCase<"chunk_parallel", 2>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::ssmk";
}

def Ssmk_MmaEngines : I32EnumAttr<"MmaEngines",
    "the engines of the chunked kernel's three matmuls", [
      // The planner's choice from the tiles (codegen/gpu/ChunkedScanKernel.cpp).
      I32EnumAttrCase<"auto_", 0, "auto">,
      // All three on mma.sync; the q/k tiles by cp.async, unswizzled.
      I32EnumAttrCase<"mma_sync", 1, "mma_sync">,
      // The scores on warpgroup MMA, the output and state matmuls on
      // mma.sync.
      I32EnumAttrCase<"wgmma_scores", 2, "wgmma_scores">,
      // All three on warpgroup MMA.
      I32EnumAttrCase<"wgmma", 3, "wgmma">
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::ssmk";
}

def Ssmk_ScheduleAttr : AttrDef<Ssmk_Dialect, "Schedule"> {
  let mnemonic = "schedule";
  let summary = "the kernel schedule of one layer";
  let description = [{
    - `kind`: tokens | chunked | chunk_parallel.
    - `chunk`: tokens per chunk of the chunked kinds (the chunk loop's step;
      a varlen scan's chunk, since its loop is in the data); 0 for tokens.
    - `chunks_per_block`: chunk_parallel only: consecutive chunks each block
      of the first and third launch walks (0: chosen at launch).
    - `block_size`: tokens only: threads per block (0: by shape).
    - `full_chunks`: the chunked kinds over a length sized at launch: every
      chunk is whole, so the kernels read tokens without bounds checks (the
      runtime runs them only at lengths the chunk divides).
    - `mma`, `qk_buffers`: the chunked kinds: the matmul engines and the
      Q/K tile buffers asked for (auto / 0: the planner's choice).

    Parameters at their defaults are not printed:
    `#ssmk.schedule<kind = chunked, chunk = 64>`,
    `#ssmk.schedule<kind = chunk_parallel, chunk = 32, chunks_per_block = 2,
    mma = mma_sync, qk_buffers = 1>`, `#ssmk.schedule<kind = tokens,
    block_size = 256>`.
  }];
  let parameters = (ins
    EnumParameter<Ssmk_ScheduleKind>:$kind,
    DefaultValuedParameter<"int64_t", "0">:$chunk,
    DefaultValuedParameter<"int64_t", "0">:$chunks_per_block,
    DefaultValuedParameter<"int64_t", "0">:$block_size,
    DefaultValuedParameter<"bool", "false">:$full_chunks,
    DefaultValuedParameter<"::mlir::ssmk::MmaEngines",
                           "::mlir::ssmk::MmaEngines::auto_">:$mma,
    DefaultValuedParameter<"int64_t", "0">:$qk_buffers
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isChunked() const {
      return getKind() != ::mlir::ssmk::ScheduleKind::tokens;
    }
  }];
}

//===----------------------------------------------------------------------===//
// The kernels
//===----------------------------------------------------------------------===//

def Ssmk_LayerAttr : AttrDef<Ssmk_Dialect, "Layer"> {
  let mnemonic = "layer";
  let summary = "the static facts of the layer a kernel computes";
  let description = [{
    What the kernel builders read of a layer (codegen/gpu/GpuKernel.h's
    LayerShape): its sizes (`batch` and `seq_len` 0 when sized at launch),
    the element type of Q, K and V, and its flags. The flags default to
    false and are printed only when set:
    `#ssmk.layer<batch = 0, seq_len = 0, heads = 32, groups = 1, state = 128,
    head_dim = 64, angles = 32, rank = 1, data_type = bf16, has_d, ...>`
    reads as a dynamic-shape SISO layer.
  }];
  let parameters = (ins
    "int64_t":$batch, "int64_t":$seq_len, "int64_t":$heads, "int64_t":$groups,
    "int64_t":$state, "int64_t":$head_dim, "int64_t":$angles, "int64_t":$rank,
    "::mlir::Type":$data_type,
    DefaultValuedParameter<"bool", "false">:$step,
    DefaultValuedParameter<"bool", "false">:$mimo,
    DefaultValuedParameter<"bool", "false">:$has_d,
    DefaultValuedParameter<"bool", "false">:$has_z,
    DefaultValuedParameter<"bool", "false">:$has_init,
    DefaultValuedParameter<"bool", "false">:$wrap,
    DefaultValuedParameter<"bool", "false">:$euler,
    DefaultValuedParameter<"bool", "false">:$half_split,
    DefaultValuedParameter<"bool", "false">:$broadcast_angles,
    DefaultValuedParameter<"bool", "false">:$varlen,
    DefaultValuedParameter<"bool", "false">:$rms_norm,
    DefaultValuedParameter<"bool", "false">:$per_rank_outputs,
    DefaultValuedParameter<"bool", "false">:$full_chunks,
    DefaultValuedParameter<"::mlir::ssmk::MmaEngines",
                           "::mlir::ssmk::MmaEngines::auto_">:$mma,
    DefaultValuedParameter<"int64_t", "0">:$qk_buffers,
    OptionalParameter<"::mlir::FloatAttr">:$norm_eps
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Ssmk_SharedPlanAttr : AttrDef<Ssmk_Dialect, "SharedPlan"> {
  let mnemonic = "plan";
  let summary = "the chunked kernel's engines, buffers and shared memory";
  let description = [{
    The choices ssmk-plan-shared-memory makes for one `ssmk.chunked_scan`
    (codegen/gpu/ChunkedKernelLayout.cpp), which ssmk-build-kernels builds:

    - `mma`: the engines of the three matmuls, resolved (never `auto`):
      `mma_sync` (q/k tiles by cp.async, unswizzled), `wgmma_scores` (q/k
      by TMA into 128-byte-swizzled tiles, the scores on warpgroup MMA) or
      `wgmma` (all three matmuls on warpgroup MMA).
    - `qk_buffers`: q/k tiles per kind; 2 loads chunk c + 1 by TMA while
      chunk c computes.
    - `staged_vz`: the raw V (and Z) rows of a chunk arrive by cp.async in
      shared memory (`v_rows`, `z_rows`); without it V^T is written from
      global memory.
    - byte offsets into the dynamic shared memory (after the pad that
      aligns the swizzled tiles to 1 KiB) of each array, and `total`, the
      dynamic shared memory of the launch. `ys` (the output tile) also
      holds the scanned angles and decay exponents, which die before it is
      written. `mbar` (the TMA mbarriers) only with swizzled tiles, `vt`
      only where the staged V rows do not serve as V^T.

    Each array is 16-byte aligned and inside `total`; the builder checks
    that the arrays the layer needs fit where the plan puts them and do not
    overlap.
  }];
  let parameters = (ins
    EnumParameter<Ssmk_MmaEngines>:$mma,
    "int64_t":$qk_buffers,
    DefaultValuedParameter<"bool", "false">:$staged_vz,
    "int64_t":$q, "int64_t":$k, "int64_t":$scores, "int64_t":$ys,
    "int64_t":$seg_sum, "int64_t":$gamma, "int64_t":$beta, "int64_t":$w_end,
    "int64_t":$decay, "int64_t":$k_prev, "int64_t":$q_bias,
    "int64_t":$k_bias, "int64_t":$v_prev, "int64_t":$theta_carry,
    OptionalParameter<"std::optional<int64_t>">:$mbar,
    OptionalParameter<"std::optional<int64_t>">:$v_rows,
    OptionalParameter<"std::optional<int64_t>">:$z_rows,
    OptionalParameter<"std::optional<int64_t>">:$vt,
    "int64_t":$total
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Ssmk_ChunkedPhase : I32EnumAttr<"ChunkedPhase",
    "what one launch of the chunked tensor-core kernel does", [
      // The one-pass kernel: one block per (head, batch) walks every chunk.
      I32EnumAttrCase<"one_pass", 0>,
      // Chunk-parallel launch 1: each block walks a span of chunks from a
      // zero state and writes the span's state contribution, decay and
      // angle increment.
      I32EnumAttrCase<"span_states", 1>,
      // Chunk-parallel launch 3: each block walks its span from the state
      // and angles entering it and writes the outputs.
      I32EnumAttrCase<"span_outputs", 2>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::ssmk";
}
def Ssmk_ChunkedPhaseAttr : EnumAttr<Ssmk_Dialect, Ssmk_ChunkedPhase, "phase">;

class Ssmk_Op<string mnemonic, list<Trait> traits = []>
    : Op<Ssmk_Dialect, mnemonic, traits>;

// The buffers and values a kernel reads and writes, by role (the kernel's
// memref arguments, as views with the launch's b and L, its tensor maps and
// its launch parameters); absent where the layer has none.
defvar Ssmk_KernelOperands = (ins
  Optional<AnyType>:$Q,
  Optional<AnyType>:$K,
  Optional<AnyType>:$V,
  Optional<AnyType>:$ADT,
  Optional<AnyType>:$DT,
  Optional<AnyType>:$Trap,
  Optional<AnyType>:$Q_bias,
  Optional<AnyType>:$K_bias,
  Optional<AnyType>:$Angles,
  Optional<AnyType>:$D,
  Optional<AnyType>:$Z,
  Optional<AnyType>:$init_angle,
  Optional<AnyType>:$init_ssm,
  Optional<AnyType>:$init_k,
  Optional<AnyType>:$init_v,
  Optional<AnyType>:$mimo_v,
  Optional<AnyType>:$mimo_z,
  Optional<AnyType>:$mimo_o,
  Optional<AnyType>:$norm_weight,
  Optional<AnyType>:$out,
  Optional<AnyType>:$final_angle,
  Optional<AnyType>:$final_ssm,
  Optional<AnyType>:$final_k,
  Optional<AnyType>:$final_v,
  Optional<AnyType>:$cu_seqlens,
  Optional<AnyType>:$span_states,
  Optional<AnyType>:$span_decay,
  Optional<AnyType>:$span_angle_end,
  Optional<AnyType>:$span_angle_start,
  Optional<AnyType>:$q_map,
  Optional<AnyType>:$k_map,
  Optional<AnyType>:$launch_seqlen,
  Optional<AnyType>:$launch_chunks_per_block,
  Optional<AnyType>:$launch_spans);
defvar Ssmk_KernelOperandsFormat = [{(`Q` `(` $Q^ `:` type($Q) `)`)? (`K` `(` $K^ `:` type($K) `)`)? (`V` `(` $V^ `:` type($V) `)`)? (`ADT` `(` $ADT^ `:` type($ADT) `)`)? (`DT` `(` $DT^ `:` type($DT) `)`)? (`Trap` `(` $Trap^ `:` type($Trap) `)`)? (`Q_bias` `(` $Q_bias^ `:` type($Q_bias) `)`)? (`K_bias` `(` $K_bias^ `:` type($K_bias) `)`)? (`Angles` `(` $Angles^ `:` type($Angles) `)`)? (`D` `(` $D^ `:` type($D) `)`)? (`Z` `(` $Z^ `:` type($Z) `)`)? (`init_angle` `(` $init_angle^ `:` type($init_angle) `)`)? (`init_ssm` `(` $init_ssm^ `:` type($init_ssm) `)`)? (`init_k` `(` $init_k^ `:` type($init_k) `)`)? (`init_v` `(` $init_v^ `:` type($init_v) `)`)? (`mimo_v` `(` $mimo_v^ `:` type($mimo_v) `)`)? (`mimo_z` `(` $mimo_z^ `:` type($mimo_z) `)`)? (`mimo_o` `(` $mimo_o^ `:` type($mimo_o) `)`)? (`norm_weight` `(` $norm_weight^ `:` type($norm_weight) `)`)? (`out` `(` $out^ `:` type($out) `)`)? (`final_angle` `(` $final_angle^ `:` type($final_angle) `)`)? (`final_ssm` `(` $final_ssm^ `:` type($final_ssm) `)`)? (`final_k` `(` $final_k^ `:` type($final_k) `)`)? (`final_v` `(` $final_v^ `:` type($final_v) `)`)? (`cu_seqlens` `(` $cu_seqlens^ `:` type($cu_seqlens) `)`)? (`span_states` `(` $span_states^ `:` type($span_states) `)`)? (`span_decay` `(` $span_decay^ `:` type($span_decay) `)`)? (`span_angle_end` `(` $span_angle_end^ `:` type($span_angle_end) `)`)? (`span_angle_start` `(` $span_angle_start^ `:` type($span_angle_start) `)`)? (`q_map` `(` $q_map^ `:` type($q_map) `)`)? (`k_map` `(` $k_map^ `:` type($k_map) `)`)? (`launch_seqlen` `(` $launch_seqlen^ `:` type($launch_seqlen) `)`)? (`launch_chunks_per_block` `(` $launch_chunks_per_block^ `:` type($launch_chunks_per_block) `)`)? (`launch_spans` `(` $launch_spans^ `:` type($launch_spans) `)`)?}];

class Ssmk_KernelOp<string mnemonic, string what>
    : Ssmk_Op<mnemonic, [AttrSizedOperandSegments]> {
  let summary = what;
  let assemblyFormat = Ssmk_KernelOperandsFormat # " attr-dict";
}

def Ssmk_TokenScanOp : Ssmk_KernelOp<"token_scan",
    "the body of the token-sequential kernel"> {
  let description = [{
    One block per (head, batch) walks the tokens of a scan with the state
    in registers (TokenScanKernel.cpp). `threads` is the block size. A
    decode step is an `ssmk.decode_step`.
  }];
  let arguments = !con(Ssmk_KernelOperands,
                       (ins Ssmk_LayerAttr:$layer, I64Attr:$threads));
  let hasVerifier = 1;
}

def Ssmk_DecodeStepOp : Ssmk_KernelOp<"decode_step",
    "the body of the decode-step kernel"> {
  let description = [{
    One token of a layer (`step` in its #ssmk.layer) from the states it
    starts from (StepKernel.cpp): one block per (head, batch) with the
    token-sequential kernel's state layout over `threads` threads, every
    load issued before the first use, the shared per-token vectors written
    once behind one barrier, the state updated in registers and stored as
    soon as it is updated.
  }];
  let arguments = !con(Ssmk_KernelOperands,
                       (ins Ssmk_LayerAttr:$layer, I64Attr:$threads));
  let hasVerifier = 1;
}

def Ssmk_ChunkedScanOp : Ssmk_KernelOp<"chunked_scan",
    "the body of one launch of the chunked tensor-core kernel"> {
  let description = [{
    The chunked form of spec/mamba3-core.md on tensor cores
    (ChunkedScanKernel.cpp): `phase` says which launch (the one-pass kernel,
    or the first or third launch of the chunk-parallel schedule),
    `tokens_per_chunk` the chunk, `chunks_per_block` the span of a
    chunk-parallel block (0: the `launch_chunks_per_block` operand).
    `plan` (#ssmk.plan, written by ssmk-plan-shared-memory) states its
    engines, buffers and shared memory; ssmk-build-kernels needs it.
  }];
  let arguments = !con(Ssmk_KernelOperands,
                       (ins Ssmk_LayerAttr:$layer, I64Attr:$threads,
                            I64Attr:$tokens_per_chunk,
                            Ssmk_ChunkedPhaseAttr:$phase,
                            I64Attr:$chunks_per_block,
                            OptionalAttr<Ssmk_SharedPlanAttr>:$plan));
}

def Ssmk_ChunkBoundariesOp : Ssmk_KernelOp<"chunk_boundaries",
    "the body of the chunk-parallel schedule's boundary pass"> {
  let description = [{
    Launch 2 of the chunk-parallel schedule (ChunkBoundaryKernel.cpp): the
    states and angles entering each span, from the span contributions of
    launch 1; `spans` spans (0: the `launch_spans` operand).
  }];
  let arguments = !con(Ssmk_KernelOperands,
                       (ins Ssmk_LayerAttr:$layer, I64Attr:$threads,
                            I64Attr:$spans));
}

#endif // SSMK_DIALECT_TD
