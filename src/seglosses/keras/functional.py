r"""Segmentation losses for Keras 3: the functional API, written with ``keras.ops`` only.

Every function takes ``(y_true, y_pred)`` positionally (the Keras order) and every option by
keyword, with the names, defaults and meaning of :mod:`seglosses.torch.functional` (see
``docs/semantics.md``), except that the class axis defaults to the last one
(``class_dim=-1``, channels-last) and there is no ``impl``. ``reduction`` is the torch front's
(``"mean"``, ``"sum"``, ``"none"``), so a function returns the same number as its torch twin;
the :mod:`seglosses.keras.losses` classes return per-sample values for Keras's reductions.

Error messages call ``y_true`` the *target* and ``y_pred`` the *input*, with the very texts of
the torch front (docs/semantics.md, errors).
"""

from __future__ import annotations

from keras import ops

from .._spec import check_choice, check_number, fail, is_balanced
from ._backend import TINY, dtype_of
from ._options import (
    check_alpha,
    check_alpha_length,
    check_compound,
    check_flags,
    check_pixel_options,
    check_region_options,
)
from ._targets import check_prediction, prepare_multiclass, prepare_sigmoid

__all__ = [
    "cross_entropy",
    "binary_cross_entropy",
    "focal_loss",
    "tversky_loss",
    "dice_loss",
    "jaccard_loss",
    "dice_ce_loss",
]

# The reductions of the Loss classes (never user-facing): per-sample values whose mean over the
# batch is the torch front's "mean", or whose sum is its "sum" (see seglosses.keras.losses).
PER_SAMPLE_MEAN = "per_sample_mean"
PER_SAMPLE_SUM = "per_sample_sum"
PER_SAMPLE = (PER_SAMPLE_MEAN, PER_SAMPLE_SUM)


# --------------------------------------------------------------------------------------------
# Reductions and the small arithmetic on top of the statistics


def _safe(denominator):
    """A denominator that is 1 where it is 0 (nothing to average → 0, with zero gradient)."""
    return ops.where(ops.greater(denominator, 0), denominator, ops.ones_like(denominator))


def _batch(n, dtype):
    return ops.cast(n, dtype)


def _reduce_pixels(loss, normaliser, reduction, problem, input_dtype):
    """``loss``: (N, P) or (N, P, C) weighted pixel terms; ``normaliser``: the "mean" divisor."""
    if reduction == "none":
        return ops.cast(problem.restore(loss), input_dtype)
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "mean":
        return ops.sum(loss) / _safe(normaliser)
    per_sample = ops.sum(loss, axis=tuple(range(1, len(loss.shape))))
    if reduction == PER_SAMPLE_SUM:
        return per_sample
    # sample n: N · Σ_{i∈n} ℓ_i / Σ_{all} (the batch's normaliser): their mean is the "mean"
    return per_sample * (_batch(problem.n, per_sample.dtype) / _safe(normaliser))


def _reduce_region(weighted, pair_weights, aggregate, reduction, n, template):
    """``weighted``: (N, C') or (1, C') of ``w_c L_nc`` over kept pairs (0 elsewhere)."""
    if reduction == "none":
        return weighted[0] if aggregate == "batch" else weighted
    total = ops.sum(weighted)
    if reduction == "sum":
        return total
    count = ops.sum(pair_weights)
    if reduction == "mean":
        return total / _safe(count)
    if aggregate == "batch":  # one number for the batch: every sample carries it
        value = total / _safe(_batch(n, total.dtype)) if reduction == PER_SAMPLE_SUM \
            else total / _safe(count)
        return template + value
    per_image = ops.sum(weighted, axis=1)
    if reduction == PER_SAMPLE_SUM:
        return per_image
    return per_image * (_batch(n, per_image.dtype) / _safe(count))


