//===- HostObject.cpp - LLVM dialect to a host shared library -------------===//

#include "codegen/HostObject.h"

#include "llvm/MC/MCSubtargetInfo.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using namespace mlir;
using llvm::createStringError;
using llvm::Error;
using llvm::Expected;

namespace {

/// A target machine for the host triple and the requested CPU.
Expected<std::unique_ptr<llvm::TargetMachine>>
createHostTargetMachine(const ssm::HostTargetOptions &options) {
  static const bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;

  llvm::Triple triple(llvm::sys::getProcessTriple());
  std::string error;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return createStringError("no LLVM target for the host triple '" +
                             triple.str() + "': " + error);

  std::string cpu = options.cpu;
  llvm::SubtargetFeatures features;
  if (cpu == "native") {
    cpu = llvm::sys::getHostCPUName().str();
    for (const auto &feature : llvm::sys::getHostCPUFeatures())
      features.AddFeature(feature.getKey(), feature.getValue());
  }
  // An unknown CPU name would end in an LLVM ERROR while selecting
  // instructions; name the known ones instead.
  std::unique_ptr<llvm::MCSubtargetInfo> info(
      target->createMCSubtargetInfo(triple, "", ""));
  if (!cpu.empty() && cpu != "generic" && info && !info->isCPUStringValid(cpu))
    return createStringError(
        "--host-cpu '" + cpu + "' is not a CPU LLVM knows for '" +
        triple.str() +
        "'; use native, generic or a name from `llc -mcpu=help` (e.g. "
        "x86-64-v3, znver4, sapphirerapids)");
  llvm::CodeGenOptLevel level = options.optLevel >= 3
                                    ? llvm::CodeGenOptLevel::Aggressive
                                : options.optLevel == 0
                                    ? llvm::CodeGenOptLevel::None
                                    : llvm::CodeGenOptLevel::Default;
  // PIC: the object goes into a shared library.
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, cpu, features.getString(), llvm::TargetOptions(),
      llvm::Reloc::PIC_, std::nullopt, level));
  if (!machine)
    return createStringError("cannot create an LLVM target machine for '" +
                             triple.str() + "', cpu '" + cpu + "'");
  return machine;
}

} // namespace

Expected<std::unique_ptr<llvm::Module>>
ssm::translateToOptimizedLLVMIR(ModuleOp module, llvm::LLVMContext &llvmContext,
                                const HostTargetOptions &options) {
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  module->getContext()->appendDialectRegistry(registry);

  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "mamba3_kernel");
  if (!llvmModule)
    return createStringError(
        "translation to LLVM IR failed (is the module fully in the LLVM "
        "dialect?)");

  auto machine = createHostTargetMachine(options);
  if (!machine)
    return machine.takeError();
  llvmModule->setTargetTriple((*machine)->getTargetTriple());
  llvmModule->setDataLayout((*machine)->createDataLayout());

  auto optimize = makeOptimizingTransformer(options.optLevel,
                                            /*sizeLevel=*/0, machine->get());
  if (Error err = optimize(llvmModule.get()))
    return createStringError("LLVM optimization failed: " +
                             llvm::toString(std::move(err)));
  return llvmModule;
}

Error ssm::emitHostObject(llvm::Module &module,
                          const HostTargetOptions &options,
                          llvm::StringRef objectPath) {
  auto machine = createHostTargetMachine(options);
  if (!machine)
    return machine.takeError();
  module.setDataLayout((*machine)->createDataLayout());

  std::error_code ec;
  llvm::raw_fd_ostream os(objectPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return createStringError("cannot write '" + objectPath + "': " +
                             ec.message());
  llvm::legacy::PassManager pm;
  if ((*machine)->addPassesToEmitFile(pm, os, /*DwoOut=*/nullptr,
                                      llvm::CodeGenFileType::ObjectFile))
    return createStringError("the host target cannot emit object files");
  pm.run(module);
  os.flush();
  if (os.has_error())
    return createStringError("error writing '" + objectPath + "'");
  return Error::success();
}

Error ssm::linkSharedLibrary(llvm::StringRef objectPath,
                             llvm::StringRef sharedLibPath) {
  // The system compiler driver knows where this machine's libc and libm are;
  // LLVM alone (no lld in the packages we use) does not.
  std::string compiler;
  std::optional<std::string> fromEnv = llvm::sys::Process::GetEnv("CC");
  if (fromEnv && !fromEnv->empty()) {
    if (auto found = llvm::sys::findProgramByName(*fromEnv))
      compiler = *found;
    else
      return createStringError("$CC is '" + *fromEnv +
                               "', which is not an executable on PATH");
  } else {
    for (const char *name : {"cc", "gcc", "clang"})
      if (auto found = llvm::sys::findProgramByName(name)) {
        compiler = *found;
        break;
      }
  }
  if (compiler.empty())
    return createStringError(
        "no C compiler found to link kernel.so (looked for $CC, cc, gcc and "
        "clang on PATH); install one or set CC");

  // -Bsymbolic: calls inside kernel.so (the C-interface wrapper calling the
  // kernel) bind locally, so several loaded bundles never interpose.
  llvm::SmallVector<llvm::StringRef> args = {compiler,      "-shared",
                                             "-Wl,-Bsymbolic", "-o",
                                             sharedLibPath, objectPath,
                                             "-lm"};
  std::string message;
  bool failedToRun = false;
  int rc = llvm::sys::ExecuteAndWait(compiler, args, /*Env=*/std::nullopt,
                                     /*Redirects=*/{}, /*SecondsToWait=*/0,
                                     /*MemoryLimit=*/0, &message,
                                     &failedToRun);
  if (failedToRun || rc != 0) {
    std::string command;
    for (llvm::StringRef arg : args)
      command += (command.empty() ? "" : " ") + arg.str();
    return createStringError("linking failed (" +
                             (message.empty() ? "exit code " +
                                                    std::to_string(rc)
                                              : message) +
                             "): " + command);
  }
  return Error::success();
}

Error ssm::compileToSharedLibrary(ModuleOp module,
                                  const HostTargetOptions &options,
                                  llvm::StringRef sharedLibPath) {
  llvm::LLVMContext llvmContext;
  auto llvmModule = translateToOptimizedLLVMIR(module, llvmContext, options);
  if (!llvmModule)
    return llvmModule.takeError();
  llvm::SmallString<256> objectPath(sharedLibPath);
  llvm::sys::path::replace_extension(objectPath, ".o");
  Error err = emitHostObject(**llvmModule, options, objectPath);
  if (!err)
    err = linkSharedLibrary(objectPath, sharedLibPath);
  llvm::sys::fs::remove(objectPath);
  return err;
}
