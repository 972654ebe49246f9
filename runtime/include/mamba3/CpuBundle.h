//===- CpuBundle.h - Load and run a CPU kernel bundle -----------*- C++ -*-===//
//
// A bundle written by `mamba3-compile ... --target cpu -o DIR` holds
// DIR/manifest.json and DIR/kernel.so (see codegen/BundleWriter.h). This
// loader needs neither MLIR nor LLVM: it reads the manifest, dlopens the
// library and calls its MLIR C-interface entry, one StridedMemRef descriptor
// pointer per argument in the manifest's order.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_CPUBUNDLE_H
#define MAMBA3_CPUBUNDLE_H

#include "mamba3/Reference.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mamba3 {

/// Manifest layout version this runtime reads.
constexpr int kBundleFormatVersion = 6;

/// The most kernel variants one GPU bundle holds.
constexpr size_t kMaxBundleVariants = 16;

struct BundleArgument {
  std::string name; // Q, K, V, ADT, ..., out, angle, ssm, k, v
  bool isOutput = false;
  std::string dtype;              // "f32", "bf16", "f16" or "i32"
  std::vector<std::string> axes;  // b, L, R, G, H, N, P, S
  std::vector<int64_t> shape;     // -1: dynamic (b or L)
};

/// The most dynamic shared memory an sm_90 block can opt in to (227 KiB).
constexpr int64_t kMaxDynamicSharedBytes = 232448;

struct BundleManifest {
  int formatVersion = 0;
  std::string target;  // "cpu"
  /// GPU bundles: "tokens", "chunked" or "chunk-parallel".
  std::string schedule;
  std::string kind;    // "scan" or "step"
  std::string library; // "kernel.so"
  std::string entry;   // "_mlir_ciface_mamba3_scan"
  std::string configHash, pipeline;
  /// The compiler's one-line statement of the configuration (its FNV-1a is
  /// config_hash), and "fnv1a64:..." digests of the library file and of
  /// kernel.ptx (GPU bundles), each taken over the file's bytes followed by
  /// the config string: a library belongs to one configuration.
  std::string configString, libraryDigest, ptxDigest;
  /// The compiled configuration; batch / seqlen are -1 when dynamic.
  LayerConfig config;
  std::string dtype;
  int64_t chunkSize = 0;
  std::vector<BundleArgument> arguments;
  /// GPU bundles only (empty for "cpu"): the kernel launches in order.
  struct Launch {
    std::string kernel;
    /// Block counts, or the names of sizes computed for each launch: "H",
    /// "b" (batch, or the number of varlen sequences) and "spans"
    /// (chunk-parallel: ceil(ceil(L / chunk_size) / chunks per block)).
    std::vector<std::string> grid;
    /// Threads per block.
    std::vector<int64_t> block;
    /// Shared memory each launch asks for.
    int64_t dynamicSharedBytes = 0;
  };
  std::vector<Launch> launches;
  /// GPU bundles only: device buffers every kernel takes after the
  /// arguments, for passing data between launches.
  struct Scratch {
    std::string name;
    int64_t elementBytes = 4;
    /// Sizes, or "b" / "spans" as in a launch grid.
    std::vector<std::string> shape;
  };
  std::vector<Scratch> scratch;
  /// GPU bundles only: the names of the i64 values every kernel takes after
  /// the tensor maps ("seqlen": L, or the packed tokens of varlen;
  /// "chunks_per_block"), in order.
  std::vector<std::string> parameters;
  /// GPU chunk-parallel bundles: the chunks a block of phases 1 and 3 walks,
  /// or 0 when each launch chooses it (from the device's SM count and
  /// blocksPerSm, the blocks of those phases one SM holds); -1 for the
  /// other schedules.
  int64_t chunksPerBlock = -1, blocksPerSm = 0;
  /// GPU bundles only: TMA tensor maps over argument buffers, which every
  /// kernel takes after the scratch buffers (a pointer to 128 bytes each).
  struct TensorMap {
    std::string name;
    /// The argument whose buffer the map describes (row-major, its shape).
    int64_t argument = 0;
    /// The box each copy moves, innermost dimension first.
    std::vector<int64_t> box;
    int64_t swizzleBytes = 0;
  };
  std::vector<TensorMap> tensorMaps;
  /// Config fields of later compilers (their defaults for bundles without
  /// them): the final states as outputs, and the element types of Trap,
  /// the biases and the k/v states.
  bool finalStates = true;
  std::string trapDtype = "f32", biasDtype = "f32", kStateDtype = "f32",
              vStateDtype = "f32";

