//===- GpuBundleCompile.h - The variants of a GPU bundle --------*- C++ -*-===//
//
// Which kernel variants a GPU bundle of a layer holds, each compiled by
// compileGpuKernels, and the bundle written from them: the variants asked
// for (one from mamba3-compile's flags, or a tuning database's winners),
// the chunk-parallel sibling of a one-pass chunked variant whose batch or
// length is sized at launch, and a full-chunk twin of every chunked
// variant of a length sized at launch.
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_CODEGEN_GPUBUNDLECOMPILE_H
#define MAMBA3_CODEGEN_GPUBUNDLECOMPILE_H

#include "codegen/BundleWriter.h"
#include "codegen/GpuCompile.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir {
namespace ssm {

/// One GPU kernel variant of the layer: what ssm-gpu-schedule is asked.
struct GpuVariantRequest {
  std::string schedule;
  /// ssm-gpu-schedule's chunk-size (rank-1 terms; 0: the compiler's).
  int64_t chunk = 0;
  int64_t chunksPerBlock = 0;
  /// Its name in a bundle of several.
  std::string name;
  /// ssm-gpu-schedule full-chunks, and the variant this one stands in for
  /// at lengths that are a whole number of chunks.
  bool fullChunks = false;
  std::string specializes;
  /// The chunked kernel's matmul engines and Q/K buffers, the tokens
  /// kernel's threads per block (ssm-gpu-schedule's; 0 / auto: chosen).
  std::string mma = "auto";
  int64_t qkBuffers = 0, blockSize = 0;
};

struct GpuBundleOptions {
  /// The chip (sm_90a) and its SM count, and the CUDA toolkit.
  std::string chip;
  int64_t smCount = 132;
  std::string toolkit;
  /// Whether a one-pass chunked variant of a layer sized at launch gets the
  /// chunk-parallel schedule as a second variant (the schedule was left to
  /// the compiler and no tuning database chose the variants).
  bool chunkParallelSibling = false;
  /// A stage to print (to `os`) for the first variant instead of writing a
  /// bundle.
  std::optional<GpuCompileStage> emit;
};

/// Compiles the bundle of `spec` from `requests` (the first into `module`,
/// the variants after it into clones of `inputModule`) and writes it to
/// `outputDir` with `dispatch`, reporting each variant on `os`; or, with
/// options.emit, prints that stage of the first variant to `os`. Fails with
/// `error` set.
LogicalResult compileGpuBundle(LayerSpec spec, ModuleOp module,
                               ModuleOp inputModule,
                               std::vector<GpuVariantRequest> requests,
                               const GpuDispatchBuild &dispatch,
                               const GpuBundleOptions &options,
                               llvm::StringRef outputDir,
                               llvm::raw_ostream &os, std::string &error);

} // namespace ssm
} // namespace mlir

#endif // MAMBA3_CODEGEN_GPUBUNDLECOMPILE_H
