// RUN: mamba3-opt %s -ssm-gpu-schedule=schedule=chunked -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s
// RUN: mamba3-opt %s -ssm-gpu-schedule="schedule=chunked chunk-size=32" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=CHUNK32

// MIMO rank 4 on the chunked tensor-core kernel: a chunk is 64 rank-1 terms
// (the chunk size counts terms, tokens x ranks, as the spec's MIMO chunking
// does), so 16 tokens; 40 tokens make three chunks. (Auto would take
// chunk-parallel for b * H = 2; scan-to-gpu-chunk-parallel.mlir covers it.)
// CHECK-LABEL: gpu.func @mimo(
// CHECK-SAME: ssm.chunk_size = 16 : i64
// CHECK-SAME: ssm.schedule = "chunked"
// Q and K tiles have one row per (token, rank): 64 rows.
// CHECK: memref.view {{.*}} to memref<64x40xbf16, #gpu.address_space<workgroup>>
// The ranks' biases and initial k per rank, then the chunk loop.
// CHECK: memref.load %arg6[%block_id_x, %{{.*}}, %{{.*}}] : memref<2x4x32xf32>
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c3{{.*}} step %c1{{.*}} iter_args(
// q, k of row (t, r) from Q[b, t, r, g, :], copied raw.
// CHECK: nvgpu.device_async_copy %arg0[%block_id_y, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}], %{{.*}}[%{{.*}}, %{{.*}}], 8 {bypassL1} : memref<1x40x4x1x32xbf16>
// The raw V and Z rows (one per token) follow the same way.
// CHECK: nvgpu.device_async_copy %arg2[%block_id_y, %{{.*}}, %block_id_x, %{{.*}}], %{{.*}}[%{{.*}}, %{{.*}}], 8 {bypassL1} : memref<1x40x2x16xbf16> to memref<16x16xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_copy %arg9[%block_id_y, %{{.*}}, %block_id_x, %{{.*}}], %{{.*}}[%{{.*}}, %{{.*}}], 8 {bypassL1} : memref<1x40x2x16xbf16> to memref<16x16xbf16, #gpu.address_space<workgroup>>
// CHECK: nvvm.cp.async.wait.group 0
// V^T holds v_{t,r} = MIMO_V[h, r] * V_t, from the raw rows.
// CHECK-NOT: memref.load %arg2[
// CHECK: memref.load %arg10[%block_id_x,
// CHECK: nvvm.mma.sync
// The epilogue gates each rank with MIMO_Z z and sums MIMO_O y over ranks.
// CHECK: memref.load %arg11[%block_id_x,
// CHECK: memref.load %arg12[%block_id_x,
// CHECK: memref.store {{.*}}, %arg13[
// CHECK: scf.yield
// Final k and v states per rank (written because the function returns them;
// scan-to-gpu-unused-states.mlir has a layer whose states nobody reads).
// CHECK: memref.store {{.*}}, %arg16[%block_id_y, %block_id_x, %{{.*}}, %{{.*}}] : memref<1x2x4x32xf32>
// CHECK: memref.store {{.*}}, %arg17[%block_id_y, %block_id_x, %{{.*}}, %{{.*}}] : memref<1x2x4x16xf32>

// 32 terms: 8 tokens of 4 ranks, five chunks.
// CHUNK32: ssm.chunk_size = 8 : i64
// CHUNK32: scf.for %{{.*}} = %c0{{.*}} to %c5{{.*}} step %c1{{.*}} iter_args(
func.func @mimo(%q: tensor<1x40x4x1x32xbf16>, %v: tensor<1x40x2x16xbf16>, %c: tensor<1x2x40xf32>,
    %qb: tensor<2x4x32xf32>, %ang: tensor<1x40x2x8xf32>, %m: tensor<2x4x16xf32>, %z: tensor<1x40x2x16xbf16>)
    -> (tensor<1x40x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x4x32xf32>,
        tensor<1x2x4x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang) z(%z)
      mimo_v(%m) mimo_z(%m) mimo_o(%m)
      {rotary = #ssm.rotary<angles = 8, pairing = half_split>, rank = 4}
      : (tensor<1x40x4x1x32xbf16>, tensor<1x40x4x1x32xbf16>, tensor<1x40x2x16xbf16>,
         tensor<1x2x40xf32>, tensor<1x2x40xf32>, tensor<1x2x40xf32>,
         tensor<2x4x32xf32>, tensor<2x4x32xf32>, tensor<1x40x2x8xf32>, tensor<1x40x2x16xbf16>,
         tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>)
      -> (tensor<1x40x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>,
          tensor<1x2x4x32xf32>, tensor<1x2x4x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x40x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>,
      tensor<1x2x4x32xf32>, tensor<1x2x4x16xf32>
}
