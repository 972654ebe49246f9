//===- PlanSharedMemory.cpp - The chunked kernels' #ssmk.plan -------------===//
//
// ssmk-plan-shared-memory: the planner's choices for each chunked kernel
// (matmul engines, Q/K buffers, V/Z staging, shared-memory offsets) written
// into the IR as its #ssmk.plan, so that they can be read, checked, and
// changed before ssmk-build-kernels builds the body.
//
//===----------------------------------------------------------------------===//

#include "codegen/gpu/GpuKernel.h"
#include "codegen/gpu/GpuPasses.h"

using namespace mlir;
using namespace mlir::ssm;

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMKPLANSHAREDMEMORY
#include "codegen/gpu/GpuPasses.h.inc"
} // namespace mlir::ssm

namespace {

struct SsmkPlanSharedMemoryPass
    : public ssm::impl::SsmkPlanSharedMemoryBase<SsmkPlanSharedMemoryPass> {
  void runOnOperation() override {
    getOperation()->walk([&](ssmk::ChunkedScanOp op) {
      if (op.getPlanAttr())
        return;
      op.setPlanAttr(planSharedMemory(op.getContext(),
                                      layerShapeOf(op.getLayer()),
                                      op.getTokensPerChunk(), op.getThreads()));
    });
  }
};

} // namespace
