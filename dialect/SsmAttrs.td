//===- SsmAttrs.td - Attributes of the ssm dialect ---------*- tablegen -*-===//
#ifndef SSM_ATTRS_TD
#define SSM_ATTRS_TD

include "dialect/SsmBase.td"

def Ssm_DiscretizationRule : I32EnumAttr<"DiscretizationRule",
    "how the continuous SSM is discretized", [
      // lambda_t = sigmoid(Trap_t): the 3-term update of Mamba-3.
      I32EnumAttrCase<"trapezoid", 0>,
      // lambda_t = 1: Mamba-2's exponential-Euler rule (beta = 0).
      I32EnumAttrCase<"euler", 1>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::ssm";
}

def Ssm_DiscretizationAttr : EnumAttr<Ssm_Dialect, Ssm_DiscretizationRule,
                                      "discretization"> {
  let assemblyFormat = "`<` $value `>`";
}

def Ssm_RotaryPairing : I32EnumAttr<"RotaryPairing",
    "which entries of the N axis a rotary angle turns together", [
      // (2i, 2i+1): the reference and the official SISO kernels.
      I32EnumAttrCase<"adjacent", 0>,
      // (i, i + N/2): the official MIMO kernels and decode path.
      I32EnumAttrCase<"half_split", 1>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::ssm";
}

def Ssm_RotaryAttr : AttrDef<Ssm_Dialect, "Rotary"> {
  let mnemonic = "rotary";
  let summary = "data-dependent rotary embedding of q and k";
  let description = [{
    `angles` is S, the number of rotary angles per head (S <= N/2, even): the
    first 2S entries of the N axis rotate, the rest pass through. `pairing`
    fixes which entries rotate together; it is part of the layer's definition
    because it permutes the ssm and k states along N.

    Example: `#ssm.rotary<angles = 16, pairing = adjacent>`
  }];
  let parameters = (ins "int64_t":$angles,
                        EnumParameter<Ssm_RotaryPairing>:$pairing);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // SSM_ATTRS_TD
