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

LogicalResult SharedPlanAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, MmaEngines mma,
    int64_t qkBuffers, bool stagedVZ, int64_t q, int64_t k, int64_t scores,
    int64_t ys, int64_t segSum, int64_t gamma, int64_t beta, int64_t wEnd,
    int64_t decay, int64_t kPrev, int64_t qBias, int64_t kBias, int64_t vPrev,
    int64_t thetaCarry, std::optional<int64_t> mbar,
    std::optional<int64_t> vRows, std::optional<int64_t> zRows,
    std::optional<int64_t> vt, int64_t total) {
  if (mma == MmaEngines::auto_)
    return emitError() << "a plan's mma is resolved: mma_sync, wgmma_scores "
                          "or wgmma, not auto";
  const bool swizzled = mma != MmaEngines::mma_sync;
  if (qkBuffers != 1 && qkBuffers != 2)
    return emitError() << "qk_buffers must be 1 or 2, got " << qkBuffers;
  if (qkBuffers == 2 && !swizzled)
    return emitError() << "two q/k buffers need the TMA tiles of wgmma_scores "
                          "or wgmma, not mma_sync";
  if (mbar.has_value() != swizzled)
    return emitError() << (swizzled ? "the TMA tiles of " : "")
                       << stringifyMmaEngines(mma)
                       << (swizzled ? " need an mbar array"
                                    : " has no TMA tiles, so no mbar array");
  if (vRows.has_value() != stagedVZ || (zRows && !stagedVZ))
    return emitError() << "v_rows (and z_rows, with a gate) are there exactly "
                          "when staged_vz is";
  if (!stagedVZ && !vt)
    return emitError() << "without staged V rows the kernel needs a vt array";
  std::pair<const char *, std::optional<int64_t>> offsets[] = {
      {"q", q},         {"k", k},           {"scores", scores},
      {"ys", ys},       {"seg_sum", segSum}, {"gamma", gamma},
      {"beta", beta},   {"w_end", wEnd},    {"decay", decay},
      {"k_prev", kPrev}, {"q_bias", qBias}, {"k_bias", kBias},
      {"v_prev", vPrev}, {"theta_carry", thetaCarry}, {"mbar", mbar},
      {"v_rows", vRows}, {"z_rows", zRows}, {"vt", vt}};
  for (auto [name, offset] : offsets) {
    if (!offset)
      continue;
    if (*offset < 0 || *offset >= total || *offset % 16 != 0)
      return emitError() << name << " at byte " << *offset
                         << ": arrays start 16-byte aligned inside the "
                         << total << " bytes of the plan";
  }
  if (swizzled && (q % 1024 != 0 || k % 1024 != 0 ||
                   (mma == MmaEngines::wgmma && scores % 1024 != 0)))
    return emitError() << "the swizzled tiles (q, k"
                       << (mma == MmaEngines::wgmma ? ", scores" : "")
                       << ") start 1 KiB aligned";
  return success();
}

LogicalResult TokenScanOp::verify() {
  if (getLayer().getStep())
    return emitOpError("is a scan over tokens; a decode step (a layer with "
                       "step) is an ssmk.decode_step");
  return success();
}

LogicalResult DecodeStepOp::verify() {
  if (!getLayer().getStep())
    return emitOpError("computes one token: its layer has step (a scan is an "
                       "ssmk.token_scan or ssmk.chunked_scan)");
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
