//===- BundleManifest.cpp - Parse and check a bundle's manifest -----------===//
//
// manifest.json of a CPU or GPU bundle: every field read with its type and
// range checked (FieldReader), the variants and the dispatch table.
//
// Over 600 lines on purpose: one parser for the one manifest format, every
// field of every section read in one place (BundleChecks.cpp then checks
// the fields against each other), so that a new field is added in one file.
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
  if (m.arguments.size() > kMaxBundleArguments) {
    error = "manifest.json: " + std::to_string(m.arguments.size()) +
            " arguments; this runtime calls entries with at most " +
            std::to_string(kMaxBundleArguments);
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

} // namespace mamba3
