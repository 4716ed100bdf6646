"""GPU benchmark of the fused kernels against what users run today, as a fraction of roofline.

For every shape, on the same tensors and in one run: forward + backward median time (CUDA
events, ``--repeat`` calls after warm-up) and the peak memory one call allocates beyond its
inputs and the gradient dX, for

* seglosses with ``impl="triton"`` (and ``impl="torch"`` for reference),
* ``torch.nn.functional.cross_entropy`` eager and under ``torch.compile``,
* MONAI ``DiceCELoss`` / ``DiceLoss`` and segmentation_models_pytorch ``DiceLoss`` + torch CE,
  when installed (missing anchors are listed, never faked),
* ``F.binary_cross_entropy_with_logits`` for the multilabel BCE.

The roofline of a call is the bytes it must move (CE 2L + T with the gradient
written in the forward pass, BCE 2L + target, Dice+CE 3L + 2T; L = logits bytes, T = label
bytes) divided by the device's copy bandwidth, measured here as bytes read + written by a
large device-to-device copy.

    python benchmarks/gpu.py                 # the issue's shapes (needs ~40 GB of GPU memory)
    python benchmarks/gpu.py --quick         # small shapes
    TRITON_INTERPRET=1 python benchmarks/gpu.py --smoke   # CPU, tiny shapes: the code runs
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import seglosses.torch as sl

# (name, shape, logits dtype, label dtype, channels_last)
SHAPES = [
    ("2-D bf16, uint8 labels", (16, 19, 512, 1024), torch.bfloat16, torch.uint8, False),
    ("2-D bf16, int64 labels", (16, 19, 512, 1024), torch.bfloat16, torch.int64, False),
    ("2-D bf16 channels_last", (16, 19, 512, 1024), torch.bfloat16, torch.uint8, True),
    ("2-D fp32 channels_last C=4", (16, 4, 512, 1024), torch.float32, torch.uint8, True),
    ("3-D fp32", (2, 4, 128, 128, 128), torch.float32, torch.uint8, False),
    ("3-D bf16 many-organ CT", (1, 14, 160, 160, 160), torch.bfloat16, torch.uint8, False),
]
QUICK = [
    ("2-D bf16, uint8 labels", (4, 19, 256, 256), torch.bfloat16, torch.uint8, False),
    ("3-D fp32", (1, 4, 64, 64, 64), torch.float32, torch.uint8, False),
]
SMOKE = [("tiny 2-D", (2, 3, 8, 8), torch.float32, torch.uint8, False)]


@dataclass
class Timing:
    graph: float | None  # ms per CUDA-graph replay (device work alone)
    eager: float  # ms per eager call, back to back
    isolated: float  # ms of one call from an idle device


@dataclass
class Row:
    shape: str
    method: str
    roofline_bytes: int
    timing: Timing | None = None
    extra_memory: float | None = None  # bytes beyond inputs and dX
    note: str = ""


def copy_bandwidth(device) -> float:
    """Bytes read + written per second by a device-to-device copy of 2 GiB."""
    if device.type != "cuda":
        return float("nan")
    source = torch.empty(2**31 // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    for _ in range(3):
        target.copy_(source)
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        target.copy_(source)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del source, target
    torch.cuda.empty_cache()
    return 2 * 2**31 / statistics.median(times)


def _per_call(run, repeat):
    """ms per call of ``repeat`` back-to-back ``run()`` between two CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeat


