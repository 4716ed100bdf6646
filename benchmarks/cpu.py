"""CPU benchmark of the issue's shapes: seglosses' torch path against the anchors users run.

Forward + backward of one loss call on the same tensors, in the same run (the measuring code is
``seglosses.cli.bench``, also behind ``seglosses bench``):

* time: every method of a shape runs round-robin in one process and the median over
  ``--repeat`` rounds is reported; interleaving keeps the ratios fair on a shared machine;
* memory: the peak resident memory one call adds on top of its inputs, on its first call in a
  fresh process per method.

    python benchmarks/cpu.py              # (8, 19, 256, 256) and (2, 4, 64, 64, 64) fp32
    python benchmarks/cpu.py --quick      # small shapes, a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform

from seglosses.cli.bench import format_table, run_benchmark

SHAPES = [(8, 19, 256, 256), (2, 4, 64, 64, 64)]
QUICK_SHAPES = [(2, 5, 32, 32), (1, 3, 8, 8, 8)]


def environment() -> str:
    import numpy
    import torch

    versions = [f"torch {torch.__version__}", f"numpy {numpy.__version__}"]
    for module in ("monai", "segmentation_models_pytorch"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} not installed")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores; " + ", ".join(versions) + \
        f"; {datetime.date.today().isoformat()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed rounds per method")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args()
    results = run_benchmark(shapes=QUICK_SHAPES if args.quick else SHAPES, device="cpu",
                            repeat=args.repeat or (3 if args.quick else 30))
    print(f"Environment: {environment()}\n")
    print(f"Command: `python benchmarks/cpu.py{' --quick' if args.quick else ''}`\n")
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
