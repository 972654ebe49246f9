//===- CpuCompile.cpp - A layer module to the host's LLVM dialect ---------===//

#include "codegen/CpuCompile.h"
#include "codegen/Pipelines.h"

#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace mlir::ssm;

LogicalResult mlir::ssm::compileCpuKernels(ModuleOp module,
                                           const LayerSpec &spec,
                                           CpuCompileStage stop,
                                           std::string &passPipeline,
                                           std::string &error) {
  SsmPipelineOptions options;
  options.chunkSize = spec.chunkSize;
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  if (stop == CpuCompileStage::Expanded)
    buildSsmExpansionPipeline(pm, options);
  else
    buildSsmToCpuPipeline(pm, options);
  passPipeline.clear();
  {
    llvm::raw_string_ostream os(passPipeline);
    pm.printAsTextualPipeline(os);
  }
  if (failed(pm.run(module))) {
    error = "lowering failed (see the message above)";
    return failure();
  }
  return success();
}
