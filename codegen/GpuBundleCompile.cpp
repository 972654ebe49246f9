//===- GpuBundleCompile.cpp - The variants of a GPU bundle ----------------===//

#include "codegen/GpuBundleCompile.h"

#include "codegen/GpuLowering.h"

#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace mlir::ssm;

namespace {

/// ssm-to-nvvm, PTX and cubin of one variant of the layer `module` (which
/// it rewrites) into `kernel`, or the stage `emit` asks for (printed to
/// `os`).
LogicalResult compileVariant(const LayerSpec &spec, ModuleOp module,
                             const GpuVariantRequest &request,
                             const GpuBundleOptions &bundle,
                             std::optional<GpuCompileStage> emit,
                             GpuKernelBuild &kernel, llvm::raw_ostream &os,
                             std::string &error) {
  SsmToNvvmOptions options;
  options.chip = bundle.chip;
  options.blockSize = request.blockSize;
  options.mma = request.mma;
  options.qkBuffers = request.qkBuffers;
  options.schedule = request.schedule;
  options.chunkSize = request.chunk;
  options.chunksPerBlock = request.chunksPerBlock;
  options.smCount = bundle.smCount;
  options.fullChunks = request.fullChunks;
  GpuCompileStage stop = emit.value_or(GpuCompileStage::Cubin);
  if (failed(compileGpuKernels(module, spec, options, bundle.toolkit, stop,
                               kernel, error)))
    return failure();
  kernel.variant = request.name;
  kernel.specializes = request.specializes;
  if (stop == GpuCompileStage::Ptx)
    os << kernel.ptx;
  else if (stop != GpuCompileStage::Cubin)
    module.print(os);
  return success();
}

} // namespace

LogicalResult mlir::ssm::compileGpuBundle(
    LayerSpec spec, ModuleOp module, ModuleOp inputModule,
    std::vector<GpuVariantRequest> requests, const GpuDispatchBuild &dispatch,
    const GpuBundleOptions &options, llvm::StringRef outputDir,
    llvm::raw_ostream &os, std::string &error) {
  if (requests.empty()) {
    error = "no kernel variant asked for";
    return failure();
  }
  std::vector<GpuKernelBuild> kernels(1);
  if (failed(compileVariant(spec, module, requests[0], options, options.emit,
                            kernels[0], os, error)))
    return failure();
  if (options.emit)
    return success();
  // Batch or length at launch and the one-pass kernel chosen: the
  // chunk-parallel schedule is the second variant, for shapes whose
  // batch x heads blocks leave SMs idle.
  const bool dynamic = spec.batch == ShapedType::kDynamic ||
                       (!spec.step && spec.seqlen == ShapedType::kDynamic);
  if (options.chunkParallelSibling && dynamic && !spec.step && !spec.varlen &&
      kernels[0].schedule == "chunked") {
    requests[0].name = "chunked";
    kernels[0].variant = "chunked";
    GpuVariantRequest parallel = requests[0];
    parallel.schedule = parallel.name = "chunk-parallel";
    requests.push_back(parallel);
  }
  // A length at launch (one per sequence, not varlen): each chunked
  // variant gets a twin for lengths that are a whole number of its chunks,
  // whose kernels read tokens without bounds checks; the runtime runs the
  // twin in its place at such lengths (H200, b=8, L=4096, N=256, S=64: the
  // bounded kernel 1.10x the static one's time, the twin 1.02x;
  // bench/README.md, 2026-12-03).
  const bool fullChunkTwins =
      spec.seqlen == ShapedType::kDynamic && !spec.step && !spec.varlen;
  // The twins go after every base variant, and are compiled in this loop
  // as it reaches them.
  const size_t bases = requests.size();
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i > 0) {
      OwningOpRef<ModuleOp> variantModule = inputModule.clone();
      kernels.emplace_back();
      if (failed(compileVariant(spec, *variantModule, requests[i], options,
                                std::nullopt, kernels.back(), os, error)))
        return failure();
    }
    if (i >= bases || !fullChunkTwins || kernels[i].schedule == "tokens")
      continue;
    if (kernels[i].variant.empty())
      kernels[i].variant = requests[i].name = kernels[i].schedule;
    GpuVariantRequest twin = requests[i];
    twin.fullChunks = true;
    twin.specializes = requests[i].name;
    twin.name = requests[i].name + "-full-chunks";
    requests.push_back(twin);
  }

  // The bundle's chunk (config string and top level) is its first
  // variant's.
  spec.chunkSize = kernels[0].chunkSize;
  BundleDescription description;
  description.target = options.chip;
  description.pipeline = kernels[0].pipeline;
  description.passPipeline = kernels[0].passPipeline;
  if (llvm::Error err = writeGpuBundle(outputDir, spec, inputModule, kernels,
                                       dispatch, description)) {
    error = llvm::toString(std::move(err));
    return failure();
  }
  os << "mamba3-compile: wrote " << outputDir << " (" << spec.kindName()
     << " for " << options.chip << ", config " << spec.configHash();
  if (kernels.size() > 1)
    os << ", " << kernels.size() << " variants chosen at launch by "
       << (dispatch.table.empty() ? std::string("the cost model")
                                  : dispatch.source)
       << ")\n";
  for (const GpuKernelBuild &kernel : kernels) {
    if (kernels.size() > 1)
      os << "  variant " << kernel.variant << " (";
    else
      os << ", ";
    os << kernel.schedule << " schedule";
    if (kernel.seqlenMultiple > 0)
      os << " for lengths that are multiples of " << kernel.seqlenMultiple;
    if (kernel.launches.size() > 1)
      os << " in " << kernel.launches.size() << " launches";
    const GpuLaunchBuild &main = kernel.launches.front();
    os << ", " << main.block[0] << " threads, " << main.dynamicSharedBytes
       << " bytes shared, " << kernel.cubin.maxRegisters() << " registers, "
       << kernel.cubin.spillStoreBytes() << " bytes spilled)\n";
  }
  return success();
}
