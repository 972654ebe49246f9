// RUN: mamba3-opt %s -split-input-file -ssmk-plan-shared-memory | FileCheck %s

// ssmk-plan-shared-memory writes each chunked kernel's choices as its
// #ssmk.plan: the matmul engines, the Q/K buffers, V/Z staging and the
// shared-memory offsets.

// SISO, N = 128, P = 64: q/k by TMA, all three matmuls on warpgroup MMA,
// two Q/K buffers, V and Z staged (V^T read from the raw rows: no vt).
// CHECK-LABEL: func.func @siso_n128
// CHECK: plan = #ssmk.plan<mma = wgmma, qk_buffers = 2, staged_vz = true, q = 0, k = 32768, scores = 65536, ys = 73728,
// CHECK-SAME: mbar = 95136, v_rows = 95152, z_rows = 104368, total = 113584>
func.func @siso_n128() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 0, seq_len = 0, heads = 32, groups = 1, state = 128, head_dim = 64, angles = 32, rank = 1, data_type = bf16, has_d = true, has_z = true, wrap = true>,
       threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64}
  return
}

// -----

// MIMO R = 4: the scores on warpgroup MMA, the output and state matmuls on
// mma.sync (MIMO's epilogue beside a wgmma accumulator spills); the staged
// V rows are not V^T, so there is a vt tile; two Q/K buffers fit.
// CHECK-LABEL: func.func @mimo_r4
// CHECK: plan = #ssmk.plan<mma = wgmma_scores, qk_buffers = 2, staged_vz = true,
// CHECK-SAME: mbar = {{[0-9]+}}, v_rows = {{[0-9]+}}, z_rows = {{[0-9]+}}, vt = {{[0-9]+}}, total = {{[0-9]+}}>
func.func @mimo_r4() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 8, seq_len = 4096, heads = 32, groups = 1, state = 128, head_dim = 64, angles = 32, rank = 4, data_type = bf16, mimo = true, has_d = true, has_z = true, half_split = true>,
       threads = 128 : i64, tokens_per_chunk = 16 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64}
  return
}

// -----

// N = 48 has no whole 64-entry swizzle atoms: cp.async tiles, mma.sync,
// one Q/K buffer, no mbarriers; the layer asks for nothing else.
// CHECK-LABEL: func.func @siso_n48
// CHECK: plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168,
// CHECK-NOT: mbar
// CHECK-SAME: v_rows = 35104, total = 40224>
func.func @siso_n48() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>,
       threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64}
  return
}

// -----

// The layer's mma = mma_sync (the tuner's, or --mma): no TMA tiles.
// CHECK-LABEL: func.func @asked_mma_sync
// CHECK: plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1,
func.func @asked_mma_sync() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 0, seq_len = 0, heads = 32, groups = 1, state = 128, head_dim = 64, angles = 32, rank = 1, data_type = bf16, has_d = true, has_z = true, wrap = true, mma = mma_sync>,
       threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64}
  return
}

// -----

// A plan already there (by hand, or a tuner's) is kept as it stands.
// CHECK-LABEL: func.func @kept
// CHECK: plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, q = 0, k = 7168, {{.*}}, vt = 35104, total = 40224>
func.func @kept() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>,
       threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64,
       plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, vt = 35104, total = 40224>}
  return
}
