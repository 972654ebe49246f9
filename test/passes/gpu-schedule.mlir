// RUN: mamba3-opt %s -split-input-file -ssm-gpu-schedule | FileCheck %s
// RUN: mamba3-opt %s -split-input-file -ssm-gpu-schedule=sm-count=2 | FileCheck %s --check-prefix=ONEPASS
// RUN: mamba3-opt %s -split-input-file -ssm-gpu-schedule="schedule=chunked chunk-size=32" | FileCheck %s --check-prefix=CHUNK32
// RUN: mamba3-opt %s -split-input-file -ssm-gpu-schedule="schedule=tokens block-size=256" | FileCheck %s --check-prefix=TOKENS

// bf16 prefill, b * H = 2 blocks for 132 SMs and four chunks of 64: the
// scan becomes its chunk loop (ssm-tile-sequence's form) marked
// chunk-parallel with one chunk per block; with two SMs, the one-pass
// chunked kernel; an explicit chunk size is the loop's step; the tokens
// schedule leaves the scan whole and marks it.
// CHECK-LABEL: func.func @siso
// CHECK: scf.for %{{.*}} = %c0 to %c200 step %c64 iter_args(
// CHECK: ssm.scan
// CHECK-NOT: ssmk.schedule
// CHECK: } {ssmk.schedule = #ssmk.schedule<kind = chunk_parallel, chunk = 64, chunks_per_block = 1>}
// ONEPASS-LABEL: func.func @siso
// ONEPASS: scf.for %{{.*}} step %c64
// ONEPASS: } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64>}
// CHUNK32-LABEL: func.func @siso
// CHUNK32: scf.for %{{.*}} step %c32
// CHUNK32: } {ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 32>}
// TOKENS-LABEL: func.func @siso
// TOKENS-NOT: scf.for
// TOKENS: ssm.scan {{.*}} {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, ssmk.schedule = #ssmk.schedule<kind = tokens, block_size = 256>, wrap_angle}
func.func @siso(%q: tensor<1x200x1x32xbf16>, %k: tensor<1x200x1x32xbf16>, %v: tensor<1x200x2x16xbf16>,
    %adt: tensor<1x2x200xf32>, %dt: tensor<1x2x200xf32>, %trap: tensor<1x2x200xf32>,
    %qb: tensor<2x32xf32>, %kb: tensor<2x32xf32>, %ang: tensor<1x200x2x8xf32>, %d: tensor<2xf32>,
    %z: tensor<1x200x2x16xbf16>)
    -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<1x200x1x32xbf16>, tensor<1x200x1x32xbf16>, tensor<1x200x2x16xbf16>, tensor<1x2x200xf32>,
         tensor<1x2x200xf32>, tensor<1x2x200xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x200x2x8xf32>,
         tensor<2xf32>, tensor<1x200x2x16xbf16>)
      -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}

// -----

// A varlen batch stays whole (its chunks are in cu_seqlens): marked chunked
// with the kernel's chunk of 64 tokens.
// CHECK-LABEL: func.func @varlen_scan
// CHECK-NOT: scf.for
// CHECK: ssm.scan {{.*}} {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, ssmk.schedule = #ssmk.schedule<kind = chunked, chunk = 64>, wrap_angle}
func.func @varlen_scan(%q: tensor<1x100x1x32xbf16>, %k: tensor<1x100x1x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %adt: tensor<1x2x100xf32>, %dt: tensor<1x2x100xf32>, %trap: tensor<1x2x100xf32>,
    %qb: tensor<2x32xf32>, %kb: tensor<2x32xf32>, %ang: tensor<1x100x2x8xf32>,
    %a0: tensor<3x2x8xf32>, %h0: tensor<3x2x16x32xf32>, %k0: tensor<3x2x32xf32>, %v0: tensor<3x2x16xf32>, %cu: tensor<4xi32>)
    -> (tensor<1x100x2x16xbf16>, tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      initial(%a0, %h0, %k0, %v0) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<1x100x1x32xbf16>, tensor<1x100x1x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x2x100xf32>,
         tensor<1x2x100xf32>, tensor<1x2x100xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x100x2x8xf32>,
         tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>, tensor<4xi32>)
      -> (tensor<1x100x2x16xbf16>, tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x100x2x16xbf16>, tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>
}

// -----

// A decode step (fp32) runs the token-sequential kernel.
// CHECK-LABEL: func.func @decode_step
// CHECK: ssm.step {{.*}} ssmk.schedule = #ssmk.schedule<kind = tokens>
func.func @decode_step(%q: tensor<4x2x64xf32>, %k: tensor<4x2x64xf32>, %v: tensor<4x4x32xf32>,
    %adt: tensor<4x4xf32>, %dt: tensor<4x4xf32>, %trap: tensor<4x4xf32>, %qb: tensor<4x64xf32>,
    %kb: tensor<4x64xf32>, %ang: tensor<4x4x16xf32>, %a0: tensor<4x4x16xf32>,
    %h0: tensor<4x4x32x64xf32>, %k0: tensor<4x4x64xf32>, %v0: tensor<4x4x32xf32>)
    -> (tensor<4x4x32xf32>, tensor<4x4x32x64xf32>) {
  %r:5 = ssm.step q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      state(%a0, %h0, %k0, %v0) {rotary = #ssm.rotary<angles = 16, pairing = adjacent>, wrap_angle}
      : (tensor<4x2x64xf32>, tensor<4x2x64xf32>, tensor<4x4x32xf32>, tensor<4x4xf32>, tensor<4x4xf32>,
         tensor<4x4xf32>, tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x4x16xf32>, tensor<4x4x16xf32>,
         tensor<4x4x32x64xf32>, tensor<4x4x64xf32>, tensor<4x4x32xf32>)
      -> (tensor<4x4x32xf32>, tensor<4x4x16xf32>, tensor<4x4x32x64xf32>, tensor<4x4x64xf32>, tensor<4x4x32xf32>)
  return %r#0, %r#2 : tensor<4x4x32xf32>, tensor<4x4x32x64xf32>
}
