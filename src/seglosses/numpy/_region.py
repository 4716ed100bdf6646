r"""Region losses of the NumPy oracle: Tversky, Dice, Jaccard, and Dice + CE.

Per image :math:`n` and class :math:`c` (float64, sums over the pixels :math:`i` of the image):

.. math::

    TP_{nc} = \sum_i v_i\, p_{ic}\, t_{ic}, \quad
    FP_{nc} = \sum_i v_i\, p_{ic} (1 - t_{ic}), \quad
    FN_{nc} = \sum_i v_i (1 - p_{ic})\, t_{ic}

where :math:`p` are the probabilities (softmax over C in ``"multiclass"``, sigmoid per
channel otherwise, or the clipped given probabilities with ``from_logits=False``),
:math:`t` the one-hot / soft target (no label smoothing) and :math:`v_i` the valid-pixel
weight (ignore x mask x pixel_weights). ``soft_label=True`` uses
:math:`TP = (\sum v p + \sum v t - \sum v |p - t|) / 2`, :math:`FP = \sum v p - TP`,
:math:`FN = \sum v t - TP` (equal to the above for hard targets). ``aggregate="batch"``
(and ``"global"``, which is ``"batch"`` without a process group) sums the statistics over
the batch before the ratio.

Kept (image, class) pairs: all, minus class 0 with ``include_background=False``
(multiclass only), minus the pairs with :math:`\sum_i v_i t_{ic} = 0` with
``absent="exclude"``. Reductions: ``"none"`` returns :math:`w_c L_{nc}` of shape ``(N, C')``
(``(C',)`` for batch aggregation) with excluded pairs set to 0; ``"sum"`` returns
:math:`\sum_{kept} w_c L_{nc}`; ``"mean"`` returns
:math:`\sum_{kept} w_c L_{nc} / \sum_{kept} w_c`, and 0 if that normaliser is 0.
"""

import numpy as np

from ._pixel import binary_cross_entropy
from ._pixel import cross_entropy as _cross_entropy
from ._prepare import check_mode, check_reduction, prepare
from ._weights import resolve_class_weights

ABSENT = ("include", "exclude")
AGGREGATES = ("image", "batch", "global")


def _ratio(numerator, denominator):
    """numerator / denominator, and 1 where the denominator is exactly 0 (loss 0, never NaN)."""
    zero = denominator == 0
    return np.where(zero, 1.0, numerator / np.where(zero, 1.0, denominator))


def _tversky_index(alpha, beta, smooth):
    return lambda tp, fp, fn: _ratio(tp + smooth, tp + alpha * fp + beta * fn + smooth)


def _dice_index(smooth):
    return lambda tp, fp, fn: _ratio(2.0 * tp + smooth, 2.0 * tp + fp + fn + smooth)


def _jaccard_index(smooth):
    return lambda tp, fp, fn: _ratio(tp + smooth, tp + fp + fn + smooth)


def _region_loss(
    name,
    input,
    target,
    *,
    index_of,
    gamma,
    absent,
    aggregate,
    include_background,
    soft_label,
    mode,
    class_dim,
    from_logits,
    ignore_index,
    mask,
    class_weights,
    weight_beta,
    pixel_weights,
    reduction,
):
    """(1 - index)^gamma per kept (image, class) pair, then the class-weighted reduction.

    ``index_of(TP, FP, FN)`` is the Tversky, Dice or Jaccard index.
    """
    check_mode(name, mode)
    check_reduction(name, reduction)
    if absent not in ABSENT:
        raise ValueError(f"{name}: absent must be one of {ABSENT}; got {absent!r}.")
    if aggregate not in AGGREGATES:
        raise ValueError(f"{name}: aggregate must be one of {AGGREGATES}; got {aggregate!r}.")
    if isinstance(class_weights, str) and class_weights == "balanced":
        raise ValueError(
            f"{name}: class_weights='balanced' applies to BCE / focal only; "
            "got it for a region loss."
        )
    d = prepare(
        name,
        input,
        target,
        mode=mode,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        pixel_weights=pixel_weights,
    )
    w, _, _ = resolve_class_weights(name, class_weights, d, weight_beta)
    p, t, v = d.p, d.t, d.v

    spatial = tuple(range(2, p.ndim))
    sum_p = np.sum(v * p, axis=spatial)
    sum_t = np.sum(v * t, axis=spatial)
    if soft_label:
        tp = (sum_p + sum_t - np.sum(v * np.abs(p - t), axis=spatial)) / 2.0
        fp = sum_p - tp
        fn = sum_t - tp
    else:
        tp = np.sum(v * p * t, axis=spatial)
        fp = np.sum(v * p * (1.0 - t), axis=spatial)
        fn = np.sum(v * (1.0 - p) * t, axis=spatial)
    # pairs without a single valid pixel (an image wholly ignored) carry no evidence
    sum_v = np.sum(v * np.ones(p.shape), axis=spatial)
    if aggregate in ("batch", "global"):
        tp, fp, fn, sum_t, sum_v = (np.sum(s, axis=0, keepdims=True)
                                    for s in (tp, fp, fn, sum_t, sum_v))

    index = index_of(tp, fp, fn)
    # Clamp at 0: soft_label statistics can leave 1 - T at -1e-16, and (-1e-16) ** 0.75 is NaN.
    loss = np.maximum(1.0 - index, 0.0) ** gamma  # (N, C) or (1, C)

    kept = sum_v != 0
    if absent == "exclude":
        kept &= sum_t != 0
    if not include_background and mode == "multiclass":
        loss, kept, w = loss[:, 1:], kept[:, 1:], w[1:]
    weighted = np.where(kept, w * loss, 0.0)
    if reduction == "none":
        return weighted[0] if aggregate in ("batch", "global") else weighted
    if reduction == "sum":
        return float(np.sum(weighted))
    normaliser = np.sum(np.where(kept, w * np.ones(loss.shape), 0.0))
    return float(np.sum(weighted) / normaliser) if normaliser != 0 else 0.0


