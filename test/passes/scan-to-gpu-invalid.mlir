// RUN: mamba3-opt %s -ssm-to-gpu -verify-diagnostics

func.func @dynamic_batch(%q: tensor<?x16x1x32xf32>, %v: tensor<?x16x4x16xf32>, %c: tensor<?x4x16xf32>,
    %qb: tensor<4x32xf32>, %ang: tensor<?x16x4x8xf32>)
    -> tensor<?x16x4x16xf32> {
  // expected-error @+1 {{ssm-to-gpu needs static shapes}}
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<?x16x1x32xf32>, tensor<?x16x1x32xf32>, tensor<?x16x4x16xf32>, tensor<?x4x16xf32>,
         tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<?x16x4x8xf32>)
      -> (tensor<?x16x4x16xf32>, tensor<?x4x8xf32>, tensor<?x4x16x32xf32>, tensor<?x4x32xf32>, tensor<?x4x16xf32>)
  return %r#0 : tensor<?x16x4x16xf32>
}
