//===- SsmkDialect.cpp - The kernel-level ssmk dialect --------------------===//

#include "dialect/SsmkDialect.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::ssmk;

#include "dialect/SsmkDialect.cpp.inc"
#include "dialect/SsmkEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SsmkAttrs.cpp.inc"

#define GET_OP_CLASSES
#include "dialect/SsmkOps.cpp.inc"

void SsmkDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/SsmkAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialect/SsmkOps.cpp.inc"
      >();
}

LogicalResult
LayerAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t batch,
                  int64_t seqLen, int64_t heads, int64_t groups, int64_t state,
                  int64_t headDim, int64_t angles, int64_t rank, Type dataType,
                  bool step, bool mimo, bool, bool, bool, bool, bool, bool,
                  bool, bool varlen, bool, bool, bool fullChunks,
                  MmaEngines, int64_t qkBuffers, FloatAttr) {
  if (batch < 0 || seqLen < 0)
    return emitError() << "batch and seq_len are positive, or 0 when sized "
                          "at launch; got "
                       << batch << " and " << seqLen;
  if (heads < 1 || groups < 1 || state < 1 || headDim < 1 || angles < 0 ||
      rank < 1)
    return emitError() << "heads, groups, state, head_dim and rank are "
                          "positive and angles not negative";
  if (heads % groups != 0)
    return emitError() << "heads (" << heads << ") must be a multiple of "
                       << "groups (" << groups << ")";
  if (rank > 1 && !mimo)
    return emitError() << "rank " << rank << " needs mimo";
  if (!dataType.isF32() && !dataType.isBF16() && !dataType.isF16())
    return emitError() << "data_type is f32, bf16 or f16, got " << dataType;
  if (step && (varlen || fullChunks))
    return emitError() << "a decode step has no sequence: no varlen or "
                          "full_chunks";
  if (qkBuffers < 0 || qkBuffers > 2)
    return emitError() << "qk_buffers must be 0, 1 or 2, got " << qkBuffers;
  return success();
}

LogicalResult
ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                     ScheduleKind kind, int64_t chunk, int64_t chunksPerBlock,
                     int64_t blockSize, bool fullChunks, MmaEngines mma,
                     int64_t qkBuffers) {
  if (kind == ScheduleKind::tokens) {
    if (chunk != 0 || chunksPerBlock != 0 || fullChunks ||
        mma != MmaEngines::auto_ || qkBuffers != 0)
      return emitError() << "a tokens schedule has no chunk, chunks_per_block, "
                            "full_chunks, mma or qk_buffers (the "
                            "token-sequential kernel has none of them)";
    if (blockSize != 0 &&
        (blockSize < 32 || blockSize > 1024 || blockSize % 32 != 0))
      return emitError() << "block_size must be 0 (by shape) or a multiple of "
                            "32 in [32, 1024], got "
                         << blockSize;
    return success();
  }
  if (chunk < 1)
    return emitError() << "a " << stringifyScheduleKind(kind)
                       << " schedule needs a chunk of at least 1 token, got "
                       << chunk;
  if (blockSize != 0)
    return emitError() << "block_size is the tokens schedule's; the chunked "
                          "kernels' block follows the head dim";
  if (kind == ScheduleKind::chunked && chunksPerBlock != 0)
    return emitError() << "chunks_per_block is chunk_parallel's";
  if (chunksPerBlock < 0)
    return emitError() << "chunks_per_block must be 0 (at launch) or positive, "
                          "got "
                       << chunksPerBlock;
  if (qkBuffers < 0 || qkBuffers > 2)
    return emitError() << "qk_buffers must be 0 (the planner's), 1 or 2, got "
                       << qkBuffers;
  return success();
}

LogicalResult SsmkDialect::verifyOperationAttribute(Operation *op,
                                                    NamedAttribute attr) {
  if (attr.getName() != kScheduleAttrName)
    return op->emitError() << "'" << attr.getName().getValue()
                           << "' is not an attribute of the ssmk dialect";
  if (!isa<ScheduleAttr>(attr.getValue()))
    return op->emitError() << "'" << kScheduleAttrName
                           << "' must be a #ssmk.schedule, got "
                           << attr.getValue();
  // On a layer: an ssm.scan / ssm.step (checked by name: ssmk does not
  // depend on ssm), or the chunk loop of a chunked scan.
  StringRef name = op->getName().getStringRef();
  if (name != "ssm.scan" && name != "ssm.step" && !isa<scf::ForOp>(op))
    return op->emitError() << "'" << kScheduleAttrName
                           << "' belongs on an ssm.scan, an ssm.step or the "
                              "scf.for chunk loop of a scan, not on '"
                           << name << "'";
  return success();
}
