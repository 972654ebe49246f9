//===- mamba3-compile.cpp - Layer config or IR to a kernel bundle ---------===//
//
//   mamba3-compile [file.mlir] --batch B --seqlen L --heads H --groups G
//       --state N --headdim P --angles S --rank R [--mimo] [--no-d] [--no-z]
//       [--init] [--no-wrap-angle] [--rule trapezoid|euler]
//       [--pairing adjacent|half_split] [--step] --dtype f32|bf16
//       --chunk C --target cpu|sm_90a -o DIR
//
// The configuration comes from the flags, or from the single ssm.scan /
// ssm.step of file.mlir. Either way the kernel is built from the canonical
// layer module (codegen/LayerModule.h), whose argument order is the bundle's
// calling convention. --emit prints an intermediate stage instead of
// writing a bundle.
//
// --target cpu runs ssm-to-cpu (chunked expansion, host code, kernel.so);
// --target sm_90a asks codegen/GpuBundleCompile.h for the bundle's variants
// (the flags' one, or --tuning-db's winners), each run through ssm-to-nvvm,
// serialized to PTX and assembled to a cubin with the CUDA toolkit's ptxas.
// Batch and length may be sized at launch (0 or ?). This tool reads flags
// and files and chooses the variants asked for; it assembles no pipeline.
//
// Over 600 lines because of its flags: a third of the file is the ~45
// cl::opt declarations, one per layer, schedule and output flag with its
// help text, which --help prints as they stand.
//
//===----------------------------------------------------------------------===//

#include "codegen/BundleWriter.h"
#include "codegen/GpuBundleCompile.h"
#include "codegen/CpuCompile.h"
#include "codegen/GpuCompile.h"
#include "codegen/GpuLowering.h"
#include "codegen/HostObject.h"
#include "codegen/LayerModule.h"
#include "codegen/Pipelines.h"

#include "mamba3/TuningDb.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::ssm;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory configCat("Layer configuration (when no input file is given)");
cl::OptionCategory outputCat("Output");

cl::opt<std::string> inputFile(cl::Positional,
                               cl::desc("[file.mlir with one ssm.scan or "
                                        "ssm.step; '-' for stdin]"),
                               cl::init(""));

cl::opt<std::string> batchOpt("batch",
                              cl::desc("batch size b; 0 or ? = dynamic"),
                              cl::init("?"), cl::cat(configCat));
cl::opt<std::string> seqlenOpt("seqlen",
                               cl::desc("sequence length L; 0 or ? = dynamic"),
                               cl::init("?"), cl::cat(configCat));
cl::opt<int64_t> headsOpt("heads", cl::desc("heads H"), cl::init(1),
                          cl::cat(configCat));
cl::opt<int64_t> groupsOpt("groups", cl::desc("groups G of Q/K heads"),
                           cl::init(1), cl::cat(configCat));
cl::opt<int64_t> stateOpt("state", cl::desc("state size N"), cl::init(16),
                          cl::cat(configCat));
cl::opt<int64_t> headdimOpt("headdim", cl::desc("head dim P"), cl::init(16),
                            cl::cat(configCat));
cl::opt<int64_t> anglesOpt("angles", cl::desc("rotary angles per head S"),
                           cl::init(4), cl::cat(configCat));
cl::opt<int64_t> rankOpt("rank", cl::desc("MIMO rank R (needs --mimo)"),
                         cl::init(1), cl::cat(configCat));
cl::opt<bool> mimoOpt("mimo", cl::desc("MIMO layouts (rank axis)"),
                      cl::cat(configCat));
cl::opt<bool> noDOpt("no-d", cl::desc("no skip weight D"), cl::cat(configCat));
cl::opt<bool> noZOpt("no-z", cl::desc("no gate Z"), cl::cat(configCat));
cl::opt<std::string> stateDtypeOpt(
    "state-dtype",
    cl::desc("element type of the ssm state in and out: f32 | bf16 (the "
             "recurrence runs in fp32 either way)"),
    cl::init("f32"), cl::cat(configCat));
cl::opt<bool> broadcastAnglesOpt(
    "broadcast-angles",
    cl::desc("Angles (b, L, S) shared by all heads, not (b, L, H, S)"),
    cl::cat(configCat));
cl::opt<bool> rmsNormOpt(
    "rmsnorm",
    cl::desc("per-head RMSNorm of y before the gate, weights norm_weight "
             "(H, P) as an input"),
    cl::cat(configCat));