  /// GPU bundles: the PTX beside the library (the runtime's fallback).
  std::string ptx = "kernel.ptx";
  /// GPU bundles whose schedule is chosen at launch: the name of the
  /// variant the top level describes (its schedule unless the manifest
  /// names it), the other variants (each this manifest with its own
  /// library, ptx, digests, schedule, chunk size, launches, scratch, tensor
  /// maps, parameters and chunks per block), and the dispatch table: the
  /// first row whose batch and seqlen ranges hold a launch shape names its
  /// variant; a shape no row holds gets the cost model (GpuBundle.h,
  /// chooseGpuVariant).
  std::string variant;
  std::vector<BundleManifest> variants;
  /// A full-chunk variant: its kernels take only lengths that are a
  /// multiple of seqlenMultiple (its tokens per chunk), and it runs in
  /// place of the variant `specializes` names at such lengths; 0 and empty
  /// for the others.
  int64_t seqlenMultiple = 0;
  std::string specializes;
  /// A variant's: the chunk size the bundle's config string states (the
  /// top level's); -1 at the top level, whose own chunk_size it is.
  int64_t configChunkSize = -1;
  struct DispatchRow {
    /// Inclusive ranges; a max of 0 has no upper bound.
    int64_t batchMin = 1, batchMax = 0, seqlenMin = 1, seqlenMax = 0;
    std::string variant;

    bool holds(int64_t b, int64_t l) const {
      return b >= batchMin && (batchMax == 0 || b <= batchMax) &&
             l >= seqlenMin && (seqlenMax == 0 || l <= seqlenMax);
    }
  };
  std::vector<DispatchRow> dispatch;
  /// Where the table came from: "cost-model" (no table) or the tuning
  /// database's description.
  std::string dispatchSource;

  bool isStep() const { return kind == "step"; }
};

/// The most arguments a bundle's entry takes: CpuBundle calls it through a
/// table of callers, one per argument count (a layer has 14 to 23).
constexpr size_t kMaxBundleArguments = 32;

/// Parses the text of a manifest.json. On failure returns false and sets
/// `error` naming the missing or malformed field.
bool parseBundleManifest(const std::string &text, BundleManifest &manifest,
                         std::string &error);

/// The argument list the manifest's configuration implies (names, roles,
/// dtypes, axes and shapes, in order): what mamba3-compile writes for it.
std::vector<BundleArgument> expectedBundleArguments(const BundleManifest &m);

/// Empty when the parts of a parsed manifest agree with each other (sizes in
/// range, the config string and hash the fields state, the argument list
/// the configuration implies, the entry and kernel names of its kind), else
/// a message naming the first field that does not. (Tensor maps are checked
/// where they are parsed.) A bundle is a file users
/// copy between machines: parseBundleManifest runs this on every manifest.
std::string checkManifestConsistency(const BundleManifest &m);

/// Empty when `path` is a complete ELF shared object for this machine
/// (header, program and section headers, and every loaded segment inside
/// the file) with the digest `expectedDigest`, else why not. dlopen maps a
/// truncated file and dies with SIGBUS on the missing pages, and runs a
/// damaged one; this check reads it first.
std::string checkSharedObjectFile(const std::string &path,
                                  const std::string &expectedDigest,
                                  const std::string &configString);

/// A GPU variant's launch fields in one line (schedule, chunk, chunks per
/// block, launches, scratch buffers, tensor maps, parameters), as
/// codegen's BundleWriter writes it.
std::string gpuLaunchString(const BundleManifest &m);

/// What a GPU variant's kernel-file digests are taken with besides the
/// file: the config string, "\n", and gpuLaunchString, so that a manifest
/// whose launch fields were edited (a grid, the shared memory a launch asks
/// for, a scratch size) does not run the kernels.
std::string gpuDigestKey(const BundleManifest &m);

/// "fnv1a64:<16 hex digits>" of `bytes` followed by "\n" and
/// `configString`, as the bundle writer records it.
std::string bundleFileDigest(const std::string &bytes,
                             const std::string &configString);

/// The compiler's canonical config string (codegen's
/// LayerSpec::canonicalString) rebuilt from the manifest's fields.
std::string canonicalConfigString(const BundleManifest &m);

/// Empty when `bytes`, the contents of the bundle file `name`, have the
/// digest `expected`, else a message saying the file is not the one the
/// manifest was written with.
std::string checkBundleFileDigest(const std::string &name,
                                  const std::string &bytes,
                                  const std::string &expected,
                                  const std::string &configString);

/// Reads and parses DIR/manifest.json. On failure returns false and sets
/// `error` ("cannot read ...: no bundle there", or DIR and the parse error).
bool loadBundleManifest(const std::string &dir, BundleManifest &manifest,
                        std::string &error);

/// The size of a manifest axis ("b", "L", "R", "G", "H", "N", "P", "S") in
/// `cfg`, or -1 for an unknown name.
int64_t layerAxisSize(const LayerConfig &cfg, const std::string &axis);

