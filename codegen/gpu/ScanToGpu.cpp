//===- ScanToGpu.cpp - Scheduled layers as GPU kernels --------------------===//
//
// ssm-to-gpu: each function's layer, as ssm-gpu-schedule left it (a chunk
// loop of scans, or a marked ssm.scan / ssm.step), becomes gpu.func kernels
// whose arguments are the layer's tensors as memrefs. Each body is one ssmk
// kernel op (KernelOps.cpp) that ssmk-build-kernels builds with
// ChunkedScanKernel.cpp (chunked and chunk-parallel phases 1 and 3),
// ChunkBoundaryKernel.cpp (chunk-parallel phase 2), TokenScanKernel.cpp
// (token-sequential) or StepKernel.cpp (a decode step). The layer itself is
// read off the IR by ScanToGpuLayer.cpp.
//
//===----------------------------------------------------------------------===//

#include "dialect/SsmDialect.h"
#include "codegen/gpu/GpuKernel.h"
#include "codegen/gpu/GpuPasses.h"
#include "codegen/gpu/ScanToGpuLayer.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"

namespace mlir::ssm {
#define GEN_PASS_DEF_SSMTOGPU
#include "codegen/gpu/GpuPasses.h.inc"
} // namespace mlir::ssm

using namespace mlir;
using namespace mlir::ssm;
using namespace mlir::ssm::scan_to_gpu;

namespace {

/// Appends the kernel arguments for the TMA tensor maps of Q and K (layer
/// arguments 0 and 1) where the plan loads with TMA; returns how many.
unsigned appendTensorMapArgs(OpBuilder &ob, const ChunkedKernelPlan &plan,
                             SmallVector<Type> &argTypes) {
  if (!plan.tensorMaps)
    return 0;
  // A CUtensorMap: 128 bytes.
  Type map = MemRefType::get({16}, ob.getI64Type());
  argTypes.append({map, map});
  return 2;
}

/// Marks the tensor-map arguments from `first` on and points `args` at them.
void markTensorMapArgs(OpBuilder &ob, gpu::GPUFuncOp kernel, unsigned first,
                       unsigned count, const ChunkedKernelPlan &plan,
                       KernelArgs &args) {
  for (unsigned i = 0; i < count; ++i)
    kernel.setArgAttr(
        first + i, kTensorMapAttrName,
        ob.getDictionaryAttr(
            {ob.getNamedAttr("argument", ob.getI64IntegerAttr(i)),
             ob.getNamedAttr("box", ob.getDenseI64ArrayAttr(plan.tensorMapBox)),
             ob.getNamedAttr("swizzle", ob.getI64IntegerAttr(128))}));
  if (count) {
    args.qMap = kernel.getArgument(first);
    args.kMap = kernel.getArgument(first + 1);
  }
}

/// Threads per block of the chunk-boundary pass (phase 2).
constexpr int64_t kChunkBoundaryThreads = 128;

/// The kernel arguments for `layer`: one memref per operand and result, with
/// the tensors' dynamic b and L axes.
SmallVector<Type> layerArgumentTypes(const Layer &layer) {
  SmallVector<Type> types;
  for (Value v : layer.operands) {
    auto t = cast<RankedTensorType>(v.getType());
    types.push_back(MemRefType::get(t.getShape(), t.getElementType()));
  }
  for (Type t : ArrayRef(layer.resultTypes)
                    .take_front(layer.writesStates ? 5 : 1)) {
    auto tt = cast<RankedTensorType>(t);
    types.push_back(MemRefType::get(tt.getShape(), tt.getElementType()));
  }
  return types;
}

/// The i64 scalars a dynamic-shape layer's kernels take after the tensor
/// maps, by name (the manifest's `parameters`): the sequence length where
/// it is dynamic, and the chunk-parallel phases' chunks per block where the
/// runtime chooses it.
SmallVector<StringRef> launchParameters(const Layer &layer) {
  SmallVector<StringRef> names;
  if (!layer.shape.step && layer.shape.dynamicSeqLen())
    names.push_back("seqlen");
  if (layer.schedule == ssmk::ScheduleKind::chunk_parallel &&
      layer.chunksPerBlock == 0)
    names.push_back("chunks_per_block");
  return names;
}

/// The kernel signature for argument views `views` and `params`: MLIR's
/// bare-pointer ABI takes static memrefs only, so an argument with a
/// dynamic axis is passed as a pointer to its elements (a rank-0 memref)
/// and viewed at its launch-time shape in the body (bindArguments).
SmallVector<Type> kernelSignature(ArrayRef<Type> views,
                                  ArrayRef<StringRef> params, Builder &ob) {
  SmallVector<Type> types;
  for (Type t : views) {
    auto m = cast<MemRefType>(t);
    types.push_back(m.hasStaticShape() ? t
                                       : MemRefType::get({}, m.getElementType()));
  }
  types.append(params.size(), ob.getI64Type());
  return types;
}

/// The launch grid: block counts, or the names of the sizes the runtime
/// computes for each launch ("H", "b", "spans"; the manifest's formula).
using Grid = std::array<Attribute, 3>;

gpu::GPUFuncOp createKernel(OpBuilder &ob, Location loc, StringRef name,
                            const LayerShape &shape, ArrayRef<Type> argTypes,
                            ArrayRef<Type> workgroup, int64_t blockSize,
                            const Grid &grid, ssmk::ScheduleKind schedule,
                            int64_t sharedBytes,
                            ArrayRef<StringRef> params) {
  auto kernel = gpu::GPUFuncOp::create(
      ob, loc, name, ob.getFunctionType(argTypes, {}), workgroup);
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  kernel.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({static_cast<int32_t>(blockSize), 1, 1}));
  kernel->setAttr(kGridAttrName, ob.getArrayAttr(grid));
  // A grid the shape fixes is known to the kernel (static bundles).
  SmallVector<int32_t> known;
  for (Attribute g : grid) {
    int64_t size = ShapedType::kDynamic;
    if (auto count = dyn_cast<IntegerAttr>(g))
      size = count.getInt();
    else if (cast<StringAttr>(g).getValue() == "H")
      size = shape.heads;
    else if (cast<StringAttr>(g).getValue() == "b")
      size = shape.batch;
    if (ShapedType::isDynamic(size))
      break;
    known.push_back(static_cast<int32_t>(size));
  }
  if (known.size() == 3)
    kernel.setKnownGridSizeAttr(ob.getDenseI32ArrayAttr(known));
  if (!params.empty())
    kernel->setAttr(kLaunchParametersAttrName,
                    ob.getStrArrayAttr(llvm::to_vector_of<StringRef>(params)));
  // The bundle's name of the schedule (the manifest's "schedule" field).
  StringRef scheduleName = schedule == ssmk::ScheduleKind::tokens ? "tokens"
                           : schedule == ssmk::ScheduleKind::chunked
                               ? "chunked"
                               : "chunk-parallel";
  kernel->setAttr(kScheduleAttrName, ob.getStringAttr(scheduleName));
  kernel->setAttr(kDynamicSharedBytesAttrName, ob.getI64IntegerAttr(sharedBytes));
  return kernel;
}

