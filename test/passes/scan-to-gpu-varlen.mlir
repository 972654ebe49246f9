// RUN: mamba3-opt %s -ssm-gpu-schedule=schedule=chunked -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=CHUNKED
// RUN: mamba3-opt %s -ssm-gpu-schedule=schedule=tokens -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=TOKENS
// RUN: mamba3-opt %s -ssm-gpu-schedule -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels | FileCheck %s --check-prefix=AUTO
// RUN: not mamba3-opt %s -ssm-gpu-schedule=schedule=chunk-parallel -ssm-to-gpu -ssmk-plan-shared-memory -ssmk-build-kernels 2>&1 | FileCheck %s --check-prefix=PARALLEL

// A packed varlen batch of 3 sequences in 100 tokens: one block per (head,
// sequence); each block reads its token range from cu_seqlens, addresses the
// token tensors in batch row 0 from the range's start, and runs as many
// chunks (tokens) as its sequence has. States are per sequence (block y).

// CHUNKED-LABEL: gpu.func @varlen_scan
// CHUNKED-SAME: %[[CU:arg13]]: memref<4xi32>
// CHUNKED-SAME: known_grid_size = array<i32: 2, 3, 1>
// CHUNKED: %[[START32:.*]] = memref.load %[[CU]][%block_id_y] : memref<4xi32>
// CHUNKED: %[[START:.*]] = arith.index_castui %[[START32]] : i32 to index
// CHUNKED: %[[NEXT:.*]] = arith.addi %block_id_y, %c1
// CHUNKED: %[[END32:.*]] = memref.load %[[CU]][%[[NEXT]]] : memref<4xi32>
// CHUNKED: %[[END:.*]] = arith.index_castui %[[END32]] : i32 to index
// CHUNKED: %[[LEN:.*]] = arith.subi %[[END]], %[[START]] : index
// ceil(length / 64) chunks.
// CHUNKED: %[[PAD:.*]] = arith.addi %[[LEN]], %c63 : index
// CHUNKED: %[[CHUNKS:.*]] = arith.divui %[[PAD]], %c64{{.*}} : index
// Initial states of the block's sequence.
// CHUNKED: memref.load %arg10[%block_id_y, %block_id_x, %{{.*}}, %{{.*}}] : memref<3x2x16x32xf32>
// CHUNKED: scf.for %{{.*}} = %c0{{.*}} to %[[CHUNKS]] step
// Token data in batch row 0, from the sequence's start.
// CHUNKED: %[[TOK:.*]] = arith.addi %{{.*}}, %[[START]] : index
// CHUNKED: nvgpu.device_async_copy %arg0[%c0, %[[TOK]], %{{.*}}, %{{.*}}]
// Final states of the block's sequence.
// CHUNKED: memref.store %{{.*}}, %arg16[%block_id_y, %block_id_x, %{{.*}}, %{{.*}}] : memref<3x2x16x32xf32>

// TOKENS-LABEL: gpu.func @varlen_scan
// TOKENS: %[[START32:.*]] = memref.load %arg13[%block_id_y] : memref<4xi32>
// TOKENS: %[[START:.*]] = arith.index_castui %[[START32]]
// TOKENS: %[[LEN:.*]] = arith.subi %{{.*}}, %[[START]] : index
// TOKENS: scf.for %[[T:.*]] = %c0{{.*}} to %[[LEN]] step
// TOKENS: %[[TOK:.*]] = arith.addi %[[T]], %[[START]] : index
// TOKENS: memref.load %arg4[%c0, %block_id_x, %[[TOK]]] : memref<1x2x100xf32>
// The last token wrote half (length + 1) % 2 of the k/v double buffer.
// TOKENS: %[[LP1:.*]] = arith.addi %[[LEN]], %c1
// TOKENS: arith.remui %[[LP1]], %c2

// The automatic schedule never picks chunk-parallel for a varlen batch,
// even with 6 (head, sequence) blocks on 132 SMs.
// AUTO: ssm.schedule = "chunked"
// AUTO-NOT: _chunk_states

// PARALLEL: error: 'ssm.scan' op ssm-gpu-schedule schedule=chunk-parallel: a varlen batch (cu_seqlens) has its chunk boundaries in the data, which the chunk-parallel grid cannot size; use schedule=chunked or tokens
func.func @varlen_scan(%q: tensor<1x100x1x32xbf16>, %k: tensor<1x100x1x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %adt: tensor<1x2x100xf32>, %dt: tensor<1x2x100xf32>, %trap: tensor<1x2x100xf32>,
    %qb: tensor<2x32xf32>, %kb: tensor<2x32xf32>, %ang: tensor<1x100x2x8xf32>,
    %a0: tensor<3x2x8xf32>, %h0: tensor<3x2x16x32xf32>, %k0: tensor<3x2x32xf32>, %v0: tensor<3x2x16xf32>, %cu: tensor<4xi32>)
    -> (tensor<1x100x2x16xbf16>, tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>) {
  %r:5 = ssm.scan q(%q) k(%k) v(%v) adt(%adt) dt(%dt) trap(%trap) bias(%qb, %kb) angles(%ang)
      initial(%a0, %h0, %k0, %v0) cu_seqlens(%cu)
      {rotary = #ssm.rotary<angles = 8, pairing = adjacent>, wrap_angle}
      : (tensor<1x100x1x32xbf16>, tensor<1x100x1x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x2x100xf32>,
         tensor<1x2x100xf32>, tensor<1x2x100xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<1x100x2x8xf32>,
         tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>, tensor<4xi32>)
      -> (tensor<1x100x2x16xbf16>, tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x100x2x16xbf16>, tensor<3x2x8xf32>, tensor<3x2x16x32xf32>, tensor<3x2x32xf32>, tensor<3x2x16xf32>
}
