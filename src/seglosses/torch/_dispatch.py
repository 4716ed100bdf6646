"""Which implementation runs a loss (``impl="auto" | "torch" | "triton"``), and the adapters
that hand a prepared problem to the Triton kernels.

The argument checks, target adapter, class-weight strategies, normalisers and the arithmetic
on top of the statistics are the torch path's own (``_targets.py``, ``functional.py``); only
the expensive part (per-pixel terms, per-(image, class) sums, dX) changes implementation, so
the two paths cannot drift apart.
"""

from __future__ import annotations

import torch

from .._spec import IMPLS, check_choice, fail
from ._targets import Multiclass, Sigmoid, arrange_like, as_3d

TRITON_HINT = ("The Triton kernels run on CUDA tensors (with TRITON_INTERPRET=1 also on the CPU, "
               "slowly, for testing); impl='auto' picks them when they can run.")
ROCM_HINT = ("The Triton kernels use NVIDIA PTX instructions and are tested on NVIDIA GPUs only; "
             "impl='auto' takes the torch path on AMD GPUs.")


def resolve_impl(function: str, impl: str, input, *, from_logits: bool = True) -> str:
    """``"torch"`` or ``"triton"`` for ``input`` (``input=None``: only check the option).

    ``"auto"`` takes the kernels for tensors on an NVIDIA GPU (not a ROCm build's AMD GPU)
    when triton imports and the options are covered by them (probabilities,
    ``from_logits=False``, stay on the torch path); ``"triton"`` insists, and says why it
    cannot.
    """
    check_choice(function, "impl", impl, IMPLS)
    if impl == "torch" or input is None or not isinstance(input, torch.Tensor):
        return "torch"
    from .. import triton as kernels

    if impl == "auto":
        usable = input.is_cuda and from_logits and kernels.runs_on(input)
        return "triton" if usable else "torch"
    if not kernels.available():
        raise fail(function, "impl", "be 'auto' or 'torch' when triton is not installed",
                   repr(impl), "Install it with pip install 'seglosses[triton]'.")
    if not kernels.runs_on(input):
        where = f"{input.device} (a ROCm build: an AMD GPU)" if input.is_cuda else input.device
        raise fail(function, "impl", f"be 'auto' or 'torch' for a tensor on {where}",
                   repr(impl), ROCM_HINT if input.is_cuda else TRITON_HINT)
    if not from_logits:
        raise fail(function, "from_logits", "be True with impl='triton' (the kernels read "
                   "logits)", "False", "Use impl='auto' or 'torch' for probabilities.")
    return "triton"


# --------------------------------------------------------------------------------------------
# Adapters: prepared problem → kernel op


def softmax_terms(problem: Multiclass, *, label_smoothing: float, gamma: float = 0.0,
                  scale=None, pixel: str, stats: bool, l1: bool = False):
    """``(pixel term, TP, PS, TS, L1)`` from the softmax kernel.

    ``pixel``: ``"none"``, ``"each"`` ((N, S) terms, weighted by v) or ``"sum"`` (their sum).
    ``scale`` multiplies class c's pixel term (class weights, focal α); ``None`` is 1.
    """
    from ..triton import softmax

    mode = {"none": softmax.PIXEL_NONE, "each": softmax.PIXEL_EACH, "sum": softmax.PIXEL_SUM}
    out = softmax.softmax_terms(problem.x, problem.labels, problem.dense, problem.v, scale,
                                problem.axis, float(label_smoothing), float(gamma), mode[pixel],
                                stats, l1, list(problem.ignore))
    return _present(out, pixel, stats, l1)


def _present(outputs, pixel: str, stats: bool, l1: bool):
    """The ops return empty tensors for what was not asked: None here, as on the torch path."""
    wanted = (pixel != "none", stats, stats, stats, l1)
    return tuple(t if keep else None for t, keep in zip(outputs, wanted, strict=True))


def softmax_reduced(problem: Multiclass, normaliser: torch.Tensor, *, label_smoothing: float,
                    gamma: float = 0.0, scale=None) -> torch.Tensor:
    """``Σ_i ℓ_i / normaliser`` with its gradient written in the same pass (when one is
    needed; otherwise the plain sum kernel)."""
    from ..triton import softmax
    from ..triton._common import divide_safely

    x = problem.x
    if not (x.requires_grad and torch.is_grad_enabled()):
        total = softmax_terms(problem, label_smoothing=label_smoothing, gamma=gamma,
                              scale=scale, pixel="sum", stats=False)[0]
        return divide_safely(total, normaliser)
    return softmax.softmax_fused(x, problem.labels, problem.dense, problem.v, scale,
                                 normaliser.reshape(()), problem.axis, float(label_smoothing),
                                 float(gamma), list(problem.ignore))[0]


def _sigmoid_operands(problem: Sigmoid, alpha):
    """The sigmoid problem in the kernel's 3-D arrangement."""
    x, axis = as_3d(problem.x, problem.class_dim)
    target = arrange_like(problem.target, problem.class_dim, axis)
    v = problem.v
    if v is not None:
        v = arrange_like(v.expand(problem.x.shape), problem.class_dim, axis)
    channels = problem.x.shape[problem.class_dim]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    vectors = []
    for value in (problem.positive_weights, problem.negative_weights, alpha):
        if value is not None:
            value = torch.as_tensor(value, dtype=dtype, device=x.device).reshape(-1)
            # the kernel reads C adjacent values: a scalar is spread, a strided view copied
            value = (value.expand(channels) if value.numel() == 1 else value).contiguous()
        vectors.append(value)
    return x, axis, target, v, vectors


