//===- Passes.td - ssm passes ------------------------------*- tablegen -*-===//
#ifndef SSM_PASSES_TD
#define SSM_PASSES_TD

include "mlir/Pass/PassBase.td"

def SsmSplitSequences : Pass<"ssm-split-sequences"> {
  let summary = "Turn a packed variable-length scan into a loop of scans";
  let description = [{
    Rewrites every ssm.scan with `cu_seqlens` into an scf.for over the
    sequences. Each trip reads the sequence's token range from cu_seqlens,
    slices it out of the packed operands (a dynamic L) together with the
    sequence's initial states, runs a batch-1 ssm.scan without cu_seqlens,
    and inserts its out and final states into the loop-carried packed
    results. Later passes see only ordinary scans.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def SsmDecompose : Pass<"ssm-decompose"> {
  let summary = "Split ssm.scan / ssm.step into discretize, rotary, recurrence and the epilogue";
  let description = [{
    Rewrites every model-level op into the ops that each name one ingredient
    of the layer: `ssm.discretize` (the rule), `ssm.rotary` (cumulative angles
    and rotation), `ssm.recurrence` (the state update on f32 data), and linalg
    ops for the rest: conversion of bf16/f16 data to f32, the MIMO V
    up-projection, zero initial states when none are given, the skip (D), the
    gate (silu(Z), MIMO Z up-projection), the MIMO O down-projection, and the
    final k/v states. A step becomes a one-token scan.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmExpandDiscretization : Pass<"ssm-expand-discretization"> {
  let summary = "Turn the discretization rule into explicit per-token coefficients";
  let description = [{
    Lowers `ssm.discretize` to one elementwise linalg.generic that produces
    log(alpha) = ADT, beta/alpha = (1 - lambda) DT and gamma = lambda DT, with
    lambda = sigmoid(Trap) (trapezoid) or 1 (euler: beta = 0).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmExpandRotary : Pass<"ssm-expand-rotary"> {
  let summary = "Cumulative rotary angles and the rotation of biased q/k";
  let description = [{
    Lowers `ssm.rotary` to an scf.for over the sequence that accumulates
    theta_t = theta_{t-1} + pi tanh(Angles_t) DT_t (wrapped into [0, 2 pi)
    when asked), and a linalg.generic that adds the bias, broadcasts groups to
    heads and rotates adjacent or half-split pairs.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmMimoToMatmul : Pass<"ssm-mimo-to-matmul"> {
  let summary = "Make the R rank-1 terms of a token rows of the term axis";
  let description = [{
    Rewrites an `ssm.recurrence` with rank R > 1 into one with R = 1 and
    terms_per_token = R by folding the rank axis into the term axis. A chunk
    of C tokens then holds C*R terms, and ssm-chunk computes the state update
    as one (P x C*R) . (C*R x N) product and the intra-chunk part as a
    (C*R x C*R) masked product whose weights are constant on R x R blocks.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def SsmTileSequence : Pass<"ssm-tile-sequence"> {
  let summary = "Tile a scan's sequence into a loop over chunks of scans";
  let description = [{
    Rewrites each `ssm.scan` (not varlen: run ssm-split-sequences first)
    into an scf.for over chunk starts c = 0, C, 2C, ... of its sequence that
    carries out and the angle, ssm, k and v states: each iteration slices
    tokens [c, c + min(C, L - c)) out of Q, K, V, ADT, DT, Trap, Angles and
    Z, runs an `ssm.scan` of the chunk from the carried states (zeros for a
    scan without initial states), inserts its out and carries its final
    states. The ssm state is carried in f32 (a bf16 state type is widened
    before the loop and narrowed after it with linalg.copy). This is the
    chunked IR that both targets start from: the CPU path expands each
    chunk's scan, the GPU path lowers the loop onto its kernels
    (`ssm-gpu-schedule` tiles with the kernel's chunk size).
  }];
  let options = [
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "tokens per chunk (positive)">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def SsmChunk : Pass<"ssm-chunk"> {
  let summary = "Rewrite the recurrence into the chunked (matmul) form";
  let description = [{
    Lowers `ssm.recurrence` to an scf.for over chunks of `chunk-size` tokens
    (the last chunk may be shorter; the sequence length may be dynamic). Per
    chunk: cumulative log decays, the pending previous-token term folded into
    the entering state, the intra-chunk masked product ((q k^T) o W) v, the
    contribution of the entering state, and the chunk's state update. The
    recurrence must have R = 1 (run ssm-mimo-to-matmul first for MIMO).
  }];
  let options = [
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "tokens per chunk (1 to 1024)">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SsmLowerRecurrence : Pass<"ssm-lower-recurrence"> {
  let summary = "Lower the recurrence token by token (no chunking)";
  let description = [{
    Lowers `ssm.recurrence` to an scf.for over tokens carrying the P x N
    state: the definition of the recurrence, used as the unchunked path and
    to check the chunked one.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

#endif // SSM_PASSES_TD