cl::opt<float> normEpsOpt("norm-eps",
                          cl::desc("epsilon of --rmsnorm"), cl::init(1e-5f),
                          cl::cat(configCat));
cl::opt<bool> varlenOpt(
    "varlen",
    cl::desc("packed variable-length batch: --batch sequences packed into "
             "one row of --seqlen tokens, offsets in the i32 input "
             "cu_seqlens (batch + 1)"),
    cl::cat(configCat));
cl::opt<bool> perRankOutputsOpt(
    "per-rank-outputs",
    cl::desc("MIMO without the down projection mimo_o: out is (b, L, R, H, "
             "P), one output per rank"),
    cl::cat(configCat));
cl::opt<bool> noFinalStatesOpt(
    "no-final-states",
    cl::desc("write out only, not the final states (a scan whose caller "
             "drops them)"),
    cl::cat(configCat));
cl::opt<bool> initOpt("init", cl::desc("initial states are inputs"),
                      cl::cat(configCat));
cl::opt<bool> noWrapOpt("no-wrap-angle",
                        cl::desc("do not wrap the angle state into [0, 2 pi)"),
                        cl::cat(configCat));
cl::opt<std::string> ruleOpt("rule", cl::desc("trapezoid | euler"),
                             cl::init("trapezoid"), cl::cat(configCat));
cl::opt<std::string> pairingOpt("pairing", cl::desc("adjacent | half_split"),
                                cl::init("adjacent"), cl::cat(configCat));
cl::opt<bool> stepOpt("step", cl::desc("one decode token (ssm.step)"),
                      cl::cat(configCat));
cl::opt<std::string> dtypeOpt("dtype",
                              cl::desc("data type of Q, K, V, Z, out: f32 | bf16 | f16"),
                              cl::init("f32"), cl::cat(configCat));

cl::opt<std::string> trapDtypeOpt(
    "trap-dtype", cl::desc("element type of Trap: f32 | bf16 | f16"),
    cl::init("f32"), cl::cat(configCat));
cl::opt<std::string> biasDtypeOpt(
    "bias-dtype", cl::desc("element type of Q_bias and K_bias: f32 | bf16 | f16"),
    cl::init("f32"), cl::cat(configCat));
cl::opt<std::string> kStateDtypeOpt(
    "k-state-dtype",
    cl::desc("element type of the k state in and out: f32 | bf16 | f16"),
    cl::init("f32"), cl::cat(configCat));
cl::opt<std::string> vStateDtypeOpt(
    "v-state-dtype",
    cl::desc("element type of the v state in and out: f32 | bf16 | f16"),
    cl::init("f32"), cl::cat(configCat));

cl::opt<int64_t> chunkOpt("chunk",
                          cl::desc("tokens per chunk (cpu; GPU: rank-1 terms, "
                                   "chosen by the compiler when absent); 0 = "
                                   "token by token"),
                          cl::init(64), cl::cat(outputCat));
cl::opt<std::string> targetOpt("target",
                               cl::desc("cpu | sm_90a (NVIDIA H100)"),
                               cl::init("cpu"), cl::cat(outputCat));
cl::opt<int64_t> blockSizeOpt(
    "block-size",
    cl::desc("GPU threads per block (0: chosen by the state size)"),
    cl::init(0), cl::cat(outputCat));
cl::opt<std::string> scheduleOpt(
    "schedule",
    cl::desc("GPU schedule: auto (chunked where it applies, chunk-parallel "
             "when batch * heads leaves SMs idle) | chunked (tensor cores, "
             "bf16 prefill, one block per (head, batch)) | "
             "chunk-parallel (three launches, blocks per chunk) | tokens "
             "(token-sequential)"),
    cl::init("auto"), cl::cat(outputCat));
cl::opt<int64_t> chunksPerBlockOpt(
    "chunks-per-block",
    cl::desc("chunk-parallel schedule: consecutive chunks each block walks "
             "(0: chosen so that the blocks fill the SMs once)"),
    cl::init(0), cl::cat(outputCat));
cl::opt<std::string> mmaOpt(
    "mma",
    cl::desc("chunked schedules: the matmul engines, auto (the compiler's "
             "choice) | mma.sync | wgmma-scores (scores on warpgroup MMA, "
             "output and state on mma.sync) | wgmma (all three on warpgroup "
             "MMA); refused where the tiles do not allow it"),
    cl::init("auto"), cl::cat(outputCat));
