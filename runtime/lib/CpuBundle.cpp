//===- CpuBundle.cpp - Load and run a CPU kernel bundle -------------------===//

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

//===----------------------------------------------------------------------===//
// Manifest fields
//===----------------------------------------------------------------------===//

/// Reads typed members of one JSON object, remembering the first problem.
class FieldReader {
public:
  FieldReader(const JsonValue &object, std::string where)
      : object(object), where(std::move(where)) {}

  const JsonValue *member(const std::string &key, JsonValue::Kind kind,
                          const char *kindName) {
    const JsonValue *v = object.get(key);
    if (!v || v->kind() != kind) {
      fail("'" + key + "' is missing or not " + kindName);
      return nullptr;
    }
    return v;
  }
  void str(const std::string &key, std::string &out) {
    if (auto *v = member(key, JsonValue::Kind::String, "a string"))
      out = v->asString();
  }
  void number(const std::string &key, double &out) {
    if (auto *v = member(key, JsonValue::Kind::Number, "a number"))
      out = v->asNumber();
  }
  /// An integer-valued number within +-2^53 (JSON numbers are doubles;
  /// 2.5 or 1e300 are not sizes).
  template <typename Int> void integer(const std::string &key, Int &out) {
    if (auto *v = member(key, JsonValue::Kind::Number, "a number")) {
      int64_t value;
      if (!exactInteger(*v, value) ||
          value < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
          value > static_cast<int64_t>(std::numeric_limits<Int>::max()))
        return fail("'" + key + "' is not an integer in range");
      out = static_cast<Int>(value);
    }
  }
  static bool exactInteger(const JsonValue &v, int64_t &out) {
    constexpr double kLimit = 9007199254740992.0; // 2^53
    double d = v.asNumber();
    if (!v.isNumber() || !std::isfinite(d) || d != std::floor(d) ||
        std::abs(d) > kLimit)
      return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  void boolean(const std::string &key, bool &out) {
    if (auto *v = member(key, JsonValue::Kind::Bool, "a boolean"))
      out = v->asBool();
  }
  /// A boolean that bundles of earlier compilers do not have: `out` keeps
  /// its default when the key is absent.
  void optionalBoolean(const std::string &key, bool &out) {
    if (object.get(key))
      boolean(key, out);
  }
  void fail(const std::string &message) {
    if (error.empty())
      error = where + ": " + message;
  }

  const JsonValue &object;
  std::string where;
  std::string error;
};

/// Runs `read` on a FieldReader for every element of the manifest array
/// `key` (named "manifest.json: key[i]" in messages). Returns false with
/// `error` set at the first element that is not an object or that `read`
/// fails on.
template <typename ReadFn>
bool readObjects(const JsonValue &array, const std::string &key,
                 std::string &error, ReadFn read) {
  for (size_t i = 0; i < array.items().size(); ++i) {
    const JsonValue &item = array.items()[i];
    FieldReader r(item, "manifest.json: " + key + "[" + std::to_string(i) + "]");
    if (!item.isObject())
      r.fail("is not an object");
    else
      read(r);
    if (!r.error.empty()) {
      error = r.error;
      return false;
    }
  }
  return true;
}

/// readObjects over the optional manifest array `key` of `root`: true when
/// it is absent; false with `error` set when it is not an array or an
/// element fails.
template <typename ReadFn>
bool readOptionalObjects(const JsonValue &root, const std::string &key,
                         std::string &error, ReadFn read,
                         const std::string &scope = "") {
  const JsonValue *array = root.get(key);
  if (!array)
    return true;
  if (!array->isArray()) {
    error = "manifest.json: '" + scope + key + "' is not an array";
    return false;
  }
  return readObjects(*array, scope + key, error, read);
}

//===----------------------------------------------------------------------===//
// Element conversion
//===----------------------------------------------------------------------===//

uint16_t toBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep it a (quiet) NaN
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  // Round to nearest, ties to even.
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float fromBf16(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// IEEE binary16, rounded to nearest even (overflow to infinity, subnormals
/// kept), as the GPU's cvt.rn.f16.f32.
uint16_t toF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) // NaN
    return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) // rounds past 65504: infinity
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) { // below 2^-14: a subnormal half (or zero)
    float magnitude;
    std::memcpy(&magnitude, &abs, 4);
    // Units of 2^-24, rounded to nearest even by the float addition.
    float scaled = magnitude * 16777216.0f;
    uint32_t units = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | units);
  }
  uint32_t exponent = (abs >> 23) - 127 + 15, mantissa = abs & 0x7fffffu;
  uint32_t half = (exponent << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half; // may carry into the exponent: still right
  return static_cast<uint16_t>(sign | half);
}