/// The kernel's arguments as the builders see them: static memrefs as they
/// come, and each argument with a dynamic axis viewed (memref.reinterpret_cast,
/// row-major) at the launch's sizes: b is the grid's y (b + 1 for
/// cu_seqlens), L the seqlen parameter, and the scratch buffers' span axis
/// ceil(ceil(L / C) / chunks per block). Sets the launch values in `args`.
SmallVector<Value> bindArguments(gpu::GPUFuncOp kernel, const Layer &layer,
                                 ArrayRef<Type> views, unsigned scratchBegin,
                                 unsigned scratchEnd,
                                 ArrayRef<StringRef> params,
                                 KernelArgs &args) {
  ImplicitLocOpBuilder b(kernel.getLoc(), kernel.getContext());
  b.setInsertionPointToStart(&kernel.getBody().front());
  const unsigned firstParam = kernel.getNumArguments() - params.size();
  auto param = [&](StringRef name) -> Value {
    const auto *it = llvm::find(params, name);
    if (it == params.end())
      return Value();
    Value raw = kernel.getArgument(firstParam + (it - params.begin()));
    return arith::IndexCastUIOp::create(b, b.getIndexType(), raw);
  };
  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, v);
  };
  auto ceilDiv = [&](Value x, Value y) -> Value {
    return arith::CeilDivUIOp::create(b, x, y);
  };
  args.seqLen = param("seqlen");
  args.chunksPerBlock = param("chunks_per_block");
  Value batch, spans;
  std::optional<unsigned> cuSeqlens = layer.position(kCuSeqlens);
  SmallVector<Value> values;
  for (auto [i, type] : llvm::enumerate(views)) {
    auto memref = cast<MemRefType>(type);
    Value arg = kernel.getArgument(i);
    if (memref.hasStaticShape()) {
      values.push_back(arg);
      continue;
    }
    const bool scratch = i >= scratchBegin && i < scratchEnd;
    auto sizeOf = [&](unsigned dim) -> Value {
      if (dim == 0 || (scratch && dim == 1)) {
        if (!batch)
          batch = gpu::GridDimOp::create(b, gpu::Dimension::y);
        return cuSeqlens && *cuSeqlens == i ? arith::AddIOp::create(b, batch, idx(1))
                                            : batch;
      }
      if (scratch) {
        if (!spans) {
          Value length = args.seqLen ? args.seqLen : idx(layer.shape.seqLen);
          Value perBlock = args.chunksPerBlock ? args.chunksPerBlock
                                               : idx(layer.chunksPerBlock);
          spans = ceilDiv(ceilDiv(length, idx(layer.chunkTokens)), perBlock);
        }
        return spans;
      }
      return args.seqLen;
    };
    ArrayRef<int64_t> shape = memref.getShape();
    SmallVector<OpFoldResult> sizes(shape.size()), strides(shape.size());
    SmallVector<int64_t> staticStrides(shape.size());
    OpFoldResult stride = b.getIndexAttr(1);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      strides[d] = stride;
      std::optional<int64_t> known = getConstantIntValue(stride);
      staticStrides[d] = known ? *known : ShapedType::kDynamic;
      sizes[d] = ShapedType::isDynamic(shape[d])
                     ? OpFoldResult(sizeOf(d))
                     : OpFoldResult(b.getIndexAttr(shape[d]));
      if (known && !ShapedType::isDynamic(shape[d]))
        stride = b.getIndexAttr(*known * shape[d]);
      else
        stride = arith::MulIOp::create(
                     b, getValueOrCreateConstantIndexOp(b, b.getLoc(), stride),
                     getValueOrCreateConstantIndexOp(b, b.getLoc(), sizes[d]))
                     .getResult();
    }
    auto view = MemRefType::get(
        shape, memref.getElementType(),
        StridedLayoutAttr::get(b.getContext(), 0, staticStrides));
    values.push_back(memref::ReinterpretCastOp::create(
        b, view, arg, b.getIndexAttr(0), sizes, strides));
  }
  args.spans = spans;
  return values;
}

