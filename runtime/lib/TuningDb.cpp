//===- TuningDb.cpp - The tuning database of mamba3-tune ------------------===//

#include "mamba3/TuningDb.h"

#include "mamba3/Json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <tuple>

using namespace mamba3;

std::string TunedVariant::name() const {
  if (schedule == "tokens")
    return "tokens-t" + std::to_string(blockSize);
  std::string n = schedule + "-c" + std::to_string(chunk);
  if (schedule == "chunk-parallel")
    n += chunksPerBlock > 0 ? "-k" + std::to_string(chunksPerBlock)
                            : std::string("-kauto");
  if (mma != "auto")
    n += "-" + mma;
  if (qkBuffers != 0)
    n += "-qk" + std::to_string(qkBuffers);
  return n;
}

std::vector<std::string> TunedVariant::compileFlags() const {
  std::vector<std::string> flags = {"--schedule", schedule};
  if (schedule == "tokens") {
    if (blockSize > 0)
      flags.insert(flags.end(), {"--block-size", std::to_string(blockSize)});
    return flags;
  }
  if (chunk > 0)
    flags.insert(flags.end(), {"--chunk", std::to_string(chunk)});
  if (schedule == "chunk-parallel")
    flags.insert(flags.end(),
                 {"--chunks-per-block", std::to_string(chunksPerBlock)});
  if (mma != "auto")
    flags.insert(flags.end(), {"--mma", mma});
  if (qkBuffers != 0)
    flags.insert(flags.end(), {"--qk-buffers", std::to_string(qkBuffers)});
  return flags;
}

bool mamba3::isTunedMma(const std::string &name) {
  return name == "auto" || name == "mma.sync" || name == "wgmma-scores" ||
         name == "wgmma";
}

namespace {

bool exactInteger(const JsonValue *v, int64_t &out) {
  if (!v || !v->isNumber())
    return false;
  double d = v->asNumber();
  if (!std::isfinite(d) || d != std::floor(d) || std::abs(d) > 9.0e15)
    return false;
  out = static_cast<int64_t>(d);
  return true;
}

/// [lo, hi] with 1 <= lo and (hi == 0 or lo <= hi).
bool readRange(const JsonValue *v, int64_t &lo, int64_t &hi) {
  return v && v->isArray() && v->items().size() == 2 &&
         exactInteger(&v->items()[0], lo) &&
         exactInteger(&v->items()[1], hi) && lo >= 1 && hi >= 0 &&
         (hi == 0 || hi >= lo);
}

bool readVariant(const JsonValue *v, TunedVariant &out, std::string &why) {
  if (!v || !v->isObject()) {
    why = "is not an object";
    return false;
  }
  const JsonValue *schedule = v->get("schedule");
  if (!schedule || !schedule->isString() ||
      (schedule->asString() != "chunked" &&
       schedule->asString() != "chunk-parallel" &&
       schedule->asString() != "tokens")) {
    why = "'schedule' is not 'chunked', 'chunk-parallel' or 'tokens'";
    return false;
  }
  out = TunedVariant();
  out.schedule = schedule->asString();
  if (out.schedule == "tokens") {
    // The token-sequential kernel (a decode step): its block size.
    if (!exactInteger(v->get("block_size"), out.blockSize) ||
        out.blockSize < 32 || out.blockSize > 1024 || out.blockSize % 32) {
      why = "'block_size' is not a multiple of 32 in [32, 1024]";
      return false;
    }
  } else {
    if (!exactInteger(v->get("chunk"), out.chunk) || out.chunk < 0 ||
        out.chunk > 1024) {
      why = "'chunk' is not a chunk size in [0, 1024]";
      return false;
    }
    if (out.schedule == "chunk-parallel" &&
        (!exactInteger(v->get("chunks_per_block"), out.chunksPerBlock) ||
         out.chunksPerBlock < 0 || out.chunksPerBlock > 65535)) {
      why = "'chunks_per_block' is not a count in [0, 65535]";
      return false;
    }
    const JsonValue *mma = v->get("mma");
    if (!mma || !mma->isString() || !isTunedMma(mma->asString())) {
      why = "'mma' is not 'auto', 'mma.sync', 'wgmma-scores' or 'wgmma'";
      return false;
    }
    out.mma = mma->asString();
    if (!exactInteger(v->get("qk_buffers"), out.qkBuffers) ||
        out.qkBuffers < 0 || out.qkBuffers > 2) {
      why = "'qk_buffers' is not 0 (the compiler's choice), 1 or 2";
      return false;
    }
  }
  const JsonValue *us = v->get("us");
  if (!us || !us->isNumber() || !(us->asNumber() > 0) ||
      !std::isfinite(us->asNumber())) {
    why = "'us' is not a positive time";
    return false;
  }
  out.micros = us->asNumber();
  return true;
}

JsonValue variantJson(const TunedVariant &v) {
  JsonValue o = JsonValue::object();
  auto num = [](int64_t n) { return JsonValue::number(static_cast<double>(n)); };
  o.set("schedule", JsonValue::string(v.schedule));
  if (v.schedule == "tokens") {
    o.set("block_size", num(v.blockSize));
  } else {
    o.set("chunk", num(v.chunk));
    if (v.schedule == "chunk-parallel")
      o.set("chunks_per_block", num(v.chunksPerBlock));
    o.set("mma", JsonValue::string(v.mma));
    o.set("qk_buffers", num(v.qkBuffers));
  }
  // Three decimals of a microsecond: what events resolve.
  o.set("us", JsonValue::number(std::round(v.micros * 1000) / 1000));
  return o;
}

JsonValue pair(int64_t a, int64_t b) {
  JsonValue p = JsonValue::array();
  p.push(JsonValue::number(static_cast<double>(a)));
  p.push(JsonValue::number(static_cast<double>(b)));
  return p;
}

auto entryKey(const TuningEntry &e) {
  return std::make_tuple(e.config, e.batchMin, e.seqlenMin);
}

bool overlaps(const TuningEntry &a, const TuningEntry &b) {
  auto meet = [](int64_t lo1, int64_t hi1, int64_t lo2, int64_t hi2) {
    return (hi1 == 0 || lo2 <= hi1) && (hi2 == 0 || lo1 <= hi2);
  };
  return a.config == b.config &&
         meet(a.batchMin, a.batchMax, b.batchMin, b.batchMax) &&
         meet(a.seqlenMin, a.seqlenMax, b.seqlenMin, b.seqlenMax);
}

void sortEntries(std::vector<TuningEntry> &entries) {
  std::sort(entries.begin(), entries.end(),
            [](const TuningEntry &a, const TuningEntry &b) {
              return entryKey(a) < entryKey(b);
            });
}

} // namespace