def graph_time(call, x, repeat):
    """ms per replay of fwd+bwd captured in a CUDA graph: the device work alone, as a
    captured training step (or a host that runs ahead) sees it; None if it cannot be
    captured (a host sync inside, say)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.stream(side):
            for _ in range(2):
                x.grad = None
                call(x).backward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        x.grad = None
        with torch.cuda.graph(graph):
            call(x).backward()
        graph.replay()
        torch.cuda.synchronize()
        return _per_call(graph.replay, repeat)
    except Exception:  # reported as "not capturable", never guessed
        torch.cuda.synchronize()
        return None
    finally:
        x.grad = None
        torch.cuda.empty_cache()


def measure(call, x, device, repeat):
    """``Timing`` of fwd+bwd of ``call(x)`` and the peak bytes it allocates beyond its inputs
    and dX.

    * graph: CUDA-graph replays, the device work alone;
    * eager: ``repeat`` eager calls back to back (no synchronisation in between), host work
      included when it outlasts the device work;
    * isolated: the median of ``repeat`` single calls, each from an idle device.
    """
    def once():
        x.grad = None
        call(x).backward()

    once()  # compile / autotune / allocate
    once()
    if device.type != "cuda":
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            once()
            times.append((time.perf_counter() - started) * 1e3)
        return Timing(None, statistics.median(times), statistics.median(times)), None
    torch.cuda.synchronize()
    x.grad = None
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call(x).backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base - x.grad.numel() * x.grad.element_size()
    single = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        x.grad = None
        start.record()
        call(x).backward()
        end.record()
        torch.cuda.synchronize()
        single.append(start.elapsed_time(end))
    eager = _per_call(once, repeat)
    return Timing(graph_time(call, x, repeat), eager, statistics.median(single)), extra


def methods(num_classes, label_dtype, ignored, multilabel_ignored):
    """(name, roofline kind, call(x, labels, onehot) -> loss) for a shape; ``ignored`` and
    ``multilabel_ignored``: the labels and the multilabel target with a border of 255
    (Cityscapes' ignore label) for the ``ignore_index`` rows."""
    rows = [
        ("seglosses.cross_entropy [triton]", "ce",
         lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
        ("seglosses.cross_entropy [triton] ignore_index=255", "ce",
         lambda x, y, t: sl.cross_entropy(x, ignored, impl="triton", validate=False,
                                          ignore_index=255)),
        ("torch F.cross_entropy ignore_index=255", "ce",
         lambda x, y, t: F.cross_entropy(x, ignored.long(), ignore_index=255)),
        ("seglosses.cross_entropy [torch]", "ce",
         lambda x, y, t: sl.cross_entropy(x, y, impl="torch", validate=False)),
        ("torch F.cross_entropy", "ce", lambda x, y, t: F.cross_entropy(x, y.long())),
        ("torch.compile(F.cross_entropy)", "ce", "compiled"),
        ("seglosses.dice_ce_loss [triton]", "dice_ce",
         lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False)),
        ("seglosses.dice_ce_loss [torch]", "dice_ce",
         lambda x, y, t: sl.dice_ce_loss(x, y, impl="torch", validate=False)),
        ("seglosses.dice_ce_loss [triton] ignore_index=255", "dice_ce",
         lambda x, y, t: sl.dice_ce_loss(x, ignored, impl="triton", validate=False,
                                         ignore_index=255)),
        ("seglosses.dice_loss [triton]", "dice_ce",
         lambda x, y, t: sl.dice_loss(x, y, impl="triton", validate=False)),
        ("MONAI DiceCELoss", "dice_ce", "monai_dice_ce"),
        ("MONAI DiceLoss", "dice_ce", "monai_dice"),
        ("smp DiceLoss + torch CE", "dice_ce", "smp"),
        ("seglosses.binary_cross_entropy [triton] (multilabel)", "bce",
         lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                                 validate=False)),
        ("torch F.binary_cross_entropy_with_logits", "bce",
         lambda x, y, t: F.binary_cross_entropy_with_logits(x, t.to(x.dtype))),
        ("seglosses.binary_cross_entropy [triton] (multilabel) ignore_index=255", "bce",
         lambda x, y, t: sl.binary_cross_entropy(x, multilabel_ignored, mode="multilabel",
                                                 impl="triton", validate=False,
                                                 ignore_index=255)),
        ("torch BCE-with-logits, ignored elements masked by hand", "bce",
         lambda x, y, t: _masked_bce(x, multilabel_ignored)),
    ]
    resolved = []
    for name, kind, call in rows:
        if call == "compiled":
            compiled = torch.compile(F.cross_entropy)
            call = (lambda c: lambda x, y, t: c(x, y.long()))(compiled)
        elif call in ("monai_dice_ce", "monai_dice"):
            try:
                from monai.losses import DiceCELoss, DiceLoss
            except ImportError:
                resolved.append((name, kind, "monai not installed"))
                continue
            loss = DiceCELoss(softmax=True, to_onehot_y=True) if call == "monai_dice_ce" \
                else DiceLoss(softmax=True, to_onehot_y=True)
            call = (lambda f: lambda x, y, t: f(x, y.unsqueeze(1).long()))(loss)
        elif call == "smp":
            try:
                from segmentation_models_pytorch.losses import DiceLoss as SmpDice
            except ImportError:
                resolved.append((name, kind, "segmentation_models_pytorch not installed"))
                continue
            dice = SmpDice("multiclass")
            call = (lambda f: lambda x, y, t: f(x, y.long()) + F.cross_entropy(x, y.long()))(dice)
        resolved.append((name, kind, call))
    return resolved


