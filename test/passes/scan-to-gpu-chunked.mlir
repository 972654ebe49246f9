// RUN: mamba3-opt %s -ssm-gpu-schedule -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s
// RUN: mamba3-opt %s -ssm-gpu-schedule="schedule=chunked chunk-size=32" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=CHUNK32
// RUN: mamba3-opt %s -ssm-gpu-schedule="schedule=tokens" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=TOKENS
// RUN: not mamba3-opt %s -ssm-gpu-schedule="schedule=chunked block-size=256" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=BLOCK
// RUN: not mamba3-opt %s -ssm-gpu-schedule="schedule=chunked chunk-size=40" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=CHUNK40
// RUN: not mamba3-opt %s -ssm-gpu-schedule="schedule=diagonal" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=SCHEDULE

// bf16 SISO prefill takes the chunked tensor-core schedule: one block per
// (head, batch), four warps (P = 16 rounds up to one warp of state rows, and
// the block keeps at least four for staging), dynamic shared memory, and a
// loop over the 16 / 64 = 1 chunk carrying the 16 x 32 state as 16 f32
// fragment values per thread, and the stage's global loads of the chunk,
// issued a chunk ahead (the first chunk's before the loop): dt, a dt and
// trap of one token and the angle and dt of 64 x 8 / 128 = 4 angle items,
// 11 values.
// CHECK-LABEL: gpu.func @siso(
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 128, 1, 1>, known_grid_size = array<i32: 4, 2, 1>, ssm.chunk_size = 64 : i64, ssm.dynamic_shared_bytes = {{[0-9]+}} : i64, ssm.grid = ["H", "b", 1], ssm.schedule = "chunked"}
// CHECK: gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: memref.view {{.*}} to memref<64x40xbf16, #gpu.address_space<workgroup>>
// CHECK-NOT: memref<32x72xbf16
// CHECK-COUNT-3: memref.load %arg{{[345]}}[
// CHECK-COUNT-4: memref.load %arg8[
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c1{{.*}} step %c1{{.*}} iter_args(
// CHECK-SAME: -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// The raw q and k rows start copying to shared memory (cp.async, 16 bytes
// a piece, one group), then the raw V and Z rows (their staging tiles fit
// without costing a block per SM; V's rows padded to 24 for ldmatrix, as
// they serve as V^T), then stage (the trapezoid sigmoid on the special
// function unit, angle increments), the two steps of the segmented scan,
// wait for the copies, rotate in place eight entries (16 bytes) at a time
// with cos and sin of the scanned angles reduced to [-pi, pi] (sin.approx
// and cos.approx once per token and pair; a warp's items share a group, and
// groups past the S rotated pairs skip this; and wrap the carried angles),
// then the scores on tensor cores with the causal mask (ex2.approx), their
// operands read by ldmatrix, stored as bf16 pairs.
// CHECK: gpu.barrier
// CHECK: nvgpu.device_async_copy %arg0[{{.*}}], %{{.*}}[{{.*}}], 8 {bypassL1} : memref<2x16x1x32xbf16> to memref<64x40xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_copy %arg1[{{.*}}], %{{.*}}[{{.*}}], 8 {bypassL1} : memref<2x16x1x32xbf16> to memref<64x40xbf16, #gpu.address_space<workgroup>>
// CHECK: nvvm.cp.async.commit.group
// CHECK: nvgpu.device_async_copy %arg2[{{.*}}], %{{.*}}[{{.*}}], 8 {bypassL1} : memref<2x16x4x16xbf16> to memref<64x24xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_copy %arg10[{{.*}}], %{{.*}}[{{.*}}], 8 {bypassL1} : memref<2x16x4x16xbf16> to memref<64x16xbf16, #gpu.address_space<workgroup>>
// CHECK: nvvm.cp.async.commit.group
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: nvvm.rcp.approx.ftz.f
// CHECK: math.tanh
// CHECK: gpu.barrier
// CHECK-NOT: math.cos
// CHECK: nvvm.cp.async.wait.group 0
// CHECK: gpu.barrier
// CHECK: vector.load %{{.*}} {alignment = 16 : i64} : memref<64x40xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK: vector.load %{{.*}} {alignment = 16 : i64} : memref<1x32xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK: scf.if %{{.*}} -> (vector<8xf32>, vector<8xf32>)
// CHECK: memref.load {{.*}} : memref<64x9xf32, #gpu.address_space<workgroup>>
// CHECK: math.roundeven
// CHECK: math.fma
// CHECK: math.fma
// CHECK: math.cos {{.*}} fastmath<afn> : f32
// CHECK: math.sin {{.*}} fastmath<afn> : f32
// CHECK: vector.shuffle
// CHECK: arith.truncf {{.*}} : vector<8xf32> to vector<8xbf16>
// CHECK: vector.store {{.*}} {alignment = 16 : i64} : memref<64x40xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK-NOT: memref.load %arg0[
// CHECK: math.floor
// CHECK: gpu.barrier
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<64x40xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// CHECK: nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>}
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: vector.store {{.*}} {alignment = 4 : i64} : memref<64x72xbf16, #gpu.address_space<workgroup>>, vector<2xbf16>
// CHECK: gpu.barrier
// Output and state matmuls run in the one warp that owns state rows; they
// read V (token rows) and, in the state update, K through ldmatrix's
// transpose, so the kernel keeps no V^T or K^T tile.
// CHECK: scf.if
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true} : memref<64x24xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<64x40xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// CHECK: nvvm.mma.sync
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true} : memref<64x40xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// CHECK: nvvm.mma.sync
// CHECK: scf.yield
// The next chunk's stage loads, then the epilogue: eight p of a token per
// item, 16-byte loads of y and of the staged V and Z rows, one 16-byte
// store of out.
// CHECK-COUNT-3: memref.load %arg{{[345]}}[
// CHECK: memref.load %arg8[
// CHECK: gpu.barrier
// CHECK: vector.load {{.*}} : memref<64x20xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK: vector.load {{.*}} : memref<64x24xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK: vector.load {{.*}} : memref<64x16xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK: vector.store {{.*}}, %arg11[{{.*}}] {alignment = 16 : i64} : memref<2x16x4x16xbf16>, vector<8xbf16>
// CHECK: scf.yield
// CHECK: gpu.return

