// RUN: mamba3-opt %s -split-input-file -verify-diagnostics

func.func @discretize_seqlen_mismatch(%a: tensor<2x4x16xf32>, %t: tensor<2x4x15xf32>) {
  // expected-error @+1 {{'Trap' dimension 2 (L) is 15, but 'ADT' gives L = 16}}
  %la, %ba, %g = ssm.discretize <trapezoid> %a, %a, %t
      : tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x15xf32>
      -> tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>
  return
}

// -----

func.func @discretize_bf16_coefficient(%a: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'gamma' must have element type f32, got 'bf16'}}
  %la, %ba, %g = ssm.discretize <euler> %a, %a, %a
      : tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>
      -> tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xbf16>
  return
}

// -----

func.func @rotary_result_not_per_head(%q: tensor<2x16x1x32xf32>, %b: tensor<4x32xf32>,
    %ang: tensor<2x16x4x8xf32>, %dt: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'rotated_q' dimension 3 (H) is 1, but 'DT' gives H = 4}}
  %q2, %k2, %a = ssm.rotary q(%q) k(%q) bias(%b, %b) angles(%ang) dt(%dt)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x1x32xf32>, tensor<2x16x1x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>,
         tensor<2x16x4x8xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x16x1x1x32xf32>, tensor<2x16x1x1x32xf32>, tensor<2x4x8xf32>)
  return
}

// -----

func.func @recurrence_terms_disagree(%q: tensor<2x40x1x3x32xf32>, %v: tensor<2x40x1x3x16xf32>,
    %c: tensor<2x3x10xf32>, %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x4x32xf32>,
    %v0: tensor<2x3x4x16xf32>) {
  // expected-error @+1 {{the term axis T = 40 must be L * terms_per_token = 10 * 2}}
  %y, %h = ssm.recurrence q(%q) k(%q) v(%v) coefficients(%c, %c, %c) initial(%h0, %k0, %v0)
      {terms_per_token = 2}
      : (tensor<2x40x1x3x32xf32>, tensor<2x40x1x3x32xf32>, tensor<2x40x1x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x4x32xf32>, tensor<2x3x4x16xf32>)
      -> (tensor<2x40x1x3x16xf32>, tensor<2x3x16x32xf32>)
  return
}

// -----

func.func @recurrence_previous_terms_wrong(%q: tensor<2x40x1x3x32xf32>, %v: tensor<2x40x1x3x16xf32>,
    %c: tensor<2x3x10xf32>, %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x1x32xf32>,
    %v0: tensor<2x3x4x16xf32>) {
  // expected-error @+1 {{'init_k' dimension 2 (R*terms_per_token) is 1, but 'q' gives R*terms_per_token = 4}}
  %y, %h = ssm.recurrence q(%q) k(%q) v(%v) coefficients(%c, %c, %c) initial(%h0, %k0, %v0)
      {terms_per_token = 4}
      : (tensor<2x40x1x3x32xf32>, tensor<2x40x1x3x32xf32>, tensor<2x40x1x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x1x32xf32>, tensor<2x3x4x16xf32>)
      -> (tensor<2x40x1x3x16xf32>, tensor<2x3x16x32xf32>)
  return
}

// -----

func.func @recurrence_bf16(%q: tensor<2x10x1x3x32xbf16>, %v: tensor<2x10x1x3x16xf32>,
    %c: tensor<2x3x10xf32>, %h0: tensor<2x3x16x32xf32>, %k0: tensor<2x3x1x32xf32>,
    %v0: tensor<2x3x1x16xf32>) {
  // expected-error @+1 {{operands must be f32 (the recurrence runs in the accumulation type)}}
  %y, %h = ssm.recurrence q(%q) k(%q) v(%v) coefficients(%c, %c, %c) initial(%h0, %k0, %v0)
      : (tensor<2x10x1x3x32xbf16>, tensor<2x10x1x3x32xbf16>, tensor<2x10x1x3x16xf32>,
         tensor<2x3x10xf32>, tensor<2x3x10xf32>, tensor<2x3x10xf32>,
         tensor<2x3x16x32xf32>, tensor<2x3x1x32xf32>, tensor<2x3x1x16xf32>)
      -> (tensor<2x10x1x3x16xf32>, tensor<2x3x16x32xf32>)
  return
}

// -----

func.func @rotary_zero_groups(%q: tensor<2x16x0x32xf32>, %b: tensor<4x32xf32>,
    %ang: tensor<2x16x4x8xf32>, %dt: tensor<2x4x16xf32>) {
  // expected-error @+1 {{the G axis of 'Q' must have at least one entry, got 0}}
  %q2, %k2, %a = ssm.rotary q(%q) k(%q) bias(%b, %b) angles(%ang) dt(%dt)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>}
      : (tensor<2x16x0x32xf32>, tensor<2x16x0x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>,
         tensor<2x16x4x8xf32>, tensor<2x4x16xf32>)
      -> (tensor<2x16x1x4x32xf32>, tensor<2x16x1x4x32xf32>, tensor<2x4x8xf32>)
  return
}
