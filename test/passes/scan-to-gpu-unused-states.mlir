// RUN: mamba3-opt %s -split-input-file -ssm-gpu-schedule=schedule=tokens -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s

// A layer whose final states nobody reads (the op is Pure): its kernel takes
// `out` as the only output and stores nothing else; the operands keep their
// places.
// CHECK-LABEL: gpu.func @out_only(
// CHECK-SAME: %arg8: memref<2x24x2x8xf32>, %arg9: memref<2x24x2x16xf32>) workgroup(
// CHECK-NOT: memref.store {{.*}} : memref<2x2x{{(8|16x32|32|16)}}xf32>
// CHECK: memref.store {{.*}}, %arg9[
// CHECK-NOT: memref.store {{.*}} : memref<2x2x{{(8|16x32|32|16)}}xf32>
// CHECK: gpu.return
func.func @out_only(%q: tensor<2x24x1x32xf32>, %v: tensor<2x24x2x16xf32>, %c: tensor<2x2x24xf32>,
    %qb: tensor<2x32xf32>, %ang: tensor<2x24x2x8xf32>) -> tensor<2x24x2x16xf32> {
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x24x1x32xf32>, tensor<2x24x1x32xf32>, tensor<2x24x2x16xf32>,
         tensor<2x2x24xf32>, tensor<2x2x24xf32>, tensor<2x2x24xf32>,
         tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x24x2x8xf32>)
      -> (tensor<2x24x2x16xf32>, tensor<2x2x8xf32>, tensor<2x2x16x32xf32>,
          tensor<2x2x32xf32>, tensor<2x2x16xf32>)
  return %r#0 : tensor<2x24x2x16xf32>
}

// -----

// One state read: all four are written (the kernel's outputs come as a set).
// CHECK-LABEL: gpu.func @ssm_read(
// CHECK-SAME: %arg9: memref<2x24x2x16xf32>, %arg10: memref<2x2x8xf32>, %arg11: memref<2x2x16x32xf32>, %arg12: memref<2x2x32xf32>, %arg13: memref<2x2x16xf32>)
func.func @ssm_read(%q: tensor<2x24x1x32xf32>, %v: tensor<2x24x2x16xf32>, %c: tensor<2x2x24xf32>,
    %qb: tensor<2x32xf32>, %ang: tensor<2x24x2x8xf32>) -> tensor<2x2x16x32xf32> {
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x24x1x32xf32>, tensor<2x24x1x32xf32>, tensor<2x24x2x16xf32>,
         tensor<2x2x24xf32>, tensor<2x2x24xf32>, tensor<2x2x24xf32>,
         tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x24x2x8xf32>)
      -> (tensor<2x24x2x16xf32>, tensor<2x2x8xf32>, tensor<2x2x16x32xf32>,
          tensor<2x2x32xf32>, tensor<2x2x16xf32>)
  return %r#2 : tensor<2x2x16x32xf32>
}
