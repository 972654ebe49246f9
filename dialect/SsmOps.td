//===- SsmOps.td - Operations of the ssm dialect -----------*- tablegen -*-===//
#ifndef SSM_OPS_TD
#define SSM_OPS_TD

include "dialect/SsmAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Model-level ops
//===----------------------------------------------------------------------===//

// Attributes shared by ssm.scan and ssm.step.
defvar Ssm_LayerAttrs = (ins
  DefaultValuedAttr<Ssm_DiscretizationAttr,
      "::mlir::ssm::DiscretizationRule::trapezoid">:$rule,
  Ssm_RotaryAttr:$rotary,
  DefaultValuedAttr<ConfinedAttr<I64Attr, [IntMinValue<1>]>, "1">:$rank,
  // Element type of the ssm state; f32 when absent.
  OptionalAttr<TypeAttr>:$state_type,
  UnitAttr:$wrap_angle,
  // Epsilon of the optional per-head RMSNorm (with `norm_weight`).
  DefaultValuedAttr<F32Attr, "1.0e-5f">:$norm_eps
);

def Ssm_ScanOp : Ssm_Op<"scan", [Pure, AttrSizedOperandSegments]> {
  let summary = "the Mamba-3 layer core over a whole sequence";
  let description = [{
    Computes, for every batch b, head h and token t, the recurrence of
    mamba3-core.md: cumulative rotary angles, rotated and biased q/k, the
    discretized 3-term state update and the output y_t = H_t q_t + D v_t,
    gated by silu(Z). With MIMO rank R > 1 the V/Z up-projections and the O
    down-projection are part of the op.

    Layouts (API layouts of the official kernels; `b` and `L` may be dynamic):
    - SISO: Q, K (b, L, G, N); Q_bias, K_bias (H, N); k state (b, H, N);
      v state (b, H, P).
    - MIMO: Q, K (b, L, R, G, N); Q_bias, K_bias (H, R, N);
      mimo_v/mimo_z/mimo_o (H, R, P); k state (b, H, R, N); v state (b, H, R, P).
    - Both: V, Z, out (b, L, H, P); ADT, DT, Trap (b, H, L);
      Angles (b, L, H, S), or (b, L, S) shared by all heads; D (H); angle
      state (b, H, S); ssm state (b, H, P, N).

    Results: out, and the final angle, ssm, k and v states. A MIMO layer
    without `mimo_o` skips the down projection: out holds the per-rank
    outputs y_{t,r} (gated, when Z is given, by silu(mimo_z[h,r] * Z)) as
    (b, L, R, H, P), the official API's layout for MIMO_Out=None.

    Per-head RMSNorm (the optional fused variant of the spec's MIMO
    section, for SISO too): with `norm_weight` (H, P) f32, each y_{t,r} =
    H_t q_{t,r} + D v_{t,r} is scaled by rsqrt(mean_p y_{t,r,p}^2 +
    norm_eps) and by norm_weight[h] before the gate.

    Variable-length batches (`cu_seqlens`, as in the official API): with
    `cu_seqlens` (i32, sequences + 1 entries) the data tensors hold one packed
    batch (b = 1) of sequences s = 0 .. sequences-1 occupying tokens
    [cu_seqlens[s], cu_seqlens[s+1]) of the L axis; the recurrence restarts
    at each sequence, and the initial and final states have one entry per
    sequence (their batch axis is `sequences`). cu_seqlens[0] = 0, the
    entries increase strictly and the last one is L; kernels assume this
    (the runtime checks it before launching).

    Example:
    ```mlir
    %out, %angle, %ssm, %k, %v = ssm.scan
        q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap)
        bias(%qb, %kb) angles(%ang) d(%d) z(%z)
        {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
        : (...) -> (...)
    ```
  }];
  let arguments = !con((ins
    AnyRankedTensor:$Q, AnyRankedTensor:$K, AnyRankedTensor:$V,
    AnyRankedTensor:$ADT, AnyRankedTensor:$DT, AnyRankedTensor:$Trap,
    AnyRankedTensor:$Q_bias, AnyRankedTensor:$K_bias, AnyRankedTensor:$Angles,
    Optional<AnyRankedTensor>:$D, Optional<AnyRankedTensor>:$Z,
    Optional<AnyRankedTensor>:$init_angle, Optional<AnyRankedTensor>:$init_ssm,
    Optional<AnyRankedTensor>:$init_k, Optional<AnyRankedTensor>:$init_v,
    Optional<AnyRankedTensor>:$mimo_v, Optional<AnyRankedTensor>:$mimo_z,
    Optional<AnyRankedTensor>:$mimo_o,
    Optional<AnyRankedTensor>:$norm_weight,
    Optional<AnyRankedTensor>:$cu_seqlens), Ssm_LayerAttrs);
  let results = (outs AnyRankedTensor:$out, AnyRankedTensor:$final_angle,
                      AnyRankedTensor:$final_ssm, AnyRankedTensor:$final_k,
                      AnyRankedTensor:$final_v);
  let assemblyFormat = [{
    `q` `(` $Q `)` `k` `(` $K `)` `v` `(` $V `)`
    `adt` `(` $ADT `)` `dt` `(` $DT `)` `trap` `(` $Trap `)`
    `bias` `(` $Q_bias `,` $K_bias `)` `angles` `(` $Angles `)`
    (`d` `(` $D^ `)`)? (`z` `(` $Z^ `)`)?
    (`initial` `(` $init_angle^ `,` $init_ssm `,` $init_k `,` $init_v `)`)?
    (`mimo_v` `(` $mimo_v^ `)`)? (`mimo_z` `(` $mimo_z^ `)`)?
    (`mimo_o` `(` $mimo_o^ `)`)?
    (`norm` `(` $norm_weight^ `)`)?
    (`cu_seqlens` `(` $cu_seqlens^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// True for a packed variable-length batch (cu_seqlens given).
    bool isVarlen() { return static_cast<bool>(getCuSeqlens()); }
    /// True when Q has the MIMO layout (a rank axis).
    bool isMimoLayout() { return getQ().getType().getRank() == 5; }
    /// True when Angles (b, L, S) are shared by all heads.
    bool hasBroadcastAngles() { return getAngles().getType().getRank() == 3; }
    /// True for a MIMO layer without the down projection: out per rank.
    bool hasPerRankOutputs() { return isMimoLayout() && !getMimoO(); }
    /// The ssm state's element type (f32 unless `state_type` says otherwise).
    ::mlir::Type getStateElementType() {
      auto t = getStateType();
      return t ? *t : ::mlir::Float32Type::get(getContext());
    }
  }];
}

def Ssm_StepOp : Ssm_Op<"step", [Pure, AttrSizedOperandSegments]> {
  let summary = "one decode token of the Mamba-3 layer core";
  let description = [{
    The recurrence of ssm.scan for a single token, with the states given:
    the layouts of ssm.scan without the L axis (Q, K (b, G, N) or
    (b, R, G, N); V, Z, out (b, H, P); ADT, DT, Trap (b, H); Angles (b, H, S)
    or (b, S)).
    Results: out and the new angle, ssm, k and v states (out (b, R, H, P)
    per rank for a MIMO step without `mimo_o`).
  }];
  let arguments = !con((ins
    AnyRankedTensor:$Q, AnyRankedTensor:$K, AnyRankedTensor:$V,
    AnyRankedTensor:$ADT, AnyRankedTensor:$DT, AnyRankedTensor:$Trap,
    AnyRankedTensor:$Q_bias, AnyRankedTensor:$K_bias, AnyRankedTensor:$Angles,
    Optional<AnyRankedTensor>:$D, Optional<AnyRankedTensor>:$Z,
    AnyRankedTensor:$state_angle, AnyRankedTensor:$state_ssm,
    AnyRankedTensor:$state_k, AnyRankedTensor:$state_v,
    Optional<AnyRankedTensor>:$mimo_v, Optional<AnyRankedTensor>:$mimo_z,
    Optional<AnyRankedTensor>:$mimo_o,
    Optional<AnyRankedTensor>:$norm_weight), Ssm_LayerAttrs);
  let results = (outs AnyRankedTensor:$out, AnyRankedTensor:$new_angle,
                      AnyRankedTensor:$new_ssm, AnyRankedTensor:$new_k,
                      AnyRankedTensor:$new_v);
  let assemblyFormat = [{
    `q` `(` $Q `)` `k` `(` $K `)` `v` `(` $V `)`
    `adt` `(` $ADT `)` `dt` `(` $DT `)` `trap` `(` $Trap `)`
    `bias` `(` $Q_bias `,` $K_bias `)` `angles` `(` $Angles `)`
    (`d` `(` $D^ `)`)? (`z` `(` $Z^ `)`)?
    `state` `(` $state_angle `,` $state_ssm `,` $state_k `,` $state_v `)`
    (`mimo_v` `(` $mimo_v^ `)`)? (`mimo_z` `(` $mimo_z^ `)`)?
    (`mimo_o` `(` $mimo_o^ `)`)?
    (`norm` `(` $norm_weight^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    bool isMimoLayout() { return getQ().getType().getRank() == 4; }
    bool hasBroadcastAngles() { return getAngles().getType().getRank() == 2; }
    bool hasPerRankOutputs() { return isMimoLayout() && !getMimoO(); }
    ::mlir::Type getStateElementType() {
      auto t = getStateType();
      return t ? *t : ::mlir::Float32Type::get(getContext());
    }
  }];
}

//===----------------------------------------------------------------------===//
// Expanded ops: what ssm-decompose turns a scan or step into
//===----------------------------------------------------------------------===//

def Ssm_DiscretizeOp : Ssm_Op<"discretize", [Pure]> {
  let summary = "per-token coefficients of the discretized recurrence";
  let description = [{
    For every (b, h, t): log_alpha = ADT (alpha = exp(ADT));
    beta_over_alpha = (1 - lambda) * DT and gamma = lambda * DT with
    lambda = sigmoid(Trap) for `trapezoid`, lambda = 1 for `euler`
    (beta = 0: Mamba-2's rule). The state update is then
    `H_t = alpha_t (H_{t-1} + beta_over_alpha_t v_{t-1} k_{t-1}^T) + gamma_t v_t k_t^T`,
    i.e. the width-2 convolution form of the spec. The coefficients are kept
    as log(alpha) and beta / alpha = (1 - lambda) DT because the chunked form
    needs cumulative sums of log(alpha) and the off-diagonal weight of the
    convolution; computing them from alpha and beta would divide by alpha,
    which underflows for strongly decaying heads.

    All operands and results have shape (b, H, L); results are f32.
  }];
  let arguments = (ins AnyRankedTensor:$ADT, AnyRankedTensor:$DT,
                       AnyRankedTensor:$Trap,
                       Ssm_DiscretizationAttr:$rule);
  let results = (outs AnyRankedTensor:$log_alpha,
                      AnyRankedTensor:$beta_over_alpha,
                      AnyRankedTensor:$gamma);
  let assemblyFormat = [{
    $rule $ADT `,` $DT `,` $Trap attr-dict `:` type($ADT) `,` type($DT) `,`
    type($Trap) `->` type($log_alpha) `,` type($beta_over_alpha) `,` type($gamma)
  }];
  let hasVerifier = 1;
}

def Ssm_RotaryOp : Ssm_Op<"rotary", [Pure]> {
  let summary = "cumulative rotary angles and the rotation of biased q and k";
  let description = [{
    theta_t = theta_{t-1} + pi * tanh(Angles_t) * DT_t (wrapped into
    [0, 2 pi) after every token when `wrap_angle` is set), then
    q = Rot(theta_t)(Q + Q_bias), k = Rot(theta_t)(K + K_bias), with groups
    broadcast to heads.

    Q, K have the ssm.scan layouts, SISO (b, L, G, N) or MIMO (b, L, R, G, N);
    Angles (b, L, H, S) or (b, L, S) shared by all heads;
    biases (H, N) or (H, R, N). Results rotated_q, rotated_k are f32 of shape (b, L, R, H, N)
    (R = 1 for SISO) and the final angle (b, H, S).
  }];
  let arguments = (ins AnyRankedTensor:$Q, AnyRankedTensor:$K,
                       AnyRankedTensor:$Q_bias, AnyRankedTensor:$K_bias,
                       AnyRankedTensor:$Angles, AnyRankedTensor:$DT,
                       Optional<AnyRankedTensor>:$init_angle,
                       Ssm_RotaryAttr:$rotary, UnitAttr:$wrap_angle);
  let results = (outs AnyRankedTensor:$rotated_q, AnyRankedTensor:$rotated_k,
                      AnyRankedTensor:$final_angle);
  let assemblyFormat = [{
    `q` `(` $Q `)` `k` `(` $K `)` `bias` `(` $Q_bias `,` $K_bias `)`
    `angles` `(` $Angles `)` `dt` `(` $DT `)`
    (`initial` `(` $init_angle^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Ssm_RecurrenceOp : Ssm_Op<"recurrence", [Pure]> {
  let summary = "the linear state recurrence on rotated q/k and discretized coefficients";
  let description = [{
    For every batch b and head h, with `tpt = terms_per_token`, token t owns
    the rows [t*tpt, (t+1)*tpt) of the T axis and, on each row, all R rank
    entries: the R*tpt rank-1 terms (v, k) of a token. Then

      H_t = exp(log_alpha_t) (H_{t-1} + beta_over_alpha_t sum_{j in t-1} v_j k_j^T)
            + gamma_t sum_{j in t} v_j k_j^T
      y_j = H_t q_j    for every term j of token t

    where the terms of token -1 are `init_k`, `init_v` and H_{-1} = `init_ssm`.

    Shapes: q, k (b, T, R, H, N); v, y (b, T, R, H, P); log_alpha,
    beta_over_alpha, gamma (b, H, L) with T = L * tpt; init_ssm and
    final_ssm (b, H, P, N); init_k (b, H, R*tpt, N); init_v (b, H, R*tpt, P).
    All f32.

    MIMO enters with tpt = 1 and R > 1; ssm-mimo-to-matmul moves the rank
    axis into the T axis (R = 1, tpt = R), which is what lets ssm-chunk treat
    a chunk of C tokens as C*R terms of one matmul.
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                       AnyRankedTensor:$v, AnyRankedTensor:$log_alpha,
                       AnyRankedTensor:$beta_over_alpha, AnyRankedTensor:$gamma,
                       AnyRankedTensor:$init_ssm, AnyRankedTensor:$init_k,
                       AnyRankedTensor:$init_v,
                       DefaultValuedAttr<ConfinedAttr<I64Attr, [IntMinValue<1>]>,
                                         "1">:$terms_per_token);
  let results = (outs AnyRankedTensor:$y, AnyRankedTensor:$final_ssm);
  let assemblyFormat = [{
    `q` `(` $q `)` `k` `(` $k `)` `v` `(` $v `)`
    `coefficients` `(` $log_alpha `,` $beta_over_alpha `,` $gamma `)`
    `initial` `(` $init_ssm `,` $init_k `,` $init_v `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // SSM_OPS_TD