float fromF16(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  float f;
  if (exponent == 0) { // zero or subnormal: mantissa * 2^-24
    f = static_cast<float>(mantissa) / 16777216.0f;
    return sign ? -f : f;
  }
  uint32_t bits = exponent == 0x1fu
                      ? sign | 0x7f800000u | (mantissa << 13)
                      : sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  std::memcpy(&f, &bits, 4);
  return f;
}

size_t elementSize(const std::string &dtype) {
  return dtype == "f32" || dtype == "i32"    ? 4
         : dtype == "bf16" || dtype == "f16" ? 2
                                             : 0;
}

} // namespace

void packElements(const std::vector<double> &src, const std::string &dtype,
                  unsigned char *dst) {
  if (dtype == "f32") {
    for (size_t i = 0; i < src.size(); ++i) {
      float f = static_cast<float>(src[i]);
      std::memcpy(dst + 4 * i, &f, 4);
    }
  } else if (dtype == "i32") {
    for (size_t i = 0; i < src.size(); ++i) {
      int32_t x = static_cast<int32_t>(src[i]);
      std::memcpy(dst + 4 * i, &x, 4);
    }
  } else {
    const bool f16 = dtype == "f16";
    for (size_t i = 0; i < src.size(); ++i) {
      float f = static_cast<float>(src[i]);
      uint16_t h = f16 ? toF16(f) : toBf16(f);
      std::memcpy(dst + 2 * i, &h, 2);
    }
  }
}

namespace {

/// Calls `body(decode)` with `decode(src, i)`, element `i` of packed `dtype`
/// data as a double: the dtype is decided once per buffer, not per element
/// (these loops run over 10^8 elements of a long prefill).
template <typename Body>
void withDecoder(const std::string &dtype, Body body) {
  if (dtype == "f32") {
    body([](const unsigned char *src, size_t i) {
      float f;
      std::memcpy(&f, src + 4 * i, 4);
      return static_cast<double>(f);
    });
  } else if (dtype == "i32") {
    body([](const unsigned char *src, size_t i) {
      int32_t x;
      std::memcpy(&x, src + 4 * i, 4);
      return static_cast<double>(x);
    });
  } else if (dtype == "f16") {
    body([](const unsigned char *src, size_t i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      return static_cast<double>(fromF16(h));
    });
  } else {
    body([](const unsigned char *src, size_t i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      return static_cast<double>(fromBf16(h));
    });
  }
}

} // namespace

void unpackElements(const unsigned char *src, const std::string &dtype,
                    std::vector<double> &dst) {
  withDecoder(dtype, [&](auto decode) {
    for (size_t i = 0; i < dst.size(); ++i)
      dst[i] = decode(src, i);
  });
}

