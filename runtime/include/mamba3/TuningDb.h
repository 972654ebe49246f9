//===- TuningDb.h - The tuning database of mamba3-tune ----------*- C++ -*-===//
//
// mamba3-tune times the kernel variants the compiler can build for a layer
// (schedule, chunk size, chunks per block) at a set of launch shapes and
// keeps the winners in a tuning database: one JSON file per GPU
// architecture, entries keyed by the layer's configuration (its canonical
// config string with batch and seqlen left to the launch) and a shape
// bucket (batch and seqlen ranges), each with the winning variant and its
// measured time and the runner-up. `mamba3-compile --tuning-db FILE` reads
// it and writes a bundle whose variants are the winners and whose dispatch
// table is the buckets. No MLIR: mamba3-tune writes it on the GPU machine.
//
//   {"format": "mamba3-tuning-db", "format_version": 1, "arch": "sm_90a",
//    "entries": [{"config": "kind=scan;batch=?;seqlen=?;heads=32;...",
//                 "device": "NVIDIA H200", "sm_count": 132,
//                 "batch": [1, 1], "seqlen": [1, 512],
//                 "shape": [1, 512], "candidates": 8,
//                 "best": {"schedule": "chunk-parallel", "chunk": 64,
//                          "chunks_per_block": 2, "mma": "auto",
//                          "qk_buffers": 0, "us": 12.5},
//                 "runner_up": {...}}]}
//
// `chunk` is mamba3-compile's --chunk (rank-1 terms per chunk, 0: the
// compiler's choice); `chunks_per_block` 0 leaves it to the launch; `mma`
// and `qk_buffers` are --mma and --qk-buffers (auto / 0: the compiler's
// choice). A decode step's variants are the token-sequential kernel at a
// block size: {"schedule": "tokens", "block_size": 256, "us": 9.1}. A
// range's upper end 0 has no bound. Format 1 (before the engines, buffers
// and block sizes were searched) is refused: tune again. Entries are kept sorted by (config, batch,
// seqlen), so the same measurements give the same file.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_TUNINGDB_H
#define MAMBA3_TUNINGDB_H

#include <cstdint>
#include <string>
#include <vector>

namespace mamba3 {

/// Layout version of the tuning database this tree reads and writes.
constexpr int kTuningDbFormatVersion = 2;

/// One kernel variant of a layer: what mamba3-compile builds for it.
struct TunedVariant {
  /// "chunked", "chunk-parallel" or (a decode step) "tokens".
  std::string schedule;
  /// mamba3-compile --chunk (rank-1 terms; 0: the compiler's choice).
  int64_t chunk = 0;
  /// chunk-parallel: chunks per block, 0 chosen per launch.
  int64_t chunksPerBlock = 0;
  /// Chunked schedules: --mma (auto, mma.sync, wgmma-scores, wgmma) and
  /// --qk-buffers (0: the compiler's choice, 1, 2).
  std::string mma = "auto";
  int64_t qkBuffers = 0;
  /// tokens: --block-size (threads per block).
  int64_t blockSize = 0;
  /// Measured median time of one launch, microseconds (-1: none).
  double micros = -1;

  /// A stable name: "chunked-c64", "chunk-parallel-c64-k2",
  /// "chunk-parallel-c64-kauto", "chunked-c64-mma.sync-qk1", "tokens-t256".
  std::string name() const;
  /// The mamba3-compile flags that build it.
  std::vector<std::string> compileFlags() const;
  bool sameKernel(const TunedVariant &o) const {
    return schedule == o.schedule && chunk == o.chunk &&
           chunksPerBlock == o.chunksPerBlock && mma == o.mma &&
           qkBuffers == o.qkBuffers && blockSize == o.blockSize;
  }
};

/// Whether `name` is a value of --mma.
bool isTunedMma(const std::string &name);

struct TuningEntry {
  /// The layer: its canonical config string with batch=? and seqlen=?.
  std::string config;
  /// Where it was measured.
  std::string device;
  int64_t smCount = 0;
  /// The bucket the winner is for (inclusive; a max of 0 is unbounded) and
  /// the shape timed in it.
  int64_t batchMin = 1, batchMax = 0, seqlenMin = 1, seqlenMax = 0;
  int64_t batch = 0, seqlen = 0;
  /// Variants timed, the fastest and the second (empty schedule: only one).
  int64_t candidates = 0;
  TunedVariant best, runnerUp;

  /// Whether the bucket holds a launch of `b` sequences of `l` tokens.
  bool holds(int64_t b, int64_t l) const {
    return b >= batchMin && (batchMax == 0 || b <= batchMax) &&
           l >= seqlenMin && (seqlenMax == 0 || l <= seqlenMax);
  }
};

struct TuningDb {
  std::string arch = "sm_90a";
  std::vector<TuningEntry> entries;
};

/// Parses a database's text. Returns false with `error` naming the field
/// for anything else: another format, an older or newer format_version, a
/// malformed entry, overlapping buckets of one config.
bool parseTuningDb(const std::string &text, TuningDb &db, std::string &error);

/// Reads and parses `path` (error names the file).
bool loadTuningDb(const std::string &path, TuningDb &db, std::string &error);

/// The database as JSON text (entries sorted; one entry per line).
std::string printTuningDb(const TuningDb &db);

/// Writes `db` to `path` through a temporary file renamed into place, so a
/// reader never sees a half-written database.
bool saveTuningDb(const std::string &path, const TuningDb &db,
                  std::string &error);

/// Adds `entries` to `db`, replacing those of the same config and bucket,
/// and sorts.
void mergeTuningEntries(TuningDb &db, const std::vector<TuningEntry> &entries);

/// `config` with its batch and seqlen fields set to "?" and without its
/// chunk (the kernel's choice): the key of a layer in the database (a step
/// keeps seqlen=-).
std::string tuningConfigKey(const std::string &configString);

/// The entries of `db` for `config` (a tuningConfigKey), in order.
std::vector<const TuningEntry *> tuningEntriesFor(const TuningDb &db,
                                                  const std::string &config);

} // namespace mamba3

#endif // MAMBA3_TUNINGDB_H
