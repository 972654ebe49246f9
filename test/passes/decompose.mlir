// RUN: mamba3-opt %s -split-input-file -ssm-decompose | FileCheck %s

// CHECK-LABEL: func.func @siso_scan
// CHECK-NOT: ssm.scan
// CHECK: %[[LA:.*]], %[[BA:.*]], %[[G:.*]] = ssm.discretize <trapezoid> %arg3, %arg4, %arg5
// CHECK: %[[Q:.*]], %[[K:.*]], %[[ANG:.*]] = ssm.rotary q(%arg0) k(%arg1) bias(%arg6, %arg7) angles(%arg8) dt(%arg4) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
// CHECK-SAME: -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>)
// CHECK: %[[V:.*]] = linalg.generic {{.*}} ins(%arg2 : tensor<2x16x4x16xbf16>)
// CHECK:   arith.extf
// CHECK: %[[Y:.*]], %[[H:.*]] = ssm.recurrence q(%[[Q]]) k(%[[K]]) v(%[[V]]) coefficients(%[[LA]], %[[BA]], %[[G]])
// CHECK-SAME: -> (tensor<2x16x1x4x16xf32>, tensor<2x4x16x32xf32>)
// Epilogue: skip, gate, then back to bf16.
// CHECK: %[[OUT:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[Y]], %[[V]], %arg9, %arg10
// CHECK:   math.exp
// Final k: the last token's rotated k, transposed to (b, H, N).
// CHECK: tensor.extract_slice %[[K]][0, 15, 0, 0, 0] [2, 1, 1, 4, 32]
// CHECK: linalg.transpose
// CHECK: tensor.collapse_shape
// CHECK: %[[OUTBF:.*]] = linalg.generic {{.*}} ins(%[[OUT]] : tensor<2x16x4x16xf32>) outs(%{{.*}} : tensor<2x16x4x16xbf16>)
// CHECK:   arith.truncf
// CHECK: return %[[OUTBF]], %[[ANG]], %[[H]]
func.func @siso_scan(%q: tensor<2x16x1x32xbf16>, %k: tensor<2x16x1x32xbf16>, %v: tensor<2x16x4x16xbf16>,
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

// -----

// MIMO: V up-projected per rank, the down-projection reduces over R, the
// initial k/v states keep their rank axis, the ssm state goes back to bf16.
// CHECK-LABEL: func.func @mimo_scan_initial
// CHECK: ssm.discretize <euler>
// CHECK: %[[Q:.*]], %[[K:.*]], %{{.*}} = ssm.rotary {{.*}} initial(%arg11)
// CHECK-SAME: -> (tensor<1x8x2x2x64xf32>, tensor<1x8x2x2x64xf32>, tensor<1x2x16xf32>)
// CHECK: %[[V:.*]] = linalg.generic {{.*}} ins(%arg2, %arg15 : tensor<1x8x2x32xf32>, tensor<2x2x32xf32>)
// CHECK:   arith.mulf
// CHECK: %[[H0:.*]] = linalg.generic {{.*}} ins(%arg12 : tensor<1x2x32x64xbf16>)
// CHECK: ssm.recurrence {{.*}} initial(%[[H0]], %arg13, %arg14)
// CHECK-SAME: -> (tensor<1x8x2x2x32xf32>, tensor<1x2x32x64xf32>)
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[V]], %arg9, %arg10, %arg16, %arg17 :
// CHECK: arith.truncf {{.*}} : f32 to bf16
func.func @mimo_scan_initial(%q: tensor<1x8x2x1x64xf32>, %k: tensor<1x8x2x1x64xf32>, %v: tensor<1x8x2x32xf32>,
    %adt: tensor<1x2x8xf32>, %dt: tensor<1x2x8xf32>, %trap: tensor<1x2x8xf32>,
    %qb: tensor<2x2x64xf32>, %kb: tensor<2x2x64xf32>, %ang: tensor<1x8x2x16xf32>, %d: tensor<2xf32>,
    %z: tensor<1x8x2x32xf32>, %a0: tensor<1x2x16xf32>, %h0: tensor<1x2x32x64xbf16>,
    %k0: tensor<1x2x2x64xf32>, %v0: tensor<1x2x2x32xf32>,
    %mv: tensor<2x2x32xf32>, %mz: tensor<2x2x32xf32>, %mo: tensor<2x2x32xf32>) -> tensor<1x2x32x64xbf16> {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      initial(%a0, %h0, %k0, %v0) mimo_v(%mv) mimo_z(%mz) mimo_o(%mo)
      {rule = #ssm.discretization<euler>, rotary = #ssm.rotary<angles = 16, pairing = half_split>,
       rank = 2, state_type = bf16}
      : (tensor<1x8x2x1x64xf32>, tensor<1x8x2x1x64xf32>, tensor<1x8x2x32xf32>, tensor<1x2x8xf32>,
         tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<2x2x64xf32>, tensor<2x2x64xf32>, tensor<1x8x2x16xf32>,
         tensor<2xf32>, tensor<1x8x2x32xf32>, tensor<1x2x16xf32>, tensor<1x2x32x64xbf16>,
         tensor<1x2x2x64xf32>, tensor<1x2x2x32xf32>, tensor<2x2x32xf32>, tensor<2x2x32xf32>, tensor<2x2x32xf32>)
      -> (tensor<1x8x2x32xf32>, tensor<1x2x16xf32>, tensor<1x2x32x64xbf16>, tensor<1x2x2x64xf32>, tensor<1x2x2x32xf32>)
  return %r#2 : tensor<1x2x32x64xbf16>
}

