//===- BundleWriter.cpp - Kernel bundles on disk --------------------------===//

#include "codegen/BundleWriter.h"

#include <cstdio>
#include <cstdlib>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::ssm;
namespace json = llvm::json;

/// A float as the decimal it was written as (1e-05, not 9.99999975e-06).
static double shortDecimal(float value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", static_cast<double>(value));
  return std::strtod(text, nullptr);
}

static int64_t manifestDim(int64_t size) {
  return ShapedType::isDynamic(size) ? -1 : size;
}

/// A GPU variant's launch fields in one line, as the runtime's
/// gpuLaunchString rebuilds them from the manifest: its kernel files'
/// digests are taken over the config string and this, so that the runtime
/// refuses a manifest whose launches, scratch, tensor maps or parameters
/// were edited.
static std::string gpuLaunchString(const GpuKernelBuild &k) {
  std::string s;
  llvm::raw_string_ostream os(s);
  auto value = [&](const json::Value &v) {
    if (std::optional<int64_t> n = v.getAsInteger())
      os << *n;
    else
      os << v.getAsString().value_or("");
  };
  auto values = [&](auto begin, auto end) {
    for (auto it = begin; it != end; ++it) {
      if (it != begin)
        os << ",";
      value(*it);
    }
  };
  auto ints = [&](llvm::ArrayRef<int64_t> list) {
    llvm::interleave(list, os, ",");
  };
  os << "schedule=" << k.schedule << ";chunk=" << k.chunkSize
     << ";chunks_per_block=" << k.chunksPerBlock;
  if (k.chunksPerBlock == 0)
    os << ";blocks_per_sm=" << k.blocksPerSm;
  if (k.seqlenMultiple > 0)
    os << ";seqlen_multiple=" << k.seqlenMultiple << ";specializes="
       << k.specializes;
  os << ";launches=";
  for (auto [i, l] : llvm::enumerate(k.launches)) {
    os << (i ? "|" : "") << l.kernel << "@";
    values(l.grid.begin(), l.grid.end());
    os << "@";
    ints(l.block);
    os << "@" << l.dynamicSharedBytes;
  }
  os << ";scratch=";
  for (auto [i, b] : llvm::enumerate(k.scratch)) {
    os << (i ? "|" : "") << b.name << "@" << b.elementBytes << "@";
    values(b.shape.begin(), b.shape.end());
  }
  os << ";maps=";
  for (auto [i, t] : llvm::enumerate(k.tensorMaps)) {
    os << (i ? "|" : "") << t.argument << "@";
    ints(t.box);
    os << "@" << t.swizzleBytes;
  }
  os << ";parameters=";
  llvm::interleave(k.parameters, os, ",");
  return s;
}

/// The fields a GPU variant has of its own, into `manifest` (the top level
/// or an entry of "variants"); its kernel files are `stem`.cubin / .ptx.
static void addGpuVariantFields(json::Object &manifest,
                                const GpuKernelBuild &gpu,
                                llvm::StringRef stem) {
  manifest["library"] = (stem + ".cubin").str();
  manifest["ptx"] = (stem + ".ptx").str();
  if (!gpu.variant.empty())
    manifest["variant"] = gpu.variant;
  if (gpu.seqlenMultiple > 0) {
    manifest["seqlen_multiple"] = gpu.seqlenMultiple;
    manifest["specializes"] = gpu.specializes;
  }
  manifest["chunk_size"] = gpu.chunkSize;
  manifest["pipeline"] = gpu.pipeline;
  manifest["pass_pipeline"] = gpu.passPipeline;
  manifest["schedule"] = gpu.schedule;
  if (!gpu.scheduleReason.empty())
    manifest["schedule_reason"] = gpu.scheduleReason;
  json::Array launches;
  for (const GpuLaunchBuild &l : gpu.launches) {
    KernelResources r = gpu.cubin.resourcesOf(l.kernel);
    launches.push_back(json::Object{
        {"kernel", l.kernel},
        {"grid", json::Array{l.grid[0], l.grid[1], l.grid[2]}},
        {"block", json::Array{l.block[0], l.block[1], l.block[2]}},
        {"dynamic_shared_bytes", l.dynamicSharedBytes},
        {"ptxas", json::Object{{"registers", r.registers},
                               {"spill_store_bytes", r.spillStoreBytes},
                               {"spill_load_bytes", r.spillLoadBytes},
                               {"stack_bytes", r.stackBytes},
                               {"shared_bytes", r.sharedBytes}}}});
  }
  manifest["launches"] = std::move(launches);
  json::Array scratch;
  for (const GpuScratchBuild &b : gpu.scratch)
    scratch.push_back(json::Object{{"name", b.name},
                                   {"element_bytes", b.elementBytes},
                                   {"shape", json::Array(b.shape)}});
  manifest["scratch"] = std::move(scratch);
  json::Array parameters;
  for (const std::string &p : gpu.parameters)
    parameters.push_back(p);
  manifest["parameters"] = std::move(parameters);
  if (gpu.chunksPerBlock >= 0) {
    manifest["chunks_per_block"] = gpu.chunksPerBlock;
    if (gpu.chunksPerBlock == 0)
      manifest["blocks_per_sm"] = gpu.blocksPerSm;
  }
  json::Array maps;
  for (const GpuTensorMapBuild &t : gpu.tensorMaps)
    maps.push_back(json::Object{{"name", t.name},
                                {"argument", t.argument},
                                {"box", json::Array(t.box)},
                                {"swizzle_bytes", t.swizzleBytes}});
  manifest["tensor_maps"] = std::move(maps);
}

