//===- UntrustedBundleTest.cpp - Damaged and edited bundles are refused ---===//
//
// A bundle is a directory users copy between machines; the loader must
// treat it as untrusted input. One test per class of damage found by
// fuzzing (each with the message it must give), then a seeded mutation
// driver over the manifest and the library: every mutant is either refused
// with a message or runs and matches the float64 reference. A crash, an
// out-of-bounds write (under ASan) or a silent wrong answer fails the test.
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"
#include "mamba3/Json.h"
#include "mamba3/Reference.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include <unistd.h>

using namespace mamba3;
namespace fs = std::filesystem;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void writeFile(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string shellQuote(const std::string &s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// A small SISO scan with initial states, compiled once: (b=2, L=16, H=2,
/// N=8, P=4, S=2), dynamic shapes.
LayerConfig smallConfig() {
  LayerConfig c;
  c.batch = 2, c.seqlen = 16, c.heads = 2, c.groups = 1;
  c.state = 8, c.headdim = 4, c.angles = 2;
  c.hasInitialState = true;
  return c;
}

const std::string &pristineDir() {
  static const std::string dir = [] {
    // Per process: ctest runs each test of this file as its own process, in
    // parallel.
    fs::path d = fs::path(MAMBA3_TEST_TMPDIR) /
                 ("untrusted-source-" + std::to_string(getpid()));
    fs::remove_all(d);
    fs::create_directories(d.parent_path());
    std::string command = shellQuote(MAMBA3_COMPILE);
    for (const std::string &a :
         cpuCompileArguments(smallConfig(), false, 8, d.string()))
      command += " " + shellQuote(a);
    command += " > " + shellQuote(d.string() + ".log") + " 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return d.string();
  }();
  return dir;
}

/// A copy of the pristine bundle whose manifest text is `manifest` and
/// library bytes `library` (the pristine ones when empty).
std::string bundleWith(const std::string &name, const std::string &manifest,
                       const std::string &library = "") {
  fs::path d = fs::path(MAMBA3_TEST_TMPDIR) /
               ("untrusted-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  writeFile((d / "manifest.json").string(), manifest);
  writeFile((d / "kernel.so").string(),
            library.empty() ? readFile(pristineDir() + "/kernel.so") : library);
  return d.string();
}

std::string pristineManifest() { return readFile(pristineDir() + "/manifest.json"); }

/// The pristine manifest with the first `from` replaced by `to`.
std::string edited(const std::string &from, const std::string &to) {
  std::string s = pristineManifest();
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    s.replace(at, from.size(), to);
  return s;
}

/// Loads `dir`; the error (empty when it loaded).
std::string loadError(const std::string &dir) {
  std::string error;
  std::unique_ptr<CpuBundle> b = CpuBundle::load(dir, error);
  return b ? std::string() : error;
}

#define EXPECT_REFUSED(dir, text)                                             \
  do {                                                                        \
    std::string e = loadError(dir);                                           \
    EXPECT_NE(e.find(text), std::string::npos) << "error: '" << e << "'";     \
  } while (0)

TEST(UntrustedBundle, PristineLoads) {
  EXPECT_EQ(loadError(bundleWith("pristine", pristineManifest())), "");
}

TEST(UntrustedBundle, ArgumentListMustBeWhatTheConfigImplies) {
  // Arguments are printed one per line by the bundle writer:
  // {"axes":[...],"dtype":...,"index":I,"name":...,"role":...,"shape":[...]}
  std::string m = pristineManifest();
  // Drop D (index 9).
  size_t d = m.find("\"name\":\"D\"");
  ASSERT_NE(d, std::string::npos);
  size_t start = m.rfind('{', d), end = m.find('}', d);
  std::string dropped = m;
  dropped.erase(start, end - start + 2); // the object and its comma
  EXPECT_REFUSED(bundleWith("drop", dropped), "arguments[9] is 'Z'");
  EXPECT_REFUSED(
      bundleWith("out-bf16",
                 edited("\"dtype\":\"f32\",\"index\":15,\"name\":\"out\"",
                        "\"dtype\":\"bf16\",\"index\":15,\"name\":\"out\"")),
      "arguments[15] is 'out' (output, bf16");
  EXPECT_REFUSED(bundleWith("swap", edited("\"name\":\"ADT\"", "\"name\":\"DT\"")),
                 "arguments[3] is 'DT'");
  // Shrink the V rows' head axis: V (b, L, H, P).
  EXPECT_REFUSED(
      bundleWith("shrink",
                 edited("\"axes\":[\"b\",\"L\",\"H\",\"P\"],\"dtype\":\"f32\","
                        "\"index\":2,\"name\":\"V\",\"role\":\"input\","
                        "\"shape\":[-1,-1,2,4]",
                        "\"axes\":[\"b\",\"L\",\"H\",\"P\"],\"dtype\":\"f32\","
                        "\"index\":2,\"name\":\"V\",\"role\":\"input\","
                        "\"shape\":[-1,-1,1,4]")),
      "but the configuration implies 'V' (input, f32, (b=-1, L=-1, H=2, P=4))");
  EXPECT_REFUSED(bundleWith("role", edited("\"role\":\"output\"", "\"role\":\"input\"")),
                 "arguments[15] is 'out' (input");
}

TEST(UntrustedBundle, EntryAndLibrary) {
  EXPECT_REFUSED(bundleWith("abort", edited("\"_mlir_ciface_mamba3_scan\"", "\"abort\"")),
                 "'entry' is 'abort', not '_mlir_ciface_mamba3_scan'");
  EXPECT_REFUSED(bundleWith("inner", edited("\"_mlir_ciface_mamba3_scan\"", "\"mamba3_scan\"")),
                 "'entry' is 'mamba3_scan'");
  EXPECT_REFUSED(bundleWith("path", edited("\"kernel.so\"", "\"../../kernel.so\"")),
                 "not a file name inside the bundle");
  std::string lib = readFile(pristineDir() + "/kernel.so");
  EXPECT_REFUSED(bundleWith("truncated", pristineManifest(), lib.substr(0, lib.size() / 2)),
                 "not a complete kernel library");
  // One byte changed inside the code: a whole ELF file, but not the one
  // the manifest was written with (as a library from another bundle).
  std::string flipped = lib;
  flipped[lib.size() / 2] ^= 0x5a;
  EXPECT_REFUSED(bundleWith("flipped", pristineManifest(), flipped),
                 "is not the file this bundle's manifest was written with");
  EXPECT_REFUSED(bundleWith("no-digest", edited("\"library_digest\"", "\"library_digestx\"")),
                 "'library_digest' is missing");
  EXPECT_REFUSED(bundleWith("tiny", pristineManifest(), "\x7f" "ELF"),
                 "shorter than an ELF header");
  EXPECT_REFUSED(bundleWith("text", pristineManifest(), std::string(200, 'x')),
                 "no ELF magic");
}

TEST(UntrustedBundle, ConfigFieldsAndNumbers) {
  EXPECT_REFUSED(bundleWith("dtype", edited("\"dtype\":\"f32\",\"final_states\"", "\"dtype\":\"x\",\"final_states\"")),
                 "config 'dtype' is 'x'");
  EXPECT_REFUSED(bundleWith("version", edited("\"format_version\": 6", "\"format_version\": 2.5")),
                 "'format_version' is not an integer");
  EXPECT_REFUSED(bundleWith("huge", edited("\"heads\":2", "\"heads\":9223372036854775807")),
                 "'heads' is not an integer in range");
  // A field edited in the config alone: the config string (which the
  // library's digest covers) says otherwise. The rule changes no argument,
  // so only this catches it.
  EXPECT_REFUSED(bundleWith("heads", edited("\"heads\":2", "\"heads\":3")),
                 "but the config fields state 'kind=scan;batch=?;seqlen=?;heads=3;");
  EXPECT_REFUSED(bundleWith("rule", edited("\"rule\":\"trapezoid\"", "\"rule\":\"euler\"")),
                 ";rule=euler;");
  // The config string edited to match: the library's digest no longer does.
  std::string both = edited("\"rule\":\"trapezoid\"", "\"rule\":\"euler\"");
  both.replace(both.find("rule=trapezoid"), 14, "rule=euler");
  EXPECT_REFUSED(bundleWith("rule-and-string", both), "is not the hash of 'config_string'");
  // And its hash too: now only the library's digest, which covers the config
  // string, tells the library was compiled for another rule.
  size_t cs = both.find("\"config_string\": \"") + 18;
  std::string configString = both.substr(cs, both.find('"', cs) - cs);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : configString)
    h = (h ^ c) * 0x100000001b3ULL;
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h));
  size_t ch = both.find("\"config_hash\": \"") + 16;
  both.replace(ch, 16, hash);
  EXPECT_REFUSED(bundleWith("rule-string-hash", both),
                 "is not the file this bundle's manifest was written with");
  EXPECT_REFUSED(bundleWith("groups", edited("\"groups\":1", "\"groups\":3")),
                 "config 'heads' (2) is not a multiple of 'groups' (3)");
  EXPECT_REFUSED(bundleWith("zero", edited("\"groups\":1", "\"groups\":0")),
                 "config 'groups' is 0, outside [1, 65536]");
  EXPECT_REFUSED(bundleWith("shape", edited("\"shape\":[-1,-1,2,4]", "\"shape\":[-1,-1,2,1e300]")),
                 "'shape' holds an entry that is neither -1 (dynamic) nor a size");
}

