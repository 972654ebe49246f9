//===- GpuLowering.h - GPU kernels to NVVM, PTX and cubin -------*- C++ -*-===//
//
// The NVIDIA half of `ssm-to-nvvm`: takes the gpu.module that ssm-to-gpu
// generates down to the NVVM/LLVM dialects with an #nvvm.target attached,
// then serializes it to PTX (MLIR's gpu-module-to-binary, format isa) and
// assembles the PTX to a cubin with the CUDA toolkit's ptxas.
//
// Kernels take bare pointers (use-bare-ptr-memref-call-conv): every memref
// has a static shape and identity layout, so one pointer per argument is the
// whole calling convention the runtime needs.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CODEGEN_GPULOWERING_H
#define MAMBA3_CODEGEN_GPULOWERING_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassOptions.h"
#include "codegen/gpu/GpuPasses.h"

#include "llvm/Support/Error.h"

#include <string>

namespace mlir {
class OpPassManager;
namespace ssm {

struct SsmToNvvmOptions : public PassPipelineOptions<SsmToNvvmOptions> {
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("NVIDIA GPU architecture"),
                           llvm::cl::init("sm_90a")};
  Option<std::string> features{*this, "features",
                               llvm::cl::desc("PTX ISA features"),
                               llvm::cl::init("+ptx80")};
  Option<int64_t> optLevel{*this, "opt-level",
                           llvm::cl::desc("LLVM optimization level (0 to 3)"),
                           llvm::cl::init(3)};
  Option<int64_t> blockSize{
      *this, "block-size",
      llvm::cl::desc("threads per block of the tokens schedule (0: by shape)"),
      llvm::cl::init(0)};
  Option<std::string> schedule{
      *this, "schedule",
      llvm::cl::desc("ssm-gpu-schedule's schedule: auto | chunked | "
                     "chunk-parallel | tokens"),
      llvm::cl::init("auto")};
  Option<int64_t> chunkSize{
      *this, "chunk-size",
      llvm::cl::desc("rank-1 terms per chunk of the chunked schedules (0: "
                     "chosen by the compiler)"),
      llvm::cl::init(0)};
  Option<int64_t> smCount{
      *this, "sm-count",
      llvm::cl::desc("SMs of the target (auto's chunk-parallel threshold)"),
      llvm::cl::init(132)};
  Option<int64_t> chunksPerBlock{
      *this, "chunks-per-block",
      llvm::cl::desc("chunk-parallel: consecutive chunks per block of "
                     "phases 1 and 3 (0: spread over the SMs)"),
      llvm::cl::init(0)};
  Option<bool> fullChunks{
      *this, "full-chunks",
      llvm::cl::desc("a launch-time length that is a whole number of chunks: "
                     "kernels without per-token bounds checks"),
      llvm::cl::init(false)};
  Option<std::string> mma{
      *this, "mma",
      llvm::cl::desc("the chunked kernel's matmul engines: auto | mma.sync | "
                     "wgmma-scores | wgmma"),
      llvm::cl::init("auto")};
  Option<int64_t> qkBuffers{
      *this, "qk-buffers",
      llvm::cl::desc("Q/K tile buffers of the chunked kernel: 1 | 2 (0: the "
                     "planner's choice)"),
      llvm::cl::init(0)};

  /// The ssm-gpu-schedule options these stand for.
  SsmGpuScheduleOptions toScheduleOptions() const {
    SsmGpuScheduleOptions o;
    o.blockSize = blockSize;
    o.schedule = schedule;
    o.chunkSize = chunkSize;
    o.smCount = smCount;
    o.chunksPerBlock = chunksPerBlock;
    o.fullChunks = fullChunks;
    o.mma = mma;
    o.qkBuffers = qkBuffers;
    return o;
  }
};

/// Appends the lowering of gpu.module kernels to NVVM (anchored on
/// builtin.module): nvvm-attach-target, then inside every gpu.module
/// scf -> cf and gpu -> nvvm (math through libdevice, bare-pointer memref
/// arguments), canonicalize and CSE, and reconcile-unrealized-casts.
void addGpuLoweringPasses(OpPassManager &pm, const SsmToNvvmOptions &options);

/// The stages of ssm-to-nvvm, in order; each is a list of passes on
/// builtin.module, and the pipeline is the four one after another (the one
/// place its passes are listed; mamba3-compile runs the stages one by one
/// to stop after any of them).
enum class SsmToNvvmStage {
  /// ssm-gpu-schedule: the schedule, and the chunk loop of a chunked scan.
  Schedule,
  /// ssm-to-gpu (one ssmk kernel op per kernel), then
  /// ssmk-plan-shared-memory (each chunked kernel's #ssmk.plan).
  Kernels,
  /// ssmk-build-kernels: the kernel bodies.
  Bodies,
  /// addGpuLoweringPasses.
  Lowering,
};
void addSsmToNvvmStage(OpPassManager &pm, SsmToNvvmStage stage,
                       const SsmToNvvmOptions &options);

/// The four stages of SsmToNvvmStage.
void buildSsmToNvvmPipeline(OpPassManager &pm, const SsmToNvvmOptions &options);

/// Serializes the single gpu.module of `module` (already lowered to NVVM) to
/// PTX text. Links libdevice from `toolkitPath` when the kernels call it.
llvm::Expected<std::string> serializeToPtx(ModuleOp module,
                                           llvm::StringRef toolkitPath);

/// What ptxas -v reported for one kernel (-1: not reported).
struct KernelResources {
  std::string name;
  int64_t registers = -1, spillStoreBytes = -1, spillLoadBytes = -1,
          stackBytes = -1, sharedBytes = -1;
};

/// What ptxas produced for one PTX file.
struct CubinResult {
  std::string cubin;
  /// ptxas -v's report, whole and per kernel (in the report's order).
  std::string info;
  std::vector<KernelResources> kernels;
  /// The resources of the kernel named `name` (all -1 if it is not there).
  KernelResources resourcesOf(llvm::StringRef name) const;
  /// Over all kernels: the most registers, the spilled bytes in total.
  int64_t maxRegisters() const;
  int64_t spillStoreBytes() const;
};

/// Assembles `ptx` for `chip` with `<toolkitPath>/bin/ptxas -O3 -v`. The
/// error names the ptxas it looked for when the toolkit is missing.
llvm::Expected<CubinResult> assembleCubin(llvm::StringRef ptx,
                                          llvm::StringRef chip,
                                          llvm::StringRef toolkitPath);

/// The CUDA toolkit folder: $CUDA_HOME, $CUDA_PATH, else /usr/local/cuda.
std::string defaultCudaToolkitPath();

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_GPULOWERING_H
