//===- Pipelines.cpp - The ssm expansion pipeline -------------------------===//

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::ssm;

void mlir::ssm::buildSsmExpansionPipeline(OpPassManager &pm,
                                          const SsmPipelineOptions &options) {
  pm.addPass(createSsmSplitSequences());
  // The chunked IR both targets start from: a loop over chunks of scans
  // (the GPU's ssm-gpu-schedule tiles the same way with the kernel's chunk).
  if (options.chunkSize > 0)
    pm.addPass(createSsmTileSequence(SsmTileSequenceOptions{options.chunkSize}));
  pm.addPass(createSsmDecompose());
  pm.addPass(createSsmExpandDiscretization());
  pm.addPass(createSsmExpandRotary());
  if (options.chunkSize > 0) {
    pm.addPass(createSsmMimoToMatmul());
    pm.addPass(createSsmChunk(SsmChunkOptions{options.chunkSize}));
  } else {
    pm.addPass(createSsmLowerRecurrence());
  }
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::ssm::registerSsmExpansionPipeline() {
  PassPipelineRegistration<SsmPipelineOptions>(
      "ssm-expand",
      "Expand ssm ops to linalg/scf/tensor on tensors (chunked or token by "
      "token)",
      buildSsmExpansionPipeline);
}
