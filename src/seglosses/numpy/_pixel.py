r"""Pixel losses of the NumPy oracle: cross-entropy, binary cross-entropy, focal loss.

Shared symbols (every docstring below uses them):

- :math:`p_{ic}`: probability of class :math:`c` at pixel :math:`i` (softmax over C in
  ``"multiclass"`` mode, elementwise sigmoid in ``"binary"`` / ``"multilabel"``; with
  ``from_logits=False`` the given probabilities, renormalised over C in multiclass, clipped
  to :math:`[\epsilon, 1 - \epsilon]`, :math:`\epsilon = 10^{-7}` in the input's dtype).
- :math:`v_i`: valid-pixel weight = (not ignored) x ``mask`` x ``pixel_weights``.
- :math:`w_c`: class weight (``class_weights``: a length-C sequence or a strategy name,
  see :func:`class_weights_from_counts`; 1 if ``None``).
- :math:`q_{ic}`: multiclass target (one-hot of an index map, or the one-hot / soft target)
  after label smoothing :math:`q = (1 - \varepsilon) q + \varepsilon / C`.
- :math:`y'_{ic}`: sigmoid-mode target after label smoothing
  :math:`y' = (1 - \varepsilon) y + \varepsilon / 2`.

Reductions: ``"none"`` returns the per-pixel loss (``(N, *spatial)`` in multiclass, the
input's shape in sigmoid modes), ``"sum"`` its sum, ``"mean"`` the sum divided by the
normaliser given in each function; a zero normaliser (every pixel ignored, empty arrays)
gives 0.0.
"""

import numpy as np

from ._prepare import (
    along_classes,
    check_mode,
    check_reduction,
    per_class,
    prepare,
    safe_divide,
)
from ._weights import resolve_class_weights


