r"""The region losses' finalize: statistics → loss and the backward's coefficient table.

After the statistics pass, the Tversky-family arithmetic of :func:`region_loss` (Dice,
Jaccard, Tversky, focal-Tversky; ``absent``, ``include_background``, class weights, pixels
that count, ``aggregate="image"``/``"batch"``, ``"mean"``/``"sum"``) and a compound's CE term
run in one program over the ``(N, C)`` table instead of ~50 small torch operations forward and
backward. Its derivatives are written at once:

``T = (TP + s) / D``, ``D = TP + α(PS - TP) + β(TS - TP) + s``, a pair's loss ``(1 - T)^γ``, so

* ``∂T/∂TP = 1/D - (TP + s)(1 - α - β)/D²`` and ``∂T/∂PS = -(TP + s) α / D²`` (0 where D = 0),
* with ``soft_label`` (``TP = (PS + TS - L1) / 2``) the chain gives ``∂/∂PS += ∂/∂TP / 2`` and
  ``∂/∂L1 = -∂/∂TP / 2``,
* with ``aggregate="batch"`` every image's statistic shares the batch's derivative.

The table ``(∂L/∂PS, ∂L/∂TP, ∂L/∂L1)`` (λ_dice folded in) and ``∂L/∂ΣCE`` (λ_ce over the CE
normaliser) are what the gradient pass needs; backward scales them by grad_output on the
device. ``tests/test_triton.py`` checks the whole thing against the torch arithmetic.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ._common import COMPILER, accumulate_dtype, tensor_device

MAX_PAIRS = 8192  # padded N × C handled by the one program; larger tables use torch


@triton.jit
def _finalize_kernel(
        tp_ptr, ps_ptr, ts_ptr, l1_ptr, w_ptr, hp_ptr, ce_ptr, norm_ptr, out_ptr, coef_ptr,
        ce_scale_ptr, params_ptr, N, C,
        L1: tl.constexpr, BATCH: tl.constexpr, ABSENT_INCLUDE: tl.constexpr,
        HAS_HP: tl.constexpr, HP_PER_CLASS: tl.constexpr, FIRST: tl.constexpr,
        HAS_W: tl.constexpr, MEAN: tl.constexpr, HAS_CE: tl.constexpr, GAMMA_ONE: tl.constexpr,
        ACC: tl.constexpr, NP: tl.constexpr, CP: tl.constexpr):
    alpha = tl.load(params_ptr).to(ACC)
    beta = tl.load(params_ptr + 1).to(ACC)
    gamma = tl.load(params_ptr + 2).to(ACC)
    smooth = tl.load(params_ptr + 3).to(ACC)
    lambda_ce = tl.load(params_ptr + 4).to(ACC)
    lambda_region = tl.load(params_ptr + 5).to(ACC)
    tiny = tl.load(params_ptr + 6).to(ACC)
    images = tl.arange(0, NP)
    classes = tl.arange(0, CP)
    pair = (images < N)[:, None] & (classes < C)[None, :]
    offsets = images[:, None] * C + classes[None, :]
    tp = tl.load(tp_ptr + offsets, mask=pair, other=0.0).to(ACC)
    ps = tl.load(ps_ptr + offsets, mask=pair, other=0.0).to(ACC)
    ts = tl.load(ts_ptr + offsets, mask=pair, other=0.0).to(ACC)
    if L1:  # soft_label: the overlap from the L1 distance, minimised at p = t
        tp = (ps + ts - tl.load(l1_ptr + offsets, mask=pair, other=0.0).to(ACC)) / 2.0
    if HAS_HP:  # pairs (or whole images) with at least one pixel that counts
        if HP_PER_CLASS:
            counts = tl.load(hp_ptr + offsets, mask=pair, other=0.0).to(ACC)
        else:
            counts = tl.broadcast_to(
                tl.load(hp_ptr + images, mask=images < N, other=0.0).to(ACC)[:, None], [NP, CP])
    if BATCH:  # one pair per class: the batch's sums (every image shares their derivative)
        tp = tl.sum(tp, axis=0)[None, :]
        ps = tl.sum(ps, axis=0)[None, :]
        ts = tl.sum(ts, axis=0)[None, :]
        if HAS_HP:
            counts = tl.max(counts, axis=0)[None, :]
        kept = (classes >= FIRST)[None, :] & (classes < C)[None, :]
    else:
        kept = pair & (classes >= FIRST)[None, :]
    numerator = tp + smooth
    denominator = tp + alpha * (ps - tp) + beta * (ts - tp) + smooth
    empty = denominator == 0.0
    safe = tl.where(empty, 1.0, denominator)
    index = tl.where(empty, 1.0, numerator / safe)
    rest = 1.0 - index
    if GAMMA_ONE:
        loss = rest
        slope = tl.full(rest.shape, -1.0, ACC)
    else:  # (1 - T)^γ with the torch path's floor: clamp_min(tiny) ** γ
        floored = tl.maximum(rest, tiny)
        loss = tl.exp(gamma * tl.log(floored))
        slope = tl.where(rest >= tiny, -gamma * tl.exp((gamma - 1.0) * tl.log(floored)), 0.0)
    weight = tl.where(kept, 1.0, 0.0).to(ACC)
    if not ABSENT_INCLUDE:
        weight = tl.where(ts > 0.0, weight, 0.0)
    if HAS_HP:
        weight = weight * counts
    if HAS_W:
        weight = weight * tl.load(w_ptr + classes, mask=classes < C, other=0.0).to(ACC)[None, :]
    total = tl.sum(tl.sum(loss * weight, axis=1), axis=0)
    if MEAN:
        count = tl.sum(tl.sum(weight, axis=1), axis=0)
        count = tl.where(count > 0.0, count, 1.0)
        total = total / count
        weight = weight / count
    d_index = tl.where(empty, 0.0, lambda_region * weight * slope)
    d_tp = d_index * (1.0 / safe - numerator * (1.0 - alpha - beta) / (safe * safe))
    d_ps = d_index * (-numerator * alpha / (safe * safe))
    if L1:
        d_l1 = -d_tp / 2.0
        d_ps = d_ps + d_tp / 2.0
        d_tp = tl.zeros_like(d_tp)
    else:
        d_l1 = tl.zeros_like(d_tp)
    table = N * C
    # (∂L/∂PS, ∂L/∂TP, ∂L/∂L1) per (image, class); a batch pair's derivative broadcasts
    tl.store(coef_ptr + offsets, tl.broadcast_to(d_ps, [NP, CP]), mask=pair)
    tl.store(coef_ptr + table + offsets, tl.broadcast_to(d_tp, [NP, CP]), mask=pair)
    tl.store(coef_ptr + 2 * table + offsets, tl.broadcast_to(d_l1, [NP, CP]), mask=pair)
    result = lambda_region * total
    if HAS_CE:  # the compound's pixel term: Σ CE over its normaliser ("mean") or alone ("sum")
        ce = tl.load(ce_ptr).to(ACC)
        if MEAN:
            normaliser = tl.load(norm_ptr).to(ACC)
            counted = normaliser > 0.0
            scale = lambda_ce / tl.where(counted, normaliser, 1.0)
        else:
            scale = lambda_ce
        result += ce * scale
        tl.store(ce_scale_ptr, scale)
    else:
        tl.store(ce_scale_ptr, 0.0)
    tl.store(out_ptr, result)


@functools.lru_cache(maxsize=256)
def _params(alpha, beta, gamma, smooth, lambda_ce, lambda_region, dtype, device):
    """The finalize's scalars as a cached device tensor in the accumulation dtype."""
    return torch.tensor([alpha, beta, gamma, smooth, lambda_ce, lambda_region,
                         torch.finfo(dtype).tiny], dtype=dtype, device=device)


