//===- BundleChecks.cpp - A bundle is untrusted input ---------------------===//
//
// A bundle is a directory users copy between machines, and its manifest
// decides what the kernel is handed: a wrong argument list, size or entry
// reaches the kernel as an out-of-bounds write. So every manifest is
// checked for agreement with itself (the arguments its configuration
// implies, sizes in range, the entry of its kind), and a kernel library is
// checked to be a whole ELF file before dlopen maps it.
//
//===----------------------------------------------------------------------===//

#include "mamba3/CpuBundle.h"

#include <type_traits>

#include <elf.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <tuple>

namespace mamba3 {

namespace {

uint64_t fnv1a(uint64_t h, const std::string &bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

std::string hex16(uint64_t h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

bool isFloatDtype(const std::string &d) {
  return d == "f32" || d == "bf16" || d == "f16";
}

std::string axesText(const BundleArgument &a) {
  std::string s = "(";
  for (size_t i = 0; i < a.axes.size(); ++i)
    s += (i ? ", " : "") + a.axes[i] + "=" + std::to_string(a.shape[i]);
  return s + ")";
}

std::string describe(const BundleArgument &a) {
  return "'" + a.name + "' (" + (a.isOutput ? "output" : "input") + ", " +
         a.dtype + ", " + axesText(a) + ")";
}

/// Token arguments: packed into batch 1 in a varlen layer.
bool isTokenArgument(const std::string &name) {
  for (const char *t : {"Q", "K", "V", "ADT", "DT", "Trap", "Angles", "Z",
                        "out"})
    if (name == t)
      return true;
  return false;
}

} // namespace

// The runtime's own statement of codegen/LayerModule.cpp's argument rules:
// it has no MLIR to ask, and it must not take the manifest's word for them.
// Every bundle the tests compile is loaded through this check, so the two
// cannot drift apart unnoticed.
std::vector<BundleArgument> expectedBundleArguments(const BundleManifest &m) {
  const LayerConfig &c = m.config;
  const bool step = m.isStep();
  auto size = [&](const std::string &axis) -> int64_t {
    if (axis == "b")
      return c.batch;
    if (axis == "L")
      return c.seqlen;
    return layerAxisSize(c, axis);
  };
  std::vector<BundleArgument> args;
  auto add = [&](const std::string &name, bool isOutput,
                 std::initializer_list<const char *> parts,
                 const std::string &dtype) {
    BundleArgument a;
    a.name = name;
    a.isOutput = isOutput;
    a.dtype = dtype;
    for (const char *axisName : parts) {
      std::string axis = axisName;
      if ((axis == "L" && step) || (axis == "R" && !c.mimo) ||
          (axis == "H" && name == "Angles" && c.broadcastAngles))
        continue;
      if (axis == "b" && c.varlen && isTokenArgument(name)) {
        a.axes.push_back("1");
        a.shape.push_back(1);
        continue;
      }
      a.axes.push_back(axis);
      a.shape.push_back(size(axis));
    }
    args.push_back(std::move(a));
  };
  const std::string &data = m.dtype;
  const std::string ssm = c.bf16State ? "bf16" : "f32";
  add("Q", false, {"b", "L", "R", "G", "N"}, data);
  add("K", false, {"b", "L", "R", "G", "N"}, data);
  add("V", false, {"b", "L", "H", "P"}, data);
  add("ADT", false, {"b", "H", "L"}, "f32");
  add("DT", false, {"b", "H", "L"}, "f32");
  add("Trap", false, {"b", "H", "L"}, m.trapDtype);
  add("Q_bias", false, {"H", "R", "N"}, m.biasDtype);
  add("K_bias", false, {"H", "R", "N"}, m.biasDtype);
  add("Angles", false, {"b", "L", "H", "S"}, "f32");
  if (c.hasD)
    add("D", false, {"H"}, "f32");
  if (c.hasZ)
    add("Z", false, {"b", "L", "H", "P"}, data);
  if (step || c.hasInitialState) {
    add("angle0", false, {"b", "H", "S"}, "f32");
    add("ssm0", false, {"b", "H", "P", "N"}, ssm);
    add("k0", false, {"b", "H", "R", "N"}, m.kStateDtype);
    add("v0", false, {"b", "H", "R", "P"}, m.vStateDtype);
  }
  if (c.mimo) {
    add("mimo_v", false, {"H", "R", "P"}, "f32");
    if (c.hasZ)
      add("mimo_z", false, {"H", "R", "P"}, "f32");
    if (!c.perRankOutputs)
      add("mimo_o", false, {"H", "R", "P"}, "f32");
  }
  if (c.rmsNorm)
    add("norm_weight", false, {"H", "P"}, "f32");
  if (c.varlen) {
    BundleArgument cu;
    cu.name = "cu_seqlens";
    cu.dtype = "i32";
    cu.axes = {"b+1"};
    cu.shape = {c.batch < 0 ? -1 : c.batch + 1};
    args.push_back(std::move(cu));
  }
  if (c.perRankOutputs)
    add("out", true, {"b", "L", "R", "H", "P"}, data);
  else
    add("out", true, {"b", "L", "H", "P"}, data);
  if (m.finalStates) {
    add("angle", true, {"b", "H", "S"}, "f32");
    add("ssm", true, {"b", "H", "P", "N"}, ssm);
    add("k", true, {"b", "H", "R", "N"}, m.kStateDtype);
    add("v", true, {"b", "H", "R", "P"}, m.vStateDtype);
  }
  return args;
}

std::string checkManifestConsistency(const BundleManifest &m) {
  const LayerConfig &c = m.config;
  const std::string fix =
      "; the manifest was edited or is damaged: rebuild the bundle with "
      "mamba3-compile";
  auto bad = [&](const std::string &what) {
    return "manifest.json: " + what + fix;
  };
  // Sizes: the compiler's own limits (codegen/LayerModule.cpp), so that
  // every element count and offset stays in range.
  constexpr int64_t kMaxTokens = (int64_t(1) << 31) - 1;
  for (auto [name, value, low, high] :
       {std::tuple<const char *, int64_t, int64_t, int64_t>{
            "heads", c.heads, 1, 1 << 16},
        {"groups", c.groups, 1, 1 << 16},
        {"state", c.state, 1, 1 << 16},
        {"headdim", c.headdim, 1, 1 << 16},
        {"rank", c.rank, 1, 1 << 10},
        {"angles", c.angles, 0, 1 << 15}})
    if (value < low || value > high)
      return bad("config '" + std::string(name) + "' is " +
                 std::to_string(value) + ", outside [" + std::to_string(low) +
                 ", " + std::to_string(high) + "]");
  for (auto [name, value] : {std::pair<const char *, int64_t>{"batch", c.batch},
                             {"seqlen", c.seqlen}})
    if (value != -1 && (value < 1 || value > kMaxTokens))
      return bad("config '" + std::string(name) + "' is " +
                 std::to_string(value) +
                 ", neither -1 (dynamic) nor in [1, 2^31 - 1]");
  if (m.isStep() && c.seqlen != 1)
    return bad("a step's config 'seqlen' is " + std::to_string(c.seqlen) +
               ", not 1");
  if (c.heads % c.groups != 0)
    return bad("config 'heads' (" + std::to_string(c.heads) +
               ") is not a multiple of 'groups' (" + std::to_string(c.groups) +
               ")");
  if (2 * c.angles > c.state)
    return bad("config 'angles' (" + std::to_string(c.angles) +
               ") exceeds state / 2");
  if (!c.mimo && c.rank != 1)
    return bad("config 'rank' is " + std::to_string(c.rank) +
               " without 'mimo'");
  if (c.perRankOutputs && !c.mimo)
    return bad("config 'per_rank_outputs' without 'mimo'");
  if (c.varlen && m.isStep())
    return bad("a step with 'varlen'");
  if (c.rmsNorm && !(std::isfinite(c.normEps) && c.normEps > 0))
    return bad("config 'norm_eps' is not a positive finite number");
  if (m.chunkSize < 0 || m.chunkSize > 1024)
    return bad("'chunk_size' is " + std::to_string(m.chunkSize) +
               ", outside [0, 1024]");
  for (auto [name, dtype] :
       {std::pair<const char *, const std::string *>{"dtype", &m.dtype},
        {"trap_dtype", &m.trapDtype},
        {"bias_dtype", &m.biasDtype},
        {"k_state_dtype", &m.kStateDtype},
        {"v_state_dtype", &m.vStateDtype}})
    if (!isFloatDtype(*dtype))
      return bad("config '" + std::string(name) + "' is '" + *dtype +
                 "', not 'f32', 'bf16' or 'f16'");
  if (m.target != "cpu" && m.target != "sm_90a")
    return bad("'target' is '" + m.target + "', not 'cpu' or 'sm_90a'");

  // The library is a file of the bundle, not a path elsewhere.
  if (m.library.empty() || m.library.find('/') != std::string::npos ||
      m.library == "." || m.library == "..")
    return bad("'library' is '" + m.library +
               "', not a file name inside the bundle");
  if (m.ptx.empty() || m.ptx.find('/') != std::string::npos || m.ptx == "." ||
      m.ptx == ".." || m.ptx == "manifest.json" || m.ptx == m.library)
    return bad("'ptx' is '" + m.ptx + "', not a file name inside the bundle "
               "beside the library");
  // The entry and the kernels are the ones mamba3-compile names for the
  // kind; any other symbol (abort, exit, an inner function) is refused.
  if (m.target == "cpu" && m.entry != "_mlir_ciface_mamba3_" + m.kind)
    return bad("'entry' is '" + m.entry + "', not '_mlir_ciface_mamba3_" +
               m.kind + "' (the C-interface wrapper of a " + m.kind + ")");
  for (size_t i = 0; i < m.launches.size(); ++i) {
    const std::string &k = m.launches[i].kernel;
    const std::string stem = "mamba3_" + m.kind;
    if (k != stem && k != stem + "_chunk_states" &&
        k != stem + "_chunk_boundaries" && k != stem + "_chunk_outputs")
      return bad("launches[" + std::to_string(i) + "] names kernel '" + k +
                 "', not one of " + stem + "[_chunk_states|_chunk_boundaries|"
                 "_chunk_outputs]");
  }

  // The launch-time values the kernels take: what a kernel's signature
  // holds follows from the config and the schedule, so a list that differs
  // would shift every parameter.
  const bool gpu = m.target != "cpu";
  const bool chunkParallel = m.chunksPerBlock >= 0;
  if (!gpu && (!m.launches.empty() || !m.scratch.empty() ||
               !m.parameters.empty() || chunkParallel))
    return bad("a CPU bundle with GPU launches, scratch, parameters or "
               "chunks_per_block");
  if (gpu) {
    std::vector<std::string> params;
    if (!m.isStep() && m.config.seqlen < 0)
      params.push_back("seqlen");
    if (m.chunksPerBlock == 0)
      params.push_back("chunks_per_block");
    if (m.parameters != params) {
      std::string want;
      for (const std::string &p : params)
        want += (want.empty() ? "" : ", ") + p;
      return bad("'parameters' does not list what the kernels of this "
                 "configuration take (" +
                 (want.empty() ? std::string("none") : want) + ")");
    }
    if (m.schedule != "tokens" && m.schedule != "chunked" &&
        m.schedule != "chunk-parallel")
      return bad("'schedule' is '" + m.schedule +
                 "', not 'tokens', 'chunked' or 'chunk-parallel'");
    if (chunkParallel != (m.schedule == "chunk-parallel") ||
        chunkParallel != (m.launches.size() == 3))
      return bad("'chunks_per_block' belongs to the three launches of the "
                 "chunk-parallel schedule");
    if (chunkParallel && (m.chunkSize == 0 || m.isStep()))
      return bad("a chunk-parallel bundle without a chunk size");
    bool spans = false;
    for (const BundleManifest::Launch &l : m.launches)
      for (const std::string &g : l.grid)
        spans |= g == "spans";
    for (const BundleManifest::Scratch &b : m.scratch)
      for (const std::string &d : b.shape)
        spans |= d == "spans";
    if (spans && !chunkParallel)
      return bad("'spans' sizes a grid or scratch buffer outside the "
                 "chunk-parallel schedule");
  }

  // The config string the library's digest covers must be the one the
  // fields state, and its hash the recorded one.
  const std::string canonical = canonicalConfigString(m);
  if (m.configString != canonical)
    return bad("'config_string' is '" + m.configString +
               "', but the config fields state '" + canonical + "'");
  const std::string hash = hex16(fnv1a(kFnvBasis, m.configString));
  if (m.configHash != hash)
    return bad("'config_hash' " + m.configHash + " is not the hash of "
               "'config_string' (" + hash + ")");

  // The argument list the configuration implies, one by one.
  std::vector<BundleArgument> want = expectedBundleArguments(m);
  for (size_t i = 0; i < std::max(want.size(), m.arguments.size()); ++i) {
    std::string at = "arguments[" + std::to_string(i) + "]";
    if (i >= m.arguments.size())
      return bad("the configuration implies " + std::to_string(want.size()) +
                 " arguments, the manifest lists " +
                 std::to_string(m.arguments.size()) + "; missing " +
                 describe(want[i]));
    if (i >= want.size())
      return bad("the configuration implies " + std::to_string(want.size()) +
                 " arguments, the manifest lists " +
                 std::to_string(m.arguments.size()) + "; " + at + " " +
                 describe(m.arguments[i]) + " is extra");
    const BundleArgument &got = m.arguments[i], &w = want[i];
    if (got.name != w.name || got.isOutput != w.isOutput ||
        got.dtype != w.dtype || got.axes != w.axes || got.shape != w.shape)
      return bad(at + " is " + describe(got) +
                 ", but the configuration implies " + describe(w));
  }

  return "";
}


std::string bundleFileDigest(const std::string &bytes,
                             const std::string &configString) {
  return "fnv1a64:" + hex16(fnv1a(fnv1a(kFnvBasis, bytes), "\n" + configString));
}

std::string canonicalConfigString(const BundleManifest &m) {
  const LayerConfig &c = m.config;
  const bool step = m.isStep();
  auto dim = [](int64_t v) { return v < 0 ? std::string("?") : std::to_string(v); };
  auto flag = [](bool v) { return std::string(v ? "1" : "0"); };
  std::string s = "kind=" + m.kind + ";batch=" + dim(c.batch) +
                  ";seqlen=" + (step ? std::string("-") : dim(c.seqlen)) +
                  ";heads=" + std::to_string(c.heads) +
                  ";groups=" + std::to_string(c.groups) +
                  ";state=" + std::to_string(c.state) +
                  ";headdim=" + std::to_string(c.headdim) +
                  ";angles=" + std::to_string(c.angles) +
                  ";rank=" + std::to_string(c.rank) + ";mimo=" + flag(c.mimo) +
                  ";d=" + flag(c.hasD) + ";z=" + flag(c.hasZ) +
                  ";init=" + flag(step || c.hasInitialState) +
                  ";wrap=" + flag(c.wrapAngle) +
                  ";broadcast_angles=" + flag(c.broadcastAngles) +
                  ";varlen=" + flag(c.varlen);
  if (!m.finalStates)
    s += ";final_states=0";
  if (c.perRankOutputs)
    s += ";per_rank_outputs=1";
  if (c.rmsNorm) {
    char eps[32];
    std::snprintf(eps, sizeof eps, "%g", static_cast<double>(static_cast<float>(c.normEps)));
    s += std::string(";rmsnorm=1;norm_eps=") + eps;
  }
  s += std::string(";state_dtype=") + (c.bf16State ? "bf16" : "f32") +
       ";rule=" + (c.rule == Discretization::Euler ? "euler" : "trapezoid") +
       ";pairing=" +
       (c.pairing == RotaryPairing::HalfSplit ? "half_split" : "adjacent") +
       ";dtype=" + m.dtype;
  for (auto [name, dtype] :
       {std::pair<const char *, const std::string *>{"trap_dtype", &m.trapDtype},
        {"bias_dtype", &m.biasDtype},
        {"k_state_dtype", &m.kStateDtype},
        {"v_state_dtype", &m.vStateDtype}})
    if (*dtype != "f32")
      s += ";" + std::string(name) + "=" + *dtype;
  // A variant of a bundle of several states the top level's chunk (the
  // config string is the bundle's).
  return s + ";chunk=" +
         std::to_string(m.configChunkSize >= 0 ? m.configChunkSize
                                               : m.chunkSize);
}

std::string gpuLaunchString(const BundleManifest &m) {
  auto list = [](const auto &values) {
    std::string out;
    for (const auto &v : values) {
      if (!out.empty())
        out += ",";
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>)
        out += v;
      else
        out += std::to_string(v);
    }
    return out;
  };
  std::string s = "schedule=" + m.schedule +
                  ";chunk=" + std::to_string(m.chunkSize) +
                  ";chunks_per_block=" + std::to_string(m.chunksPerBlock);
  if (m.chunksPerBlock == 0)
    s += ";blocks_per_sm=" + std::to_string(m.blocksPerSm);
  if (m.seqlenMultiple > 0)
    s += ";seqlen_multiple=" + std::to_string(m.seqlenMultiple) +
         ";specializes=" + m.specializes;
  s += ";launches=";
  for (size_t i = 0; i < m.launches.size(); ++i) {
    const BundleManifest::Launch &l = m.launches[i];
    s += (i ? "|" : "") + l.kernel + "@" + list(l.grid) + "@" + list(l.block) +
         "@" + std::to_string(l.dynamicSharedBytes);
  }
  s += ";scratch=";
  for (size_t i = 0; i < m.scratch.size(); ++i) {
    const BundleManifest::Scratch &b = m.scratch[i];
    s += (i ? "|" : "") + b.name + "@" + std::to_string(b.elementBytes) + "@" +
         list(b.shape);
  }
  s += ";maps=";
  for (size_t i = 0; i < m.tensorMaps.size(); ++i) {
    const BundleManifest::TensorMap &t = m.tensorMaps[i];
    s += (i ? "|" : "") + std::to_string(t.argument) + "@" + list(t.box) +
         "@" + std::to_string(t.swizzleBytes);
  }
  return s + ";parameters=" + list(m.parameters);
}

std::string gpuDigestKey(const BundleManifest &m) {
  return m.configString + "\n" + gpuLaunchString(m);
}

std::string checkBundleFileDigest(const std::string &name,
                                  const std::string &bytes,
                                  const std::string &expected,
                                  const std::string &configString) {
  std::string got = bundleFileDigest(bytes, configString);
  if (got == expected)
    return "";
  return name + " is not the file this bundle's manifest was written with "
                "(digest " + got + ", the manifest records " + expected +
         "): it was swapped from another bundle, cut short or damaged, or "
         "the manifest's fields it is bound to were edited; "
         "rebuild the bundle with mamba3-compile, or copy the whole bundle "
         "directory again";
}

std::string checkSharedObjectFile(const std::string &path,
                                  const std::string &expectedDigest,
                                  const std::string &configString) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return "cannot read " + path;
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(file)),
                                   std::istreambuf_iterator<char>());
  const uint64_t size = bytes.size();
  const std::string damaged =
      path + " is not a complete kernel library (";
  const std::string tail = "); rebuild the bundle with mamba3-compile";
  if (size < sizeof(Elf64_Ehdr))
    return damaged + std::to_string(size) + " bytes, shorter than an ELF "
                                            "header" + tail;
  Elf64_Ehdr h;
  std::copy(bytes.begin(), bytes.begin() + sizeof h,
            reinterpret_cast<unsigned char *>(&h));
  if (h.e_ident[EI_MAG0] != ELFMAG0 || h.e_ident[EI_MAG1] != ELFMAG1 ||
      h.e_ident[EI_MAG2] != ELFMAG2 || h.e_ident[EI_MAG3] != ELFMAG3)
    return damaged + "no ELF magic" + tail;
  if (h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_ident[EI_DATA] != ELFDATA2LSB)
    return damaged + "not a 64-bit little-endian ELF file" + tail;
  if (h.e_type != ET_DYN)
    return damaged + "not a shared object" + tail;
