r"""Sigmoid kernels: BCE-with-logits / sigmoid focal per element and the sigmoid statistics.

Binary and multilabel problems are elementwise: ``p = σ(x)`` per channel. The logits are viewed
as ``(N, C, S)`` or ``(N, S, C)`` (whichever needs no copy); the target keeps its own dtype
(uint8/bool masks are read as bytes) and label smoothing ``y' = (1-ε) y + ε/2`` happens in
registers. Per element, with ``pw``/``nw`` the positive / negative weights along the channel
axis, ``α_t`` and the focal modulation ``m = (1 - p_t)^γ`` (``p_t = p y' + (1-p)(1-y')``):

    ℓ = v α_t m [pw y' softplus(-x) + nw (1-y') softplus(x)]

and its derivative is written in the same pass when the loss is reduced and nothing else is
asked. The region statistics ``Σ v p t, Σ v p, Σ v t, Σ v |p - t|`` per (image, channel) use the
unsmoothed target; their gradient is ``v (A + B t + L1 sign(p - t)) p (1 - p)``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    COMPILER,
    absent,
    accumulate_dtype,
    channel_group,
    coefficient_table,
    comparable_ignore,
    dense_rows,
    differentiable,
    distinct_outputs,
    dummy,
    flat_span,
    focal_power,
    fused_backward,
    geometry,
    ignore_values,
    inverse_normaliser,
    is_eager,
    label_status,
    load_params,
    logit_rows,
    ncs_strides,
    params,
    result_dtype,
    setup_fused,
    sigmoid_geometry,
    softplus_sigmoid,
    statistics_slope,
    statistics_sums,
    tensor_device,
    tile_at,
)
from .softmax import (
    GRAD_BACKWARD,
    GRAD_FUSED,
    GRAD_NONE,
    PIXEL_EACH,
    PIXEL_NONE,
    PIXEL_SUM,
)


@triton.jit
def _drop_ignored(t, counts, ignore_ptr, IGNORE: tl.constexpr):
    """``(t, counts)`` with the elements whose integer target is one of the ``IGNORE`` labels
    set to t = 0 and left out of ``counts``."""
    if IGNORE:
        dropped = label_status(t, 2, ignore_ptr, IGNORE)[0]
        t = tl.where(dropped, 0, t)
        counts = counts & ~dropped
    return t, counts


@triton.jit
def _bce_terms(x, y, soft, p, pw, nw, alpha, gamma, tiny, HAS_PW: tl.constexpr,
               HAS_NW: tl.constexpr, FOCAL: tl.constexpr, HAS_ALPHA: tl.constexpr):
    """``(ℓ, ∂ℓ/∂x)`` per element before v: BCE-with-logits of the smoothed target ``y`` with
    the positive / negative weights ``pw`` / ``nw`` (when given), the focal modulation and
    ``α_t``; ``soft``, ``p``: ``softplus_sigmoid(x)``."""
    positive = y
    negative = 1.0 - y
    if HAS_PW:
        positive = positive * pw
    if HAS_NW:
        negative = negative * nw
    # softplus(-x) = -log p, softplus(x) = -log(1 - p)
    if HAS_PW or HAS_NW:
        bce = (positive * (tl.maximum(-x, 0.0) + soft)
               + negative * (tl.maximum(x, 0.0) + soft))
        slope = positive * (p - 1.0) + negative * p
    else:  # the same with positive + negative = 1: 3 and 1 instructions
        bce = tl.maximum(x, 0.0) - y * x + soft
        slope = p - y
    if FOCAL:
        p_t = p * y + (1.0 - p) * (1.0 - y)
        rest = tl.maximum(1.0 - p_t, tiny)
        modulation = focal_power(rest, gamma)
        d_modulation = tl.where(1.0 - p_t > tiny, -gamma * (modulation / rest), 0.0)
        slope = slope * modulation + bce * d_modulation * (2.0 * y - 1.0) * p * (1.0 - p)
        bce = bce * modulation
    if HAS_ALPHA:
        alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y)
        bce = bce * alpha_t
        slope = slope * alpha_t
    return bce, slope


@triton.jit
def _sigmoid_flat_kernel(
        x_ptr, t_ptr, v_ptr, pw_ptr, nw_ptr, alpha_ptr, g_ptr, norm_ptr, pixel_ptr, dx_ptr,
        ignore_ptr, N, E, sxn, stn, svn, svs, svc, sgn, sge, son, sdn, params_ptr,
        HAS_V: tl.constexpr, HAS_PW: tl.constexpr, HAS_NW: tl.constexpr,
        HAS_ALPHA: tl.constexpr, FOCAL: tl.constexpr, PIXEL: tl.constexpr, GRAD: tl.constexpr,
        HAS_G: tl.constexpr, IGNORE: tl.constexpr, UPSTREAM: tl.constexpr, ACC: tl.constexpr,
        BLOCK: tl.constexpr, CLASSES: tl.constexpr):
    """The loss and dX elementwise over class-contiguous logits whose image is one span of
    ``E`` = pixels × ``CLASSES`` values, with a target (and dX, and a per-element loss) in
    the same layout: ``BLOCK`` adjacent values per program, read and written in 16-byte
    vectors whatever the class count, as NCHW logits are. An element's class (for the
    per-class weights) and pixel (for v) come from its offset, a division by the constant
    ``CLASSES`` done only when one of them is needed."""
    eps, gamma, tiny = load_params(params_ptr, ACC)
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    start = block.to(tl.int64) * BLOCK
    elements = start + tl.arange(0, BLOCK)
    inside = elements < E
    x = tl.load(x_ptr + n * sxn + elements, mask=inside, other=0.0).to(ACC)
    t = tl.load(t_ptr + n * stn + elements, mask=inside, other=0)
    t, counts = _drop_ignored(t, inside, ignore_ptr, IGNORE)
    t = t.to(ACC)
    if (HAS_PW or HAS_NW) or (HAS_ALPHA or HAS_V):  # (triton 3.3: no chains)
        offset = (start % CLASSES).to(tl.int32) + tl.arange(0, BLOCK)
        channels = offset % CLASSES
    if HAS_V:
        pixels = start // CLASSES + (offset // CLASSES).to(tl.int64)
        v = tl.where(counts, tl.load(v_ptr + n * svn + pixels * svs + channels * svc,
                                     mask=inside, other=0.0).to(ACC), 0.0)
    else:
        v = counts.to(ACC)
    pw = 0.0
    nw = 0.0
    alpha = 0.0
    if HAS_PW:
        pw = tl.load(pw_ptr + channels, mask=inside, other=0.0).to(ACC)
    if HAS_NW:
        nw = tl.load(nw_ptr + channels, mask=inside, other=0.0).to(ACC)
    if HAS_ALPHA:
        alpha = tl.load(alpha_ptr + channels, mask=inside, other=0.0).to(ACC)
    soft, p = softplus_sigmoid(x)
    bce, slope = _bce_terms(x, t * (1.0 - eps) + eps * 0.5, soft, p, pw, nw, alpha, gamma,
                            tiny, HAS_PW, HAS_NW, FOCAL, HAS_ALPHA)
    if GRAD == 2:
        g = inverse_normaliser(norm_ptr, ACC)
    if PIXEL == 1:
        tl.store(pixel_ptr + n * son + elements, (v * bce).to(pixel_ptr.dtype.element_ty),
                 mask=inside)
    if PIXEL == 2:
        total = tl.sum(v * bce, axis=0)
        if GRAD == 2:  # the loss divided by its normaliser
            total = total * g
        tl.store(pixel_ptr + block * N + n, total)
    if GRAD != 0:
        if GRAD == 2:
            dx = g * v * slope
        else:
            dx = tl.load(g_ptr + n * sgn + elements * sge, mask=inside,
                         other=0.0).to(ACC) * v * slope
        if UPSTREAM:
            dx = dx * tl.load(norm_ptr).to(ACC)
        tl.store(dx_ptr + n * sdn + elements, dx.to(dx_ptr.dtype.element_ty), mask=inside)


@triton.jit(do_not_specialize=["opaque"])
def _sigmoid_kernel(
        x_ptr, t_ptr, v_ptr, pw_ptr, nw_ptr, alpha_ptr, g_ptr, coef_ptr, norm_ptr, pixel_ptr,
        part_ptr, dx_ptr, ignore_ptr,
        N, S, C, P,
        sxn, sxc, sxs, stn, stc, sts, svn, svc, svs, sgn, sgc, sgs, son, soc, sos,
        sdn, sdc, sds, opaque,
        params_ptr,
        HAS_V: tl.constexpr, HAS_PW: tl.constexpr, HAS_NW: tl.constexpr,
        HAS_ALPHA: tl.constexpr, FOCAL: tl.constexpr, PIXEL: tl.constexpr,
        STATS: tl.constexpr, L1: tl.constexpr, GRAD: tl.constexpr, HAS_G: tl.constexpr,
        HAS_COEF: tl.constexpr, WANT_LOSS: tl.constexpr, LOSS_GRAD: tl.constexpr,
        IGNORE: tl.constexpr, UPSTREAM: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr,
        CH: tl.constexpr,
        UNROLL: tl.constexpr, DENSE: tl.constexpr, DENSE_T: tl.constexpr,
        GROUP: tl.constexpr, ACROSS: tl.constexpr, STRIDED: tl.constexpr):
    """Elementwise over ``[BLOCK pixels, CH channels]`` tiles, walking the channels CH at a
    time: CH = 1 for pixel-contiguous logits (NCHW), all channels at once for
    channel-contiguous ones (channels_last), so every access is contiguous. The logits and
    targets of ``GROUP`` tiles are loaded before any is written (a load is not moved above a
    store, which might alias it), so that many tiles are in flight per thread. An element
    whose integer target is one of the ``IGNORE`` labels counts as v = 0, t = 0. ``DENSE`` /
    ``DENSE_T``: the logits and dX / the target are rows of exactly CH adjacent values.

    Per-pixel maps beside whole rows of channel-contiguous logits (``CH`` > 1): ``v`` always
    (a per-pixel map, broadcast along the channels), and the target with ``ACROSS`` (an NCHW
    mask beside channels_last logits). Their pixel strides are multiplied by ``opaque`` (1,
    never specialised), so the compiler loads them in the tile's own layout (each thread its
    pixels' channels, a warp's lanes 32 adjacent pixels of one channel) instead of
    vectorising along the pixels and transposing the result through shared memory (16-26
    block barriers per program, benchmarks/static.py).

    ``STRIDED``: one channel at a time (``CH`` = 1) over logits whose pixel stride is not 1
    (class-contiguous rows sent to the channel walk, ``_common.logit_rows``). The pixel
    strides of v, the target and the upstream gradient are multiplied by ``opaque`` for the
    same reason: an NCHW mask beside such logits is then read one pixel per thread, as the
    logits are."""
    eps, gamma, tiny = load_params(params_ptr, ACC)
    if CH > 1 or STRIDED:
        svs = svs * opaque
        if ACROSS or STRIDED:
            sts = sts * opaque
        if STRIDED:
            sgs = sgs * opaque
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    pixels = block * BLOCK + tl.arange(0, BLOCK)
    inside = pixels < S
    pixels = pixels.to(tl.int64)[:, None]
    if GRAD == 2:
        g = inverse_normaliser(norm_ptr, ACC)
    if UPSTREAM:  # a backward pass alone: grad_output (at norm_ptr) scales all of dX
        upstream = tl.load(norm_ptr).to(ACC)
    loss_sum = tl.zeros([BLOCK, CH], ACC)
    for first in tl.range(0, C, CH * GROUP, loop_unroll_factor=UNROLL):
        xs = ()
        ts = ()
        for j in tl.static_range(GROUP):
            channels = first + j * CH + tl.arange(0, CH)
            tile = inside[:, None] & (channels < C)[None, :]
            channels = channels.to(tl.int64)[None, :]
            x_at, x_mask = tile_at(x_ptr, n, sxn, sxs, sxc, pixels, channels, inside, tile, CH,
                                   DENSE)
            t_at, t_mask = tile_at(t_ptr, n, stn, sts, stc, pixels, channels, inside, tile,
                                   CH, DENSE_T)
            xs = xs + (tl.load(x_at, mask=x_mask, other=0.0),)
            ts = ts + (tl.load(t_at, mask=t_mask, other=0),)
        for j in tl.static_range(GROUP):
            channels = first + j * CH + tl.arange(0, CH)
            valid = channels < C
            tile = inside[:, None] & valid[None, :]
            channels = channels.to(tl.int64)[None, :]
            x_mask = tile_at(x_ptr, n, sxn, sxs, sxc, pixels, channels, inside, tile, CH,
                             DENSE)[1]
            dx_at = tile_at(dx_ptr, n, sdn, sds, sdc, pixels, channels, inside, tile, CH,
                            DENSE)[0]
            x = xs[j].to(ACC)
            t = ts[j]
            t, counts = _drop_ignored(t, tile, ignore_ptr, IGNORE)
            t = t.to(ACC)
            if HAS_V:  # loaded under the tile's mask (vectorised), ignored elements dropped
                v = tl.where(counts, tl.load(v_ptr + n * svn + pixels * svs + channels * svc,
                                             mask=tile, other=0.0).to(ACC), 0.0)
            else:
                v = counts.to(ACC)
            soft, p = softplus_sigmoid(x)
            if WANT_LOSS or LOSS_GRAD:
                pw = 0.0
                nw = 0.0
                alpha = 0.0
                if HAS_PW:
                    pw = tl.load(pw_ptr + channels, mask=valid[None, :], other=0.0).to(ACC)
                if HAS_NW:
                    nw = tl.load(nw_ptr + channels, mask=valid[None, :], other=0.0).to(ACC)
                if HAS_ALPHA:
                    alpha = tl.load(alpha_ptr + channels, mask=valid[None, :],
                                    other=0.0).to(ACC)
                bce, slope = _bce_terms(x, t * (1.0 - eps) + eps * 0.5, soft, p, pw, nw, alpha,
                                        gamma, tiny, HAS_PW, HAS_NW, FOCAL, HAS_ALPHA)
                if PIXEL == 1:
                    tl.store(pixel_ptr + n * son + pixels * sos + channels * soc,
                             (v * bce).to(pixel_ptr.dtype.element_ty), mask=tile)
                if PIXEL == 2:
                    loss_sum += v * bce
            if STATS:
                slots = part_ptr + (n * C + channels) * P + block
                tp, ps, ts, l1 = statistics_sums(v, p, t, L1)
                tl.store(slots, tp[None, :], mask=valid[None, :])
                tl.store(slots + N * C * P, ps[None, :], mask=valid[None, :])
                tl.store(slots + 2 * N * C * P, ts[None, :], mask=valid[None, :])
                if L1:
                    tl.store(slots + 3 * N * C * P, l1[None, :], mask=valid[None, :])
            if GRAD != 0:
                dx = tl.zeros([BLOCK, CH], ACC)
                if GRAD == 2:
                    dx += g * v * slope
                elif HAS_G:
                    dx += tl.load(g_ptr + n * sgn + pixels * sgs + channels * sgc, mask=tile,
                                  other=0.0).to(ACC) * v * slope
                if HAS_COEF:
                    dx += v * statistics_slope(coef_ptr, n, N, C, channels, valid[None, :], p,
                                               t, ACC, L1) * p * (1.0 - p)
                if UPSTREAM:
                    dx = dx * upstream
                tl.store(dx_at, dx.to(dx_ptr.dtype.element_ty), mask=x_mask)
    if PIXEL == 2:
        total = tl.sum(tl.sum(loss_sum, axis=1), axis=0)
        if GRAD == 2:  # the loss divided by its normaliser
            total = total * g
        tl.store(pixel_ptr + block * N + n, total)


def _launch(x, target, v, positive, negative, alpha, axis, eps, gamma, *, pixel, stats, l1,
            grad, grad_pixel=None, coefficients=None, normaliser=None, upstream=None,
            ignore=()):
    """Run the kernel once over ``x`` (3-D view); returns ``(pixel, stats, dx)``."""
    ignore = comparable_ignore(ignore, target)
    n, num_channels, spatial = x.shape[0], x.shape[axis], x.shape[3 - axis]
    out_dtype = result_dtype(x.dtype)
    # the flat kernel writes a per-element loss in x's layout: the (contiguous) output
    # has it only when the class axis is last
    if (not stats and coefficients is None and (grad != GRAD_BACKWARD or grad_pixel is not None)
            and (pixel != PIXEL_EACH or axis == 2)
            and flat_span(x, axis, target, None if grad_pixel is None or not any(
                grad_pixel.stride()) else grad_pixel)):
        return _launch_flat(x, target, v, positive, negative, alpha, axis, eps, gamma,
                            pixel=pixel, grad=grad, grad_pixel=grad_pixel,
                            normaliser=normaliser, upstream=upstream, ignore=ignore)
    block, warps, unroll = sigmoid_geometry(spatial)
    channels, group = 1, channel_group(num_channels)
    rows = logit_rows(x, axis)  # channel-contiguous logits: whole rows per tile
    if rows:
        (block, channels), group = rows, 1
        warps, unroll = geometry(spatial)[1:]
    programs = triton.cdiv(spatial, block)
    pixel_out = part = dx = None
    if pixel == PIXEL_EACH:
        pixel_out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    elif pixel == PIXEL_SUM:
        pixel_out = torch.empty(programs, n, dtype=out_dtype, device=x.device)
    if stats:
        part = torch.empty(4 if l1 else 3, n, num_channels, programs, dtype=out_dtype,
                           device=x.device)
    if grad != GRAD_NONE:
        dx = torch.empty_like(x)  # x's strides (channels_last stays channels_last)
    if n and spatial and programs:
        holder = dummy(x)
        each = pixel_out if pixel == PIXEL_EACH else None
        with tensor_device(x):
            _sigmoid_kernel[(programs, n)](
                x, target, holder if v is None else v, holder if positive is None else positive,
                holder if negative is None else negative, holder if alpha is None else alpha,
                holder if grad_pixel is None else grad_pixel,
                holder if coefficients is None else coefficients,
                normaliser if normaliser is not None else holder if upstream is None else upstream,
                holder if pixel_out is None else pixel_out, holder if part is None else part,
                holder if dx is None else dx,
                ignore_values(ignore, x.device) if ignore else holder,
                n, spatial, num_channels, programs,
                *ncs_strides(x, axis), *ncs_strides(target, axis), *ncs_strides(v, axis),
                *ncs_strides(grad_pixel, axis), *ncs_strides(each, axis), *ncs_strides(dx, axis),
                1, params(float(eps), float(gamma), out_dtype, x.device),
                HAS_V=v is not None, HAS_PW=positive is not None, HAS_NW=negative is not None,
                HAS_ALPHA=alpha is not None, FOCAL=gamma != 0, PIXEL=pixel, STATS=stats, L1=l1,
                GRAD=grad, HAS_G=grad_pixel is not None, HAS_COEF=coefficients is not None,
                WANT_LOSS=pixel != PIXEL_NONE,
                LOSS_GRAD=grad == GRAD_FUSED or (grad == GRAD_BACKWARD and grad_pixel is not None),
                IGNORE=len(ignore), UPSTREAM=upstream is not None and grad == GRAD_BACKWARD,
                ACC=accumulate_dtype(x.dtype), BLOCK=block, CH=channels,
                UNROLL=unroll, DENSE=rows is not None and dense_rows(x, axis, channels)
                and dense_rows(dx, axis, channels),
                DENSE_T=rows is not None and dense_rows(target, axis, channels), GROUP=group,
                ACROSS=rows is not None and target.stride(axis) != 1,
                STRIDED=rows is None and ncs_strides(x, axis)[2] != 1, num_warps=warps,
                **COMPILER)
    else:
        part = None if part is None else part.zero_()
        pixel_out = pixel_out.zero_() if pixel == PIXEL_SUM else pixel_out
        dx = None if dx is None else dx.zero_()
    if pixel == PIXEL_SUM:
        pixel_out = pixel_out.sum()
    # one reduction for all statistics (views of one tensor: the custom op copies them)
    return pixel_out, (None if part is None else part.sum(-1).unbind(0)), dx


def _launch_flat(x, target, v, positive, negative, alpha, axis, eps, gamma, *, pixel, grad,
                 grad_pixel, normaliser, upstream, ignore):
    """``_launch`` by ``_sigmoid_flat_kernel``: no statistics, and ``x``, ``target``,
    ``grad_pixel`` (unless a broadcast scalar) and a per-element loss (contiguous in x's
    shape) one span of pixels × C values per image."""
    n, num_channels, spatial = x.shape[0], x.shape[axis], x.shape[3 - axis]
    out_dtype = result_dtype(x.dtype)
    elements = spatial * num_channels
    block, warps, _ = sigmoid_geometry(elements)
    programs = triton.cdiv(elements, block)
    pixel_out = None
    if pixel == PIXEL_EACH:
        pixel_out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    elif pixel == PIXEL_SUM:
        pixel_out = torch.empty(programs, n, dtype=out_dtype, device=x.device)
    dx = None if grad == GRAD_NONE else torch.empty_like(x)
    if n and elements:
        holder = dummy(x)
        svn, svc, svs = ncs_strides(v, axis)
        broadcast = grad_pixel is not None and not any(grad_pixel.stride())
        with tensor_device(x):
            _sigmoid_flat_kernel[(programs, n)](
                x, target, holder if v is None else v, holder if positive is None else positive,
                holder if negative is None else negative, holder if alpha is None else alpha,
                holder if grad_pixel is None else grad_pixel,
                normaliser if normaliser is not None else holder if upstream is None else upstream,
                holder if pixel_out is None else pixel_out, holder if dx is None else dx,
                ignore_values(ignore, x.device) if ignore else holder,
                n, elements, ncs_strides(x, axis)[0], ncs_strides(target, axis)[0], svn, svs, svc,
                0 if grad_pixel is None else ncs_strides(grad_pixel, axis)[0],
                0 if grad_pixel is None or broadcast else 1,
                0 if pixel != PIXEL_EACH else ncs_strides(pixel_out, axis)[0],
                0 if dx is None else ncs_strides(dx, axis)[0],
                params(float(eps), float(gamma), out_dtype, x.device),
                HAS_V=v is not None, HAS_PW=positive is not None, HAS_NW=negative is not None,
                HAS_ALPHA=alpha is not None, FOCAL=gamma != 0, PIXEL=pixel, GRAD=grad,
                HAS_G=grad_pixel is not None, IGNORE=len(ignore),
                UPSTREAM=upstream is not None and grad == GRAD_BACKWARD,
                ACC=accumulate_dtype(x.dtype), BLOCK=block, CLASSES=num_channels,
                num_warps=warps, **COMPILER)
    else:
        pixel_out = pixel_out.zero_() if pixel == PIXEL_SUM else pixel_out
        dx = None if dx is None else dx.zero_()
    if pixel == PIXEL_SUM:
        pixel_out = pixel_out.sum()
    return pixel_out, None, dx

def _terms(x: torch.Tensor, target: torch.Tensor, v: torch.Tensor | None,
           positive: torch.Tensor | None, negative: torch.Tensor | None,
           alpha: torch.Tensor | None, axis: int, label_smoothing: float,
           gamma: float, pixel: int, stats: bool, l1: bool,
           ignore: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                       torch.Tensor]:
    """``(element terms, TP, PS, TS, L1)``; absent outputs are empty tensors."""
    pixel_out, sums, _ = _launch(x, target, v, positive, negative, alpha, axis,
                                 label_smoothing, gamma, pixel=pixel, stats=stats, l1=l1,
                                 grad=GRAD_NONE, ignore=ignore)
    like = torch.empty(0, dtype=result_dtype(x.dtype), device=x.device)
    pixel_out = absent(like) if pixel_out is None else pixel_out
    if sums is None:
        return pixel_out, absent(like), absent(like), absent(like), absent(like)
    return pixel_out, sums[0], sums[1], sums[2], sums[3] if l1 else absent(like)


_terms_op = torch.library.custom_op("seglosses::sigmoid_terms", distinct_outputs(_terms),
                                      mutates_args=())


@_terms_op.register_fake
def _(x, target, v, positive, negative, alpha, axis, label_smoothing, gamma, pixel, stats, l1,
      ignore):
    dtype = result_dtype(x.dtype)
    n, num_channels = x.shape[0], x.shape[axis]
    shapes = {PIXEL_NONE: (0,), PIXEL_EACH: tuple(x.shape), PIXEL_SUM: ()}
    pixel_out = x.new_empty(shapes[pixel], dtype=dtype)
    stat = (lambda wanted: x.new_empty((n, num_channels) if wanted else (0,), dtype=dtype))
    return pixel_out, stat(stats), stat(stats), stat(stats), stat(stats and l1)


def _grad(x: torch.Tensor, target: torch.Tensor, v: torch.Tensor | None,
          positive: torch.Tensor | None, negative: torch.Tensor | None,
          alpha: torch.Tensor | None, grad_pixel: torch.Tensor | None,
          coefficients: torch.Tensor | None, axis: int, label_smoothing: float,
          gamma: float, l1: bool, ignore: list[int],
          upstream: torch.Tensor | None = None) -> torch.Tensor:
    """dX from the upstream gradient per element and the (3, N, C) coefficient table, all of
    it times the 0-d ``upstream`` if given (as ``softmax._grad``)."""
    return _launch(x, target, v, positive, negative, alpha, axis, label_smoothing, gamma,
                   pixel=PIXEL_NONE, stats=False, l1=l1, grad=GRAD_BACKWARD,
                   grad_pixel=grad_pixel, coefficients=coefficients, upstream=upstream,
                   ignore=ignore)[2]


_grad_op = torch.library.custom_op("seglosses::sigmoid_grad", _grad, mutates_args=())


@_grad_op.register_fake
def _(x, target, v, positive, negative, alpha, grad_pixel, coefficients, axis, label_smoothing,
      gamma, l1, ignore, upstream=None):
    return torch.empty_like(x)


def _setup_terms(ctx, inputs, output):
    x, target, v, positive, negative, alpha, axis, eps, gamma, pixel, stats, l1, ignore = inputs
    ctx.set_materialize_grads(False)  # unused outputs: no zero tensors
    ctx.save_for_backward(x, target, v, positive, negative, alpha)
    ctx.options = (axis, eps, gamma, pixel, stats, l1, ignore)


def _backward_terms(ctx, g_pixel, g_tp, g_ps, g_ts, g_l1):
    x, target, v, positive, negative, alpha = ctx.saved_tensors
    axis, eps, gamma, pixel, stats, l1, ignore = ctx.options
    grad_pixel = g_pixel if pixel != PIXEL_NONE and g_pixel is not None else None
    coefficients = coefficient_table(x, axis, stats, l1, g_tp, g_ps, g_l1)
    if grad_pixel is None and coefficients is None:
        return (None,) * 13
    if grad_pixel is not None and pixel == PIXEL_SUM:
        grad_pixel = grad_pixel.reshape(1, 1, 1).expand(x.shape)  # strides 0: one scalar
    grad = (_grad if is_eager(ctx) else _grad_op)(
        x, target, v, positive, negative, alpha, grad_pixel, coefficients, axis, eps, gamma,
        l1 and coefficients is not None, ignore)
    return (grad,) + (None,) * 12


sigmoid_terms = differentiable("SigmoidTerms", _terms, _terms_op, _setup_terms, _backward_terms)


def _fused(x: torch.Tensor, target: torch.Tensor, v: torch.Tensor | None,
           positive: torch.Tensor | None, negative: torch.Tensor | None,
           alpha: torch.Tensor | None, normaliser: torch.Tensor, axis: int,
           label_smoothing: float, gamma: float,
           ignore: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ ℓ / normaliser, its gradient)`` from one read of the logits and targets."""
    total, _, dx = _launch(x, target, v, positive, negative, alpha, axis, label_smoothing,
                           gamma, pixel=PIXEL_SUM, stats=False, l1=False, grad=GRAD_FUSED,
                           normaliser=normaliser.reshape(()).to(result_dtype(x.dtype)),
                           ignore=ignore)
    return total, dx


_fused_op = torch.library.custom_op("seglosses::sigmoid_fused", _fused, mutates_args=())


@_fused_op.register_fake
def _(x, target, v, positive, negative, alpha, normaliser, axis, label_smoothing, gamma,
      ignore):
    return (x.new_empty((), dtype=result_dtype(x.dtype)),
            torch.empty_like(x))


sigmoid_fused = differentiable("SigmoidFused", _fused, _fused_op, setup_fused, fused_backward(11))
