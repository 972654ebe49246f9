//===- Process.cpp - Running the compiler from the MLIR-free tools --------===//

#include "common/Process.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace mamba3::tools {

std::string executableDirectory() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return "";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

std::string readFile(const std::string &path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool runProgram(const std::string &program,
                const std::vector<std::string> &args,
                const std::string &logPath, std::string &error) {
  // posix_spawn rather than system(): no shell, so no quoting of paths.
  std::vector<char *> argv;
  argv.push_back(const_cast<char *>(program.c_str()));
  for (const std::string &arg : args)
    argv.push_back(const_cast<char *>(arg.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logPath.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(),
                       environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    error = "cannot run " + program + ": " + std::strerror(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      error = "waiting for " + program + ": " + std::strerror(errno);
      return false;
    }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return true;
  std::string command = program;
  for (const std::string &arg : args)
    command += " " + arg;
  std::string log = readFile(logPath);
  while (!log.empty() && log.back() == '\n')
    log.pop_back();
  error = command + "\n  " +
          (WIFEXITED(status)
               ? "exited with status " + std::to_string(WEXITSTATUS(status))
               : "was killed by signal " + std::to_string(WTERMSIG(status))) +
          (log.empty() ? "" : ":\n" + log);
  return false;
}

} // namespace mamba3::tools