json::Object mlir::ssm::buildManifest(const LayerSpec &spec,
                                      const BundleDescription &description,
                                      const GpuKernelBuild *gpu) {
  json::Object config{
      {"batch", manifestDim(spec.batch)},
      // A step is one token; its inputs have no sequence axis.
      {"seqlen", spec.step ? int64_t(1) : manifestDim(spec.seqlen)},
      {"heads", spec.heads},
      {"groups", spec.groups},
      {"state", spec.state},
      {"headdim", spec.headdim},
      {"angles", spec.angles},
      {"rank", spec.rank},
      {"mimo", spec.mimo},
      {"has_d", spec.hasD},
      {"has_z", spec.hasZ},
      {"broadcast_angles", spec.broadcastAngles},
      {"varlen", spec.varlen},
      {"rmsnorm", spec.rmsNorm},
      {"norm_eps", shortDecimal(spec.normEps)},
      {"state_dtype", spec.bf16State ? "bf16" : "f32"},
      {"has_initial_state", spec.step || spec.hasInitialState},
      {"final_states", spec.finalStates},
      {"per_rank_outputs", spec.perRankOutputs},
      {"wrap_angle", spec.wrapAngle},
      {"rule", stringifyDiscretizationRule(spec.rule)},
      {"pairing", stringifyRotaryPairing(spec.pairing)},
      {"dtype", stringifyLayerDataType(spec.dataType)},
      {"trap_dtype", stringifyLayerDataType(spec.trapType)},
      {"bias_dtype", stringifyLayerDataType(spec.biasType)},
      {"k_state_dtype", stringifyLayerDataType(spec.kStateType)},
      {"v_state_dtype", stringifyLayerDataType(spec.vStateType)},
  };

  json::Array arguments;
  for (auto [index, arg] : llvm::enumerate(getLayerArguments(spec))) {
    json::Array shape;
    for (int64_t size : arg.shape)
      shape.push_back(manifestDim(size));
    json::Array axes;
    for (const std::string &axis : arg.axes)
      axes.push_back(axis);
    arguments.push_back(json::Object{
        {"index", static_cast<int64_t>(index)},
        {"name", arg.name},
        {"role", arg.isOutput ? "output" : "input"},
        {"dtype", stringifyLayerDataType(argumentDataType(spec, arg))},
        {"axes", std::move(axes)},
        {"shape", std::move(shape)},
    });
  }

  json::Object manifest{
      {"format", "mamba3-bundle"},
      {"format_version", kBundleFormatVersion},
      {"target", description.target},
      {"kind", spec.kindName()},
      {"config", std::move(config)},
      {"chunk_size", spec.chunkSize},
      {"pipeline", description.pipeline},
      {"pass_pipeline", description.passPipeline},
      {"config_string", spec.canonicalString()},
      {"config_hash", spec.configHash()},
      {"arguments", std::move(arguments)},
  };
  if (!gpu) {
    std::string cpu = description.host.cpu == "native"
                          ? llvm::sys::getHostCPUName().str()
                          : description.host.cpu;
    manifest["library"] = "kernel.so";
    manifest["entry"] = "_mlir_ciface_" + spec.entryName();
    manifest["calling_convention"] =
        "mlir-c-interface: one StridedMemRef descriptor pointer per argument";
    manifest["host"] =
        json::Object{{"triple", llvm::sys::getProcessTriple()}, {"cpu", cpu}};
    return manifest;
  }
  manifest["entry"] = spec.entryName();
  manifest["calling_convention"] =
      "bare-pointers: one device pointer per argument, then one per scratch "
      "buffer, then one per tensor map, then one i64 per parameter";
  addGpuVariantFields(manifest, *gpu, "kernel");
  return manifest;
}

