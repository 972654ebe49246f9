#!/usr/bin/env python3
"""Splits an Nsight Compute SASS source page of one kernel into the regions
between its BAR.SYNC barriers (the phases of the chunked kernel: stage, the
two scan steps, rotate, scores, output and state, epilogue) and prints, per
region, its share of the executed warp instructions and of the stall
samples, the most executed opcodes (per warp and chunk) and the top stall
reasons.

usage (on the GPU machine):
  ncu --launch-skip 3 --launch-count 1 --section SourceCounters \\
      --section WarpStateStats -o prof mamba3-run --target sm_90a \\
      --bundle B --random --time-only
  ncu -i prof.ncu-rep --page source --print-source sass --csv > src.csv
  bench/ncu-phases.py src.csv WARP_CHUNKS
WARP_CHUNKS: warps x chunk-blocks of the launch (b H chunks x warps per block),
to print opcode counts per warp and chunk (65536 at b=8, L=4096, H=32, P=64).
"""
import csv, sys

rows = list(csv.reader(open(sys.argv[1])))
warp_chunks = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
hdr = rows[1]
data = rows[2:]
i_src = hdr.index('Source')
i_ex = hdr.index('Instructions Executed')
i_s = hdr.index('Warp Stall Sampling (All Samples)')
stall_cols = [i for i, h in enumerate(hdr) if h.startswith('stall_') and 'Not Issued' not in h]
tot_ex = sum(int(r[i_ex]) for r in data)
tot_s = sum(int(r[i_s]) for r in data)
print('warp instructions %d (%.0f per warp and chunk), stall samples %d'
      % (tot_ex, tot_ex / warp_chunks, tot_s))


def region(start):
    return dict(start=start, ex=0, s=0, ops={}, st=[0] * len(stall_cols))


regions, cur = [], region(0)
for k, r in enumerate(data):
    src = r[i_src].strip()
    ex, s = int(r[i_ex]), int(r[i_s])
    cur['ex'] += ex
    cur['s'] += s
    for j, c in enumerate(stall_cols):
        cur['st'][j] += int(r[c])
    words = src.split()
    op = words[1] if words[0].startswith('@') else words[0]
    cur['ops'][op] = cur['ops'].get(op, 0) + ex
    if 'BAR.SYNC' in src:
        cur['end'] = k
        regions.append(cur)
        cur = region(k + 1)
cur['end'] = len(data) - 1
regions.append(cur)
for g in regions:
    if g['ex'] < tot_ex * 0.01 and g['s'] < tot_s * 0.01:
        continue
    top = sorted(g['ops'].items(), key=lambda x: -x[1])[:9]
    stalls = sorted(((hdr[c], v) for c, v in zip(stall_cols, g['st'])), key=lambda x: -x[1])[:5]
    print('[%d-%d] instructions %.1f%% samples %.1f%%  %s' % (
        g['start'], g['end'], 100.0 * g['ex'] / tot_ex, 100.0 * g['s'] / tot_s,
        ' '.join('%s:%.0f' % (o, v / warp_chunks) for o, v in top)))
    print('    stalls (%% of samples) %s' % ' '.join(
        '%s:%d' % (n[6:], v * 100 // tot_s) for n, v in stalls))
