//===- CpuBundle.cpp - Load and run a CPU kernel bundle -------------------===//
//
// The config a bundle was built for against the one asked for, the
// arguments of a layer packed for a bundle and back, and CpuBundle: the
// kernel.so of a CPU bundle loaded and called (manifest parsing:
// BundleManifest.cpp; element packing: Elements.cpp).
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"

#include "mamba3/Json.h"
#include "mamba3/Launch.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace mamba3 {

namespace {

const char *const kCompileHint =
    " (build the bundle with `mamba3-compile <config flags> --target cpu -o "
    "DIR`)";

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

//===----------------------------------------------------------------------===//
// Calling the entry
//===----------------------------------------------------------------------===//

// The C interface takes one descriptor pointer per argument, and their number
// depends on the configuration (14 to 23). A table of callers, one per
// argument count up to kMaxBundleArguments, casts the entry to the matching
// function-pointer type.
using Caller = void (*)(void *entry, void *const *args);

template <size_t... I>
void callWithArgs(void *entry, void *const *args, std::index_sequence<I...>) {
  using Fn = void (*)(decltype((void)I, static_cast<void *>(nullptr))...);
  reinterpret_cast<Fn>(entry)(args[I]...);
}

template <size_t N> void callN(void *entry, void *const *args) {
  callWithArgs(entry, args, std::make_index_sequence<N>{});
}

template <size_t... N>
constexpr std::array<Caller, sizeof...(N)>
makeCallers(std::index_sequence<N...>) {
  return {{&callN<N>...}};
}

constexpr std::array<Caller, kMaxBundleArguments + 1> kCallers =
    makeCallers(std::make_index_sequence<kMaxBundleArguments + 1>{});

} // namespace

//===----------------------------------------------------------------------===//
// The config a bundle was built for
//===----------------------------------------------------------------------===//

int64_t layerAxisSize(const LayerConfig &cfg, const std::string &axis) {
  if (axis == "b") return cfg.batch;
  if (axis == "L") return cfg.seqlen;
  if (axis == "R") return cfg.rank;
  if (axis == "G") return cfg.groups;
  if (axis == "H") return cfg.heads;
  if (axis == "N") return cfg.state;
  if (axis == "P") return cfg.headdim;
  if (axis == "S") return cfg.angles;
  // Varlen layers: the packed batch row of token tensors, and cu_seqlens.
  if (axis == "1") return 1;
  if (axis == "b+1") return cfg.batch + 1;
  return -1;
}

std::string checkBundleConfig(const BundleManifest &m,
                              const LayerConfig &cfg) {
  const LayerConfig &b = m.config;
  auto differs = [](const char *field, const std::string &want,
                    const std::string &got) {
    return std::string("config mismatch: the bundle was compiled for ") +
           field + " = " + want + ", the config has " + field + " = " + got;
  };
  auto str = [](int64_t v) { return std::to_string(v); };
  auto yesNo = [](bool v) { return std::string(v ? "true" : "false"); };
  const std::pair<const char *, std::pair<int64_t, int64_t>> sizes[] = {
      {"heads", {b.heads, cfg.heads}},       {"groups", {b.groups, cfg.groups}},
      {"state", {b.state, cfg.state}},       {"headdim", {b.headdim, cfg.headdim}},
      {"angles", {b.angles, cfg.angles}},    {"rank", {b.rank, cfg.rank}}};
  for (const auto &[field, values] : sizes)
    if (values.first != values.second)
      return differs(field, str(values.first), str(values.second));
  if (b.batch != -1 && b.batch != cfg.batch)
    return differs("batch", str(b.batch), str(cfg.batch));
  if (!m.isStep() && b.seqlen != -1 && b.seqlen != cfg.seqlen)
    return differs("seqlen", str(b.seqlen), str(cfg.seqlen));
  if (cfg.batch <= 0 || (!m.isStep() && cfg.seqlen <= 0))
    return "config: batch and seqlen must be positive";
  const std::pair<const char *, std::pair<bool, bool>> flags[] = {
      {"mimo", {b.mimo, cfg.mimo}},
      {"has_d", {b.hasD, cfg.hasD}},
      {"has_z", {b.hasZ, cfg.hasZ}},
      {"broadcast_angles", {b.broadcastAngles, cfg.broadcastAngles}},
      {"varlen", {b.varlen, cfg.varlen}},
      {"rmsnorm", {b.rmsNorm, cfg.rmsNorm}},
      {"per_rank_outputs", {b.perRankOutputs, cfg.perRankOutputs}},
      {"bf16 state (state_dtype)", {b.bf16State, cfg.bf16State}},
      {"wrap_angle", {b.wrapAngle, cfg.wrapAngle}}};
  for (const auto &[field, values] : flags)
    if (values.first != values.second)
      return differs(field, yesNo(values.first), yesNo(values.second));
  if (b.rmsNorm && std::abs(b.normEps - cfg.normEps) > 1e-6 * cfg.normEps)
    return differs("norm_eps", std::to_string(b.normEps),
                   std::to_string(cfg.normEps));
  // A step always takes its states; for a scan they are part of the kernel.
  if (!m.isStep() && b.hasInitialState != cfg.hasInitialState)
    return differs("has_initial_state", yesNo(b.hasInitialState),
                   yesNo(cfg.hasInitialState));
  if (b.rule != cfg.rule)
    return differs("rule",
                   b.rule == Discretization::Euler ? "euler" : "trapezoid",
                   cfg.rule == Discretization::Euler ? "euler" : "trapezoid");
  if (b.pairing != cfg.pairing)
    return differs(
        "pairing",
        b.pairing == RotaryPairing::HalfSplit ? "half_split" : "adjacent",
        cfg.pairing == RotaryPairing::HalfSplit ? "half_split" : "adjacent");
  return "";
}

