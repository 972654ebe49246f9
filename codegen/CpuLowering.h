//===- CpuLowering.h - Tensor-level IR to the LLVM dialect for the host -*- C++ -*-===//
//
// The CPU half of `ssm-to-cpu`: takes what the ssm expansion leaves
// (linalg/scf/tensor/arith/math on tensors, bufferization.to_tensor of memref
// arguments and bufferization.materialize_in_destination into memref
// arguments) down to the LLVM dialect, ready for translation to LLVM IR.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_CPULOWERING_H
#define MAMBA3_CODEGEN_CPULOWERING_H

#include <memory>

namespace mlir {
class OpPassManager;
class Pass;
namespace ssm {

/// Appends the host lowering to `pm` (anchored on builtin.module):
/// one-shot bufferization, ownership-based deallocation, linalg to loops,
/// and the conversions of every remaining dialect to LLVM. Functions that
/// carry `llvm.emit_c_interface` get a `_mlir_ciface_<name>` wrapper taking
/// one StridedMemRef descriptor pointer per memref argument. The generated
/// code calls only malloc/free and libm (no MLIR runtime library).
void addCpuLoweringPasses(OpPassManager &pm);

/// Rewrites every memref.copy that does not copy between two identity-layout
/// memrefs into a linalg.copy (later loops): MemRefToLLVM turns such copies
/// into calls to `memrefCopy` from MLIR's C runner utilities, which a kernel
/// bundle does not ship. Runs on func.func.
std::unique_ptr<Pass> createStridedCopyToLinalgPass();

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_CPULOWERING_H
