//===- mamba3-opt.cpp - The ssm optimizer driver --------------------------===//
//
// mlir-opt with the ssm dialect, passes and pipelines registered next to
// every upstream dialect, extension and pass.
//
//===----------------------------------------------------------------------===//

#include "codegen/Pipelines.h"
#include "dialect/SsmDialect.h"
#include "dialect/SsmkDialect.h"
#include "codegen/gpu/GpuPasses.h"
#include "passes/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::ssm::registerSsmPasses();
  mlir::ssm::registerSsmGpuPasses();
  // ssm-expand, ssm-to-cpu, ssm-cpu-lowering.
  mlir::ssm::registerSsmPipelines();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::ssm::SsmDialect, mlir::ssmk::SsmkDialect>();

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "Mamba-3 compiler: ssm dialect optimizer driver\n",
      registry));
}