cl::opt<int64_t> qkBuffersOpt(
    "qk-buffers",
    cl::desc("chunked schedules: Q/K tile buffers, 2 (the next chunk's "
             "tiles load by TMA while one computes) or 1 (0: the compiler's "
             "choice)"),
    cl::init(0), cl::cat(outputCat));
cl::opt<int64_t> smCountOpt(
    "sm-count",
    cl::desc("SMs of the target GPU, for the schedule choices of static "
             "shapes (132: H100 SXM, H200); dynamic bundles take the device's "
             "count at launch"),
    cl::init(132), cl::cat(outputCat));
cl::opt<std::string> tuningDbOpt(
    "tuning-db",
    cl::desc("tuning database of mamba3-tune: its winning variants for this "
             "layer become the bundle's, chosen per launch shape by its "
             "buckets (a static shape gets its bucket's winner)"),
    cl::value_desc("FILE"), cl::init(""), cl::cat(outputCat));
cl::opt<std::string> cudaToolkitOpt(
    "cuda-toolkit",
    cl::desc("CUDA toolkit folder holding bin/ptxas and nvvm/libdevice "
             "(default: $CUDA_HOME, else /usr/local/cuda)"),
    cl::init(""), cl::cat(outputCat));
cl::opt<std::string> hostCpuOpt(
    "host-cpu",
    cl::desc("LLVM CPU name for the cpu target ('native': this machine)"),
    cl::init("generic"), cl::cat(outputCat));
cl::opt<std::string> outputDir("o", cl::desc("bundle directory"),
                               cl::value_desc("DIR"), cl::cat(outputCat));

enum class Emit {
  Bundle,
  MlirInput,
  MlirExpanded,
  MlirScheduled,
  MlirKernels,
  MlirGpu,
  MlirLowered,
  Llvm,
  Ptx
};
cl::opt<Emit> emitOpt(
    "emit", cl::desc("print a stage to stdout instead of writing a bundle"),
    cl::values(clEnumValN(Emit::Bundle, "bundle", "write the bundle (default)"),
               clEnumValN(Emit::MlirInput, "mlir-input",
                          "the layer module (ssm dialect)"),
               clEnumValN(Emit::MlirExpanded, "mlir-expanded",
                          "after ssm-expand (tensors)"),
               clEnumValN(Emit::MlirScheduled, "mlir-scheduled",
                          "after ssm-gpu-schedule (a chunked scan as its "
                          "chunk loop; GPU targets)"),
               clEnumValN(Emit::MlirKernels, "mlir-kernels",
                          "after ssm-to-gpu (each kernel as an ssmk op: the "
                          "layer, block size, chunk, phase; GPU targets)"),
               clEnumValN(Emit::MlirGpu, "mlir-gpu",
                          "after ssmk-build-kernels (gpu dialect kernel "
                          "bodies; GPU targets)"),
               clEnumValN(Emit::MlirLowered, "mlir-lowered",
                          "the LLVM dialect module (NVVM for GPU targets)"),
               clEnumValN(Emit::Llvm, "llvm", "optimized LLVM IR (cpu)"),
               clEnumValN(Emit::Ptx, "ptx", "PTX (GPU targets)")),
    cl::init(Emit::Bundle), cl::cat(outputCat));

int fail(const llvm::Twine &message) {
  llvm::errs() << "mamba3-compile: error: " << message << "\n";
  return 1;
}

/// "0" and "?" mean dynamic; otherwise a positive integer.
bool parseDim(cl::opt<std::string> &opt, int64_t &size) {
  llvm::StringRef text(opt.getValue());
  if (text == "?" || text == "0") {
    size = ShapedType::kDynamic;
    return true;
  }
  if (text.getAsInteger(10, size) || size < 0) {
    fail("--" + opt.ArgStr + " expects a positive integer, or 0 or ? for "
         "dynamic; got '" + text + "'");
    return false;
  }
  return true;
}

