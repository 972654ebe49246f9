//===- CpuLowering.cpp - Tensor-level IR to the LLVM dialect for the host -===//
//
// The order matters in a few places, each noted below. Everything here is an
// upstream pass except StridedCopyToLinalg, which keeps the generated code
// free of MLIR's runtime library.
//
//===----------------------------------------------------------------------===//

#include "codegen/CpuLowering.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/BufferizationToMemRef/BufferizationToMemRef.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace {

struct StridedCopyToLinalgPass
    : public PassWrapper<StridedCopyToLinalgPass, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(StridedCopyToLinalgPass)

  StringRef getArgument() const final { return "ssm-cpu-strided-copy-to-linalg"; }
  StringRef getDescription() const final {
    return "Rewrite memref.copy between non-identity layouts into linalg.copy";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<linalg::LinalgDialect>();
  }

  void runOnOperation() override {
    // Copies between identity layouts become llvm.memcpy in MemRefToLLVM;
    // only the others would call the `memrefCopy` runtime function.
    SmallVector<memref::CopyOp> copies;
    getOperation().walk([&](memref::CopyOp copy) {
      auto src = cast<BaseMemRefType>(copy.getSource().getType());
      auto dst = cast<BaseMemRefType>(copy.getTarget().getType());
      auto srcRanked = dyn_cast<MemRefType>(src);
      auto dstRanked = dyn_cast<MemRefType>(dst);
      if (srcRanked && dstRanked && srcRanked.getLayout().isIdentity() &&
          dstRanked.getLayout().isIdentity())
        return;
      copies.push_back(copy);
    });
    for (memref::CopyOp copy : copies) {
      if (!isa<MemRefType>(copy.getSource().getType()) ||
          !isa<MemRefType>(copy.getTarget().getType())) {
        copy.emitOpError("unranked copies are not supported on the CPU path");
        return signalPassFailure();
      }
      OpBuilder b(copy);
      linalg::CopyOp::create(b, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      copy.erase();
    }
  }
};

} // namespace

std::unique_ptr<Pass> mlir::ssm::createStridedCopyToLinalgPass() {
  return std::make_unique<StridedCopyToLinalgPass>();
}

void mlir::ssm::addCpuLoweringPasses(OpPassManager &pm) {
  // Ops that fill a tensor.empty can then write straight into the memref a
  // materialize_in_destination targets, saving a copy of each output.
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  // Entry functions already take memrefs; bufferizing the boundaries keeps
  // any tensor-typed helper function the expansion may create working, and
  // identity layouts keep its signature plain.
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  // A chunk loop carries the states a chunk's scan returns (new tensors,
  // not updates of the carried ones in place).
  bufferize.allowReturnAllocsFromLoops = true;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Hoist per-chunk scratch buffers out of the chunk loop before the
  // deallocation pipeline decides where they die.
  pm.addNestedPass<func::FuncOp>(bufferization::createBufferHoistingPass());
  pm.addNestedPass<func::FuncOp>(bufferization::createBufferLoopHoistingPass());
  // Ownership-based deallocation: every allocation, including the ones made
  // inside loops over chunks or tokens, is freed.
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(createConvertBufferizationToMemRefPass());

  pm.addNestedPass<func::FuncOp>(ssm::createStridedCopyToLinalgPass());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Subviews are folded into the loads/stores that use them, and what is
  // left of them becomes plain address arithmetic (affine.apply), which
  // lower-affine must see afterwards.
  pm.addPass(memref::createFoldMemRefAliasOpsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());

  // LLVM intrinsics first (tanh, exp, cos, sin, floor, ... all have one in
  // LLVM 22; the backend calls libm where the target has no instruction);
  // whatever is left becomes a libm call, hence `-lm` when linking.
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());

  // bf16 <-> f32 conversions become integer bit operations: LLVM would
  // otherwise call __truncsfbf2 from a compiler runtime that kernel.so does
  // not link.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  // Emits `_mlir_ciface_<name>` for functions with llvm.emit_c_interface.
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}
