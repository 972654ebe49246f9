// RUN: mamba3-opt %s -split-input-file -ssm-mimo-to-matmul | FileCheck %s

// Rank 4 over 10 tokens becomes rank 1 over 40 term rows, 4 terms per token.
// CHECK-LABEL: func.func @rank_four
// CHECK: %[[QF:.*]] = tensor.collapse_shape %arg0 {{\[}}[0], [1, 2], [3], [4]] : tensor<2x10x4x3x32xf32> into tensor<2x40x3x32xf32>
// CHECK: %[[Q:.*]] = tensor.expand_shape %[[QF]] {{\[}}[0], [1, 2], [3], [4]] output_shape [2, 40, 1, 3, 32]
// CHECK: %[[Y:.*]], %[[H:.*]] = ssm.recurrence q(%[[Q]]) {{.*}} {terms_per_token = 4 : i64}
// CHECK-SAME: -> (tensor<2x40x1x3x16xf32>, tensor<2x3x16x32xf32>)
// CHECK: %[[YF:.*]] = tensor.collapse_shape %[[Y]] {{\[}}[0], [1, 2], [3], [4]] : tensor<2x40x1x3x16xf32> into tensor<2x40x3x16xf32>
// CHECK: %[[YR:.*]] = tensor.expand_shape %[[YF]] {{\[}}[0], [1, 2], [3], [4]] output_shape [2, 10, 4, 3, 16]
// CHECK: return %[[YR]], %[[H]]
func.func @rank_four(%q: tensor<2x10x4x3x32xf32>, %k: tensor<2x10x4x3x32xf32>, %v: tensor<2x10x4x3x16xf32>,
    %la: tensor<2x3x10xf32>, %ba: tensor<2x3x10xf32>, %g: tensor<2x3x10xf32>,
    %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x4x32xf32>, %v0: tensor<2x3x4x16xf32>)
    -> (tensor<2x10x4x3x16xf32>, tensor<2x3x16x32xf32>) {
  %y, %h = ssm.recurrence q(%q) k(%k) v(%v) coefficients(%la, %ba, %g) initial(%h0, %k0, %v0)
      : (tensor<2x10x4x3x32xf32>, tensor<2x10x4x3x32xf32>, tensor<2x10x4x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x4x32xf32>, tensor<2x3x4x16xf32>)
      -> (tensor<2x10x4x3x16xf32>, tensor<2x3x16x32xf32>)
  return %y, %h : tensor<2x10x4x3x16xf32>, tensor<2x3x16x32xf32>
}

// -----

// Rank 1 is already one term per row: nothing to do.
// CHECK-LABEL: func.func @rank_one_untouched
// CHECK-NOT: tensor.collapse_shape
// CHECK: ssm.recurrence
// CHECK-NOT: terms_per_token
func.func @rank_one_untouched(%q: tensor<?x?x1x3x32xf32>, %v: tensor<?x?x1x3x16xf32>,
    %c: tensor<?x3x?xf32>, %h0: tensor<?x3x16x32xf32>, %k0: tensor<?x3x1x32xf32>,
    %v0: tensor<?x3x1x16xf32>) -> tensor<?x3x16x32xf32> {
  %y, %h = ssm.recurrence q(%q) k(%q) v(%v) coefficients(%c, %c, %c) initial(%h0, %k0, %v0)
      : (tensor<?x?x1x3x32xf32>, tensor<?x?x1x3x32xf32>, tensor<?x?x1x3x16xf32>,
         tensor<?x3x?xf32>, tensor<?x3x?xf32>, tensor<?x3x?xf32>,
         tensor<?x3x16x32xf32>, tensor<?x3x1x32xf32>, tensor<?x3x1x16xf32>)
      -> (tensor<?x?x1x3x16xf32>, tensor<?x3x16x32xf32>)
  return %h : tensor<?x3x16x32xf32>
}