std::string mlir::ssm::bundleFileDigest(llvm::StringRef bytes,
                                        llvm::StringRef configString) {
  // FNV-1a, 64 bit, over the file and then "\n" + the config string: the
  // runtime computes the same without a crypto library, and a library is
  // tied to the one configuration it was compiled for. It guards against
  // accidents (a file from another bundle, an edited manifest, a cut copy),
  // not against someone forging a bundle.
  uint64_t h = fnv1a64(configString, fnv1a64("\n", fnv1a64(bytes)));
  std::string s;
  llvm::raw_string_ostream(s) << "fnv1a64:" << llvm::format_hex_no_prefix(h, 16);
  return s;
}

void mlir::ssm::printManifest(llvm::raw_ostream &os,
                              const json::Object &manifest) {
  // llvm::json prints object keys sorted; a reader wants the identity of the
  // kernel first and one line per argument, so the top level is laid out by
  // hand (nested values are compact JSON).
  static const char *const order[] = {
      "format",     "format_version", "target",        "kind",
      "library",    "library_digest", "ptx_digest",    "entry",
      "calling_convention", "config_hash",
      "config",     "chunk_size",     "pipeline",      "host",
      "ptx",        "variant",        "schedule",      "schedule_reason",
      "chunks_per_block", "blocks_per_sm", "parameters", "launches",
      "scratch",
      "tensor_maps", "dispatch", "variants",
      "config_string", "pass_pipeline", "arguments"};
  llvm::SmallVector<llvm::StringRef> keys(std::begin(order), std::end(order));
  for (const auto &member : manifest)
    if (!llvm::is_contained(keys, member.first.str()))
      keys.push_back(member.first);
  os << "{";
  bool first = true;
  for (llvm::StringRef key : keys) {
    const json::Value *value = manifest.get(key);
    if (!value)
      continue;
    os << (first ? "\n" : ",\n") << "  " << json::Value(key) << ": ";
    first = false;
    const json::Array *array = value->getAsArray();
    if ((key != "arguments" && key != "launches" && key != "variants") ||
        !array) {
      os << *value;
      continue;
    }
    os << "[";
    for (auto [i, item] : llvm::enumerate(*array))
      os << (i ? ",\n    " : "\n    ") << item;
    os << "\n  ]";
  }
  os << "\n}\n";
}

static llvm::Error writeFile(llvm::StringRef path,
                             llvm::function_ref<void(llvm::raw_ostream &)> fn) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return llvm::createStringError("cannot write '" + path +
                                   "': " + ec.message());
  fn(os);
  os.close();
  if (os.has_error())
    return llvm::createStringError("error writing '" + path + "'");
  return llvm::Error::success();
}

/// Writes a bundle into `dir`: creates it, drops any old manifest (it must
/// not describe a half-written new bundle), writes kernel.mlir, lets
/// `writeKernel` add the target's files, then writes manifest.json last.
static llvm::Error writeBundle(
    llvm::StringRef dir, ModuleOp inputModule,
    llvm::function_ref<llvm::Error(llvm::function_ref<std::string(llvm::StringRef)>)>
        writeKernel,
    const json::Object &manifest, llvm::StringRef digestKey) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return llvm::createStringError("cannot create the bundle directory '" +
                                   dir + "': " + ec.message());
  auto path = [&](llvm::StringRef name) {
    llvm::SmallString<256> p(dir);
    llvm::sys::path::append(p, name);
    return std::string(p);
  };
  llvm::sys::fs::remove(path("manifest.json"));
  if (llvm::Error err = writeFile(path("kernel.mlir"), [&](llvm::raw_ostream &os) {
        inputModule->print(os);
      }))
    return err;
  if (llvm::Error err = writeKernel(path))
    return err;
  // Digests of the kernel files: the runtime refuses a library that is not
  // the one this manifest was written with (swapped from another bundle,
  // truncated, damaged).
  json::Object withDigests = manifest;
  auto digestOf = [&](llvm::StringRef name) -> llvm::Expected<std::string> {
    auto buffer = llvm::MemoryBuffer::getFile(path(name));
    if (!buffer)
      return llvm::createStringError("cannot read back '" + path(name) +
                                     "': " + buffer.getError().message());
    return bundleFileDigest((*buffer)->getBuffer(), digestKey);
  };
  if (std::optional<llvm::StringRef> library =
          manifest.getString("library")) {
    auto digest = digestOf(*library);
    if (!digest)
      return digest.takeError();
    withDigests["library_digest"] = *digest;
  }
  if (llvm::sys::fs::exists(path("kernel.ptx")) && manifest.get("ptx")) {
    auto digest = digestOf("kernel.ptx");
    if (!digest)
      return digest.takeError();
    withDigests["ptx_digest"] = *digest;
  }
  return writeFile(path("manifest.json"), [&](llvm::raw_ostream &os) {
    printManifest(os, withDigests);
  });
}

