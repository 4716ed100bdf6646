r"""Segmentation losses for PyTorch: the functional API.

Every function takes ``(input, target)`` positionally and every option by keyword. The meaning
of each loss and option is fixed in ``docs/semantics.md`` (SPEC): the same numbers come out of
``seglosses.numpy`` (the float64 oracle) and, later, ``seglosses.keras``.
"""

from __future__ import annotations

import functools
import math

import torch

from .. import _spec as spec
from .._spec import (
    check_choice,
    check_number,
    fail,
)
from . import _dispatch as kernels
from ._dispatch import region_fusable, region_fused, resolve_impl
from ._distributed import global_sum
from ._stats import binary_terms, multiclass_terms, sigmoid_parts, sigmoid_stats
from ._targets import Multiclass, compute_dtype, prepare_multiclass, prepare_sigmoid

__all__ = [
    "cross_entropy",
    "binary_cross_entropy",
    "focal_loss",
    "tversky_loss",
    "dice_loss",
    "jaccard_loss",
    "dice_ce_loss",
]


# --------------------------------------------------------------------------------------------
# Option checks (also run by the Module constructors)


def check_pixel_options(function, *, impl, **options):
    """The shared option checks (``seglosses._spec``) plus the torch-only ``impl``."""
    spec.check_pixel_options(function, **options)
    resolve_impl(function, impl, None)


def check_region_options(function, *, impl, **options):
    spec.check_region_options(function, **options)
    resolve_impl(function, impl, None)


check_alpha = spec.check_alpha
check_alpha_length = spec.check_alpha_length
check_compound = spec.check_compound


# --------------------------------------------------------------------------------------------
# Reductions and the small arithmetic on top of the statistics (written once)


def _reduce_pixels(loss, reduction, normaliser, shape, input_dtype, aggregate="batch"):
    if reduction == "none":
        return loss.reshape(shape).to(input_dtype)
    total = loss.sum()
    if aggregate == "global":  # the sum and its normaliser over every rank
        total = global_sum(total)
        normaliser = global_sum(normaliser, differentiable=False)
    if reduction == "sum":
        return total
    # everything ignored → 0 with zero gradient (PyTorch would return NaN)
    return total / torch.where(normaliser > 0, normaliser, torch.ones_like(normaliser))


def region_loss(tp, ps, ts, l1, *, alpha, beta, gamma, smooth, absent, aggregate,
                include_background, class_weights, reduction, has_pixels=None):
    r"""Tversky-family loss from statistics: ``(1 - T)^γ`` per kept (image, class) pair.

    ``T = (TP + s) / (TP + α·FP + β·FN + s)`` and ``T := 1`` where the denominator is 0.
    ``has_pixels`` ((N, C) or (N, 1), or None for all) marks pairs with at least one valid
    pixel; the others (an image wholly ignored) leave the mean.
    """
    if l1 is not None:  # soft_label: the form minimised at p = t for soft targets
        tp = (ps + ts - l1) / 2
    fp, fn = ps - tp, ts - tp
    if aggregate in ("batch", "global"):
        tp, fp, fn, ts = (s.sum(0, keepdim=True) for s in (tp, fp, fn, ts))
        has_pixels = None if has_pixels is None else has_pixels.any(0, keepdim=True)
    if aggregate == "global":
        # one collective for the (1, C) statistics of the whole batch on every rank; uneven
        # or empty local batches still contribute a (1, C) tensor, so no rank waits alone
        counts = torch.ones_like(ts) if has_pixels is None else \
            has_pixels.to(ts.dtype).expand_as(ts)
        summed = global_sum(torch.stack([tp, fp, fn, ts, counts]))
        tp, fp, fn, ts, counts = summed.unbind(0)
        has_pixels = counts > 0
    numerator = tp + smooth
    denominator = tp + alpha * fp + beta * fn + smooth
    empty = denominator == 0
    index = torch.where(empty, torch.ones_like(numerator),
                        numerator / torch.where(empty, torch.ones_like(denominator), denominator))
    loss = 1 - index
    if gamma != 1:
        loss = loss.clamp_min(torch.finfo(loss.dtype).tiny) ** gamma
    weights = class_weights
    if not include_background:
        loss, ts = loss[:, 1:], ts[:, 1:]
        weights = None if weights is None else weights[1:]
    keep = torch.ones_like(loss) if absent == "include" else (ts > 0).to(loss.dtype)
    if has_pixels is not None:
        keep = keep * (has_pixels[:, 1:] if not include_background and
                       has_pixels.shape[1] > 1 else has_pixels).to(loss.dtype)
    pair_weights = keep if weights is None else keep * weights
    weighted = loss * pair_weights
    if reduction == "none":
        return weighted.squeeze(0) if aggregate != "image" else weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    count = pair_weights.sum()
    return total / torch.where(count > 0, count, torch.ones_like(count))


def _output_dtype(total, input_dtype):
    """Reduced losses: float32 for fp16/bf16 input, else the input's dtype."""
    return total if total.dtype == input_dtype or input_dtype in (torch.float16,
                                                                  torch.bfloat16) \
        else total.to(input_dtype)


# --------------------------------------------------------------------------------------------
# Pixel losses