/// The spec from the flags; false after reporting a bad value.
bool specFromFlags(LayerSpec &spec) {
  spec.step = stepOpt;
  if (spec.step && seqlenOpt.getNumOccurrences())
    return fail("--seqlen has no meaning with --step (a decode step is one "
                "token)"),
           false;
  if (!parseDim(batchOpt, spec.batch) ||
      (!spec.step && !parseDim(seqlenOpt, spec.seqlen)))
    return false;
  spec.heads = headsOpt;
  spec.groups = groupsOpt;
  spec.state = stateOpt;
  spec.headdim = headdimOpt;
  spec.angles = anglesOpt;
  spec.rank = rankOpt;
  spec.mimo = mimoOpt;
  spec.hasD = !noDOpt;
  spec.hasZ = !noZOpt;
  spec.hasInitialState = initOpt;
  spec.finalStates = !noFinalStatesOpt;
  spec.perRankOutputs = perRankOutputsOpt;
  spec.wrapAngle = !noWrapOpt;
  spec.broadcastAngles = broadcastAnglesOpt;
  spec.varlen = varlenOpt;
  spec.rmsNorm = rmsNormOpt;
  spec.normEps = normEpsOpt;
  if (normEpsOpt.getNumOccurrences() && !rmsNormOpt)
    return fail("--norm-eps needs --rmsnorm"), false;
  if (!(normEpsOpt > 0) || !std::isfinite(normEpsOpt))
    return fail("--norm-eps must be a positive finite number"), false;
  if (stateDtypeOpt != "f32" && stateDtypeOpt != "bf16")
    return fail("--state-dtype must be f32 or bf16, got '" + stateDtypeOpt +
                "'"),
           false;
  spec.bf16State = stateDtypeOpt == "bf16";
  if (auto rule = symbolizeDiscretizationRule(ruleOpt))
    spec.rule = *rule;
  else
    return fail("--rule must be trapezoid or euler, got '" + ruleOpt + "'"),
           false;
  if (auto pairing = symbolizeRotaryPairing(pairingOpt))
    spec.pairing = *pairing;
  else
    return fail("--pairing must be adjacent or half_split, got '" +
                pairingOpt + "'"),
           false;
  // --dtype and the per-argument dtypes take the same three names.
  for (auto [opt, type] :
       {std::pair<cl::opt<std::string> *, LayerDataType *>{&dtypeOpt,
                                                            &spec.dataType},
        {&trapDtypeOpt, &spec.trapType},
        {&biasDtypeOpt, &spec.biasType},
        {&kStateDtypeOpt, &spec.kStateType},
        {&vStateDtypeOpt, &spec.vStateType}}) {
    if (*opt != "f32" && *opt != "bf16" && *opt != "f16")
      return fail("--" + opt->ArgStr.str() + " must be f32, bf16 or f16, got '" +
                  *opt + "'"),
             false;
    *type = *opt == "bf16"  ? LayerDataType::bf16
            : *opt == "f16" ? LayerDataType::f16
                            : LayerDataType::f32;
  }
  return true;
}

/// Flags that state the configuration; they may not be mixed with a file.
bool anyConfigFlagGiven(std::string &which) {
  for (cl::Option *opt : std::initializer_list<cl::Option *>{
           &batchOpt, &seqlenOpt, &headsOpt, &groupsOpt, &stateOpt,
           &headdimOpt, &anglesOpt, &rankOpt, &mimoOpt, &noDOpt, &noZOpt,
           &initOpt, &noFinalStatesOpt, &perRankOutputsOpt, &noWrapOpt, &broadcastAnglesOpt, &varlenOpt, &rmsNormOpt,
           &normEpsOpt, &stateDtypeOpt,
           &ruleOpt, &pairingOpt,
           &stepOpt, &dtypeOpt, &trapDtypeOpt, &biasDtypeOpt,
           &kStateDtypeOpt, &vStateDtypeOpt})
    if (opt->getNumOccurrences()) {
      which = opt->ArgStr.str();
      return true;
    }
  return false;
}

/// Prints diagnostics as `file:line:col: error: ...` when they carry a file
/// location (an input file) and `mamba3-compile: error: ...` otherwise (a
/// configuration from the flags).
void printDiagnostic(Diagnostic &diag) {
  llvm::raw_ostream &os = llvm::errs();
  if (auto loc = dyn_cast<FileLineColLoc>(diag.getLocation())) {
    os << loc.getFilename().getValue();
    if (loc.getLine() != 0)
      os << ":" << loc.getLine() << ":" << loc.getColumn();
  } else
    os << "mamba3-compile";
  switch (diag.getSeverity()) {
  case DiagnosticSeverity::Error:
    os << ": error: ";
    break;
  case DiagnosticSeverity::Warning:
    os << ": warning: ";
    break;
  case DiagnosticSeverity::Note:
    os << ": note: ";
    break;
  case DiagnosticSeverity::Remark:
    os << ": remark: ";
    break;
  }
  os << diag << "\n";
  for (Diagnostic &note : diag.getNotes())
    printDiagnostic(note);
}

