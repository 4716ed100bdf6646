"""``seglosses bench``: forward + backward time and peak memory of the library's losses next
to the losses people use today (torch ``F.cross_entropy``, MONAI), on the current device.

* time: every method of a shape runs round-robin, ``repeat`` rounds after two warm-up calls,
  and the median is reported (interleaving keeps ratios fair on a machine whose speed drifts);
* memory: the peak memory one call adds on top of its inputs: the CUDA allocator's peak on a
  GPU; on the CPU the peak resident set of a fresh process per method, reset just before the
  call (``/proc/self/clear_refs``; ``--no-memory`` skips).

Ratios are taken against the anchor of the same family measured in the same run. The Triton
path is measured on CUDA when ``impl="triton"`` is available; missing anchors are listed as
"not installed".
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

# (name, family); the family's anchor is what its ratios are taken against
METHODS = [
    ("torch F.cross_entropy", "ce"),
    ("seglosses.cross_entropy", "ce"),
    ("seglosses.cross_entropy [triton]", "ce"),
    ("MONAI DiceLoss", "dice"),
    ("seglosses.dice_loss", "dice"),
    ("seglosses.dice_loss [triton]", "dice"),
    ("MONAI DiceCELoss", "dice_ce"),
    ("seglosses.dice_ce_loss", "dice_ce"),
    ("seglosses.dice_ce_loss [triton]", "dice_ce"),
    ("MONAI FocalLoss", "focal"),
    ("seglosses.focal_loss", "focal"),
]
ANCHOR = {"ce": "torch F.cross_entropy", "dice": "MONAI DiceLoss",
          "dice_ce": "MONAI DiceCELoss", "focal": "MONAI FocalLoss"}
SHAPES = {"cuda": [(8, 19, 256, 256), (2, 4, 64, 64, 64)],
          "cpu": [(8, 19, 128, 128), (2, 4, 48, 48, 48)]}


def _make_call(name: str, logits, labels):
    """A zero-argument fwd+bwd-able call, or raise ImportError / RuntimeError if unavailable."""
    import torch.nn.functional as F

    import seglosses.torch as sl

    # untagged seglosses rows are the torch path on every device; "[triton]" the kernels
    impl = "triton" if name.endswith("[triton]") else "torch"
    if impl == "triton":
        if logits.device.type != "cuda":
            raise RuntimeError("needs CUDA")
        import triton  # noqa: F401
    if name.startswith("seglosses.cross_entropy"):
        call = lambda: sl.cross_entropy(logits, labels, impl=impl)
    elif name.startswith("seglosses.dice_loss"):
        call = lambda: sl.dice_loss(logits, labels, smooth=1e-5, impl=impl)
    elif name.startswith("seglosses.dice_ce_loss"):
        call = lambda: sl.dice_ce_loss(logits, labels, smooth=1e-5, impl=impl)
    elif name == "seglosses.focal_loss":
        call = lambda: sl.focal_loss(logits, labels, impl=impl)
    elif name == "torch F.cross_entropy":
        call = lambda: F.cross_entropy(logits, labels)
    elif name.startswith("MONAI"):
        import monai.losses

        target = labels.unsqueeze(1)
        if name == "MONAI FocalLoss":
            loss = monai.losses.FocalLoss(to_onehot_y=True, use_softmax=True)
        else:
            cls = monai.losses.DiceCELoss if "DiceCE" in name else monai.losses.DiceLoss
            loss = cls(softmax=True, to_onehot_y=True)
        call = lambda: loss(logits, target)
    else:
        raise ValueError(f"bench: unknown method {name!r}")
    if impl == "triton":
        try:
            call()  # the kernels refuse here what they cannot run
        except (ValueError, NotImplementedError) as error:
            raise RuntimeError(str(error).split(";")[0]) from None
    return call


def _inputs(shape, device: str, dtype: str):
    import torch

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=generator).to(device=device,
                                                         dtype=getattr(torch, dtype))
    logits.requires_grad_(True)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator).to(device)
    return logits, labels


def _call_or_reason(name, logits, labels):
    try:
        return _make_call(name, logits, labels)
    except ImportError as error:
        if error.name and error.name.startswith("seglosses"):
            raise
        return f"not installed ({error.name})"
    except RuntimeError as error:
        return f"not available ({error})"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def measure_times(shape, *, device: str, dtype: str, repeat: int) -> dict[str, float | str]:
    """Median fwd+bwd milliseconds of every method (or why it was skipped)."""
    logits, labels = _inputs(shape, device, dtype)
    calls = {name: _call_or_reason(name, logits, labels) for name, _ in METHODS}
    runnable = {name: call for name, call in calls.items() if not isinstance(call, str)}
    times: dict[str, list[float]] = {name: [] for name in runnable}
    for call in runnable.values():
        for _ in range(2):  # warm-up: allocator, kernels, MONAI's one-hot paths
            call().backward()
    for _ in range(repeat):
        for name, call in runnable.items():
            logits.grad = None
            _sync(device)
            start = time.perf_counter()
            call().backward()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(times[name]) if name in times else calls[name]
            for name, _ in METHODS}


def measure_memory(name: str, shape, *, device: str, dtype: str) -> float | str:
    """MiB one fwd+bwd call adds on top of its inputs (CUDA: allocator peak; CPU: the
    resident-set peak of this process, so call it in a fresh process)."""
    import torch

    logits, labels = _inputs(shape, device, dtype)
    call = _call_or_reason(name, logits, labels)
    if isinstance(call, str):
        return call
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call().backward()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    reset = _reset_peak_rss()
    base = _status_bytes("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    call().backward()
    if reset:  # the kernel's peak since the reset: exactly this call's
        return max(_status_bytes("VmHWM") - base, 0) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return max(peak - max(base, before), 0) / 2**20


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident set size (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {key}")


def _memory_in_fresh_process(name: str, shape, dtype: str) -> float | str:
    command = [sys.executable, "-m", "seglosses.cli.bench", "--memory", name,
               "--shape", json.dumps(list(shape)), "--dtype", dtype]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return f"failed ({done.stderr.strip().splitlines()[-1] if done.stderr else 'no output'})"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _nbytes(shape, dtype: str) -> int:
    count = 1
    for size in shape:
        count *= size
    return count * (4 if dtype == "float32" else 2)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"bench: device must exist; got {device!r} but CUDA is not available.")
    return device


def run_benchmark(*, shapes=None, repeat: int | None = None, device: str = "auto",
                  dtype: str = "float32", memory: bool = True, progress: bool = True) -> dict:
    """Measure every method on every shape; return a JSON-ready dict (see :func:`format_table`).

    Args:
        shapes: logits shapes ``(N, C, *spatial)``; default one 2-D and one 3-D shape sized for
            the device.
        repeat: timed rounds (default 20 on CUDA, 10 on the CPU).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` logits.
        memory: also measure peak memory.
        progress: one line per shape on stderr.
    """
    import platform

    import torch

    device = resolve_device(device)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    shapes = [tuple(s) for s in (shapes or SHAPES[kind])]
    for shape in shapes:
        if len(shape) not in (4, 5):
            raise ValueError(f"bench: shape must be N,C,H,W or N,C,D,H,W; got {shape}.")
    repeat = repeat or (20 if kind == "cuda" else 10)
    rows = []
    for shape in shapes:
        if progress:
            print(f"bench: {shape} {dtype} on {device} ...", file=sys.stderr, flush=True)
        times = measure_times(shape, device=device, dtype=dtype, repeat=repeat)
        for name, family in METHODS:
            row = {"shape": list(shape), "name": name, "family": family,
                   "anchor": ANCHOR[family] == name}
            if isinstance(times[name], str):
                row["skipped"] = times[name]
            else:
                row["median_ms"] = times[name]
                if memory:
                    peak = measure_memory(name, shape, device=device, dtype=dtype) \
                        if kind == "cuda" else _memory_in_fresh_process(name, shape, dtype)
                    row["peak_mb" if not isinstance(peak, str) else "memory"] = peak
                    if not isinstance(peak, str):
                        row["peak_x_logits"] = peak * 2**20 / _nbytes(shape, dtype)
            rows.append(row)
    for row in rows:  # ratios against the anchor of the same shape and family
        anchor = next((r for r in rows if r["shape"] == row["shape"] and r["anchor"]
                       and r["family"] == row["family"] and "median_ms" in r), None)
        if anchor is not None and "median_ms" in row and not row["anchor"]:
            row["time_ratio"] = row["median_ms"] / anchor["median_ms"]
    name = torch.cuda.get_device_name(device) if kind == "cuda" else \
        (platform.processor() or platform.machine())
    return {"device": f"{device} ({name}, torch threads {torch.get_num_threads()})",
            "dtype": dtype, "repeat": repeat, "torch": torch.__version__, "rows": rows}


def format_table(results: dict) -> str:
    """The results as an aligned text table (Markdown-compatible)."""
    header = ["shape", "loss", "fwd+bwd", "vs anchor", "peak memory"]
    lines = []
    for row in results["rows"]:
        shape = "×".join(str(s) for s in row["shape"])
        if "skipped" in row:
            lines.append([shape, row["name"], row["skipped"], "", ""])
            continue
        ratio = "anchor" if row["anchor"] else \
            f"{row['time_ratio']:.2f}×" if "time_ratio" in row else ""
        memory = f"{row['peak_mb']:.1f} MiB ({row['peak_x_logits']:.1f}× logits)" \
            if "peak_mb" in row else row.get("memory", "")
        lines.append([shape, row["name"], f"{row['median_ms']:.2f} ms", ratio, memory])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]

    def render(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) \
            + " |"

    out = [f"device: {results['device']}; {results['dtype']}; torch {results['torch']}; "
           f"median of {results['repeat']} interleaved calls; ratio < 1 is faster than the "
           "anchor", "", render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [render(line) for line in lines])


def _memory_main(argv) -> None:
    """``python -m seglosses.cli.bench --memory NAME --shape [..] --dtype D`` (CPU memory)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", required=True)
    parser.add_argument("--shape", required=True)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    print(json.dumps(measure_memory(args.memory, tuple(json.loads(args.shape)), device="cpu",
                                    dtype=args.dtype)))


if __name__ == "__main__":
    _memory_main(sys.argv[1:])