/// The three launches of the chunk-parallel schedule. Each kernel takes the
/// op's memrefs, then the four scratch buffers (marked `ssm.scratch`).
void buildChunkParallelKernels(const Layer &layer, func::FuncOp func,
                               gpu::GPUModuleOp module,
                               const ChunkedKernelPlan &plan) {
  const LayerShape &shape = layer.shape;
  // 0: chosen by the runtime for each launch (a parameter).
  const int64_t chunksPerBlock = layer.chunksPerBlock;
  const int64_t chunkSize = plan.tokensPerChunk;
  OpBuilder ob(module.getBodyRegion());
  ob.setInsertionPointToEnd(module.getBody());
  Type f32 = ob.getF32Type();
  const int64_t B = shape.batch, H = shape.heads;
  // Scratch entries and phase 1 / 3 blocks along z: one per span.
  const bool spansAtLaunch = shape.dynamicSeqLen() || chunksPerBlock == 0;
  const int64_t spans = spansAtLaunch
                            ? ShapedType::kDynamic
                            : llvm::divideCeil(plan.chunks, chunksPerBlock);
  const int64_t angles = std::max<int64_t>(shape.s, 1);
  SmallVector<Type> views = layerArgumentTypes(layer);
  const unsigned layerArgs = views.size();
  SmallVector<Type> scratchTypes = {
      MemRefType::get({B, H, spans, shape.p, shape.n}, f32),
      MemRefType::get({B, H, spans}, f32),
      MemRefType::get({B, H, spans, angles}, f32),
      MemRefType::get({B, H, spans, angles}, f32)};
  static constexpr StringLiteral scratchNames[] = {
      "chunk_states", "chunk_decay", "chunk_angle_end", "chunk_angle_start"};
  views.append(scratchTypes);
  // Every launch of a bundle takes the same parameters: the tensor maps too.
  unsigned maps = appendTensorMapArgs(ob, plan, views);
  SmallVector<StringRef> params = launchParameters(layer);
  SmallVector<Type> signature = kernelSignature(views, params, ob);
  // The scratch shapes for the manifest: b, spans and the static axes.
  auto scratchShape = [&](MemRefType type) {
    SmallVector<Attribute> dims;
    for (auto [d, size] : llvm::enumerate(type.getShape()))
      dims.push_back(d == 0 ? Attribute(ob.getStringAttr("b"))
                     : ShapedType::isDynamic(size)
                         ? Attribute(ob.getStringAttr("spans"))
                         : Attribute(ob.getI64IntegerAttr(size)));
    return ob.getArrayAttr(dims);
  };
  Attribute spansGrid = spansAtLaunch ? Attribute(ob.getStringAttr("spans"))
                                      : ob.getI64IntegerAttr(spans);

  auto create = [&](StringRef suffix, int64_t launchIndex, int64_t threads,
                    Attribute gridZ, int64_t sharedBytes) {
    gpu::GPUFuncOp kernel = createKernel(
        ob, func.getLoc(), (func.getName() + suffix).str(), shape, signature, {},
        threads, {ob.getStringAttr("H"), ob.getStringAttr("b"), gridZ},
        ssmk::ScheduleKind::chunk_parallel, sharedBytes, params);
    kernel->setAttr(kLaunchIndexAttrName, ob.getI64IntegerAttr(launchIndex));
    kernel->setAttr(kChunkSizeAttrName, ob.getI64IntegerAttr(chunkSize));
    kernel->setAttr(kChunksPerBlockAttrName,
                    ob.getI64IntegerAttr(chunksPerBlock));
    if (chunksPerBlock == 0)
      kernel->setAttr(kBlocksPerSmAttrName,
                      ob.getI64IntegerAttr(plan.blocksPerSm));
    for (unsigned i = 0; i < 4; ++i)
      kernel.setArgAttr(
          layerArgs + i, kScratchAttrName,
          ob.getDictionaryAttr(
              {ob.getNamedAttr("name", ob.getStringAttr(scratchNames[i])),
               ob.getNamedAttr("shape",
                               scratchShape(cast<MemRefType>(scratchTypes[i]))),
               ob.getNamedAttr("element_bytes", ob.getI64IntegerAttr(4))}));
    KernelArgs args;
    SmallVector<Value> values = bindArguments(
        kernel, layer, views, layerArgs, layerArgs + 4, params, args);
    KernelArgs bound = argsOf(layer, values);
    bound.seqLen = args.seqLen;
    bound.chunksPerBlock = args.chunksPerBlock;
    bound.spans = args.spans;
    bound.chunkStates = values[layerArgs];
    bound.chunkDecay = values[layerArgs + 1];
    bound.chunkAngleEnd = values[layerArgs + 2];
    bound.chunkAngleStart = values[layerArgs + 3];
    markTensorMapArgs(ob, kernel, layerArgs + 4, maps, plan, bound);
    return std::make_pair(kernel, bound);
  };
  auto [states, statesArgs] = create("_chunk_states", 0, plan.threads,
                                     spansGrid, plan.sharedBytes);
  emitChunkedScanOp(states, shape, statesArgs, plan.threads, chunkSize,
                    ssmk::ChunkedPhase::span_states, chunksPerBlock);
  auto [boundaries, boundaryArgs] = create(
      "_chunk_boundaries", 1, kChunkBoundaryThreads,
      ob.getI64IntegerAttr(chunkBoundaryBlocks(shape, kChunkBoundaryThreads)),
      0);
  emitChunkBoundariesOp(boundaries, shape, boundaryArgs,
                        kChunkBoundaryThreads, spansAtLaunch ? 0 : spans);
  auto [outputs, outputArgs] = create("_chunk_outputs", 2, plan.threads,
                                      spansGrid, plan.sharedBytes);
  emitChunkedScanOp(outputs, shape, outputArgs, plan.threads, chunkSize,
                    ssmk::ChunkedPhase::span_outputs, chunksPerBlock);
}