/// The variants of a bundle and its dispatch table from the tuning
/// database --tuning-db for `spec`. False after an error; with no entry for
/// the layer, a warning and no requests (the caller takes the flags').
bool requestsFromTuningDb(const LayerSpec &spec,
                          std::vector<GpuVariantRequest> &requests,
                          GpuDispatchBuild &dispatch) {
  mamba3::TuningDb db;
  std::string error;
  if (!mamba3::loadTuningDb(tuningDbOpt, db, error))
    return fail(error), false;
  if (db.arch != targetOpt)
    return fail(tuningDbOpt + " is a tuning database for " + db.arch +
                ", not " + targetOpt + "; tune this GPU with mamba3-tune, or "
                "leave --tuning-db out"),
           false;
  const std::string key = mamba3::tuningConfigKey(spec.canonicalString());
  std::vector<const mamba3::TuningEntry *> entries =
      mamba3::tuningEntriesFor(db, key);
  if (entries.empty()) {
    llvm::errs() << "mamba3-compile: warning: " << tuningDbOpt
                 << " has no entry for this layer (" << key
                 << "); the compiler's schedule rule decides (tune it with "
                    "mamba3-tune)\n";
    return true;
  }
  const bool dynamic = spec.batch == ShapedType::kDynamic ||
                       (!spec.step && spec.seqlen == ShapedType::kDynamic);
  std::vector<mamba3::TunedVariant> chosen;
  for (const mamba3::TuningEntry *e : entries) {
    // A decode step has only the token-sequential kernel: an entry that
    // names a chunked one is not this layer's, whatever its key says.
    if (spec.step && e->best.schedule != "tokens")
      return fail(tuningDbOpt + ": the entry for this decode step (b " +
                  std::to_string(e->batchMin) + "..) names the " +
                  e->best.schedule +
                  " schedule; a step runs the token-sequential kernel "
                  "(tune it again with mamba3-tune --step)"),
             false;
    // A static shape gets the one winner of its bucket.
    if (!dynamic && !e->holds(spec.batch, spec.seqlen))
      continue;
    if (llvm::none_of(chosen, [&](const mamba3::TunedVariant &v) {
          return v.sameKernel(e->best);
        }))
      chosen.push_back(e->best);
    if (dynamic)
      dispatch.table.push_back({e->batchMin, e->batchMax, e->seqlenMin,
                                e->seqlenMax, e->best.name()});
  }
  if (chosen.empty()) {
    llvm::errs() << "mamba3-compile: warning: " << tuningDbOpt
                 << " has no bucket holding batch " << spec.batch
                 << ", seqlen " << spec.seqlen
                 << " for this layer; the compiler's schedule rule decides\n";
    return true;
  }
  // The one-pass chunked variants first: the top level, and the cost
  // model's choice for shapes no row holds; then by name, so that the same
  // database gives the same bundle.
  llvm::sort(chosen, [](const mamba3::TunedVariant &a,
                        const mamba3::TunedVariant &b) {
    return std::make_pair(a.schedule != "chunked", a.name()) <
           std::make_pair(b.schedule != "chunked", b.name());
  });
  if (dynamic && !spec.step && chosen.front().schedule != "chunked") {
    // Shapes past the table (more sequences) want the one-pass kernel.
    mamba3::TunedVariant one;
    one.schedule = "chunked";
    chosen.insert(chosen.begin(), one);
  }
  for (const mamba3::TunedVariant &v : chosen) {
    GpuVariantRequest request;
    request.schedule = v.schedule;
    request.chunk = v.chunk;
    request.chunksPerBlock = v.chunksPerBlock;
    request.mma = v.mma;
    request.qkBuffers = v.qkBuffers;
    request.blockSize = v.blockSize;
    // Named also when it is the only one but gets a full-chunk twin.
    if (chosen.size() > 1 ||
        (!spec.step && spec.seqlen == ShapedType::kDynamic && !spec.varlen))
      request.name = v.name();
    requests.push_back(request);
  }
  dispatch.source = "tuning database " +
                    llvm::sys::path::filename(tuningDbOpt).str() + " (" +
                    entries.front()->device + ")";
  return true;
}

