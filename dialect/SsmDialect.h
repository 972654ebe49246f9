//===- SsmDialect.h - The ssm dialect ---------------------------*- C++ -*-===//
#ifndef MAMBA3_DIALECT_SSMDIALECT_H
#define MAMBA3_DIALECT_SSMDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/SsmDialect.h.inc"
#include "dialect/SsmEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SsmAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialect/SsmOps.h.inc"

#endif // MAMBA3_DIALECT_SSMDIALECT_H
