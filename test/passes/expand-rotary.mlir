// RUN: mamba3-opt %s -split-input-file -ssm-expand-rotary | FileCheck %s

// Adjacent pairs (2i, 2i+1), groups broadcast to heads (h / (H/G)), angles
// accumulated over the sequence and wrapped into [0, 2 pi).
// CHECK-LABEL: func.func @adjacent_siso_wrapped
// CHECK-NOT: ssm.rotary
// CHECK: %[[ZERO:.*]] = linalg.fill
// CHECK: %[[LOOP:.*]]:2 = scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[TH:.*]] = %[[ZERO]], %[[ALL:.*]] = %{{.*}}) -> (tensor<2x4x8xf32>, tensor<2x16x4x8xf32>)
// CHECK:   %[[ANGLES:.*]] = tensor.extract_slice %arg4[0, %[[T]], 0, 0] [2, 1, 4, 8] [1, 1, 1, 1] : tensor<2x16x4x8xf32> to tensor<2x1x4x8xf32>
// CHECK:   tensor.collapse_shape %[[ANGLES]] {{\[\[}}0, 1], [2], [3]] : tensor<2x1x4x8xf32> into tensor<2x4x8xf32>
// CHECK:   %[[DT:.*]] = tensor.extract_slice %arg5[0, 0, %[[T]]] [2, 4, 1] [1, 1, 1] : tensor<2x4x16xf32> to tensor<2x4x1xf32>
// CHECK:   tensor.collapse_shape %[[DT]] {{\[\[}}0], [1, 2]] : tensor<2x4x1xf32> into tensor<2x4xf32>
// CHECK:   linalg.generic
// CHECK-SAME: outs(%[[TH]] : tensor<2x4x8xf32>)
// CHECK:     math.tanh
// CHECK:     math.floor
// CHECK:   tensor.insert_slice %{{.*}} into %[[ALL]][0, %[[T]], 0, 0] [2, 1, 4, 8]
// CHECK: %[[QK:.*]]:2 = linalg.generic
// CHECK-SAME: outs(%{{.*}}, %{{.*}} : tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>)
// CHECK:   %[[H:.*]] = linalg.index 3
// CHECK:   arith.divui %[[H]], %c2
// CHECK:   arith.remui
// CHECK:   tensor.extract %[[LOOP]]#1
// CHECK:   math.cos
// CHECK:   math.sin
// CHECK: return %[[QK]]#0, %[[QK]]#1, %[[LOOP]]#0
func.func @adjacent_siso_wrapped(%q: tensor<2x16x2x32xbf16>, %k: tensor<2x16x2x32xbf16>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>,
    %dt: tensor<2x4x16xf32>)
    -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>) {
  %rq, %rk, %a = ssm.rotary q(%q) k(%k) bias(%qb, %kb) angles(%ang) dt(%dt)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<2x16x2x32xbf16>, tensor<2x16x2x32xbf16>, tensor<4x32xf32>, tensor<4x32xf32>,
         tensor<2x16x4x8xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>)
  return %rq, %rk, %a : tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>
}

// -----

// Half-split pairs (i, i + N/2), MIMO layout, initial angles, no wrap,
// dynamic batch and sequence.
// CHECK-LABEL: func.func @half_split_mimo_initial
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %arg6,
// CHECK-NOT: math.floor
// CHECK: linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<?x?x2x4x64xf32>, tensor<?x?x2x4x64xf32>)
// CHECK: arith.cmpi ult, %{{.*}}, %c32
// CHECK: arith.subi %{{.*}}, %c32
func.func @half_split_mimo_initial(%q: tensor<?x?x2x1x64xf32>, %k: tensor<?x?x2x1x64xf32>,
    %qb: tensor<4x2x64xf32>, %kb: tensor<4x2x64xf32>, %ang: tensor<?x?x4x16xf32>,
    %dt: tensor<?x4x?xf32>, %a0: tensor<?x4x16xf32>)
    -> (tensor<?x?x2x4x64xf32>, tensor<?x?x2x4x64xf32>, tensor<?x4x16xf32>) {
  %rq, %rk, %a = ssm.rotary q(%q) k(%k) bias(%qb, %kb) angles(%ang) dt(%dt) initial(%a0)
      {rotary = #ssm.rotary<angles = 16, pairing = half_split>}
      : (tensor<?x?x2x1x64xf32>, tensor<?x?x2x1x64xf32>, tensor<4x2x64xf32>, tensor<4x2x64xf32>,
         tensor<?x?x4x16xf32>, tensor<?x4x?xf32>, tensor<?x4x16xf32>)
      -> (tensor<?x?x2x4x64xf32>, tensor<?x?x2x4x64xf32>, tensor<?x4x16xf32>)
  return %rq, %rk, %a : tensor<?x?x2x4x64xf32>, tensor<?x?x2x4x64xf32>, tensor<?x4x16xf32>
}

// -----

// Angles (b, L, S) shared by all heads: the per-token slice is (b, S) and
// the angle update reads it for every head through its indexing map; the
// cumulative angles are still per head (DT is).
// CHECK-DAG: #[[SHARED:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func.func @shared_angles
// CHECK: scf.for {{.*}} -> (tensor<2x4x8xf32>, tensor<2x16x4x8xf32>)
// CHECK:   %[[SHARED_SLICE:.*]] = tensor.extract_slice %arg4[0, %{{.*}}, 0] [2, 1, 8] [1, 1, 1] : tensor<2x16x8xf32> to tensor<2x1x8xf32>
// CHECK:   tensor.collapse_shape %[[SHARED_SLICE]] {{\[\[}}0, 1], [2]] : tensor<2x1x8xf32> into tensor<2x8xf32>
// CHECK:   linalg.generic {indexing_maps = [#[[SHARED]],
func.func @shared_angles(%q: tensor<2x16x2x32xbf16>, %k: tensor<2x16x2x32xbf16>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x8xf32>,
    %dt: tensor<2x4x16xf32>)
    -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>) {
  %rq, %rk, %a = ssm.rotary q(%q) k(%k) bias(%qb, %kb) angles(%ang) dt(%dt)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<2x16x2x32xbf16>, tensor<2x16x2x32xbf16>, tensor<4x32xf32>, tensor<4x32xf32>,
         tensor<2x16x8xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>)
  return %rq, %rk, %a : tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>
}

// -----

// No rotary angles (S = 0): nothing to scan, q and k are only biased, and
// the final angle is the (empty) initial one.
// CHECK-LABEL: func.func @no_angles
// CHECK-NOT: scf.for
// CHECK-NOT: math.cos
// CHECK: linalg.generic
// CHECK-NOT: math.cos
// CHECK: return %{{.*}}, %{{.*}}, %arg6
func.func @no_angles(%q: tensor<2x16x2x32xf32>, %k: tensor<2x16x2x32xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x0xf32>,
    %dt: tensor<2x4x16xf32>, %a0: tensor<2x4x0xf32>)
    -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x0xf32>) {
  %rq, %rk, %a = ssm.rotary q(%q) k(%k) bias(%qb, %kb) angles(%ang) dt(%dt) initial(%a0)
      {rotary = #ssm.rotary<angles = 0, pairing = adjacent>, wrap_angle}
      : (tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>,
         tensor<2x16x4x0xf32>, tensor<2x4x16xf32>, tensor<2x4x0xf32>)
      -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x0xf32>)
  return %rq, %rk, %a : tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x0xf32>
}
