// RUN: mamba3-opt %s -ssm-gpu-schedule -ssm-to-gpu -verify-diagnostics -split-input-file

// Without rotary angles (S = 0) the angle tensors are empty, which the
// kernels' bare-pointer arguments cannot carry.
func.func @no_angles(%q: tensor<2x16x1x32xbf16>, %v: tensor<2x16x4x16xbf16>, %c: tensor<2x4x16xf32>,
    %qb: tensor<4x32xf32>, %ang: tensor<2x16x4x0xf32>)
    -> tensor<2x16x4x16xbf16> {
  // expected-error @+1 {{GPU kernels cannot take empty tensors (MLIR's bare-pointer arguments have no zero-sized form); got 'tensor<2x16x4x0xf32>': give the layer rotary angles (S >= 2) or compile it for the cpu target}}
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      {rotary = #ssm.rotary<angles = 0, pairing = adjacent>}
      : (tensor<2x16x1x32xbf16>, tensor<2x16x1x32xbf16>, tensor<2x16x4x16xbf16>, tensor<2x4x16xf32>,
         tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x0xf32>)
      -> (tensor<2x16x4x16xbf16>, tensor<2x4x0xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0 : tensor<2x16x4x16xbf16>
}
