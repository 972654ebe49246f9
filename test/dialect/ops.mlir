// RUN: mamba3-opt %s | FileCheck %s
// RUN: mamba3-opt %s | mamba3-opt | FileCheck %s
// RUN: mamba3-opt %s -mlir-print-op-generic | mamba3-opt | FileCheck %s

// CHECK-LABEL: func.func @siso_scan_minimal
func.func @siso_scan_minimal(%q: tensor<2x200x1x32xbf16>, %k: tensor<2x200x1x32xbf16>,
    %v: tensor<2x200x4x16xbf16>, %adt: tensor<2x4x200xf32>, %dt: tensor<2x4x200xf32>,
    %trap: tensor<2x4x200xbf16>, %qb: tensor<4x32xbf16>, %kb: tensor<4x32xbf16>,
    %ang: tensor<2x200x4x8xf32>) -> tensor<2x200x4x16xbf16> {
  // CHECK: ssm.scan q(%{{[a-z0-9_]+}}) k(%{{[a-z0-9_]+}}) v(%{{[a-z0-9_]+}}) adt(%{{[a-z0-9_]+}}) dt(%{{[a-z0-9_]+}}) trap(%{{[a-z0-9_]+}}) bias(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}) angles(%{{[a-z0-9_]+}})
  // CHECK-SAME: rotary = #ssm.rotary<angles = 8, pairing = adjacent>
  // CHECK-NOT: rule
  // CHECK-SAME: -> (tensor<2x200x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xbf16>, tensor<2x4x16xbf16>)
  %out, %a, %h, %kk, %vv = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x200x1x32xbf16>, tensor<2x200x1x32xbf16>, tensor<2x200x4x16xbf16>,
         tensor<2x4x200xf32>, tensor<2x4x200xf32>, tensor<2x4x200xbf16>,
         tensor<4x32xbf16>, tensor<4x32xbf16>, tensor<2x200x4x8xf32>)
      -> (tensor<2x200x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
          tensor<2x4x32xbf16>, tensor<2x4x16xbf16>)
  return %out : tensor<2x200x4x16xbf16>
}

// CHECK-LABEL: func.func @siso_scan_full_dynamic
func.func @siso_scan_full_dynamic(%q: tensor<?x?x2x64xf32>, %k: tensor<?x?x2x64xf32>,
    %v: tensor<?x?x4x32xf32>, %adt: tensor<?x4x?xf32>, %dt: tensor<?x4x?xf32>,
    %trap: tensor<?x4x?xf32>, %qb: tensor<4x64xf32>, %kb: tensor<4x64xf32>,
    %ang: tensor<?x?x4x16xf32>, %d: tensor<4xf32>, %z: tensor<?x?x4x32xf32>,
    %a0: tensor<?x4x16xf32>, %h0: tensor<?x4x32x64xf32>, %k0: tensor<?x4x64xf32>,
    %v0: tensor<?x4x32xf32>) -> tensor<?x4x32x64xf32> {
  // CHECK: ssm.scan
  // CHECK-SAME: d(%{{[a-z0-9_]+}}) z(%{{[a-z0-9_]+}}) initial(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}})
  // CHECK-SAME: rotary = #ssm.rotary<angles = 16, pairing = half_split>
  // CHECK-SAME: rule = #ssm.discretization<euler>
  // CHECK-SAME: wrap_angle
  %out, %a, %h, %kk, %vv = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) d(%d) z(%z) initial(%a0, %h0, %k0, %v0)
      {rule = #ssm.discretization<euler>,
       rotary = #ssm.rotary<angles = 16, pairing = half_split>, wrap_angle}
      : (tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>, tensor<?x?x4x32xf32>,
         tensor<?x4x?xf32>, tensor<?x4x?xf32>, tensor<?x4x?xf32>,
         tensor<4x64xf32>, tensor<4x64xf32>, tensor<?x?x4x16xf32>, tensor<4xf32>,
         tensor<?x?x4x32xf32>, tensor<?x4x16xf32>, tensor<?x4x32x64xf32>,
         tensor<?x4x64xf32>, tensor<?x4x32xf32>)
      -> (tensor<?x?x4x32xf32>, tensor<?x4x16xf32>, tensor<?x4x32x64xf32>,
          tensor<?x4x64xf32>, tensor<?x4x32xf32>)
  return %h : tensor<?x4x32x64xf32>
}