def region_loss(tp, ps, ts, l1, *, alpha, beta, gamma, smooth, absent, aggregate,
                include_background, class_weights, has_pixels):
    r"""``(1 - T)^γ`` per kept (image, class) pair → ``(weighted, pair_weights)``.

    ``T = (TP + s) / (TP + α·FP + β·FN + s)``, ``T := 1`` where the denominator is 0; the
    arithmetic of ``seglosses.torch.functional.region_loss``, in ``keras.ops``.
    """
    if l1 is not None:  # soft_label: the form minimised at p = t for soft targets
        tp = (ps + ts - l1) / 2
    fp, fn = ps - tp, ts - tp
    if aggregate == "batch":
        tp, fp, fn, ts = (ops.sum(s, axis=0, keepdims=True) for s in (tp, fp, fn, ts))
        has_pixels = None if has_pixels is None else ops.any(has_pixels, axis=0, keepdims=True)
    numerator = tp + smooth
    denominator = tp + alpha * fp + beta * fn + smooth
    empty = ops.equal(denominator, 0)
    index = ops.where(empty, ops.ones_like(numerator),
                      numerator / ops.where(empty, ops.ones_like(denominator), denominator))
    loss = 1 - index
    if gamma != 1:
        loss = ops.power(ops.maximum(loss, TINY[dtype_of(loss)]), gamma)
    weights = class_weights
    if not include_background:
        loss, ts = loss[:, 1:], ts[:, 1:]
        weights = None if weights is None else weights[1:]
    keep = ops.ones_like(loss) if absent == "include" else ops.cast(ops.greater(ts, 0),
                                                                    loss.dtype)
    if has_pixels is not None:
        if not include_background and has_pixels.shape[1] != 1:
            has_pixels = has_pixels[:, 1:]
        keep = keep * ops.cast(has_pixels, loss.dtype)
    pair_weights = keep if weights is None else keep * weights
    return loss * pair_weights, pair_weights


# --------------------------------------------------------------------------------------------
# Pixel terms and region statistics of a prepared problem


def _multiclass_pixel(problem, *, focal, gamma, alpha, label_smoothing):
    """``ℓ_i = v_i Σ_c w_c α_c q_ic (1 - p_ic)^γ (-log p_ic)`` → (N, P), and the normaliser."""
    p, t, w, v = problem.p, problem.t, problem.class_weights, problem.v
    num_classes = p.shape[-1]
    eps = label_smoothing
    q = t if not eps else t * (1 - eps) + eps / num_classes
    term = -problem.logp
    scale = w
    if focal and (gamma != 0 or alpha is not None):
        if gamma != 0:
            term = term * ops.power(ops.maximum(1 - p, TINY[dtype_of(p)]), gamma)
        if alpha is not None:
            a = _per_class(alpha, num_classes, p.dtype)
            scale = a if scale is None else scale * a
    if scale is not None:
        q = q * scale
    loss = ops.sum(q * term, axis=-1)
    if v is not None:
        loss = loss * v
    # "mean": Σ_i v_i Σ_c w_c t_ic with t as given (docs/semantics.md, "Reductions"): PyTorch's
    # weighted mean for an index map, and the same number for its one-hot mask
    weighted_t = ops.sum(t if w is None else t * w, axis=-1)
    normaliser = ops.sum(weighted_t if v is None else weighted_t * v)
    return loss, normaliser


def _per_class(value, num_classes, dtype):
    """A scalar or a length-C sequence → something that broadcasts along the class axis."""
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0):
        check_alpha_length("focal_loss", value, num_classes)
        return ops.convert_to_tensor(value, dtype=dtype)
    return ops.convert_to_tensor(float(value), dtype=dtype)


def _multiclass_stats(problem, soft_label):
    """TP, PS, TS (and L1) per (image, class) → (N, C) each; ``has_pixels`` (N, 1) or None."""
    p, t, v = problem.p, problem.t, problem.v
    vc = None if v is None else ops.expand_dims(v, -1)
    pv = p if vc is None else p * vc
    tp = ops.sum(pv * t, axis=1)
    ps = ops.sum(pv, axis=1)
    ts = ops.sum(t if vc is None else t * vc, axis=1)
    l1 = None
    if soft_label and not problem.index:
        diff = ops.abs(p - t)
        l1 = ops.sum(diff if vc is None else diff * vc, axis=1)
    has_pixels = None if v is None else ops.not_equal(ops.sum(v, axis=1, keepdims=True), 0)
    return (tp, ps, ts, l1), has_pixels


