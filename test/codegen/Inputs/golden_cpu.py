"""Runs the golden cases through CPU bundles, independently of the C++ runtime.

For every case (and chunk size) it builds a bundle with mamba3-compile (batch
and sequence length dynamic), then calls the bundle's entry with ctypes
exactly as manifest.json describes it (one StridedMemRef descriptor pointer
per argument, in the manifest's order, shapes from the axis names) and prints
the relative L2 error of every output against the float64 answers. Exits
non-zero when an error exceeds the fp32 tolerance of golden/README.md (1e-5).

usage: golden_cpu.py MAMBA3_COMPILE GOLDEN_BASE WORKDIR CHUNKS [--step] [--bf16]
  CHUNKS  comma-separated chunk sizes, e.g. 0,16 (0: token by token)
  --step  build decode-step bundles and run the one-token cases only
  --bf16  bf16 data (Q, K, V, Z, out); the tolerance is then 1e-2
The environment variable CASES=name,name restricts the run to those cases.
Needs only the Python standard library.
"""
import ctypes
import json
import math
import os
import subprocess
import sys
from array import array

# Manifest argument name -> golden input name, where they differ.
GOLDEN_INPUT = {"mimo_v": "MIMO_V", "mimo_z": "MIMO_Z", "mimo_o": "MIMO_O"}
STATES = ("angle0", "ssm0", "k0", "v0")


def to_bf16(bits):
    """float32 bits -> bf16 bits, rounding to nearest even."""
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF


def main():
    compile_bin, golden_base, workdir, chunks = sys.argv[1:5]
    step = "--step" in sys.argv[5:]
    bf16 = "--bf16" in sys.argv[5:]
    tolerance = 1e-2 if bf16 else 1e-5
    meta = json.load(open(golden_base + ".json"))
    raw = open(golden_base + ".bin", "rb").read()
    os.makedirs(workdir, exist_ok=True)

    def values(entry):
        a = array("f" if entry["dtype"] == "float32" else "d")
        a.frombytes(raw[entry["offset"]:entry["offset"] + entry["count"] * a.itemsize])
        return a

    worst = 0.0
    for case in [c for c in meta["cases"] if c["name"] in os.environ.get("CASES", c["name"]).split(",")]:
        p = case["params"]
        mimo = case["kind"] == "mimo"
        if step and p["L"] != 1:
            continue
        for chunk in [int(c) for c in chunks.split(",")]:
            bundle = os.path.join(workdir, "%s_%s%s_c%d" % (case["name"], "step" if step else "scan",
                                                            "_bf16" if bf16 else "", chunk))
            args = [compile_bin, "--target", "cpu", "--batch", "?", "--heads", str(p["h"]),
                    "--groups", str(p["hqk"]), "--state", str(p["N"]), "--headdim", str(p["P"]),
                    "--angles", str(p["S"]), "--chunk", str(chunk), "-o", bundle]
            if bf16:
                args += ["--dtype", "bf16"]
            if mimo:
                # The MIMO reference does not wrap the angle state.
                args += ["--mimo", "--rank", str(p["R"]), "--no-wrap-angle"]
            if not p.get("has_D", True):
                args.append("--no-d")
            if not p.get("has_Z", True):
                args.append("--no-z")
            if step:
                args.append("--step")
            else:
                args += ["--seqlen", "?"] + (["--init"] if p["init"] else [])
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

            manifest = json.load(open(os.path.join(bundle, "manifest.json")))
            entry = getattr(ctypes.CDLL(os.path.join(bundle, manifest["library"])), manifest["entry"])
            entry.restype = None
            sizes = {"b": p["b"], "L": p["L"], "H": p["h"], "G": p["hqk"], "N": p["N"],
                     "P": p["P"], "S": p["S"], "R": p.get("R", 1)}
            keep, pointers, outputs = [], [], {}
            for arg in manifest["arguments"]:
                shape = [sizes[axis] for axis in arg["axes"]]
                numel = math.prod(shape)
                is_bf16 = arg["dtype"] == "bf16"
                buf = ((ctypes.c_uint16 if is_bf16 else ctypes.c_float) * numel)()
                if arg["role"] == "input":
                    name = arg["name"]
                    source = (case["initial_state"].get(name[:-1]) if name in STATES
                              else case["inputs"].get(GOLDEN_INPUT.get(name, name)))
                    if source is not None:
                        data = values(source)
                        assert len(data) == numel, (name, source["shape"], shape)
                        packed = array("f", data)
                        if is_bf16:
                            packed = array("H", (to_bf16(x) for x in array("I", packed.tobytes())))
                        ctypes.memmove(buf, packed.tobytes(), ctypes.sizeof(buf))
                    elif not (step and name in STATES):  # a step starts from zero states
                        sys.exit("%s: no golden input for '%s'" % (case["name"], name))
                else:
                    outputs[arg["name"]] = (buf, is_bf16)
                rank = len(shape)
                desc = (ctypes.c_int64 * (3 + 2 * rank))()
                desc[0] = desc[1] = ctypes.addressof(buf)
                stride = 1
                for i in reversed(range(rank)):
                    desc[3 + i], desc[3 + rank + i] = shape[i], stride
                    stride *= shape[i]
                keep += [buf, desc]
                pointers.append(ctypes.cast(desc, ctypes.c_void_p))
            entry(*pointers)

            report = []
            for name, (buf, is_bf16) in outputs.items():
                if is_bf16:
                    buf = array("f", array("I", (h << 16 for h in buf)).tobytes())
                ref = values(case["expected"][name])
                num = sum((g - r) ** 2 for g, r in zip(buf, ref))
                den = sum(r * r for r in ref)
                err = math.sqrt(num / den) if den > 0 else math.sqrt(num)
                if math.isnan(err):
                    err = math.inf
                worst = max(worst, err)
                report.append("%s %.2e" % (name, err))
            print("%-8s %s%s chunk %-3d %s" % (case["name"], "step" if step else "scan",
                                               " bf16" if bf16 else "", chunk,
                                             "  ".join(report)))
    print("worst relative L2 error %.3e (tolerance %.0e): %s"
          % (worst, tolerance, "PASS" if worst < tolerance else "FAIL"))
    return 0 if worst < tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
