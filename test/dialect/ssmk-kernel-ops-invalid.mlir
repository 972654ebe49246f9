// RUN: mamba3-opt %s -split-input-file -verify-diagnostics

// The #ssmk.layer verifier: sizes, rank and data type of a kernel's layer;
// the kernel ops' own: a decode step is an ssmk.decode_step, a scan is not.

func.func @negative_batch(%q: memref<2x8x1x64xbf16>) {
  // expected-error @+1 {{batch and seq_len are positive, or 0 when sized at launch; got -1 and 8}}
  ssmk.token_scan Q(%q : memref<2x8x1x64xbf16>) {layer = #ssmk.layer<batch = -1, seq_len = 8, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16>, threads = 128 : i64}
  return
}

// -----

func.func @groups(%q: memref<2x8x1x64xbf16>) {
  // expected-error @+1 {{heads (4) must be a multiple of groups (3)}}
  ssmk.token_scan Q(%q : memref<2x8x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 3, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16>, threads = 128 : i64}
  return
}

// -----

func.func @rank_without_mimo(%q: memref<2x8x1x64xbf16>) {
  // expected-error @+1 {{rank 4 needs mimo}}
  ssmk.token_scan Q(%q : memref<2x8x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 4, data_type = bf16>, threads = 128 : i64}
  return
}

// -----

func.func @data_type(%q: memref<2x8x1x64xf64>) {
  // expected-error @+1 {{data_type is f32, bf16 or f16, got 'f64'}}
  ssmk.token_scan Q(%q : memref<2x8x1x64xf64>) {layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = f64>, threads = 128 : i64}
  return
}

// -----

func.func @step_varlen(%q: memref<2x1x64xbf16>) {
  // expected-error @+1 {{a decode step has no sequence: no varlen or full_chunks}}
  ssmk.decode_step Q(%q : memref<2x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true, varlen = true>, threads = 128 : i64}
  return
}

// -----

func.func @qk_buffers(%q: memref<2x8x1x64xbf16>) {
  // expected-error @+1 {{qk_buffers must be 0, 1 or 2, got 3}}
  ssmk.chunked_scan Q(%q : memref<2x8x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, qk_buffers = 3>, threads = 128 : i64, tokens_per_chunk = 64 : i64, phase = #ssmk<phase one_pass>, chunks_per_block = 1 : i64}
  return
}

// -----

func.func @token_scan_of_a_step(%q: memref<2x1x64xbf16>) {
  // expected-error @+1 {{'ssmk.token_scan' op is a scan over tokens; a decode step (a layer with step) is an ssmk.decode_step}}
  ssmk.token_scan Q(%q : memref<2x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}
  return
}

// -----

func.func @decode_step_of_a_scan(%q: memref<2x8x1x64xbf16>) {
  // expected-error @+1 {{'ssmk.decode_step' op computes one token: its layer has step (a scan is an ssmk.token_scan or ssmk.chunked_scan)}}
  ssmk.decode_step Q(%q : memref<2x8x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 8, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16>, threads = 128 : i64}
  return
}
