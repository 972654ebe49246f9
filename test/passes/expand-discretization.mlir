// RUN: mamba3-opt %s -split-input-file -ssm-expand-discretization | FileCheck %s

// CHECK-LABEL: func.func @trapezoid
// CHECK-NOT: ssm.discretize
// CHECK: %[[OUT:[a-z0-9_]+]]:3 = linalg.generic
// CHECK-SAME: ins(%arg0, %arg1, %arg2 : tensor<2x4x?xf32>, tensor<2x4x?xf32>, tensor<2x4x?xbf16>)
// CHECK: ^bb0(%[[ADT:[a-z0-9_]+]]: f32, %[[DT:[a-z0-9_]+]]: f32, %[[TRAP:[a-z0-9_]+]]: bf16,
// CHECK: %[[T32:.*]] = arith.extf %[[TRAP]] : bf16 to f32
// CHECK: %[[NEG:[a-z0-9_]+]] = arith.negf %[[T32]]
// CHECK: %[[E:[a-z0-9_]+]] = math.exp %[[NEG]]
// CHECK: %[[DEN:[a-z0-9_]+]] = arith.addf %{{.*}}, %[[E]]
// CHECK: %[[LAMBDA:[a-z0-9_]+]] = arith.divf %{{.*}}, %[[DEN]]
// CHECK: %[[ONEMINUS:[a-z0-9_]+]] = arith.subf %{{.*}}, %[[LAMBDA]]
// CHECK: %[[BETA:[a-z0-9_]+]] = arith.mulf %[[ONEMINUS]], %[[DT]]
// CHECK: %[[GAMMA:[a-z0-9_]+]] = arith.mulf %[[LAMBDA]], %[[DT]]
// CHECK: linalg.yield %[[ADT]], %[[BETA]], %[[GAMMA]]
// CHECK: return %[[OUT]]#0, %[[OUT]]#1, %[[OUT]]#2
func.func @trapezoid(%adt: tensor<2x4x?xf32>, %dt: tensor<2x4x?xf32>, %trap: tensor<2x4x?xbf16>)
    -> (tensor<2x4x?xf32>, tensor<2x4x?xf32>, tensor<2x4x?xf32>) {
  %la, %ba, %g = ssm.discretize <trapezoid> %adt, %dt, %trap
      : tensor<2x4x?xf32>, tensor<2x4x?xf32>, tensor<2x4x?xbf16>
      -> tensor<2x4x?xf32>, tensor<2x4x?xf32>, tensor<2x4x?xf32>
  return %la, %ba, %g : tensor<2x4x?xf32>, tensor<2x4x?xf32>, tensor<2x4x?xf32>
}

// -----

// Euler: lambda = 1, so beta/alpha = 0 and gamma = DT; Trap is not read.
// CHECK-LABEL: func.func @euler
// CHECK: linalg.generic
// CHECK: ^bb0(%[[ADT:[a-z0-9_]+]]: f32, %[[DT:[a-z0-9_]+]]: f32, %{{.*}}: f32,
// CHECK-NOT: math.exp
// CHECK: %[[ZERO:[a-z0-9_]+]] = arith.constant 0.000000e+00 : f32
// CHECK: linalg.yield %[[ADT]], %[[ZERO]], %[[DT]]
func.func @euler(%adt: tensor<1x2x8xf32>, %dt: tensor<1x2x8xf32>, %trap: tensor<1x2x8xf32>)
    -> (tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>) {
  %la, %ba, %g = ssm.discretize <euler> %adt, %dt, %trap
      : tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>
      -> tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>
  return %la, %ba, %g : tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>
}
