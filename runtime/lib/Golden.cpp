//===- Golden.cpp - Reader for the golden reference cases -----------------===//

#include "mamba3/Golden.h"

#include "mamba3/Json.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace mamba3;

namespace {

bool readFile(const std::string &path, std::string &contents,
              std::string &error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream buffer;
  buffer << file.rdbuf();
  if (file.bad()) {
    error = "cannot read " + path;
    return false;
  }
  contents = buffer.str();
  return true;
}

bool hostIsLittleEndian() {
  const uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// Reads one case at a time; every error names the file, the case and the
/// field so that a broken golden file can be fixed without a debugger.
class CaseReader {
public:
  CaseReader(const std::string &jsonPath, const std::string &binPath,
             const std::string &bin)
      : jsonPath(jsonPath), binPath(binPath), bin(bin) {}

  bool read(const JsonValue &c, size_t index, GoldenCase &out,
            std::string &error);

private:
  const std::string &jsonPath, &binPath, &bin;
  std::string where; // "case 'siso_a'" for messages

  bool fail(std::string &error, const std::string &what) {
    error = jsonPath + ": " + where + ": " + what;
    return false;
  }

  /// Reads an integer parameter; `fallback` < 0 means required.
  bool intParam(const JsonValue &params, const char *key, int64_t fallback,
                int64_t &value, std::string &error);
  bool boolParam(const JsonValue &params, const char *key, bool fallback,
                 bool &value, std::string &error);

  /// Reads the tensor entry `key` of `group`; a missing key or a null value
  /// leaves `t` empty.
  bool tensor(const JsonValue &group, const std::string &groupName,
              const std::string &key, Tensor &t, std::string &error);
};

bool CaseReader::intParam(const JsonValue &params, const char *key,
                          int64_t fallback, int64_t &value,
                          std::string &error) {
  const JsonValue *v = params.get(key);
  if (!v) {
    if (fallback < 0)
      return fail(error, std::string("params.") + key + " is missing");
    value = fallback;
    return true;
  }
  if (!v->isNumber() || v->asNumber() != std::floor(v->asNumber()))
    return fail(error, std::string("params.") + key + " must be an integer");
  value = v->asInt();
  return true;
}

bool CaseReader::boolParam(const JsonValue &params, const char *key,
                           bool fallback, bool &value, std::string &error) {
  const JsonValue *v = params.get(key);
  if (!v) {
    value = fallback;
    return true;
  }
  if (!v->isBool())
    return fail(error, std::string("params.") + key + " must be a boolean");
  value = v->asBool();
  return true;
}

bool CaseReader::tensor(const JsonValue &group, const std::string &groupName,
                        const std::string &key, Tensor &t, std::string &error) {
  t = Tensor();
  const JsonValue *e = group.get(key);
  if (!e || e->isNull())
    return true;
  const std::string field = groupName + "." + key;
  if (!e->isObject())
    return fail(error, field + " must be an object or null");
  const JsonValue *shape = e->get("shape"), *dtype = e->get("dtype"),
                  *offset = e->get("offset"), *count = e->get("count");
  if (!shape || !shape->isArray() || !dtype || !dtype->isString() || !offset ||
      !offset->isNumber() || !count || !count->isNumber())
    return fail(error, field + " needs shape (array), dtype (string), "
                               "offset and count (numbers)");

  // Sizes are bounded before they multiply: the element count of a shape
  // the file could hold fits far inside 64 bits (2^40 elements).
  constexpr double kMaxElements = 1099511627776.0;
  int64_t numel = 1;
  std::vector<int64_t> dims;
  for (const JsonValue &d : shape->items()) {
    if (!d.isNumber() || d.asNumber() < 0 ||
        d.asNumber() != std::floor(d.asNumber()) ||
        d.asNumber() > kMaxElements)
      return fail(error, field + ".shape holds a non-integer, negative or "
                                 "huge size");
    dims.push_back(d.asInt());
    if (static_cast<double>(numel) * d.asNumber() > kMaxElements)
      return fail(error, field + ".shape " + shape->dump(0) +
                             " holds more than 2^40 elements");
    numel *= d.asInt();
  }
  if (count->asNumber() != static_cast<double>(numel))
    return fail(error, field + ".count is " + count->dump(0) +
                           " but the shape " + shape->dump(0) + " holds " +
                           std::to_string(numel) + " elements");

  size_t width;
  if (dtype->asString() == "float32")
    width = 4;
  else if (dtype->asString() == "float64")
    width = 8;
  else
    return fail(error, field + " has unknown dtype '" + dtype->asString() +
                           "' (expected float32 or float64)");

  double start = offset->asNumber();
  double bytes = static_cast<double>(numel) * width;
  if (start < 0 || start != std::floor(start) ||
      start + bytes > static_cast<double>(bin.size()))
    return fail(error, field + " (bytes " + offset->dump(0) + " to " +
                           JsonValue::number(start + bytes).dump(0) +
                           ") runs past the end of " + binPath + " (" +
                           std::to_string(bin.size()) + " bytes)");

  t = Tensor(dims);
  const bool swap = !hostIsLittleEndian();
  const char *src = bin.data() + static_cast<size_t>(start);
  for (int64_t i = 0; i < numel; ++i) {
    unsigned char raw[8];
    std::memcpy(raw, src + i * width, width);
    if (swap)
      for (size_t j = 0; j < width / 2; ++j)
        std::swap(raw[j], raw[width - 1 - j]);
    if (width == 4) {
      float f;
      std::memcpy(&f, raw, 4);
      t.data[i] = f;
    } else {
      std::memcpy(&t.data[i], raw, 8);
    }
  }
  return true;
}

bool CaseReader::read(const JsonValue &c, size_t index, GoldenCase &out,
                      std::string &error) {
  where = "case " + std::to_string(index);
  if (!c.isObject())
    return fail(error, "not an object");
  const JsonValue *name = c.get("name"), *kind = c.get("kind");
  if (!name || !name->isString())
    return fail(error, "'name' is missing or not a string");
  out.name = name->asString();
  where = "case '" + out.name + "'";
  if (!kind || !kind->isString() ||
      (kind->asString() != "siso" && kind->asString() != "mimo"))
    return fail(error, "'kind' must be \"siso\" or \"mimo\"");
  out.kind = kind->asString();

  const JsonValue *params = c.get("params"), *inputs = c.get("inputs"),
                  *expected = c.get("expected");
  if (!params || !params->isObject())
    return fail(error, "'params' is missing or not an object");
  if (!inputs || !inputs->isObject())
    return fail(error, "'inputs' is missing or not an object");
  if (!expected || !expected->isObject())
    return fail(error, "'expected' is missing or not an object");
  const JsonValue *initial = c.get("initial_state");
  JsonValue noState = JsonValue::object();
  if (!initial || initial->isNull())
    initial = &noState;
  else if (!initial->isObject())
    return fail(error, "'initial_state' must be an object");

  LayerConfig &cfg = out.config;
  cfg = LayerConfig();
  cfg.mimo = out.kind == "mimo";
  // The official SISO kernels wrap the angle state into [0, 2*pi) and the
  // golden SISO answers do too; the MIMO ones keep it unwrapped.
  cfg.wrapAngle = out.kind == "siso";
  bool hasDParam, hasZParam;
  if (!intParam(*params, "b", -1, cfg.batch, error) ||
      !intParam(*params, "L", -1, cfg.seqlen, error) ||
      !intParam(*params, "h", -1, cfg.heads, error) ||
      !intParam(*params, "hqk", -1, cfg.groups, error) ||
      !intParam(*params, "N", -1, cfg.state, error) ||
      !intParam(*params, "P", -1, cfg.headdim, error) ||
      !intParam(*params, "S", -1, cfg.angles, error) ||
      !intParam(*params, "R", 1, cfg.rank, error) ||
      !boolParam(*params, "init", false, cfg.hasInitialState, error) ||
      !boolParam(*params, "has_D", true, hasDParam, error) ||
      !boolParam(*params, "has_Z", true, hasZParam, error))
    return false;
  if (std::string e = cfg.validate(); !e.empty())
    return fail(error, "params: " + e);

  LayerInputs &in = out.inputs;
  const std::pair<const char *, Tensor LayerInputs::*> inputNames[] = {
      {"Q", &LayerInputs::Q},           {"K", &LayerInputs::K},
      {"V", &LayerInputs::V},           {"ADT", &LayerInputs::ADT},
      {"DT", &LayerInputs::DT},         {"Trap", &LayerInputs::Trap},
      {"Q_bias", &LayerInputs::QBias},  {"K_bias", &LayerInputs::KBias},
      {"Angles", &LayerInputs::Angles}, {"D", &LayerInputs::D},
      {"Z", &LayerInputs::Z},           {"MIMO_V", &LayerInputs::MimoV},
      {"MIMO_Z", &LayerInputs::MimoZ},  {"MIMO_O", &LayerInputs::MimoO}};
  for (const auto &[key, member] : inputNames)
    if (!tensor(*inputs, "inputs", key, in.*member, error))
      return false;
  const std::pair<const char *, Tensor LayerInputs::*> stateNames[] = {
      {"angle", &LayerInputs::angle0},
      {"ssm", &LayerInputs::ssm0},
      {"k", &LayerInputs::k0},
      {"v", &LayerInputs::v0}};
  for (const auto &[key, member] : stateNames)
    if (!tensor(*initial, "initial_state", key, in.*member, error))
      return false;
  const std::pair<const char *, Tensor LayerOutputs::*> outputNames[] = {
      {"out", &LayerOutputs::out},
      {"angle", &LayerOutputs::angle},
      {"ssm", &LayerOutputs::ssm},
      {"k", &LayerOutputs::k},
      {"v", &LayerOutputs::v}};
  for (const auto &[key, member] : outputNames) {
    if (!tensor(*expected, "expected", key, out.expected.*member, error))
      return false;
    if ((out.expected.*member).empty())
      return fail(error, std::string("expected.") + key + " is missing");
  }

  // D and Z are optional operands: the config follows what the case gives,
  // and the has_D / has_Z parameters, where present, must agree.
  cfg.hasD = !in.D.empty();
  cfg.hasZ = !in.Z.empty();
  if (cfg.hasD != hasDParam)
    return fail(error, std::string("params.has_D is ") +
                           (hasDParam ? "true" : "false") +
                           " but inputs.D is " +
                           (cfg.hasD ? "given" : "null or missing"));
  if (cfg.hasZ != hasZParam)
    return fail(error, std::string("params.has_Z is ") +
                           (hasZParam ? "true" : "false") +
                           " but inputs.Z is " +
                           (cfg.hasZ ? "given" : "null or missing"));
  bool anyState = !in.angle0.empty() || !in.ssm0.empty() || !in.k0.empty() ||
                  !in.v0.empty();
  bool allStates = !in.angle0.empty() && !in.ssm0.empty() && !in.k0.empty() &&
                   !in.v0.empty();
  if (cfg.hasInitialState ? !allStates : anyState)
    return fail(error,
                std::string("params.init is ") +
                    (cfg.hasInitialState ? "true" : "false") +
                    " but initial_state " +
                    (cfg.hasInitialState ? "lacks some of" : "holds some of") +
                    " angle, ssm, k, v");

  if (std::string e = checkInputs(cfg, in); !e.empty())
    return fail(error, e);
  // The expected outputs must have the shapes the reference produces.
  const int64_t b = cfg.batch, L = cfg.seqlen, H = cfg.heads, N = cfg.state,
                P = cfg.headdim, S = cfg.angles, R = cfg.rank;
  auto checkShape = [&](const char *key, const Tensor &t,
                        std::vector<int64_t> shape) {
    if (t.shape == shape)
      return true;
    Tensor want;
    want.shape = std::move(shape);
    return fail(error, std::string("expected.") + key + " has shape " +
                           t.shapeString() + ", expected " +
                           want.shapeString());
  };
  const LayerOutputs &e = out.expected;
  if (!checkShape("out", e.out, {b, L, H, P}) ||
      !checkShape("angle", e.angle, {b, H, S}) ||
      !checkShape("ssm", e.ssm, {b, H, P, N}) ||
      !checkShape("k", e.k,
                  cfg.mimo ? std::vector<int64_t>{b, H, R, N}
                           : std::vector<int64_t>{b, H, N}) ||
      !checkShape("v", e.v,
                  cfg.mimo ? std::vector<int64_t>{b, H, R, P}
                           : std::vector<int64_t>{b, H, P}))
    return false;

  out.officialOutErr = out.officialSsmErr = -1;
  if (const JsonValue *official = c.get("official_bf16_kernel")) {
    if (const JsonValue *e = official->get("out_rel_err"); e && e->isNumber())
      out.officialOutErr = e->asNumber();
    if (const JsonValue *e = official->get("ssm_rel_err"); e && e->isNumber())
      out.officialSsmErr = e->asNumber();
  }
  return true;
}

} // namespace

bool mamba3::loadGoldenCases(const std::string &base,
                             std::vector<GoldenCase> &cases,
                             std::string &error) {
  const std::string jsonPath = base + ".json", binPath = base + ".bin";
  std::string text, bin;
  if (!readFile(jsonPath, text, error) || !readFile(binPath, bin, error))
    return false;

  JsonValue root;
  std::string parseError;
  if (!parseJson(text, root, parseError)) {
    error = jsonPath + ": " + parseError;
    return false;
  }
  const JsonValue *list = root.get("cases");
  if (!list || !list->isArray()) {
    error = jsonPath + ": the top level must be an object with a 'cases' array";
    return false;
  }

  std::vector<GoldenCase> result;
  CaseReader reader(jsonPath, binPath, bin);
  for (size_t i = 0; i < list->items().size(); ++i) {
    GoldenCase c;
    if (!reader.read(list->items()[i], i, c, error))
      return false;
    for (const GoldenCase &previous : result)
      if (previous.name == c.name) {
        error = jsonPath + ": two cases are named '" + c.name + "'";
        return false;
      }
    result.push_back(std::move(c));
  }
  cases = std::move(result);
  return true;
}
