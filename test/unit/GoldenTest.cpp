//===- GoldenTest.cpp - The float64 reference against the golden cases ----===//
//
// Every golden case through the recurrence, the chunked form and (one-token
// cases) the decode step, to 1e-12 relative L2; and the reader's errors.
//
//===----------------------------------------------------------------------===//

#include "mamba3/Golden.h"
#include "mamba3/Reference.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mamba3;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 1e-12;

std::string goldenBase() {
  return std::string(MAMBA3_GOLDEN_DIR) + "/mamba3_cases";
}

/// The golden cases, read once per process. `error` is empty on success.
const std::vector<GoldenCase> &goldenCases(std::string *error = nullptr) {
  static std::string loadError;
  static const std::vector<GoldenCase> cases = [] {
    std::vector<GoldenCase> c;
    if (!loadGoldenCases(goldenBase(), c, loadError))
      c.clear();
    return c;
  }();
  if (error)
    *error = loadError;
  return cases;
}

const GoldenCase *findCase(const std::string &name) {
  for (const GoldenCase &c : goldenCases())
    if (c.name == name)
      return &c;
  return nullptr;
}

void expectClose(const LayerOutputs &got, const LayerOutputs &ref,
                 const std::string &what) {
  const std::pair<const char *, std::pair<const Tensor *, const Tensor *>>
      outputs[] = {{"out", {&got.out, &ref.out}},
                   {"angle", {&got.angle, &ref.angle}},
                   {"ssm", {&got.ssm, &ref.ssm}},
                   {"k", {&got.k, &ref.k}},
                   {"v", {&got.v, &ref.v}}};
  for (const auto &[name, pair] : outputs)
    EXPECT_LT(relativeL2(*pair.first, *pair.second), kTolerance)
        << what << ": output " << name << " (shape "
        << pair.first->shapeString() << ", reference "
        << pair.second->shapeString() << ")";
}

/// Names of the cases, or of the one-token (decode step) cases only.
std::vector<std::string> caseNames(bool oneTokenOnly = false) {
  std::vector<std::string> names;
  for (const GoldenCase &c : goldenCases())
    if (!oneTokenOnly || c.config.seqlen == 1)
      names.push_back(c.name);
  return names;
}

std::string paramName(const ::testing::TestParamInfo<std::string> &info) {
  std::string name = info.param;
  for (char &ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)))
      ch = '_';
  return name;
}

