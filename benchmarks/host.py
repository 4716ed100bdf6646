"""The torch work around the Triton kernels of one fwd+bwd call, counted without a GPU.

A fused loss should be its kernels and little else: every extra torch op is a launch (a few
µs of host time and a pass over whatever it reads), and every tensor it writes is memory the
call holds beyond dX. This script runs one fwd+bwd call per case with the kernels replaced by
recorders (``benchmarks/static.py``: nothing runs, CPU tensors stand in for CUDA ones) under a
``TorchDispatchMode`` that logs every aten op, then prints per case: the Triton launches, the
torch ops that are not views, the bytes those ops write (dX, which the kernels write, is left
out), and the largest of those tensors, each as a fraction of the
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


def _ce(**options):
    return lambda x, y, m: sl.cross_entropy(x, y, impl="triton", **options)


def _bce(**options):
    return lambda x, t, m: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                                   **options)


def _dice_ce(**options):
    return lambda x, y, m: sl.dice_ce_loss(x, y, impl="triton", **options)


CASES = [
    ("CE", _ce()),
    ("CE ignore_index=255", _ce(ignore_index=255)),
    ("CE ignore_index=(0, 255)", _ce(ignore_index=(0, 255))),
    ("CE static class weights", lambda x, y, m: sl.cross_entropy(
        x, y, impl="triton", class_weights=[1.0 + 0.1 * c for c in range(x.shape[1])])),
    ("CE class_weights='median_frequency'", _ce(class_weights="median_frequency")),
    ("CE ignore_index=255, median_frequency", _ce(ignore_index=255,
                                                  class_weights="median_frequency")),
    ("CE ignore_index=255, mask", lambda x, y, m: sl.cross_entropy(
        x, y, impl="triton", ignore_index=255, mask=m)),
    ("Dice+CE", _dice_ce()),
    ("Dice+CE ignore_index=255", _dice_ce(ignore_index=255)),
    ("Dice ignore_index=255", lambda x, y, m: sl.dice_loss(x, y, impl="triton",
                                                            ignore_index=255)),
    ("CE one-hot uint8 target", _ce()),
    ("Dice+CE one-hot uint8 target, mask", lambda x, y, m: sl.dice_ce_loss(
        x, y, impl="triton", mask=m)),
    # multilabel: a 0/1 target of the logits' shape ("BCE" in the name)
    ("BCE multilabel", _bce()),
    ("BCE multilabel mask", lambda x, y, m: sl.binary_cross_entropy(
        x, y, mode="multilabel", impl="triton", mask=m)),
    ("BCE multilabel class_weights='balanced'", _bce(class_weights="balanced")),
    ("BCE multilabel ignore_index=255", _bce(ignore_index=255)),
    ("BCE multilabel ignore_index=255, mask, 'balanced'", lambda x, y, m: sl.binary_cross_entropy(
        x, y, mode="multilabel", impl="triton", ignore_index=255, mask=m,
        class_weights="balanced")),
    ("BCE multilabel float target", _bce()),
    ("BCE-Dice multilabel ignore_index=255", lambda x, y, m: sl.dice_ce_loss(
        x, y, mode="multilabel", impl="triton", ignore_index=255)),
]


def targets(shape, generator) -> dict:
    """The targets of the cases for logits of ``shape``: index labels, the same with a border
    of 255 (Cityscapes' ignore label), a multilabel 0/1 map and that with the border; and a
    mask that keeps 90 % of the pixels; the multilabel target also as float32, the labels
    also one-hot (uint8)."""
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator,
                           dtype=torch.uint8)
    multilabel = torch.randint(0, 2, shape, generator=generator, dtype=torch.uint8)
    found = {"labels": labels, "multilabel": multilabel}
    for kind in ("labels", "multilabel"):
        found[f"{kind} ignore"] = found[kind].clone()
        found[f"{kind} ignore"][..., :7] = 255
    found["multilabel float"] = multilabel.float()
    found["one-hot"] = torch.nn.functional.one_hot(labels.long(), shape[1]).movedim(-1, 1).to(
        torch.uint8).contiguous()
    found["mask"] = torch.rand((shape[0], *shape[2:]), generator=generator) > 0.1
    return found


def target_of(name: str, found: dict) -> torch.Tensor:
    """The target a case takes (by its name: "BCE" cases a multilabel 0/1 target, uint8
    unless "float" is named; "one-hot" cases the labels one-hot encoded, uint8)."""
    if "one-hot" in name:
        return found["one-hot"]
    kind = "multilabel" if name.startswith("BCE") else "labels"
    if "float" in name:
        return found[f"{kind} float"]
    return found[f"{kind} ignore" if "ignore" in name else kind]


class OpLog(TorchDispatchMode):
    """Every aten op, the bytes of the tensors it returns (views write nothing) and whether
    it is an uninitialised tensor of the logits' size and dtype (dX, which the kernels
    write, in any view of the logits' shape)."""

    def __init__(self, x):
        super().__init__()
        self.ops: list[tuple[str, int]] = []
        self.numel, self.dtype = x.numel(), x.dtype

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if not getattr(func, "is_view", False):
            tensors = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
            gradient = name.startswith("empty") and any(
                t.numel() == self.numel and t.dtype == self.dtype for t in tensors)
            if not gradient:
                self.ops.append((name, sum(t.untyped_storage().nbytes() for t in tensors)))
        return out


def measure(call, x, y, m):
    """``(launches, ops)`` of one fwd+bwd call: the Triton launches, and each torch op that
    is not a view with the bytes it writes (dX, which the kernels write, left out)."""
    log = OpLog(x)
    with log:
        launches = record(call, x, y, m)
    return launches, log.ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", action="store_true", help="list each case's ops")
    parser.add_argument("--shape", default="x".join(map(str, SHAPE)),
                        help="logits shape N×C×H×W (bf16, uint8 labels)")
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split("x"))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(torch.bfloat16)
    found = targets(shape, generator)
    logits = x.numel() * x.element_size()
    print(f"logits {tuple(shape)} bf16 ({logits / 2**20:.0f} MiB), uint8 targets; torch "
          f"{torch.__version__}; one fwd+bwd, kernels recorded, not run")
    print("| case | Triton launches | torch ops | bytes they write | × logits | largest "
          "| × logits |")
    print("|---|---|---|---|---|---|---|")
    for name, call in CASES:
        launches, extra = measure(call, x, target_of(name, found), found["mask"])
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