std::vector<std::string> cpuCompileArguments(const LayerConfig &cfg, bool step,
                                             int64_t chunk,
                                             const std::string &dir,
                                             bool staticShapes) {
  auto dim = [&](int64_t v) {
    return staticShapes ? std::to_string(v) : std::string("?");
  };
  std::vector<std::string> args = {
      "--target", "cpu", "--dtype", "f32", "--batch", dim(cfg.batch)};
  if (!step)
    args.insert(args.end(), {"--seqlen", dim(cfg.seqlen)});
  args.insert(args.end(),
              {"--heads", std::to_string(cfg.heads), "--groups",
               std::to_string(cfg.groups), "--state", std::to_string(cfg.state),
               "--headdim", std::to_string(cfg.headdim), "--angles",
               std::to_string(cfg.angles), "--rank", std::to_string(cfg.rank),
               "--rule",
               cfg.rule == Discretization::Euler ? "euler" : "trapezoid",
               "--pairing",
               cfg.pairing == RotaryPairing::HalfSplit ? "half_split"
                                                       : "adjacent",
               "--chunk", std::to_string(chunk)});
  if (cfg.mimo)
    args.push_back("--mimo");
  if (!cfg.hasD)
    args.push_back("--no-d");
  if (!cfg.hasZ)
    args.push_back("--no-z");
  if (!cfg.wrapAngle)
    args.push_back("--no-wrap-angle");
  if (cfg.broadcastAngles)
    args.push_back("--broadcast-angles");
  if (cfg.varlen && !step)
    args.push_back("--varlen");
  if (cfg.rmsNorm) {
    char eps[32];
    std::snprintf(eps, sizeof(eps), "%.9g", cfg.normEps);
    args.insert(args.end(), {"--rmsnorm", "--norm-eps", eps});
  }
  if (cfg.bf16State)
    args.insert(args.end(), {"--state-dtype", "bf16"});
  if (cfg.perRankOutputs)
    args.push_back("--per-rank-outputs");
  if (step)
    args.push_back("--step");
  else if (cfg.hasInitialState)
    args.push_back("--init");
  args.insert(args.end(), {"-o", dir});
  return args;
}

//===----------------------------------------------------------------------===//
// CpuBundle
//===----------------------------------------------------------------------===//

