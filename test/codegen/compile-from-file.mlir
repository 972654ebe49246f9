// The configuration of a user's ssm.scan (dynamic b and L, MIMO rank 2,
// initial states, no Z, Euler, half-split pairs, no angle wrap) becomes the
// canonical kernel module, whatever the user's function looks like.

// RUN: mamba3-compile %s --emit=mlir-input | FileCheck %s
// CHECK-LABEL: func.func @mamba3_scan(
// CHECK-SAME: %arg0: memref<?x?x2x1x8xf32>
// CHECK-SAME: %arg9: memref<4xf32>, %arg10: memref<?x4x2xf32>, %arg11: memref<?x4x4x8xf32>, %arg12: memref<?x4x2x8xf32>, %arg13: memref<?x4x2x4xf32>,
// CHECK-SAME: %arg14: memref<4x2x4xf32>, %arg15: memref<4x2x4xf32>,
// CHECK-SAME: %arg16: memref<?x?x4x4xf32>,
// CHECK-SAME: %arg20: memref<?x4x2x4xf32>)
// CHECK: ssm.scan
// CHECK-SAME: d(%{{[0-9]+}}) initial(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}) mimo_v(%{{[0-9]+}}) mimo_o(%{{[0-9]+}})
// CHECK-SAME: rank = 2 : i64, rotary = #ssm.rotary<angles = 2, pairing = half_split>, rule = #ssm.discretization<euler>}

// The bundle: manifest, library and the input IR.
// RUN: rm -rf %t && mamba3-compile %s --chunk 8 -o %t | FileCheck %s --check-prefix=LOG
// LOG: mamba3-compile: wrote {{.*}} (scan, config {{[0-9a-f]+}})
// RUN: test -f %t/kernel.so && not test -e %t/kernel.o
// RUN: FileCheck %s --check-prefix=INPUT < %t/kernel.mlir
// INPUT: func.func @mamba3_scan(
// INPUT: ssm.scan
// RUN: FileCheck %s --check-prefix=MANIFEST < %t/manifest.json
// MANIFEST: "format": "mamba3-bundle",
// MANIFEST-NEXT: "format_version": 6,
// MANIFEST-NEXT: "target": "cpu",
// MANIFEST-NEXT: "kind": "scan",
// MANIFEST-NEXT: "library": "kernel.so",
// MANIFEST-NEXT: "library_digest": "fnv1a64:{{[0-9a-f]+}}",
// MANIFEST-NEXT: "entry": "_mlir_ciface_mamba3_scan",
// MANIFEST-NEXT: "calling_convention": "mlir-c-interface: one StridedMemRef descriptor pointer per argument",
// MANIFEST-NEXT: "config_hash": "{{[0-9a-f]+}}",
// MANIFEST-NEXT: "config": {"angles":2,"batch":-1,"bias_dtype":"f32","broadcast_angles":false,"dtype":"f32","final_states":true,"groups":1,"has_d":true,"has_initial_state":true,"has_z":false,"headdim":4,"heads":4,"k_state_dtype":"f32","mimo":true,"norm_eps":1.0000000000000001e-05,"pairing":"half_split","per_rank_outputs":false,"rank":2,"rmsnorm":false,"rule":"euler","seqlen":-1,"state":8,"state_dtype":"f32","trap_dtype":"f32","v_state_dtype":"f32","varlen":false,"wrap_angle":false},
// MANIFEST-NEXT: "chunk_size": 8,
// MANIFEST-NEXT: "pipeline": "ssm-to-cpu{chunk-size=8}",
// MANIFEST-NEXT: "host": {"cpu":"generic","triple":"{{.*}}"},
// MANIFEST-NEXT: "config_string": "kind=scan;batch=?;seqlen=?;heads=4;groups=1;state=8;headdim=4;angles=2;rank=2;mimo=1;d=1;z=0;init=1;wrap=0;broadcast_angles=0;varlen=0;state_dtype=f32;rule=euler;pairing=half_split;dtype=f32;chunk=8",
// MANIFEST-NEXT: "pass_pipeline": "builtin.module(ssm-split-sequences,ssm-tile-sequence{chunk-size=8},ssm-decompose,
// MANIFEST-SAME: ssm-chunk{chunk-size=8}
// MANIFEST-SAME: one-shot-bufferize{
// MANIFEST-SAME: convert-func-to-llvm
// MANIFEST-NEXT: "arguments": [
// MANIFEST-NEXT: {"axes":["b","L","R","G","N"],"dtype":"f32","index":0,"name":"Q","role":"input","shape":[-1,-1,2,1,8]},
// MANIFEST-NEXT: {"axes":["b","L","R","G","N"],"dtype":"f32","index":1,"name":"K","role":"input","shape":[-1,-1,2,1,8]},
// MANIFEST-NEXT: {"axes":["b","L","H","P"],"dtype":"f32","index":2,"name":"V","role":"input","shape":[-1,-1,4,4]},
// MANIFEST-NEXT: {"axes":["b","H","L"],"dtype":"f32","index":3,"name":"ADT","role":"input","shape":[-1,4,-1]},
// MANIFEST-NEXT: {"axes":["b","H","L"],"dtype":"f32","index":4,"name":"DT","role":"input","shape":[-1,4,-1]},
// MANIFEST-NEXT: {"axes":["b","H","L"],"dtype":"f32","index":5,"name":"Trap","role":"input","shape":[-1,4,-1]},
// MANIFEST-NEXT: {"axes":["H","R","N"],"dtype":"f32","index":6,"name":"Q_bias","role":"input","shape":[4,2,8]},
// MANIFEST-NEXT: {"axes":["H","R","N"],"dtype":"f32","index":7,"name":"K_bias","role":"input","shape":[4,2,8]},
// MANIFEST-NEXT: {"axes":["b","L","H","S"],"dtype":"f32","index":8,"name":"Angles","role":"input","shape":[-1,-1,4,2]},
// MANIFEST-NEXT: {"axes":["H"],"dtype":"f32","index":9,"name":"D","role":"input","shape":[4]},
// MANIFEST-NEXT: {"axes":["b","H","S"],"dtype":"f32","index":10,"name":"angle0","role":"input","shape":[-1,4,2]},
// MANIFEST-NEXT: {"axes":["b","H","P","N"],"dtype":"f32","index":11,"name":"ssm0","role":"input","shape":[-1,4,4,8]},
// MANIFEST-NEXT: {"axes":["b","H","R","N"],"dtype":"f32","index":12,"name":"k0","role":"input","shape":[-1,4,2,8]},
// MANIFEST-NEXT: {"axes":["b","H","R","P"],"dtype":"f32","index":13,"name":"v0","role":"input","shape":[-1,4,2,4]},
// MANIFEST-NEXT: {"axes":["H","R","P"],"dtype":"f32","index":14,"name":"mimo_v","role":"input","shape":[4,2,4]},
// MANIFEST-NEXT: {"axes":["H","R","P"],"dtype":"f32","index":15,"name":"mimo_o","role":"input","shape":[4,2,4]},
// MANIFEST-NEXT: {"axes":["b","L","H","P"],"dtype":"f32","index":16,"name":"out","role":"output","shape":[-1,-1,4,4]},
// MANIFEST-NEXT: {"axes":["b","H","S"],"dtype":"f32","index":17,"name":"angle","role":"output","shape":[-1,4,2]},
// MANIFEST-NEXT: {"axes":["b","H","P","N"],"dtype":"f32","index":18,"name":"ssm","role":"output","shape":[-1,4,4,8]},
// MANIFEST-NEXT: {"axes":["b","H","R","N"],"dtype":"f32","index":19,"name":"k","role":"output","shape":[-1,4,2,8]},
// MANIFEST-NEXT: {"axes":["b","H","R","P"],"dtype":"f32","index":20,"name":"v","role":"output","shape":[-1,4,2,4]}
// MANIFEST-NEXT: ]
// MANIFEST-NEXT: }

