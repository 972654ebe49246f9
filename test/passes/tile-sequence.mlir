// RUN: mamba3-opt %s -split-input-file -verify-diagnostics -ssm-tile-sequence=chunk-size=32 | FileCheck %s
// RUN: not mamba3-opt %s -split-input-file -ssm-tile-sequence=chunk-size=0 2>&1 | FileCheck %s --check-prefix=SIZE

// 100 tokens in chunks of 32: a loop over chunk starts carrying out and the
// four states (zeros: the scan has no initial states). Each iteration slices
// min(32, 100 - c) tokens out of the token operands along their L axis (1
// for Q/K/V/Angles/Z, 2 for ADT/DT/Trap), runs the chunk's scan from the
// carried states and inserts its out. Biases and D are not sliced.
// CHECK-LABEL: func.func @no_initial_states
// CHECK: %[[OUT0:.*]] = tensor.empty() : tensor<2x100x4x16xbf16>
// CHECK: %[[A0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<2x4x8xf32>)
// CHECK: %[[H0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<2x4x16x32xf32>)
// CHECK: %[[K0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<2x4x32xf32>)
// CHECK: %[[V0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<2x4x16xf32>)
// CHECK: %[[R:.*]]:5 = scf.for %[[C:.*]] = %c0 to %c100 step %c32 iter_args(%[[OUT:.*]] = %[[OUT0]], %[[A:.*]] = %[[A0]], %[[H:.*]] = %[[H0]], %[[K:.*]] = %[[K0]], %[[V:.*]] = %[[V0]])
// CHECK:   %[[REST:.*]] = arith.subi %c100, %[[C]]
// CHECK:   %[[LEN:.*]] = arith.minsi %[[REST]], %c32
// CHECK:   %[[Q:.*]] = tensor.extract_slice %arg0[0, %[[C]], 0, 0] [2, %[[LEN]], 1, 32] [1, 1, 1, 1] : tensor<2x100x1x32xbf16> to tensor<2x?x1x32xbf16>
// CHECK:   tensor.extract_slice %arg3[0, 0, %[[C]]] [2, 4, %[[LEN]]] [1, 1, 1] : tensor<2x4x100xf32> to tensor<2x4x?xf32>
// CHECK:   tensor.extract_slice %arg8[0, %[[C]], 0, 0] [2, %[[LEN]], 4, 8]
// CHECK:   %[[Y:[a-z0-9_]+]], %[[AN:[a-z0-9_]+]], %[[HN:[a-z0-9_]+]], %[[KN:[a-z0-9_]+]], %[[VN:[a-z0-9_]+]] = ssm.scan q(%[[Q]])
// CHECK-SAME: bias(%arg6, %arg7)
// CHECK-SAME: d(%arg9)
// CHECK-SAME: initial(%[[A]], %[[H]], %[[K]], %[[V]])
// CHECK-SAME: -> (tensor<2x?x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
// CHECK:   %[[NEXT:.*]] = tensor.insert_slice %[[Y]] into %[[OUT]][0, %[[C]], 0, 0] [2, %[[LEN]], 4, 16]
// CHECK:   scf.yield %[[NEXT]], %[[AN]], %[[HN]], %[[KN]], %[[VN]]
// CHECK: return %[[R]]#0, %[[R]]#1, %[[R]]#2, %[[R]]#3, %[[R]]#4
func.func @no_initial_states(%q: tensor<2x100x1x32xbf16>, %k: tensor<2x100x1x32xbf16>, %v: tensor<2x100x4x16xbf16>,
    %adt: tensor<2x4x100xf32>, %dt: tensor<2x4x100xf32>, %trap: tensor<2x4x100xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x100x4x8xf32>, %d: tensor<4xf32>,
    %z: tensor<2x100x4x16xbf16>)
    -> (tensor<2x100x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<2x100x1x32xbf16>, tensor<2x100x1x32xbf16>, tensor<2x100x4x16xbf16>, tensor<2x4x100xf32>,
         tensor<2x4x100xf32>, tensor<2x4x100xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x100x4x8xf32>,
         tensor<4xf32>, tensor<2x100x4x16xbf16>)
      -> (tensor<2x100x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<2x100x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>
}

// -----