/// --target sm_90a: ssm-to-nvvm, PTX, cubin, bundle (or one --emit stage).
/// A layer with batch or length sized at launch gets variants chosen per
/// launch shape: from --tuning-db, else the one-pass chunked kernel and the
/// chunk-parallel one, picked by the runtime's cost model.
int compileGpu(MLIRContext &context, LayerSpec spec, ModuleOp module,
               ModuleOp inputModule) {
  if (smCountOpt < 1 || smCountOpt > 1024) {
    llvm::errs() << "mamba3-compile: --sm-count must be in [1, 1024], got "
                 << smCountOpt << "\n";
    return 2;
  }
  std::vector<GpuVariantRequest> requests;
  GpuDispatchBuild dispatch;
  if (!tuningDbOpt.empty()) {
    if (scheduleOpt.getNumOccurrences() || chunkOpt.getNumOccurrences() ||
        chunksPerBlockOpt.getNumOccurrences() || mmaOpt.getNumOccurrences() ||
        qkBuffersOpt.getNumOccurrences() || blockSizeOpt.getNumOccurrences())
      return fail("--tuning-db chooses the schedule, chunk, chunks per "
                  "block, matmul engines, Q/K buffers and block size; leave "
                  "--schedule, --chunk, --chunks-per-block, --mma, "
                  "--qk-buffers and --block-size out");
    if (!requestsFromTuningDb(spec, requests, dispatch))
      return 1;
  }
  const bool tuned = !requests.empty();
  if (!tuned) {
    // --chunk 0 asks for no chunking: the token-sequential kernel. Without
    // --chunk the compiler chooses the chunk size (ssm-gpu-schedule's 0).
    GpuVariantRequest request;
    request.schedule = chunkOpt == 0 && scheduleOpt == "auto"
                           ? std::string("tokens")
                           : scheduleOpt.getValue();
    request.chunk = chunkOpt.getNumOccurrences() ? chunkOpt.getValue() : 0;
    request.chunksPerBlock = chunksPerBlockOpt;
    request.mma = mmaOpt;
    request.qkBuffers = qkBuffersOpt;
    request.blockSize = blockSizeOpt;
    requests.push_back(request);
  }
  GpuBundleOptions options;
  options.chip = targetOpt;
  options.smCount = smCountOpt;
  options.toolkit =
      cudaToolkitOpt.empty() ? defaultCudaToolkitPath() : cudaToolkitOpt;
  options.chunkParallelSibling = !tuned && scheduleOpt == "auto";
  if (emitOpt != Emit::Bundle)
    options.emit = emitOpt == Emit::MlirScheduled ? GpuCompileStage::Scheduled
                   : emitOpt == Emit::MlirKernels ? GpuCompileStage::Kernels
                   : emitOpt == Emit::MlirGpu     ? GpuCompileStage::Gpu
                   : emitOpt == Emit::MlirLowered ? GpuCompileStage::Lowered
                                                  : GpuCompileStage::Ptx;
  std::string error;
  if (failed(compileGpuBundle(spec, module, inputModule, std::move(requests),
                              dispatch, options, outputDir, llvm::outs(),
                              error)))
    return fail(error);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  registerSsmPasses();
  registerSsmGpuPasses();
  registerSsmPipelines();
  // LLVM and MLIR register hundreds of options of their own in every tool
  // that links them; --help should show the ones this tool means.
  cl::HideUnrelatedOptions({&configCat, &outputCat});
  cl::ParseCommandLineOptions(
      argc, argv,
      "Mamba-3 compiler: a layer configuration (flags) or an .mlir file with "
      "one ssm.scan / ssm.step to a kernel bundle\n");

  const bool gpuTarget = targetOpt == "sm_90a";
  if (targetOpt != "cpu" && !gpuTarget)
    return fail("unsupported target '" + targetOpt +
                "'; supported targets: cpu, sm_90a");
  if (gpuTarget && (emitOpt == Emit::MlirExpanded || emitOpt == Emit::Llvm))
    return fail("--emit=" + std::string(emitOpt == Emit::Llvm ? "llvm" : "mlir-expanded") +
                " is a cpu stage; for sm_90a use mlir-scheduled, "
                "mlir-kernels, mlir-gpu, mlir-lowered or ptx");
  if (!gpuTarget && (emitOpt == Emit::MlirScheduled ||
                     emitOpt == Emit::MlirKernels ||
                     emitOpt == Emit::MlirGpu || emitOpt == Emit::Ptx))
    return fail("--emit=" +
                std::string(emitOpt == Emit::Ptx           ? "ptx"
                            : emitOpt == Emit::MlirGpu     ? "mlir-gpu"
                            : emitOpt == Emit::MlirKernels ? "mlir-kernels"
                                                           : "mlir-scheduled") +
                " needs a GPU target (--target sm_90a)");
  if (emitOpt == Emit::Bundle && outputDir.empty())
    return fail("no output: give -o DIR for the bundle, or --emit=<stage> "
                "to print a stage");

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registry.insert<SsmDialect>();
  // Serializing gpu.module to PTX translates NVVM to LLVM IR.
  registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  MLIRContext context(registry);
  // The generic form of the op under test says nothing a user of the flags
  // can act on; the verifier's message names the field and the limit.
  context.printOpOnDiagnostic(false);
  ScopedDiagnosticHandler diagnostics(&context, [](Diagnostic &diag) {
    printDiagnostic(diag);
    return success();
  });

  LayerSpec spec;
  if (!inputFile.empty()) {
    std::string flag;
    if (anyConfigFlagGiven(flag))
      return fail("--" + flag + " conflicts with the configuration read from '" +
                  inputFile + "'; give either a file or configuration flags");
    llvm::SourceMgr sourceMgr;
    auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(inputFile);
    if (!buffer)
      return fail("cannot read '" + inputFile +
                  "': " + buffer.getError().message());
    sourceMgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
    OwningOpRef<ModuleOp> userModule =
        parseSourceFile<ModuleOp>(sourceMgr, &context);
    if (!userModule)
      return 1;
    FailureOr<LayerSpec> fromFile = layerSpecFromModule(*userModule);
    if (failed(fromFile))
      return 1;
    spec = *fromFile;
  } else if (!specFromFlags(spec)) {
    return 1;
  }
  spec.chunkSize = chunkOpt;
  if (gpuTarget) {
    // The chunk size of a GPU bundle is the kernel's (0 for the
    // token-sequential schedule); compileGpu records it.
    spec.chunkSize = 0;
  }

  OwningOpRef<ModuleOp> module =
      buildLayerModule(context, spec, UnknownLoc::get(&context));
  if (!module)
    return 1;
  if (failed(verify(*module)))
    return 1;

  if (emitOpt == Emit::MlirInput) {
    module->print(llvm::outs());
    return 0;
  }
  // kernel.mlir keeps the ssm-level module; the pipeline rewrites `module`.
  OwningOpRef<ModuleOp> inputModule = module->clone();
  if (gpuTarget)
    return compileGpu(context, spec, *module, *inputModule);

  std::string passPipeline, error;
  if (failed(compileCpuKernels(*module, spec,
                               emitOpt == Emit::MlirExpanded
                                   ? CpuCompileStage::Expanded
                                   : CpuCompileStage::Lowered,
                               passPipeline, error)))
    return fail(error);
  if (emitOpt == Emit::MlirExpanded || emitOpt == Emit::MlirLowered) {
    module->print(llvm::outs());
    return 0;
  }

  HostTargetOptions host;
  host.cpu = hostCpuOpt;
  if (emitOpt == Emit::Llvm) {
    llvm::LLVMContext llvmContext;
    auto llvmModule = translateToOptimizedLLVMIR(*module, llvmContext, host);
    if (!llvmModule)
      return fail(llvm::toString(llvmModule.takeError()));
    (*llvmModule)->print(llvm::outs(), nullptr);
    return 0;
  }

  BundleDescription description;
  description.target = targetOpt;
  description.pipeline =
      "ssm-to-cpu{chunk-size=" + std::to_string(spec.chunkSize) + "}";
  description.passPipeline = passPipeline;
  description.host = host;
  if (llvm::Error err = writeCpuBundle(outputDir, spec, *inputModule, *module,
                                       description))
    return fail(llvm::toString(std::move(err)));
  llvm::outs() << "mamba3-compile: wrote " << outputDir << " ("
               << spec.kindName() << ", config " << spec.configHash()
               << ")\n";
  return 0;
}
