//===- SsmDialect.cpp - The ssm dialect -----------------------------------===//

#include "dialect/SsmDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::ssm;

#include "dialect/SsmDialect.cpp.inc"
#include "dialect/SsmEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SsmAttrs.cpp.inc"

#define GET_OP_CLASSES
#include "dialect/SsmOps.cpp.inc"

void SsmDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/SsmAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialect/SsmOps.cpp.inc"
      >();
}

LogicalResult
RotaryAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                   int64_t angles, RotaryPairing pairing) {
  if (angles < 0)
    return emitError() << "rotary angle count must be >= 0, got " << angles;
  if (angles % 2 != 0)
    return emitError() << "rotary angle count must be even, got " << angles;
  return success();
}
