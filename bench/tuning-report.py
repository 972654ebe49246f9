#!/usr/bin/env python3
"""Before / after tables from mamba3-tune logs.

usage: bench/tuning-report.py LOG...

mamba3-tune times, in one run on one GPU, the compiler's own dynamic bundle
(its cost model's choice between the one-pass and the chunk-parallel kernel:
"untuned") and every candidate variant at each shape on the same inputs,
and prints a table per layer. This gathers them (a layer timed twice keeps
its last table) and prints, per layer, the shapes as a batch x length grid
of tuned / untuned time ratios, then the worst and best ratio.
"""
import re
import sys

tables = {}
for path in sys.argv[1:]:
    layer = None
    for line in open(path):
        if line.startswith("kind="):
            layer = line.strip()
            tables[layer] = {}
            continue
        # batch seqlen untuned us winner us ratio [MB GB/s floor] (the last
        # three since tuning database format 2).
        m = re.match(r"(\d+)\s+(\d+)\s+(\S+)\s+([0-9.]+)\s+(\S+)\s+([0-9.]+)\s+([0-9.]+)"
                     r"(?:\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+))?$", line.strip())
        if layer and m:
            b, L = int(m.group(1)), int(m.group(2))
            floor = float(m.group(10)) if m.group(10) else None
            tables[layer][(b, L)] = (m.group(3), float(m.group(4)), m.group(5), float(m.group(6)), floor)


def short(layer):
    f = dict(kv.split("=") for kv in layer.split(";"))
    name = "%s H=%s N=%s P=%s S=%s" % ("MIMO R=" + f["rank"] if f["mimo"] == "1" else "SISO",
                                        f["heads"], f["state"], f["headdim"], f["angles"])
    name += " " + f["pairing"] if f["mimo"] == "1" else ""
    # A decode step's table is over batches alone (one token each).
    return name + (" decode step" if f["kind"] == "step" else "")


for layer, rows in tables.items():
    if not rows:
        continue
    print("## %s\n" % short(layer))
    lengths = sorted({L for _, L in rows})
    batches = sorted({b for b, _ in rows})
    print("tuned / untuned time (untuned us -> tuned us, winner, tuned time / memory floor)\n")
    print("| b \\ L | " + " | ".join(str(L) for L in lengths) + " |")
    print("|---" * (len(lengths) + 1) + "|")
    for b in batches:
        cells = []
        for L in lengths:
            if (b, L) not in rows:
                cells.append("")
                continue
            _, before, winner, after, floor = rows[(b, L)]
            cells.append("%.2f (%.0f -> %.0f, %s%s)" % (after / before, before, after, winner,
                                                       ", %.1fx floor" % floor if floor else ""))
        print("| %d | %s |" % (b, " | ".join(cells)))
    ratios = [r[3] / r[1] for r in rows.values()]
    print("\nworst %.3f, best %.3f over %d shapes\n" % (max(ratios), min(ratios), len(ratios)))