def _sigmoid_pixel(problem, *, focal, gamma, alpha):
    """``ℓ_ic = v_i α_t (1 - p_t)^γ · BCE_ic`` → (N, P, C), and the normaliser."""
    y = problem.smoothed
    positive = -(y * problem.logp)
    negative = -((1 - y) * problem.log1mp)
    if problem.positive_weights is not None:
        positive = positive * problem.positive_weights
    if problem.negative_weights is not None:
        negative = negative * problem.negative_weights
    loss = positive + negative
    if focal and (gamma != 0 or alpha is not None):
        p = problem.p
        if gamma != 0:
            p_t = p * y + (1 - p) * (1 - y)
            loss = loss * ops.power(ops.maximum(1 - p_t, TINY[dtype_of(p)]), gamma)
        if alpha is not None:
            a = _per_class(alpha, p.shape[-1], p.dtype)
            loss = loss * (a * y + (1 - a) * (1 - y))
    v = problem.v
    if v is not None:
        loss = loss * v
        normaliser = ops.sum(v * ops.ones_like(loss))
    else:
        normaliser = ops.sum(ops.ones_like(loss))
    return loss, normaliser


def _sigmoid_stats(problem, soft_label):
    """TP, PS, TS (and L1) per (image, channel) → (N, C); ``has_pixels`` (N, C) or None."""
    p, t, v = problem.p, problem.t, problem.v
    pv = p if v is None else p * v
    tp = ops.sum(pv * t, axis=1)
    ps = ops.sum(pv, axis=1)
    ts = ops.sum(t if v is None else t * v, axis=1)
    l1 = None
    if soft_label and not problem.integer:
        diff = ops.abs(p - t)
        l1 = ops.sum(diff if v is None else diff * v, axis=1)
    has_pixels = None if v is None else ops.not_equal(ops.sum(v * ops.ones_like(p), axis=1), 0)
    return (tp, ps, ts, l1), has_pixels


def _template(problem):
    """A (N,) zero vector of the compute dtype (for per-sample values of batch statistics)."""
    return ops.sum(ops.zeros_like(problem.p), axis=(1, 2))


# --------------------------------------------------------------------------------------------
# The losses (internal forms take the Loss classes' per-pixel sample_weight too)


def _prepare(function, y_true, y_pred, *, mode, class_dim, from_logits, ignore_index, mask,
             pixel_weights, sample_weight, class_weights, beta, pos_weight, label_smoothing,
             validate, want_log=True):
    check_flags(function, from_logits=from_logits, validate=validate)
    common = dict(class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                  mask=mask, pixel_weights=pixel_weights, sample_weight=sample_weight,
                  class_weights=class_weights, validate=validate)
    if mode == "multiclass":
        if pos_weight is not None:
            raise fail(function, "pos_weight", "be None for mode='multiclass' (it weighs the "
                       "positive term of a sigmoid)", "a value", "Use class_weights= instead.")
        return prepare_multiclass(function, y_true, y_pred, beta=beta, want_log=want_log,
                                  **common)
    return prepare_sigmoid(function, y_true, y_pred, mode=mode, pos_weight=pos_weight,
                           label_smoothing=label_smoothing, **common)