def fits(num_images: int, num_classes: int) -> bool:
    """Whether the ``(N, C)`` table is small enough for the one-program finalize."""
    return (triton.next_power_of_2(max(num_images, 1))
            * triton.next_power_of_2(max(num_classes, 1))) <= MAX_PAIRS


def finalize(tp, ps, ts, l1, *, class_weights, has_pixels, ce, ce_normaliser, alpha, beta,
             gamma, smooth, absent, aggregate, include_background, reduction, lambda_ce=0.0,
             lambda_region=1.0):
    """``(loss, (3, N, C) coefficient table, ∂loss/∂ΣCE)`` from the ``(N, C)`` statistics.

    ``ce``/``ce_normaliser``: a compound's summed pixel term and its "mean" denominator
    (None without one). The arguments mean what :func:`region_loss` and ``_reduce_pixels``
    take; ``aggregate`` is ``"image"`` or ``"batch"`` and ``reduction`` ``"mean"`` or ``"sum"``.
    """
    n, num_classes = tp.shape
    dtype = tp.dtype
    device = tp.device
    out = torch.empty((), dtype=dtype, device=device)
    ce_scale = torch.empty((), dtype=dtype, device=device)
    coef = torch.empty(3, n, num_classes, dtype=dtype, device=device)
    holder = out
    if has_pixels is not None:
        has_pixels = has_pixels.to(dtype).contiguous()
    if class_weights is not None:  # read as C adjacent values
        class_weights = class_weights.contiguous()
    with tensor_device(tp):
        _finalize_kernel[(1,)](
            tp, ps, ts, holder if l1 is None else l1,
            holder if class_weights is None else class_weights,
            holder if has_pixels is None else has_pixels,
            holder if ce is None else ce, holder if ce_normaliser is None else ce_normaliser,
            out, coef, ce_scale,
            _params(float(alpha), float(beta), float(gamma), float(smooth), float(lambda_ce),
                    float(lambda_region), dtype, device),
            n, num_classes,
            L1=l1 is not None, BATCH=aggregate == "batch", ABSENT_INCLUDE=absent == "include",
            HAS_HP=has_pixels is not None,
            HP_PER_CLASS=has_pixels is not None and has_pixels.shape[1] > 1,
            FIRST=0 if include_background else 1,
            HAS_W=class_weights is not None, MEAN=reduction == "mean", HAS_CE=ce is not None,
            GAMMA_ONE=gamma == 1, ACC=accumulate_dtype(dtype),
            NP=triton.next_power_of_2(max(n, 1)), CP=triton.next_power_of_2(max(num_classes, 1)),
            **COMPILER)
    return out, coef, ce_scale


class _RegionLoss(torch.autograd.Function):
    """The loss from ``compute()`` (statistics pass + finalize); backward hands the
    coefficient table, ``∂L/∂ΣCE`` and grad_output (0-d, on the device) to ``gradient`` (the
    pass that writes dX, scaled by grad_output)."""

    @staticmethod
    def forward(ctx, x, compute, gradient):
        loss, coefficients, ce_scale = compute()
        ctx.save_for_backward(coefficients, ce_scale)
        ctx.gradient = gradient
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        coefficients, ce_scale = ctx.saved_tensors
        # the gradient pass multiplies by grad_output itself (no two launches of torch's mul)
        return ctx.gradient(coefficients, ce_scale, grad_output), None, None


def region_loss(x, compute, gradient):
    """Differentiable region loss of ``x`` (eager mode; torch.compile takes the custom ops)."""
    return _RegionLoss.apply(x, compute, gradient)