TEST(UntrustedBundle, TensorMapBoxes) {
  std::string gpu = edited(
      "\"target\": \"cpu\"",
      "\"target\": \"sm_90a\", \"launches\": [{\"kernel\": \"mamba3_scan\", "
      "\"grid\": [\"H\", \"b\", 1], \"block\": [128, 1, 1]}], \"tensor_maps\": "
      "[{\"name\": \"q\", \"argument\": 0, \"box\": [], \"swizzle_bytes\": 128}]");
  BundleManifest m;
  std::string error;
  EXPECT_FALSE(parseBundleManifest(gpu, m, error));
  EXPECT_NE(error.find("tensor_maps[0]: 'box' has 0 entries for the 4 dimensions"),
            std::string::npos)
      << error;
}

//===----------------------------------------------------------------------===//
// Seeded mutation driver
//===----------------------------------------------------------------------===//

/// Copies `v`, replacing preorder node `target` by a mutant of it.
JsonValue mutate(const JsonValue &v, int64_t &index, int64_t target,
                 std::mt19937_64 &rng) {
  int64_t here = index++;
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  if (here == target) {
    switch (v.kind()) {
    case JsonValue::Kind::Number: {
      const double values[] = {0, -1, 1, 2, 3, 7, 8, 17, 65536, 2147483648.0,
                               9007199254740993.0, 9.3e18, 1e300, 2.5, -1e9,
                               v.asNumber() + 1, v.asNumber() - 1,
                               v.asNumber() * 2};
      return JsonValue::number(values[pick(std::size(values))]);
    }
    case JsonValue::Kind::String: {
      const char *values[] = {"", "x", "f16", "bf16", "f32", "i32", "abort",
                              "exit", "out", "Q", "K", "V", "D", "b", "L", "H",
                              "N", "1", "b+1", "mamba3_step", "../kernel.so",
                              "kernel.so", "sm_90a", "cpu", "step", "scan",
                              "output", "input", "euler", "half_split"};
      return JsonValue::string(values[pick(std::size(values))]);
    }
    case JsonValue::Kind::Bool:
      return JsonValue::boolean(!v.asBool());
    case JsonValue::Kind::Array: {
      JsonValue out = JsonValue::array();
      std::vector<JsonValue> items = v.items();
      size_t op = pick(4);
      if (op == 0 && !items.empty())
        items.erase(items.begin() + pick(items.size()));
      else if (op == 1 && !items.empty())
        items.push_back(items[pick(items.size())]);
      else if (op == 2 && items.size() > 1)
        std::swap(items[pick(items.size())], items[pick(items.size())]);
      else
        items.clear();
      for (JsonValue &item : items)
        out.push(std::move(item));
      return out;
    }
    case JsonValue::Kind::Object: {
      JsonValue out = JsonValue::object();
      size_t drop = v.members().empty() ? 0 : pick(v.members().size());
      for (size_t i = 0; i < v.members().size(); ++i)
        if (i != drop)
          out.set(v.members()[i].first, v.members()[i].second);
      return out;
    }
    case JsonValue::Kind::Null:
      return JsonValue::number(0);
    }
  }
  switch (v.kind()) {
  case JsonValue::Kind::Array: {
    JsonValue out = JsonValue::array();
    for (const JsonValue &item : v.items())
      out.push(mutate(item, index, target, rng));
    return out;
  }
  case JsonValue::Kind::Object: {
    JsonValue out = JsonValue::object();
    for (const auto &[key, value] : v.members())
      out.set(key, mutate(value, index, target, rng));
    return out;
  }
  default:
    return v;
  }
}

