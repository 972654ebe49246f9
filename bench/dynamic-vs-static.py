#!/usr/bin/env python3
"""Static against dynamic bundles, from one scripts/gpu-check.sh run.

usage: bench/dynamic-vs-static.py GPU_CHECK_OUTPUT

`scripts/gpu-bundles.py --dynamic` compiles every benchmark shape twice:
bench/<name> for its one shape and bench/<name>_dyn taking batch and length
at launch, on the schedule the static compile chose. gpu-check.sh times both
in the same run (median of 20 event-timed launches; decode steps also as
CUDA-graph replays); this prints each pair and the ratio dynamic / static.
"""
import re
import sys

times = {}
for line in open(sys.argv[1]):
    m = re.match(r"(PASS|FAIL)\s+(bench/\S+)\s.*kernel: ([0-9.]+) us", line)
    # A checked run of a benchmark bundle (at another, small shape) is not
    # its timing.
    if not m or "worst relative L2 error" in line:
        continue
    graph = re.search(r"([0-9.]+) us per CUDA-graph replay", line)
    times[m.group(2)] = (float(m.group(3)), float(graph.group(1)) if graph else None)

print("%-48s %12s %12s %8s" % ("shape", "static us", "dynamic us", "dyn/stat"))
worst = 0.0
for name, (static, static_graph) in sorted(times.items()):
    if name.endswith("_dyn") or name + "_dyn" not in times:
        continue
    dynamic, dynamic_graph = times[name + "_dyn"]
    # Decode steps are launch-bound: compare the graph replays there.
    if static_graph is not None and dynamic_graph is not None:
        static, dynamic, how = static_graph, dynamic_graph, " (graph)"
    else:
        how = ""
    ratio = dynamic / static
    worst = max(worst, ratio)
    print("%-48s %12.1f %12.1f %8.3f%s" % (name[len("bench/"):], static, dynamic, ratio, how))
print("worst dynamic / static: %.3f" % worst)