// A packed varlen batch: data in batch row 1, states per sequence.
// CHECK-LABEL: func.func @siso_scan_varlen
func.func @siso_scan_varlen(%q: tensor<1x?x2x64xbf16>, %k: tensor<1x?x2x64xbf16>,
    %v: tensor<1x?x4x32xbf16>, %adt: tensor<1x4x?xf32>, %dt: tensor<1x4x?xf32>,
    %trap: tensor<1x4x?xf32>, %qb: tensor<4x64xf32>, %kb: tensor<4x64xf32>,
    %ang: tensor<1x?x16xf32>, %a0: tensor<?x4x16xf32>, %h0: tensor<?x4x32x64xf32>,
    %k0: tensor<?x4x64xbf16>, %v0: tensor<?x4x32xbf16>, %cu: tensor<?xi32>)
    -> tensor<?x4x32x64xf32> {
  // CHECK: ssm.scan
  // CHECK-SAME: initial(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}) cu_seqlens(%{{[a-z0-9_]+}})
  %out, %a, %h, %kk, %vv = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) initial(%a0, %h0, %k0, %v0) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 16, pairing = adjacent>}
      : (tensor<1x?x2x64xbf16>, tensor<1x?x2x64xbf16>, tensor<1x?x4x32xbf16>,
         tensor<1x4x?xf32>, tensor<1x4x?xf32>, tensor<1x4x?xf32>,
         tensor<4x64xf32>, tensor<4x64xf32>, tensor<1x?x16xf32>,
         tensor<?x4x16xf32>, tensor<?x4x32x64xf32>, tensor<?x4x64xbf16>,
         tensor<?x4x32xbf16>, tensor<?xi32>)
      -> (tensor<1x?x4x32xbf16>, tensor<?x4x16xf32>, tensor<?x4x32x64xf32>,
          tensor<?x4x64xbf16>, tensor<?x4x32xbf16>)
  return %h : tensor<?x4x32x64xf32>
}

// The per-head RMSNorm: weights (H, P) and a non-default epsilon.
// CHECK-LABEL: func.func @siso_scan_rmsnorm
func.func @siso_scan_rmsnorm(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>,
    %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>,
    %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %w: tensor<4x16xf32>) -> tensor<2x16x4x16xf32> {
  // CHECK: ssm.scan
  // CHECK-SAME: norm(%{{[a-z0-9_]+}}) {norm_eps = 1.000000e-03 : f32
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) norm(%w)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, norm_eps = 1.0e-3 : f32}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>,
         tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>, tensor<4x16xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return %r#0 : tensor<2x16x4x16xf32>
}

// CHECK-LABEL: func.func @mimo_scan
func.func @mimo_scan(%q: tensor<2x100x4x1x32xbf16>, %k: tensor<2x100x4x1x32xbf16>,
    %v: tensor<2x100x4x16xbf16>, %adt: tensor<2x4x100xf32>, %dt: tensor<2x4x100xf32>,
    %trap: tensor<2x4x100xf32>, %qb: tensor<4x4x32xf32>, %kb: tensor<4x4x32xf32>,
    %ang: tensor<2x100x4x8xf32>, %d: tensor<4xf32>, %z: tensor<2x100x4x16xbf16>,
    %mv: tensor<4x4x16xf32>, %mz: tensor<4x4x16xf32>, %mo: tensor<4x4x16xf32>)
    -> tensor<2x100x4x16xbf16> {
  // CHECK: ssm.scan
  // CHECK-SAME: mimo_v(%{{[a-z0-9_]+}}) mimo_z(%{{[a-z0-9_]+}}) mimo_o(%{{[a-z0-9_]+}})
  // CHECK-SAME: rank = 4 : i64
  // CHECK-SAME: state_type = bf16
  %out, %a, %h, %kk, %vv = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) d(%d) z(%z) mimo_v(%mv) mimo_z(%mz) mimo_o(%mo)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 4, state_type = bf16}
      : (tensor<2x100x4x1x32xbf16>, tensor<2x100x4x1x32xbf16>, tensor<2x100x4x16xbf16>,
         tensor<2x4x100xf32>, tensor<2x4x100xf32>, tensor<2x4x100xf32>,
         tensor<4x4x32xf32>, tensor<4x4x32xf32>, tensor<2x100x4x8xf32>, tensor<4xf32>,
         tensor<2x100x4x16xbf16>, tensor<4x4x16xf32>, tensor<4x4x16xf32>, tensor<4x4x16xf32>)
      -> (tensor<2x100x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xbf16>,
          tensor<2x4x4x32xf32>, tensor<2x4x4x16xf32>)
  return %out : tensor<2x100x4x16xbf16>
}