LogicalResult buildKernel(const Layer &layer, func::FuncOp func,
                          gpu::GPUModuleOp module) {
  const LayerShape &shape = layer.shape;
  scf::ForOp loop = layer.loop;
  Operation *op = loop ? loop.getOperation() : layer.op;
  // (The #ssmk.schedule verifier has checked its fields against its kind.)
  const bool useChunked = layer.schedule != ssmk::ScheduleKind::tokens;
  // The chunked kernel's plan for the chunk the loop (or the varlen op)
  // was given: C tokens are C * R rank-1 terms.
  ChunkedKernelPlan chunked;
  if (useChunked) {
    if (layer.schedule == ssmk::ScheduleKind::chunk_parallel && !layer.loop)
      return op->emitOpError("ssm-to-gpu: chunk_parallel is the schedule of a "
                             "chunk loop");
    if (!layer.loop && !shape.varlen)
      return op->emitOpError("ssm-to-gpu: a chunked layer is a chunk loop "
                             "(ssm-gpu-schedule tiles it), or varlen");
    chunked = planChunkedScanKernel(shape, layer.chunkTokens * shape.rank);
    if (!chunked.unsupported.empty())
      return op->emitOpError() << "ssm-to-gpu: " << chunked.unsupported;
    if (chunked.tokensPerChunk != layer.chunkTokens)
      return op->emitOpError()
             << "ssm-to-gpu: the chunks have " << layer.chunkTokens
             << " tokens (" << layer.chunkTokens * shape.rank
             << " rank-1 terms), but at rank " << shape.rank
             << " the kernel takes chunks of " << chunked.tokensPerChunk
             << " tokens";
  }
  if (layer.schedule == ssmk::ScheduleKind::chunk_parallel) {
    buildChunkParallelKernels(layer, func, module, chunked);
    return success();
  }
  int64_t blockSize = useChunked ? chunked.threads
                      : layer.blockSize == 0 ? tokenScanBlockSize(shape)
                                             : layer.blockSize;
  if (!useChunked && shape.s > blockSize)
    return op->emitOpError() << "ssm-to-gpu: S = " << shape.s
                             << " rotary angles exceed the block size "
                             << blockSize;

  SmallVector<Type> views = layerArgumentTypes(layer);
  const unsigned layerArgs = views.size();
  OpBuilder ob(module.getBodyRegion());
  ob.setInsertionPointToEnd(module.getBody());
  const unsigned maps =
      useChunked ? appendTensorMapArgs(ob, chunked, views) : 0;
  SmallVector<StringRef> params = launchParameters(layer);
  SmallVector<Type> workgroup;
  if (!useChunked)
    workgroup = tokenScanWorkgroup(shape, ob.getContext());
  gpu::GPUFuncOp kernel = createKernel(
      ob, func.getLoc(), func.getName(), shape,
      kernelSignature(views, params, ob), workgroup, blockSize,
      {ob.getStringAttr("H"), ob.getStringAttr("b"), ob.getI64IntegerAttr(1)},
      useChunked ? ssmk::ScheduleKind::chunked : ssmk::ScheduleKind::tokens,
      useChunked ? chunked.sharedBytes : 0, params);
  KernelArgs launch;
  SmallVector<Value> values =
      bindArguments(kernel, layer, views, layerArgs, layerArgs, params, launch);
  KernelArgs args = argsOf(layer, values);
  args.seqLen = launch.seqLen;
  markTensorMapArgs(ob, kernel, layerArgs, maps, chunked, args);
  if (useChunked) {
    emitChunkedScanOp(kernel, shape, args, blockSize, chunked.tokensPerChunk,
                      ssmk::ChunkedPhase::one_pass);
    kernel->setAttr(kChunkSizeAttrName,
                    ob.getI64IntegerAttr(chunked.tokensPerChunk));
    return success();
  }
  if (shape.step)
    emitDecodeStepOp(kernel, shape, args, blockSize);
  else
    emitTokenScanOp(kernel, shape, args, blockSize);
  if (Attribute reason = layer.op->getAttr(kScheduleReasonAttrName))
    kernel->setAttr(kScheduleReasonAttrName, reason);
  return success();
}

