//===- SsmkDialect.h - The kernel-level ssmk dialect ------------*- C++ -*-===//
#ifndef MAMBA3_DIALECT_SSMKDIALECT_H
#define MAMBA3_DIALECT_SSMKDIALECT_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"

#include "dialect/SsmkDialect.h.inc"
#include "dialect/SsmkEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SsmkAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialect/SsmkOps.h.inc"

namespace mlir::ssmk {
/// The discardable attribute that carries a layer's #ssmk.schedule.
inline constexpr llvm::StringLiteral kScheduleAttrName = "ssmk.schedule";
} // namespace mlir::ssmk

#endif // MAMBA3_DIALECT_SSMKDIALECT_H
