//===- TuningDbTest.cpp - The tuning database of mamba3-tune --------------===//
//
// Parsing (and the errors for another format, version or architecture and
// for malformed entries), printing and reading back, merging new
// measurements, and the layer key.
//
//===----------------------------------------------------------------------===//

#include "mamba3/TuningDb.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

using namespace mamba3;

namespace {

const char *const kConfig =
    "kind=scan;batch=?;seqlen=?;heads=32;groups=1;state=128;headdim=64;"
    "angles=32;rank=1;mimo=0;d=1;z=1;init=0;wrap=1;broadcast_angles=0;"
    "varlen=0;state_dtype=f32;rule=trapezoid;pairing=adjacent;dtype=bf16";

std::string entry(const std::string &batch, const std::string &seqlen,
                  const std::string &shape, const std::string &best,
                  const std::string &config = kConfig) {
  return "{\"config\": \"" + config + "\", \"device\": \"NVIDIA H200\", "
         "\"sm_count\": 132, \"batch\": " + batch + ", \"seqlen\": " + seqlen +
         ", \"shape\": " + shape + ", \"candidates\": 8, \"best\": " + best +
         "}";
}

const char *const kParallel =
    "{\"schedule\": \"chunk-parallel\", \"chunk\": 64, \"chunks_per_block\": "
    "2, \"mma\": \"auto\", \"qk_buffers\": 0, \"us\": 120.5}";
const char *const kChunked =
    "{\"schedule\": \"chunked\", \"chunk\": 32, \"mma\": \"auto\", "
    "\"qk_buffers\": 0, \"us\": 300.25}";
const char *const kEngines =
    "{\"schedule\": \"chunked\", \"chunk\": 64, \"mma\": \"wgmma-scores\", "
    "\"qk_buffers\": 1, \"us\": 200}";
const char *const kTokens =
    "{\"schedule\": \"tokens\", \"block_size\": 256, \"us\": 9.5}";

std::string database(const std::string &entries,
                     const std::string &head =
                         "\"format\": \"mamba3-tuning-db\", \"format_version\": "
                         "2, \"arch\": \"sm_90a\"") {
  return "{" + head + ", \"entries\": [" + entries + "]}";
}

std::string parseError(const std::string &text) {
  TuningDb db;
  std::string error;
  EXPECT_FALSE(parseTuningDb(text, db, error)) << text;
  return error;
}

} // namespace

TEST(TuningDb, ParsesEntries) {
  TuningDb db;
  std::string error;
  ASSERT_TRUE(parseTuningDb(
      database(entry("[2, 0]", "[1, 4096]", "[4, 2048]", kChunked) + ", " +
               entry("[1, 1]", "[1, 4096]", "[1, 4096]", kParallel)),
      db, error))
      << error;
  EXPECT_EQ(db.arch, "sm_90a");
  ASSERT_EQ(db.entries.size(), 2u);
  // Sorted by (config, batch, seqlen): batch 1 first.
  EXPECT_EQ(db.entries[0].batchMin, 1);
  EXPECT_EQ(db.entries[0].best.name(), "chunk-parallel-c64-k2");
  EXPECT_DOUBLE_EQ(db.entries[0].best.micros, 120.5);
  EXPECT_EQ(db.entries[1].batchMax, 0);
  EXPECT_EQ(db.entries[1].best.name(), "chunked-c32");
  EXPECT_EQ(db.entries[1].best.compileFlags(),
            (std::vector<std::string>{"--schedule", "chunked", "--chunk", "32"}));
  EXPECT_EQ(tuningEntriesFor(db, kConfig).size(), 2u);
  EXPECT_TRUE(tuningEntriesFor(db, "kind=scan;heads=1").empty());
}

