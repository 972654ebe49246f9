/*===- mamba3.h - C API of the Mamba-3 kernel runtime -------------*- C -*-===*\
|*                                                                            *|
|* A stable C interface over the runtime (libmamba3_runtime.so), for          *|
|* bindings (the Python package loads it with ctypes) and for programs that   *|
|* do not want the C++ classes. Loading a bundle checks it; a launch checks   *|
|* its buffers against the manifest and then only enqueues work:             *|
|*                                                                            *|
|*   mamba3_bundle *b = mamba3_bundle_load("bundle-dir", 0);                   *|
|*   if (!b) fprintf(stderr, "%s\n", mamba3_last_error());                    *|
|*   mamba3_buffer args[...];   // one per manifest argument, in its order    *|
|*   mamba3_bundle_launch(b, batch, seqlen, args, nargs, ws, ws_bytes, stream);*|
|*                                                                            *|
|* GPU bundles take device pointers and a CUstream (0: the legacy default     *|
|* stream); CPU bundles take host pointers and run before the call returns.   *|
|* Every function is safe to call from several threads; errors are kept per  *|
|* thread.                                                                    *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#ifndef MAMBA3_C_API_H
#define MAMBA3_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface; bumped when a signature changes. */
#define MAMBA3_C_API_VERSION 1

/* Element types of mamba3_buffer. F64 only for mamba3_bundle_reference. */
enum {
  MAMBA3_DTYPE_F32 = 0,
  MAMBA3_DTYPE_BF16 = 1,
  MAMBA3_DTYPE_I32 = 2,
  MAMBA3_DTYPE_F64 = 3,
  MAMBA3_DTYPE_F16 = 4
};

#define MAMBA3_MAX_RANK 8

/* One argument: a dense, row-major (contiguous) tensor. */
typedef struct mamba3_buffer {
  void *data;
  int32_t dtype;
  int32_t rank;
  int64_t shape[MAMBA3_MAX_RANK];
} mamba3_buffer;

typedef struct mamba3_bundle mamba3_bundle;

/* MAMBA3_C_API_VERSION of the library (compare with the header's). */
int mamba3_api_version(void);

/* The message of the last call that failed on this thread ("" if none). */
const char *mamba3_last_error(void);

/* Loads the bundle in `dir` (manifest.json plus kernel.so or kernel.cubin).
 * GPU bundles load on CUDA device `device` (its primary context, the one
 * PyTorch uses); CPU bundles ignore it. NULL on failure (see
 * mamba3_last_error). */
mamba3_bundle *mamba3_bundle_load(const char *dir, int device);

/* Waits for the bundle's work on the GPU, then frees it. NULL is a no-op. */
void mamba3_bundle_free(mamba3_bundle *bundle);

/* The manifest's target ("cpu", "sm_90a") and kind ("scan", "step"). */
const char *mamba3_bundle_target(const mamba3_bundle *bundle);
const char *mamba3_bundle_kind(const mamba3_bundle *bundle);

/* Bytes of the workspace a launch of this shape needs (0: none), or -1 on a
 * shape the bundle does not take. */
int64_t mamba3_bundle_workspace_bytes(const mamba3_bundle *bundle,
                                      int64_t batch, int64_t seqlen);

/* Launches the bundle on `nargs` buffers, one per manifest argument in order.
 * `batch` and `seqlen` are the launch shape (varlen: the number of sequences
 * and the packed tokens; a step ignores seqlen). GPU: `workspace` is device
 * memory of mamba3_bundle_workspace_bytes bytes, or NULL for a workspace the
 * bundle owns per stream; `stream` is a CUstream. Returns 0, or -1 with the
 * reason in mamba3_last_error (nothing was launched then). */
int mamba3_bundle_launch(const mamba3_bundle *bundle, int64_t batch,
                         int64_t seqlen, const mamba3_buffer *args,
                         int32_t nargs, void *workspace,
                         int64_t workspace_bytes, void *stream);

/* The float64 reference of the bundle's layer on host buffers laid out like
 * the bundle's arguments (inputs of the manifest's dtypes, outputs F64).
 * Returns 0, or -1 (mamba3_last_error). */
int mamba3_bundle_reference(const mamba3_bundle *bundle, int64_t batch,
                            int64_t seqlen, const mamba3_buffer *args,
                            int32_t nargs);

#ifdef __cplusplus
}
#endif

#endif /* MAMBA3_C_API_H */