bool mamba3::parseTuningDb(const std::string &text, TuningDb &db,
                           std::string &error) {
  db = TuningDb();
  JsonValue root;
  std::string parseError;
  if (!parseJson(text, root, parseError)) {
    error = "not valid JSON: " + parseError;
    return false;
  }
  const JsonValue *format = root.get("format");
  if (!format || !format->isString() ||
      format->asString() != "mamba3-tuning-db") {
    error = "'format' is not 'mamba3-tuning-db' (not a tuning database of "
            "mamba3-tune)";
    return false;
  }
  int64_t version = 0;
  if (!exactInteger(root.get("format_version"), version) ||
      version != kTuningDbFormatVersion) {
    error = "format_version " +
            (root.get("format_version") && root.get("format_version")->isNumber()
                 ? std::to_string(root.get("format_version")->asInt())
                 : std::string("(missing)")) +
            " is not the version this tree reads (" +
            std::to_string(kTuningDbFormatVersion) +
            "); tune again with this tree's mamba3-tune";
    return false;
  }
  const JsonValue *arch = root.get("arch");
  if (!arch || !arch->isString() || arch->asString().rfind("sm_", 0) != 0) {
    error = "'arch' is not a GPU architecture (sm_...)";
    return false;
  }
  db.arch = arch->asString();
  const JsonValue *entries = root.get("entries");
  if (!entries || !entries->isArray()) {
    error = "'entries' is not an array";
    return false;
  }
  for (size_t i = 0; i < entries->items().size(); ++i) {
    const JsonValue &e = entries->items()[i];
    const std::string at = "entries[" + std::to_string(i) + "]";
    auto bad = [&](const std::string &why) {
      error = at + ": " + why;
      return false;
    };
    if (!e.isObject())
      return bad("is not an object");
    TuningEntry entry;
    const JsonValue *config = e.get("config");
    if (!config || !config->isString() ||
        config->asString().rfind("kind=", 0) != 0)
      return bad("'config' is not a layer's config string (kind=...)");
    entry.config = config->asString();
    if (tuningConfigKey(entry.config) != entry.config)
      return bad("'config' fixes batch or seqlen; keys leave both to the "
                 "launch (batch=?;seqlen=?)");
    const JsonValue *device = e.get("device");
    if (!device || !device->isString())
      return bad("'device' is not a string");
    entry.device = device->asString();
    if (!exactInteger(e.get("sm_count"), entry.smCount) || entry.smCount < 1 ||
        entry.smCount > 1024)
      return bad("'sm_count' is not in [1, 1024]");
    if (!readRange(e.get("batch"), entry.batchMin, entry.batchMax) ||
        !readRange(e.get("seqlen"), entry.seqlenMin, entry.seqlenMax))
      return bad("'batch' or 'seqlen' is not [lo, hi] with 1 <= lo <= hi "
                 "(hi 0: no upper bound)");
    const JsonValue *shape = e.get("shape");
    if (!shape || !shape->isArray() || shape->items().size() != 2 ||
        !exactInteger(&shape->items()[0], entry.batch) ||
        !exactInteger(&shape->items()[1], entry.seqlen) || entry.batch < 1 ||
        entry.seqlen < 1)
      return bad("'shape' is not [batch, seqlen]");
    if (!entry.holds(entry.batch, entry.seqlen))
      return bad("'shape' lies outside its bucket");
    if (!exactInteger(e.get("candidates"), entry.candidates) ||
        entry.candidates < 1)
      return bad("'candidates' is not a positive count");
    std::string why;
    if (!readVariant(e.get("best"), entry.best, why))
      return bad("'best' " + why);
    if (const JsonValue *runner = e.get("runner_up"))
      if (!readVariant(runner, entry.runnerUp, why))
        return bad("'runner_up' " + why);
    for (const TuningEntry &other : db.entries)
      if (overlaps(other, entry))
        return bad("its bucket overlaps another entry's of the same config "
                   "(batch " + std::to_string(other.batchMin) + "..., seqlen " +
                   std::to_string(other.seqlenMin) + "...)");
    db.entries.push_back(std::move(entry));
  }
  sortEntries(db.entries);
  return true;
}

