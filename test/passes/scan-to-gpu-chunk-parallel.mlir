// RUN: mamba3-opt %s -ssm-gpu-schedule -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s
// RUN: mamba3-opt %s -ssm-gpu-schedule="sm-count=2" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=FILLED
// RUN: mamba3-opt %s -ssm-gpu-schedule="schedule=chunk-parallel chunk-size=128" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=CHUNK128
// RUN: mamba3-opt %s -ssm-gpu-schedule="schedule=chunk-parallel chunks-per-block=3" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=SPANS
// RUN: mamba3-opt %s -ssm-gpu-schedule="chunks-per-block=2" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=FILLED
// RUN: not mamba3-opt %s -ssm-gpu-schedule="sm-count=0" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=SMCOUNT
// RUN: not mamba3-opt %s -ssm-gpu-schedule="chunks-per-block=-1" -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=PERBLOCK

// b * H = 2 blocks leave the GPU idle and L = 200 makes four chunks of 64:
// auto takes the chunk-parallel schedule, three kernels in launch order
// that share four scratch buffers after the op's 16 memrefs. The 2 x 4
// blocks of a chunk each fit on 132 SMs, so each block walks a span of one
// chunk.

// Phase 1: one block per (head, batch, span) walks its span's chunks
// (block z times chunks-per-block to the sequence's end at most) for the
// state contribution only: the state matmuls (4 k-tiles of tokens x 4
// column tiles in the one warp that owns the 16 state rows), no score tiles
// and no output, carrying the product of the chunk decays; it writes the
// contribution, the span's decay and its angles.
// CHECK-LABEL: gpu.func @siso_chunk_states(
// CHECK-SAME: %arg16: memref<1x2x4x16x32xf32> {ssm.scratch = {element_bytes = 4 : i64, name = "chunk_states", shape = ["b", 2, 4, 16, 32]}}, %arg17: memref<1x2x4xf32> {ssm.scratch = {element_bytes = 4 : i64, name = "chunk_decay", shape = ["b", 2, 4]}}, %arg18: memref<1x2x4x8xf32> {ssm.scratch = {element_bytes = 4 : i64, name = "chunk_angle_end", shape = ["b", 2, 4, 8]}}, %arg19: memref<1x2x4x8xf32> {ssm.scratch = {element_bytes = 4 : i64, name = "chunk_angle_start", shape = ["b", 2, 4, 8]}})
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>, known_grid_size = array<i32: 2, 1, 4>, ssm.chunk_size = 64 : i64, ssm.chunks_per_block = 1 : i64, ssm.dynamic_shared_bytes = {{[1-9][0-9]*}} : i64, ssm.grid = ["H", "b", 4], ssm.launch_index = 0 : i64, ssm.schedule = "chunk-parallel"
// CHECK: %[[FIRST:.*]] = arith.muli %block_id_z, %c1
// CHECK: %[[NEXT:.*]] = arith.addi %[[FIRST]], %c1
// CHECK: %[[END:.*]] = arith.minui %[[NEXT]], %c4
// CHECK: %[[LOOP:[0-9]+]]:{{[0-9]+}} = scf.for %{{.*}} = %[[FIRST]] to %[[END]] step
// CHECK-COUNT-16: nvvm.mma.sync
// CHECK-NOT: nvvm.mma.sync
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT: scf.yield
// CHECK: memref.store {{.*}}, %arg16[%block_id_y, %block_id_x, %block_id_z,
// CHECK: memref.store %[[LOOP]]#16, %arg17[%block_id_y, %block_id_x, %block_id_z]
// CHECK: memref.store {{.*}}, %arg18[%block_id_y, %block_id_x, %block_id_z,
// CHECK-NOT: memref.store {{.*}}, %arg1{{[1-5]}}[
// CHECK: gpu.return

// Phase 2: one thread per (state row, rotary pair): 16 x 16 pairs in two
// blocks of 128 per (head, batch). The four spans form one group whose
// loads come first; then per span the state entering it is stored in
// place, row 0 stores the angles entering it, and the contribution is
// rotated by them and chained. The final ssm state is the last.
// CHECK-LABEL: gpu.func @siso_chunk_boundaries(
// CHECK-SAME: known_grid_size = array<i32: 2, 1, 2>, {{.*}}ssm.launch_index = 1 : i64, ssm.schedule = "chunk-parallel"
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32, f32)
// CHECK-COUNT-8: memref.load %arg16[
// CHECK: memref.store {{.*}}, %arg16[
// CHECK: memref.store {{.*}}, %arg19[
// CHECK: math.cos
// CHECK: math.sin
// CHECK: math.floor
// CHECK: scf.yield
// CHECK: memref.store {{.*}}, %arg13[%block_id_y, %block_id_x,
// CHECK: gpu.return