TEST(TuningDb, EnginesBuffersAndBlockSizesRoundTrip) {
  TuningDb db;
  std::string error;
  ASSERT_TRUE(parseTuningDb(
      database(entry("[1, 1]", "[1, 4096]", "[1, 4096]", kEngines) + ", " +
               entry("[2, 0]", "[1, 4096]", "[4, 2048]", kTokens)),
      db, error))
      << error;
  ASSERT_EQ(db.entries.size(), 2u);
  const TunedVariant &engines = db.entries[0].best;
  EXPECT_EQ(engines.name(), "chunked-c64-wgmma-scores-qk1");
  EXPECT_EQ(engines.compileFlags(),
            (std::vector<std::string>{"--schedule", "chunked", "--chunk", "64",
                                      "--mma", "wgmma-scores", "--qk-buffers",
                                      "1"}));
  const TunedVariant &tokens = db.entries[1].best;
  EXPECT_EQ(tokens.name(), "tokens-t256");
  EXPECT_EQ(tokens.compileFlags(),
            (std::vector<std::string>{"--schedule", "tokens", "--block-size",
                                      "256"}));
  EXPECT_FALSE(engines.sameKernel(tokens));
  TunedVariant buffered = engines;
  buffered.qkBuffers = 2;
  EXPECT_FALSE(engines.sameKernel(buffered));
  // Printed and parsed again: the same database.
  TuningDb again;
  ASSERT_TRUE(parseTuningDb(printTuningDb(db), again, error)) << error;
  EXPECT_EQ(printTuningDb(again), printTuningDb(db));
  EXPECT_TRUE(again.entries[0].best.sameKernel(engines));
  EXPECT_TRUE(again.entries[1].best.sameKernel(tokens));
}

TEST(TuningDb, RefusesOtherFormatsAndMalformedEntries) {
  EXPECT_NE(parseError("{\"format\": \"mamba3-bundle\"}").find("'format'"),
            std::string::npos);
  EXPECT_NE(parseError(database("", "\"format\": \"mamba3-tuning-db\", "
                                    "\"format_version\": 0, \"arch\": \"sm_90a\""))
                .find("format_version 0 is not the version this tree reads"),
            std::string::npos);
  // Format 1 predates the engines, buffers and block sizes: tune again.
  EXPECT_NE(parseError(database("", "\"format\": \"mamba3-tuning-db\", "
                                    "\"format_version\": 1, \"arch\": \"sm_90a\""))
                .find("format_version 1 is not the version this tree reads (2)"),
            std::string::npos);
  EXPECT_NE(parseError(database("", "\"format\": \"mamba3-tuning-db\", "
                                    "\"format_version\": 2, \"arch\": \"x86\""))
                .find("'arch'"),
            std::string::npos);
  EXPECT_NE(parseError("[1, 2").find("not valid JSON"), std::string::npos);
  // A shape outside its bucket, a bucket with hi < lo, a bad variant, a key
  // that fixes the batch, overlapping buckets.
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[2, 512]",
                                      kChunked)))
                .find("outside its bucket"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[4, 2]", "[1, 512]", "[4, 512]",
                                      kChunked)))
                .find("'batch' or 'seqlen'"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      "{\"schedule\": \"token\", \"chunk\": "
                                      "0, \"us\": 1}")))
                .find("'best' 'schedule'"),
            std::string::npos);
  // A tokens variant needs its block size; a chunked one its engines and
  // buffers, each from the values mamba3-compile takes.
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      "{\"schedule\": \"tokens\", "
                                      "\"block_size\": 100, \"us\": 1}")))
                .find("'block_size' is not a multiple of 32"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      "{\"schedule\": \"chunked\", \"chunk\": "
                                      "64, \"mma\": \"hmma\", \"qk_buffers\": 0, "
                                      "\"us\": 1}")))
                .find("'mma' is not 'auto', 'mma.sync'"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      "{\"schedule\": \"chunked\", \"chunk\": "
                                      "64, \"mma\": \"wgmma\", \"qk_buffers\": 3, "
                                      "\"us\": 1}")))
                .find("'qk_buffers' is not 0"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      "{\"schedule\": \"chunked\", \"chunk\": "
                                      "64, \"us\": 1}")))
                .find("'mma'"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      "{\"schedule\": \"chunked\", \"chunk\": "
                                      "32, \"mma\": \"auto\", \"qk_buffers\": 0, \"us\": -1}")))
                .find("'us' is not a positive time"),
            std::string::npos);
  std::string fixed = kConfig;
  fixed.replace(fixed.find("batch=?"), 7, "batch=8");
  EXPECT_NE(parseError(database(entry("[1, 1]", "[1, 512]", "[1, 512]",
                                      kChunked, fixed)))
                .find("fixes batch or seqlen"),
            std::string::npos);
  EXPECT_NE(parseError(database(entry("[1, 4]", "[1, 0]", "[1, 512]",
                                      kChunked) + ", " +
                                entry("[4, 8]", "[256, 1024]", "[8, 512]",
                                      kParallel)))
                .find("overlaps"),
            std::string::npos);
}

