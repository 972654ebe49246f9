// RUN: mamba3-opt %s -split-input-file -ssmk-build-kernels -verify-diagnostics

// ssmk-build-kernels builds a kernel op only where ssm-to-gpu puts it: the
// last op of a gpu.func's body, before its gpu.return.

gpu.module @kernels {
  gpu.func @not_last(%q: memref<2x1x64xbf16>) kernel {
    // expected-error @+1 {{ssmk-build-kernels: a kernel op is the last op of a gpu.func's body before its gpu.return}}
    ssmk.decode_step Q(%q : memref<2x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}
    %c0 = arith.constant 0 : index
    gpu.return
  }
}

// -----

func.func @outside_a_kernel(%q: memref<2x1x64xbf16>) {
  // expected-error @+1 {{ssmk-build-kernels: a kernel op is the last op of a gpu.func's body before its gpu.return}}
  ssmk.decode_step Q(%q : memref<2x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}
  return
}

// -----

// expected-error @+1 {{ssmk-build-kernels: a kernel op is the last op of a gpu.func's body before its gpu.return}}
ssmk.decode_step {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}

// -----

// A chunked kernel is built from its #ssmk.plan (ssmk-plan-shared-memory's,
// or one written by hand): there must be one, the engines it names must
// fit the tiles, the layer's arrays must fit where it puts them, and the
// launch must give its shared memory.

// -----

gpu.module @kernels {
  gpu.func @no_plan() kernel attributes {ssm.dynamic_shared_bytes = 40224 : i64} {
    // expected-error @+1 {{ssmk-build-kernels: a chunked kernel needs its #ssmk.plan (run ssmk-plan-shared-memory first)}}
    ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64}
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @wgmma_on_n48() kernel attributes {ssm.dynamic_shared_bytes = 41248 : i64} {
    // expected-error @+1 {{the #ssmk.plan does not fit the layer: the scores run on wgmma only with N % 64 == 0, 64-term chunks and whole warpgroups}}
    ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = wgmma_scores, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, mbar = 40208, total = 41248>}
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @overlap() kernel attributes {ssm.dynamic_shared_bytes = 40224 : i64} {
    // expected-error @+1 {{the #ssmk.plan does not fit the layer: seg_sum and gamma overlap}}
    ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33296, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @array_past_total() kernel attributes {ssm.dynamic_shared_bytes = 40224 : i64} {
    // expected-error @+1 {{the #ssmk.plan does not fit the layer: v_rows (5120 bytes at 35104) ends past the 40000 bytes the plan gives its arrays}}
    ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40000>}
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @unused_z_rows() kernel attributes {ssm.dynamic_shared_bytes = 48224 : i64} {
    // expected-error @+1 {{the #ssmk.plan does not fit the layer: has a z_rows array, which this layer and plan do not use}}
    ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, z_rows = 40224, total = 48224>}
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @launch_too_small() kernel attributes {ssm.dynamic_shared_bytes = 32768 : i64} {
    // expected-error @+1 {{ssmk-build-kernels: the #ssmk.plan takes 40224 bytes of shared memory, the launch gives 32768 ('ssm.dynamic_shared_bytes' of the gpu.func)}}
    ssmk.chunked_scan {layer = #ssmk.layer<batch = 2, seq_len = 256, heads = 4, groups = 1, state = 48, head_dim = 32, angles = 16, rank = 1, data_type = bf16, has_d = true, wrap = true>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64, plan = #ssmk.plan<mma = mma_sync, qk_buffers = 1, staged_vz = true, q = 0, k = 7168, scores = 14336, ys = 23552, seg_sum = 32768, gamma = 33312, beta = 33568, w_end = 33824, decay = 34080, k_prev = 34336, q_bias = 34528, k_bias = 34720, v_prev = 34912, theta_carry = 35040, v_rows = 35104, total = 40224>}
    gpu.return
  }
}
