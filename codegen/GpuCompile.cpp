//===- GpuCompile.cpp - One GPU variant of a layer, to a cubin ------------===//

#include "codegen/GpuCompile.h"

#include "dialect/SsmDialect.h"
#include "codegen/gpu/GpuKernel.h"
#include "passes/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::ssm;

LogicalResult mlir::ssm::compileGpuKernels(ModuleOp module, LayerSpec spec,
                                           const SsmToNvvmOptions &requested,
                                           llvm::StringRef toolkit,
                                           GpuCompileStage stop,
                                           GpuKernelBuild &kernel,
                                           std::string &error) {
  auto fail = [&](const llvm::Twine &message) {
    error = message.str();
    return failure();
  };
  MLIRContext &context = *module.getContext();
  // A copy: the launch's chunks per block is read back into it below (pass
  // options copy only through copyOptionValuesFrom).
  SsmToNvvmOptions options;
  options.copyOptionValuesFrom(requested);
  PassManager schedulePm(&context, ModuleOp::getOperationName());
  addSsmToNvvmStage(schedulePm, SsmToNvvmStage::Schedule, options);
  if (failed(schedulePm.run(module)))
    return fail("scheduling the layer failed (see the message above)");
  if (stop == GpuCompileStage::Scheduled)
    return success();
  PassManager gpuPm(&context, ModuleOp::getOperationName());
  addSsmToNvvmStage(gpuPm, SsmToNvvmStage::Kernels, options);
  if (failed(gpuPm.run(module)))
    return fail("generating the GPU kernel failed (see the message above)");
  if (stop == GpuCompileStage::Kernels)
    return success();
  PassManager buildPm(&context, ModuleOp::getOperationName());
  addSsmToNvvmStage(buildPm, SsmToNvvmStage::Bodies, options);
  if (failed(buildPm.run(module)))
    return fail("building the GPU kernel bodies failed (see the message "
                "above)");
  if (stop == GpuCompileStage::Gpu)
    return success();
  // The launches are what ssm-to-gpu recorded on its kernels: one kernel
  // named after the entry, or several (ordered by ssm.launch_index) whose
  // extra arguments are scratch buffers.
  SmallVector<std::pair<int64_t, gpu::GPUFuncOp>> kernels;
  module.walk([&](gpu::GPUFuncOp func) {
    if (!func.getKnownBlockSizeAttr() || !func->hasAttr(kGridAttrName) ||
        !func.getName().starts_with(spec.entryName()))
      return;
    auto index = func->getAttrOfType<IntegerAttr>(kLaunchIndexAttrName);
    kernels.push_back({index ? index.getInt() : 0, func});
  });
  llvm::sort(kernels, [](const auto &x, const auto &y) { return x.first < y.first; });
  if (kernels.empty())
    return fail("ssm-to-gpu left no kernel named " + spec.entryName() +
                " with a known launch shape");
  for (auto [index, func] : kernels) {
    GpuLaunchBuild launch;
    launch.kernel = func.getName().str();
    auto block = func.getKnownBlockSizeAttr();
    for (int i = 0; i < 3; ++i)
      launch.block[i] = block[i];
    // Blocks are (head, batch[, z]): the manifest keeps the formula.
    auto grid = func->getAttrOfType<ArrayAttr>(kGridAttrName);
    for (auto [i, g] : llvm::enumerate(grid.getValue()))
      launch.grid[i] = isa<IntegerAttr>(g)
                           ? llvm::json::Value(cast<IntegerAttr>(g).getInt())
                           : llvm::json::Value(cast<StringAttr>(g).str());
    if (auto shared = func->getAttrOfType<IntegerAttr>(kDynamicSharedBytesAttrName))
      launch.dynamicSharedBytes = shared.getInt();
    if (auto schedule = func->getAttrOfType<StringAttr>(kScheduleAttrName))
      kernel.schedule = schedule.str();
    if (auto reason = func->getAttrOfType<StringAttr>(kScheduleReasonAttrName))
      kernel.scheduleReason = reason.str();
    auto chunk = func->getAttrOfType<IntegerAttr>(kChunkSizeAttrName);
    spec.chunkSize = chunk ? chunk.getInt() : 0;
    if (auto perBlock = func->getAttrOfType<IntegerAttr>(kChunksPerBlockAttrName)) {
      options.chunksPerBlock = perBlock.getInt();
      kernel.chunksPerBlock = perBlock.getInt();
    }
    if (auto blocks = func->getAttrOfType<IntegerAttr>(kBlocksPerSmAttrName))
      kernel.blocksPerSm = blocks.getInt();
    kernel.launches.push_back(std::move(launch));
  }
  gpu::GPUFuncOp first = kernels.front().second;
  // The kernels read and write the arguments in the element types the
  // manifest states for them: a kernel that disagreed would run and give
  // wrong answers (or write past a buffer), so that is a compiler error.
  std::vector<LayerArgument> layerArgs = getLayerArguments(spec);
  for (auto [index, func] : kernels)
    for (auto [i, arg] : llvm::enumerate(layerArgs)) {
      if (i >= func.getNumArguments())
        return fail("kernel " + func.getName().str() + " has fewer arguments "
                    "than the layer");
      Type element = cast<MemRefType>(func.getArgument(i).getType()).getElementType();
      std::string got;
      llvm::raw_string_ostream os(got);
      element.print(os);
      std::string want = stringifyLayerDataType(argumentDataType(spec, arg)).str();
      if (got != want)
        return fail("kernel " + func.getName().str() + " takes " + arg.name +
                    " as " + got + ", but the bundle's interface gives it " +
                    want + " (a compiler bug: please report it)");
    }
  if (auto params = first->getAttrOfType<ArrayAttr>(kLaunchParametersAttrName))
    for (Attribute p : params)
      kernel.parameters.push_back(cast<StringAttr>(p).str());
  // The scratch buffers: the arguments marked as such, after the layer's.
  for (unsigned i = 0; i < first.getNumArguments(); ++i)
    if (auto scratch =
            first.getArgAttrOfType<DictionaryAttr>(i, kScratchAttrName)) {
      GpuScratchBuild buffer;
      buffer.name = scratch.getAs<StringAttr>("name").str();
      buffer.elementBytes = scratch.getAs<IntegerAttr>("element_bytes").getInt();
      for (Attribute d : scratch.getAs<ArrayAttr>("shape"))
        buffer.shape.push_back(
            isa<IntegerAttr>(d) ? llvm::json::Value(cast<IntegerAttr>(d).getInt())
                                : llvm::json::Value(cast<StringAttr>(d).str()));
      kernel.scratch.push_back(std::move(buffer));
    }
  // The TMA tensor maps: the arguments marked as such, after the scratch.
  for (unsigned i = 0; i < first.getNumArguments(); ++i)
    if (auto map = first.getArgAttrOfType<DictionaryAttr>(i, kTensorMapAttrName)) {
      GpuTensorMapBuild t;
      t.argument = map.getAs<IntegerAttr>("argument").getInt();
      t.name = getLayerArguments(spec)[t.argument].name + "_map";
      llvm::append_range(t.box, map.getAs<DenseI64ArrayAttr>("box").asArrayRef());
      t.swizzleBytes = map.getAs<IntegerAttr>("swizzle").getInt();
      kernel.tensorMaps.push_back(std::move(t));
    }

  PassManager pm(&context, ModuleOp::getOperationName());
  addSsmToNvvmStage(pm, SsmToNvvmStage::Lowering, options);
  std::string passPipeline;
  {
    llvm::raw_string_ostream os(passPipeline);
    gpuPm.printAsTextualPipeline(os);
    os << ",";
    buildPm.printAsTextualPipeline(os);
    os << ",";
    pm.printAsTextualPipeline(os);
  }
  if (failed(pm.run(module)))
    return fail("lowering to NVVM failed (see the message above)");
  if (stop == GpuCompileStage::Lowered)
    return success();
  auto ptx = serializeToPtx(module, toolkit);
  if (!ptx)
    return fail(llvm::toString(ptx.takeError()));
  if (stop == GpuCompileStage::Ptx) {
    kernel.ptx = std::move(*ptx);
    return success();
  }
  auto cubin = assembleCubin(*ptx, options.chip, toolkit);
  if (!cubin)
    return fail(llvm::toString(cubin.takeError()));
  kernel.ptx = std::move(*ptx);
  kernel.cubin = std::move(*cubin);

  // The chunk size the kernel got (rank-1 terms: tokens x ranks), so that
  // the recorded pipeline rebuilds it also when the compiler chose it.
  int64_t chunkTerms = options.chunkSize;
  if (chunkTerms == 0 && spec.chunkSize != 0)
    chunkTerms = spec.chunkSize * (spec.mimo ? spec.rank : 1);
  kernel.chunkSize = spec.chunkSize;
  kernel.pipeline = "ssm-to-nvvm{chip=" + options.chip + " block-size=" +
                    std::to_string(kernel.launches.front().block[0]) +
                    " schedule=" + kernel.schedule +
                    " chunk-size=" + std::to_string(chunkTerms);
  if (kernel.schedule == "chunk-parallel")
    kernel.pipeline +=
        " chunks-per-block=" + std::to_string(options.chunksPerBlock);
  if (options.fullChunks) {
    kernel.pipeline += " full-chunks=true";
    kernel.seqlenMultiple = spec.chunkSize;
  }
  // Engines and buffers only where asked for: an untuned bundle's pipeline
  // stays what it was before they could be.
  if (options.mma != "auto")
    kernel.pipeline += " mma=" + options.mma;
  if (options.qkBuffers != 0)
    kernel.pipeline += " qk-buffers=" + std::to_string(options.qkBuffers);
  kernel.pipeline += "}";
  kernel.passPipeline = passPipeline;
  return success();
}

