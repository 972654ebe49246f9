// Loads a bundle through the installed library's C API and C++ classes, and
// launches it on host buffers (a CPU bundle): argv[1] is the bundle folder.
#include <mamba3/CpuBundle.h>
#include <mamba3/Launch.h>
#include <mamba3/mamba3.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (mamba3_api_version() != MAMBA3_C_API_VERSION)
    return std::printf("C API version mismatch\n"), 1;
  if (mamba3_bundle_load("/nonexistent-bundle", 0) ||
      std::string(mamba3_last_error()).find("no bundle there") == std::string::npos)
    return std::printf("a missing bundle was not reported: %s\n", mamba3_last_error()), 1;
  if (argc < 2)
    return 0;
  mamba3_bundle *bundle = mamba3_bundle_load(argv[1], 0);
  if (!bundle)
    return std::printf("load: %s\n", mamba3_last_error()), 1;
  // Inputs of ones, outputs zeroed, shapes from the manifest (batch 1, seqlen 4).
  std::string error;
  mamba3::BundleManifest m;
  if (!mamba3::loadBundleManifest(argv[1], m, error))
    return std::printf("%s\n", error.c_str()), 1;
  mamba3::LayerConfig cfg;
  mamba3::launchConfig(m, mamba3::LaunchShape{1, 4}, cfg, error);
  std::vector<std::vector<int64_t>> shapes;
  mamba3::argumentShapes(m, cfg, shapes, error);
  std::vector<std::vector<float>> data(shapes.size());
  std::vector<mamba3_buffer> args(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    size_t n = 1;
    for (int64_t d : shapes[i])
      n *= static_cast<size_t>(d);
    data[i].assign(n, m.arguments[i].isOutput ? 0.0f : (m.arguments[i].name == "ADT" ? -0.5f : 0.25f));
    args[i].data = data[i].data();
    args[i].dtype = MAMBA3_DTYPE_F32;
    args[i].rank = static_cast<int32_t>(shapes[i].size());
    for (size_t d = 0; d < shapes[i].size(); ++d)
      args[i].shape[d] = shapes[i][d];
  }
  if (mamba3_bundle_launch(bundle, 1, 4, args.data(), static_cast<int32_t>(args.size()), nullptr, 0,
                           nullptr))
    return std::printf("launch: %s\n", mamba3_last_error()), 1;
  // A launch with one argument fewer is refused with the count.
  if (!mamba3_bundle_launch(bundle, 1, 4, args.data(), static_cast<int32_t>(args.size() - 1), nullptr, 0,
                            nullptr))
    return std::printf("a short argument list was accepted\n"), 1;
  std::printf("consumer: launched %s (%s); short list: %s\n", argv[1], mamba3_bundle_kind(bundle),
              mamba3_last_error());
  mamba3_bundle_free(bundle);
  return 0;
}