#if defined(__x86_64__)
  if (h.e_machine != EM_X86_64)
    return damaged + "built for another machine than x86-64" + tail;
#elif defined(__aarch64__)
  if (h.e_machine != EM_AARCH64)
    return damaged + "built for another machine than AArch64" + tail;
#endif
  auto fits = [&](uint64_t offset, uint64_t count, uint64_t entry) {
    return offset <= size && entry != 0 && count <= (size - offset) / entry;
  };
  if (h.e_phentsize != sizeof(Elf64_Phdr) ||
      !fits(h.e_phoff, h.e_phnum, h.e_phentsize))
    return damaged + "program headers past the end of the file" + tail;
  if (h.e_shnum != 0 && (h.e_shentsize != sizeof(Elf64_Shdr) ||
                         !fits(h.e_shoff, h.e_shnum, h.e_shentsize)))
    return damaged + "section headers past the end of the file" + tail;
  for (unsigned i = 0; i < h.e_phnum; ++i) {
    Elf64_Phdr p;
    std::copy(bytes.begin() + h.e_phoff + i * sizeof p,
              bytes.begin() + h.e_phoff + (i + 1) * sizeof p,
              reinterpret_cast<unsigned char *>(&p));
    if (p.p_type == PT_LOAD &&
        (p.p_offset > size || p.p_filesz > size - p.p_offset))
      return damaged + "a loaded segment past the end of the file: " +
             std::to_string(size) + " bytes, the segment ends at " +
             std::to_string(p.p_offset + p.p_filesz) + tail;
  }
  return checkBundleFileDigest(path, std::string(bytes.begin(), bytes.end()),
                               expectedDigest, configString);
}

} // namespace mamba3
