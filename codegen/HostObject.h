//===- HostObject.h - LLVM dialect to a host shared library -----*- C++ -*-===//
//
// The last steps of the CPU path: LLVM dialect -> LLVM IR -> optimized LLVM
// IR -> object file for the host -> shared library (linked by the system C
// compiler, which knows where libc and libm live).
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_HOSTOBJECT_H
#define MAMBA3_CODEGEN_HOSTOBJECT_H

#include "mlir/IR/BuiltinOps.h"

#include "llvm/Support/Error.h"

#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace mlir {
namespace ssm {

struct HostTargetOptions {
  /// LLVM CPU name, or "native" for the CPU of this machine. The default
  /// stays portable because bundles travel to other machines (e.g. the GPU
  /// host) whose CPU may lack this one's vector extensions.
  std::string cpu = "generic";
  /// LLVM optimization level (0 to 3).
  unsigned optLevel = 3;
};

/// Translates an LLVM-dialect module to LLVM IR for the host target and
/// runs the LLVM optimization pipeline on it.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateToOptimizedLLVMIR(ModuleOp module, llvm::LLVMContext &llvmContext,
                           const HostTargetOptions &options);

/// Writes `module` as a host object file to `objectPath`.
llvm::Error emitHostObject(llvm::Module &module,
                           const HostTargetOptions &options,
                           llvm::StringRef objectPath);

/// Links `objectPath` into the shared library `sharedLibPath` with the
/// system C compiler ($CC, else cc, gcc or clang found on PATH), adding -lm.
llvm::Error linkSharedLibrary(llvm::StringRef objectPath,
                              llvm::StringRef sharedLibPath);

/// All of the above: `module` (LLVM dialect) to `sharedLibPath`. The object
/// file is written next to it and removed afterwards.
llvm::Error compileToSharedLibrary(ModuleOp module,
                                   const HostTargetOptions &options,
                                   llvm::StringRef sharedLibPath);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_HOSTOBJECT_H
