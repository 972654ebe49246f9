// RUN: mamba3-opt %s --ssm-to-nvvm | FileCheck %s
// RUN: mamba3-opt %s --ssm-to-nvvm="block-size=256 chip=sm_90" | FileCheck %s --check-prefix=OPTS

// The pipeline ends at NVVM (bf16 SISO: the chunked tensor-core schedule;
// block-size=256 asks for the token-sequential one): a gpu.module carrying the sm_90a target, the
// kernel as an llvm.func taking one bare pointer per memref argument, the
// math through libdevice (linked when the module is serialized).
// CHECK-LABEL: gpu.module @mamba3_kernels [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK: llvm.func @siso(%{{[a-z0-9]+}}: !llvm.ptr, %{{[a-z0-9]+}}: !llvm.ptr,
// CHECK-SAME: gpu.kernel
// CHECK-SAME: nvvm.maxntid = array<i32: 128, 1, 1>
// CHECK: nvvm.barrier0
// CHECK: llvm.call @__nv_tanhf
// CHECK: llvm.call @__nv_fast_cosf
// CHECK: llvm.call @__nv_fast_sinf
// CHECK: nvvm.mma.sync
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-NOT: memref.
// CHECK-NOT: scf.

// OPTS-LABEL: gpu.module @mamba3_kernels [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// OPTS: nvvm.maxntid = array<i32: 256, 1, 1>
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
