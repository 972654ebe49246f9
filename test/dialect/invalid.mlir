// RUN: mamba3-opt %s -split-input-file -verify-diagnostics

func.func @wrong_q_rank(%q: tensor<2x16x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'Q' must have rank 4 (SISO: b, L, G, N) or 5 (MIMO: b, L, R, G, N), got 'tensor<2x16x32xf32>'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @mismatched_n_between_q_and_k(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x64xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'K' dimension 3 (N) is 64, but 'Q' gives N = 32}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x64xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @heads_not_multiple_of_groups(%q: tensor<2x16x3x32xf32>, %k: tensor<2x16x3x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{the number of heads H = 4 (from 'V') must be a multiple of the number of groups G = 3 (from 'Q')}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x3x32xf32>, tensor<2x16x3x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @too_many_angles(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x20xf32>) {
  // expected-error @+1 {{rotary angles per head S = 20 exceed N/2 = 16 (N = 32 from 'Q')}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 20, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x20xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @angles_shape_disagrees_with_attribute(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x6xf32>) {
  // expected-error @+1 {{'Angles' dimension 3 (S) is 6, but 'rotary' gives S = 8}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x6xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @shared_angles_wrong_length(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x15x8xf32>) {
  // expected-error @+1 {{'Angles' dimension 1 (L) is 15, but 'Q' gives L = 16}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x15x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @angles_wrong_rank(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x1x8xf32>) {
  // expected-error @+1 {{'Angles' must have rank 4 (b, L, H, S) or 3 (b, L, S) (shared by all heads), got 'tensor<2x16x4x1x8xf32>'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x1x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @adt_wrong_dtype(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xbf16>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'ADT' must have element type f32, got 'bf16'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xbf16>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @k_dtype_differs_from_q(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xbf16>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'K' must have the element type of 'Q' ('f32'), got 'bf16'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xbf16>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @dt_wrong_seqlen(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x15xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'DT' dimension 2 (L) is 15, but 'Q' gives L = 16}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x15xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @v_batch_disagrees(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<3x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'V' dimension 0 (b) is 3, but 'Q' gives b = 2}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<3x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @bias_wrong_heads(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<2x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'Q_bias' dimension 0 (H) is 2, but 'V' gives H = 4}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @rank_attribute_on_siso_q(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{rank = 2 needs the MIMO layout of 'Q' (b, L, R, G, N), but 'Q' is SISO-shaped: 'tensor<2x16x1x32xf32>'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 2}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @missing_mimo_projections(%q: tensor<2x16x2x1x32xf32>, %k: tensor<2x16x2x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x2x32xf32>, %kb: tensor<4x2x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{the MIMO layout (R = 2) needs the 'mimo_v' projection (H, R, P)}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 2}
      : (tensor<2x16x2x1x32xf32>, tensor<2x16x2x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x2x32xf32>, tensor<4x2x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x2x32xf32>, tensor<2x4x2x16xf32>)
  return
}

// -----

// Without the down projection out keeps the rank axis (per-rank outputs).
func.func @per_rank_out_without_rank_axis(%q: tensor<2x16x2x1x32xf32>, %k: tensor<2x16x2x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x2x32xf32>, %kb: tensor<4x2x32xf32>, %ang: tensor<2x16x4x8xf32>, %mv: tensor<4x2x16xf32>) {
  // expected-error @+1 {{'out' must have rank 5 (b, L, R, H, P)}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) mimo_v(%mv)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 2}
      : (tensor<2x16x2x1x32xf32>, tensor<2x16x2x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x2x32xf32>, tensor<4x2x32xf32>, tensor<2x16x4x8xf32>, tensor<4x2x16xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x2x32xf32>, tensor<2x4x2x16xf32>)
  return
}

// -----

func.func @rank_attribute_disagrees_with_q(%q: tensor<2x16x2x1x32xf32>, %k: tensor<2x16x2x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x2x32xf32>, %kb: tensor<4x2x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{rank = 3 but 'Q' dimension 2 (R) is 2}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 3}
      : (tensor<2x16x2x1x32xf32>, tensor<2x16x2x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x2x32xf32>, tensor<4x2x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x2x32xf32>, tensor<2x4x2x16xf32>)
  return
}

// -----

func.func @mimo_z_without_z(%q: tensor<2x16x2x1x32xf32>, %k: tensor<2x16x2x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x2x32xf32>, %kb: tensor<4x2x32xf32>, %ang: tensor<2x16x4x8xf32>, %mv: tensor<4x2x16xf32>, %mz: tensor<4x2x16xf32>, %mo: tensor<4x2x16xf32>) {
  // expected-error @+1 {{'mimo_z' is given but 'Z' is not}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) mimo_v(%mv) mimo_z(%mz) mimo_o(%mo)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 2}
      : (tensor<2x16x2x1x32xf32>, tensor<2x16x2x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x2x32xf32>, tensor<4x2x32xf32>, tensor<2x16x4x8xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x2x32xf32>, tensor<2x4x2x16xf32>)
  return
}

// -----

func.func @mimo_projection_wrong_shape(%q: tensor<2x16x2x1x32xf32>, %k: tensor<2x16x2x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x2x32xf32>, %kb: tensor<4x2x32xf32>, %ang: tensor<2x16x4x8xf32>, %mv: tensor<4x2x16xf32>, %mo: tensor<4x2x8xf32>) {
  // expected-error @+1 {{'mimo_o' dimension 2 (P) is 8, but 'V' gives P = 16}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) mimo_v(%mv) mimo_o(%mo)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, rank = 2}
      : (tensor<2x16x2x1x32xf32>, tensor<2x16x2x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x2x32xf32>, tensor<4x2x32xf32>, tensor<2x16x4x8xf32>, tensor<4x2x16xf32>, tensor<4x2x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x2x32xf32>, tensor<2x4x2x16xf32>)
  return
}

// -----

func.func @mimo_projection_on_siso(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %mv: tensor<4x1x16xf32>, %mo: tensor<4x1x16xf32>) {
  // expected-error @+1 {{MIMO projections need the MIMO layout of 'Q' (a rank axis R)}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) mimo_v(%mv) mimo_o(%mo)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>, tensor<4x1x16xf32>, tensor<4x1x16xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @missing_initial_state_partially(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %a0: tensor<2x4x8xf32>, %h0: tensor<2x4x16x32xf32>, %k0: tensor<2x4x32xf32>, %v0: tensor<2x4x15xf32>) {
  // expected-error @+1 {{'v state' dimension 2 (P) is 15, but 'V' gives P = 16}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) initial(%a0, %h0, %k0, %v0)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x15xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @ssm_state_type_mismatch(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %a0: tensor<2x4x8xf32>, %h0: tensor<2x4x16x32xf32>, %k0: tensor<2x4x32xf32>, %v0: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'ssm state' must have element type 'bf16' (state_type), got 'f32'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) initial(%a0, %h0, %k0, %v0)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, state_type = bf16}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xbf16>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @unsupported_state_type(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{state_type must be f32 or bf16, got 'f16'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, state_type = f16}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @out_wrong_shape(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'out' dimension 3 (P) is 8, but 'V' gives P = 16}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @final_ssm_wrong_shape(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{'final ssm' dimension 3 (N) is 16, but 'Q' gives N = 32}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x16xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @dynamic_state_axis(%q: tensor<2x16x1x?xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{only the batch and sequence axes may be dynamic; 'Q' has a dynamic R, G or N axis}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x?xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

// expected-error @+1 {{rotary angle count must be even, got 7}}
func.func private @odd_rotary_angles() attributes {r = #ssm.rotary<angles = 7, pairing = adjacent>}

// -----

// expected-error @+2 {{expected ::mlir::ssm::DiscretizationRule to be one of: trapezoid, euler}}
// expected-error @+1 {{failed to parse Ssm_DiscretizationAttr parameter 'value'}}
func.func private @unknown_rule() attributes {r = #ssm.discretization<midpoint>}

// -----

func.func @step_with_sequence_axis(%q: tensor<2x16x2x1x32xf32>, %v: tensor<2x4x16xf32>, %s: tensor<2x4xf32>,
    %b: tensor<4x32xf32>, %ang: tensor<2x4x8xf32>, %h0: tensor<2x4x16x32xf32>, %k0: tensor<2x4x32xf32>) {
  // expected-error @+1 {{'Q' must have rank 3 (SISO: b, G, N) or 4 (MIMO: b, R, G, N), got 'tensor<2x16x2x1x32xf32>'}}
  %r:5 = ssm.step q(%q) k(%q) v(%v) adt(%s) dt(%s) trap(%s) bias(%b, %b) angles(%ang)
      state(%ang, %h0, %k0, %v) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x2x1x32xf32>, tensor<2x16x2x1x32xf32>, tensor<2x4x16xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
         tensor<2x4xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>,
         tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @varlen_offsets_not_i32(%q: tensor<1x16x1x32xf32>, %k: tensor<1x16x1x32xf32>, %v: tensor<1x16x4x16xf32>, %adt: tensor<1x4x16xf32>, %dt: tensor<1x4x16xf32>, %trap: tensor<1x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<1x16x4x8xf32>, %cu: tensor<4xi64>) {
  // expected-error @+1 {{'cu_seqlens' must be a 1-D tensor of i32 (sequences + 1 offsets), got 'tensor<4xi64>'}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<1x16x1x32xf32>, tensor<1x16x1x32xf32>, tensor<1x16x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<1x16x4x8xf32>, tensor<4xi64>)
      -> (tensor<1x16x4x16xf32>, tensor<3x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>)
  return
}

// -----

func.func @varlen_data_batch_not_one(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %cu: tensor<4xi32>) {
  // expected-error @+1 {{with 'cu_seqlens' the sequences are packed along L: 'Q' dimension 0 (b) must be 1, got 2}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>, tensor<4xi32>)
      -> (tensor<2x16x4x16xf32>, tensor<3x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>)
  return
}

// -----

func.func @varlen_too_few_offsets(%q: tensor<1x16x1x32xf32>, %k: tensor<1x16x1x32xf32>, %v: tensor<1x16x4x16xf32>, %adt: tensor<1x4x16xf32>, %dt: tensor<1x4x16xf32>, %trap: tensor<1x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<1x16x4x8xf32>, %cu: tensor<1xi32>) {
  // expected-error @+1 {{'cu_seqlens' needs at least 2 entries (one sequence), got 1}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<1x16x1x32xf32>, tensor<1x16x1x32xf32>, tensor<1x16x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<1x16x4x8xf32>, tensor<1xi32>)
      -> (tensor<1x16x4x16xf32>, tensor<0x4x8xf32>, tensor<0x4x16x32xf32>, tensor<0x4x32xf32>, tensor<0x4x16xf32>)
  return
}

// -----

func.func @varlen_states_per_sequence(%q: tensor<1x16x1x32xf32>, %k: tensor<1x16x1x32xf32>, %v: tensor<1x16x4x16xf32>, %adt: tensor<1x4x16xf32>, %dt: tensor<1x4x16xf32>, %trap: tensor<1x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<1x16x4x8xf32>, %cu: tensor<4xi32>,
    %a0: tensor<1x4x8xf32>, %h0: tensor<3x4x16x32xf32>, %k0: tensor<3x4x32xf32>, %v0: tensor<3x4x16xf32>) {
  // expected-error @+1 {{'angle state' dimension 0 (sequences) is 1, but 'cu_seqlens' gives sequences = 3}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      initial(%a0, %h0, %k0, %v0) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<1x16x1x32xf32>, tensor<1x16x1x32xf32>, tensor<1x16x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<1x16x4x8xf32>,
         tensor<1x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>, tensor<4xi32>)
      -> (tensor<1x16x4x16xf32>, tensor<3x4x8xf32>, tensor<3x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>)
  return
}

// -----

func.func @varlen_final_state_per_sequence(%q: tensor<1x16x1x32xf32>, %k: tensor<1x16x1x32xf32>, %v: tensor<1x16x4x16xf32>, %adt: tensor<1x4x16xf32>, %dt: tensor<1x4x16xf32>, %trap: tensor<1x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<1x16x4x8xf32>, %cu: tensor<4xi32>) {
  // expected-error @+1 {{'final ssm' dimension 0 (sequences) is 1, but 'cu_seqlens' gives sequences = 3}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<1x16x1x32xf32>, tensor<1x16x1x32xf32>, tensor<1x16x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<1x16x4x8xf32>, tensor<4xi32>)
      -> (tensor<1x16x4x16xf32>, tensor<3x4x8xf32>, tensor<1x4x16x32xf32>, tensor<3x4x32xf32>, tensor<3x4x16xf32>)
  return
}

// -----

func.func @norm_weight_wrong_shape(%q: tensor<2x16x1x32xf32>, %k: tensor<2x16x1x32xf32>, %v: tensor<2x16x4x16xf32>, %adt: tensor<2x4x16xf32>, %dt: tensor<2x4x16xf32>, %trap: tensor<2x4x16xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>, %w: tensor<4x32xf32>) {
  // expected-error @+1 {{'norm_weight' dimension 1 (P) is 32, but 'V' gives P = 16}}
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) norm(%w)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>, tensor<4x32xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @norm_weight_not_f32(%q: tensor<2x1x32xf32>, %k: tensor<2x1x32xf32>, %v: tensor<2x4x16xf32>, %adt: tensor<2x4xf32>, %dt: tensor<2x4xf32>, %trap: tensor<2x4xf32>, %qb: tensor<4x32xf32>, %kb: tensor<4x32xf32>, %ang: tensor<2x4x8xf32>,
    %a0: tensor<2x4x8xf32>, %h0: tensor<2x4x16x32xf32>, %k0: tensor<2x4x32xf32>, %v0: tensor<2x4x16xf32>, %w: tensor<4x16xbf16>) {
  // expected-error @+1 {{'norm_weight' must have element type f32, got 'bf16'}}
  %r:5 = ssm.step q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      state(%a0, %h0, %k0, %v0) norm(%w)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x1x32xf32>, tensor<2x1x32xf32>, tensor<2x4x16xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x4x8xf32>,
         tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>, tensor<4x16xbf16>)
      -> (tensor<2x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

// An empty group axis: no layer (and no division by G in the checks).
func.func @scan_zero_groups(%q: tensor<2x16x0x32xf32>, %v: tensor<2x16x4x16xf32>, %c: tensor<2x4x16xf32>,
    %b: tensor<4x32xf32>, %ang: tensor<2x16x4x8xf32>) {
  // expected-error @+1 {{the G axis of 'Q' must have at least one entry, got 0}}
  %r:5 = ssm.scan q(%q) k(%q) v(%v) adt(%c) dt(%c) trap(%c) bias(%b, %b) angles(%ang)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x0x32xf32>, tensor<2x16x0x32xf32>, tensor<2x16x4x16xf32>, tensor<2x4x16xf32>,
         tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x16x4x8xf32>)
      -> (tensor<2x16x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x16x32xf32>, tensor<2x4x32xf32>, tensor<2x4x16xf32>)
  return
}

// -----

func.func @step_zero_headdim(%q: tensor<2x1x32xf32>, %v: tensor<2x4x0xf32>, %s: tensor<2x4xf32>,
    %b: tensor<4x32xf32>, %ang: tensor<2x4x8xf32>, %h0: tensor<2x4x0x32xf32>, %k0: tensor<2x4x32xf32>) {
  // expected-error @+1 {{the P axis of 'V' must have at least one entry, got 0}}
  %r:5 = ssm.step q(%q) k(%q) v(%v) adt(%s) dt(%s) trap(%s) bias(%b, %b) angles(%ang)
      state(%ang, %h0, %k0, %v) {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x1x32xf32>, tensor<2x1x32xf32>, tensor<2x4x0xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
         tensor<2x4xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>,
         tensor<2x4x0x32xf32>, tensor<2x4x32xf32>, tensor<2x4x0xf32>)
      -> (tensor<2x4x0xf32>, tensor<2x4x8xf32>, tensor<2x4x0x32xf32>, tensor<2x4x32xf32>, tensor<2x4x0xf32>)
  return
}