// Phase 3: per span, the previous token's k rotated by the angles entering
// the span, the state entering it, then per chunk scores, output and the
// gated store; with one chunk a span, no state update (4 x 2 score, 4 x 4
// output tiles) and no ssm state. The last span's block writes the final
// angles.
// CHECK-LABEL: gpu.func @siso_chunk_outputs(
// CHECK-SAME: ssm.launch_index = 2 : i64, ssm.schedule = "chunk-parallel"
// CHECK: %[[END:.*]] = arith.minui %{{.*}}, %c4
// CHECK: memref.load %arg19[%block_id_y, %block_id_x, %block_id_z,
// CHECK: math.cos
// CHECK: memref.load %arg16[%block_id_y, %block_id_x, %block_id_z,
// CHECK: scf.for
// CHECK-COUNT-40: nvvm.mma.sync
// CHECK-NOT: nvvm.mma.sync
// CHECK: vector.store {{.*}}, %arg11[
// CHECK-NOT: memref.store {{.*}}, %arg13[
// CHECK: arith.cmpi eq, %[[END]], %c4
// CHECK: memref.store {{.*}}, %arg12[
// CHECK: gpu.return

// Spans of three chunks: two per (head, batch), the second one chunk long;
// phase 3 then updates the state between its chunks (16 more mma.sync).
// SPANS-LABEL: gpu.func @siso_chunk_states(
// SPANS-SAME: %arg16: memref<1x2x2x16x32xf32> {ssm.scratch = {element_bytes = 4 : i64, name = "chunk_states", shape = ["b", 2, 2, 16, 32]}}, %arg17: memref<1x2x2xf32> {ssm.scratch = {element_bytes = 4 : i64, name = "chunk_decay", shape = ["b", 2, 2]}}
// SPANS-SAME: known_grid_size = array<i32: 2, 1, 2>, ssm.chunk_size = 64 : i64, ssm.chunks_per_block = 3 : i64
// SPANS: %[[FIRST:.*]] = arith.muli %block_id_z, %c3
// SPANS: %[[NEXT:.*]] = arith.addi %[[FIRST]], %c3
// SPANS: %[[END:.*]] = arith.minui %[[NEXT]], %c4
// SPANS: scf.for %{{.*}} = %[[FIRST]] to %[[END]] step
// SPANS-LABEL: gpu.func @siso_chunk_boundaries(
// SPANS-SAME: ssm.chunks_per_block = 3 : i64
// SPANS: memref.load %arg16[{{.*}}] : memref<1x2x2x16x32xf32>
// SPANS-LABEL: gpu.func @siso_chunk_outputs(
// SPANS-SAME: known_grid_size = array<i32: 2, 1, 2>
// SPANS: scf.for
// SPANS-COUNT-56: nvvm.mma.sync
// SPANS-NOT: nvvm.mma.sync
// SPANS: gpu.return

// With an SM per block already, or with the chunks in fewer than three
// spans, one block per (head, batch) walks the chunks.
// FILLED: gpu.func @siso(
// FILLED-SAME: ssm.schedule = "chunked"
// FILLED-NOT: gpu.func

// CHUNK128: gpu.func @siso_chunk_states(
// CHUNK128-SAME: known_grid_size = array<i32: 2, 1, 2>, ssm.chunk_size = 128 : i64

// SMCOUNT: ssm-gpu-schedule: sm-count must be positive, got 0

// PERBLOCK: ssm-gpu-schedule: chunks-per-block must be 0 (auto) or positive, got -1
func.func @siso(%q: tensor<1x200x1x32xbf16>, %k: tensor<1x200x1x32xbf16>, %v: tensor<1x200x2x16xbf16>,
    %adt: tensor<1x2x200xf32>, %dt: tensor<1x2x200xf32>, %trap: tensor<1x2x200xf32>,
    %qb: tensor<2x32xf32>, %kb: tensor<2x32xf32>, %ang: tensor<1x200x2x8xf32>, %d: tensor<2xf32>,
    %z: tensor<1x200x2x16xbf16>)
    -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang) d(%d) z(%z)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<1x200x1x32xbf16>, tensor<1x200x1x32xbf16>, tensor<1x200x2x16xbf16>, tensor<1x2x200xf32>,
         tensor<1x2x200xf32>, tensor<1x2x200xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x200x2x8xf32>,
         tensor<2xf32>, tensor<1x200x2x16xbf16>)
      -> (tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x200x2x16xbf16>, tensor<1x2x8xf32>, tensor<1x2x16x32xf32>, tensor<1x2x32xf32>, tensor<1x2x16xf32>
}
