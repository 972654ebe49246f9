// Q_bias in f32 and K_bias in bf16: the kernel interface takes the two
// biases in one type.
func.func @layer(%q: tensor<1x4x1x8xf32>, %v: tensor<1x4x1x4xf32>, %bhl: tensor<1x1x4xf32>,
                 %qb: tensor<1x8xf32>, %kb: tensor<1x8xbf16>, %ang: tensor<1x4x1x2xf32>) {
  %0:5 = ssm.scan q(%q) k(%q) v(%v) adt(%bhl) dt(%bhl) trap(%bhl) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 2, pairing = adjacent>}
      : (tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x4xf32>, tensor<1x1x4xf32>,
         tensor<1x1x4xf32>, tensor<1x1x4xf32>, tensor<1x8xf32>, tensor<1x8xbf16>, tensor<1x4x1x2xf32>)
      -> (tensor<1x4x1x4xf32>, tensor<1x1x2xf32>, tensor<1x1x4x8xf32>, tensor<1x1x8xf32>, tensor<1x1x4xf32>)
  return
}
