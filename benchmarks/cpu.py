"""CPU benchmark: seglosses' torch path against the losses users run today.

Forward + backward of one loss call on the same tensors, in the same run:

* time: all methods of a shape run round-robin in one process, ``--repeat`` rounds, and the
  median is reported — interleaving keeps the ratios fair when a shared machine's speed drifts;
* memory: the peak resident memory one call adds on top of its inputs, measured on the first
  call in a fresh subprocess per method, so the peak is the call's own.

Ratios are taken against the anchors measured in this run.

    python benchmarks/cpu.py                 # full table, Markdown on stdout
    python benchmarks/cpu.py --quick         # small shapes, for a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

SHAPES = {"2d": (8, 19, 256, 256), "3d": (2, 4, 64, 64, 64)}
QUICK_SHAPES = {"2d": (2, 5, 32, 32), "3d": (1, 3, 8, 8, 8)}

# (name, family) — family groups a method with the anchor its ratio is taken against
METHODS = [
    ("seglosses.cross_entropy", "ce"),
    ("torch F.cross_entropy", "ce"),
    ("seglosses.dice_ce_loss", "dice_ce"),
    ("MONAI DiceCELoss", "dice_ce"),
    ("smp DiceLoss + F.cross_entropy", "dice_ce"),
    ("seglosses.dice_loss", "dice"),
    ("MONAI DiceLoss", "dice"),
]
ANCHOR = {"ce": "torch F.cross_entropy", "dice_ce": "MONAI DiceCELoss", "dice": "MONAI DiceLoss"}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _make_call(name: str, logits, labels):
    import torch.nn.functional as F

    import seglosses.torch as sl

    if name == "seglosses.cross_entropy":
        return lambda: sl.cross_entropy(logits, labels)
    if name == "torch F.cross_entropy":
        return lambda: F.cross_entropy(logits, labels)
    if name == "seglosses.dice_ce_loss":
        return lambda: sl.dice_ce_loss(logits, labels, smooth=1e-5)
    if name == "seglosses.dice_loss":
        return lambda: sl.dice_loss(logits, labels, smooth=1e-5)
    if name.startswith("MONAI"):
        import monai.losses

        cls = monai.losses.DiceCELoss if "DiceCE" in name else monai.losses.DiceLoss
        loss = cls(softmax=True, to_onehot_y=True)
        target = labels.unsqueeze(1)
        return lambda: loss(logits, target)
    if name.startswith("smp"):
        from segmentation_models_pytorch.losses import DiceLoss

        dice = DiceLoss("multiclass", from_logits=True)
        return lambda: dice(logits, labels) + F.cross_entropy(logits, labels)
    raise ValueError(name)


def _inputs(shape):
    import torch

    torch.manual_seed(0)
    logits = torch.randn(shape, requires_grad=True)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]))
    return logits, labels


def _call_or_skip(name, logits, labels):
    try:
        return _make_call(name, logits, labels)
    except ImportError as error:
        if error.name and error.name.startswith("seglosses"):
            raise
        return f"not installed ({error.name})"


def measure_memory(name: str, shape) -> dict:
    """Peak extra resident memory of one fwd+bwd call (run in a fresh process)."""
    logits, labels = _inputs(shape)
    call = _call_or_skip(name, logits, labels)
    if isinstance(call, str):
        return {"name": name, "skipped": call}
    baseline = _rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    call().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    extra = max(peak - max(baseline, peak_before), 0)
    logits_bytes = logits.numel() * logits.element_size()
    return {"name": name, "peak_extra_mb": extra / 2**20,
            "peak_extra_x_logits": extra / logits_bytes}


def measure_times(shape, repeat: int) -> dict:
    """Median fwd+bwd time of every method, interleaved round-robin in this process."""
    logits, labels = _inputs(shape)
    calls = {name: _call_or_skip(name, logits, labels) for name, _ in METHODS}
    runnable = {name: call for name, call in calls.items() if not isinstance(call, str)}
    times = {name: [] for name in runnable}
    for call in runnable.values():  # warm-up
        call().backward()
    for _ in range(repeat):
        for name, call in runnable.items():
            logits.grad = None
            start = time.perf_counter()
            call().backward()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def _subprocess(*arguments) -> dict:
    command = [sys.executable, __file__, *arguments]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_shape(shape, repeat: int) -> list:
    rows = [_subprocess("--memory", name, "--shape", json.dumps(list(shape)))
            for name, _ in METHODS]
    times = _subprocess("--times", "--shape", json.dumps(list(shape)), "--repeat", str(repeat))
    for row in rows:
        if row["name"] in times:
            row["median_ms"] = times[row["name"]]
    return rows


def table(results: dict, shapes: dict) -> str:
    lines = ["| shape | call | fwd+bwd median | time ratio | peak extra memory | × logits |",
             "|---|---|---|---|---|---|"]
    for key, shape in shapes.items():
        rows = results[key]
        by_name = {r["name"]: r for r in rows}
        for (name, family), row in zip(METHODS, rows, strict=True):
            label = f"{key} {tuple(shape)} fp32"
            if "skipped" in row:
                lines.append(f"| {label} | {name} | {row['skipped']} | | | |")
                continue
            anchor = by_name.get(ANCHOR[family], {})
            ratio = ""
            if "median_ms" in anchor and name != ANCHOR[family]:
                speedup = anchor["median_ms"] / row["median_ms"]
                ratio = f"{row['median_ms'] / anchor['median_ms']:.2f}× of {ANCHOR[family]} " \
                        f"({speedup:.2f}× faster)" if speedup >= 1 else \
                        f"{row['median_ms'] / anchor['median_ms']:.2f}× of {ANCHOR[family]}"
            lines.append(f"| {label} | {name} | {row['median_ms']:.1f} ms | {ratio} | "
                         f"{row['peak_extra_mb']:.0f} MB | {row['peak_extra_x_logits']:.2f} |")
    return "\n".join(lines)


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
    return (f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; "
            + ", ".join(versions) + f"; {datetime.date.today().isoformat()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per method")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--memory", help=argparse.SUPPRESS)
    parser.add_argument("--times", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(measure_memory(args.memory, tuple(json.loads(args.shape)))))
        return
    if args.times:
        print(json.dumps(measure_times(tuple(json.loads(args.shape)), args.repeat)))
        return
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeat = args.repeat or (3 if args.quick else 30)
    results = {}
    for key, shape in shapes.items():
        print(f"measuring {shape} ...", file=sys.stderr, flush=True)
        results[key] = run_shape(shape, repeat)
    print(f"Device: {environment()}\n")
    print(f"Command: `python benchmarks/cpu.py{' --quick' if args.quick else ''}`: "
          f"median of {repeat} interleaved fwd+bwd calls per method (after one warm-up); "
          f"peak memory of the first call in a fresh process.\n")
    print(table(results, shapes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