def _reduce(loss, normaliser, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return float(np.sum(loss))
    return safe_divide(np.sum(loss), normaliser)


def _multiclass(
    name,
    input,
    target,
    *,
    gamma,
    alpha,
    class_dim,
    from_logits,
    ignore_index,
    mask,
    class_weights,
    beta,
    pixel_weights,
    label_smoothing,
    reduction,
):
    """Softmax CE / focal: l_i = v_i sum_c w_c a_c q_ic (1 - p_ic)^gamma (-log p_ic)."""
    check_reduction(name, reduction)
    d = prepare(
        name,
        input,
        target,
        mode="multiclass",
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        pixel_weights=pixel_weights,
    )
    n_classes, ndim = d.n_classes, d.p.ndim
    w, _, _ = resolve_class_weights(name, class_weights, d, beta)
    a = np.ones(n_classes) if alpha is None else per_class(name, alpha, n_classes, "alpha")
    q = (1.0 - label_smoothing) * d.t + label_smoothing / n_classes
    focal = (1.0 - d.p) ** gamma
    terms = along_classes(w * a, ndim) * q * focal * d.neg_log_p
    loss = d.v[:, 0] * np.sum(terms, axis=1)
    # sum_i v_i sum_c w_c t_ic with t as given (before smoothing): PyTorch's weighted mean
    # sum_i v_i w_{y_i} for an index map (d.t is its one-hot, 0 where ignored), and the same
    # number for its one-hot mask
    normaliser = np.sum(d.v[:, 0] * np.sum(along_classes(w, ndim) * d.t, axis=1))
    return _reduce(loss, normaliser, reduction)


def _sigmoid(
    name,
    input,
    target,
    *,
    mode,
    gamma,
    alpha,
    class_dim,
    from_logits,
    ignore_index,
    mask,
    class_weights,
    beta,
    pixel_weights,
    pos_weight,
    label_smoothing,
    reduction,
):
    """Sigmoid BCE / focal, elementwise over (pixel, channel)."""
    check_reduction(name, reduction)
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
    n_classes, ndim = d.n_classes, d.p.ndim
    w, positive, negative = resolve_class_weights(name, class_weights, d, beta)
    if pos_weight is not None:
        positive = positive * per_class(name, pos_weight, n_classes, "pos_weight")
    y = (1.0 - label_smoothing) * d.t + label_smoothing / 2.0
    bce = (
        along_classes(positive, ndim) * y * d.neg_log_p
        + along_classes(negative, ndim) * (1.0 - y) * d.neg_log_one_minus_p
    )
    # 1 - p_t with p_t = p y' + (1 - p)(1 - y'), written as p (1 - y') + (1 - p) y' so that
    # 1 - p comes from sigmoid(-z) and keeps its precision when p is close to 1.
    one_minus_p_t = d.p * (1.0 - y) + d.one_minus_p * y
    if alpha is None:
        alpha_t = 1.0
    else:
        a = along_classes(per_class(name, alpha, n_classes, "alpha"), ndim)
        alpha_t = a * y + (1.0 - a) * (1.0 - y)
    loss = d.v * along_classes(w, ndim) * alpha_t * one_minus_p_t**gamma * bce
    normaliser = np.sum(d.v * np.ones(loss.shape))
    if reduction == "none":
        return d.restore(loss)
    return _reduce(loss, normaliser, reduction)


def cross_entropy(
    input,
    target,
    *,
    mode="multiclass",
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    beta=0.999,
    pixel_weights=None,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
):
    r"""Cross-entropy per pixel (float64 reference).

    .. math::

        \ell_i = v_i \sum_c w_c\, q_{ic}\, (-\log p_{ic})

    where the symbols are those of this module's docstring. ``"mean"`` divides the sum by
    :math:`\sum_i v_i w_{y_i}` for index targets (PyTorch's weighted mean) and by
    :math:`\sum_i v_i` for one-hot / soft targets.

    ``mode="binary"`` or ``"multilabel"`` computes :func:`binary_cross_entropy` instead.

    Args:
        input: logits (or probabilities with ``from_logits=False``), ``(N, C, *spatial)``
            with the class axis at ``class_dim``; any float dtype.
        target: index map ``(N, *spatial)`` (or ``(N, 1, *spatial)``, integer), or a one-hot /
            soft target of the input's shape.
        mode: ``"multiclass"`` (default), ``"binary"`` or ``"multilabel"``.
        class_dim: the class axis of ``input``.
        from_logits: whether ``input`` holds logits (default) or probabilities.
        ignore_index: an int or a sequence of ints; those pixels have :math:`v_i = 0`.
        mask: bool or float ``(N, *spatial)`` multiplying :math:`v_i`.
        class_weights: ``None``, a length-C sequence, or a strategy name.
        beta: :math:`\beta` of the ``"effective_number"`` strategy.
        pixel_weights: float ``(N, *spatial)`` multiplying :math:`v_i`.
        pos_weight: only for sigmoid modes (see :func:`binary_cross_entropy`).
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A float for ``"mean"`` / ``"sum"``; a float64 array ``(N, *spatial)`` for ``"none"``.

    Example:
        >>> import numpy as np
        >>> p = np.array([[.2, .7, .1], [.1, .1, .8], [.9, .05, .05]])
        >>> round(cross_entropy(p, np.array([1, 2, 0]), from_logits=False, reduction="sum"), 6)
        0.685179
    """
    check_mode("cross_entropy", mode)
    options = dict(
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        class_weights=class_weights,
        beta=beta,
        pixel_weights=pixel_weights,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )
    if mode in ("binary", "multilabel"):
        return binary_cross_entropy(input, target, mode=mode, pos_weight=pos_weight, **options)
    if pos_weight is not None:
        raise ValueError(
            f"cross_entropy: pos_weight needs mode='binary' or 'multilabel'; got mode={mode!r}."
        )
    return _multiclass("cross_entropy", input, target, gamma=0.0, alpha=None, **options)


def binary_cross_entropy(
    input,
    target,
    *,
    mode="binary",
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    beta=0.999,
    pixel_weights=None,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
):
    r"""Binary cross-entropy per element (float64 reference).

    .. math::

        \ell_{ic} = v_i\, w_c \left[ \mathrm{pw}_c\, b^+_c\, y'_{ic} (-\log p_{ic})
                    + b^-_c\, (1 - y'_{ic}) (-\log (1 - p_{ic})) \right]

    where :math:`\mathrm{pw}_c` is ``pos_weight`` (1 if ``None``), :math:`b^\pm_c = 1` except
    for ``class_weights="balanced"`` (HED): :math:`b^+_c = 1 - f_c`, :math:`b^-_c = f_c`,
    :math:`f_c` the valid positive fraction of channel c (0.5 and 0.5 if a side is empty).
    From logits :math:`z`, :math:`-\log p = \operatorname{softplus}(-z)` and
    :math:`-\log(1 - p) = \operatorname{softplus}(z)`. ``"mean"`` divides the sum by
    :math:`\sum_{ic} v_i` over elements (class weights are not in the normaliser, as torch).

    Args:
        input: logits (or probabilities), ``(N, 1, *spatial)`` or ``(N, *spatial)`` for
            ``mode="binary"`` (default), ``(N, C, *spatial)`` for ``"multilabel"``.
        target: the input's shape, float in [0, 1] or integer {0, 1} (plus ignore labels).
        pos_weight: length C, applied along ``class_dim``.
        class_weights: ``None``, length C, a strategy name, or ``"balanced"``.
        other options: as :func:`cross_entropy`.

    Returns:
        A float for ``"mean"`` / ``"sum"``; a float64 array of the input's shape for ``"none"``.

    Example:
        >>> import numpy as np
        >>> z = np.array([[10.0, -10.0, -10.0]])
        >>> y = np.array([[1.0, 0.0, 1.0]])
        >>> round(binary_cross_entropy(z, y, mode="multilabel", label_smoothing=0.1), 4)
        3.5
    """
    if mode not in ("binary", "multilabel"):
        raise ValueError(
            f"binary_cross_entropy: mode must be 'binary' or 'multilabel'; got {mode!r}."
        )
    return _sigmoid(
        "binary_cross_entropy",
        input,
        target,
        mode=mode,
        gamma=0.0,
        alpha=None,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        class_weights=class_weights,
        beta=beta,
        pixel_weights=pixel_weights,
        pos_weight=pos_weight,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def focal_loss(
    input,
    target,
    *,
    mode="multiclass",
    gamma=2.0,
    alpha=None,
    class_dim=1,
    from_logits=True,
    ignore_index=None,
    mask=None,
    class_weights=None,
    beta=0.999,
    pixel_weights=None,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
):
    r"""Focal loss (Lin et al. 2017), softmax or sigmoid by ``mode`` (float64 reference).

    Multiclass (Keras ``CategoricalFocalCrossentropy`` form):

    .. math::

        \ell_i = v_i \sum_c w_c\, a_c\, q_{ic}\, (1 - p_{ic})^\gamma (-\log p_{ic})

    with :math:`a_c` = ``alpha[c]`` for a length-C ``alpha``, ``alpha`` for a scalar (a uniform
    scale), 1 for ``None``; ``"mean"`` uses the normaliser of :func:`cross_entropy`.

    Binary / multilabel:

    .. math::

        p_t = p\, y' + (1 - p)(1 - y'), \quad \alpha_t = \alpha_c\, y' + (1 - \alpha_c)(1 - y'),
        \quad \ell_{ic} = v_i\, w_c\, \alpha_t\, (1 - p_t)^\gamma\, \mathrm{BCE}_{ic}

    with :math:`\mathrm{BCE}_{ic}` the bracket of :func:`binary_cross_entropy` (``pos_weight``
    and ``"balanced"`` included), :math:`\alpha_t = 1` for ``alpha=None``; ``"mean"`` as BCE.
    With ``gamma=0`` and ``alpha=None`` this equals CE / BCE exactly.

    Args:
        gamma: focusing parameter :math:`\gamma \ge 0` (default 2).
        alpha: ``None``, a scalar, or length C.
        other options: as :func:`cross_entropy` / :func:`binary_cross_entropy`.

    Returns:
        A float for ``"mean"`` / ``"sum"``; for ``"none"`` the per-pixel (multiclass) or
        per-element (sigmoid modes) array.

    Example:
        >>> import numpy as np
        >>> z = np.array([[2.0, -1.0, 0.5]])
        >>> focal_loss(z, np.array([2]), gamma=0.0) == cross_entropy(z, np.array([2]))
        True
        >>> round(focal_loss(np.zeros((1, 4)), np.array([2]), gamma=0.0), 6)  # ln 4
        1.386294

    References:
        Lin et al. 2017, Focal Loss for Dense Object Detection.
    """
    options = dict(
        gamma=gamma,
        alpha=alpha,
        class_dim=class_dim,
        from_logits=from_logits,
        ignore_index=ignore_index,
        mask=mask,
        class_weights=class_weights,
        beta=beta,
        pixel_weights=pixel_weights,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )
    if mode in ("binary", "multilabel"):
        return _sigmoid("focal_loss", input, target, mode=mode, pos_weight=pos_weight, **options)
    check_mode("focal_loss", mode)
    if pos_weight is not None:
        raise ValueError(
            "focal_loss: pos_weight needs mode='binary' or 'multilabel'; got mode='multiclass'."
        )
    return _multiclass("focal_loss", input, target, **options)
