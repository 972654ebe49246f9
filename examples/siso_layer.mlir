// A Mamba-3 SISO layer core with the shapes of the golden case `siso_a`:
// batch 2, 200 tokens, 4 heads sharing one group of B/C (G = 1), state N = 32,
// head dim P = 16, S = 8 rotary angles per head, trapezoid rule, skip D and
// gate Z. In fp32 so that the CPU path can be checked to 1e-5.
func.func @layer(%q: tensor<2x200x1x32xf32>, %k: tensor<2x200x1x32xf32>,
                 %v: tensor<2x200x4x16xf32>, %adt: tensor<2x4x200xf32>,
                 %dt: tensor<2x4x200xf32>, %trap: tensor<2x4x200xf32>,
                 %q_bias: tensor<4x32xf32>, %k_bias: tensor<4x32xf32>,
                 %angles: tensor<2x200x4x8xf32>, %d: tensor<4xf32>,
                 %z: tensor<2x200x4x16xf32>)
    -> (tensor<2x200x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
        tensor<2x4x32xf32>, tensor<2x4x16xf32>) {
  %out, %angle, %ssm, %k_last, %v_last = ssm.scan
      q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%q_bias, %k_bias) angles(%angles) d(%d) z(%z)
      {rule = #ssm.discretization<trapezoid>,
       rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<2x200x1x32xf32>, tensor<2x200x1x32xf32>, tensor<2x200x4x16xf32>,
         tensor<2x4x200xf32>, tensor<2x4x200xf32>, tensor<2x4x200xf32>,
         tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x200x4x8xf32>,
         tensor<4xf32>, tensor<2x200x4x16xf32>)
      -> (tensor<2x200x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
          tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %out, %angle, %ssm, %k_last, %v_last
      : tensor<2x200x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
        tensor<2x4x32xf32>, tensor<2x4x16xf32>
}