func.func @my_layer(%q: tensor<?x?x2x1x8xf32>, %k: tensor<?x?x2x1x8xf32>,
    %v: tensor<?x?x4x4xf32>, %adt: tensor<?x4x?xf32>, %dt: tensor<?x4x?xf32>,
    %trap: tensor<?x4x?xf32>, %qb: tensor<4x2x8xf32>, %kb: tensor<4x2x8xf32>,
    %ang: tensor<?x?x4x2xf32>, %d: tensor<4xf32>, %a0: tensor<?x4x2xf32>,
    %h0: tensor<?x4x4x8xf32>, %k0: tensor<?x4x2x8xf32>, %v0: tensor<?x4x2x4xf32>,
    %mv: tensor<4x2x4xf32>, %mo: tensor<4x2x4xf32>) -> tensor<?x?x4x4xf32> {
  %out, %a, %h, %kk, %vv = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) d(%d) initial(%a0, %h0, %k0, %v0)
      mimo_v(%mv) mimo_o(%mo)
      {rule = #ssm.discretization<euler>, rank = 2,
       rotary = #ssm.rotary<angles = 2, pairing = half_split>}
      : (tensor<?x?x2x1x8xf32>, tensor<?x?x2x1x8xf32>, tensor<?x?x4x4xf32>,
         tensor<?x4x?xf32>, tensor<?x4x?xf32>, tensor<?x4x?xf32>,
         tensor<4x2x8xf32>, tensor<4x2x8xf32>, tensor<?x?x4x2xf32>, tensor<4xf32>,
         tensor<?x4x2xf32>, tensor<?x4x4x8xf32>, tensor<?x4x2x8xf32>,
         tensor<?x4x2x4xf32>, tensor<4x2x4xf32>, tensor<4x2x4xf32>)
      -> (tensor<?x?x4x4xf32>, tensor<?x4x2xf32>, tensor<?x4x4x8xf32>,
          tensor<?x4x2x8xf32>, tensor<?x4x2x4xf32>)
  return %out : tensor<?x?x4x4xf32>
}
