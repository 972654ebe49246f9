//===- IrMutationFuzz.cpp - Seeded mutations of ssm IR, parsed and verified ===//
//
// The IR path must never crash on bad input: every mutant of the corpus is
// either refused with a diagnostic or parsed, verified and handed to the
// compiler's layer-interface check (what mamba3-compile does with an input
// file), which must refuse it with a message or accept it. A crash
// (SIGFPE, SIGSEGV, an assertion) ends the run with a nonzero status; the
// last mutant is written to the output path first, so it can be replayed.
//
//   mamba3-ir-fuzz RUNS SEED LAST_MUTANT_FILE CORPUS.mlir...
//
// Corpus files may hold several inputs split by `// -----` lines.
//
//===----------------------------------------------------------------------===//

#include "codegen/LayerModule.h"
#include "dialect/SsmDialect.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace mlir;

namespace {

std::vector<std::string> splitInputs(const std::string &text) {
  std::vector<std::string> parts;
  std::string current;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("// -----", 0) == 0) {
      parts.push_back(current);
      current.clear();
      continue;
    }
    current += line + "\n";
  }
  parts.push_back(current);
  return parts;
}

/// One mutation of `text`: a number, a type, an operand name, an attribute
/// value, or a line changed, deleted or duplicated.
std::string mutate(std::string text, std::mt19937_64 &rng) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  if (text.empty())
    return text;
  switch (pick(7)) {
  case 0:
  case 1: { // a number (a shape size, an attribute)
    std::vector<size_t> digits;
    for (size_t i = 0; i < text.size(); ++i)
      if (std::isdigit(static_cast<unsigned char>(text[i])) &&
          (i == 0 || !std::isdigit(static_cast<unsigned char>(text[i - 1]))))
        digits.push_back(i);
    if (digits.empty())
      return text;
    size_t at = digits[pick(digits.size())], end = at;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])))
      ++end;
    const char *values[] = {"0", "1", "2", "3", "7", "100000", "2147483648",
                            "9223372036854775807", "99999999999999999999",
                            "-1", "?"};
    text.replace(at, end - at, values[pick(std::size(values))]);
    return text;
  }
  case 2: { // an element type
    const char *types[] = {"f32", "bf16", "f16", "f64", "i32", "i64", "index"};
    std::string from = types[pick(3)];
    size_t at = text.find("x" + from);
    for (size_t skip = pick(8); at != std::string::npos && skip; --skip)
      at = text.find("x" + from, at + 1);
    if (at == std::string::npos)
      return text;
    text.replace(at + 1, from.size(), types[pick(std::size(types))]);
    return text;
  }
  case 3: { // an operand name
    std::vector<size_t> uses;
    for (size_t i = text.find('%'); i != std::string::npos; i = text.find('%', i + 1))
      uses.push_back(i);
    if (uses.size() < 2)
      return text;
    size_t a = uses[pick(uses.size())], b = uses[pick(uses.size())];
    auto nameEnd = [&](size_t i) {
      size_t e = i + 1;
      while (e < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[e])) || text[e] == '_' ||
              text[e] == '#'))
        ++e;
      return e;
    };
    std::string name = text.substr(b, nameEnd(b) - b);
    text.replace(a, nameEnd(a) - a, name);
    return text;
  }
  case 4: { // an attribute value
    const char *from[] = {"adjacent", "half_split", "trapezoid", "euler",
                          "rank = ", "angles = ", "wrap_angle", "bf16}"};
    const char *to[] = {"half_split", "adjacent", "euler", "midpoint",
                        "rank = 0 + ", "angles = 1000", "", "f64}"};
    size_t k = pick(std::size(from));
    size_t at = text.find(from[k]);
    if (at != std::string::npos)
      text.replace(at, std::string(from[k]).size(), to[k]);
    return text;
  }
  default: { // a line deleted, duplicated or cut
    std::vector<size_t> starts = {0};
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n' && i + 1 < text.size())
        starts.push_back(i + 1);
    size_t line = pick(starts.size());
    size_t begin = starts[line];
    size_t end = line + 1 < starts.size() ? starts[line + 1] : text.size();
    std::string content = text.substr(begin, end - begin);
    switch (pick(3)) {
    case 0:
      text.erase(begin, end - begin);
      break;
    case 1:
      text.insert(begin, content);
      break;
    default:
      text.erase(begin + pick(content.size() + 1) / 2);
    }
    return text;
  }
  }
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s RUNS SEED LAST_MUTANT_FILE CORPUS.mlir...\n",
                 argv[0]);
    return 2;
  }
  const long runs = std::atol(argv[1]);
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  const std::string lastPath = argv[3];
  std::vector<std::string> corpus;
  for (int i = 4; i < argc; ++i) {
    std::ifstream f(argv[i]);
    if (!f) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    std::stringstream s;
    s << f.rdbuf();
    for (const std::string &part : splitInputs(s.str()))
      if (part.find("ssm.") != std::string::npos)
        corpus.push_back(part);
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "no ssm inputs in the corpus\n");
    return 2;
  }

  DialectRegistry registry;
  registry.insert<ssm::SsmDialect, func::FuncDialect, tensor::TensorDialect,
                  memref::MemRefDialect, bufferization::BufferizationDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // Diagnostics are the expected outcome for most mutants: count them.
  long diagnostics = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &) {
    ++diagnostics;
    return success();
  });

  long refusedByParser = 0, refusedByInterface = 0, accepted = 0;
  for (long i = 0; i < runs; ++i) {
    std::string text = corpus[rng() % corpus.size()];
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k)
      text = mutate(text, rng);
    {
      std::ofstream last(lastPath, std::ios::trunc);
      last << text;
    }
    OwningOpRef<ModuleOp> module =
        parseSourceString<ModuleOp>(text, ParserConfig(&context));
    if (!module) {
      ++refusedByParser;
      continue;
    }
    FailureOr<ssm::LayerSpec> spec = ssm::layerSpecFromModule(*module);
    if (failed(spec)) {
      ++refusedByInterface;
      continue;
    }
    if (!spec->checkRanges().empty()) {
      ++refusedByInterface;
      continue;
    }
    // What mamba3-compile builds next: the canonical module, verified.
    OwningOpRef<ModuleOp> built =
        ssm::buildLayerModule(context, *spec, module->getLoc());
    if (!built || failed(mlir::verify(*built))) {
      ++refusedByInterface;
      continue;
    }
    ++accepted;
  }
  std::printf("ir mutations: %ld mutants of %zu inputs: %ld refused by the "
              "parser/verifier, %ld by the kernel interface, %ld accepted "
              "(%ld diagnostics, no crash)\n",
              runs, corpus.size(), refusedByParser, refusedByInterface,
              accepted, diagnostics);
  return 0;
}