_REGION_DOC_ARGS = """
    Args:
        input: logits (or probabilities with ``from_logits=False``) ``(N, C, *spatial)``, the
            class axis at ``class_dim``; binary mode also accepts ``(N, *spatial)``.
        target: as for :func:`cross_entropy` (multiclass) or :func:`binary_cross_entropy`.
        smooth: :math:`s \\ge 0` added to numerator and denominator (default 1).
        absent: ``"include"`` (default) or ``"exclude"`` pairs with an empty target.
        aggregate: ``"image"`` (default), ``"batch"``, or ``"global"`` (= ``"batch"`` here).
        include_background: keep class 0 (multiclass only; default True).
        soft_label: use the soft-label form of the statistics.
        class_weights: ``None``, a length-C sequence or a strategy name (not ``"balanced"``).
        other options: as :func:`cross_entropy`.

    Returns:
        A float for ``"mean"`` / ``"sum"``; for ``"none"`` a float64 array ``(N, C')``
        (``(C',)`` for batch aggregation), ``C' = C - 1`` without background.
"""


def tversky_loss(
    input,
    target,
    *,
    mode="multiclass",
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
    smooth=1.0,
    absent="include",
    aggregate="image",
    include_background=True,
    soft_label=False,
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    weight_beta=0.999,
    pixel_weights=None,
    reduction="mean",
):
    r"""Tversky loss (focal-Tversky for :math:`\gamma \ne 1`), float64 reference.

    .. math::

        L_{nc} = (1 - T_{nc})^\gamma, \quad
        T_{nc} = \frac{TP_{nc} + s}{TP_{nc} + \alpha FP_{nc} + \beta FN_{nc} + s}

    where :math:`T := 1` if the denominator is exactly 0, :math:`\alpha` weights false
    positives and :math:`\beta` false negatives (the statistics are defined in this module's
    docstring). ``weight_beta`` is the :math:`\beta` of the ``"effective_number"`` class-weight
    strategy (named so because ``beta`` is Tversky's).

    Example:
        >>> import numpy as np
        >>> z = np.array([[[9.0, -9.0], [-9.0, 9.0]]])  # (N=1, C=2, 2 pixels)
        >>> round(tversky_loss(z, np.array([[0, 1]]), smooth=0.0), 3)
        0.0

    References:
        Salehi et al. 2017 (Tversky loss); Abraham & Khan 2019 (focal Tversky).
    """
    return _region_loss(
        "tversky_loss",
        input,
        target,
        index_of=_tversky_index(alpha, beta, smooth),
        gamma=gamma,
        absent=absent,
        aggregate=aggregate,
        include_background=include_background,
        soft_label=soft_label,
        mode=mode,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        class_weights=class_weights,
        weight_beta=weight_beta,
        pixel_weights=pixel_weights,
        reduction=reduction,
    )


def dice_loss(
    input,
    target,
    *,
    mode="multiclass",
    smooth=1.0,
    absent="include",
    aggregate="image",
    include_background=True,
    soft_label=False,
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    beta=0.999,
    pixel_weights=None,
    reduction="mean",
):
    r"""Soft Dice loss, float64 reference.

    .. math::

        L_{nc} = 1 - D_{nc}, \quad
        D_{nc} = \frac{2\,TP_{nc} + s}{2\,TP_{nc} + FP_{nc} + FN_{nc} + s}

    where :math:`D := 1` if the denominator is exactly 0 (statistics in the module docstring;
    ``beta`` is the ``"effective_number"`` parameter). At ``smooth=0`` this is Tversky with
    :math:`\alpha = \beta = 0.5`; with smooth :math:`s` it is Tversky(0.5, 0.5) with
    smooth :math:`s/2`.

    Example:
        >>> import numpy as np
        >>> z = np.array([[[9.0, -9.0], [-9.0, 9.0]]])
        >>> round(dice_loss(z, np.array([[1, 0]]), smooth=0.0), 3)  # disjoint
        1.0

    References:
        Milletari et al. 2016 (V-Net); Sudre et al. 2017.
    """
    return _region_loss(
        "dice_loss",
        input,
        target,
        index_of=_dice_index(smooth),
        gamma=1.0,
        absent=absent,
        aggregate=aggregate,
        include_background=include_background,
        soft_label=soft_label,
        mode=mode,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        class_weights=class_weights,
        weight_beta=beta,
        pixel_weights=pixel_weights,
        reduction=reduction,
    )