struct SsmToGpuPass : public ssm::impl::SsmToGpuBase<SsmToGpuPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<func::FuncOp, Layer>, 1> work;
    for (auto func : module.getOps<func::FuncOp>()) {
      // The layers: chunk loops, and layer ops outside of them.
      SmallVector<Operation *> found;
      func.walk([&](Operation *op) {
        if (auto loop = dyn_cast<scf::ForOp>(op)) {
          if (loop->hasAttr(ssmk::kScheduleAttrName))
            found.push_back(op);
          return;
        }
        auto parent = op->getParentOfType<scf::ForOp>();
        if (isa<ScanOp, StepOp>(op) &&
            !(parent && parent->hasAttr(ssmk::kScheduleAttrName)))
          found.push_back(op);
      });
      if (found.size() > 1) {
        func.emitError("ssm-to-gpu: one layer (ssm.scan, ssm.step or chunk "
                       "loop) per function");
        return signalPassFailure();
      }
      if (found.empty())
        continue;
      FailureOr<Layer> layer =
          isa<scf::ForOp>(found.front())
              ? layerOfLoop(cast<scf::ForOp>(found.front()))
              : layerOfOp(found.front());
      if (failed(layer))
        return signalPassFailure();
      work.push_back({func, std::move(*layer)});
    }
    if (work.empty())
      return;
    OpBuilder ob(module.getBodyRegion());
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    ob.getUnitAttr());
    auto gpuModule = gpu::GPUModuleOp::create(ob, module.getLoc(), "mamba3_kernels");
    for (auto &[func, layer] : work) {
      if (failed(buildKernel(layer, func, gpuModule)))
        return signalPassFailure();
      func.erase();
    }
  }
};

} // namespace
