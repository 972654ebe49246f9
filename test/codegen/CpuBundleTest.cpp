//===- CpuBundleTest.cpp - CPU bundles from mamba3-compile, run by the runtime ===//
//
// The product path of the CPU target end to end: the mamba3-compile program
// writes a bundle, runtime/CpuBundle (no MLIR) loads and runs it, and the
// results are compared with the float64 reference (random inputs) and the
// golden answers, to the fp32 tolerance of golden/README.md.
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"
#include "mamba3/Golden.h"
#include "mamba3/Reference.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mamba3;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 1e-5;

std::string tmpDir(const std::string &name) {
  fs::path dir = fs::path(MAMBA3_TEST_TMPDIR) / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir.string();
}

std::string shellQuote(const std::string &s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs mamba3-compile with `args`; its output goes to DIR.log.
void compileBundle(const std::vector<std::string> &args,
                   const std::string &dir) {
  std::string command = shellQuote(MAMBA3_COMPILE);
  for (const std::string &arg : args)
    command += " " + shellQuote(arg);
  command += " > " + shellQuote(dir + ".log") + " 2>&1";
  int rc = std::system(command.c_str());
  std::ifstream log(dir + ".log");
  std::stringstream text;
  text << log.rdbuf();
  ASSERT_EQ(rc, 0) << command << "\n" << text.str();
}

std::unique_ptr<CpuBundle> compileAndLoad(const LayerConfig &cfg, bool step,
                                          int64_t chunk,
                                          const std::string &name,
                                          bool staticShapes = false) {
  std::string dir = tmpDir(name);
  compileBundle(cpuCompileArguments(cfg, step, chunk, dir, staticShapes), dir);
  std::string error;
  std::unique_ptr<CpuBundle> bundle = CpuBundle::load(dir, error);
  EXPECT_TRUE(bundle) << error;
  return bundle;
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
        << pair.first->shapeString() << " vs " << pair.second->shapeString()
        << ")";
}

//===----------------------------------------------------------------------===//
// Numerics against the float64 reference
//===----------------------------------------------------------------------===//

struct NumericCase {
  const char *name;
  LayerConfig cfg;
  bool step;
  int64_t chunk;
  bool staticShapes;
};

LayerConfig siso(int64_t b, int64_t L, int64_t H, int64_t G, int64_t N,
                 int64_t P, int64_t S) {
  LayerConfig c;
  c.batch = b, c.seqlen = L, c.heads = H, c.groups = G;
  c.state = N, c.headdim = P, c.angles = S;
  return c;
}

LayerConfig mimo(LayerConfig c, int64_t R) {
  c.mimo = true;
  c.rank = R;
  c.wrapAngle = false;
  return c;
}

template <typename F> LayerConfig with(LayerConfig c, F f) {
  f(c);
  return c;
}

std::vector<NumericCase> numericCases() {
  LayerConfig base = siso(2, 37, 4, 2, 16, 8, 4);
  return {
      {"siso_chunked", base, false, 8, false},
      {"siso_token_by_token", base, false, 0, false},
      {"siso_static_shapes", base, false, 16, true},
      {"siso_init_euler_half_split",
       with(base,
            [](LayerConfig &c) {
              c.hasInitialState = true;
              c.rule = Discretization::Euler;
              c.pairing = RotaryPairing::HalfSplit;
            }),
       false, 8, false},
      {"siso_no_d_no_z_no_wrap",
       with(base,
            [](LayerConfig &c) {
              c.hasD = c.hasZ = false;
              c.wrapAngle = false;
            }),
       false, 64, false},
      {"mimo_chunked", mimo(with(base, [](LayerConfig &c) {
                              c.hasInitialState = true;
                            }),
                            2),
       false, 4, false},
      {"mimo_no_z_token_by_token",
       mimo(with(base, [](LayerConfig &c) { c.hasZ = false; }), 3), false, 0,
       false},
      {"siso_varlen", with(base,
                           [](LayerConfig &c) {
                             c.varlen = true;
                             c.hasInitialState = true;
                           }),
       false, 8, false},
      {"mimo_varlen_static_shapes", mimo(with(base,
                                              [](LayerConfig &c) {
                                                c.varlen = true;
                                                c.hasInitialState = true;
                                              }),
                                         2),
       false, 4, true},
      {"siso_varlen_token_by_token", with(base,
                                          [](LayerConfig &c) { c.varlen = true; }),
       false, 0, false},
      {"siso_rmsnorm", with(base,
                            [](LayerConfig &c) {
                              c.rmsNorm = true;
                              c.normEps = 1e-3;
                              c.hasInitialState = true;
                            }),
       false, 8, false},
      {"mimo_step_rmsnorm",
       mimo(with(base, [](LayerConfig &c) { c.rmsNorm = true; }), 2), true,
       64, false},
      {"siso_step", base, true, 64, false},
      {"mimo_step", mimo(base, 2), true, 64, false},
  };
}

class CpuBundleNumerics : public ::testing::TestWithParam<NumericCase> {};

TEST_P(CpuBundleNumerics, MatchesFloat64Reference) {
  const NumericCase &c = GetParam();
  std::unique_ptr<CpuBundle> bundle =
      compileAndLoad(c.cfg, c.step, c.chunk, c.name, c.staticShapes);
  ASSERT_TRUE(bundle);
  EXPECT_EQ(bundle->manifest().kind, c.step ? "step" : "scan");

  LayerConfig cfg = c.cfg;
  if (c.step)
    cfg.hasInitialState = true; // a decode step always carries its states
  LayerInputs in = randomInputs(cfg, /*seed=*/1234, /*decode=*/c.step);
  LayerOutputs ref = c.step ? referenceStep(cfg, in) : referenceScan(cfg, in);
  LayerOutputs got;
  std::string error;
  ASSERT_TRUE(bundle->run(cfg, in, got, error)) << error;
  expectClose(got, ref, c.name);

  // Dynamic batch and sequence length: the same bundle runs another shape.
  if (!c.staticShapes) {
    LayerConfig other = cfg;
    other.batch = 3;
    other.seqlen = c.step ? cfg.seqlen : 5;
    LayerInputs in2 = randomInputs(other, /*seed=*/99, c.step);
    LayerOutputs ref2 =
        c.step ? referenceStep(other, in2) : referenceScan(other, in2);
    LayerOutputs got2;
    ASSERT_TRUE(bundle->run(other, in2, got2, error)) << error;
    expectClose(got2, ref2, std::string(c.name) + " (b=3, L=5)");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, CpuBundleNumerics, ::testing::ValuesIn(numericCases()),
    [](const ::testing::TestParamInfo<NumericCase> &info) {
      return std::string(info.param.name);
    });

// Kernels trust cu_seqlens; the runtime refuses bad offsets before a call.
TEST(CpuBundle, VarlenRefusesBadOffsets) {
  LayerConfig cfg = siso(2, 9, 2, 1, 8, 4, 2);
  cfg.varlen = true;
  std::unique_ptr<CpuBundle> bundle =
      compileAndLoad(cfg, /*step=*/false, 8, "varlen_bad_offsets");
  ASSERT_TRUE(bundle);
  LayerInputs in = randomInputs(cfg, 7);
  in.CuSeqlens.data = {0, 12, 9};
  LayerOutputs got;
  std::string error;
  EXPECT_FALSE(bundle->run(cfg, in, got, error));
  EXPECT_EQ(error, "input cu_seqlens must increase strictly (every sequence "
                   "has at least one token), but cu_seqlens[2] = 9 after 12");
}

TEST(CpuBundle, StepWithoutStatesStartsFromZero) {
  LayerConfig cfg = siso(2, 1, 2, 1, 8, 4, 2);
  std::unique_ptr<CpuBundle> bundle =
      compileAndLoad(cfg, /*step=*/true, 64, "step_zero_states");
  ASSERT_TRUE(bundle);
  LayerInputs in = randomInputs(cfg, 7, /*decode=*/true);
  in.angle0 = in.ssm0 = in.k0 = in.v0 = Tensor();
  LayerOutputs got, ref = referenceStep(cfg, in);
  std::string error;
  ASSERT_TRUE(bundle->run(cfg, in, got, error)) << error;
  expectClose(got, ref, "zero states");
}

TEST(CpuBundle, RepeatsAndTimesTheKernel) {
  LayerConfig cfg = siso(1, 16, 2, 1, 8, 4, 2);
  std::unique_ptr<CpuBundle> bundle = compileAndLoad(cfg, false, 8, "timed");
  ASSERT_TRUE(bundle);
  LayerInputs in = randomInputs(cfg, 3);
  LayerOutputs got;
  std::string error;
  double seconds = -1;
  ASSERT_TRUE(bundle->run(cfg, in, got, error, /*repeats=*/3, &seconds))
      << error;
  EXPECT_GT(seconds, 0);
  expectClose(got, referenceScan(cfg, in), "repeated");
}

//===----------------------------------------------------------------------===//
// Golden cases
//===----------------------------------------------------------------------===//

TEST(CpuBundle, GoldenCases) {
  std::vector<GoldenCase> cases;
  std::string error;
  ASSERT_TRUE(loadGoldenCases(std::string(MAMBA3_GOLDEN_DIR) + "/mamba3_cases",
                              cases, error))
      << error;
  ASSERT_FALSE(cases.empty());
  for (const GoldenCase &c : cases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<CpuBundle> bundle =
        compileAndLoad(c.config, /*step=*/false, 16, "golden_" + c.name);
    ASSERT_TRUE(bundle);
    LayerOutputs got;
    ASSERT_TRUE(bundle->run(c.config, c.inputs, got, error)) << error;
    expectClose(got, c.expected, c.name);
  }
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST(CpuBundle, MissingBundleSaysHowToBuildOne) {
  std::string error;
  EXPECT_FALSE(CpuBundle::load(tmpDir("does_not_exist"), error));
  EXPECT_NE(error.find("manifest.json"), std::string::npos) << error;
  EXPECT_NE(error.find("mamba3-compile"), std::string::npos) << error;
}

TEST(CpuBundle, CorruptManifest) {
  std::string dir = tmpDir("corrupt");
  fs::create_directories(dir);
  std::ofstream(dir + "/manifest.json") << "{\"format\": \"mamba3-bundle\",";
  std::string error;
  EXPECT_FALSE(CpuBundle::load(dir, error));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  EXPECT_NE(error.find("mamba3-compile"), std::string::npos) << error;

  std::ofstream(dir + "/manifest.json")
      << "{\"format\": \"mamba3-bundle\", \"format_version\": 6}";
  EXPECT_FALSE(CpuBundle::load(dir, error));
  EXPECT_NE(error.find("'target' is missing"), std::string::npos) << error;
}

TEST(CpuBundle, ManifestChecks) {
  LayerConfig cfg = siso(1, 4, 2, 1, 8, 4, 2);
  std::string dir = tmpDir("manifest_checks");
  compileBundle(cpuCompileArguments(cfg, false, 8, dir), dir);
  std::ifstream file(dir + "/manifest.json");
  std::stringstream text;
  text << file.rdbuf();
  BundleManifest m;
  std::string error;
  ASSERT_TRUE(parseBundleManifest(text.str(), m, error)) << error;
  EXPECT_EQ(m.target, "cpu");
  EXPECT_EQ(m.entry, "_mlir_ciface_mamba3_scan");
  EXPECT_EQ(m.config.batch, -1);
  EXPECT_EQ(m.config.heads, 2);
  EXPECT_EQ(m.chunkSize, 8);
  ASSERT_EQ(m.arguments.size(), 16u);
  EXPECT_EQ(m.arguments[0].name, "Q");
  EXPECT_EQ(m.arguments[11].name, "out");
  EXPECT_TRUE(m.arguments[11].isOutput);
  EXPECT_EQ(m.configHash.size(), 16u);

  auto replaced = [&](const std::string &from, const std::string &to) {
    std::string s = text.str();
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  EXPECT_FALSE(parseBundleManifest(
      replaced("\"format_version\": 6", "\"format_version\": 7"), m, error));
  EXPECT_NE(error.find("format_version 7"), std::string::npos) << error;
  EXPECT_FALSE(parseBundleManifest(replaced("\"kind\": \"scan\"",
                                            "\"kind\": \"train\""),
                                   m, error));
  EXPECT_NE(error.find("'kind'"), std::string::npos) << error;

  // GPU launches, scratch buffers and launch parameters: parsed in order,
  // bad entries named. (The CPU manifest has a dynamic seqlen, so the GPU
  // kernels take it as a parameter.)
  auto withGpu = [&](const std::string &launches, const std::string &scratch,
                     const std::string &extra =
                         "\"schedule\": \"chunk-parallel\", "
                         "\"chunks_per_block\": 0, \"blocks_per_sm\": 2, "
                         "\"parameters\": [\"seqlen\", \"chunks_per_block\"]") {
    return replaced("\"target\": \"cpu\"",
                    "\"target\": \"sm_90a\", \"launches\": " + launches +
                        ", \"scratch\": " + scratch + ", " + extra);
  };
  std::string threeLaunches =
      "[{\"kernel\": \"mamba3_scan_chunk_states\", \"grid\": [\"H\", \"b\", "
      "\"spans\"], \"block\": [128, 1, 1], \"dynamic_shared_bytes\": 70000}, "
      "{\"kernel\": \"mamba3_scan_chunk_boundaries\", \"grid\": [\"H\", \"b\", "
      "2], \"block\": [64, 1, 1]}, {\"kernel\": \"mamba3_scan_chunk_outputs\", "
      "\"grid\": [\"H\", \"b\", \"spans\"], \"block\": [128, 1, 1]}]";
  const std::string states =
      "[{\"name\": \"chunk_states\", \"element_bytes\": 4, \"shape\": "
      "[\"b\", 2, \"spans\", 4, 8]}]";
  ASSERT_TRUE(parseBundleManifest(withGpu(threeLaunches, states), m, error))
      << error;
  ASSERT_EQ(m.launches.size(), 3u);
  EXPECT_EQ(m.launches[0].kernel, "mamba3_scan_chunk_states");
  EXPECT_EQ(m.launches[0].grid, (std::vector<std::string>{"H", "b", "spans"}));
  EXPECT_EQ(m.launches[1].grid, (std::vector<std::string>{"H", "b", "2"}));
  EXPECT_EQ(m.launches[0].dynamicSharedBytes, 70000);
  EXPECT_EQ(m.launches[1].block[0], 64);
  EXPECT_EQ(m.launches[1].dynamicSharedBytes, 0);
  ASSERT_EQ(m.scratch.size(), 1u);
  EXPECT_EQ(m.scratch[0].name, "chunk_states");
  EXPECT_EQ(m.scratch[0].elementBytes, 4);
  EXPECT_EQ(m.scratch[0].shape,
            (std::vector<std::string>{"b", "2", "spans", "4", "8"}));
  EXPECT_EQ(m.parameters,
            (std::vector<std::string>{"seqlen", "chunks_per_block"}));
  EXPECT_EQ(m.chunksPerBlock, 0);
  EXPECT_EQ(m.blocksPerSm, 2);
  auto refused = [&](const std::string &text, const std::string &why) {
    EXPECT_FALSE(parseBundleManifest(text, m, error)) << why;
    EXPECT_NE(error.find(why), std::string::npos) << error;
  };
  refused(withGpu("[]", "[]"), "'launches' is not a non-empty array");
  refused(withGpu(threeLaunches,
                  "[{\"name\": \"s\", \"element_bytes\": 4, \"shape\": [0]}]"),
          "scratch[0]: 'shape' holds an entry that is neither a size");
  refused(withGpu(threeLaunches,
                  "[{\"name\": \"s\", \"element_bytes\": 4, \"shape\": [\"L\"]}]"),
          "scratch[0]: 'shape' holds an entry");
  refused(withGpu(threeLaunches,
                  "[{\"name\": \"s\", \"element_bytes\": 3, \"shape\": [1]}]"),
          "scratch[0]: 'element_bytes' is not 2, 4 or 8");
  refused(withGpu("[{\"kernel\": \"mamba3_scan\", \"grid\": [1, 1, 0], "
                  "\"block\": [1, 1, 1]}]",
                  "[]"),
          "launches[0]: 'grid' holds an entry");
  refused(withGpu("[{\"kernel\": \"mamba3_scan\", \"grid\": [\"N\", 1, 1], "
                  "\"block\": [1, 1, 1]}]",
                  "[]", "\"schedule\": \"chunked\", \"parameters\": [\"seqlen\"]"),
          "a launch grid names 'N'");
  // The parameters are what the kernels take: a list that differs from
  // what the config and the schedule imply would shift every one of them.
  refused(withGpu(threeLaunches, states,
                  "\"schedule\": \"chunk-parallel\", \"chunks_per_block\": 0, "
                  "\"blocks_per_sm\": 2, \"parameters\": [\"seqlen\"]"),
          "'parameters' does not list what the kernels of this configuration "
          "take (seqlen, chunks_per_block)");
  refused(withGpu(threeLaunches, states,
                  "\"schedule\": \"chunk-parallel\", \"chunks_per_block\": 0, "
                  "\"parameters\": [\"seqlen\", \"chunks_per_block\"]"),
          "'blocks_per_sm' is missing");
  refused(withGpu(threeLaunches, states,
                  "\"schedule\": \"chunk-parallel\", \"chunks_per_block\": -1, "
                  "\"parameters\": [\"seqlen\"]"),
          "'chunks_per_block' is negative");
  refused(withGpu(threeLaunches, states,
                  "\"schedule\": \"chunked\", \"parameters\": [\"seqlen\"]"),
          "'chunks_per_block' belongs to the three launches");
  refused(withGpu(threeLaunches, states,
                  "\"schedule\": \"fast\", \"parameters\": [\"seqlen\"]"),
          "'schedule' is 'fast'");
  refused(withGpu("[{\"kernel\": \"mamba3_scan\", \"grid\": [\"H\", \"b\", "
                  "\"spans\"], \"block\": [1, 1, 1]}]",
                  "[]", "\"schedule\": \"chunked\", \"parameters\": [\"seqlen\"]"),
          "'spans' sizes a grid or scratch buffer outside the chunk-parallel");
  refused(withGpu(threeLaunches, states,
                  "\"schedule\": \"chunk-parallel\", \"chunks_per_block\": 0, "
                  "\"blocks_per_sm\": 2, \"parameters\": [\"seqlen\", \"batch\"]"),
          "'parameters' holds an entry that is not 'seqlen' or "
          "'chunks_per_block'");

  // A GPU bundle is not for CpuBundle.
  std::ofstream(dir + "/manifest.json") << withGpu(threeLaunches, states);
  EXPECT_FALSE(CpuBundle::load(dir, error));
  EXPECT_NE(error.find("'sm_90a'"), std::string::npos) << error;
}

TEST(CpuBundle, MissingLibrary) {
  LayerConfig cfg = siso(1, 4, 2, 1, 8, 4, 2);
  std::string dir = tmpDir("missing_library");
  compileBundle(cpuCompileArguments(cfg, false, 8, dir), dir);
  fs::remove(dir + "/kernel.so");
  std::string error;
  EXPECT_FALSE(CpuBundle::load(dir, error));
  EXPECT_NE(error.find("kernel.so"), std::string::npos) << error;
  EXPECT_NE(error.find("mamba3-compile"), std::string::npos) << error;
}

TEST(CpuBundle, MismatchesNameTheField) {
  LayerConfig cfg = siso(2, 8, 4, 2, 16, 8, 4);
  std::unique_ptr<CpuBundle> bundle =
      compileAndLoad(cfg, false, 8, "mismatch", /*staticShapes=*/true);
  ASSERT_TRUE(bundle);
  LayerInputs in = randomInputs(cfg, 5);
  LayerOutputs out;
  std::string error;

  LayerConfig heads = cfg;
  heads.heads = 8;
  EXPECT_FALSE(bundle->run(heads, in, out, error));
  EXPECT_NE(error.find("heads = 4"), std::string::npos) << error;
  EXPECT_NE(error.find("heads = 8"), std::string::npos) << error;

  LayerConfig seqlen = cfg;
  seqlen.seqlen = 9; // the bundle has a static sequence length
  EXPECT_FALSE(bundle->run(seqlen, in, out, error));
  EXPECT_NE(error.find("seqlen"), std::string::npos) << error;

  LayerConfig rule = cfg;
  rule.rule = Discretization::Euler;
  EXPECT_FALSE(bundle->run(rule, in, out, error));
  EXPECT_NE(error.find("rule = trapezoid"), std::string::npos) << error;

  LayerInputs badShape = in;
  badShape.V = Tensor({2, 8, 4, 7});
  EXPECT_FALSE(bundle->run(cfg, badShape, out, error));
  EXPECT_NE(error.find("input 'V'"), std::string::npos) << error;

  LayerInputs noD = in;
  noD.D = Tensor();
  EXPECT_FALSE(bundle->run(cfg, noD, out, error));
  EXPECT_NE(error.find("input 'D' is missing"), std::string::npos) << error;
}

TEST(CpuBundle, CompileArguments) {
  LayerConfig cfg = mimo(siso(2, 8, 4, 2, 16, 8, 4), 2);
  cfg.hasZ = false;
  cfg.hasInitialState = true;
  std::vector<std::string> args = cpuCompileArguments(cfg, false, 32, "DIR");
  std::string joined;
  for (const std::string &a : args)
    joined += a + " ";
  EXPECT_EQ(joined,
            "--target cpu --dtype f32 --batch ? --seqlen ? --heads 4 "
            "--groups 2 --state 16 --headdim 8 --angles 4 --rank 2 --rule "
            "trapezoid --pairing adjacent --chunk 32 --mimo --no-z "
            "--no-wrap-angle --init -o DIR ");
}

} // namespace
