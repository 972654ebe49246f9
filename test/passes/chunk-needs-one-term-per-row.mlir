// RUN: mamba3-opt %s -ssm-chunk -verify-diagnostics

func.func @rank_two(%q: tensor<2x10x2x3x32xf32>, %v: tensor<2x10x2x3x16xf32>,
    %c: tensor<2x3x10xf32>, %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x2x32xf32>,
    %v0: tensor<2x3x2x16xf32>) -> tensor<2x3x16x32xf32> {
  // expected-error @below {{has rank 2 on its R axis; ssm-chunk needs one term per row: run ssm-mimo-to-matmul first}}
  %y, %h = ssm.recurrence q(%q) k(%q) v(%v) coefficients(%c, %c, %c) initial(%h0, %k0, %v0)
      : (tensor<2x10x2x3x32xf32>, tensor<2x10x2x3x32xf32>, tensor<2x10x2x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x2x32xf32>, tensor<2x3x2x16xf32>)
      -> (tensor<2x10x2x3x16xf32>, tensor<2x3x16x32xf32>)
  return %h : tensor<2x3x16x32xf32>
}
