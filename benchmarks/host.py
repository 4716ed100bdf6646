"""The torch work around the Triton kernels of one fwd+bwd call, counted without a GPU.

A fused loss should be its kernels and little else: every extra torch op is a launch (a few
µs of host time and a pass over whatever it reads), and every tensor it writes is memory the
call holds beyond dX. This script runs one fwd+bwd call per case with the kernels replaced by
recorders (``benchmarks/static.py``: nothing runs, CPU tensors stand in for CUDA ones) under a
``TorchDispatchMode`` that logs every aten op, then prints per case: the Triton launches, the
torch ops that are not views, the bytes those ops write (the outputs the call must allocate,
dX and the loss, are left out), and the largest of those tensors, each as a fraction of the
logits' bytes (the issue's memory target is ≤ 0.05 × logits beyond dX for mean/sum).

    python benchmarks/host.py               # the issue's 2-D shape with the common options
    python benchmarks/host.py --ops         # and the list of ops of each case
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from static import record  # noqa: E402

import seglosses.torch as sl  # noqa: E402

SHAPE = (16, 19, 512, 1024)
WEIGHTS = [1.0 + 0.1 * c for c in range(SHAPE[1])]


def _ce(**options):
    return lambda x, y, m: sl.cross_entropy(x, y, impl="triton", **options)


def _dice_ce(**options):
    return lambda x, y, m: sl.dice_ce_loss(x, y, impl="triton", **options)


CASES = [
    ("CE", _ce()),
    ("CE ignore_index=255", _ce(ignore_index=255)),
    ("CE ignore_index=(0, 255)", _ce(ignore_index=(0, 255))),
    ("CE static class weights", _ce(class_weights=WEIGHTS)),
    ("CE class_weights='median_frequency'", _ce(class_weights="median_frequency")),
    ("CE ignore_index=255, median_frequency", _ce(ignore_index=255,
                                                  class_weights="median_frequency")),
    ("CE ignore_index=255, mask", lambda x, y, m: sl.cross_entropy(
        x, y, impl="triton", ignore_index=255, mask=m)),
    ("Dice+CE", _dice_ce()),
    ("Dice+CE ignore_index=255", _dice_ce(ignore_index=255)),
    ("Dice ignore_index=255", lambda x, y, m: sl.dice_loss(x, y, impl="triton",
                                                            ignore_index=255)),
]


class OpLog(TorchDispatchMode):
    """Every aten op and the bytes of the tensors it returns (views write nothing)."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not getattr(func, "is_view", False):
            written = sum(t.untyped_storage().nbytes() for t in tree_leaves(out)
                          if isinstance(t, torch.Tensor))
            self.ops.append((func.overloadpacket.__name__, written))
        return out


def measure(call, x, y, m):
    """``(launches, ops, bytes written, largest)`` of one fwd+bwd call; the call's own
    outputs (dX and any logits-sized buffer) are not counted as extra."""
    log = OpLog()
    with log:
        launches = record(call, x, y, m)
    logits = x.numel() * x.element_size()
    extra = [(name, size) for name, size in log.ops if size < logits]
    return launches, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", action="store_true", help="list each case's ops")
    parser.add_argument("--shape", default="x".join(map(str, SHAPE)),
                        help="logits shape N×C×H×W (bf16, uint8 labels)")
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split("x"))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(torch.bfloat16)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator,
                           dtype=torch.uint8)
    border = labels.clone()
    border[..., :7] = 255  # a border of ignore labels, as in Cityscapes
    mask = torch.rand((shape[0], *shape[2:]), generator=generator) > 0.1
    logits = x.numel() * x.element_size()
    print(f"logits {tuple(shape)} bf16 ({logits / 2**20:.0f} MiB), uint8 labels; torch "
          f"{torch.__version__}; one fwd+bwd, kernels recorded, not run")
    print("| case | Triton launches | torch ops | bytes they write | × logits | largest "
          "| × logits |")
    print("|---|---|---|---|---|---|---|")
    for name, call in CASES:
        launches, extra = measure(call, x, border if "ignore" in name else labels, mask)
        written = sum(size for _, size in extra)
        largest = max((size for _, size in extra), default=0)
        print(f"| {name} | {len(launches)} | {len(extra)} | {written / 2**20:.1f} MiB | "
              f"{written / logits:.3f} | {largest / 2**20:.1f} MiB | {largest / logits:.3f} |",
              flush=True)
        if args.ops:
            counts = collections.Counter(op for op, _ in extra)
            print("|  | ops: " + ", ".join(f"{op}×{k}" if k > 1 else op
                                           for op, k in counts.items()) + " | | | | | |")


if __name__ == "__main__":
    main()
