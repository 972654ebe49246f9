// RUN: mamba3-opt %s -ssm-lower-recurrence | FileCheck %s

// Token by token: H_t = exp(la_t) (H + ba_t sum v_{t-1} k_{t-1}^T) + g_t sum v_t k_t^T,
// y_t = H_t q_t, over the R = 2 terms of each token.
// CHECK-LABEL: func.func @two_terms_per_token
// CHECK: %[[L:.*]] = tensor.dim %arg3, %c2
// CHECK: %[[LOOP:.*]]:4 = scf.for %[[T:.*]] = %c0 to %[[L]] step %c1 iter_args(%[[Y:.*]] = %{{.*}}, %[[H:.*]] = %arg6, %[[KP:.*]] = %arg7, %[[VP:.*]] = %arg8)
// CHECK:   %[[ROW:.*]] = arith.muli %[[T]], %c1
// CHECK:   %[[QS:.*]] = tensor.extract_slice %arg0[0, %[[ROW]], 0, 0, 0] [2, 1, 2, 3, 32]
// CHECK:   %[[QT:.*]] = tensor.collapse_shape %[[QS]] {{\[}}[0], [1, 2], [3], [4]] : tensor<2x1x2x3x32xf32> into tensor<2x2x3x32xf32>
// CHECK:   %[[PREV:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %[[VP]], %[[KP]] : {{.*}}) outs(%[[H]] : tensor<2x3x16x32xf32>)
// CHECK:   %[[DEC:.*]] = linalg.generic {{.*}} outs(%[[PREV]] : tensor<2x3x16x32xf32>)
// CHECK:     math.exp
// CHECK:   %[[NEXT:.*]] = linalg.generic {{.*}} outs(%[[DEC]] : tensor<2x3x16x32xf32>)
// CHECK:   %[[YT:.*]] = linalg.generic {{.*}} ins(%[[QT]], %[[NEXT]] : tensor<2x2x3x32xf32>, tensor<2x3x16x32xf32>)
// CHECK:   tensor.expand_shape %[[YT]] {{\[}}[0], [1, 2], [3], [4]] output_shape [2, 1, 2, 3, 16]
// CHECK:   tensor.insert_slice %{{.*}} into %[[Y]][0, %[[ROW]], 0, 0, 0] [2, 1, 2, 3, 16]
// CHECK:   scf.yield %{{.*}}, %[[NEXT]]
// CHECK: return %[[LOOP]]#1
func.func @two_terms_per_token(%q: tensor<2x10x2x3x32xf32>, %k: tensor<2x10x2x3x32xf32>, %v: tensor<2x10x2x3x16xf32>,
    %la: tensor<2x3x10xf32>, %ba: tensor<2x3x10xf32>, %g: tensor<2x3x10xf32>,
    %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x2x32xf32>, %v0: tensor<2x3x2x16xf32>) -> tensor<2x3x16x32xf32> {
  %y, %h = ssm.recurrence q(%q) k(%k) v(%v) coefficients(%la, %ba, %g) initial(%h0, %k0, %v0)
      : (tensor<2x10x2x3x32xf32>, tensor<2x10x2x3x32xf32>, tensor<2x10x2x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x2x32xf32>, tensor<2x3x2x16xf32>)
      -> (tensor<2x10x2x3x16xf32>, tensor<2x3x16x32xf32>)
  return %h : tensor<2x3x16x32xf32>
}