def pixel_loss(function, y_true, y_pred, *, mode, focal=False, gamma=0.0, alpha=None,
               class_dim, from_logits, ignore_index, mask, class_weights, beta, pixel_weights,
               pos_weight, label_smoothing, reduction, validate, sample_weight=None):
    """CE, BCE and focal loss (options already checked)."""
    input_dtype = dtype_of(check_prediction(function, y_pred))
    problem = _prepare(function, y_true, y_pred, mode=mode, class_dim=class_dim,
                       from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                       pixel_weights=pixel_weights, sample_weight=sample_weight,
                       class_weights=class_weights, beta=beta, pos_weight=pos_weight,
                       label_smoothing=label_smoothing, validate=validate)
    if mode == "multiclass":
        loss, normaliser = _multiclass_pixel(problem, focal=focal, gamma=gamma, alpha=alpha,
                                             label_smoothing=label_smoothing)
    else:
        loss, normaliser = _sigmoid_pixel(problem, focal=focal, gamma=gamma, alpha=alpha)
    return _reduce_pixels(loss, normaliser, reduction, problem, input_dtype)


def region(function, y_true, y_pred, *, mode, alpha, beta, gamma, smooth, absent, aggregate,
           include_background, soft_label, class_dim, from_logits, ignore_index, mask,
           class_weights, weight_beta, pixel_weights, reduction, validate, sample_weight=None):
    """The Tversky family (options already checked)."""
    check_flags(function, soft_label=soft_label)
    input_dtype = dtype_of(check_prediction(function, y_pred))
    problem = _prepare(function, y_true, y_pred, mode=mode, class_dim=class_dim,
                       from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                       pixel_weights=pixel_weights, sample_weight=sample_weight,
                       class_weights=class_weights, beta=weight_beta, pos_weight=None,
                       label_smoothing=0.0, validate=validate, want_log=False)
    stats, has_pixels = (_multiclass_stats if mode == "multiclass" else _sigmoid_stats)(
        problem, soft_label)
    weighted, pair_weights = region_loss(
        *stats, alpha=alpha, beta=beta, gamma=gamma, smooth=smooth, absent=absent,
        aggregate=aggregate, include_background=include_background,
        class_weights=problem.class_weights, has_pixels=has_pixels)
    out = _reduce_region(weighted, pair_weights, aggregate, reduction, problem.n,
                         _template(problem))
    return ops.cast(out, input_dtype) if reduction == "none" else out


def compound(function, y_true, y_pred, *, mode, lambda_ce, lambda_dice, smooth, absent,
             aggregate, include_background, soft_label, label_smoothing, pos_weight, class_dim,
             from_logits, ignore_index, mask, class_weights, beta, pixel_weights, reduction,
             validate, sample_weight=None):
    """Dice + CE from one activation (options already checked)."""
    input_dtype = dtype_of(check_prediction(function, y_pred))
    problem = _prepare(function, y_true, y_pred, mode=mode, class_dim=class_dim,
                       from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                       pixel_weights=pixel_weights, sample_weight=sample_weight,
                       class_weights=class_weights, beta=beta, pos_weight=pos_weight,
                       label_smoothing=label_smoothing, validate=validate)
    if mode == "multiclass":
        loss, normaliser = _multiclass_pixel(problem, focal=False, gamma=0.0, alpha=None,
                                             label_smoothing=label_smoothing)
        stats, has_pixels = _multiclass_stats(problem, soft_label)
    else:
        loss, normaliser = _sigmoid_pixel(problem, focal=False, gamma=0.0, alpha=None)
        stats, has_pixels = _sigmoid_stats(problem, soft_label)
    weighted, pair_weights = region_loss(
        *stats, alpha=0.5, beta=0.5, gamma=1.0, smooth=smooth / 2, absent=absent,
        aggregate=aggregate, include_background=include_background,
        class_weights=problem.class_weights, has_pixels=has_pixels)
    dice = _reduce_region(weighted, pair_weights, aggregate, reduction, problem.n,
                          _template(problem))
    pixel = _reduce_pixels(loss, normaliser, reduction, problem, input_dtype)
    return lambda_ce * pixel + lambda_dice * dice


# --------------------------------------------------------------------------------------------
# Public functions: check the options (as the torch front does), then compute


