// RUN: mamba3-opt %s -split-input-file | mamba3-opt -split-input-file | FileCheck %s

// #ssmk.plan round-trips on ssmk.chunked_scan: the resolved engines, the
// Q/K buffers, V/Z staging and the byte offset of each shared array;
// staged_vz printed only when set, the optional arrays (mbar, v_rows,
// z_rows, vt) only where the plan has them.

// CHECK-LABEL: func.func @plan_with_tma
// CHECK: plan = #ssmk.plan<mma = wgmma_scores, qk_buffers = 2, staged_vz = true, q = 0, k = 16384, scores = 32768, ys = 41984, {{.*}}, mbar = 53728, v_rows = 53744, z_rows = 58864, total = 63984>
func.func @plan_with_tma() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, has_z = true, wrap = true>,
       threads = 128 : i64, tokens_per_chunk = 64 : i64,
       phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64,
       plan = #ssmk.plan<mma = wgmma_scores, qk_buffers = 2, staged_vz = true, q = 0, k = 16384, scores = 32768, ys = 41984, seg_sum = 51200, gamma = 51744, beta = 52000, w_end = 52256, decay = 52512, k_prev = 52768, q_bias = 53024, k_bias = 53280, v_prev = 53536, theta_carry = 53664, mbar = 53728, v_rows = 53744, z_rows = 58864, total = 63984>}
  return
}

// -----

// CHECK-LABEL: func.func @plan_without_staging
// CHECK: plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, q = 0, {{.*}}, theta_carry = 35040, vt = 35104, total = 40224>
func.func @plan_without_staging() {
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>,
       threads = 128 : i64, tokens_per_chunk = 64 : i64,
       phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64,
       plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, vt = 35104, total = 40224>}
  return
}