def _masked_bce(x, target):
    """What users write for an ignore label with torch's BCE: a validity map, a cleaned float
    target, per-element losses and their masked mean."""
    valid = target != 255
    loss = F.binary_cross_entropy_with_logits(x, (target * valid).to(x.dtype),
                                              reduction="none")
    return (loss * valid).sum() / valid.sum().clamp_min(1)


def roofline_bytes(kind, x, labels, onehot):
    logits = x.numel() * x.element_size()
    label_bytes = labels.numel() * labels.element_size()
    if kind == "ce":
        return 2 * logits + label_bytes
    if kind == "bce":
        return 2 * logits + onehot.numel() * onehot.element_size()
    return 3 * logits + 2 * label_bytes


def run(shapes, device, repeat):
    bandwidth = copy_bandwidth(device)
    rows = []
    for title, shape, dtype, label_dtype, channels_last in shapes:
        generator = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(shape, device=device, dtype=dtype, generator=generator)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last if x.ndim == 4
                             else torch.channels_last_3d)
        x.requires_grad_()
        labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), device=device,
                               generator=generator).to(label_dtype)
        onehot = torch.randint(0, 2, shape, device=device, dtype=torch.uint8,
                               generator=generator)
        ignored = labels.clone()
        ignored[..., :max(1, shape[-1] // 64)] = 255
        multilabel_ignored = onehot.clone()
        multilabel_ignored[..., :max(1, shape[-1] // 64)] = 255
        label = f"{title} {tuple(shape)}"
        for name, kind, call in methods(shape[1], label_dtype, ignored, multilabel_ignored):
            row = Row(label, name, roofline_bytes(kind, x, labels, onehot))
            if isinstance(call, str):
                row.note = call
            else:
                try:
                    row.timing, row.extra_memory = measure(
                        (lambda c, y, t: lambda z: c(z, y, t))(call, labels, onehot), x,
                        device, repeat)
                except Exception as error:  # an anchor that fails is reported, not hidden
                    row.note = f"failed: {type(error).__name__}: {str(error)[:80]}"
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
            rows.append(row)
        del x, labels, onehot, ignored, multilabel_ignored
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows, bandwidth


def format_rows(rows, bandwidth, logits_bytes):
    lines = ["| shape | method | fwd+bwd GPU time (graph) | % of roofline | eager, back to back "
             "| eager, one isolated call | roofline | extra memory |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        roofline_ms = row.roofline_bytes / bandwidth * 1e3
        if row.timing is None:
            lines.append(f"| {row.shape} | {row.method} | {row.note} | | | "
                         f"| {roofline_ms:.3f} ms | |")
            continue
        timing = row.timing
        graph = "not capturable" if timing.graph is None else f"{timing.graph:.3f} ms"
        best = timing.graph or timing.eager
        share = f"{100 * roofline_ms / best:.0f} %" if roofline_ms == roofline_ms else ""
        memory = ""
        if row.extra_memory is not None:
            ratio = row.extra_memory / logits_bytes[row.shape]
            memory = f"{row.extra_memory / 2**20:.1f} MiB ({ratio:.2f}× logits)"
        lines.append(f"| {row.shape} | {row.method} | {graph} | {share} | {timing.eager:.3f} ms "
                     f"| {timing.isolated:.3f} ms | {roofline_ms:.3f} ms | {memory} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small shapes")
    group.add_argument("--smoke", action="store_true",
                       help="tiny shapes on the CPU under TRITON_INTERPRET=1 (checks the code)")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    if args.smoke:
        device, shapes, repeat = torch.device("cpu"), SMOKE, 2
    else:
        if not torch.cuda.is_available():
            raise SystemExit("benchmarks/gpu.py needs a CUDA device (or --smoke on the CPU)")
        device, shapes, repeat = torch.device("cuda"), QUICK if args.quick else SHAPES, \
            args.repeat
    rows, bandwidth = run(shapes, device, repeat)
    logits_bytes = {}
    for title, shape, dtype, _, _ in shapes:
        size = torch.tensor([], dtype=dtype).element_size()
        logits_bytes[f"{title} {tuple(shape)}"] = size * torch.Size(shape).numel()
    import triton

    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (interpreter)"
    print(f"Device: {name}; copy bandwidth {bandwidth / 1e12:.2f} TB/s (read + write); "
          f"torch {torch.__version__}, triton {triton.__version__}; "
          f"{datetime.date.today().isoformat()}; per call: {repeat} graph replays / {repeat} eager "
          f"calls back to back; isolated: median of {repeat}\n")
    print(format_rows(rows, bandwidth, logits_bytes))


if __name__ == "__main__":
    main()