TEST(TuningDb, PrintsWhatItReadsAndSavesAtomically) {
  TuningDb db;
  std::string error;
  ASSERT_TRUE(parseTuningDb(
      database(entry("[1, 1]", "[1, 4096]", "[1, 4096]", kParallel)), db,
      error));
  TuningDb again;
  ASSERT_TRUE(parseTuningDb(printTuningDb(db), again, error)) << error;
  EXPECT_EQ(printTuningDb(again), printTuningDb(db));
  ASSERT_EQ(again.entries.size(), 1u);
  EXPECT_TRUE(again.entries[0].best.sameKernel(db.entries[0].best));
  EXPECT_EQ(again.entries[0].device, "NVIDIA H200");

  std::string path = testing::TempDir() + "/tuning-db-test.json";
  ASSERT_TRUE(saveTuningDb(path, db, error)) << error;
  TuningDb loaded;
  ASSERT_TRUE(loadTuningDb(path, loaded, error)) << error;
  EXPECT_EQ(printTuningDb(loaded), printTuningDb(db));
  std::ifstream temp(path + ".tmp");
  EXPECT_FALSE(temp.good()) << "the temporary file was left behind";
  std::remove(path.c_str());
  EXPECT_FALSE(loadTuningDb(path, loaded, error));
  EXPECT_NE(error.find("cannot read the tuning database"), std::string::npos);
}

TEST(TuningDb, MergeReplacesTheSameBucketsOnly) {
  TuningDb db;
  std::string error;
  ASSERT_TRUE(parseTuningDb(
      database(entry("[1, 1]", "[1, 4096]", "[1, 4096]", kParallel) + ", " +
               entry("[2, 0]", "[1, 4096]", "[4, 4096]", kChunked)),
      db, error));
  TuningEntry fresh = db.entries[0];
  fresh.best.chunk = 32;
  fresh.best.micros = 99;
  TuningEntry other = fresh;
  other.config = std::string(kConfig) + ";rmsnorm=1";
  mergeTuningEntries(db, {fresh, other});
  ASSERT_EQ(db.entries.size(), 3u);
  std::vector<const TuningEntry *> same = tuningEntriesFor(db, kConfig);
  ASSERT_EQ(same.size(), 2u);
  EXPECT_EQ(same[0]->best.chunk, 32);
  EXPECT_DOUBLE_EQ(same[0]->best.micros, 99);
  EXPECT_EQ(same[1]->best.schedule, "chunked");
}

TEST(TuningDb, KeyLeavesShapeAndChunkToTheKernel) {
  EXPECT_EQ(tuningConfigKey("kind=scan;batch=8;seqlen=4096;heads=32;dtype=bf16;"
                            "chunk=64"),
            "kind=scan;batch=?;seqlen=?;heads=32;dtype=bf16");
  EXPECT_EQ(tuningConfigKey("kind=step;batch=2;seqlen=-;heads=4;chunk=0"),
            "kind=step;batch=?;seqlen=-;heads=4");
}