def _multiclass_pixel(function, input, target, *, focal, gamma, alpha, class_dim, from_logits,
                      ignore_index, mask, class_weights, beta, pixel_weights, label_smoothing,
                      reduction, validate, aggregate, impl):
    problem = prepare_multiclass(function, input, target, class_dim=class_dim,
                                 from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                                 pixel_weights=pixel_weights, class_weights=class_weights,
                                 beta=beta, validate=validate,
                                 global_counts=aggregate == "global", native=impl == "triton")
    focal = focal and (gamma != 0 or alpha is not None)
    if focal:
        check_alpha_length(function, alpha, problem.x.shape[problem.axis])
    if impl == "triton":
        options = dict(label_smoothing=label_smoothing, gamma=gamma if focal else 0.0,
                       scale=_focal_scale(problem, alpha) if focal else problem.class_weights)
        if reduction == "none":
            loss = kernels.softmax_terms(problem, pixel="each", stats=False, **options)[0]
            return _reduce_pixels(loss, reduction, None, problem.pixel_shape, input.dtype)
        return _reduced_in_kernel(kernels.softmax_reduced, problem, _mean_normaliser(problem),
                                  reduction, aggregate, options)
    if focal:
        loss = _softmax_focal(problem, gamma, alpha, label_smoothing)
    else:
        loss = multiclass_terms(problem, label_smoothing=label_smoothing, want_ce=True,
                                want_stats=False, function=function)[0]
    return _reduce_pixels(loss, reduction, _mean_normaliser(problem), problem.pixel_shape,
                          input.dtype, aggregate)


def _reduced_in_kernel(reduced, problem, normaliser, reduction, aggregate, options):
    """A "mean"/"sum" pixel loss whose gradient the kernel writes in its forward pass.

    The normaliser is known before the launch (summed over ranks first for "global"), so the
    kernel scales the gradient itself; only the reduced sum then crosses ranks.
    """
    if reduction == "sum":
        normaliser = _constant(1.0, normaliser.dtype, normaliser.device)
    elif aggregate == "global":
        normaliser = global_sum(normaliser, differentiable=False)
    total = reduced(problem, normaliser, **options)
    return global_sum(total) if aggregate == "global" else total


def _count(shape, dtype, device):
    """The element count of ``shape`` as a 0-d tensor (a "mean" denominator)."""
    return _constant(float(math.prod(shape)), dtype, device)