def _from_arranged(t: torch.Tensor, like: torch.Tensor, class_dim: int, axis: int):
    """An element map in the kernel's arrangement back to the layout of ``like``."""
    spatial = [s for a, s in enumerate(like.shape) if a not in (0, class_dim)]
    if axis == 1:
        return t.view(like.shape[0], like.shape[class_dim], *spatial).movedim(1, class_dim)
    return t.view(like.shape[0], *spatial, like.shape[class_dim]).movedim(-1, class_dim)


def sigmoid_terms(problem: Sigmoid, *, label_smoothing: float, gamma: float = 0.0, alpha=None,
                  pixel: str, stats: bool, l1: bool = False):
    """``(element terms, TP, PS, TS, L1)`` from the sigmoid kernel (terms in the input's
    layout for ``pixel="each"``)."""
    from ..triton import sigmoid

    x, axis, target, v, (positive, negative, alpha) = _sigmoid_operands(problem, alpha)
    mode = {"none": sigmoid.PIXEL_NONE, "each": sigmoid.PIXEL_EACH, "sum": sigmoid.PIXEL_SUM}
    out = sigmoid.sigmoid_terms(x, target, v, positive, negative, alpha, axis,
                                float(label_smoothing), float(gamma), mode[pixel], stats, l1,
                                list(problem.ignore))
    out = _present(out, pixel, stats, l1)
    if pixel == "each":
        out = (_from_arranged(out[0], problem.x, problem.class_dim, axis),) + out[1:]
    return out


def sigmoid_reduced(problem: Sigmoid, normaliser: torch.Tensor, *, label_smoothing: float,
                    gamma: float = 0.0, alpha=None) -> torch.Tensor:
    from ..triton import sigmoid
    from ..triton._common import divide_safely

    if not (problem.x.requires_grad and torch.is_grad_enabled()):
        total = sigmoid_terms(problem, label_smoothing=label_smoothing, gamma=gamma,
                              alpha=alpha, pixel="sum", stats=False)[0]
        return divide_safely(total, normaliser)
    x, axis, target, v, (positive, negative, alpha) = _sigmoid_operands(problem, alpha)
    return sigmoid.sigmoid_fused(x, target, v, positive, negative, alpha,
                                 normaliser.reshape(()), axis, float(label_smoothing),
                                 float(gamma), list(problem.ignore))[0]


# --------------------------------------------------------------------------------------------
# Region losses in three launches: statistics pass, finalize, gradient pass


def region_fusable(impl: str, input, class_dim: int, *, reduction: str, aggregate: str) -> bool:
    """Whether a region loss (or compound) takes the fused path: the kernels in eager mode,
    a reduced loss over images or the batch, and an (N, C) table the finalize holds."""
    if impl != "triton" or reduction not in ("mean", "sum") or aggregate not in ("image",
                                                                               "batch"):
        return False
    from ..triton import region
    from ..triton._common import in_graph

    classes = input.shape[class_dim] if input.ndim > 1 else 1
    return not in_graph() and region.fits(input.shape[0], classes)


def region_fused(problem, *, want_l1: bool, has_pixels, ce_normaliser, label_smoothing: float,
                 options: dict, lambda_ce: float = 0.0, lambda_region: float = 1.0):
    """The region loss (plus ``lambda_ce`` × the pixel term when ``ce_normaliser`` is given)
    from one statistics pass, the finalize and, in backward, one gradient pass."""
    from ..triton import region, sigmoid, softmax

    want_ce = ce_normaliser is not None
    if isinstance(problem, Multiclass):
        operands = (problem.x, problem.labels, problem.dense, problem.v, problem.class_weights)
        head = (problem.axis, float(label_smoothing), 0.0)
        ignore = list(problem.ignore)

        def statistics():
            return softmax._terms(*operands, *head, softmax.PIXEL_SUM if want_ce else
                                  softmax.PIXEL_NONE, True, want_l1, ignore)

        def gradient(coefficients, ce_scale, upstream):
            return softmax._grad(*operands, ce_scale if want_ce else None, coefficients, *head,
                                 want_l1, ignore, upstream)
    else:
        x, axis, target, v, (positive, negative, alpha) = _sigmoid_operands(problem, None)
        operands = (x, target, v, positive, negative, alpha)
        head = (axis, float(label_smoothing), 0.0)
        ignore = list(problem.ignore)

        def statistics():
            return sigmoid._terms(*operands, *head, sigmoid.PIXEL_SUM if want_ce else
                                  sigmoid.PIXEL_NONE, True, want_l1, ignore)

        def gradient(coefficients, ce_scale, upstream):
            pixel = ce_scale.reshape(1, 1, 1).expand(x.shape) if want_ce else None
            grad = sigmoid._grad(*operands, pixel, coefficients, *head, want_l1, ignore,
                                 upstream)
            return _from_arranged(grad, problem.x, problem.class_dim, axis)

    def compute():
        ce, tp, ps, ts, l1 = statistics()
        return region.finalize(tp, ps, ts, l1 if want_l1 else None,
                               class_weights=problem.class_weights, has_pixels=has_pixels,
                               ce=ce if want_ce else None, ce_normaliser=ce_normaliser,
                               lambda_ce=lambda_ce, lambda_region=lambda_region, **options)

    return region.region_loss(problem.x, compute, gradient)
