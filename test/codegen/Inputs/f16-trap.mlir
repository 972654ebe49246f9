// The kernel interface takes Trap in f32 or bf16, not f16 (Q, K, V, Z and out
// follow the data type).
func.func @layer(%q: tensor<1x4x1x8xf32>, %v: tensor<1x4x1x4xf32>, %bhl: tensor<1x1x4xf32>,
                 %trap: tensor<1x1x4xf16>, %b: tensor<1x8xf32>, %ang: tensor<1x4x1x2xf32>) {
  %0:5 = ssm.scan q(%q) k(%q) v(%v) adt(%bhl) dt(%bhl) trap(%trap) bias(%b, %b) angles(%ang)
      {rotary = #ssm.rotary<angles = 2, pairing = adjacent>}
      : (tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x4xf32>, tensor<1x1x4xf32>,
         tensor<1x1x4xf32>, tensor<1x1x4xf16>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x4x1x2xf32>)
      -> (tensor<1x4x1x4xf32>, tensor<1x1x2xf32>, tensor<1x1x4x8xf32>, tensor<1x1x8xf32>, tensor<1x1x4xf32>)
  return
}
