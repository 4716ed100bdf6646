"""Fused Triton kernels for the losses (CUDA; on the CPU only under ``TRITON_INTERPRET=1``).

Nothing here is public API: ``seglosses.torch`` picks these kernels with ``impl="auto"`` for CUDA
tensors (or ``impl="triton"``). Each kernel family lives in one file holding its ``@triton.jit``
kernels, the launcher and the ``torch.library`` custom ops with their registered backward:

* :mod:`.softmax`: softmax cross-entropy / focal and the per-(image, class) statistics of Dice,
  Jaccard and Tversky, for index maps (any integer dtype) or one-hot / soft targets;
* :mod:`.sigmoid`: binary / multilabel BCE-with-logits / focal and the sigmoid statistics;
* :mod:`.labels`: one scan of an index map (class counts, the "mean" normaliser and the label
  check) or of a binary / multilabel target (the same per channel), so ignore labels, masks
  and class weights build no label-sized torch map;
* :mod:`.region`: the one-program finalize of the region losses.

Importing this package does not import triton; :func:`available` does, once.
"""

from __future__ import annotations

import os

_AVAILABLE: list[bool] = []  # filled once (a plain global: torch.compile reads it as a constant)


def available() -> bool:
    """True when triton imports (the kernels still need a CUDA tensor or the interpreter)."""
    if not _AVAILABLE:
        try:
            import triton  # noqa: F401
            import triton.language  # noqa: F401

            _AVAILABLE.append(True)
        except Exception:  # pragma: no cover - depends on the machine
            _AVAILABLE.append(False)
    return _AVAILABLE[0]


def interpreting() -> bool:
    """True under ``TRITON_INTERPRET=1``: kernels then run on CPU tensors (slowly)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def rocm() -> bool:
    """True on a ROCm build of torch, whose AMD GPUs are ``cuda`` devices to torch. The
    kernels take their exponential and logarithm from NVIDIA PTX instructions
    (``ex2.approx.ftz``, ``lg2.approx.ftz``), which the AMD assembler rejects, and they are
    tested on NVIDIA GPUs only: there every loss takes the torch path."""
    import torch

    return torch.version.hip is not None


def runs_on(tensor) -> bool:
    """Whether the kernels can run on ``tensor``'s device in this process: an NVIDIA GPU, or
    the CPU under the interpreter."""
    return available() and ((tensor.is_cuda and not rocm())
                            or (interpreting() and tensor.device.type == "cpu"))
