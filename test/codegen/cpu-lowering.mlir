// RUN: mamba3-opt %s --ssm-cpu-lowering | FileCheck %s \
// RUN:   --implicit-check-not=memrefCopy --implicit-check-not=linalg. \
// RUN:   --implicit-check-not=scf. --implicit-check-not=memref. \
// RUN:   --implicit-check-not=bufferization. --implicit-check-not=tensor. \
// RUN:   --implicit-check-not=math.
// RUN: mamba3-opt %s --pass-pipeline='builtin.module(ssm-cpu-lowering)' \
// RUN:   | FileCheck %s --check-prefix=LLVMONLY
// LLVMONLY-NOT: func.func

// The host lowering alone, on the kind of IR ssm-expand leaves: linalg on
// tensors read from memref arguments, math the spec needs (tanh, exp, floor,
// cos, sin), a loop over chunks that writes slices of a loop-carried tensor
// and a per-chunk scratch tensor (freed every iteration), and the result
// written into a memref argument.

#id = affine_map<(d0, d1) -> (d0, d1)>

// CHECK-DAG: llvm.func @malloc(i64) -> !llvm.ptr
// CHECK-DAG: llvm.func @free(!llvm.ptr)
// CHECK-LABEL: llvm.func @kernel(
// CHECK: llvm.intr.tanh
// CHECK: llvm.intr.exp
// CHECK: llvm.intr.floor
// CHECK: llvm.intr.cos
// CHECK: llvm.intr.sin
// CHECK: llvm.cond_br
// CHECK: llvm.call @malloc
// CHECK: llvm.call @free
// CHECK: llvm.return
// CHECK-LABEL: llvm.func @_mlir_ciface_kernel(%arg0: !llvm.ptr, %arg1: !llvm.ptr)
// CHECK: llvm.call @kernel(
func.func @kernel(%x: memref<?x8xf32>, %y: memref<?x8xf32>)
    attributes {llvm.emit_c_interface} {
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  %t = bufferization.to_tensor %x restrict : memref<?x8xf32> to tensor<?x8xf32>
  %n = tensor.dim %t, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%n) : tensor<?x8xf32>
  %m = linalg.generic {indexing_maps = [#id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%t : tensor<?x8xf32>) outs(%e : tensor<?x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %th = math.tanh %a : f32
    %ex = math.exp %th : f32
    %fl = math.floor %ex : f32
    %co = math.cos %fl : f32
    %si = math.sin %co : f32
    linalg.yield %si : f32
  } -> tensor<?x8xf32>
  %r = scf.for %i = %c0 to %n step %c4 iter_args(%acc = %m) -> tensor<?x8xf32> {
    %rem = arith.subi %n, %i : index
    %len = arith.minsi %rem, %c4 : index
    %chunk = tensor.extract_slice %acc[%i, 0] [%len, 8] [1, 1]
        : tensor<?x8xf32> to tensor<?x8xf32>
    %scratch = tensor.empty(%len) : tensor<?x8xf32>
    %twice = linalg.add ins(%chunk, %chunk : tensor<?x8xf32>, tensor<?x8xf32>)
        outs(%scratch : tensor<?x8xf32>) -> tensor<?x8xf32>
    %ins = tensor.insert_slice %twice into %acc[%i, 0] [%len, 8] [1, 1]
        : tensor<?x8xf32> into tensor<?x8xf32>
    scf.yield %ins : tensor<?x8xf32>
  }
  bufferization.materialize_in_destination %r in restrict writable %y
      : (tensor<?x8xf32>, memref<?x8xf32>) -> ()
  return
}
