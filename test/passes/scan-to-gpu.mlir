// RUN: mamba3-opt %s -ssm-gpu-schedule=block-size=256 -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s
// RUN: mamba3-opt %s -ssm-gpu-schedule -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=AUTO
// RUN: not mamba3-opt %s -ssm-gpu-schedule=block-size=100 -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=BLOCK

// BLOCK: ssm-gpu-schedule: block-size must be 0 (auto) or a multiple of 32 in [32, 1024], got 100

// Without a block size, bf16 prefill takes the chunked schedule
// (scan-to-gpu-chunked.mlir); an explicit one asks for this kernel.
// AUTO: known_block_size = array<i32: 128, 1, 1>
// AUTO-SAME: ssm.schedule = "chunked"

// One block per (head, batch); the state in registers, q/k/v staged in
// double-buffered shared memory; the host function is gone.
// CHECK: module attributes {gpu.container_module}
// CHECK: gpu.module @mamba3_kernels
// CHECK: gpu.func @siso(%{{.*}}: memref<2x16x1x32xbf16>, %{{.*}}: memref<2x16x1x32xbf16>, %{{.*}}: memref<2x16x4x16xbf16>
// CHECK-SAME: workgroup(%[[KBUF:.*]] : memref<64xf32, #gpu.address_space<workgroup>>, %[[VBUF:.*]] : memref<32xf32, #gpu.address_space<workgroup>>, %[[QBUF:.*]] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 256, 1, 1>, known_grid_size = array<i32: 4, 2, 1>, ssm.dynamic_shared_bytes = 0 : i64, ssm.grid = ["H", "b", 1], ssm.schedule = "tokens"}
// CHECK: gpu.block_id x
// CHECK: gpu.block_id y
// CHECK: scf.for %{{.*}} = %{{.*}} to %c16{{.*}} step %{{.*}} iter_args(
// CHECK:   gpu.barrier
// CHECK:   math.tanh
// CHECK:   math.floor
// CHECK:   math.cos
// CHECK:   gpu.barrier
// CHECK:   arith.extf {{.*}} : bf16 to f32
// CHECK:   gpu.barrier
// CHECK:   math.exp
// A thread owns groups of 4 adjacent state columns; a row of N = 32 is 8
// groups, so 8 lanes share a row and y = H q reduces over 8 lanes.
// CHECK:   gpu.shuffle  xor %{{.*}}, %c4_i32, %c32_i32
// CHECK:   gpu.shuffle  xor %{{.*}}, %c2_i32, %c32_i32
// CHECK:   gpu.shuffle  xor %{{.*}}, %c1_i32, %c32_i32
// CHECK-NOT: gpu.shuffle
// CHECK:   arith.truncf {{.*}} : f32 to bf16
// CHECK:   scf.yield
// The final state leaves in 16-byte stores.
// CHECK: vector.store %{{.*}}, %arg13[%block_id_y, %block_id_x, %{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<2x4x16x32xf32>, vector<4xf32>
// CHECK: gpu.return
// CHECK-NOT: func.func
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

