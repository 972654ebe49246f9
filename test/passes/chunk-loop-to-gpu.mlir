// RUN: mamba3-opt %s -split-input-file -verify-diagnostics -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s

// ssm-to-gpu lowers a chunk loop as ssm-tile-sequence / ssm-gpu-schedule
// write it: the loop's step is the kernel's chunk (48 tokens here, which
// the compiler would not have picked), and the whole-sequence tensors its
// chunks slice and the zero states it starts from make the kernel's
// arguments (no initial states: 11 operands, then the 5 results).
// CHECK-LABEL: gpu.func @chunks_of_48(
// CHECK-SAME: %arg10: memref<1x200x2x16xbf16>, %arg11: memref<1x200x2x16xbf16>, %arg12: memref<1x2x8xf32>, %arg13: memref<1x2x16x32xf32>, %arg14: memref<1x2x32xf32>, %arg15: memref<1x2x16xf32>)
// CHECK-SAME: known_grid_size = array<i32: 2, 1, 1>, ssm.chunk_size = 48 : i64
// CHECK-SAME: ssm.schedule = "chunked"
// CHECK: scf.for
// CHECK: nvvm.mma.sync
func.func @chunks_of_48(%arg0: tensor<1x200x1x32xbf16>, %arg1: tensor<1x200x1x32xbf16>, %arg2: tensor<1x200x2x16xbf16>, %arg3: tensor<1x2x200xf32>, %arg4: tensor<1x2x200xf32>, %arg5: tensor<1x2x200xf32>, %arg6: tensor<2x32xf32>, %arg7: tensor<2x32xf32>, %arg8: tensor<1x200x2x8xf32>, %arg9: tensor<2xf32>, %arg10: tensor<1x200x2x16xbf16>) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  %c1 = arith.constant 1 : index
  %c200 = arith.constant 200 : index
  %0 = tensor.empty() : tensor<1x200x2x16xbf16>
  %1 = tensor.empty() : tensor<1x2x8xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %2 = linalg.fill ins(%cst : f32) outs(%1 : tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
  %3 = tensor.empty() : tensor<1x2x16x32xf32>
  %cst_0 = arith.constant 0.000000e+00 : f32
  %4 = linalg.fill ins(%cst_0 : f32) outs(%3 : tensor<1x2x16x32xf32>) -> tensor<1x2x16x32xf32>
  %5 = tensor.empty() : tensor<1x2x32xf32>
  %cst_1 = arith.constant 0.000000e+00 : f32
  %6 = linalg.fill ins(%cst_1 : f32) outs(%5 : tensor<1x2x32xf32>) -> tensor<1x2x32xf32>
  %7 = tensor.empty() : tensor<1x2x16xf32>
  %cst_2 = arith.constant 0.000000e+00 : f32
  %8 = linalg.fill ins(%cst_2 : f32) outs(%7 : tensor<1x2x16xf32>) -> tensor<1x2x16xf32>
  %c0 = arith.constant 0 : index
  %c48 = arith.constant 48 : index
  %9:5 = scf.for %arg11 = %c0 to %c200 step %c48 iter_args(%arg12 = %0, %arg13 = %2, %arg14 = %4, %arg15 = %6, %arg16 = %8) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
    %10 = arith.subi %c200, %arg11 : index
    %11 = arith.minsi %10, %c48 : index
    %extracted_slice = tensor.extract_slice %arg0[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_3 = tensor.extract_slice %arg1[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_4 = tensor.extract_slice %arg2[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %extracted_slice_5 = tensor.extract_slice %arg3[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_6 = tensor.extract_slice %arg4[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_7 = tensor.extract_slice %arg5[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_8 = tensor.extract_slice %arg8[0, %arg11, 0, 0] [1, %11, 2, 8] [1, 1, 1, 1] : tensor<1x200x2x8xf32> to tensor<1x?x2x8xf32>
    %extracted_slice_9 = tensor.extract_slice %arg10[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %out, %final_angle, %final_ssm, %final_k, %final_v = ssm.scan q(%extracted_slice) k(%extracted_slice_3) v(%extracted_slice_4) adt(%extracted_slice_5) dt(%extracted_slice_6) trap(%extracted_slice_7) bias(%arg6, %arg7) angles(%extracted_slice_8) d(%arg9) z(%extracted_slice_9) initial(%arg13, %arg14, %arg15, %arg16) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle} : (tensor<1x?x1x32xbf16>, tensor<1x?x1x32xbf16>, tensor<1x?x2x16xbf16>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x?x2x8xf32>, tensor<2xf32>, tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) -> (tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
    %inserted_slice = tensor.insert_slice %out into %arg12[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x?x2x16xbf16> into tensor<1x200x2x16xbf16>
    scf.yield %inserted_slice, %final_angle, %final_ssm, %final_k, %final_v : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 48>}
  return %9#0, %9#1, %9#2, %9#3, %9#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}

// -----

// A chunk of 40 tokens is no tensor-core chunk.
func.func @chunks_of_40(%arg0: tensor<1x200x1x32xbf16>, %arg1: tensor<1x200x1x32xbf16>, %arg2: tensor<1x200x2x16xbf16>, %arg3: tensor<1x2x200xf32>, %arg4: tensor<1x2x200xf32>, %arg5: tensor<1x2x200xf32>, %arg6: tensor<2x32xf32>, %arg7: tensor<2x32xf32>, %arg8: tensor<1x200x2x8xf32>, %arg9: tensor<2xf32>, %arg10: tensor<1x200x2x16xbf16>) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  %c1 = arith.constant 1 : index
  %c200 = arith.constant 200 : index
  %0 = tensor.empty() : tensor<1x200x2x16xbf16>
  %1 = tensor.empty() : tensor<1x2x8xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %2 = linalg.fill ins(%cst : f32) outs(%1 : tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
  %3 = tensor.empty() : tensor<1x2x16x32xf32>
  %cst_0 = arith.constant 0.000000e+00 : f32
  %4 = linalg.fill ins(%cst_0 : f32) outs(%3 : tensor<1x2x16x32xf32>) -> tensor<1x2x16x32xf32>
  %5 = tensor.empty() : tensor<1x2x32xf32>
  %cst_1 = arith.constant 0.000000e+00 : f32
  %6 = linalg.fill ins(%cst_1 : f32) outs(%5 : tensor<1x2x32xf32>) -> tensor<1x2x32xf32>
  %7 = tensor.empty() : tensor<1x2x16xf32>
  %cst_2 = arith.constant 0.000000e+00 : f32
  %8 = linalg.fill ins(%cst_2 : f32) outs(%7 : tensor<1x2x16xf32>) -> tensor<1x2x16xf32>
  %c0 = arith.constant 0 : index
  %c40 = arith.constant 40 : index
  // expected-error @+1 {{ssm-to-gpu: the chunked tensor-core kernel needs a chunk size that is a multiple of 16 in [16, 128], got 40}}
  %9:5 = scf.for %arg11 = %c0 to %c200 step %c40 iter_args(%arg12 = %0, %arg13 = %2, %arg14 = %4, %arg15 = %6, %arg16 = %8) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
    %10 = arith.subi %c200, %arg11 : index
    %11 = arith.minsi %10, %c40 : index
    %extracted_slice = tensor.extract_slice %arg0[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_3 = tensor.extract_slice %arg1[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_4 = tensor.extract_slice %arg2[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %extracted_slice_5 = tensor.extract_slice %arg3[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_6 = tensor.extract_slice %arg4[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_7 = tensor.extract_slice %arg5[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_8 = tensor.extract_slice %arg8[0, %arg11, 0, 0] [1, %11, 2, 8] [1, 1, 1, 1] : tensor<1x200x2x8xf32> to tensor<1x?x2x8xf32>
    %extracted_slice_9 = tensor.extract_slice %arg10[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %out, %final_angle, %final_ssm, %final_k, %final_v = ssm.scan q(%extracted_slice) k(%extracted_slice_3) v(%extracted_slice_4) adt(%extracted_slice_5) dt(%extracted_slice_6) trap(%extracted_slice_7) bias(%arg6, %arg7) angles(%extracted_slice_8) d(%arg9) z(%extracted_slice_9) initial(%arg13, %arg14, %arg15, %arg16) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle} : (tensor<1x?x1x32xbf16>, tensor<1x?x1x32xbf16>, tensor<1x?x2x16xbf16>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x?x2x8xf32>, tensor<2xf32>, tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) -> (tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
    %inserted_slice = tensor.insert_slice %out into %arg12[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x?x2x16xbf16> into tensor<1x200x2x16xbf16>
    scf.yield %inserted_slice, %final_angle, %final_ssm, %final_k, %final_v : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 40>}
  return %9#0, %9#1, %9#2, %9#3, %9#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}

// -----

// Chunk-parallel needs its chunks per block.
func.func @parallel_without_spans(%arg0: tensor<1x200x1x32xbf16>, %arg1: tensor<1x200x1x32xbf16>, %arg2: tensor<1x200x2x16xbf16>, %arg3: tensor<1x2x200xf32>, %arg4: tensor<1x2x200xf32>, %arg5: tensor<1x2x200xf32>, %arg6: tensor<2x32xf32>, %arg7: tensor<2x32xf32>, %arg8: tensor<1x200x2x8xf32>, %arg9: tensor<2xf32>, %arg10: tensor<1x200x2x16xbf16>) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  %c1 = arith.constant 1 : index
  %c200 = arith.constant 200 : index
  %0 = tensor.empty() : tensor<1x200x2x16xbf16>
  %1 = tensor.empty() : tensor<1x2x8xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %2 = linalg.fill ins(%cst : f32) outs(%1 : tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
  %3 = tensor.empty() : tensor<1x2x16x32xf32>
  %cst_0 = arith.constant 0.000000e+00 : f32
  %4 = linalg.fill ins(%cst_0 : f32) outs(%3 : tensor<1x2x16x32xf32>) -> tensor<1x2x16x32xf32>
  %5 = tensor.empty() : tensor<1x2x32xf32>
  %cst_1 = arith.constant 0.000000e+00 : f32
  %6 = linalg.fill ins(%cst_1 : f32) outs(%5 : tensor<1x2x32xf32>) -> tensor<1x2x32xf32>
  %7 = tensor.empty() : tensor<1x2x16xf32>
  %cst_2 = arith.constant 0.000000e+00 : f32
  %8 = linalg.fill ins(%cst_2 : f32) outs(%7 : tensor<1x2x16xf32>) -> tensor<1x2x16xf32>
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  // expected-error @+1 {{ssm-to-gpu: the schedule's chunk is 32 tokens, but the loop steps by 64}}
  %9:5 = scf.for %arg11 = %c0 to %c200 step %c64 iter_args(%arg12 = %0, %arg13 = %2, %arg14 = %4, %arg15 = %6, %arg16 = %8) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
    %10 = arith.subi %c200, %arg11 : index
    %11 = arith.minsi %10, %c64 : index
    %extracted_slice = tensor.extract_slice %arg0[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_3 = tensor.extract_slice %arg1[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_4 = tensor.extract_slice %arg2[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %extracted_slice_5 = tensor.extract_slice %arg3[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_6 = tensor.extract_slice %arg4[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_7 = tensor.extract_slice %arg5[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_8 = tensor.extract_slice %arg8[0, %arg11, 0, 0] [1, %11, 2, 8] [1, 1, 1, 1] : tensor<1x200x2x8xf32> to tensor<1x?x2x8xf32>
    %extracted_slice_9 = tensor.extract_slice %arg10[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %out, %final_angle, %final_ssm, %final_k, %final_v = ssm.scan q(%extracted_slice) k(%extracted_slice_3) v(%extracted_slice_4) adt(%extracted_slice_5) dt(%extracted_slice_6) trap(%extracted_slice_7) bias(%arg6, %arg7) angles(%extracted_slice_8) d(%arg9) z(%extracted_slice_9) initial(%arg13, %arg14, %arg15, %arg16) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle} : (tensor<1x?x1x32xbf16>, tensor<1x?x1x32xbf16>, tensor<1x?x2x16xbf16>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x?x2x8xf32>, tensor<2xf32>, tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) -> (tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
    %inserted_slice = tensor.insert_slice %out into %arg12[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x?x2x16xbf16> into tensor<1x200x2x16xbf16>
    scf.yield %inserted_slice, %final_angle, %final_ssm, %final_k, %final_v : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
  } {ssmk.schedule = #ssmk.schedule<kind = chunk_parallel, chunk = 32>}
  return %9#0, %9#1, %9#2, %9#3, %9#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}

// -----

// A layer op needs ssm-gpu-schedule's decision.
func.func @unscheduled(%q: tensor<1x200x1x32xbf16>, %k: tensor<1x200x1x32xbf16>, %v: tensor<1x200x2x16xbf16>,
    %adt: tensor<1x2x200xf32>, %dt: tensor<1x2x200xf32>, %trap: tensor<1x2x200xf32>,
    %qb: tensor<2x32xf32>, %kb: tensor<2x32xf32>, %ang: tensor<1x200x2x8xf32>, %d: tensor<2xf32>,
    %z: tensor<1x200x2x16xbf16>)
    -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  // expected-error @+1 {{ssm-to-gpu: the layer has no ssmk.schedule; run ssm-gpu-schedule first}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<1x200x1x32xbf16>, tensor<1x200x1x32xbf16>, tensor<1x200x2x16xbf16>, tensor<1x2x200xf32>,
         tensor<1x2x200xf32>, tensor<1x2x200xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x200x2x8xf32>,
         tensor<2xf32>, tensor<1x200x2x16xbf16>)
      -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}


// -----

// Every chunk must read its own tokens.
func.func @slice_not_at_chunk(%arg0: tensor<1x200x1x32xbf16>, %arg1: tensor<1x200x1x32xbf16>, %arg2: tensor<1x200x2x16xbf16>, %arg3: tensor<1x2x200xf32>, %arg4: tensor<1x2x200xf32>, %arg5: tensor<1x2x200xf32>, %arg6: tensor<2x32xf32>, %arg7: tensor<2x32xf32>, %arg8: tensor<1x200x2x8xf32>, %arg9: tensor<2xf32>, %arg10: tensor<1x200x2x16xbf16>) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  %c1 = arith.constant 1 : index
  %c200 = arith.constant 200 : index
  %0 = tensor.empty() : tensor<1x200x2x16xbf16>
  %1 = tensor.empty() : tensor<1x2x8xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %2 = linalg.fill ins(%cst : f32) outs(%1 : tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
  %3 = tensor.empty() : tensor<1x2x16x32xf32>
  %cst_0 = arith.constant 0.000000e+00 : f32
  %4 = linalg.fill ins(%cst_0 : f32) outs(%3 : tensor<1x2x16x32xf32>) -> tensor<1x2x16x32xf32>
  %5 = tensor.empty() : tensor<1x2x32xf32>
  %cst_1 = arith.constant 0.000000e+00 : f32
  %6 = linalg.fill ins(%cst_1 : f32) outs(%5 : tensor<1x2x32xf32>) -> tensor<1x2x32xf32>
  %7 = tensor.empty() : tensor<1x2x16xf32>
  %cst_2 = arith.constant 0.000000e+00 : f32
  %8 = linalg.fill ins(%cst_2 : f32) outs(%7 : tensor<1x2x16xf32>) -> tensor<1x2x16xf32>
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %9:5 = scf.for %arg11 = %c0 to %c200 step %c64 iter_args(%arg12 = %0, %arg13 = %2, %arg14 = %4, %arg15 = %6, %arg16 = %8) -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
    %10 = arith.subi %c200, %arg11 : index
    %11 = arith.minsi %10, %c64 : index
    // expected-error @+1 {{ssm-to-gpu: a chunk scan reads its chunk's tokens, at the loop's chunk start}}
    %extracted_slice = tensor.extract_slice %arg0[0, 0, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_3 = tensor.extract_slice %arg1[0, %arg11, 0, 0] [1, %11, 1, 32] [1, 1, 1, 1] : tensor<1x200x1x32xbf16> to tensor<1x?x1x32xbf16>
    %extracted_slice_4 = tensor.extract_slice %arg2[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %extracted_slice_5 = tensor.extract_slice %arg3[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_6 = tensor.extract_slice %arg4[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_7 = tensor.extract_slice %arg5[0, 0, %arg11] [1, 2, %11] [1, 1, 1] : tensor<1x2x200xf32> to tensor<1x2x?xf32>
    %extracted_slice_8 = tensor.extract_slice %arg8[0, %arg11, 0, 0] [1, %11, 2, 8] [1, 1, 1, 1] : tensor<1x200x2x8xf32> to tensor<1x?x2x8xf32>
    %extracted_slice_9 = tensor.extract_slice %arg10[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x200x2x16xbf16> to tensor<1x?x2x16xbf16>
    %out, %final_angle, %final_ssm, %final_k, %final_v = ssm.scan q(%extracted_slice) k(%extracted_slice_3) v(%extracted_slice_4) adt(%extracted_slice_5) dt(%extracted_slice_6) trap(%extracted_slice_7) bias(%arg6, %arg7) angles(%extracted_slice_8) d(%arg9) z(%extracted_slice_9) initial(%arg13, %arg14, %arg15, %arg16) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle} : (tensor<1x?x1x32xbf16>, tensor<1x?x1x32xbf16>, tensor<1x?x2x16xbf16>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x?x2x8xf32>, tensor<2xf32>, tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) -> (tensor<1x?x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
    %inserted_slice = tensor.insert_slice %out into %arg12[0, %arg11, 0, 0] [1, %11, 2, 16] [1, 1, 1, 1] : tensor<1x?x2x16xbf16> into tensor<1x200x2x16xbf16>
    scf.yield %inserted_slice, %final_angle, %final_ssm, %final_k, %final_v : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
  } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64>}
  return %9#0, %9#1, %9#2, %9#3, %9#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}
