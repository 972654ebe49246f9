// RUN: mamba3-opt %s -split-input-file | mamba3-opt -split-input-file | FileCheck %s

// The kernel schedule of a layer round-trips; parameters at their defaults
// are not printed.

// CHECK-LABEL: func.func @chunked
// CHECK: } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64>}
func.func @chunked(%n: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %n step %c64 {
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64, chunks_per_block = 0, mma = auto, qk_buffers = 0>}
  return
}

// -----

// CHECK-LABEL: func.func @chunk_parallel
// CHECK: } {ssmk.schedule = #ssmk.schedule<kind = chunk_parallel, chunk = 32, chunks_per_block = 2, full_chunks = true, mma = wgmma_scores, qk_buffers = 1>}
func.func @chunk_parallel(%n: index) {
  %c0 = arith.constant 0 : index
  %c32 = arith.constant 32 : index
  scf.for %i = %c0 to %n step %c32 {
  } {ssmk.schedule = #ssmk.schedule<kind = chunk_parallel, chunk = 32, chunks_per_block = 2, full_chunks = true, mma = wgmma_scores, qk_buffers = 1>}
  return
}

// -----

// CHECK-LABEL: func.func @engines
// CHECK: } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 16, mma = mma_sync>}
// CHECK: } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 16, mma = wgmma, qk_buffers = 2>}
func.func @engines(%n: index) {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  scf.for %i = %c0 to %n step %c16 {
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 16, mma = mma_sync>}
  scf.for %i = %c0 to %n step %c16 {
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 16, mma = wgmma, qk_buffers = 2>}
  return
}
