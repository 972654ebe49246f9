// RUN: mamba3-opt %s -split-input-file | mamba3-opt -split-input-file | FileCheck %s

// The kernel ops and #ssmk.layer round-trip: buffers by role (absent roles
// not printed), the layer's flags printed only when set.

// CHECK-LABEL: func.func @decode_step
// CHECK: ssmk.decode_step Q(%{{.*}} : memref<2x1x1x64xbf16>) K(%{{.*}} : memref<2x1x1x64xbf16>) V(%{{.*}} : memref<2x1x4x32xbf16>) out(%{{.*}} : memref<2x1x4x32xbf16>)
// CHECK-SAME: layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true, has_d = true>
// CHECK-SAME: threads = 256 : i64
func.func @decode_step(%q: memref<2x1x1x64xbf16>, %k: memref<2x1x1x64xbf16>,
                       %v: memref<2x1x4x32xbf16>, %out: memref<2x1x4x32xbf16>) {
  ssmk.decode_step Q(%q : memref<2x1x1x64xbf16>) K(%k : memref<2x1x1x64xbf16>)
      V(%v : memref<2x1x4x32xbf16>) out(%out : memref<2x1x4x32xbf16>)
      {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1,
                           state = 64, head_dim = 32, angles = 16, rank = 1,
                           data_type = bf16, step = true, mimo = false,
                           has_d = true>,
       threads = 256 : i64}
  return
}

// -----

// CHECK-LABEL: func.func @token_scan
// CHECK: ssmk.token_scan Q(%{{.*}} : memref<2x8x1x64xf32>) out(%{{.*}} : memref<2x8x4x32xf32>)
// CHECK-SAME: layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = f32>
// CHECK-SAME: threads = 128 : i64
func.func @token_scan(%q: memref<2x8x1x64xf32>, %out: memref<2x8x4x32xf32>) {
  ssmk.token_scan Q(%q : memref<2x8x1x64xf32>) out(%out : memref<2x8x4x32xf32>)
      {layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 1,
                           state = 64, head_dim = 32, angles = 16, rank = 1,
                           data_type = f32>,
       threads = 128 : i64}
  return
}

// -----

// CHECK-LABEL: func.func @chunked_scan
// CHECK: ssmk.chunked_scan Q(%{{.*}}) K(%{{.*}}) launch_seqlen(%{{.*}} : index)
// CHECK-SAME: chunks_per_block = 0 : i64
// CHECK-SAME: layer = #ssmk.layer<batch = 0, seq_len = 0, heads = 32, groups = 1, state = 128, head_dim = 64, angles = 32, rank = 4, data_type = bf16, mimo = true, half_split = true, mma = mma_sync, qk_buffers = 1>
// CHECK-SAME: phase = #ssmk<phase span_states>
// CHECK-SAME: tokens_per_chunk = 16 : i64
func.func @chunked_scan(%q: memref<?x?x4x1x128xbf16>, %k: memref<?x?x4x1x128xbf16>,
                        %l: index) {
  ssmk.chunked_scan Q(%q : memref<?x?x4x1x128xbf16>) K(%k : memref<?x?x4x1x128xbf16>)
      launch_seqlen(%l : index)
      {layer = #ssmk.layer<batch = 0, seq_len = 0, heads = 32, groups = 1,
                           state = 128, head_dim = 64, angles = 32, rank = 4,
                           data_type = bf16, mimo = true, half_split = true,
                           mma = mma_sync, qk_buffers = 1>,
       threads = 128 : i64, tokens_per_chunk = 16 : i64,
       phase = #ssmk<phase span_states>, chunks_per_block = 0 : i64}
  return
}

// -----

// CHECK-LABEL: func.func @chunk_boundaries
// CHECK: ssmk.chunk_boundaries span_states(%{{.*}} : memref<1x32x4x64x128xf32>) span_decay(%{{.*}} : memref<1x32x4xf32>)
// CHECK-SAME: spans = 4 : i64
func.func @chunk_boundaries(%states: memref<1x32x4x64x128xf32>,
                            %decay: memref<1x32x4xf32>) {
  ssmk.chunk_boundaries span_states(%states : memref<1x32x4x64x128xf32>)
      span_decay(%decay : memref<1x32x4xf32>)
      {layer = #ssmk.layer<batch = 1, seq_len = 16384, heads = 32, groups = 1,
                           state = 128, head_dim = 64, angles = 32, rank = 1,
                           data_type = bf16, has_d = true, has_z = true,
                           wrap = true, norm_eps = 1.0e-05 : f32>,
       threads = 128 : i64, spans = 4 : i64}
  return
}