def _constant(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 0-d device constant, made once in eager mode: a call after the first launches no
    fill (one kernel fewer per loss, ~2 µs on a GPU) and copies nothing from the host
    (CUDA-graph capture). Never written to: the callers only read it. Under
    ``torch.compile`` it is a constant of the graph (the compiler folds it; it would trace
    through the cache anyway, with a warning)."""
    if torch.compiler.is_compiling():
        return torch.full((), value, dtype=dtype, device=device)
    return _cached_constant(value, dtype, device)


@functools.lru_cache(maxsize=64)
def _cached_constant(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Made outside inference mode, so that a first call under ``torch.inference_mode()``
    leaves a constant that autograd may save later."""
    with torch.inference_mode(False):
        return torch.full((), value, dtype=dtype, device=device)


def _mean_normaliser(problem):
    """The "mean" denominator ``Σ_i v_i Σ_c w_c t_ic``, t as given (docs/semantics.md,
    "Reductions"): ``Σ v_i w_{y_i}`` for an index map, the same number for its one-hot mask."""
    v, w, labels = problem.v, problem.class_weights, problem.labels
    if problem.sums is not None:  # the kernels' path: from one scan of the labels
        return problem.sums.normaliser(w)
    if problem.dense is not None:
        return _dense_normaliser(problem.dense, v, w, problem.axis,
                                 compute_dtype(problem.x.dtype))
    if labels is not None and w is not None:
        weights = w[labels.long()]
        return (weights if v is None else weights * v).sum()
    if v is not None:
        return v.sum()
    return _count(problem.pixel_shape, compute_dtype(problem.x.dtype), problem.x.device)


def _dense_normaliser(t, v, w, axis, dtype):
    """``Σ_i v_i Σ_c w_c t_ic`` for a one-hot / soft target ``t`` ((N, C, S) or (N, S, C)),
    without a float copy of ``t`` (on the kernels' path it is uint8 or half)."""
    if v is None:  # per-class sums reduce in dtype: no map of the pixels
        per_class = t.sum(dim=(0, 3 - axis), dtype=dtype)
        return per_class.sum() if w is None else (per_class * w).sum()
    if w is None and t.dtype != dtype:
        # the kernels' path (t in its own narrow dtype): Σ_c t_ic = 1 where validate checked
        # it, and no pixel map is built; an unchecked target is taken as normalised here
        return v.sum(dtype=dtype)
    if w is None:
        return (t.sum(axis, dtype=dtype) * v).sum()
    per_class = torch.stack([(t.select(axis, c) * v).sum(dtype=dtype)
                             for c in range(t.shape[axis])])
    return (per_class * w).sum()


def _focal_scale(problem, alpha):
    """The per-class factor of the softmax focal term: class weights times α."""
    scale = problem.class_weights
    if alpha is not None:
        num_classes = problem.x.shape[problem.axis]
        a = torch.as_tensor(alpha, dtype=compute_dtype(problem.x.dtype), device=problem.x.device)
        a = a.expand(num_classes) if a.ndim == 0 else a
        scale = a if scale is None else scale * a
    return scale


def _softmax_focal(problem, gamma, alpha, label_smoothing):
    """``Σ_c w_c α_c q_c (1-p_c)^γ (-log p_c)`` by autograd on the torch path."""
    axis = problem.axis
    if problem.probabilities is None:
        logp = torch.log_softmax(problem.x, axis)
        p = logp.exp()
    else:
        p = problem.probabilities
        logp = torch.log(p)
    num_classes = p.shape[axis]
    term = (1 - p).clamp_min(torch.finfo(p.dtype).tiny) ** gamma * -logp
    scale = _focal_scale(problem, alpha)
    if scale is not None:
        term = term * (scale.view(1, -1, 1) if axis == 1 else scale.view(1, 1, -1))
    eps = label_smoothing
    if problem.labels is not None:
        loss = term.gather(axis, problem.labels.unsqueeze(axis)).squeeze(axis)
        if eps:
            loss = loss * (1 - eps) + term.sum(axis) * (eps / num_classes)
    else:
        q = problem.dense if not eps else problem.dense * (1 - eps) + eps / num_classes
        loss = (q * term).sum(axis)
    if problem.v is not None:
        loss = loss * problem.v
    return loss


def _sigmoid_normaliser(problem):
    """The "mean" denominator of a sigmoid loss: Σ v over elements (their count without v)."""
    v, shape = problem.v, problem.x.shape
    if problem.sums is not None:  # the kernels' path: from one scan of the target
        return problem.sums.normaliser()
    if v is None:
        return _count(shape, compute_dtype(problem.x.dtype), problem.x.device)
    return v.expand(shape).sum() if v.shape != shape else v.sum()


def _sigmoid_pixel(function, input, target, *, mode, focal, gamma, alpha, class_dim,
                   from_logits, ignore_index, mask, class_weights, pixel_weights, pos_weight,
                   label_smoothing, reduction, validate, aggregate, impl):
    problem = prepare_sigmoid(function, input, target, mode=mode, class_dim=class_dim,
                              from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                              pixel_weights=pixel_weights, class_weights=class_weights,
                              pos_weight=pos_weight, label_smoothing=label_smoothing,
                              validate=validate, global_counts=aggregate == "global",
                              native=impl == "triton")
    if focal and alpha is not None:
        check_alpha_length(function, alpha, input.shape[class_dim] if mode == "multilabel" else 1)
    if impl == "triton":
        focal = focal and (gamma != 0 or alpha is not None)
        options = dict(label_smoothing=label_smoothing, gamma=gamma if focal else 0.0,
                       alpha=alpha if focal else None)
        if reduction == "none":
            loss = kernels.sigmoid_terms(problem, pixel="each", stats=False, **options)[0]
            return _reduce_pixels(loss, reduction, None, problem.output_shape, input.dtype)
        return _reduced_in_kernel(kernels.sigmoid_reduced, problem,
                                  _sigmoid_normaliser(problem), reduction, aggregate, options)
    p, logp, log1mp = sigmoid_parts(problem, from_logits)
    loss = binary_terms(problem, logp, log1mp)
    if focal and (gamma != 0 or alpha is not None):
        y = problem.smoothed
        if gamma != 0:
            p_t = p * y + (1 - p) * (1 - y)
            loss = loss * (1 - p_t).clamp_min(torch.finfo(p.dtype).tiny) ** gamma
        if alpha is not None:
            a = torch.as_tensor(alpha, dtype=p.dtype, device=p.device)
            if a.ndim == 1:
                shape = [1] * p.ndim
                shape[problem.class_dim] = -1
                a = a.view(shape)
            loss = loss * (a * y + (1 - a) * (1 - y))
    if problem.v is not None:
        loss = loss * problem.v
    return _reduce_pixels(loss, reduction, _sigmoid_normaliser(problem), problem.output_shape,
                          input.dtype, aggregate)


def _pixel_loss(function, input, target, *, mode, focal=False, gamma=0.0, alpha=None,
                class_dim, from_logits, ignore_index, mask, class_weights, beta, pixel_weights,
                pos_weight, label_smoothing, reduction, validate, impl, aggregate):
    check_pixel_options(function, mode=mode, reduction=reduction, label_smoothing=label_smoothing,
                        impl=impl, class_weights=class_weights, beta=beta, aggregate=aggregate)
    impl = resolve_impl(function, impl, input, from_logits=from_logits)
    if focal:
        check_number(function, "gamma", gamma)
        check_alpha(function, alpha, mode)
    common = dict(class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                  mask=mask, class_weights=class_weights, pixel_weights=pixel_weights,
                  label_smoothing=label_smoothing, reduction=reduction, validate=validate,
                  aggregate=aggregate, impl=impl)
    if mode == "multiclass":
        if pos_weight is not None:
            raise fail(function, "pos_weight", "be None for mode='multiclass' (it weighs the "
                       "positive term of a sigmoid)", "a value", "Use class_weights= instead.")
        total = _multiclass_pixel(function, input, target, focal=focal, gamma=gamma,
                                  alpha=alpha, beta=beta, **common)
    else:
        total = _sigmoid_pixel(function, input, target, mode=mode, focal=focal, gamma=gamma,
                               alpha=alpha, pos_weight=pos_weight, **common)
    return total if reduction == "none" else _output_dtype(total, input.dtype)


def cross_entropy(input, target, *, mode="multiclass", class_dim=1, from_logits=True,
                  ignore_index=None, mask=None, class_weights=None, beta=0.999,
                  pixel_weights=None, pos_weight=None, label_smoothing=0.0, reduction="mean",
                  aggregate="batch", validate=True, impl="auto"):
    r"""Pixel-wise cross-entropy (softmax over the class axis; sigmoid for binary/multilabel).

    .. math::
        \ell_i = -v_i \sum_c w_c\, q_{ic} \log p_{ic},\qquad p_i = \mathrm{softmax}(x_i)

    where
        - :math:`x_i` are the logits of pixel *i* along ``class_dim``;
        - :math:`q_{ic}` is the target (one-hot for an index map, or the given soft target)
          after label smoothing, :math:`q = (1-\varepsilon) y + \varepsilon / C`;
        - :math:`w_c` are ``class_weights`` (1 if None), fixed or computed from the batch;
        - :math:`v_i` is the pixel weight: ``mask · pixel_weights``, 0 at ``ignore_index``.

    Args:
        input: logits (or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with
            the class axis at ``class_dim``.
        target: an integer index map ``(N, *spatial)`` (uint8/int16/int32/int64), or a one-hot
            / soft target of the input's shape.
        mode: ``"multiclass"``; ``"binary"``/``"multilabel"`` give :func:`binary_cross_entropy`.
        class_dim: the class axis of ``input`` (``-1`` for channels-last tensors).
        from_logits: ``False`` when ``input`` holds probabilities (renormalised over C and
            clipped to ``[1e-7, 1 - 1e-7]`` in the input's dtype, as Keras 3).
        ignore_index: an int or a sequence of ints; those pixels count nowhere.
        mask: bool/float ``(N, *spatial)``; 0 removes a pixel (use it for float targets).
        class_weights: length-C weights, or a strategy computed from the batch's labels:
            ``"inverse_frequency"``, ``"inverse_sqrt_frequency"``, ``"median_frequency"``,
            ``"effective_number"`` (uses ``beta``), ``"log_inverse"``.
        beta: the effective-number β.
        pixel_weights: float ``(N, *spatial)`` multiplying each pixel (e.g.
            :func:`unet_weight_map`).
        pos_weight: sigmoid modes only.
        label_smoothing: ε in ``[0, 1]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        aggregate: ``"batch"``, or ``"global"`` to sum the reduced loss, its ``"mean"``
            denominator and the class frequencies of a weight strategy over every rank of the
            default ``torch.distributed`` group (each rank then returns the loss of the whole
            global batch; see ``docs/distributed.md``). Same as ``"batch"`` on one process.
        validate: check label / probability values (one host sync); ``False`` skips it.
        impl: ``"auto"`` (the fused Triton kernels for tensors on an NVIDIA GPU when triton
            is installed, else PyTorch), ``"torch"``, or ``"triton"`` to insist on the kernels.

    Returns:
        ``"none"``: the per-pixel loss ``(N, *spatial)`` in the input's dtype. ``"sum"``:
        :math:`\sum_i \ell_i`. ``"mean"``: :math:`\sum_i \ell_i / \sum_i v_i w_{y_i}` for an
        index map (PyTorch's weighted mean) and :math:`\sum_i \ell_i / \sum_i v_i` for a float
        target; 0 (with zero gradient) when every pixel is ignored. Reduced values are float32
        for fp16/bf16 input.

    Example:
        >>> import torch
        >>> logits = torch.randn(2, 4, 8, 8)
        >>> labels = torch.randint(0, 4, (2, 8, 8))
        >>> cross_entropy(logits, labels, ignore_index=255).shape
        torch.Size([])
        >>> cross_entropy(logits, labels, reduction="none").shape
        torch.Size([2, 8, 8])

    References:
        Eigen & Fergus, ICCV 2015 (median-frequency weights); Szegedy et al., CVPR 2016
        (label smoothing).
    """
    return _pixel_loss("cross_entropy", input, target, mode=mode, class_dim=class_dim,
                       from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                       class_weights=class_weights, beta=beta, pixel_weights=pixel_weights,
                       pos_weight=pos_weight, label_smoothing=label_smoothing,
                       reduction=reduction, validate=validate, impl=impl, aggregate=aggregate)


def binary_cross_entropy(input, target, *, mode="binary", class_dim=1, from_logits=True,
                         ignore_index=None, mask=None, class_weights=None, beta=0.999,
                         pixel_weights=None, pos_weight=None, label_smoothing=0.0,
                         reduction="mean", aggregate="batch", validate=True, impl="auto"):
    r"""Binary cross-entropy per element (sigmoid of each channel).

    .. math::
        \ell_{ic} = -v_i w_c \big[\, pw_c\, y'_{ic} \log \sigma(z_{ic})
                    + (1 - y'_{ic}) \log(1 - \sigma(z_{ic})) \,\big]

    where
        - :math:`z` are logits (computed stably as softplus), or probabilities with
          ``from_logits=False`` (clipped to ``[1e-7, 1 - 1e-7]`` in the input's dtype);
        - :math:`y' = (1-\varepsilon) y + \varepsilon/2` is the label-smoothed target;
        - :math:`pw_c` is ``pos_weight`` along ``class_dim``; :math:`w_c` are ``class_weights``;
          ``class_weights="balanced"`` instead weights positives by the batch's fraction of
          negatives and negatives by the fraction of positives (HED, Xie & Tu 2015);
        - :math:`v_i` is the pixel weight (``mask · pixel_weights``, 0 at ignored elements).

    Args:
        input: ``(N, 1, *spatial)`` or ``(N, *spatial)`` for ``mode="binary"``,
            ``(N, C, *spatial)`` for ``"multilabel"``.
        target: the input's shape; float in [0, 1] or integer {0, 1} (plus ``ignore_index``).
        Other options as :func:`cross_entropy`.

    Returns:
        ``"none"``: the input's shape. ``"sum"``; ``"mean"``: over valid elements
        :math:`\sum \ell / \sum v` (class weights are not in the denominator, like
        ``torch.nn.functional.binary_cross_entropy_with_logits``).

    Example:
        >>> import torch
        >>> logits = torch.randn(2, 1, 8, 8)
        >>> masks = torch.randint(0, 2, (2, 1, 8, 8))
        >>> binary_cross_entropy(logits, masks, pos_weight=[3.0]).shape
        torch.Size([])

    References:
        Xie & Tu, "Holistically-Nested Edge Detection", ICCV 2015.
    """
    function = "binary_cross_entropy"
    check_choice(function, "mode", mode, ("binary", "multilabel"))
    return _pixel_loss(function, input, target, mode=mode, class_dim=class_dim,
                       from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                       class_weights=class_weights, beta=beta, pixel_weights=pixel_weights,
                       pos_weight=pos_weight, label_smoothing=label_smoothing,
                       reduction=reduction, validate=validate, impl=impl, aggregate=aggregate)


def focal_loss(input, target, *, mode="multiclass", gamma=2.0, alpha=None, class_dim=1,
               from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
               pixel_weights=None, pos_weight=None, label_smoothing=0.0, reduction="mean",
               aggregate="batch", validate=True, impl="auto"):
    r"""Focal loss (Lin et al. 2017), softmax or sigmoid by ``mode``.

    .. math::
        \ell_i = -v_i \sum_c w_c\, \alpha_c\, q_{ic} (1 - p_{ic})^{\gamma} \log p_{ic}
        \quad\text{(multiclass)},\qquad
        \ell_{ic} = v_i\, \alpha_t (1 - p_t)^{\gamma}\, \mathrm{BCE}_{ic}
        \quad\text{(sigmoid)}

    where
        - :math:`\gamma \ge 0` focuses on hard pixels; ``gamma=0`` and ``alpha=None`` is
          exactly :func:`cross_entropy` / :func:`binary_cross_entropy`;
        - multiclass ``alpha``: one weight per class, or a scalar scaling every class
          (Keras ``CategoricalFocalCrossentropy``);
        - sigmoid ``alpha`` (scalar or per channel, in [0, 1]): :math:`\alpha_t = \alpha y' +
          (1-\alpha)(1-y')`, and :math:`p_t = p y' + (1-p)(1-y')`;
        - :math:`\mathrm{BCE}_{ic}` is the element of :func:`binary_cross_entropy` (with
          ``pos_weight`` and ``class_weights``).

    Returns:
        As :func:`cross_entropy` (multiclass) or :func:`binary_cross_entropy` (sigmoid modes);
        ``alpha`` never enters the ``"mean"`` denominator.

    Example:
        >>> import torch
        >>> logits, labels = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
        >>> bool(focal_loss(logits, labels, gamma=0.0) == cross_entropy(logits, labels))
        True

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    return _pixel_loss("focal_loss", input, target, mode=mode, focal=True, gamma=gamma,
                       alpha=alpha, class_dim=class_dim, from_logits=from_logits,
                       ignore_index=ignore_index, mask=mask, class_weights=class_weights,
                       beta=beta, pixel_weights=pixel_weights, pos_weight=pos_weight,
                       label_smoothing=label_smoothing, reduction=reduction, validate=validate,
                       impl=impl, aggregate=aggregate)


# --------------------------------------------------------------------------------------------
# Region losses


def _prepare_region(function, input, target, *, mode, soft_label, class_dim, from_logits,
                    ignore_index, mask, class_weights, beta, pixel_weights, validate,
                    label_smoothing=0.0, pos_weight=None, aggregate="image", native=False):
    """``(problem, want_l1, has_pixels)`` of a region loss: the prepared problem, whether the
    soft-label L1 statistic is needed, and which (image, class) pairs have a pixel that
    counts (None: all)."""
    spec.check_flags(function, soft_label=soft_label)
    if mode == "multiclass":
        problem = prepare_multiclass(function, input, target, class_dim=class_dim,
                                     from_logits=from_logits, ignore_index=ignore_index,
                                     mask=mask, pixel_weights=pixel_weights,
                                     class_weights=class_weights, beta=beta, validate=validate,
                                     global_counts=aggregate == "global", native=native)
        if problem.sums is not None:
            has_pixels = problem.sums.has_pixels()
        else:
            has_pixels = None if problem.v is None else (problem.v.sum(1, keepdim=True) != 0)
        return problem, soft_label and problem.dense is not None, has_pixels
    problem = prepare_sigmoid(function, input, target, mode=mode, class_dim=class_dim,
                              from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                              pixel_weights=pixel_weights, class_weights=class_weights,
                              pos_weight=pos_weight, label_smoothing=label_smoothing,
                              validate=validate, global_counts=aggregate == "global",
                              native=native)
    has_pixels = None
    if problem.sums is not None:
        has_pixels = problem.sums.has_pixels()
    elif problem.v is not None:
        dims = tuple(a for a in range(problem.x.ndim) if a not in (0, problem.class_dim))
        has_pixels = problem.v.expand(problem.x.shape).sum(dims) != 0
    return problem, soft_label and target.is_floating_point(), has_pixels


def _region_stats(problem, want_l1, *, from_logits, want_ce=False, label_smoothing=0.0,
                  impl="torch", function="loss"):
    """Statistics (and, for compounds, the pixel loss from the same activation).

    With the kernels a compound's pixel loss comes back already summed (a 0-d tensor).
    """
    native = impl == "triton"
    if isinstance(problem, Multiclass):
        if native:
            ce, tp, ps, ts, l1 = kernels.softmax_terms(
                problem, label_smoothing=label_smoothing, scale=problem.class_weights,
                pixel="sum" if want_ce else "none", stats=True, l1=want_l1)
        else:
            ce, tp, ps, ts, l1 = multiclass_terms(problem, label_smoothing=label_smoothing,
                                                  want_ce=want_ce, want_stats=True,
                                                  want_l1=want_l1, function=function)
        pixel = (ce, _mean_normaliser(problem), problem.pixel_shape) if want_ce else None
        return (tp, ps, ts, l1), pixel
    pixel = None
    if native:
        loss, *stats = kernels.sigmoid_terms(problem, label_smoothing=label_smoothing,
                                             pixel="sum" if want_ce else "none", stats=True,
                                             l1=want_l1)
    else:
        p, logp, log1mp = sigmoid_parts(problem, from_logits)
        stats = sigmoid_stats(problem, p, want_l1=want_l1)
        if want_ce:
            loss = binary_terms(problem, logp, log1mp)
            if problem.v is not None:
                loss = loss * problem.v
    if want_ce:
        pixel = (loss, _sigmoid_normaliser(problem), problem.output_shape)
    return stats, pixel


def _pixel_normaliser(problem):
    return _mean_normaliser(problem) if isinstance(problem, Multiclass) else \
        _sigmoid_normaliser(problem)


def tversky_loss(input, target, *, mode="multiclass", alpha=0.5, beta=0.5, gamma=1.0,
                 smooth=1.0, absent="include", aggregate="image", include_background=True,
                 soft_label=False, class_dim=1, from_logits=True, ignore_index=None, mask=None,
                 class_weights=None, weight_beta=0.999, pixel_weights=None, reduction="mean",
                 validate=True, impl="auto"):
    r"""Tversky loss (Salehi et al. 2017); focal-Tversky (Abraham & Khan 2019) for γ ≠ 1.

    .. math::
        L_{nc} = (1 - T_{nc})^{\gamma},\qquad
        T_{nc} = \frac{TP_{nc} + s}{TP_{nc} + \alpha\, FP_{nc} + \beta\, FN_{nc} + s}

    where, with :math:`p` the softmax (multiclass) or sigmoid probabilities, :math:`t` the
    one-hot / soft target and :math:`v_i` the pixel weight (0 at ignored pixels),
        - :math:`TP_{nc} = \sum_i v_i p_{ic} t_{ic}`, :math:`FP_{nc} = \sum_i v_i p_{ic}(1 -
          t_{ic})`, :math:`FN_{nc} = \sum_i v_i (1 - p_{ic}) t_{ic}`, over the pixels of image
          *n* (``aggregate="image"``) or of the whole batch (``"batch"``);
        - α weighs false positives and β false negatives (as MONAI; Keras 3.15's ``Tversky``
          swaps them); :math:`s` is ``smooth``; :math:`T := 1` where the denominator is 0;
        - ``soft_label=True`` uses :math:`TP = (\sum p + \sum t - \sum |p - t|)/2`, minimised
          at :math:`p = t` for soft targets (equal to the default for hard targets).

    Args:
        alpha, beta, gamma: the Tversky weights and focal exponent (all >= 0).
        smooth: added to numerator and denominator.
        absent: ``"include"`` keeps (image, class) pairs with an empty target in the mean (a
            clean prediction scores ≈ 0, false positives ≈ 1); ``"exclude"`` drops them.
        aggregate: ``"image"`` or ``"batch"``.
        include_background: ``False`` drops class 0 (multiclass).
        class_weights: weights of the class mean (static, or a strategy as in
            :func:`cross_entropy`, using ``weight_beta`` for ``"effective_number"``).
        Other options as :func:`cross_entropy`.

    Returns:
        ``"none"``: :math:`w_c L_{nc}`, shape ``(N, C)`` (``(C,)`` for ``aggregate="batch"``;
        one column less without background; excluded pairs are 0). ``"sum"``: their sum.
        ``"mean"``: :math:`\sum w_c L_{nc} / \sum w_c` over the kept pairs (0 if none is kept).

    Example:
        >>> import torch
        >>> logits, labels = torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16))
        >>> tversky_loss(logits, labels, alpha=0.3, beta=0.7, reduction="none").shape
        torch.Size([2, 3])

    References:
        Salehi et al., "Tversky loss function for image segmentation", MLMI 2017.
        Abraham & Khan, "A novel focal Tversky loss function", ISBI 2019.
    """
    function = "tversky_loss"
    check_region_options(function, mode=mode, reduction=reduction, smooth=smooth, absent=absent,
                         aggregate=aggregate, include_background=include_background, impl=impl,
                         class_weights=class_weights, weight_beta=weight_beta, alpha=alpha,
                         beta=beta, gamma=gamma, weight_beta_name="weight_beta")
    return _region(function, input, target, mode=mode, alpha=alpha, beta=beta, gamma=gamma,
                   smooth=smooth, absent=absent, aggregate=aggregate,
                   include_background=include_background, soft_label=soft_label,
                   class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                   mask=mask, class_weights=class_weights, weight_beta=weight_beta,
                   pixel_weights=pixel_weights, reduction=reduction, validate=validate,
                   impl=impl)


def _region(function, input, target, *, mode, alpha, beta, gamma, smooth, absent, aggregate,
            include_background, soft_label, class_dim, from_logits, ignore_index, mask,
            class_weights, weight_beta, pixel_weights, reduction, validate, impl):
    impl = resolve_impl(function, impl, input, from_logits=from_logits)
    problem, want_l1, has_pixels = _prepare_region(
        function, input, target, mode=mode, soft_label=soft_label, class_dim=class_dim,
        from_logits=from_logits, ignore_index=ignore_index, mask=mask,
        class_weights=class_weights, beta=weight_beta, pixel_weights=pixel_weights,
        validate=validate, aggregate=aggregate, native=impl == "triton")
    options = dict(alpha=alpha, beta=beta, gamma=gamma, smooth=smooth, absent=absent,
                   aggregate=aggregate, include_background=include_background,
                   reduction=reduction)
    if region_fusable(impl, input, class_dim, reduction=reduction, aggregate=aggregate):
        loss = region_fused(problem, want_l1=want_l1, has_pixels=has_pixels, ce_normaliser=None,
                            label_smoothing=0.0, options=options)
        return _output_dtype(loss, input.dtype)
    stats, _ = _region_stats(problem, want_l1, from_logits=from_logits, impl=impl,
                             function=function)
    loss = region_loss(*stats, class_weights=problem.class_weights, has_pixels=has_pixels,
                       **options)
    return loss.to(input.dtype) if reduction == "none" else _output_dtype(loss, input.dtype)


def _dice_family(function, alpha, beta, smooth_scale, input, target, *, mode, smooth, absent,
                 aggregate,
                 include_background, soft_label, class_dim, from_logits, ignore_index, mask,
                 class_weights, beta_weights, pixel_weights, reduction, validate, impl):
    check_region_options(function, mode=mode, reduction=reduction, smooth=smooth, absent=absent,
                         aggregate=aggregate, include_background=include_background, impl=impl,
                         class_weights=class_weights, weight_beta=beta_weights)
    return _region(function, input, target, mode=mode, alpha=alpha, beta=beta, gamma=1.0,
                   smooth=smooth * smooth_scale, absent=absent, aggregate=aggregate,
                   include_background=include_background, soft_label=soft_label,
                   class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                   mask=mask, class_weights=class_weights, weight_beta=beta_weights,
                   pixel_weights=pixel_weights, reduction=reduction, validate=validate,
                   impl=impl)


def dice_loss(input, target, *, mode="multiclass", smooth=1.0, absent="include",
              aggregate="image", include_background=True, soft_label=False, class_dim=1,
              from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
              pixel_weights=None, reduction="mean", validate=True, impl="auto"):
    r"""Soft Dice loss (Milletari et al. 2016), ``1 - D`` per (image, class).

    .. math::
        D_{nc} = \frac{2\,TP_{nc} + s}{2\,TP_{nc} + FP_{nc} + FN_{nc} + s}

    the smoothing convention of MONAI, smp and nnU-Net; :math:`D := 1` where the denominator
    is 0. Statistics, options and reductions are those of :func:`tversky_loss` (Dice with
    smooth ``s`` equals Tversky α = β = 0.5 with smooth ``s/2``); ``beta`` is the
    effective-number β of the class-weight strategy.

    Example:
        >>> import torch
        >>> labels = torch.randint(0, 3, (2, 16, 16))
        >>> perfect = 100.0 * torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float()
        >>> round(float(dice_loss(perfect, labels)), 6)
        0.0

    References:
        Milletari et al., "V-Net", 3DV 2016.
    """
    # Dice with smooth s is Tversky(α = β = 1/2) with smooth s/2
    return _dice_family("dice_loss", 0.5, 0.5, 0.5, input, target, mode=mode, smooth=smooth,
                        absent=absent, aggregate=aggregate,
                        include_background=include_background, soft_label=soft_label,
                        class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                        mask=mask, class_weights=class_weights, beta_weights=beta,
                        pixel_weights=pixel_weights, reduction=reduction, validate=validate,
                        impl=impl)


def jaccard_loss(input, target, *, mode="multiclass", smooth=1.0, absent="include",
                 aggregate="image", include_background=True, soft_label=False, class_dim=1,
                 from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
                 pixel_weights=None, reduction="mean", validate=True, impl="auto"):
    r"""Soft Jaccard (IoU) loss, ``1 - J`` per (image, class).

    .. math::
        J_{nc} = \frac{TP_{nc} + s}{TP_{nc} + FP_{nc} + FN_{nc} + s}

    Tversky with α = β = 1; at ``smooth=0``, ``J = D / (2 - D)``. Options and reductions as
    :func:`tversky_loss`.

    Example:
        >>> import torch
        >>> logits, labels = torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16))
        >>> float(jaccard_loss(logits, labels)) > float(dice_loss(logits, labels))
        True

    References:
        Rahman & Wang, "Optimizing intersection-over-union in deep neural networks", ISVC 2016.
    """
    return _dice_family("jaccard_loss", 1.0, 1.0, 1.0, input, target, mode=mode, smooth=smooth,
                        absent=absent, aggregate=aggregate,
                        include_background=include_background, soft_label=soft_label,
                        class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                        mask=mask, class_weights=class_weights, beta_weights=beta,
                        pixel_weights=pixel_weights, reduction=reduction, validate=validate,
                        impl=impl)


def dice_ce_loss(input, target, *, mode="multiclass", lambda_ce=1.0, lambda_dice=1.0,
                 smooth=1.0, absent="include", aggregate="image", include_background=True,
                 soft_label=False, label_smoothing=0.0, pos_weight=None, class_dim=1,
                 from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
                 pixel_weights=None, reduction="mean", validate=True, impl="auto"):
    r"""Dice + cross-entropy (multiclass) or BCE-Dice (binary / multilabel), one activation.

    .. math::
        L = \lambda_{ce}\, \mathrm{CE} + \lambda_{dice}\, \mathrm{Dice}

    with CE as :func:`cross_entropy` (or :func:`binary_cross_entropy`) and Dice as
    :func:`dice_loss`, both reduced the same way (``"mean"`` or ``"sum"``). The softmax or
    sigmoid, the target adapter, ``ignore_index``/``mask``/``pixel_weights`` and
    ``class_weights`` are shared by both terms; ``label_smoothing`` and ``pos_weight`` apply to
    the CE term, ``smooth``, ``absent``, ``aggregate``, ``include_background`` and
    ``soft_label`` to the Dice term (as MONAI ``DiceCELoss``). ``class_weights="balanced"``
    weighs the BCE only.

    Example:
        >>> import torch
        >>> logits = torch.randn(4, 7, 32, 32, requires_grad=True)
        >>> labels = torch.randint(0, 7, (4, 32, 32))
        >>> loss = dice_ce_loss(logits, labels, ignore_index=255,
        ...                     class_weights="median_frequency")
        >>> loss.backward()
        >>> logits.grad.shape
        torch.Size([4, 7, 32, 32])

    References:
        Isensee et al., "nnU-Net", Nature Methods 2021 (Dice + CE as the default loss).
    """
    function = "dice_ce_loss"
    check_compound(function, reduction=reduction, lambda_ce=lambda_ce, lambda_dice=lambda_dice,
                   label_smoothing=label_smoothing)
    region_weights = None if spec.is_balanced(class_weights) else class_weights
    check_region_options(function, mode=mode, reduction=reduction, smooth=smooth, absent=absent,
                         aggregate=aggregate, include_background=include_background, impl=impl,
                         class_weights=region_weights, weight_beta=beta)
    impl = resolve_impl(function, impl, input, from_logits=from_logits)
    if mode == "multiclass" and pos_weight is not None:
        raise fail(function, "pos_weight", "be None for mode='multiclass' (it weighs the "
                   "positive term of a sigmoid)", "a value", "Use class_weights= instead.")
    problem, want_l1, has_pixels = _prepare_region(
        function, input, target, mode=mode, soft_label=soft_label, class_dim=class_dim,
        from_logits=from_logits, ignore_index=ignore_index, mask=mask,
        class_weights=class_weights, beta=beta, pixel_weights=pixel_weights, validate=validate,
        label_smoothing=label_smoothing, pos_weight=pos_weight, aggregate=aggregate,
        native=impl == "triton")
    options = dict(alpha=0.5, beta=0.5, gamma=1.0, smooth=smooth / 2, absent=absent,
                   aggregate=aggregate, include_background=include_background,
                   reduction=reduction)
    if region_fusable(impl, input, class_dim, reduction=reduction, aggregate=aggregate):
        loss = region_fused(problem, want_l1=want_l1, has_pixels=has_pixels,
                            ce_normaliser=_pixel_normaliser(problem),
                            label_smoothing=label_smoothing, options=options,
                            lambda_ce=lambda_ce, lambda_region=lambda_dice)
        return _output_dtype(loss, input.dtype)
    stats, (ce, normaliser, shape) = _region_stats(problem, want_l1, from_logits=from_logits,
                                                   want_ce=True, label_smoothing=label_smoothing,
                                                   impl=impl, function=function)
    dice = region_loss(*stats, class_weights=problem.class_weights, has_pixels=has_pixels,
                       **options)
    pixel = _reduce_pixels(ce, reduction, normaliser, shape, input.dtype,
                           "global" if aggregate == "global" else "batch")
    return _output_dtype(lambda_ce * pixel + lambda_dice * dice, input.dtype)
