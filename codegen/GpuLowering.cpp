//===- GpuLowering.cpp - GPU kernels to NVVM, PTX and cubin ---------------===//

#include "codegen/GpuLowering.h"

#include "passes/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Regex.h"

#include <cstdlib>

using namespace mlir;
using namespace mlir::ssm;

void mlir::ssm::addGpuLoweringPasses(OpPassManager &pm,
                                     const SsmToNvvmOptions &options) {
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.optLevel = static_cast<unsigned>(options.optLevel);
  pm.addPass(createGpuNVVMAttachTarget(target));

  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  // cp.async (nvgpu.device_async_copy) of the chunked kernel.
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions toNvvm;
  toNvvm.useBarePtrCallConv = true;
  kernels.addPass(createConvertGpuOpsToNVVMOps(toNvvm));
  // NVVM ops without an LLVM intrinsic (warpgroup MMA) become inline PTX.
  kernels.addPass(createConvertNVVMToLLVMPass());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::ssm::addSsmToNvvmStage(OpPassManager &pm, SsmToNvvmStage stage,
                                  const SsmToNvvmOptions &options) {
  switch (stage) {
  case SsmToNvvmStage::Schedule:
    pm.addPass(createSsmGpuSchedule(options.toScheduleOptions()));
    return;
  case SsmToNvvmStage::Kernels:
    pm.addPass(createSsmToGpu());
    pm.addPass(createSsmkPlanSharedMemory());
    return;
  case SsmToNvvmStage::Bodies:
    pm.addPass(createSsmkBuildKernels());
    return;
  case SsmToNvvmStage::Lowering:
    addGpuLoweringPasses(pm, options);
    return;
  }
}

void mlir::ssm::buildSsmToNvvmPipeline(OpPassManager &pm,
                                       const SsmToNvvmOptions &options) {
  for (SsmToNvvmStage stage :
       {SsmToNvvmStage::Schedule, SsmToNvvmStage::Kernels,
        SsmToNvvmStage::Bodies, SsmToNvvmStage::Lowering})
    addSsmToNvvmStage(pm, stage, options);
}

std::string mlir::ssm::defaultCudaToolkitPath() {
  for (const char *var : {"CUDA_HOME", "CUDA_PATH"})
    if (const char *value = std::getenv(var); value && *value)
      return value;
  return "/usr/local/cuda";
}

llvm::Expected<std::string>
mlir::ssm::serializeToPtx(ModuleOp module, llvm::StringRef toolkitPath) {
  auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
  if (gpuModules.size() != 1)
    return llvm::createStringError(
        "expected one gpu.module to serialize, found " +
        std::to_string(gpuModules.size()));
  // Work on a copy: the caller keeps the NVVM-level module for inspection.
  OwningOpRef<ModuleOp> copy = module.clone();
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  GpuModuleToBinaryPassOptions binary;
  binary.toolkitPath = toolkitPath.str();
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
  if (failed(pm.run(*copy)))
    return llvm::createStringError(
        "serializing the gpu.module to PTX failed (see the message above)");
  for (auto binaryOp : copy->getOps<gpu::BinaryOp>())
    for (Attribute object : binaryOp.getObjects())
      if (auto obj = dyn_cast<gpu::ObjectAttr>(object))
        return obj.getObject().str();
  return llvm::createStringError("gpu-module-to-binary produced no object");
}

/// The integer that the first group of regex `pattern` captures in `text`,
/// or -1 when it does not match.
static int64_t findNumber(llvm::StringRef text, llvm::StringRef pattern) {
  llvm::SmallVector<llvm::StringRef> groups;
  if (!llvm::Regex(pattern).match(text, &groups) || groups.size() < 2)
    return -1;
  int64_t value = -1;
  return groups[1].getAsInteger(10, value) ? -1 : value;
}

llvm::Expected<CubinResult>
mlir::ssm::assembleCubin(llvm::StringRef ptx, llvm::StringRef chip,
                         llvm::StringRef toolkitPath) {
  llvm::SmallString<256> ptxas(toolkitPath);
  llvm::sys::path::append(ptxas, "bin", "ptxas");
  if (!llvm::sys::fs::can_execute(ptxas))
    return llvm::createStringError(
        "ptxas not found at '" + ptxas +
        "': install the CUDA toolkit or point --cuda-toolkit (or CUDA_HOME) "
        "at it; --emit=ptx works without it");

  llvm::SmallString<128> ptxPath, cubinPath, logPath;
  for (auto [path, suffix] :
       {std::pair<llvm::SmallString<128> *, const char *>{&ptxPath, "ptx"},
        {&cubinPath, "cubin"},
        {&logPath, "log"}})
    if (std::error_code ec =
            llvm::sys::fs::createTemporaryFile("mamba3-kernel", suffix, *path))
      return llvm::createStringError("cannot create a temporary file: " +
                                     ec.message());
  auto cleanup = llvm::make_scope_exit([&] {
    for (auto *path : {&ptxPath, &cubinPath, &logPath})
      llvm::sys::fs::remove(*path);
  });
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(ptxPath, ec);
    if (ec)
      return llvm::createStringError("cannot write '" + ptxPath +
                                     "': " + ec.message());
    os << ptx;
  }
  std::string arch = "-arch=" + chip.str();
  llvm::SmallVector<llvm::StringRef> args = {ptxas, arch,   "-O3", "-v",
                                             ptxPath, "-o", cubinPath};
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, logPath, logPath};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects,
                                     /*SecondsToWait=*/0, /*MemoryLimit=*/0,
                                     &message);
  auto log = llvm::MemoryBuffer::getFile(logPath);
  std::string info = log ? (*log)->getBuffer().str() : std::string();
  if (rc != 0)
    return llvm::createStringError("ptxas failed" +
                                   (message.empty() ? "" : ": " + message) +
                                   "\n" + info);
  auto cubin = llvm::MemoryBuffer::getFile(cubinPath, /*IsText=*/false);
  if (!cubin)
    return llvm::createStringError("ptxas wrote no cubin: " +
                                   cubin.getError().message());

  CubinResult result;
  result.cubin = (*cubin)->getBuffer().str();
  result.info = info;
  // The report has one section per kernel, each opened by
  // "Compiling entry function 'NAME'".
  llvm::StringRef rest(result.info);
  static constexpr llvm::StringLiteral opener = "Compiling entry function '";
  for (size_t at = rest.find(opener); at != llvm::StringRef::npos;
       at = rest.find(opener)) {
    rest = rest.drop_front(at + opener.size());
    KernelResources k;
    k.name = rest.take_until([](char c) { return c == '\''; }).str();
    llvm::StringRef section = rest.take_front(rest.find(opener));
    k.registers = findNumber(section, "Used ([0-9]+) registers");
    k.stackBytes = findNumber(section, "([0-9]+) bytes stack frame");
    k.spillStoreBytes = findNumber(section, "([0-9]+) bytes spill stores");
    k.spillLoadBytes = findNumber(section, "([0-9]+) bytes spill loads");
    k.sharedBytes = findNumber(section, "([0-9]+) bytes smem");
    result.kernels.push_back(std::move(k));
  }
  return result;
}

KernelResources CubinResult::resourcesOf(llvm::StringRef name) const {
  for (const KernelResources &k : kernels)
    if (k.name == name)
      return k;
  return KernelResources{name.str()};
}

int64_t CubinResult::maxRegisters() const {
  int64_t most = -1;
  for (const KernelResources &k : kernels)
    most = std::max(most, k.registers);
  return most;
}

int64_t CubinResult::spillStoreBytes() const {
  int64_t total = 0;
  for (const KernelResources &k : kernels)
    total += std::max<int64_t>(k.spillStoreBytes, 0);
  return total;
}
