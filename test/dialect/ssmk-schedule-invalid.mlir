// RUN: mamba3-opt %s -split-input-file -verify-diagnostics

// The #ssmk.schedule verifier: each field belongs to its kinds and range.

func.func @tokens_with_chunk(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
  // expected-error @+1 {{a tokens schedule has no chunk, chunks_per_block, full_chunks, mma or qk_buffers (the token-sequential kernel has none of them)}}
  } {ssmk.schedule = #ssmk.schedule<kind = tokens, chunk = 64>}
  return
}

// -----

func.func @tokens_block_size(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
  // expected-error @+1 {{block_size must be 0 (by shape) or a multiple of 32 in [32, 1024], got 100}}
  } {ssmk.schedule = #ssmk.schedule<kind = tokens, block_size = 100>}
  return
}

// -----

func.func @chunked_without_chunk(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
  // expected-error @+1 {{a chunked schedule needs a chunk of at least 1 token, got 0}}
  } {ssmk.schedule = #ssmk.schedule<kind = chunked>}
  return
}

// -----

func.func @chunked_block_size(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %n step %c64 {
  // expected-error @+1 {{block_size is the tokens schedule's; the chunked kernels' block follows the head dim}}
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64, block_size = 128>}
  return
}

// -----

func.func @chunked_chunks_per_block(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %n step %c64 {
  // expected-error @+1 {{chunks_per_block is chunk_parallel's}}
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64, chunks_per_block = 2>}
  return
}

// -----

func.func @negative_chunks_per_block(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %n step %c64 {
  // expected-error @+1 {{chunks_per_block must be 0 (at launch) or positive, got -1}}
  } {ssmk.schedule = #ssmk.schedule<kind = chunk_parallel, chunk = 64, chunks_per_block = -1>}
  return
}

// -----

func.func @qk_buffers(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %n step %c64 {
  // expected-error @+1 {{qk_buffers must be 0 (the planner's), 1 or 2, got 3}}
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64, qk_buffers = 3>}
  return
}

// -----

func.func @unknown_engine(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %n step %c64 {
  // expected-error @+2 {{expected one of [auto, mma_sync, wgmma_scores, wgmma] for the engines of the chunked kernel's three matmuls, got: tensor}}
  // expected-error @+1 {{failed to parse Ssmk_ScheduleAttr parameter 'mma'}}
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64, mma = tensor>}
  return
}

// -----

// Where the schedule may sit, and what it must be.
// expected-error @+1 {{'ssmk.schedule' belongs on an ssm.scan, an ssm.step or the scf.for chunk loop of a scan, not on 'func.func'}}
func.func @on_a_function() attributes {ssmk.schedule = #ssmk.schedule<kind = tokens>} {
  return
}

// -----

func.func @not_a_schedule(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  // expected-error @+1 {{'ssmk.schedule' must be a #ssmk.schedule, got 64 : i64}}
  scf.for %i = %c0 to %n step %c64 {
  } {ssmk.schedule = 64 : i64}
  return
}

// -----

func.func @unknown_attribute(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  // expected-error @+1 {{'ssmk.chunk' is not an attribute of the ssmk dialect}}
  scf.for %i = %c0 to %n step %c64 {
  } {ssmk.chunk = 64 : i64}
  return
}
