"""Which implementation runs a loss: ``impl="auto" | "torch" | "triton"``."""

from __future__ import annotations

from .._spec import IMPLS, check_choice, fail


def resolve_impl(function: str, impl: str, input) -> str:
    """The implementation for ``input`` (``None``: only check the option).

    The fused Triton kernels are not part of this release, so ``"auto"`` resolves to the
    PyTorch path on every device and ``"triton"`` is refused with an explicit message.
    """
    check_choice(function, "impl", impl, IMPLS)
    if impl == "triton":
        raise fail(function, "impl", "be 'auto' or 'torch' in this version (the Triton kernels "
                   "are not shipped yet)", repr(impl))
    return "torch"
