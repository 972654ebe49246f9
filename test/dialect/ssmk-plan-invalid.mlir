// RUN: mamba3-opt %s -split-input-file -verify-diagnostics

// The #ssmk.plan verifier: engines resolved, buffers and staging consistent
// with them, every array 16-byte aligned inside the plan's total, the
// swizzled tiles 1 KiB aligned.

// -----

func.func @auto_engines() {
  // expected-error @+1 {{a plan's mma is resolved: mma_sync, wgmma_scores or wgmma, not auto}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = auto, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
  return
}

// -----

func.func @three_buffers() {
  // expected-error @+1 {{qk_buffers must be 1 or 2, got 3}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 3, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
  return
}

// -----

func.func @two_buffers_without_tma() {
  // expected-error @+1 {{two q/k buffers need the TMA tiles of wgmma_scores or wgmma, not mma_sync}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 2, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
  return
}

// -----

func.func @tma_without_mbar() {
  // expected-error @+1 {{the TMA tiles of wgmma_scores need an mbar array}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = wgmma_scores, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
  return
}

// -----

func.func @mbar_without_tma() {
  // expected-error @+1 {{mma_sync has no TMA tiles, so no mbar array}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, mbar = 40000, total = 40224>}
  return
}

// -----

func.func @rows_without_staging() {
  // expected-error @+1 {{v_rows (and z_rows, with a gate) are there exactly when staged_vz is}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
  return
}

// -----

func.func @no_vt() {
  // expected-error @+1 {{without staged V rows the kernel needs a vt array}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, total = 40224>}
  return
}

// -----

func.func @misaligned() {
  // expected-error @+1 {{gamma at byte 33320: arrays start 16-byte aligned inside the 40224 bytes of the plan}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33320, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
  return
}

// -----

func.func @past_total() {
  // expected-error @+1 {{seg_sum at byte 32768: arrays start 16-byte aligned inside the 30000 bytes of the plan}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 30000>}
  return
}

// -----

func.func @swizzle_alignment() {
  // expected-error @+1 {{the swizzled tiles (q, k) start 1 KiB aligned}}
  ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = wgmma_scores, qk_buffers = 1, staged_vz = true, q = 0, k = 7184, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, mbar = 35088, total = 41248>}
  return
}
