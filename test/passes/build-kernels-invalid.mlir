// RUN: mamba3-opt %s -split-input-file -ssmk-build-kernels -verify-diagnostics

// ssmk-build-kernels builds a kernel op only where ssm-to-gpu puts it: the
// last op of a gpu.func's body, before its gpu.return.

gpu.module @kernels {
  gpu.func @not_last(%q: memref<2x1x64xbf16>) kernel {
    // expected-error @+1 {{ssmk-build-kernels: a kernel op is the last op of a gpu.func's body before its gpu.return}}
    ssmk.token_scan Q(%q : memref<2x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}
    %c0 = arith.constant 0 : index
    gpu.return
  }
}

// -----

func.func @outside_a_kernel(%q: memref<2x1x64xbf16>) {
  // expected-error @+1 {{ssmk-build-kernels: a kernel op is the last op of a gpu.func's body before its gpu.return}}
  ssmk.token_scan Q(%q : memref<2x1x64xbf16>) {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}
  return
}

// -----

// expected-error @+1 {{ssmk-build-kernels: a kernel op is the last op of a gpu.func's body before its gpu.return}}
ssmk.token_scan {layer = #ssmk.layer<batch = 2, seq_len = 1, heads = 4, groups = 1, state = 64, head_dim = 32, angles = 16, rank = 1, data_type = bf16, step = true>, threads = 128 : i64}