llvm::Error mlir::ssm::writeCpuBundle(llvm::StringRef dir,
                                      const LayerSpec &spec,
                                      ModuleOp inputModule,
                                      ModuleOp llvmModule,
                                      const BundleDescription &description) {
  return writeBundle(
      dir, inputModule,
      [&](llvm::function_ref<std::string(llvm::StringRef)> path) {
        return compileToSharedLibrary(llvmModule, description.host,
                                      path("kernel.so"));
      },
      buildManifest(spec, description), spec.canonicalString());
}

llvm::Error mlir::ssm::writeGpuBundle(llvm::StringRef dir,
                                      const LayerSpec &spec,
                                      ModuleOp inputModule,
                                      llvm::ArrayRef<GpuKernelBuild> variants,
                                      const GpuDispatchBuild &dispatch,
                                      const BundleDescription &description) {
  if (variants.empty())
    return llvm::createStringError("a GPU bundle needs a kernel");
  auto stemOf = [&](size_t i) {
    return i == 0 ? std::string("kernel") : "kernel-" + variants[i].variant;
  };
  json::Object manifest = buildManifest(spec, description, &variants[0]);
  if (variants.size() > 1) {
    // The other variants' digests come from their bytes here; the first
    // variant's, as every bundle's, from the files read back.
    const std::string config = spec.canonicalString();
    json::Array others;
    for (size_t i = 1; i < variants.size(); ++i) {
      json::Object v;
      addGpuVariantFields(v, variants[i], stemOf(i));
      const std::string key = config + "\n" + gpuLaunchString(variants[i]);
      v["library_digest"] = bundleFileDigest(variants[i].cubin.cubin, key);
      v["ptx_digest"] = bundleFileDigest(variants[i].ptx, key);
      others.push_back(std::move(v));
    }
    manifest["variants"] = std::move(others);
    json::Array table;
    for (const GpuDispatchBuild::Row &row : dispatch.table)
      table.push_back(json::Object{
          {"batch", json::Array{row.batchMin, row.batchMax}},
          {"seqlen", json::Array{row.seqlenMin, row.seqlenMax}},
          {"variant", row.variant}});
    manifest["dispatch"] =
        json::Object{{"source", dispatch.source}, {"table", std::move(table)}};
  }
  return writeBundle(
      dir, inputModule,
      [&](llvm::function_ref<std::string(llvm::StringRef)> path) -> llvm::Error {
        for (size_t i = 0; i < variants.size(); ++i) {
          const GpuKernelBuild &kernel = variants[i];
          std::string ptxPath = path(stemOf(i) + ".ptx");
          std::string cubinPath = path(stemOf(i) + ".cubin");
          if (llvm::Error err = writeFile(
                  ptxPath, [&](llvm::raw_ostream &os) { os << kernel.ptx; }))
            return err;
          std::error_code ec;
          llvm::raw_fd_ostream os(cubinPath, ec, llvm::sys::fs::OF_None);
          if (ec)
            return llvm::createStringError("cannot write '" + cubinPath +
                                           "': " + ec.message());
          os << kernel.cubin.cubin;
          os.close();
          if (os.has_error())
            return llvm::createStringError("error writing '" + cubinPath + "'");
        }
        return llvm::Error::success();
      },
      manifest, spec.canonicalString() + "\n" + gpuLaunchString(variants[0]));
}