// The down projection left out: out per rank (b, L, R, H, P).
// CHECK-LABEL: func.func @mimo_scan_per_rank_out
func.func @mimo_scan_per_rank_out(%q: tensor<2x100x4x1x32xbf16>, %k: tensor<2x100x4x1x32xbf16>,
    %v: tensor<2x100x4x16xbf16>, %adt: tensor<2x4x100xf32>, %dt: tensor<2x4x100xf32>,
    %trap: tensor<2x4x100xbf16>, %qb: tensor<4x4x32xf32>, %kb: tensor<4x4x32xf32>,
    %ang: tensor<2x100x4x8xf32>, %mv: tensor<4x4x16xf32>) -> tensor<2x100x4x4x16xbf16> {
  // CHECK: ssm.scan
  // CHECK-SAME: mimo_v(%{{[a-z0-9_]+}}) {
  // CHECK-SAME: -> (tensor<2x100x4x4x16xbf16>,
  %out, %a, %h, %kk, %vv = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) mimo_v(%mv)
      {rotary = #ssm.rotary<angles = 8, pairing = half_split>, rank = 4}
      : (tensor<2x100x4x1x32xbf16>, tensor<2x100x4x1x32xbf16>, tensor<2x100x4x16xbf16>,
         tensor<2x4x100xf32>, tensor<2x4x100xf32>, tensor<2x4x100xbf16>,
         tensor<4x4x32xf32>, tensor<4x4x32xf32>, tensor<2x100x4x8xf32>, tensor<4x4x16xf32>)
      -> (tensor<2x100x4x4x16xbf16>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>,
          tensor<2x4x4x32xf32>, tensor<2x4x4x16xf32>)
  return %out : tensor<2x100x4x4x16xbf16>
}

// CHECK-LABEL: func.func @siso_step
func.func @siso_step(%q: tensor<8x2x64xbf16>, %k: tensor<8x2x64xbf16>,
    %v: tensor<8x4x32xbf16>, %adt: tensor<8x4xf32>, %dt: tensor<8x4xf32>,
    %trap: tensor<8x4xf32>, %qb: tensor<4x64xf32>, %kb: tensor<4x64xf32>,
    %ang: tensor<8x4x16xf32>, %z: tensor<8x4x32xbf16>, %a0: tensor<8x4x16xf32>,
    %h0: tensor<8x4x32x64xf32>, %k0: tensor<8x4x64xf32>, %v0: tensor<8x4x32xf32>)
    -> tensor<8x4x32x64xf32> {
  // CHECK: ssm.step
  // CHECK-SAME: z(%{{[a-z0-9_]+}}) state(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}})
  // CHECK-NOT: d(
  %out, %a, %h, %kk, %vv = ssm.step q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) z(%z) state(%a0, %h0, %k0, %v0)
      {rotary = #ssm.rotary<angles = 16, pairing = adjacent>, wrap_angle}
      : (tensor<8x2x64xbf16>, tensor<8x2x64xbf16>, tensor<8x4x32xbf16>,
         tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x64xf32>,
         tensor<4x64xf32>, tensor<8x4x16xf32>, tensor<8x4x32xbf16>,
         tensor<8x4x16xf32>, tensor<8x4x32x64xf32>, tensor<8x4x64xf32>, tensor<8x4x32xf32>)
      -> (tensor<8x4x32xbf16>, tensor<8x4x16xf32>, tensor<8x4x32x64xf32>,
          tensor<8x4x64xf32>, tensor<8x4x32xf32>)
  return %h : tensor<8x4x32x64xf32>
}

// CHECK-LABEL: func.func @mimo_step
func.func @mimo_step(%q: tensor<2x4x1x64xbf16>, %k: tensor<2x4x1x64xbf16>,
    %v: tensor<2x4x32xbf16>, %adt: tensor<2x4xf32>, %dt: tensor<2x4xf32>,
    %trap: tensor<2x4xf32>, %qb: tensor<4x4x64xf32>, %kb: tensor<4x4x64xf32>,
    %ang: tensor<2x4x16xf32>, %a0: tensor<2x4x16xf32>,
    %h0: tensor<2x4x32x64xf32>, %k0: tensor<2x4x4x64xf32>, %v0: tensor<2x4x4x32xf32>,
    %mv: tensor<4x4x32xf32>, %mo: tensor<4x4x32xf32>) -> tensor<2x4x32xbf16> {
  // CHECK: ssm.step
  // CHECK-SAME: mimo_v(%{{[a-z0-9_]+}}) mimo_o(%{{[a-z0-9_]+}})
  // CHECK-SAME: rank = 4
  %out, %a, %h, %kk, %vv = ssm.step q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
      bias(%qb, %kb) angles(%ang) state(%a0, %h0, %k0, %v0) mimo_v(%mv) mimo_o(%mo)
      {rotary = #ssm.rotary<angles = 16, pairing = half_split>, rank = 4}
      : (tensor<2x4x1x64xbf16>, tensor<2x4x1x64xbf16>, tensor<2x4x32xbf16>,
         tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<4x4x64xf32>,
         tensor<4x4x64xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>,
         tensor<2x4x32x64xf32>, tensor<2x4x4x64xf32>, tensor<2x4x4x32xf32>,
         tensor<4x4x32xf32>, tensor<4x4x32xf32>)
      -> (tensor<2x4x32xbf16>, tensor<2x4x16xf32>, tensor<2x4x32x64xf32>,
          tensor<2x4x4x64xf32>, tensor<2x4x4x32xf32>)
  return %out : tensor<2x4x32xbf16>
}