std::unique_ptr<CpuBundle> CpuBundle::load(const std::string &dir,
                                           std::string &error) {
  std::unique_ptr<CpuBundle> bundle(new CpuBundle());
  bundle->dir_ = dir;
  if (!loadBundleManifest(dir, bundle->manifest_, error)) {
    error += kCompileHint;
    return nullptr;
  }
  const BundleManifest &m = bundle->manifest_;
  if (m.target != "cpu") {
    error = dir + ": the bundle is for target '" + m.target +
            "'; CpuBundle runs 'cpu' bundles";
    return nullptr;
  }

  std::string libraryPath = dir + "/" + m.library;
  if (std::string why = checkSharedObjectFile(libraryPath, m.libraryDigest,
                                              m.configString);
      !why.empty()) {
    error = why;
    if (why.rfind("cannot read", 0) == 0)
      error += kCompileHint;
    return nullptr;
  }
  // RTLD_LOCAL: every bundle defines the same symbol names.
  bundle->handle_ = dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!bundle->handle_) {
    const char *why = dlerror();
    error = "cannot load " + libraryPath + ": " + (why ? why : "unknown") +
            kCompileHint;
    return nullptr;
  }
  bundle->entry_ = dlsym(bundle->handle_, m.entry.c_str());
  if (!bundle->entry_) {
    error = libraryPath + " has no entry '" + m.entry +
            "' (the manifest and the library do not belong together)" +
            kCompileHint;
    return nullptr;
  }
  return bundle;
}

CpuBundle::~CpuBundle() {
  if (handle_)
    dlclose(handle_);
}

Tensor *bundleInputTensor(LayerInputs &in, const std::string &name) {
  static const std::pair<const char *, Tensor LayerInputs::*> map[] = {
      {"Q", &LayerInputs::Q},          {"K", &LayerInputs::K},
      {"V", &LayerInputs::V},          {"ADT", &LayerInputs::ADT},
      {"DT", &LayerInputs::DT},        {"Trap", &LayerInputs::Trap},
      {"Q_bias", &LayerInputs::QBias}, {"K_bias", &LayerInputs::KBias},
      {"Angles", &LayerInputs::Angles}, {"D", &LayerInputs::D},
      {"Z", &LayerInputs::Z},          {"angle0", &LayerInputs::angle0},
      {"ssm0", &LayerInputs::ssm0},    {"k0", &LayerInputs::k0},
      {"v0", &LayerInputs::v0},        {"mimo_v", &LayerInputs::MimoV},
      {"mimo_z", &LayerInputs::MimoZ}, {"mimo_o", &LayerInputs::MimoO},
      {"cu_seqlens", &LayerInputs::CuSeqlens},
      {"norm_weight", &LayerInputs::NormWeight}};
  for (const auto &[key, member] : map)
    if (name == key)
      return &(in.*member);
  return nullptr;
}

Tensor *bundleOutputTensor(LayerOutputs &out, const std::string &name) {
  static const std::pair<const char *, Tensor LayerOutputs::*> map[] = {
      {"out", &LayerOutputs::out}, {"angle", &LayerOutputs::angle},
      {"ssm", &LayerOutputs::ssm}, {"k", &LayerOutputs::k},
      {"v", &LayerOutputs::v}};
  for (const auto &[key, member] : map)
    if (name == key)
      return &(out.*member);
  return nullptr;
}

const Tensor *bundleOutputTensor(const LayerOutputs &out,
                                 const std::string &name) {
  return bundleOutputTensor(const_cast<LayerOutputs &>(out), name);
}

bool packBundleArguments(
    const BundleManifest &m, const LayerConfig &cfg, const LayerInputs &in,
    std::vector<std::vector<unsigned char>> &buffers,
    std::vector<std::vector<int64_t>> &shapes, std::string &error) {
  auto inputTensor = [&](const std::string &name) -> const Tensor * {
    return bundleInputTensor(const_cast<LayerInputs &>(in), name);
  };
  auto outputTensor = [](const std::string &name) {
    LayerOutputs probe;
    return bundleOutputTensor(probe, name) != nullptr;
  };
  auto isState = [](const std::string &name) {
    return name == "angle0" || name == "ssm0" || name == "k0" || name == "v0";
  };

  // One host buffer per argument, of its shape under `cfg`.
  size_t count = m.arguments.size();
  buffers.assign(count, {});
  if (!argumentShapes(m, cfg, shapes, error))
    return false;
  for (size_t i = 0; i < count; ++i) {
    const BundleArgument &arg = m.arguments[i];
    const std::vector<int64_t> &shape = shapes[i];
    int64_t numel = 1;
    for (int64_t size : shape)
      numel *= size;
    buffers[i].assign(static_cast<size_t>(numel) * elementSize(arg.dtype), 0);

    if (!arg.isOutput) {
      const Tensor *t = inputTensor(arg.name);
      if (!t) {
        error = "manifest: unknown input '" + arg.name + "'";
        return false;
      }
      if (t->empty() && m.isStep() && isState(arg.name)) {
        // Zero state, as in referenceStep.
      } else if (t->empty()) {
        error = "input '" + arg.name + "' is missing; the bundle takes it " +
                shapeString(shape);
        return false;
      } else if (t->shape != shape ||
                 static_cast<int64_t>(t->data.size()) != numel) {
        error = "input '" + arg.name + "' has shape " +
                shapeString(t->shape) + ", but the bundle expects " +
                shapeString(shape) + " for this config";
        return false;
      } else if (arg.name == "cu_seqlens" &&
                 !checkSequenceOffsets(*t, cfg.seqlen).empty()) {
        // Kernels trust the offsets: a bad one would read or write out of
        // bounds.
        error = "input " + checkSequenceOffsets(*t, cfg.seqlen);
        return false;
      } else {
        packElements(t->data, arg.dtype, buffers[i].data());
      }
    } else if (!outputTensor(arg.name)) {
      error = "manifest: unknown output '" + arg.name + "'";
      return false;
    }

  }
  return true;
}

