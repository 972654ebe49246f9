//===- Launch.cpp - Launching a bundle on caller-owned buffers ------------===//

#include "mamba3/Launch.h"

#include <cstdint>

namespace mamba3 {

const char *elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32: return "f32";
  case ElementType::BF16: return "bf16";
  case ElementType::I32: return "i32";
  case ElementType::F64: return "f64";
  case ElementType::F16: return "f16";
  }
  return "unknown";
}

size_t elementTypeSize(ElementType type) {
  switch (type) {
  case ElementType::F32: case ElementType::I32: return 4;
  case ElementType::BF16: case ElementType::F16: return 2;
  case ElementType::F64: return 8;
  }
  return 0;
}

bool parseElementType(const std::string &dtype, ElementType &type) {
  for (ElementType t : {ElementType::F32, ElementType::BF16, ElementType::F16,
                        ElementType::I32})
    if (dtype == elementTypeName(t)) {
      type = t;
      return true;
    }
  return false;
}

bool launchConfig(const BundleManifest &m, const LaunchShape &shape,
                  LayerConfig &cfg, std::string &error) {
  cfg = m.config;
  const char *batchName = cfg.varlen ? "the number of sequences" : "batch";
  if (shape.batch <= 0 || (!m.isStep() && shape.seqlen <= 0)) {
    error = std::string("launch shape: ") + batchName + " (" +
            std::to_string(shape.batch) + ") and seqlen (" +
            std::to_string(shape.seqlen) + ") must be positive";
    return false;
  }
  if (m.config.batch >= 0 && m.config.batch != shape.batch) {
    error = std::string("launch shape: ") + batchName + " is " +
            std::to_string(shape.batch) + ", but the bundle was compiled for " +
            std::to_string(m.config.batch) +
            " (compile it with --batch ? for any, or for this shape)";
    return false;
  }
  if (!m.isStep() && m.config.seqlen >= 0 && m.config.seqlen != shape.seqlen) {
    error = "launch shape: seqlen is " + std::to_string(shape.seqlen) +
            ", but the bundle was compiled for " +
            std::to_string(m.config.seqlen) +
            " (compile it with --seqlen ? for any, or for this shape)";
    return false;
  }
  cfg.batch = shape.batch;
  cfg.seqlen = m.isStep() ? 1 : shape.seqlen;
  return true;
}

bool argumentShapes(const BundleManifest &m, const LayerConfig &cfg,
                    std::vector<std::vector<int64_t>> &shapes,
                    std::string &error) {
  shapes.assign(m.arguments.size(), {});
  for (size_t i = 0; i < m.arguments.size(); ++i)
    for (const std::string &axis : m.arguments[i].axes) {
      int64_t size = layerAxisSize(cfg, axis);
      if (size < 0) {
        error = "manifest: argument '" + m.arguments[i].name +
                "' has unknown axis '" + axis + "'";
        return false;
      }
      shapes[i].push_back(size);
    }
  return true;
}