bool mamba3::loadTuningDb(const std::string &path, TuningDb &db,
                          std::string &error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    error = "cannot read the tuning database '" + path + "'";
    return false;
  }
  std::stringstream s;
  s << file.rdbuf();
  if (!parseTuningDb(s.str(), db, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

std::string mamba3::printTuningDb(const TuningDb &db) {
  std::vector<TuningEntry> entries = db.entries;
  sortEntries(entries);
  std::string out = "{\n  \"format\": \"mamba3-tuning-db\",\n"
                    "  \"format_version\": " +
                    std::to_string(kTuningDbFormatVersion) +
                    ",\n  \"arch\": " + JsonValue::string(db.arch).dump(0) +
                    ",\n  \"entries\": [";
  for (size_t i = 0; i < entries.size(); ++i) {
    const TuningEntry &e = entries[i];
    JsonValue o = JsonValue::object();
    o.set("config", JsonValue::string(e.config));
    o.set("batch", pair(e.batchMin, e.batchMax));
    o.set("seqlen", pair(e.seqlenMin, e.seqlenMax));
    o.set("shape", pair(e.batch, e.seqlen));
    o.set("device", JsonValue::string(e.device));
    o.set("sm_count", JsonValue::number(static_cast<double>(e.smCount)));
    o.set("candidates", JsonValue::number(static_cast<double>(e.candidates)));
    o.set("best", variantJson(e.best));
    if (!e.runnerUp.schedule.empty())
      o.set("runner_up", variantJson(e.runnerUp));
    out += (i ? ",\n    " : "\n    ") + o.dump(0);
  }
  out += entries.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

bool mamba3::saveTuningDb(const std::string &path, const TuningDb &db,
                          std::string &error) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << printTuningDb(db);
    if (!file.flush()) {
      error = "cannot write '" + temp + "'";
      return false;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    error = "cannot rename '" + temp + "' to '" + path + "'";
    std::remove(temp.c_str());
    return false;
  }
  return true;
}

void mamba3::mergeTuningEntries(TuningDb &db,
                                const std::vector<TuningEntry> &entries) {
  for (const TuningEntry &e : entries) {
    // A new measurement of a bucket replaces the old one and any entry it
    // overlaps (buckets of another grid).
    db.entries.erase(std::remove_if(db.entries.begin(), db.entries.end(),
                                    [&](const TuningEntry &old) {
                                      return overlaps(old, e);
                                    }),
                     db.entries.end());
    db.entries.push_back(e);
  }
  sortEntries(db.entries);
}

std::string mamba3::tuningConfigKey(const std::string &configString) {
  std::string out;
  size_t start = 0;
  while (start <= configString.size()) {
    size_t end = configString.find(';', start);
    if (end == std::string::npos)
      end = configString.size();
    std::string field = configString.substr(start, end - start);
    if (field.rfind("chunk=", 0) == 0) {
      // The chunk is the kernel's choice, not the layer's.
      start = end + 1;
      continue;
    }
    if (field.rfind("batch=", 0) == 0)
      field = "batch=?";
    else if (field.rfind("seqlen=", 0) == 0 && field != "seqlen=-")
      field = "seqlen=?";
    out += (out.empty() ? "" : ";") + field;
    start = end + 1;
  }
  return out;
}

std::vector<const TuningEntry *>
mamba3::tuningEntriesFor(const TuningDb &db, const std::string &config) {
  std::vector<const TuningEntry *> out;
  for (const TuningEntry &e : db.entries)
    if (e.config == config)
      out.push_back(&e);
  return out;
}
