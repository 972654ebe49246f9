//===- SsmkDialect.td - The kernel-level ssmk dialect ------*- tablegen -*-===//
//
// `ssmk` is the level of one GPU kernel, between the tensor-level `ssm` ops
// and NVGPU/NVVM. Its first piece is the kernel schedule of a layer, the
// choices ssm-gpu-schedule makes and ssm-to-gpu builds, as one typed
// attribute with a verifier.
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

#endif // SSMK_DIALECT_TD
