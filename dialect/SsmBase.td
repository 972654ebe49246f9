//===- SsmBase.td - The ssm dialect ------------------------*- tablegen -*-===//
//
// The `ssm` dialect states the Mamba-3 layer core (../shared/spec/mamba3-core.md):
// model-level ops on tensors, and the lower-level ops the passes expand them into.
//
//===----------------------------------------------------------------------===//
#ifndef SSM_BASE_TD
#define SSM_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Ssm_Dialect : Dialect {
  let name = "ssm";
  let cppNamespace = "::mlir::ssm";
  let summary = "Mamba-3 state space model layer core";
  let description = [{
    Ops that state the Mamba-3 recurrence (exponential-trapezoidal
    discretization, data-dependent rotary embeddings on B and C, MIMO rank-R
    updates) with value semantics, and the intermediate ops that the ssm
    passes lower them through on the way to loops and matmuls.
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::tensor::TensorDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::math::MathDialect"
  ];
}

class Ssm_Op<string mnemonic, list<Trait> traits = []>
    : Op<Ssm_Dialect, mnemonic, traits>;

#endif // SSM_BASE_TD