def jaccard_loss(
    input,
    target,
    *,
    mode="multiclass",
    smooth=1.0,
    absent="include",
    aggregate="image",
    include_background=True,
    soft_label=False,
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    beta=0.999,
    pixel_weights=None,
    reduction="mean",
):
    r"""Soft Jaccard (IoU) loss, float64 reference.

    .. math::

        L_{nc} = 1 - J_{nc}, \quad
        J_{nc} = \frac{TP_{nc} + s}{TP_{nc} + FP_{nc} + FN_{nc} + s}

    where :math:`J := 1` if the denominator is exactly 0 (statistics in the module docstring;
    ``beta`` is the ``"effective_number"`` parameter): Tversky with :math:`\alpha = \beta = 1`.
    At ``smooth=0``, :math:`J = D / (2 - D)`.

    Example:
        >>> import numpy as np
        >>> z = np.array([[[9.0, -9.0], [-9.0, 9.0]]])
        >>> round(jaccard_loss(z, np.array([[0, 1]])), 3)  # perfect
        0.0

    References:
        Rahman & Wang 2016; Berman et al. 2018.
    """
    return _region_loss(
        "jaccard_loss",
        input,
        target,
        index_of=_jaccard_index(smooth),
        gamma=1.0,
        absent=absent,
        aggregate=aggregate,
        include_background=include_background,
        soft_label=soft_label,
        mode=mode,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        class_weights=class_weights,
        weight_beta=beta,
        pixel_weights=pixel_weights,
        reduction=reduction,
    )


def dice_ce_loss(
    input,
    target,
    *,
    mode="multiclass",
    lambda_ce=1.0,
    lambda_dice=1.0,
    smooth=1.0,
    absent="include",
    aggregate="image",
    include_background=True,
    soft_label=False,
    label_smoothing=0.0,
    pos_weight=None,
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    beta=0.999,
    pixel_weights=None,
    reduction="mean",
):
    r"""Dice + cross-entropy (multiclass) or Dice + BCE (sigmoid modes), float64 reference.

    .. math::

        L = \lambda_{ce}\, \mathrm{CE} + \lambda_{dice}\, \mathrm{Dice}

    where CE is :func:`cross_entropy` (multiclass, with ``label_smoothing`` and
    ``class_weights``) or :func:`binary_cross_entropy` (with ``pos_weight``,
    ``label_smoothing`` and ``class_weights``), and Dice is :func:`dice_loss` with
    ``class_weights``, ``smooth``, ``absent``, ``aggregate``, ``include_background`` and
    ``soft_label`` (``include_background`` and ``absent`` act on the Dice term only,
    ``label_smoothing`` on the CE term only; with ``class_weights="balanced"`` the Dice term
    is unweighted). ``reduction`` (``"mean"`` or ``"sum"``) applies to both terms.

    Example:
        >>> import numpy as np
        >>> z = np.zeros((1, 2, 3))
        >>> round(dice_ce_loss(z, np.array([[0, 1, 1]]), smooth=0.0), 6)  # ln 2 + (3/5 + 3/7)/2
        1.207433
    """
    check_mode("dice_ce_loss", mode)
    check_reduction("dice_ce_loss", reduction, ("mean", "sum"))
    balanced = isinstance(class_weights, str) and class_weights == "balanced"
    common = dict(
        mode=mode,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        beta=beta,
        pixel_weights=pixel_weights,
        reduction=reduction,
    )
    if mode == "multiclass":
        if pos_weight is not None:
            raise ValueError(
                "dice_ce_loss: pos_weight needs mode='binary' or 'multilabel'; "
                "got mode='multiclass'."
            )
        ce = _cross_entropy(
            input, target, class_weights=class_weights, label_smoothing=label_smoothing, **common
        )
    else:
        ce = binary_cross_entropy(
            input,
            target,
            class_weights=class_weights,
            pos_weight=pos_weight,
            label_smoothing=label_smoothing,
            **common,
        )
    dice = dice_loss(
        input,
        target,
        smooth=smooth,
        absent=absent,
        aggregate=aggregate,
        include_background=include_background,
        soft_label=soft_label,
        class_weights=None if balanced else class_weights,
        **common,
    )
    return lambda_ce * ce + lambda_dice * dice


for _function in (tversky_loss, dice_loss, jaccard_loss):
    _function.__doc__ = _function.__doc__.replace(
        "\n    Example:", _REGION_DOC_ARGS + "\n    Example:", 1
    )
