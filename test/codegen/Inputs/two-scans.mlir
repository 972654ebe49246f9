func.func @two(%q: tensor<1x4x1x8xf32>, %v: tensor<1x4x1x4xf32>, %bhl: tensor<1x1x4xf32>,
               %b: tensor<1x8xf32>, %ang: tensor<1x4x1x2xf32>) {
  %0:5 = ssm.scan q(%q) k(%q) v(%v) adt(%bhl) dt(%bhl) trap(%bhl) bias(%b, %b) angles(%ang)
      {rotary = #ssm.rotary<angles = 2, pairing = adjacent>}
      : (tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x4xf32>, tensor<1x1x4xf32>,
         tensor<1x1x4xf32>, tensor<1x1x4xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x4x1x2xf32>)
      -> (tensor<1x4x1x4xf32>, tensor<1x1x2xf32>, tensor<1x1x4x8xf32>, tensor<1x1x8xf32>, tensor<1x1x4xf32>)
  %1:5 = ssm.scan q(%q) k(%q) v(%v) adt(%bhl) dt(%bhl) trap(%bhl) bias(%b, %b) angles(%ang)
      {rotary = #ssm.rotary<angles = 2, pairing = adjacent>}
      : (tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x4xf32>, tensor<1x1x4xf32>,
         tensor<1x1x4xf32>, tensor<1x1x4xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x4x1x2xf32>)
      -> (tensor<1x4x1x4xf32>, tensor<1x1x2xf32>, tensor<1x1x4x8xf32>, tensor<1x1x8xf32>, tensor<1x1x4xf32>)
  return
}