namespace {

std::string shapeText(const int64_t *shape, size_t rank) {
  std::string s = "(";
  for (size_t i = 0; i < rank; ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

/// numel * element size, or -1 on overflow or a negative size.
int64_t byteSize(const BufferArg &a) {
  int64_t n = static_cast<int64_t>(elementTypeSize(a.type));
  for (int32_t d = 0; d < a.rank; ++d) {
    if (a.shape[d] < 0 || (a.shape[d] > 0 && n > INT64_MAX / a.shape[d]))
      return -1;
    n *= a.shape[d];
  }
  return n;
}

} // namespace

std::string checkLaunchBuffers(const BundleManifest &m, const LayerConfig &cfg,
                               const BufferArg *args, size_t n,
                               const BufferRules &rules) {
  if (n != m.arguments.size())
    return "the bundle takes " + std::to_string(m.arguments.size()) +
           " arguments, the launch passes " + std::to_string(n);
  std::vector<std::vector<int64_t>> shapes;
  std::string error;
  if (!argumentShapes(m, cfg, shapes, error))
    return error;
  std::vector<int64_t> bytes(n);
  for (size_t i = 0; i < n; ++i) {
    const BundleArgument &want = m.arguments[i];
    const BufferArg &got = args[i];
    std::string what = "argument " + std::to_string(i) + " ('" + want.name + "')";
    ElementType type = ElementType::F64;
    if (!(rules.float64Outputs && want.isOutput) &&
        !parseElementType(want.dtype, type))
      return "manifest: " + what + " has dtype '" + want.dtype + "'";
    if (got.type != type)
      return what + " is " + elementTypeName(got.type) +
             ", the bundle takes " + want.dtype;
    if (got.rank < 0 || got.rank > kMaxBufferRank ||
        static_cast<size_t>(got.rank) != shapes[i].size() ||
        !std::equal(shapes[i].begin(), shapes[i].end(), got.shape))
      return what + " has shape " +
             shapeText(got.shape, static_cast<size_t>(
                                      std::max(0, std::min(got.rank,
                                                           kMaxBufferRank)))) +
             ", the bundle expects " +
             shapeText(shapes[i].data(), shapes[i].size()) +
             " for batch " + std::to_string(cfg.batch) +
             (m.isStep() ? "" : ", seqlen " + std::to_string(cfg.seqlen));
    bytes[i] = byteSize(got);
    if (bytes[i] < 0)
      return what + ": its size overflows";
    if (bytes[i] > 0 && !got.data)
      return what + " is a null pointer";
    if (rules.alignment > 1 &&
        reinterpret_cast<uintptr_t>(got.data) % rules.alignment)
      return what + " is not " + std::to_string(rules.alignment) +
             "-byte aligned (the kernels load " +
             std::to_string(rules.alignment) + " bytes at a time)";
    if (rules.hostMemory && want.name == "cu_seqlens") {
      // Kernels trust the offsets: a bad one would read or write out of
      // bounds.
      Tensor offsets(shapes[i]);
      unpackElements(static_cast<const unsigned char *>(got.data), want.dtype,
                     offsets.data);
      std::string bad = checkSequenceOffsets(offsets, cfg.seqlen);
      if (!bad.empty())
        return "input " + bad;
    }
  }
  // Outputs are written while inputs are read by other threads: no output may
  // share bytes with another argument, except a step's state with its input.
  for (size_t o = 0; o < n; ++o) {
    if (!m.arguments[o].isOutput || bytes[o] == 0)
      continue;
    auto lo = reinterpret_cast<uintptr_t>(args[o].data);
    for (size_t i = 0; i < n; ++i) {
      if (i == o || bytes[i] == 0)
        continue;
      auto li = reinterpret_cast<uintptr_t>(args[i].data);
      bool overlap = lo < li + static_cast<uintptr_t>(bytes[i]) &&
                     li < lo + static_cast<uintptr_t>(bytes[o]);
      if (!overlap)
        continue;
      bool inPlace = rules.allowInPlaceStates && m.isStep() && li == lo &&
                     bytes[i] == bytes[o] && !m.arguments[i].isOutput &&
                     m.arguments[i].name == m.arguments[o].name + "0";
      if (!inPlace)
        return "output '" + m.arguments[o].name + "' overlaps argument '" +
               m.arguments[i].name + "'" +
               (m.isStep() ? " (a step's state output may only be the very "
                             "buffer of its input state)"
                           : " (outputs need buffers of their own)");
    }
  }
  return "";
}

std::vector<BufferArg>
bufferArgs(const BundleManifest &m,
           std::vector<std::vector<unsigned char>> &buffers,
           const std::vector<std::vector<int64_t>> &shapes,
           const std::vector<void *> *pointers) {
  std::vector<BufferArg> args(m.arguments.size());
  for (size_t i = 0; i < args.size(); ++i) {
    parseElementType(m.arguments[i].dtype, args[i].type);
    args[i].data = pointers ? (*pointers)[i] : buffers[i].data();
    args[i].rank = static_cast<int32_t>(shapes[i].size());
    for (size_t d = 0; d < shapes[i].size() && d < kMaxBufferRank; ++d)
      args[i].shape[d] = shapes[i][d];
  }
  return args;
}

bool runReferenceOnBuffers(const BundleManifest &m, const LaunchShape &shape,
                           const BufferArg *args, size_t n,
                           std::string &error) {
  LayerConfig cfg;
  if (!launchConfig(m, shape, cfg, error))
    return false;
  BufferRules rules;
  rules.hostMemory = true;
  rules.float64Outputs = true;
  error = checkLaunchBuffers(m, cfg, args, n, rules);
  if (!error.empty())
    return false;

  LayerInputs in;
  for (size_t i = 0; i < n; ++i) {
    const BundleArgument &a = m.arguments[i];
    if (a.isOutput)
      continue;
    Tensor *t = bundleInputTensor(in, a.name);
    if (!t) {
      error = "manifest: unknown input '" + a.name + "'";
      return false;
    }
    *t = Tensor(std::vector<int64_t>(args[i].shape, args[i].shape + args[i].rank));
    unpackElements(static_cast<const unsigned char *>(args[i].data), a.dtype,
                   t->data);
  }
  std::string bad = checkInputs(cfg, in, m.isStep());
  if (!bad.empty()) {
    error = "reference: " + bad;
    return false;
  }
  LayerOutputs out = m.isStep() ? referenceStep(cfg, in) : referenceScan(cfg, in);
  for (size_t i = 0; i < n; ++i) {
    const BundleArgument &a = m.arguments[i];
    if (!a.isOutput)
      continue;
    const Tensor *t = bundleOutputTensor(out, a.name);
    if (!t || t->shape != std::vector<int64_t>(args[i].shape,
                                               args[i].shape + args[i].rank)) {
      error = "reference: no output '" + a.name + "' of the bundle's shape";
      return false;
    }
    std::copy(t->data.begin(), t->data.end(), static_cast<double *>(args[i].data));
  }
  return true;
}

} // namespace mamba3
