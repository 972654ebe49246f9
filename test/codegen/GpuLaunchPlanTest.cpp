//===- GpuLaunchPlanTest.cpp - Launch-time shapes of GPU bundles ----------===//
//
// GPU bundles compiled with a dynamic batch and sequence length (the
// mamba3-compile program, --target sm_90a; needs ptxas, no GPU) and the
// runtime's launch plan for them: grids, scratch sizes and the i64
// parameters computed from the manifest's formulas for each launch shape,
// the chunks per block chosen at launch, and the shapes a bundle refuses.
// The expected values are recomputed here from the layer's sizes, not read
// back from the plan.
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"
#include "mamba3/GpuBundle.h"
#include "mamba3/Json.h"
#include "mamba3/Launch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <tuple>

using namespace mamba3;
namespace fs = std::filesystem;

namespace {

std::string shellQuote(const std::string &s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool havePtxas() {
  const char *home = std::getenv("CUDA_HOME");
  return fs::exists(std::string(home ? home : "/usr/local/cuda") + "/bin/ptxas");
}

/// Compiles a GPU bundle with `flags` into a fresh folder `name` and parses
/// its manifest; fails the test on a compile error.
BundleManifest compileGpu(const std::string &name, const std::string &flags) {
  fs::path dir = fs::path(MAMBA3_TEST_TMPDIR) / ("gpu-plan-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  std::string command = shellQuote(MAMBA3_COMPILE) + " " + flags +
                        " --target sm_90a -o " + shellQuote(dir.string()) +
                        " > " + shellQuote(dir.string() + ".log") + " 2>&1";
  int rc = std::system(command.c_str());
  std::ifstream log(dir.string() + ".log");
  std::stringstream text;
  text << log.rdbuf();
  BundleManifest m;
  EXPECT_EQ(rc, 0) << command << "\n" << text.str();
  std::string error;
  EXPECT_TRUE(loadBundleManifest(dir.string(), m, error)) << error;
  return m;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

#define REQUIRE_PTXAS()                                                        \
  if (!havePtxas())                                                            \
  GTEST_SKIP() << "no ptxas (CUDA toolkit) on this machine"

// The one-pass chunked kernel with batch and length at launch: one block per
// (head, sequence), the length as the one parameter, no scratch.
TEST(GpuLaunchPlan, ChunkedDynamicShapes) {
  REQUIRE_PTXAS();
  BundleManifest m = compileGpu(
      "chunked", "--batch 0 --seqlen 0 --heads 4 --state 64 --headdim 32 "
                 "--angles 16 --dtype bf16 --schedule chunked");
  // The one schedule, and its twin for lengths that are whole chunks.
  ASSERT_EQ(m.variants.size(), 1u);
  const BundleManifest &twin = m.variants[0];
  EXPECT_EQ(twin.variant, "chunked-full-chunks");
  EXPECT_EQ(twin.specializes, "chunked");
  EXPECT_EQ(twin.seqlenMultiple, m.chunkSize);
  EXPECT_EQ(twin.launches.size(), m.launches.size());
  EXPECT_EQ(twin.launches[0].grid, m.launches[0].grid);
  EXPECT_EQ(twin.launches[0].dynamicSharedBytes, m.launches[0].dynamicSharedBytes);
  EXPECT_EQ(m.config.batch, -1);
  EXPECT_EQ(m.config.seqlen, -1);
  EXPECT_EQ(m.schedule, "chunked");
  ASSERT_EQ(m.parameters, (std::vector<std::string>{"seqlen"}));
  ASSERT_EQ(m.launches.size(), 1u);
  EXPECT_FALSE(m.tensorMaps.empty());
  for (auto [b, L] : {std::pair<int64_t, int64_t>{1, 64}, {3, 1000}, {16, 8191}}) {
    GpuLaunchPlan plan;
    std::string error;
    ASSERT_TRUE(planGpuLaunch(m, {b, L}, 132, plan, error)) << error;
    EXPECT_EQ(plan.grids[0], (std::array<unsigned, 3>{4, unsigned(b), 1}));
    EXPECT_EQ(plan.parameters, (std::vector<int64_t>{L}));
    EXPECT_EQ(plan.workspaceBytes, 0u);
    EXPECT_EQ(plan.chunks, ceilDiv(L, m.chunkSize));
    EXPECT_EQ(plan.config.batch, b);
    EXPECT_EQ(plan.config.seqlen, L);
    EXPECT_EQ(plan.variantName,
              L % m.chunkSize == 0 ? "chunked-full-chunks" : "chunked")
        << plan.choice;
  }

  // Shapes no launch can take, named.
  GpuLaunchPlan plan;
  std::string error;
  EXPECT_FALSE(planGpuLaunch(m, {0, 64}, 132, plan, error));
  EXPECT_NE(error.find("must be positive"), std::string::npos) << error;
  EXPECT_FALSE(planGpuLaunch(m, {70000, 64}, 132, plan, error));
  EXPECT_NE(error.find("at most 65535"), std::string::npos) << error;
}

// A static bundle keeps its shape: the same formulas give its fixed grid,
// and another shape is refused with what to do.
TEST(GpuLaunchPlan, StaticShapesStayStatic) {
  REQUIRE_PTXAS();
  BundleManifest m = compileGpu(
      "static", "--batch 2 --seqlen 256 --heads 4 --state 64 --headdim 32 "
                "--angles 16 --dtype bf16 --schedule chunked");
  EXPECT_TRUE(m.parameters.empty());
  GpuLaunchPlan plan;
  std::string error;
  ASSERT_TRUE(planGpuLaunch(m, {2, 256}, 132, plan, error)) << error;
  EXPECT_EQ(plan.grids[0], (std::array<unsigned, 3>{4, 2, 1}));
  EXPECT_FALSE(planGpuLaunch(m, {3, 256}, 132, plan, error));
  EXPECT_NE(error.find("batch is 3, but the bundle was compiled for 2"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("--batch ?"), std::string::npos) << error;
  EXPECT_FALSE(planGpuLaunch(m, {2, 512}, 132, plan, error));
  EXPECT_NE(error.find("seqlen is 512"), std::string::npos) << error;
}

// Chunk-parallel with the chunks per block left to the launch: the runtime
// picks the fewest chunks per block that fill the SMs (the compiler's rule
// for static shapes), sizes the span grids and the four scratch buffers,
// and passes the length and the chunks per block.
TEST(GpuLaunchPlan, ChunkParallelChoosesChunksPerBlock) {
  REQUIRE_PTXAS();
  const int64_t H = 4, P = 32, N = 64, S = 16;
  BundleManifest m = compileGpu(
      "parallel", "--batch 0 --seqlen 0 --heads 4 --state 64 --headdim 32 "
                  "--angles 16 --dtype bf16 --schedule chunk-parallel");
  EXPECT_EQ(m.schedule, "chunk-parallel");
  EXPECT_EQ(m.chunksPerBlock, 0);
  EXPECT_GE(m.blocksPerSm, 1);
  ASSERT_EQ(m.parameters,
            (std::vector<std::string>{"seqlen", "chunks_per_block"}));
  ASSERT_EQ(m.launches.size(), 3u);
  ASSERT_EQ(m.scratch.size(), 4u);
  const int64_t C = m.chunkSize;
  for (int64_t sms : {8, 132}) {
    for (auto [b, L] :
         {std::pair<int64_t, int64_t>{1, 4096}, {2, 1000}, {64, 2048}}) {
      GpuLaunchPlan plan;
      std::string error;
      ASSERT_TRUE(planGpuLaunch(m, {b, L}, sms, plan, error)) << error;
      const int64_t chunks = ceilDiv(L, C);
      const int64_t slots = sms * m.blocksPerSm;
      const int64_t wantSpans =
          std::clamp<int64_t>(slots / (b * H), 1, chunks);
      const int64_t K = ceilDiv(chunks, wantSpans);
      const int64_t spans = ceilDiv(chunks, K);
      EXPECT_EQ(plan.chunksPerBlock, K) << "b=" << b << " L=" << L;
      EXPECT_EQ(plan.spans, spans);
      // Blocks never exceed what the SMs hold at once, unless one span per
      // sequence is already too many.
      if (b * H <= slots)
        EXPECT_LE(b * H * spans, slots);
      EXPECT_EQ(plan.grids[0],
                (std::array<unsigned, 3>{unsigned(H), unsigned(b), unsigned(spans)}));
      EXPECT_EQ(plan.grids[2], plan.grids[0]);
      EXPECT_EQ(plan.grids[1][1], unsigned(b));
      EXPECT_EQ(plan.parameters, (std::vector<int64_t>{L, K}));
      const size_t floats[] = {size_t(b * H * spans * P * N), size_t(b * H * spans),
                               size_t(b * H * spans * S), size_t(b * H * spans * S)};
      size_t end = 0;
      for (size_t j = 0; j < 4; ++j) {
        EXPECT_EQ(plan.scratchBytes[j], floats[j] * 4) << m.scratch[j].name;
        EXPECT_GE(plan.scratchOffsets[j], end);
        EXPECT_EQ(plan.scratchOffsets[j] % 256, 0u);
        end = plan.scratchOffsets[j] + plan.scratchBytes[j];
      }
      EXPECT_EQ(plan.workspaceBytes, end);
    }
  }
}

// The launch-time rule is the compiler's: a static compile of the same
// shape records the chunks per block the runtime picks for it.
TEST(GpuLaunchPlan, LaunchRuleMatchesTheCompilers) {
  REQUIRE_PTXAS();
  const std::string layer =
      "--heads 4 --state 64 --headdim 32 --angles 16 --dtype bf16 "
      "--schedule chunk-parallel";
  BundleManifest dynamic = compileGpu("rule-dynamic",
                                      "--batch 0 --seqlen 0 " + layer);
  for (auto [b, L, sms] : {std::tuple<int64_t, int64_t, int64_t>{1, 2048, 132},
                           {2, 4096, 16}}) {
    BundleManifest fixed = compileGpu(
        "rule-static", "--batch " + std::to_string(b) + " --seqlen " +
                           std::to_string(L) + " --sm-count " +
                           std::to_string(sms) + " " + layer);
    ASSERT_GT(fixed.chunksPerBlock, 0);
    GpuLaunchPlan plan;
    std::string error;
    ASSERT_TRUE(planGpuLaunch(dynamic, {b, L}, sms, plan, error)) << error;
    EXPECT_EQ(plan.chunksPerBlock, fixed.chunksPerBlock)
        << "b=" << b << " L=" << L << " on " << sms << " SMs";
  }
}

// Varlen: the batch axis is the number of sequences (cu_seqlens has one
// more entry), the length parameter the packed tokens.
TEST(GpuLaunchPlan, VarlenSequencesAtLaunch) {
  REQUIRE_PTXAS();
  BundleManifest m = compileGpu(
      "varlen", "--batch 0 --seqlen 0 --heads 4 --state 64 --headdim 32 "
                "--angles 16 --dtype bf16 --varlen");
  EXPECT_TRUE(m.config.varlen);
  ASSERT_EQ(m.parameters, (std::vector<std::string>{"seqlen"}));
  GpuLaunchPlan plan;
  std::string error;
  ASSERT_TRUE(planGpuLaunch(m, {5, 777}, 132, plan, error)) << error;
  EXPECT_EQ(plan.grids[0], (std::array<unsigned, 3>{4, 5, 1}));
  EXPECT_EQ(plan.parameters, (std::vector<int64_t>{777}));
  std::vector<std::vector<int64_t>> shapes;
  ASSERT_TRUE(argumentShapes(m, plan.config, shapes, error)) << error;
  for (size_t i = 0; i < m.arguments.size(); ++i)
    if (m.arguments[i].name == "cu_seqlens")
      EXPECT_EQ(shapes[i], (std::vector<int64_t>{6}));
}

// A decode step takes the batch at launch and no parameters.
TEST(GpuLaunchPlan, DecodeStepBatchAtLaunch) {
  REQUIRE_PTXAS();
  BundleManifest m = compileGpu(
      "step", "--step --batch 0 --heads 4 --state 64 --headdim 32 "
              "--angles 16 --dtype bf16");
  EXPECT_TRUE(m.isStep());
  EXPECT_TRUE(m.parameters.empty());
  for (int64_t b : {1, 7, 256}) {
    GpuLaunchPlan plan;
    std::string error;
    ASSERT_TRUE(planGpuLaunch(m, {b, 1}, 132, plan, error)) << error;
    EXPECT_EQ(plan.grids[0][1], unsigned(b));
    EXPECT_EQ(plan.grids[0][0], 4u);
  }
}

// A prefill bundle with batch and length at launch holds both chunked
// schedules, and the runtime picks one per shape as the compiler would for
// that static shape: chunk-parallel when batch x heads blocks leave SMs idle
// and the chunks make at least three spans (recomputed here).
TEST(GpuLaunchPlan, VariantChosenPerLaunchShape) {
  REQUIRE_PTXAS();
  const std::string layer = "--heads 4 --state 64 --headdim 32 --angles 16 "
                            "--dtype bf16";
  BundleManifest m = compileGpu("variants", "--batch 0 --seqlen 0 " + layer);
  // Both schedules, then their full-chunk twins.
  ASSERT_EQ(m.variants.size(), 3u);
  EXPECT_EQ(m.variants[1].specializes, "chunked");
  EXPECT_EQ(m.variants[2].specializes, "chunk-parallel");
  EXPECT_EQ(m.variant, "chunked");
  const BundleManifest &parallel = m.variants[0];
  EXPECT_EQ(parallel.variant, "chunk-parallel");
  EXPECT_EQ(parallel.schedule, "chunk-parallel");
  EXPECT_EQ(parallel.chunksPerBlock, 0);
  EXPECT_NE(parallel.library, m.library);
  EXPECT_EQ(parallel.configString, m.configString);
  EXPECT_EQ(m.dispatchSource, "cost-model");
  EXPECT_TRUE(m.dispatch.empty());
  // The variant is the chunk-parallel bundle of the same layer, field by
  // field.
  BundleManifest alone = compileGpu("variants-alone", "--batch 0 --seqlen 0 " +
                                                          layer +
                                                          " --schedule chunk-parallel");
  EXPECT_EQ(parallel.launches.size(), alone.launches.size());
  ASSERT_EQ(parallel.scratch.size(), alone.scratch.size());
  EXPECT_EQ(parallel.scratch.size(), 4u);
  for (size_t i = 0; i < alone.scratch.size(); ++i) {
    EXPECT_EQ(parallel.scratch[i].name, alone.scratch[i].name);
    EXPECT_EQ(parallel.scratch[i].shape, alone.scratch[i].shape);
  }
  ASSERT_EQ(parallel.tensorMaps.size(), alone.tensorMaps.size());
  EXPECT_FALSE(parallel.tensorMaps.empty());
  for (size_t i = 0; i < alone.tensorMaps.size(); ++i) {
    EXPECT_EQ(parallel.tensorMaps[i].argument, alone.tensorMaps[i].argument);
    EXPECT_EQ(parallel.tensorMaps[i].box, alone.tensorMaps[i].box);
  }
  EXPECT_EQ(parallel.parameters, alone.parameters);
  EXPECT_EQ(parallel.blocksPerSm, alone.blocksPerSm);
  for (size_t k = 0; k < alone.launches.size(); ++k) {
    EXPECT_EQ(parallel.launches[k].kernel, alone.launches[k].kernel);
    EXPECT_EQ(parallel.launches[k].grid, alone.launches[k].grid);
    EXPECT_EQ(parallel.launches[k].dynamicSharedBytes,
              alone.launches[k].dynamicSharedBytes);
  }
  for (auto [b, L, sms] : {std::tuple<int64_t, int64_t, int64_t>{1, 4096, 132},
                           {2, 100, 132}, {64, 4096, 132}, {8, 1000, 16},
                           {33, 4096, 132}, {3, 192, 132}, {3, 129, 8}}) {
    GpuLaunchPlan plan;
    std::string error;
    ASSERT_TRUE(planGpuLaunch(m, {b, L}, sms, plan, error)) << error;
    const int64_t chunks = ceilDiv(L, parallel.chunkSize);
    const int64_t perBlock =
        launchChunksPerBlock(chunks, b * 4, sms, parallel.blocksPerSm);
    const bool wantParallel = b * 4 < sms && ceilDiv(chunks, perBlock) >= 3;
    const std::string want =
        std::string(wantParallel ? "chunk-parallel" : "chunked") +
        (L % parallel.chunkSize == 0 ? "-full-chunks" : "");
    EXPECT_EQ(plan.variantName, want)
        << "b=" << b << " L=" << L << " on " << sms << " SMs: " << plan.choice;
    EXPECT_EQ(plan.grids.size(), wantParallel ? 3u : 1u);
    EXPECT_NE(plan.choice.find("cost model"), std::string::npos) << plan.choice;
  }
  // Static shapes keep one variant.
  BundleManifest fixed =
      compileGpu("variants-static", "--batch 1 --seqlen 4096 " + layer);
  EXPECT_TRUE(fixed.variants.empty());
  EXPECT_EQ(fixed.schedule, "chunk-parallel");
}

// The dispatch table: the first row holding the shape names the variant;
// rows of unknown variants or malformed ranges make the manifest invalid.
TEST(GpuLaunchPlan, DispatchTableRows) {
  REQUIRE_PTXAS();
  BundleManifest m = compileGpu(
      "dispatch", "--batch 0 --seqlen 0 --heads 4 --state 64 --headdim 32 "
                  "--angles 16 --dtype bf16");
  ASSERT_EQ(m.variants.size(), 3u);
  fs::path dir = fs::path(MAMBA3_TEST_TMPDIR) / "gpu-plan-dispatch";
  std::ifstream file(dir / "manifest.json");
  std::stringstream text;
  text << file.rdbuf();
  const std::string original = text.str();
  const std::string empty = "\"table\":[]";
  ASSERT_NE(original.find(empty), std::string::npos);
  auto withTable = [&](const std::string &rows) {
    std::string t = original;
    t.replace(t.find(empty), empty.size(), "\"table\":[" + rows + "]");
    return t;
  };
  BundleManifest tabled;
  std::string error;
  ASSERT_TRUE(parseBundleManifest(
      withTable("{\"batch\":[1,2],\"seqlen\":[1,0],\"variant\":\"chunked\"},"
                "{\"batch\":[1,0],\"seqlen\":[1,512],"
                "\"variant\":\"chunk-parallel\"}"),
      tabled, error))
      << error;
  ASSERT_EQ(tabled.dispatch.size(), 2u);
  struct Case {
    int64_t b, L;
    const char *variant, *why;
  };
  // b=1 L=4096 is chunk-parallel by the cost model; row 0 says chunked.
  // A length of whole 64-token chunks runs the pick's full-chunk twin.
  for (Case c : {Case{1, 4096, "chunked-full-chunks", "dispatch table row 0"},
                 Case{2, 100000, "chunked", "dispatch table row 0"},
                 Case{3, 512, "chunk-parallel-full-chunks", "dispatch table row 1"},
                 Case{64, 100, "chunk-parallel", "dispatch table row 1"},
                 Case{64, 4096, "chunked-full-chunks", "no table row holds"},
                 Case{3, 4000, "chunk-parallel", "no table row holds"}}) {
    GpuLaunchPlan plan;
    ASSERT_TRUE(planGpuLaunch(tabled, {c.b, c.L}, 132, plan, error)) << error;
    EXPECT_EQ(plan.variantName, c.variant) << c.b << "x" << c.L << ": " << plan.choice;
    EXPECT_EQ(plan.choice.rfind(c.why, 0), 0u) << plan.choice;
  }
  BundleManifest bad;
  EXPECT_FALSE(parseBundleManifest(
      withTable("{\"batch\":[1,2],\"seqlen\":[1,0],\"variant\":\"tokens\"}"),
      bad, error));
  EXPECT_NE(error.find("names variant 'tokens', which the bundle does not have"),
            std::string::npos)
      << error;
  EXPECT_FALSE(parseBundleManifest(
      withTable("{\"batch\":[4,2],\"seqlen\":[1,0],\"variant\":\"chunked\"}"),
      bad, error));
  EXPECT_NE(error.find("'batch' is not [lo, hi]"), std::string::npos) << error;
  // A row names a variant for every length, never a full-chunk twin.
  EXPECT_FALSE(parseBundleManifest(
      withTable("{\"batch\":[1,2],\"seqlen\":[1,0],"
                "\"variant\":\"chunked-full-chunks\"}"),
      bad, error));
  EXPECT_NE(error.find("names the full-chunk variant 'chunked-full-chunks'"),
            std::string::npos)
      << error;
  // A twin must name a general variant with its schedule and chunk.
  auto edited = [&](const std::string &from, const std::string &to) {
    std::string t = original;
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? t : t.replace(at, from.size(), to);
  };
  EXPECT_FALSE(parseBundleManifest(
      edited("\"specializes\":\"chunked\"", "\"specializes\":\"tokens\""),
      bad, error));
  EXPECT_NE(error.find("specializes 'tokens', which is not a variant for every "
                       "length"),
            std::string::npos)
      << error;
  EXPECT_FALSE(parseBundleManifest(
      edited("\"specializes\":\"chunked\"",
             "\"specializes\":\"chunk-parallel\""),
      bad, error));
  EXPECT_NE(error.find("has another schedule, chunk or chunks per block"),
            std::string::npos)
      << error;
  EXPECT_FALSE(parseBundleManifest(
      edited("\"seqlen_multiple\":64", "\"seqlen_multiple\":0"), bad, error));
  EXPECT_NE(error.find("'seqlen_multiple' must be positive"), std::string::npos)
      << error;
  EXPECT_FALSE(parseBundleManifest(
      edited("\"seqlen_multiple\":64", "\"seqlen_multiple\":32"), bad, error));
  EXPECT_NE(error.find("a seqlen_multiple that is not its chunk size"),
            std::string::npos)
      << error;
  // Two variants over one kernel file, and a variant named twice.
  std::string shared = original;
  shared.replace(shared.find("\"kernel-chunk-parallel.cubin\""),
                 std::string("\"kernel-chunk-parallel.cubin\"").size(),
                 "\"kernel.cubin\"");
  EXPECT_FALSE(parseBundleManifest(shared, bad, error));
  EXPECT_NE(error.find("name the same kernel file"), std::string::npos) << error;
  std::string twice = original;
  twice.replace(twice.find("\"variant\":\"chunk-parallel\""),
                std::string("\"variant\":\"chunk-parallel\"").size(),
                "\"variant\":\"chunked\"");
  EXPECT_FALSE(parseBundleManifest(twice, bad, error));
  EXPECT_NE(error.find("two variants are named 'chunked'"), std::string::npos)
      << error;
}

/// `v` with its node number `target` (pre-order, counted in `index`)
/// replaced by `replacement`.
JsonValue replaceNode(const JsonValue &v, int64_t &index, int64_t target,
                      const JsonValue &replacement) {
  if (index++ == target)
    return replacement;
  if (v.isArray()) {
    JsonValue out = JsonValue::array();
    for (const JsonValue &item : v.items())
      out.push(replaceNode(item, index, target, replacement));
    return out;
  }
  if (v.isObject()) {
    JsonValue out = JsonValue::object();
    for (const auto &[key, value] : v.members())
      out.set(key, replaceNode(value, index, target, replacement));
    return out;
  }
  return v;
}

int64_t nodeCount(const JsonValue &v) {
  int64_t n = 1;
  for (const JsonValue &item : v.items())
    n += nodeCount(item);
  for (const auto &member : v.members())
    n += nodeCount(member.second);
  return n;
}

// A bundle's variants and dispatch table are untrusted input: every node of
// them replaced in turn by a value of the wrong kind or range is refused at
// parse time or by the kernel files' digests (which cover the launch
// fields), or leaves the launch fields as compiled and gives plans within
// what a launch can take (run under ASan by scripts/sanitize.sh).
TEST(GpuLaunchPlan, VariantManifestMutations) {
  REQUIRE_PTXAS();
  compileGpu("mutations", "--batch 0 --seqlen 0 --heads 4 --state 64 "
                          "--headdim 32 --angles 16 --dtype bf16");
  fs::path dir = fs::path(MAMBA3_TEST_TMPDIR) / "gpu-plan-mutations";
  std::ifstream file(dir / "manifest.json");
  std::stringstream text;
  text << file.rdbuf();
  JsonValue root;
  std::string error;
  ASSERT_TRUE(parseJson(text.str(), root, error)) << error;
  // The subtrees under test: node numbers of "dispatch" and "variants".
  int64_t first = 1, count = 0, next = 1;
  for (const auto &[key, value] : root.members()) {
    int64_t n = nodeCount(value);
    if (key == "dispatch")
      first = next;
    if (key == "dispatch" || key == "variants")
      count += n;
    next += n;
  }
  ASSERT_GT(count, 20);
  // The launch fields of each kernel file, as compiled.
  std::map<std::string, std::string> pristine;
  {
    BundleManifest m;
    ASSERT_TRUE(parseBundleManifest(text.str(), m, error)) << error;
    for (size_t i = 0; i <= m.variants.size(); ++i)
      pristine[gpuVariant(m, i).library] = gpuLaunchString(gpuVariant(m, i));
  }
  const std::vector<JsonValue> bad = {
      JsonValue::number(-1), JsonValue::number(0), JsonValue::number(1e300),
      JsonValue::number(2.5), JsonValue::string("spans"), JsonValue::string(""),
      JsonValue::string("kernel.cubin"), JsonValue(), JsonValue::array(),
      JsonValue::object()};
  int64_t refused = 0, accepted = 0;
  for (int64_t node = first; node < first + count; ++node)
    for (const JsonValue &value : bad) {
      int64_t index = 0;
      std::string mutant = replaceNode(root, index, node, value).dump();
      BundleManifest m;
      if (!parseBundleManifest(mutant, m, error)) {
        EXPECT_FALSE(error.empty());
        ++refused;
        continue;
      }
      // What the loader also checks: the kernel files' digests, taken over
      // the launch fields, so an accepted mutant that changed those fields
      // is refused at load.
      bool loads = true;
      for (size_t i = 0; i <= m.variants.size() && loads; ++i) {
        const BundleManifest &v = gpuVariant(m, i);
        std::ifstream image(dir / v.library, std::ios::binary);
        std::stringstream bytes;
        bytes << image.rdbuf();
        loads = image.good() &&
                checkBundleFileDigest(v.library, bytes.str(), v.libraryDigest,
                                      gpuDigestKey(v))
                    .empty();
        if (loads)
          EXPECT_EQ(gpuLaunchString(v), pristine.at(v.library)) << mutant;
      }
      if (!loads) {
        ++refused;
        continue;
      }
      ++accepted;
      for (auto [b, L] : {std::pair<int64_t, int64_t>{1, 1}, {3, 1000},
                          {64, 4096}, {65535, 64}}) {
        GpuLaunchPlan plan;
        if (!planGpuLaunch(m, {b, L}, 132, plan, error))
          continue;
        ASSERT_LE(plan.variant, m.variants.size()) << mutant;
        const BundleManifest &v = gpuVariant(m, plan.variant);
        ASSERT_EQ(plan.grids.size(), v.launches.size()) << mutant;
        for (const auto &g : plan.grids) {
          EXPECT_GE(g[0] * g[1] * g[2], 1u) << mutant;
          EXPECT_LE(g[1], 65535u) << mutant;
          EXPECT_LE(g[2], 65535u) << mutant;
        }
        EXPECT_EQ(plan.scratchBytes.size(), v.scratch.size()) << mutant;
        EXPECT_EQ(plan.parameters.size(), v.parameters.size()) << mutant;
      }
    }
  std::cout << "variant manifest mutants: " << refused << " refused, "
            << accepted << " loadable, with sane plans\n";
  EXPECT_GT(refused, accepted);
}

// launchChunksPerBlock on its own: the edges of the rule.
TEST(GpuLaunchPlan, ChunksPerBlockRule) {
  // Enough (head, sequence) pairs to fill the SMs: one span, all chunks.
  EXPECT_EQ(launchChunksPerBlock(64, 132 * 2, 132, 2), 64);
  // One sequence of 4 heads on 132 SMs x 2: 66 spans wanted, 64 chunks.
  EXPECT_EQ(launchChunksPerBlock(64, 4, 132, 2), 1);
  // 32 heads: 8 spans of 8 chunks.
  EXPECT_EQ(launchChunksPerBlock(64, 32, 132, 2), 8);
  EXPECT_EQ(launchChunksPerBlock(1, 1, 132, 2), 1);
}

} // namespace