void unpackBundleOutputs(
    const BundleManifest &m,
    const std::vector<std::vector<unsigned char>> &buffers,
    const std::vector<std::vector<int64_t>> &shapes, LayerOutputs &out) {
  for (size_t i = 0; i < m.arguments.size(); ++i) {
    const BundleArgument &arg = m.arguments[i];
    if (!arg.isOutput)
      continue;
    Tensor *t = bundleOutputTensor(out, arg.name);
    if (!t)
      continue;
    *t = Tensor(shapes[i]);
    unpackElements(buffers[i].data(), arg.dtype, t->data);
  }
}

bool CpuBundle::launch(const LaunchShape &shape, const BufferArg *args,
                       size_t n, std::string &error) const {
  const BundleManifest &m = manifest_;
  LayerConfig cfg;
  if (!launchConfig(m, shape, cfg, error))
    return false;
  BufferRules rules;
  rules.hostMemory = true;
  error = checkLaunchBuffers(m, cfg, args, n, rules);
  if (!error.empty())
    return false;
  // One StridedMemRef descriptor per argument, built per call (so calls from
  // several threads share nothing): {T *allocated, T *aligned, int64_t
  // offset, int64_t sizes[r], int64_t strides[r]}, 3 + 2r eight-byte words.
  std::vector<int64_t> words;
  std::vector<size_t> starts(n);
  for (size_t i = 0; i < n; ++i) {
    starts[i] = words.size();
    size_t rank = static_cast<size_t>(args[i].rank);
    int64_t base =
        static_cast<int64_t>(reinterpret_cast<intptr_t>(args[i].data));
    words.insert(words.end(), {base, base, 0});
    words.insert(words.end(), args[i].shape, args[i].shape + rank);
    std::vector<int64_t> strides(rank);
    int64_t stride = 1;
    for (size_t r = rank; r-- > 0;) {
      strides[r] = stride;
      stride *= args[i].shape[r];
    }
    words.insert(words.end(), strides.begin(), strides.end());
  }
  std::vector<void *> pointers(n);
  for (size_t i = 0; i < n; ++i)
    pointers[i] = words.data() + starts[i];
  kCallers[n](entry_, pointers.data());
  return true;
}

bool CpuBundle::run(const LayerConfig &cfg, const LayerInputs &in,
                    LayerOutputs &out, std::string &error, int repeats,
                    double *secondsPerCall) const {
  const BundleManifest &m = manifest_;
  std::string mismatch = checkBundleConfig(m, cfg);
  if (!mismatch.empty()) {
    error = mismatch + " (bundle " + dir_ + "; recompile with mamba3-compile)";
    return false;
  }
  std::vector<std::vector<unsigned char>> buffers;
  std::vector<std::vector<int64_t>> shapes;
  if (!packBundleArguments(m, cfg, in, buffers, shapes, error))
    return false;
  std::vector<BufferArg> args = bufferArgs(m, buffers, shapes);
  LaunchShape shape{cfg.batch, cfg.seqlen};
  if (repeats < 1)
    repeats = 1;
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeats; ++r)
    if (!launch(shape, args.data(), args.size(), error))
      return false;
  auto stop = std::chrono::steady_clock::now();
  if (secondsPerCall)
    *secondsPerCall =
        std::chrono::duration<double>(stop - start).count() / repeats;
  unpackBundleOutputs(m, buffers, shapes, out);
  return true;
}

} // namespace mamba3
