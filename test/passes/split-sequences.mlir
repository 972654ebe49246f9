// RUN: mamba3-opt %s -split-input-file -ssm-split-sequences | FileCheck %s
// RUN: not mamba3-opt %s -split-input-file -ssm-decompose 2>&1 | FileCheck %s --check-prefix=DECOMPOSE

// A packed batch of 3 sequences: a loop over them reads each token range
// from cu_seqlens, slices the sequence (dynamic L) and its initial states,
// runs a batch-1 scan without cu_seqlens and inserts the results.
// CHECK-LABEL: func.func @varlen_scan
// CHECK-SAME: %[[CU:[a-z0-9_]+]]: tensor<4xi32>
// CHECK: %[[OUT0:.*]] = tensor.empty() : tensor<1x20x4x16xbf16>
// CHECK: %[[SSM0:.*]] = tensor.empty() : tensor<3x4x16x32xf32>
// CHECK: %[[R:.*]]:5 = scf.for %[[S:.*]] = %c0{{.*}} to %c3 step %c1 iter_args(%[[OUT:.*]] = %[[OUT0]], %{{.*}} = %{{.*}}, %[[SSM:.*]] = %[[SSM0]], %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}})
// CHECK:   %[[C0:.*]] = tensor.extract %[[CU]][%[[S]]] : tensor<4xi32>
// CHECK:   %[[START:.*]] = arith.index_cast %[[C0]] : i32 to index
// CHECK:   %[[NEXT:.*]] = arith.addi %[[S]], %c1
// CHECK:   tensor.extract %[[CU]][%[[NEXT]]]
// CHECK:   %[[LEN:.*]] = arith.subi
// CHECK:   %[[Q:.*]] = tensor.extract_slice %arg0[0, %[[START]], 0, 0] [1, %[[LEN]], 2, 32] [1, 1, 1, 1] : tensor<1x20x2x32xbf16> to tensor<1x?x2x32xbf16>
// CHECK:   tensor.extract_slice %arg3[0, 0, %[[START]]] [1, 4, %[[LEN]]] [1, 1, 1] : tensor<1x4x20xf32> to tensor<1x4x?xf32>
// CHECK:   %[[H0:.*]] = tensor.extract_slice %arg12[%[[S]], 0, 0, 0] [1, 4, 16, 32] [1, 1, 1, 1] : tensor<3x4x16x32xf32> to tensor<1x4x16x32xf32>
// CHECK:   %[[YS:[a-z0-9_]+]], %{{.*}}, %[[HS:[a-z0-9_]+]], %{{.*}}, %{{.*}} = ssm.scan q(%[[Q]])
// CHECK-SAME: initial(%{{.*}}, %[[H0]], %{{.*}}, %{{.*}}) {rotary
// CHECK-NOT: cu_seqlens
// CHECK-SAME: -> (tensor<1x?x4x16xbf16>, tensor<1x4x8xf32>, tensor<1x4x16x32xf32>, tensor<1x4x32xf32>, tensor<1x4x16xf32>)
// CHECK:   tensor.insert_slice %[[YS]] into %[[OUT]][0, %[[START]], 0, 0] [1, %{{.*}}, 4, 16]
// CHECK:   tensor.insert_slice %[[HS]] into %[[SSM]][%[[S]], 0, 0, 0] [1, 4, 16, 32]
// CHECK:   scf.yield
// CHECK: return %[[R]]#0, %[[R]]#2
// DECOMPOSE: 'ssm.scan' op has cu_seqlens: run ssm-split-sequences before ssm-decompose
func.func @varlen_scan(%q: tensor<1x20x2x32xbf16>, %k: tensor<1x20x2x32xbf16>, %v: tensor<1x20x4x16xbf16>,
    %adt: tensor<1x4x20xf32>, %dt: tensor<1x4x20xf32>, %trap: tensor<1x4x20xf32>,
    %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<1x20x8xf32>, %d: tensor<4xf32>,
    %z: tensor<1x20x4x16xbf16>, %a0: tensor<3x4x8xf32>, %h0: tensor<3x4x16x32xf32>,
    %k0: tensor<3x4x32xf32>, %v0: tensor<3x4x16xf32>, %cu: tensor<4xi32>)
    -> (tensor<1x20x4x16xbf16>, tensor<3x4x16x32xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      initial(%a0, %h0, %k0, %v0) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<1x20x2x32xbf16>, tensor<1x20x2x32xbf16>, tensor<1x20x4x16xbf16>, tensor<1x4x20xf32>,
         tensor<1x4x20xf32>, tensor<1x4x20xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<1x20x8xf32>,
         tensor<4xf32>, tensor<1x20x4x16xbf16>, tensor<3x4x8xf32>, tensor<3x4x16x32xf32>,
         tensor<3x4x32xf32>, tensor<3x4x16xf32>, tensor<4xi32>)
      -> (tensor<1x20x4x16xbf16>, tensor<3x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>)
  return %r#0, %r#2 : tensor<1x20x4x16xbf16>, tensor<3x4x16x32xf32>
}

// -----

// Dynamic sequence count and length: the state batch is cu_seqlens' size - 1.
// CHECK-LABEL: func.func @varlen_dynamic
// CHECK: %[[N:.*]] = tensor.dim %arg9, %c0 : tensor<?xi32>
// CHECK: %[[SEQS:.*]] = arith.subi %[[N]], %c1
// CHECK: %[[L:.*]] = tensor.dim %arg2, %c1{{.*}} : tensor<1x?x2x8xf32>
// CHECK: tensor.empty(%[[L]]) : tensor<1x?x2x8xf32>
// CHECK: tensor.empty(%[[SEQS]]) : tensor<?x2x4xf32>
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %[[SEQS]] step %c1
// CHECK: ssm.scan
// CHECK-SAME: -> (tensor<1x?x2x8xf32>, tensor<1x2x4xf32>, tensor<1x2x8x16xf32>, tensor<1x2x16xf32>, tensor<1x2x8xf32>)
func.func @varlen_dynamic(%q: tensor<1x?x1x16xf32>, %k: tensor<1x?x1x16xf32>, %v: tensor<1x?x2x8xf32>,
    %adt: tensor<1x2x?xf32>, %dt: tensor<1x2x?xf32>, %trap: tensor<1x2x?xf32>,
    %qb: tensor<2x16xf32>, %kb: tensor<2x16xf32>, %ang: tensor<1x?x2x4xf32>, %cu: tensor<?xi32>)
    -> tensor<?x2x8x16xf32> {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 4, pairing = adjacent>}
      : (tensor<1x?x1x16xf32>, tensor<1x?x1x16xf32>, tensor<1x?x2x8xf32>, tensor<1x2x?xf32>,
         tensor<1x2x?xf32>, tensor<1x2x?xf32>, tensor<2x16xf32>, tensor<2x16xf32>, tensor<1x?x2x4xf32>,
         tensor<?xi32>)
      -> (tensor<1x?x2x8xf32>, tensor<?x2x4xf32>, tensor<?x2x8x16xf32>, tensor<?x2x16xf32>, tensor<?x2x8xf32>)
  return %r#2 : tensor<?x2x8x16xf32>
}