def _check_pixel(function, *, mode, reduction, label_smoothing, class_weights, beta,
                 focal=False, gamma=0.0, alpha=None):
    check_pixel_options(function, mode=mode, reduction=reduction,
                        label_smoothing=label_smoothing, class_weights=class_weights, beta=beta)
    if focal:
        check_number(function, "gamma", gamma)
        check_alpha(function, alpha, mode)


def cross_entropy(y_true, y_pred, *, mode="multiclass", class_dim=-1, from_logits=True,
                  ignore_index=None, mask=None, class_weights=None, beta=0.999,
                  pixel_weights=None, pos_weight=None, label_smoothing=0.0, reduction="mean",
                  validate=True):
    r"""Pixel-wise cross-entropy: softmax over the class axis (sigmoid for binary/multilabel).

    .. math::
        \ell_i = -v_i \sum_c w_c\, q_{ic} \log p_{ic},\qquad p_i = \mathrm{softmax}(x_i)

    with :math:`q` the one-hot / soft target after label smoothing, :math:`w_c` the class
    weights and :math:`v_i` the pixel weight (``mask · pixel_weights``, 0 at ``ignore_index``);
    every symbol and option as :func:`seglosses.torch.cross_entropy`.

    Args:
        y_true: an integer index map ``(N, *spatial)`` (or ``(N, *spatial, 1)``; float values
            that are exact integers are accepted, since Keras casts masks to float), or a
            one-hot / soft target of ``y_pred``'s shape.
        y_pred: logits (or probabilities with ``from_logits=False``) ``(N, *spatial, C)``, the
            class axis at ``class_dim`` (default ``-1``, channels-last).
        Other options as :func:`seglosses.torch.cross_entropy`.

    Returns:
        ``"none"``: ``(N, *spatial)`` in ``y_pred``'s dtype. ``"sum"``: :math:`\sum_i \ell_i`.
        ``"mean"``: :math:`\sum_i \ell_i / \sum_i v_i w_{y_i}` (index map) or
        :math:`/ \sum_i v_i` (float target); 0 when every pixel is ignored. Reduced values are
        float32 for float16/bfloat16 input.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(size=(2, 8, 8, 4)).astype("float32")
        >>> labels = rng.integers(0, 4, size=(2, 8, 8))
        >>> tuple(cross_entropy(labels, logits, reduction="none").shape)
        (2, 8, 8)
    """
    function = "cross_entropy"
    _check_pixel(function, mode=mode, reduction=reduction, label_smoothing=label_smoothing,
                 class_weights=class_weights, beta=beta)
    return pixel_loss(function, y_true, y_pred, mode=mode, class_dim=class_dim,
                      from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                      class_weights=class_weights, beta=beta, pixel_weights=pixel_weights,
                      pos_weight=pos_weight, label_smoothing=label_smoothing,
                      reduction=reduction, validate=validate)


def binary_cross_entropy(y_true, y_pred, *, mode="binary", class_dim=-1, from_logits=True,
                         ignore_index=None, mask=None, class_weights=None, beta=0.999,
                         pixel_weights=None, pos_weight=None, label_smoothing=0.0,
                         reduction="mean", validate=True):
    r"""Binary cross-entropy per element (a sigmoid per channel).

    .. math::
        \ell_{ic} = -v_i w_c \big[\, pw_c\, y'_{ic} \log \sigma(z_{ic})
                    + (1 - y'_{ic}) \log(1 - \sigma(z_{ic})) \,\big]

    as :func:`seglosses.torch.binary_cross_entropy` (``class_weights="balanced"`` is HED's
    class-balanced BCE, from the batch's labels).

    Args:
        y_true: ``y_pred``'s shape (a one-channel prediction also takes a mask without the
            channel axis); float in [0, 1], or {0, 1} plus ``ignore_index`` labels.
        y_pred: ``(N, *spatial, 1)`` or ``(N, *spatial)`` for ``mode="binary"``,
            ``(N, *spatial, C)`` for ``"multilabel"``.

    Returns:
        ``"none"``: ``y_pred``'s shape. ``"mean"``: over the valid elements,
        :math:`\sum \ell / \sum v`.

    Example:
        >>> import numpy as np
        >>> logits = np.zeros((2, 8, 8, 1), "float32")
        >>> masks = np.ones((2, 8, 8, 1), "float32")
        >>> round(float(binary_cross_entropy(masks, logits)), 4)  # ln 2
        0.6931
    """
    function = "binary_cross_entropy"
    check_choice(function, "mode", mode, ("binary", "multilabel"))
    _check_pixel(function, mode=mode, reduction=reduction, label_smoothing=label_smoothing,
                 class_weights=class_weights, beta=beta)
    return pixel_loss(function, y_true, y_pred, mode=mode, class_dim=class_dim,
                      from_logits=from_logits, ignore_index=ignore_index, mask=mask,
                      class_weights=class_weights, beta=beta, pixel_weights=pixel_weights,
                      pos_weight=pos_weight, label_smoothing=label_smoothing,
                      reduction=reduction, validate=validate)