// 64 tokens: two whole chunks, so the chunk scans have a static length.
// The bf16 ssm state is carried in f32: widened once before the loop,
// narrowed once after it (linalg.copy casts); the chunk scans have no
// state_type.
// CHECK-LABEL: func.func @bf16_state
// CHECK: %[[WIDE:.*]] = linalg.copy ins(%arg12 : tensor<2x4x16x32xbf16>) outs(%{{.*}} : tensor<2x4x16x32xf32>)
// CHECK: %[[R:.*]]:5 = scf.for %[[C:.*]] = %c0 to %c64 step %c32 iter_args(%{{.*}} = %{{.*}}, %[[A:.*]] = %arg11, %[[H:.*]] = %[[WIDE]], %[[K:.*]] = %arg13, %[[V:.*]] = %arg14)
// CHECK-NOT: arith.minsi
// CHECK:   tensor.extract_slice %arg0[0, %[[C]], 0, 0] [2, 32, 1, 32] [1, 1, 1, 1] : tensor<2x64x1x32xbf16> to tensor<2x32x1x32xbf16>
// CHECK:   ssm.scan
// CHECK-SAME: initial(%[[A]], %[[H]], %[[K]], %[[V]])
// CHECK-NOT: state_type
// CHECK-SAME: -> (tensor<2x32x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
// CHECK: %[[NARROW:.*]] = linalg.copy ins(%[[R]]#2 : tensor<2x4x16x32xf32>) outs(%{{.*}} : tensor<2x4x16x32xbf16>)
// CHECK: return %[[R]]#0, %[[NARROW]]
func.func @bf16_state(%q: tensor<2x64x1x32xbf16>, %k: tensor<2x64x1x32xbf16>, %v: tensor<2x64x4x16xbf16>,
    %adt: tensor<2x4x64xf32>, %dt: tensor<2x4x64xf32>, %trap: tensor<2x4x64xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x64x4x8xf32>, %d: tensor<4xf32>,
    %z: tensor<2x64x4x16xbf16>, %a0: tensor<2x4x8xf32>, %h0: tensor<2x4x16x32xbf16>,
    %k0: tensor<2x4x32xf32>, %v0: tensor<2x4x16xf32>)
    -> (tensor<2x64x4x16xbf16>, tensor<2x4x16x32xbf16>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      initial(%a0, %h0, %k0, %v0)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle, state_type = bf16}
      : (tensor<2x64x1x32xbf16>, tensor<2x64x1x32xbf16>, tensor<2x64x4x16xbf16>, tensor<2x4x64xf32>,
         tensor<2x4x64xf32>, tensor<2x4x64xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x64x4x8xf32>,
         tensor<4xf32>, tensor<2x64x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xbf16>,
         tensor<2x4x32xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x64x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xbf16>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0, %r#2 : tensor<2x64x4x16xbf16>, tensor<2x4x16x32xbf16>
}

// -----

// A packed varlen batch is split into its sequences first.
func.func @varlen(%q: tensor<1x20x1x32xbf16>, %k: tensor<1x20x1x32xbf16>, %v: tensor<1x20x4x16xbf16>,
    %adt: tensor<1x4x20xf32>, %dt: tensor<1x4x20xf32>, %trap: tensor<1x4x20xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<1x20x8xf32>,
    %a0: tensor<3x4x8xf32>, %h0: tensor<3x4x16x32xf32>, %k0: tensor<3x4x32xf32>,
    %v0: tensor<3x4x16xf32>, %cu: tensor<4xi32>) -> tensor<1x20x4x16xbf16> {
  // expected-error @+1 {{ssm-tile-sequence: a varlen scan's chunks follow cu_seqlens; run ssm-split-sequences first}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      initial(%a0, %h0, %k0, %v0) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<1x20x1x32xbf16>, tensor<1x20x1x32xbf16>, tensor<1x20x4x16xbf16>, tensor<1x4x20xf32>,
         tensor<1x4x20xf32>, tensor<1x4x20xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<1x20x8xf32>,
         tensor<3x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>, tensor<4xi32>)
      -> (tensor<1x20x4x16xbf16>, tensor<3x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>)
  return %r#0 : tensor<1x20x4x16xbf16>
}

// SIZE: ssm-tile-sequence: chunk-size must be positive, got 0
