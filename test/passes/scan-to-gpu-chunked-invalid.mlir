// RUN: mamba3-opt %s -split-input-file -ssm-gpu-schedule=schedule=chunked -ssm-to-gpu -verify-diagnostics

// fp32 data: the chunked kernel's matmuls are bf16.
func.func @fp32_data(%q: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %c: tensor<2x4x16xf32>,
    %qb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) -> tensor<2x16x4x16xf32> {
  // expected-error @+1 {{ssm-gpu-schedule schedule=chunked: the chunked tensor-core kernel needs bf16 or f16 Q/K/V (its matmuls run on tensor cores in that type); fp32 data runs the token-sequential kernel}}
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>,
         tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0 : tensor<2x16x4x16xf32>
}

// -----

// MIMO ranks above 8 would take more than 128 rows of rank-1 terms per chunk.
func.func @mimo(%q: tensor<2x100x9x1x32xbf16>, %v: tensor<2x100x4x16xbf16>, %c: tensor<2x4x100xf32>,
    %qb: tensor<4x9x32xf32>, %ang: tensor<2x100x4x8xf32>, %m: tensor<4x9x16xf32>)
    -> tensor<2x100x4x16xbf16> {
  // expected-error @+1 {{ssm-gpu-schedule schedule=chunked: the chunked tensor-core kernel covers ranks up to 8, got 9}}
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      mimo_v(%m) mimo_o(%m)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 9}
      : (tensor<2x100x9x1x32xbf16>, tensor<2x100x9x1x32xbf16>, tensor<2x100x4x16xbf16>,
         tensor<2x4x100xf32>, tensor<2x4x100xf32>, tensor<2x4x100xf32>,
         tensor<4x9x32xf32>, tensor<4x9x32xf32>, tensor<2x100x4x8xf32>,
         tensor<4x9x16xf32>, tensor<4x9x16xf32>)
      -> (tensor<2x100x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
          tensor<2x4x9x32xf32>, tensor<2x4x9x16xf32>)
  return %r#0 : tensor<2x100x4x16xbf16>
}

// -----

// The state lives in registers: N is capped.
func.func @large_state(%q: tensor<1x16x1x512xbf16>, %v: tensor<1x16x1x16xbf16>, %c: tensor<1x1x16xf32>,
    %qb: tensor<1x512xf32>, %ang: tensor<1x16x1x8xf32>) -> tensor<1x16x1x16xbf16> {
  // expected-error @+1 {{ssm-gpu-schedule schedule=chunked: the chunked tensor-core kernel holds the state in registers: N <= 256, got 512}}
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%qb, %qb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<1x16x1x512xbf16>, tensor<1x16x1x512xbf16>, tensor<1x16x1x16xbf16>, tensor<1x1x16xf32>,
         tensor<1x1x16xf32>, tensor<1x1x16xf32>, tensor<1x512xf32>, tensor<1x512xf32>, tensor<1x16x1x8xf32>)
      -> (tensor<1x16x1x16xbf16>, tensor<1x1x8xf32>, tensor<1x1x16x512xf32>, tensor<1x1x512xf32>, tensor<1x1x16xf32>)
  return %r#0 : tensor<1x16x1x16xbf16>
}