def focal_loss(y_true, y_pred, *, mode="multiclass", gamma=2.0, alpha=None, class_dim=-1,
               from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
               pixel_weights=None, pos_weight=None, label_smoothing=0.0, reduction="mean",
               validate=True):
    r"""Focal loss (Lin et al. 2017), softmax or sigmoid by ``mode``.

    .. math::
        \ell_i = -v_i \sum_c w_c\, \alpha_c\, q_{ic} (1 - p_{ic})^{\gamma} \log p_{ic}
        \quad\text{(multiclass)},\qquad
        \ell_{ic} = v_i\, \alpha_t (1 - p_t)^{\gamma}\, \mathrm{BCE}_{ic}
        \quad\text{(sigmoid)}

    as :func:`seglosses.torch.focal_loss`; ``gamma=0, alpha=None`` is exactly
    :func:`cross_entropy` / :func:`binary_cross_entropy`. Keras's ``CategoricalFocal``
    ``Crossentropy(alpha=0.25)`` is ``alpha=0.25`` here (our default α is None).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
        >>> labels = rng.integers(0, 3, size=(2, 8, 8))
        >>> a = float(focal_loss(labels, logits, gamma=0.0))
        >>> b = float(cross_entropy(labels, logits))
        >>> abs(a - b) < 1e-6
        True
    """
    function = "focal_loss"
    _check_pixel(function, mode=mode, reduction=reduction, label_smoothing=label_smoothing,
                 class_weights=class_weights, beta=beta, focal=True, gamma=gamma, alpha=alpha)
    return pixel_loss(function, y_true, y_pred, mode=mode, focal=True, gamma=gamma,
                      alpha=alpha, class_dim=class_dim, from_logits=from_logits,
                      ignore_index=ignore_index, mask=mask, class_weights=class_weights,
                      beta=beta, pixel_weights=pixel_weights, pos_weight=pos_weight,
                      label_smoothing=label_smoothing, reduction=reduction, validate=validate)