/// Empty when `cfg` can run on a bundle compiled for `manifest`, else a
/// message naming the first field that differs (static batch / seqlen must
/// match; dynamic ones take the config's value; a step ignores seqlen).
std::string checkBundleConfig(const BundleManifest &manifest,
                              const LayerConfig &cfg);

/// Arguments of `mamba3-compile` (program name not included) that build a
/// CPU bundle for `cfg` into `dir`; batch and seqlen stay dynamic unless
/// `staticShapes`.
std::vector<std::string> cpuCompileArguments(const LayerConfig &cfg,
                                             bool step, int64_t chunk,
                                             const std::string &dir,
                                             bool staticShapes = false);

/// Host buffers for every argument of `m` in order, sized for `cfg`: inputs
/// converted from `in` to their element types (absent step states are
/// zeros), outputs zeroed. `shapes` receives each argument's shape. Returns
/// false and sets `error` naming a missing or misshapen input.
bool packBundleArguments(const BundleManifest &m, const LayerConfig &cfg,
                         const LayerInputs &in,
                         std::vector<std::vector<unsigned char>> &buffers,
                         std::vector<std::vector<int64_t>> &shapes,
                         std::string &error);

/// The input tensor of `in` a manifest argument name stands for ("Q",
/// "Q_bias", "ssm0", "cu_seqlens", ...), or null for an unknown name.
Tensor *bundleInputTensor(LayerInputs &in, const std::string &name);
/// The output tensor of `out` for "out", "angle", "ssm", "k", "v", or null.
Tensor *bundleOutputTensor(LayerOutputs &out, const std::string &name);
const Tensor *bundleOutputTensor(const LayerOutputs &out,
                                 const std::string &name);

/// Bytes of one element of `dtype`: 4 for f32 and i32, 2 for bf16 and f16,
/// 0 for anything else (Elements.cpp, with the functions below).
size_t elementSize(const std::string &dtype);
/// Doubles to `dtype` ("f32", "bf16" rounded to nearest even, "i32") at
/// `dst`, and back.
void packElements(const std::vector<double> &src, const std::string &dtype,
                  unsigned char *dst);
void unpackElements(const unsigned char *src, const std::string &dtype,
                    std::vector<double> &dst);

/// relativeL2 of `count` packed `dtype` elements at `got` against those at
/// `ref`, without unpacking them into Tensors (mamba3-tune compares every
/// variant's outputs, 10^8 elements at a long prefill, this way); `period`
/// as relativeL2's.
double relativeL2Packed(const unsigned char *got, const unsigned char *ref,
                        size_t count, const std::string &dtype,
                        double period = 0);

/// Converts the output buffers of packBundleArguments back into `out`.
void unpackBundleOutputs(const BundleManifest &m,
                         const std::vector<std::vector<unsigned char>> &buffers,
                         const std::vector<std::vector<int64_t>> &shapes,
                         LayerOutputs &out);

struct BufferArg;
struct LaunchShape;

class CpuBundle {
public:
  /// Loads DIR/manifest.json and the library it names. Returns null and sets
  /// `error` for a missing or corrupt bundle, a bundle for another target,
  /// or a library without the entry symbol.
  static std::unique_ptr<CpuBundle> load(const std::string &dir,
                                         std::string &error);
  ~CpuBundle();
  CpuBundle(const CpuBundle &) = delete;
  CpuBundle &operator=(const CpuBundle &) = delete;

  const BundleManifest &manifest() const { return manifest_; }
  const std::string &directory() const { return dir_; }

  /// Runs the kernel on `in` (prefill layouts for a scan bundle, decode
  /// layouts for a step bundle; for a step, absent states mean zeros) and
  /// fills `out` (out, and the final angle, ssm, k, v states). Inputs are
  /// converted from double to the kernel's element types and outputs back.
  /// With `repeats` > 1 the kernel runs that many times on the same inputs;
  /// `secondsPerCall`, when given, receives the mean wall time of one kernel
  /// call (conversions excluded). Returns false and sets `error` on a config
  /// mismatch or an input of the wrong shape, naming it.
  bool run(const LayerConfig &cfg, const LayerInputs &in, LayerOutputs &out,
           std::string &error, int repeats = 1,
           double *secondsPerCall = nullptr) const;

  /// Runs the kernel once on caller-owned host buffers, one per manifest
  /// argument in order (see Launch.h), after checking them against the
  /// manifest and `shape`. Safe to call from several threads at once.
  bool launch(const LaunchShape &shape, const BufferArg *args, size_t n,
              std::string &error) const;

private:
  CpuBundle() = default;

  BundleManifest manifest_;
  std::string dir_;
  void *handle_ = nullptr;
  void *entry_ = nullptr;
};

} // namespace mamba3

#endif // MAMBA3_CPUBUNDLE_H
