// RUN: mamba3-opt %s -split-input-file -ssm-chunk=chunk-size=16 | FileCheck %s

// CHECK-LABEL: func.func @siso_chunks
// CHECK-NOT: ssm.recurrence
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : index
// CHECK-DAG: %[[L:.*]] = tensor.dim %arg3, %c2
// CHECK: %[[LOOP:.*]]:4 = scf.for %[[C0:.*]] = %{{.*}} to %[[L]] step %[[C16]] iter_args(%[[Y:.*]] = %{{.*}}, %[[H:.*]] = %arg6, %[[KP:.*]] = %arg7, %[[VP:.*]] = %arg8)
// The last chunk may be short.
// CHECK:   %[[REST:.*]] = arith.subi %[[L]], %[[C0]]
// CHECK:   %[[N:.*]] = arith.minsi %[[REST]], %[[C16]]
// CHECK:   tensor.extract_slice %arg3[0, 0, %[[C0]]] [%{{.*}}, 3, %[[N]]]
// Cumulative log decay inside the chunk.
// CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK:     arith.cmpi ule
// Entering state with the previous token's pending term.
// CHECK:   %[[ENTER:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %[[VP]], %[[KP]] : {{.*}}) outs(%[[H]] : tensor<?x3x16x32xf32>)
// Intra-chunk scores q k^T, then the masked trapezoid weights.
// CHECK:   linalg.generic {{.*}} outs(%{{.*}} : tensor<?x3x?x?xf32>)
// CHECK:   linalg.generic {{.*}} outs(%{{.*}} : tensor<?x3x?x?xf32>)
// CHECK:     math.exp
// CHECK:     arith.select
// ((q k^T) o W) v, then + exp(a_t) q H'^T
// CHECK:   linalg.generic {{.*}} outs(%{{.*}} : tensor<?x?x3x16xf32>)
// CHECK:   linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %[[ENTER]] : {{.*}}) outs(%{{.*}} : tensor<?x?x3x16xf32>)
// State update: (P x C) . (C x N).
// CHECK:   linalg.generic {{.*}} outs(%[[ENTER]] : tensor<?x3x16x32xf32>)
// CHECK:   %[[NEXT:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]
// CHECK:   linalg.transpose {{.*}} outs(%[[KP]] : tensor<?x3x1x32xf32>)
// CHECK:   linalg.transpose {{.*}} outs(%[[VP]] : tensor<?x3x1x16xf32>)
// CHECK:   tensor.insert_slice %{{.*}} into %[[Y]][0, %{{.*}}, 0, 0, 0]
// CHECK:   scf.yield %{{.*}}, %[[NEXT]]
// CHECK: return %[[LOOP]]#0, %[[LOOP]]#1
func.func @siso_chunks(%q: tensor<?x?x1x3x32xf32>, %k: tensor<?x?x1x3x32xf32>, %v: tensor<?x?x1x3x16xf32>,
    %la: tensor<?x3x?xf32>, %ba: tensor<?x3x?xf32>, %g: tensor<?x3x?xf32>,
    %h0: tensor<?x3x16x32xf32>, %k0: tensor<?x3x1x32xf32>, %v0: tensor<?x3x1x16xf32>)
    -> (tensor<?x?x1x3x16xf32>, tensor<?x3x16x32xf32>) {
  %y, %h = ssm.recurrence q(%q) k(%k) v(%v) coefficients(%la, %ba, %g) initial(%h0, %k0, %v0)
      : (tensor<?x?x1x3x32xf32>, tensor<?x?x1x3x32xf32>, tensor<?x?x1x3x16xf32>,
         tensor<?x3x?xf32>, tensor<?x3x?xf32>, tensor<?x3x?xf32>,
         tensor<?x3x16x32xf32>, tensor<?x3x1x32xf32>, tensor<?x3x1x16xf32>)
      -> (tensor<?x?x1x3x16xf32>, tensor<?x3x16x32xf32>)
  return %y, %h : tensor<?x?x1x3x16xf32>, tensor<?x3x16x32xf32>
}

// -----

// MIMO after ssm-mimo-to-matmul: 4 terms per token, so a 16-token chunk is a
// 64-row operand and the term rows map to tokens by row / 4.
// CHECK-LABEL: func.func @mimo_terms
// CHECK: scf.for
// CHECK:   %[[NT:.*]] = arith.muli %{{.*}}, %c4
// CHECK:   tensor.extract_slice %arg0[0, %{{.*}}, 0, 0, 0] [2, %[[NT]], 1, 3, 32]
// CHECK:   arith.divui %{{.*}}, %c4
// CHECK:   tensor.extract_slice %{{.*}} [2, 4, 3, 32]
func.func @mimo_terms(%q: tensor<2x40x1x3x32xf32>, %v: tensor<2x40x1x3x16xf32>,
    %c: tensor<2x3x10xf32>, %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x4x32xf32>,
    %v0: tensor<2x3x4x16xf32>) -> tensor<2x3x16x32xf32> {
  %y, %h = ssm.recurrence q(%q) k(%q) v(%v) coefficients(%c, %c, %c) initial(%h0, %k0, %v0)
      {terms_per_token = 4}
      : (tensor<2x40x1x3x32xf32>, tensor<2x40x1x3x32xf32>, tensor<2x40x1x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x4x32xf32>, tensor<2x3x4x16xf32>)
      -> (tensor<2x40x1x3x16xf32>, tensor<2x3x16x32xf32>)
  return %h : tensor<2x3x16x32xf32>
}