def tversky_loss(y_true, y_pred, *, mode="multiclass", alpha=0.5, beta=0.5, gamma=1.0,
                 smooth=1.0, absent="include", aggregate="image", include_background=True,
                 soft_label=False, class_dim=-1, from_logits=True, ignore_index=None, mask=None,
                 class_weights=None, weight_beta=0.999, pixel_weights=None, reduction="mean",
                 validate=True):
    r"""Tversky loss; focal-Tversky for γ ≠ 1.

    .. math::
        L_{nc} = (1 - T_{nc})^{\gamma},\qquad
        T_{nc} = \frac{TP_{nc} + s}{TP_{nc} + \alpha\, FP_{nc} + \beta\, FN_{nc} + s}

    α weighs false positives and β false negatives (as MONAI and the torch front; Keras
    3.15's ``keras.losses.Tversky`` applies its ``alpha`` to the false negatives, so its
    ``Tversky(alpha=a, beta=b)`` is ``alpha=b, beta=a`` here). Statistics, ``absent``,
    ``aggregate`` (``"image"`` or ``"batch"``), ``include_background``, ``soft_label`` and the
    class-weighted mean as :func:`seglosses.torch.tversky_loss`.

    Returns:
        ``"none"``: :math:`w_c L_{nc}`, ``(N, C)`` (``(C,)`` for ``aggregate="batch"``).
        ``"sum"``: their sum. ``"mean"``: :math:`\sum w_c L_{nc} / \sum w_c` over kept pairs.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
        >>> labels = rng.integers(0, 3, size=(2, 8, 8))
        >>> tuple(tversky_loss(labels, logits, alpha=0.3, beta=0.7, reduction="none").shape)
        (2, 3)
    """
    function = "tversky_loss"
    check_region_options(function, mode=mode, reduction=reduction, smooth=smooth, absent=absent,
                         aggregate=aggregate, include_background=include_background,
                         class_weights=class_weights, weight_beta=weight_beta, alpha=alpha,
                         beta=beta, gamma=gamma, weight_beta_name="weight_beta")
    return region(function, y_true, y_pred, mode=mode, alpha=alpha, beta=beta, gamma=gamma,
                  smooth=smooth, absent=absent, aggregate=aggregate,
                  include_background=include_background, soft_label=soft_label,
                  class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                  mask=mask, class_weights=class_weights, weight_beta=weight_beta,
                  pixel_weights=pixel_weights, reduction=reduction, validate=validate)


def dice_family(function, alpha, beta, smooth_scale, y_true, y_pred, *, mode, smooth, absent,
                aggregate, include_background, soft_label, class_dim, from_logits,
                ignore_index, mask, class_weights, beta_weights, pixel_weights, reduction,
                validate, sample_weight=None, check=True):
    """Dice (Tversky ½, ½ with smooth s/2) and Jaccard (Tversky 1, 1)."""
    if check:
        check_region_options(function, mode=mode, reduction=reduction, smooth=smooth,
                             absent=absent, aggregate=aggregate,
                             include_background=include_background,
                             class_weights=class_weights, weight_beta=beta_weights)
    return region(function, y_true, y_pred, mode=mode, alpha=alpha, beta=beta, gamma=1.0,
                  smooth=smooth * smooth_scale, absent=absent, aggregate=aggregate,
                  include_background=include_background, soft_label=soft_label,
                  class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                  mask=mask, class_weights=class_weights, weight_beta=beta_weights,
                  pixel_weights=pixel_weights, reduction=reduction, validate=validate,
                  sample_weight=sample_weight)


def dice_loss(y_true, y_pred, *, mode="multiclass", smooth=1.0, absent="include",
              aggregate="image", include_background=True, soft_label=False, class_dim=-1,
              from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
              pixel_weights=None, reduction="mean", validate=True):
    r"""Soft Dice loss, ``1 - D`` per (image, class).

    .. math::
        D_{nc} = \frac{2\,TP_{nc} + s}{2\,TP_{nc} + FP_{nc} + FN_{nc} + s}

    Options and reductions as :func:`tversky_loss` (``beta`` is the effective-number β of
    the class-weight strategy), the meaning of :func:`seglosses.torch.dice_loss`.

    Example:
        >>> import numpy as np
        >>> labels = np.random.default_rng(0).integers(0, 3, size=(2, 8, 8))
        >>> perfect = 100.0 * np.eye(3, dtype="float32")[labels]  # channels-last logits
        >>> round(float(dice_loss(labels, perfect)), 6)
        0.0
    """
    return dice_family("dice_loss", 0.5, 0.5, 0.5, y_true, y_pred, mode=mode, smooth=smooth,
                       absent=absent, aggregate=aggregate,
                       include_background=include_background, soft_label=soft_label,
                       class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                       mask=mask, class_weights=class_weights, beta_weights=beta,
                       pixel_weights=pixel_weights, reduction=reduction, validate=validate)


