//===- Process.h - Running the compiler from the MLIR-free tools -*- C++ -*-===//
//
// mamba3-run and mamba3-tune link no MLIR: when they need a bundle compiled
// they run the mamba3-compile program found next to them.
//
//===----------------------------------------------------------------------===//
#ifndef MAMBA3_TOOLS_PROCESS_H
#define MAMBA3_TOOLS_PROCESS_H

#include <string>
#include <vector>

namespace mamba3::tools {

/// The directory holding this executable, from /proc/self/exe (argv[0] may
/// be a bare name found through PATH); empty when unknown.
std::string executableDirectory();

/// The whole text of `path` (empty when it cannot be read).
std::string readFile(const std::string &path);

/// Runs `program` with `args`, its stdout and stderr going to `logPath`.
/// Returns false and sets `error` (the command, its status and its log)
/// when it cannot start or does not exit 0.
bool runProgram(const std::string &program,
                const std::vector<std::string> &args,
                const std::string &logPath, std::string &error);

} // namespace mamba3::tools

#endif // MAMBA3_TOOLS_PROCESS_H
