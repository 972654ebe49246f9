// RUN: mamba3-opt %s --ssm-cpu-strided-copy-to-linalg | FileCheck %s

// Copies between identity layouts stay (they become llvm.memcpy); the others
// become linalg.copy, because MemRefToLLVM would lower them to a call of the
// MLIR runtime's memrefCopy, which kernel bundles do not ship.

// CHECK-LABEL: func.func @copies
// CHECK-SAME: (%[[A:.*]]: memref<4x8xf32>, %[[B:.*]]: memref<4x8xf32>, %[[C:.*]]: memref<16x16xf32>)
// CHECK: memref.copy %[[A]], %[[B]] : memref<4x8xf32> to memref<4x8xf32>
// CHECK: %[[S:.*]] = memref.subview %[[C]]
// CHECK-NOT: memref.copy
// CHECK: linalg.copy ins(%[[S]] : memref<4x8xf32, strided<[16, 1]>>) outs(%[[A]] : memref<4x8xf32>)
// CHECK-NOT: memref.copy
// CHECK: linalg.copy ins(%[[A]] : memref<4x8xf32>) outs(%[[S]] : memref<4x8xf32, strided<[16, 1]>>)
func.func @copies(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %c: memref<16x16xf32>) {
  memref.copy %a, %b : memref<4x8xf32> to memref<4x8xf32>
  %s = memref.subview %c[0, 0] [4, 8] [1, 1]
      : memref<16x16xf32> to memref<4x8xf32, strided<[16, 1]>>
  memref.copy %s, %a : memref<4x8xf32, strided<[16, 1]>> to memref<4x8xf32>
  memref.copy %a, %s : memref<4x8xf32> to memref<4x8xf32, strided<[16, 1]>>
  return
}
