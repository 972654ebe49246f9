// RUN: mamba3-opt %s -ssm-chunk=chunk-size=0 -verify-diagnostics
// RUN: mamba3-opt %s -ssm-chunk=chunk-size=4096 -verify-diagnostics

// Chunk sizes outside [1, 1024] are refused before anything is rewritten.
// expected-error @below {{ssm-chunk: chunk-size must be in [1, 1024], got}}
module {
  func.func @any() {
    return
  }
}