// -----

// A step is a one-token scan: its operands gain the L axis, out loses it.
// CHECK-LABEL: func.func @siso_step
// CHECK: %[[Q:.*]] = tensor.expand_shape %arg0 {{\[}}[0, 1], [2], [3]] output_shape [4, 1, 2, 64]
// CHECK: %[[ADT:.*]] = tensor.expand_shape %arg3 {{\[}}[0], [1, 2]] output_shape [4, 4, 1]
// CHECK: ssm.discretize <trapezoid> %[[ADT]]
// CHECK: ssm.rotary q(%[[Q]]) {{.*}} initial(%arg9)
// CHECK: %[[K0:.*]] = tensor.expand_shape %arg11 {{\[}}[0], [1, 2], [3]] output_shape [4, 4, 1, 64]
// CHECK: ssm.recurrence {{.*}} initial(%arg10, %[[K0]], %{{.*}})
// CHECK: %[[OUT:.*]] = tensor.collapse_shape %{{.*}} {{\[}}[0, 1], [2], [3]] : tensor<4x1x4x32xf32> into tensor<4x4x32xf32>
// CHECK: return %[[OUT]]
func.func @siso_step(%q: tensor<4x2x64xf32>, %k: tensor<4x2x64xf32>, %v: tensor<4x4x32xf32>,
    %adt: tensor<4x4xf32>, %dt: tensor<4x4xf32>, %trap: tensor<4x4xf32>, %qb: tensor<4x64xf32>,
    %kb: tensor<4x64xf32>, %ang: tensor<4x4x16xf32>, %a0: tensor<4x4x16xf32>,
    %h0: tensor<4x4x32x64xf32>, %k0: tensor<4x4x64xf32>, %v0: tensor<4x4x32xf32>)
    -> (tensor<4x4x32xf32>, tensor<4x4x32x64xf32>) {
  %r:5 = ssm.step q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      state(%a0, %h0, %k0, %v0) {rotary = #ssm.rotary<angles = 16, pairing = adjacent>, wrap_angle}
      : (tensor<4x2x64xf32>, tensor<4x2x64xf32>, tensor<4x4x32xf32>, tensor<4x4xf32>, tensor<4x4xf32>,
         tensor<4x4xf32>, tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x4x16xf32>, tensor<4x4x16xf32>,
         tensor<4x4x32x64xf32>, tensor<4x4x64xf32>, tensor<4x4x32xf32>)
      -> (tensor<4x4x32xf32>, tensor<4x4x16xf32>, tensor<4x4x32x64xf32>, tensor<4x4x64xf32>, tensor<4x4x32xf32>)
  return %r#0, %r#2 : tensor<4x4x32xf32>, tensor<4x4x32x64xf32>
}

// -----

// The per-head RMSNorm: the sum of squares of y + D v over P per (b, L, R,
// H), rsqrt(mean + eps), then the epilogue scales by it and the weight
// before the gate.
// CHECK-LABEL: func.func @scan_rmsnorm
// CHECK: %[[Y:.*]], %{{.*}} = ssm.recurrence
// CHECK: %[[SQ:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[Y]], %{{.*}}, %arg9 : {{.*}}) outs(%{{.*}} : tensor<2x16x1x4xf32>)
// CHECK: %[[SCALE:.*]] = linalg.generic {{.*}} ins(%[[SQ]] : tensor<2x16x1x4xf32>)
// CHECK:   arith.mulf %in, %{{.*}} : f32
// CHECK:   arith.constant 1.000000e-03 : f32
// CHECK:   math.rsqrt
// CHECK: linalg.generic {{.*}} ins(%[[Y]], %{{.*}}, %arg9, %arg10, %[[SCALE]], %arg11 :
func.func @scan_rmsnorm(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>,
    %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %d: tensor<4xf32>,
    %z: tensor<2x16x4x16xf32>, %w: tensor<4x16xf32>) -> tensor<2x16x4x16xf32> {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z) norm(%w)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, norm_eps = 1.0e-3 : f32}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>,
         tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>,
         tensor<4xf32>, tensor<2x16x4x16xf32>, tensor<4x16xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0 : tensor<2x16x4x16xf32>
}