std::string readText(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void writeText(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// A fresh directory for one test's files.
fs::path scratchDir(const std::string &name) {
  fs::path dir =
      fs::path(::testing::TempDir()) / ("mamba3-golden-test-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

} // namespace

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

// Not a skip: without the golden files nothing below checks anything.
TEST(Golden, LoadsAllCases) {
  std::string error;
  const std::vector<GoldenCase> &cases = goldenCases(&error);
  ASSERT_TRUE(error.empty())
      << "cannot load the golden cases from " << goldenBase()
      << " (configure with -DMAMBA3_GOLDEN_DIR=...): " << error;
  ASSERT_GE(cases.size(), 8u);

  const GoldenCase *a = findCase("siso_a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, "siso");
  EXPECT_EQ(a->config.batch, 2);
  EXPECT_EQ(a->config.seqlen, 200);
  EXPECT_EQ(a->config.heads, 4);
  EXPECT_EQ(a->config.groups, 1);
  EXPECT_EQ(a->config.state, 32);
  EXPECT_EQ(a->config.headdim, 16);
  EXPECT_EQ(a->config.angles, 8);
  EXPECT_EQ(a->config.rank, 1);
  EXPECT_FALSE(a->config.mimo);
  EXPECT_TRUE(a->config.wrapAngle);
  EXPECT_FALSE(a->config.hasInitialState);
  EXPECT_TRUE(a->inputs.ssm0.empty());
  EXPECT_GT(a->officialOutErr, 0);
  EXPECT_GT(a->officialSsmErr, 0);
  EXPECT_EQ(a->inputs.Q.shape, (std::vector<int64_t>{2, 200, 1, 32}));

  const GoldenCase *c = findCase("siso_c");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->config.hasZ);
  EXPECT_TRUE(c->inputs.Z.empty());
  EXPECT_TRUE(c->config.hasInitialState);
  const GoldenCase *f = findCase("siso_f");
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->config.hasD);

  const GoldenCase *m = findCase("mimo_a");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->config.mimo);
  EXPECT_FALSE(m->config.wrapAngle);
  EXPECT_EQ(m->config.rank, 4);
  EXPECT_EQ(m->officialOutErr, -1);
  EXPECT_EQ(m->inputs.MimoV.shape, (std::vector<int64_t>{4, 4, 16}));
  EXPECT_EQ(m->expected.k.shape, (std::vector<int64_t>{2, 4, 4, 32}));
}

//===----------------------------------------------------------------------===//
// Every case
//===----------------------------------------------------------------------===//

class GoldenCaseTest : public ::testing::TestWithParam<std::string> {
protected:
  const GoldenCase &golden() {
    const GoldenCase *c = findCase(GetParam());
    EXPECT_TRUE(c);
    return *c;
  }
};

// Without the golden files no case is instantiated; Golden.LoadsAllCases
// then fails and says why.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenCaseTest);

TEST_P(GoldenCaseTest, RecurrenceMatches) {
  const GoldenCase &c = golden();
  expectClose(referenceScan(c.config, c.inputs), c.expected, c.name);
}

TEST_P(GoldenCaseTest, ChunkedMatches) {
  const GoldenCase &c = golden();
  LayerOutputs recurrent = referenceScan(c.config, c.inputs);
  for (int64_t chunk : {int64_t(1), int64_t(7), int64_t(16), int64_t(64),
                        c.config.seqlen + 5}) {
    std::string what = c.name + ", chunk " + std::to_string(chunk);
    LayerOutputs chunked = referenceScanChunked(c.config, c.inputs, chunk);
    expectClose(chunked, c.expected, what + " vs golden");
    expectClose(chunked, recurrent, what + " vs recurrence");
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenCaseTest,
                         ::testing::ValuesIn(caseNames()), paramName);

// One-token cases are decode steps: the same answers from decode layouts.
class GoldenStepTest : public GoldenCaseTest {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenStepTest);

TEST_P(GoldenStepTest, StepMatches) {
  const GoldenCase &c = golden();
  ASSERT_EQ(c.config.seqlen, 1);
  LayerInputs step = c.inputs;
  auto dropL = [](Tensor &t, size_t axis) {
    if (!t.empty())
      t.shape.erase(t.shape.begin() + axis);
  };
  for (Tensor *t : {&step.Q, &step.K, &step.V, &step.Z, &step.Angles})
    dropL(*t, 1);
  for (Tensor *t : {&step.ADT, &step.DT, &step.Trap})
    dropL(*t, 2);
  LayerOutputs expected = c.expected;
  dropL(expected.out, 1);
  expectClose(referenceStep(c.config, step), expected, c.name + " as a step");
}

INSTANTIATE_TEST_SUITE_P(OneTokenCases, GoldenStepTest,
                         ::testing::ValuesIn(caseNames(/*oneTokenOnly=*/true)),
                         paramName);

//===----------------------------------------------------------------------===//
// Reader errors
//===----------------------------------------------------------------------===//

TEST(GoldenReader, MissingFileNamesIt) {
  fs::path dir = scratchDir("missing");
  std::vector<GoldenCase> cases;
  std::string error;
  EXPECT_FALSE(loadGoldenCases((dir / "nothing").string(), cases, error));
  EXPECT_NE(error.find((dir / "nothing.json").string()), std::string::npos)
      << error;

  // The JSON alone is not enough.
  writeText((dir / "nothing.json").string(), "{\"cases\": []}");
  EXPECT_FALSE(loadGoldenCases((dir / "nothing").string(), cases, error));
  EXPECT_NE(error.find((dir / "nothing.bin").string()), std::string::npos)
      << error;
}

TEST(GoldenReader, EmptyCaseListLoads) {
  fs::path dir = scratchDir("empty");
  writeText((dir / "c.json").string(), "{\"cases\": []}");
  writeText((dir / "c.bin").string(), "");
  std::vector<GoldenCase> cases(3);
  std::string error;
  EXPECT_TRUE(loadGoldenCases((dir / "c").string(), cases, error)) << error;
  EXPECT_TRUE(cases.empty());
}

TEST(GoldenReader, BadJsonGivesFileAndOffset) {
  fs::path dir = scratchDir("badjson");
  writeText((dir / "c.json").string(), "{\"cases\": [}");
  writeText((dir / "c.bin").string(), "");
  std::vector<GoldenCase> cases;
  std::string error;
  EXPECT_FALSE(loadGoldenCases((dir / "c").string(), cases, error));
  EXPECT_NE(error.find("c.json"), std::string::npos) << error;
  EXPECT_NE(error.find("byte 11"), std::string::npos) << error;

  writeText((dir / "c.json").string(), "[1, 2]");
  EXPECT_FALSE(loadGoldenCases((dir / "c").string(), cases, error));
  EXPECT_NE(error.find("'cases'"), std::string::npos) << error;
}

class GoldenCopyTest : public ::testing::Test {
protected:
  void SetUp() override {
    json = readText(goldenBase() + ".json");
    bin = readText(goldenBase() + ".bin");
    ASSERT_FALSE(json.empty()) << "cannot read " << goldenBase() << ".json";
    ASSERT_FALSE(bin.empty()) << "cannot read " << goldenBase() << ".bin";
  }

  /// Writes the (modified) copy and loads it; returns the error.
  std::string load(const std::string &name, const std::string &jsonText,
                   const std::string &binText) {
    fs::path dir = scratchDir(name);
    writeText((dir / "c.json").string(), jsonText);
    writeText((dir / "c.bin").string(), binText);
    std::vector<GoldenCase> cases;
    std::string error;
    EXPECT_FALSE(loadGoldenCases((dir / "c").string(), cases, error));
    return error;
  }

  static std::string replaceFirst(std::string s, const std::string &from,
                                  const std::string &to) {
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos)
      s.replace(at, from.size(), to);
    return s;
  }

  std::string json, bin;
};

TEST_F(GoldenCopyTest, UnchangedCopyLoads) {
  fs::path dir = scratchDir("copy");
  writeText((dir / "c.json").string(), json);
  writeText((dir / "c.bin").string(), bin);
  std::vector<GoldenCase> cases;
  std::string error;
  EXPECT_TRUE(loadGoldenCases((dir / "c").string(), cases, error)) << error;
  EXPECT_EQ(cases.size(), goldenCases().size());
}

TEST_F(GoldenCopyTest, TruncatedBinary) {
  std::string error = load("truncated", json, bin.substr(0, bin.size() / 2));
  EXPECT_NE(error.find("runs past the end"), std::string::npos) << error;
  EXPECT_NE(error.find("c.bin"), std::string::npos) << error;
  // It names the case and the tensor.
  EXPECT_NE(error.find("case '"), std::string::npos) << error;
}

TEST_F(GoldenCopyTest, UnknownDtype) {
  std::string error =
      load("dtype", replaceFirst(json, "\"float32\"", "\"float16\""), bin);
  EXPECT_NE(error.find("unknown dtype 'float16'"), std::string::npos) << error;
  EXPECT_NE(error.find("inputs.Q"), std::string::npos) << error;
  EXPECT_NE(error.find("c.json"), std::string::npos) << error;
}

TEST_F(GoldenCopyTest, MissingParameter) {
  std::string error =
      load("param", replaceFirst(json, "\"hqk\"", "\"hqk_\""), bin);
  EXPECT_NE(error.find("params.hqk is missing"), std::string::npos) << error;
}

TEST_F(GoldenCopyTest, ShapeDisagreesWithParams) {
  // siso_a has N = 32; claiming 16 makes Q's shape wrong.
  std::string error =
      load("shape", replaceFirst(json, "\"N\": 32", "\"N\": 16"), bin);
  EXPECT_NE(error.find("siso_a"), std::string::npos) << error;
  EXPECT_NE(error.find("shape"), std::string::npos) << error;
}