def jaccard_loss(y_true, y_pred, *, mode="multiclass", smooth=1.0, absent="include",
                 aggregate="image", include_background=True, soft_label=False, class_dim=-1,
                 from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
                 pixel_weights=None, reduction="mean", validate=True):
    r"""Soft Jaccard (IoU) loss, ``1 - J`` per (image, class).

    .. math::
        J_{nc} = \frac{TP_{nc} + s}{TP_{nc} + FP_{nc} + FN_{nc} + s}

    Tversky with α = β = 1; options and reductions as :func:`tversky_loss`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
        >>> labels = rng.integers(0, 3, size=(2, 8, 8))
        >>> float(jaccard_loss(labels, logits)) > float(dice_loss(labels, logits))
        True
    """
    return dice_family("jaccard_loss", 1.0, 1.0, 1.0, y_true, y_pred, mode=mode, smooth=smooth,
                       absent=absent, aggregate=aggregate,
                       include_background=include_background, soft_label=soft_label,
                       class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                       mask=mask, class_weights=class_weights, beta_weights=beta,
                       pixel_weights=pixel_weights, reduction=reduction, validate=validate)


def check_dice_ce(function, *, mode, reduction, lambda_ce, lambda_dice, label_smoothing, smooth,
                  absent, aggregate, include_background, class_weights, beta,
                  reductions=("mean", "sum", "none")):
    check_compound(function, reduction=reduction, lambda_ce=lambda_ce, lambda_dice=lambda_dice,
                   label_smoothing=label_smoothing)
    region_weights = None if is_balanced(class_weights) else class_weights
    check_region_options(function, mode=mode, reduction=reduction, smooth=smooth, absent=absent,
                         aggregate=aggregate, include_background=include_background,
                         class_weights=region_weights, weight_beta=beta, reductions=reductions)


def dice_ce_loss(y_true, y_pred, *, mode="multiclass", lambda_ce=1.0, lambda_dice=1.0,
                 smooth=1.0, absent="include", aggregate="image", include_background=True,
                 soft_label=False, label_smoothing=0.0, pos_weight=None, class_dim=-1,
                 from_logits=True, ignore_index=None, mask=None, class_weights=None, beta=0.999,
                 pixel_weights=None, reduction="mean", validate=True):
    r"""Dice + cross-entropy (multiclass) or BCE-Dice (binary / multilabel), one activation.

    .. math::
        L = \lambda_{ce}\, \mathrm{CE} + \lambda_{dice}\, \mathrm{Dice}

    both reduced the same way (``"mean"`` or ``"sum"``), sharing the softmax / sigmoid,
    ``ignore_index``, ``mask``, ``pixel_weights`` and ``class_weights``, as
    :func:`seglosses.torch.dice_ce_loss`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(size=(4, 8, 8, 7)).astype("float32")
        >>> labels = rng.integers(0, 7, size=(4, 8, 8))
        >>> loss = dice_ce_loss(labels, logits, ignore_index=255,
        ...                     class_weights="median_frequency")
        >>> tuple(loss.shape)
        ()
    """
    function = "dice_ce_loss"
    check_dice_ce(function, mode=mode, reduction=reduction, lambda_ce=lambda_ce,
                  lambda_dice=lambda_dice, label_smoothing=label_smoothing, smooth=smooth,
                  absent=absent, aggregate=aggregate, include_background=include_background,
                  class_weights=class_weights, beta=beta)
    return compound(function, y_true, y_pred, mode=mode, lambda_ce=lambda_ce,
                    lambda_dice=lambda_dice, smooth=smooth, absent=absent, aggregate=aggregate,
                    include_background=include_background, soft_label=soft_label,
                    label_smoothing=label_smoothing, pos_weight=pos_weight,
                    class_dim=class_dim, from_logits=from_logits, ignore_index=ignore_index,
                    mask=mask, class_weights=class_weights, beta=beta,
                    pixel_weights=pixel_weights, reduction=reduction, validate=validate)