// CHUNK32: ssm.chunk_size = 32 : i64
// CHUNK32: scf.for %{{.*}} = %c0{{.*}} to %c1{{.*}} step %c1{{.*}} iter_args(

// TOKENS: ssm.dynamic_shared_bytes = 0 : i64, ssm.grid = ["H", "b", 1], ssm.schedule = "tokens"
// TOKENS-NOT: nvvm.mma.sync

// BLOCK: ssm-gpu-schedule schedule=chunked: the block size follows the head dim (one warp per 16 state rows, at least 4): 128 threads, not 256
// CHUNK40: ssm-gpu-schedule schedule=chunked: the chunked tensor-core kernel needs a chunk size that is a multiple of 16 in [16, 128], got 40
// SCHEDULE: ssm-gpu-schedule: schedule must be auto, tokens, chunked or chunk-parallel, got 'diagonal'
func.func @siso(%q: tensor<2x16x1x32xbf16>, %k: tensor<2x16x1x32xbf16>, %v: tensor<2x16x4x16xbf16>,
    %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %d: tensor<4xf32>,
    %z: tensor<2x16x4x16xbf16>)
    -> (tensor<2x16x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<2x16x1x32xbf16>, tensor<2x16x1x32xbf16>, tensor<2x16x4x16xbf16>, tensor<2x4x16xf32>,
         tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>,
         tensor<4xf32>, tensor<2x16x4x16xbf16>)
      -> (tensor<2x16x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<2x16x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>
}