double relativeL2Packed(const unsigned char *got, const unsigned char *ref,
                        size_t count, const std::string &dtype, double period) {
  // Sums over slices on several threads, added in slice order: the same
  // inputs give the same result on any machine with as many threads.
  const size_t threads = std::clamp<size_t>(
      std::min<size_t>(std::thread::hardware_concurrency(), 16), 1,
      std::max<size_t>(count / (1 << 16), 1));
  std::vector<double> diff(threads, 0), norm(threads, 0);
  auto slice = [&](size_t t) {
    const size_t begin = count * t / threads, end = count * (t + 1) / threads;
    double d2 = 0, n2 = 0;
    withDecoder(dtype, [&](auto decode) {
      for (size_t i = begin; i < end; ++i) {
        double r = decode(ref, i), d = decode(got, i) - r;
        if (period > 0 && std::isfinite(d))
          d = std::remainder(d, period);
        d2 += d * d;
        n2 += r * r;
      }
    });
    diff[t] = d2;
    norm[t] = n2;
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back(slice, t);
  slice(0);
  for (std::thread &th : pool)
    th.join();
  double d2 = 0, n2 = 0;
  for (size_t t = 0; t < threads; ++t) {
    d2 += diff[t];
    n2 += norm[t];
  }
  // As relativeL2: NaN anywhere and an infinity in `got` fail everything.
  const double inf = std::numeric_limits<double>::infinity();
  if (std::isnan(d2) || std::isnan(n2))
    return inf;
  if (n2 == 0)
    return d2 == 0 ? 0.0 : inf;
  return std::sqrt(d2 / n2);
}

namespace {

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
// argument count, casts the entry to the matching function-pointer type.
constexpr size_t kMaxArguments = 32;
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

constexpr std::array<Caller, kMaxArguments + 1> kCallers =
    makeCallers(std::make_index_sequence<kMaxArguments + 1>{});

} // namespace

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

namespace {

/// Reads the fields one variant of a GPU bundle has of its own (for a CPU
/// bundle, and a GPU bundle's first variant, the top level's): its
/// schedule, library and digests, chunk size, launches, scratch buffers,
/// parameters, chunks per block and tensor maps. `scope` prefixes messages
/// ("variants[1]."). The shared fields (config, arguments) are already in
/// `m`.
bool parseVariantFields(const JsonValue &obj, const std::string &scope,
                        BundleManifest &m, std::string &error) {
  FieldReader v(obj, "manifest.json" +
                         (scope.empty() ? std::string()
                                        : ": " + scope.substr(0, scope.size() - 1)));
  v.str("library", m.library);
  v.str("library_digest", m.libraryDigest);
  m.ptxDigest.clear();
  if (obj.get("ptx_digest"))
    v.str("ptx_digest", m.ptxDigest);
  m.ptx = "kernel.ptx";
  if (obj.get("ptx"))
    v.str("ptx", m.ptx);
  m.schedule.clear();
  if (obj.get("schedule"))
    v.str("schedule", m.schedule);
  m.variant = m.schedule;
  if (obj.get("variant"))
    v.str("variant", m.variant);
  m.seqlenMultiple = 0;
  m.specializes.clear();
  if (obj.get("seqlen_multiple") || obj.get("specializes")) {
    v.integer("seqlen_multiple", m.seqlenMultiple);
    v.str("specializes", m.specializes);
    if (v.error.empty() && m.seqlenMultiple < 1)
      v.fail("'seqlen_multiple' must be positive");
  }
  v.str("pipeline", m.pipeline);
  v.integer("chunk_size", m.chunkSize);
  if (!v.error.empty()) {
    error = v.error;
    return false;
  }
  m.launches.clear();
  m.scratch.clear();
  m.tensorMaps.clear();
  if (const JsonValue *launches = obj.get("launches")) {
    if (!launches->isArray() || launches->items().empty()) {
      error = "manifest.json: " + scope + "'launches' is not a non-empty array";
      return false;
    }
    if (!readObjects(*launches, scope + "launches", error, [&](FieldReader &l) {
          BundleManifest::Launch launch;
          l.str("kernel", launch.kernel);
          const JsonValue *grid =
              l.member("grid", JsonValue::Kind::Array, "an array");
          const JsonValue *block =
              grid ? l.member("block", JsonValue::Kind::Array, "an array")
                   : nullptr;
          if (!l.error.empty())
            return;
          if (grid->items().size() != 3 || block->items().size() != 3)
            return l.fail("'grid' and 'block' need 3 entries each");
          for (const JsonValue &g : grid->items())
            if (g.isString())
              launch.grid.push_back(g.asString());
            else if (g.isNumber() && g.asInt() >= 1)
              launch.grid.push_back(std::to_string(g.asInt()));
            else
              l.fail("'grid' holds an entry that is neither an axis name "
                     "nor a positive integer");
          for (const JsonValue &b : block->items())
            if (b.isNumber() && b.asInt() >= 1 && b.asInt() <= 1024)
              launch.block.push_back(b.asInt());
            else
              l.fail("'block' holds an entry that is not a thread count in "
                     "[1, 1024]");
          if (const JsonValue *shared = l.object.get("dynamic_shared_bytes")) {
            if (shared->isNumber() && shared->asInt() >= 0 &&
                shared->asInt() <= kMaxDynamicSharedBytes)
              launch.dynamicSharedBytes = shared->asInt();
            else
              l.fail("'dynamic_shared_bytes' is not a byte count in [0, " +
                     std::to_string(kMaxDynamicSharedBytes) + "]");
          }
          m.launches.push_back(std::move(launch));
        }))
      return false;
  }
  // Grid and scratch sizes are positive integers or the names of sizes
  // each launch computes.
  auto scratchSize = [](const JsonValue &v, std::string &out) {
    int64_t value;
    if (FieldReader::exactInteger(v, value) && value >= 1) {
      out = std::to_string(value);
      return true;
    }
    if (!v.isString())
      return false;
    out = v.asString();
    return out == "b" || out == "spans";
  };
  for (BundleManifest::Launch &launch : m.launches)
    for (std::string &g : launch.grid)
      if (!std::isdigit(static_cast<unsigned char>(g[0])) && g != "H" &&
          g != "b" && g != "spans") {
        error = "manifest.json: " + scope + "a launch grid names '" + g +
                "', not a block count, 'H', 'b' or 'spans'";
        return false;
      }
  if (!readOptionalObjects(obj, "scratch", error, [&](FieldReader &r) {
          BundleManifest::Scratch buffer;
          r.str("name", buffer.name);
          r.integer("element_bytes", buffer.elementBytes);
          const JsonValue *shape =
              r.error.empty()
                  ? r.member("shape", JsonValue::Kind::Array, "an array")
                  : nullptr;
          if (!r.error.empty())
            return;
          if (buffer.elementBytes != 2 && buffer.elementBytes != 4 &&
              buffer.elementBytes != 8)
            return r.fail("'element_bytes' is not 2, 4 or 8");
          if (shape->items().empty() || shape->items().size() > 8)
            return r.fail("'shape' does not have 1 to 8 entries");
          for (const JsonValue &d : shape->items()) {
            std::string size;
            if (!scratchSize(d, size))
              return r.fail("'shape' holds an entry that is neither a size "
                            "nor 'b' or 'spans'");
            buffer.shape.push_back(size);
          }
          m.scratch.push_back(std::move(buffer));
        }, scope))
    return false;
  m.parameters.clear();
  if (const JsonValue *params = obj.get("parameters")) {
    if (!params->isArray()) {
      error = "manifest.json: " + scope + "'parameters' is not an array";
      return false;
    }
    for (const JsonValue &p : params->items()) {
      if (!p.isString() ||
          (p.asString() != "seqlen" && p.asString() != "chunks_per_block")) {
        error = "manifest.json: " + scope + "'parameters' holds an entry that is not "
                "'seqlen' or 'chunks_per_block'";
        return false;
      }
      m.parameters.push_back(p.asString());
    }
  }
  m.chunksPerBlock = -1;
  m.blocksPerSm = 0;
  if (obj.get("chunks_per_block")) {
    v.integer("chunks_per_block", m.chunksPerBlock);
    if (v.error.empty() && m.chunksPerBlock < 0)
      v.fail("'chunks_per_block' is negative");
    if (v.error.empty() && m.chunksPerBlock == 0) {
      v.integer("blocks_per_sm", m.blocksPerSm);
      if (v.error.empty() && (m.blocksPerSm < 1 || m.blocksPerSm > 32))
        v.fail("'blocks_per_sm' is not in [1, 32]");
    }
    if (!v.error.empty()) {
      error = v.error;
      return false;
    }
  }
  if (!readOptionalObjects(obj, "tensor_maps", error, [&](FieldReader &r) {
          BundleManifest::TensorMap map;
          r.str("name", map.name);
          r.integer("argument", map.argument);
          r.integer("swizzle_bytes", map.swizzleBytes);
          const JsonValue *box = r.error.empty()
                                     ? r.member("box", JsonValue::Kind::Array,
                                                "an array")
                                     : nullptr;
          if (!r.error.empty())
            return;
          if (map.argument < 0 ||
              map.argument >= static_cast<int64_t>(m.arguments.size()))
            return r.fail("'argument' is not the index of an argument");
          const BundleArgument &arg = m.arguments[map.argument];
          if (arg.isOutput)
            return r.fail("describes the output '" + arg.name +
                          "'; tensor maps are for inputs the kernels load");
          if (box->items().empty() || box->items().size() != arg.shape.size())
            return r.fail("'box' has " + std::to_string(box->items().size()) +
                          " entries for the " +
                          std::to_string(arg.shape.size()) + " dimensions of '" +
                          arg.name + "'");
          if (arg.dtype != "bf16" && arg.dtype != "f16")
            return r.fail("describes '" + arg.name + "' of dtype " +
                          arg.dtype +
                          "; tensor maps are for bf16 and f16 arguments");
          for (const JsonValue &size : box->items())
            if (size.isNumber() && size.asInt() >= 1 && size.asInt() <= 256)
              map.box.push_back(size.asInt());
            else
              return r.fail("'box' holds an entry that is not in [1, 256]");
          if (map.swizzleBytes != 128)
            return r.fail("'swizzle_bytes' is " +
                          std::to_string(map.swizzleBytes) +
                          "; this runtime encodes 128-byte swizzles");
          if (map.box[0] * 2 > map.swizzleBytes)
            return r.fail("the box's inner extent exceeds the swizzle span");
          m.tensorMaps.push_back(std::move(map));
        }, scope))
    return false;
  return true;
}

/// The other variants of a GPU bundle and the table that picks one per
/// launch shape (see BundleManifest::variants).
bool parseVariantsAndDispatch(const JsonValue &root, BundleManifest &m,
                              std::string &error);

} // namespace

bool parseBundleManifest(const std::string &text, BundleManifest &m,
                         std::string &error) {
  JsonValue root;
  std::string parseError;
  if (!parseJson(text, root, parseError)) {
    error = "manifest.json is not valid JSON: " + parseError;
    return false;
  }
  if (!root.isObject()) {
    error = "manifest.json: the top level is not an object";
    return false;
  }
  FieldReader top(root, "manifest.json");
  std::string format;
  top.str("format", format);
  if (top.error.empty() && format != "mamba3-bundle")
    top.fail("'format' is '" + format + "', not 'mamba3-bundle'");
  top.integer("format_version", m.formatVersion);
  if (top.error.empty() && m.formatVersion != kBundleFormatVersion)
    top.fail("format_version " + std::to_string(m.formatVersion) +
             " is not the version this runtime reads (" +
             std::to_string(kBundleFormatVersion) +
             "); rebuild the bundle with this tree's mamba3-compile");
  top.str("target", m.target);
  top.str("kind", m.kind);
  if (top.error.empty() && m.kind != "scan" && m.kind != "step")
    top.fail("'kind' is '" + m.kind + "', not 'scan' or 'step'");
  top.str("entry", m.entry);
  top.str("config_hash", m.configHash);
  top.str("config_string", m.configString);
  if (!top.error.empty()) {
    error = top.error;
    return false;
  }

  const JsonValue *config = top.member("config", JsonValue::Kind::Object,
                                       "an object");
  if (!config) {
    error = top.error;
    return false;
  }
  FieldReader c(*config, "manifest.json: config");
  LayerConfig &cfg = m.config;
  c.integer("batch", cfg.batch);
  c.integer("seqlen", cfg.seqlen);
  c.integer("heads", cfg.heads);
  c.integer("groups", cfg.groups);
  c.integer("state", cfg.state);
  c.integer("headdim", cfg.headdim);
  c.integer("angles", cfg.angles);
  c.integer("rank", cfg.rank);
  c.boolean("mimo", cfg.mimo);
  c.boolean("has_d", cfg.hasD);
  c.boolean("has_z", cfg.hasZ);
  c.boolean("broadcast_angles", cfg.broadcastAngles);
  c.boolean("varlen", cfg.varlen);
  c.boolean("rmsnorm", cfg.rmsNorm);
  c.optionalBoolean("per_rank_outputs", cfg.perRankOutputs);
  c.optionalBoolean("final_states", m.finalStates);
  for (auto [key, dtype] :
       {std::pair<const char *, std::string *>{"trap_dtype", &m.trapDtype},
        {"bias_dtype", &m.biasDtype},
        {"k_state_dtype", &m.kStateDtype},
        {"v_state_dtype", &m.vStateDtype}})
    if (config->get(key))
      c.str(key, *dtype);
  c.number("norm_eps", cfg.normEps);
  std::string stateDtype;
  c.str("state_dtype", stateDtype);
  if (c.error.empty() && stateDtype != "f32" && stateDtype != "bf16")
    c.fail("'state_dtype' is '" + stateDtype + "', not 'f32' or 'bf16'");
  cfg.bf16State = stateDtype == "bf16";
  c.boolean("has_initial_state", cfg.hasInitialState);
  c.boolean("wrap_angle", cfg.wrapAngle);
  std::string rule, pairing;
  c.str("rule", rule);
  c.str("pairing", pairing);
  c.str("dtype", m.dtype);
  if (c.error.empty()) {
    if (rule == "trapezoid" || rule == "euler")
      cfg.rule = rule == "euler" ? Discretization::Euler
                                 : Discretization::Trapezoid;
    else
      c.fail("'rule' is '" + rule + "', not 'trapezoid' or 'euler'");
    if (pairing == "adjacent" || pairing == "half_split")
      cfg.pairing = pairing == "half_split" ? RotaryPairing::HalfSplit
                                            : RotaryPairing::Adjacent;
    else
      c.fail("'pairing' is '" + pairing + "', not 'adjacent' or 'half_split'");
  }
  if (!c.error.empty()) {
    error = c.error;
    return false;
  }

  const JsonValue *args =
      top.member("arguments", JsonValue::Kind::Array, "an array");
  if (!args) {
    error = top.error;
    return false;
  }
  m.arguments.clear();
  if (!readObjects(*args, "arguments", error, [&](FieldReader &a) {
        BundleArgument arg;
        std::string role;
        a.str("name", arg.name);
        a.str("role", role);
        a.str("dtype", arg.dtype);
        const JsonValue *axes =
            a.member("axes", JsonValue::Kind::Array, "an array");
        const JsonValue *shape =
            a.member("shape", JsonValue::Kind::Array, "an array");
        if (!a.error.empty())
          return;
        if (role != "input" && role != "output")
          a.fail("'role' is '" + role + "', not 'input' or 'output'");
        if (elementSize(arg.dtype) == 0)
          a.fail("'dtype' is '" + arg.dtype +
                 "', not 'f32', 'bf16', 'f16' or 'i32'");
        for (const JsonValue &axis : axes->items())
          if (axis.isString())
            arg.axes.push_back(axis.asString());
          else
            a.fail("'axes' holds a non-string");
        for (const JsonValue &size : shape->items()) {
          int64_t value;
          if (FieldReader::exactInteger(size, value) && value >= -1)
            arg.shape.push_back(value);
          else
            a.fail("'shape' holds an entry that is neither -1 (dynamic) nor "
                   "a size");
        }
        if (arg.axes.size() != arg.shape.size())
          a.fail("'axes' and 'shape' differ in length");
        arg.isOutput = role == "output";
        m.arguments.push_back(std::move(arg));
      }))
    return false;
  if (!parseVariantFields(root, "", m, error))
    return false;
  if (!parseVariantsAndDispatch(root, m, error))
    return false;
  if (m.arguments.size() > kMaxArguments) {
    error = "manifest.json: " + std::to_string(m.arguments.size()) +
            " arguments; this runtime calls entries with at most " +
            std::to_string(kMaxArguments);
    return false;
  }
  error = checkManifestConsistency(m);
  for (size_t i = 0; error.empty() && i < m.variants.size(); ++i)
    if (std::string why = checkManifestConsistency(m.variants[i]); !why.empty())
      error = "variants[" + std::to_string(i) + "]: " + why;
  return error.empty();
}

namespace {

bool parseVariantsAndDispatch(const JsonValue &root, BundleManifest &m,
                              std::string &error) {
  m.variants.clear();
  m.dispatch.clear();
  m.dispatchSource.clear();
  const JsonValue *variants = root.get("variants");
  const JsonValue *dispatch = root.get("dispatch");
  if (!variants && !dispatch)
    return true;
  auto fail = [&](const std::string &why) {
    error = "manifest.json: " + why;
    return false;
  };
  if (m.target == "cpu")
    return fail("a CPU bundle with 'variants' or 'dispatch'; those choose "
                "between GPU kernels");
  if (!variants || !variants->isArray() || variants->items().empty())
    return fail("'variants' is missing, or not a non-empty array, beside "
                "'dispatch'");
  if (variants->items().size() > kMaxBundleVariants)
    return fail(std::to_string(variants->items().size()) +
                " variants; a bundle holds at most " +
                std::to_string(kMaxBundleVariants));
  for (size_t i = 0; i < variants->items().size(); ++i) {
    const JsonValue &item = variants->items()[i];
    std::string scope = "variants[" + std::to_string(i) + "].";
    if (!item.isObject())
      return fail("variants[" + std::to_string(i) + "] is not an object");
    // A variant is the bundle with its own kernel fields.
    BundleManifest variant = m;
    variant.variants.clear();
    variant.configChunkSize = m.chunkSize;
    if (!parseVariantFields(item, scope, variant, error))
      return false;
    m.variants.push_back(std::move(variant));
  }
  // Names and files are the variants' own: dispatch rows name a variant,
  // and two variants sharing a library would run one's kernels with the
  // other's launches.
  std::vector<const BundleManifest *> all{&m};
  for (const BundleManifest &v : m.variants)
    all.push_back(&v);
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      if (all[i]->variant == all[j]->variant)
        return fail("two variants are named '" + all[i]->variant + "'");
      if (all[i]->library == all[j]->library || all[i]->ptx == all[j]->ptx)
        return fail("variants '" + all[j]->variant + "' and '" +
                    all[i]->variant + "' name the same kernel file");
    }
  for (const BundleManifest *v : all)
    if (v->variant.empty())
      return fail("a variant without a name");
  // A full-chunk variant stands in for one general variant of the same
  // kernel choice, at lengths that are a whole number of its chunks.
  if (m.seqlenMultiple > 0)
    return fail("the top-level variant is a full-chunk one; it must take "
                "every length");
  for (const BundleManifest *v : all) {
    if (v->seqlenMultiple == 0)
      continue;
    const BundleManifest *base = nullptr;
    for (const BundleManifest *w : all)
      if (w->variant == v->specializes)
        base = w;
    if (!base || base->seqlenMultiple > 0)
      return fail("variant '" + v->variant + "' specializes '" +
                  v->specializes + "', which is not a variant for every "
                  "length of the bundle");
    if (base->schedule != v->schedule || base->chunkSize != v->chunkSize ||
        base->chunksPerBlock != v->chunksPerBlock ||
        v->seqlenMultiple != v->chunkSize)
      return fail("variant '" + v->variant + "' specializes '" +
                  v->specializes + "' but has another schedule, chunk or "
                  "chunks per block, or a seqlen_multiple that is not its "
                  "chunk size");
    if (m.config.seqlen >= 0)
      return fail("variant '" + v->variant + "' is a full-chunk variant of "
                  "a bundle whose length is static");
    for (const BundleManifest *w : all)
      if (w != v && w->seqlenMultiple > 0 && w->specializes == v->specializes)
        return fail("two full-chunk variants specialize '" + v->specializes +
                    "'");
  }
  if (!dispatch)
    return fail("'variants' without 'dispatch' (the rule that picks one)");
  FieldReader d(*dispatch, "manifest.json: dispatch");
  if (!dispatch->isObject())
    return fail("'dispatch' is not an object");
  d.str("source", m.dispatchSource);
  if (!d.error.empty()) {
    error = d.error;
    return false;
  }
  const JsonValue *table = dispatch->get("table");
  if (!table || !table->isArray())
    return fail("'dispatch.table' is missing or not an array");
  return readObjects(*table, "dispatch.table", error, [&](FieldReader &r) {
    BundleManifest::DispatchRow row;
    const JsonValue *batch = r.member("batch", JsonValue::Kind::Array, "an array");
    const JsonValue *seqlen =
        batch ? r.member("seqlen", JsonValue::Kind::Array, "an array") : nullptr;
    r.str("variant", row.variant);
    if (!r.error.empty())
      return;
    auto range = [&](const JsonValue &a, const char *key, int64_t &lo,
                     int64_t &hi) {
      // [lo, hi], hi 0 for no upper bound.
      if (a.items().size() != 2 ||
          !FieldReader::exactInteger(a.items()[0], lo) ||
          !FieldReader::exactInteger(a.items()[1], hi) || lo < 1 || hi < 0 ||
          (hi != 0 && hi < lo))
        r.fail(std::string("'") + key + "' is not [lo, hi] with 1 <= lo <= "
               "hi (hi 0: no upper bound)");
    };
    range(*batch, "batch", row.batchMin, row.batchMax);
    range(*seqlen, "seqlen", row.seqlenMin, row.seqlenMax);
    bool known = false, fullChunks = false;
    for (const BundleManifest *v : all)
      if (v->variant == row.variant) {
        known = true;
        fullChunks = v->seqlenMultiple > 0;
      }
    if (r.error.empty() && !known)
      r.fail("names variant '" + row.variant + "', which the bundle does not "
             "have");
    if (r.error.empty() && fullChunks)
      r.fail("names the full-chunk variant '" + row.variant + "'; a row names "
             "a variant for every length, which the runtime swaps for its "
             "full-chunk one where the length allows");
    m.dispatch.push_back(row);
  });
}

} // namespace

bool loadBundleManifest(const std::string &dir, BundleManifest &manifest,
                        std::string &error) {
  std::string manifestPath = dir + "/manifest.json";
  std::ifstream file(manifestPath, std::ios::binary);
  if (!file) {
    error = "cannot read " + manifestPath + ": no bundle there";
    return false;
  }
  std::stringstream text;
  text << file.rdbuf();
  if (!parseBundleManifest(text.str(), manifest, error)) {
    error = dir + ": " + error;
    return false;
  }
  return true;
}

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
