//===- Pipelines.cpp - Named target pipelines -----------------------------===//

#include "codegen/Pipelines.h"

#include "codegen/CpuLowering.h"
#include "codegen/GpuLowering.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

void mlir::ssm::buildSsmToCpuPipeline(OpPassManager &pm,
                                      const SsmPipelineOptions &options) {
  buildSsmExpansionPipeline(pm, options);
  addCpuLoweringPasses(pm);
}

void mlir::ssm::registerSsmPipelines() {
  registerSsmExpansionPipeline();
  PassPipelineRegistration<SsmPipelineOptions>(
      "ssm-to-cpu",
      "Compile ssm ops to the LLVM dialect for the host (ssm-expand, then "
      "bufferization, loops and the conversions to LLVM)",
      buildSsmToCpuPipeline);
  PassPipelineRegistration<>(
      "ssm-cpu-lowering",
      "Lower linalg/scf/tensor/arith/math on tensors (memref arguments) to "
      "the LLVM dialect for the host",
      [](OpPassManager &pm) { addCpuLoweringPasses(pm); });
  PassPipelineRegistration<SsmToNvvmOptions>(
      "ssm-to-nvvm",
      "Compile ssm ops to NVVM kernels for an NVIDIA GPU (ssm-gpu-schedule, "
      "ssm-to-gpu, nvvm-attach-target, gpu -> nvvm with bare-pointer "
      "arguments); "
      "mamba3-compile serializes the result to PTX and cubin",
      buildSsmToNvvmPipeline);
  registerPass([] { return createStridedCopyToLinalgPass(); });
}