int64_t countNodes(const JsonValue &v) {
  int64_t n = 1;
  for (const JsonValue &item : v.items())
    n += countNodes(item);
  for (const auto &member : v.members())
    n += countNodes(member.second);
  return n;
}

TEST(UntrustedBundle, SeededMutations) {
  // MAMBA3_FUZZ_RUNS sets the number of mutants (CI: the default).
  int64_t runs = 1500;
  if (const char *env = std::getenv("MAMBA3_FUZZ_RUNS"))
    runs = std::max<int64_t>(1, std::atoll(env));
  JsonValue root;
  std::string error;
  ASSERT_TRUE(parseJson(pristineManifest(), root, error)) << error;
  const int64_t nodes = countNodes(root);
  const std::string library = readFile(pristineDir() + "/kernel.so");
  const LayerConfig cfg = smallConfig();
  const LayerInputs in = randomInputs(cfg, /*seed=*/5, /*decode=*/false);
  const LayerOutputs ref = referenceScan(cfg, in);

  std::mt19937_64 rng(20261202);
  int64_t refused = 0, ranCorrectly = 0, runRefused = 0;
  // Per kind of damage: mutants, and those refused at load.
  const char *const kinds[] = {"manifest cut short", "library damaged",
                               "manifest tree edited"};
  int64_t tried[3] = {0, 0, 0}, refusedOf[3] = {0, 0, 0};
  std::vector<std::string> wrong;
  for (int64_t i = 0; i < runs; ++i) {
    std::string manifest, lib = library;
    const uint64_t draw = rng() % 8;
    const int kind = draw == 0 ? 0 : draw == 1 ? 1 : 2;
    ++tried[kind];
    switch (draw) {
    case 0: { // the manifest text cut short
      std::string text = pristineManifest();
      manifest = text.substr(0, rng() % text.size());
      break;
    }
    case 1: { // the library cut short, or with bytes overwritten
      manifest = pristineManifest();
      if (rng() % 2)
        lib = lib.substr(0, rng() % lib.size());
      else
        for (int k = 0; k < 8; ++k)
          lib[rng() % lib.size()] = static_cast<char>(rng());
      break;
    }
    default: { // one or two node mutations of the manifest tree
      JsonValue m = root;
      for (int k = 0, n = 1 + static_cast<int>(rng() % 2); k < n; ++k) {
        int64_t index = 0;
        m = mutate(m, index, static_cast<int64_t>(rng() % nodes), rng);
      }
      manifest = m.dump();
    }
    }
    std::string dir = bundleWith("mutant", manifest, lib);
    std::unique_ptr<CpuBundle> bundle = CpuBundle::load(dir, error);
    if (!bundle) {
      ASSERT_FALSE(error.empty());
      ++refused;
      ++refusedOf[kind];
      continue;
    }
    LayerOutputs got;
    if (!bundle->run(cfg, in, got, error)) {
      ASSERT_FALSE(error.empty());
      ++runRefused;
      continue;
    }
    double worst = std::max({relativeL2(got.out, ref.out),
                             relativeL2(got.ssm, ref.ssm),
                             relativeL2(got.k, ref.k), relativeL2(got.v, ref.v),
                             relativeL2(got.angle, ref.angle)});
    if (!(worst <= 1e-5))
      wrong.push_back(manifest.substr(0, 2000));
    else
      ++ranCorrectly;
  }
  std::cout << "seeded mutations: " << runs << " mutants, " << refused
            << " refused at load, " << runRefused << " refused at run, "
            << ranCorrectly << " ran and matched the reference, "
            << wrong.size() << " silently wrong\n";
  for (int k = 0; k < 3; ++k)
    std::cout << "  " << kinds[k] << ": " << tried[k] << " mutants, "
              << refusedOf[k] << " refused at load\n";
  EXPECT_TRUE(wrong.empty()) << "a mutant ran with a wrong answer:\n"
                             << (wrong.empty() ? "" : wrong.front());
}

} // namespace
