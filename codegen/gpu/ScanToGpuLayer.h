//===- ScanToGpuLayer.h - A scheduled layer as ssm-to-gpu reads it -*- C++ -*-===//
//
// Private to ssm-to-gpu (ScanToGpu.cpp makes the kernels; ScanToGpuLayer.cpp
// reads the layer they compute off the IR ssm-gpu-schedule left).
//
//===----------------------------------------------------------------------===//

#ifndef MAMBA3_CODEGEN_GPU_SCANTOGPULAYER_H
#define MAMBA3_CODEGEN_GPU_SCANTOGPULAYER_H

#include "codegen/gpu/GpuKernel.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::ssm::scan_to_gpu {

/// The ODS operand segments shared by ssm.scan and ssm.step (cu_seqlens,
/// the last, is the scan's only).
enum Segment : unsigned {
  kQ, kK, kV, kADT, kDT, kTrap, kQBias, kKBias, kAngles, kD, kZ, kInitAngle,
  kInitSsm, kInitK, kInitV, kMimoV, kMimoZ, kMimoO, kNormWeight, kCuSeqlens
};

/// One layer as its kernels see it: the values it reads (in op order, with
/// the op's operand segments) and the types of what it writes. For a chunk
/// loop: the whole-sequence tensors its chunks slice, the states it starts
/// from (none when it starts from zeros), and its results.
struct Layer {
  /// The ssm.scan / ssm.step whose attributes describe the layer (the chunk
  /// scan of a loop).
  Operation *op = nullptr;
  /// The chunk loop (null for a layer op).
  scf::ForOp loop;
  SmallVector<Value> operands;
  SmallVector<int32_t> segments;
  SmallVector<Type> resultTypes;
  /// Whether anything uses the four final states: when nothing does, the
  /// kernels take `out` only and write no state (a prefill whose caller
  /// drops them).
  bool writesStates = true;
  LayerShape shape;
  ssmk::ScheduleKind schedule = ssmk::ScheduleKind::tokens;
  /// Tokens per chunk (chunked schedules), chunks per block (chunk-parallel),
  /// the requested threads per block (tokens; 0: chosen here).
  int64_t chunkTokens = 0, chunksPerBlock = 0, blockSize = 0;

  /// The position among the operands of segment `index`'s operand, if the
  /// segment has one.
  std::optional<unsigned> position(unsigned index) const {
    if (index >= segments.size() || segments[index] == 0)
      return std::nullopt;
    unsigned start = 0;
    for (unsigned i = 0; i < index; ++i)
      start += segments[i];
    return start;
  }
  Value operand(unsigned index) const {
    std::optional<unsigned> at = position(index);
    return at ? operands[*at] : Value();
  }
};

/// A layer op that ssm-gpu-schedule marked, or a chunk loop of it (the
/// layer the loop computes), as the kernels see it; fails with the op's
/// diagnostic where the IR is not what ssm-gpu-schedule makes.
FailureOr<Layer> layerOfOp(Operation *op);
FailureOr<Layer> layerOfLoop(scf::ForOp loop);

/// The kernel's arguments by role: kernelArgs mirror the layer (operands in
/// order, then out and the four final states where they are written).
KernelArgs argsOf(const Layer &layer, ValueRange kernelArgs);

} // namespace mlir::ssm::scan_to_gpu

#endif // MAMBA3_CODEGEN_GPU_SCANTOGPULAYER_H
