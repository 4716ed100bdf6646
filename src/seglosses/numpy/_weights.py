"""Class-weight strategies for the NumPy oracle."""

import math

import numpy as np

STRATEGIES = (
    "inverse_frequency",
    "inverse_sqrt_frequency",
    "median_frequency",
    "effective_number",
    "log_inverse",
    "balanced",
)


def class_weights_from_counts(counts, method, *, beta=0.999):
    r"""Class weights from per-class pixel counts.

    With :math:`n_c` the count of class :math:`c` and :math:`f_c = n_c / \sum_k n_k`:

    .. math::

        w_c = \begin{cases}
            1 / f_c & \text{inverse\_frequency} \\
            1 / \sqrt{f_c} & \text{inverse\_sqrt\_frequency} \\
            \operatorname{median}_{k: n_k > 0}(f_k) / f_c & \text{median\_frequency} \\
            (1 - \beta) / (1 - \beta^{n_c}) & \text{effective\_number} \\
            1 / \ln(1.02 + f_c) & \text{log\_inverse}
        \end{cases}

    where the median is NumPy's (mean of the two middle values for an even count of present
    classes). The raw values are returned, not normalised. A class with :math:`n_c = 0` is
    absent and gets the largest weight among present classes; if no class is present every
    weight is 1.

    ``"balanced"`` (HED, Xie & Tu 2015) takes ``counts = [negatives, positives]`` and returns
    ``[f, 1 - f]`` with :math:`f = n_{pos} / (n_{neg} + n_{pos})` the positive fraction:
    negatives are weighted by the positive fraction and positives by the negative fraction.
    If either side is empty the result is ``[0.5, 0.5]``.

    Args:
        counts: non-negative counts, shape ``(C,)`` (``(2,)`` for ``"balanced"``). Float
            counts (soft targets, float masks) are allowed.
        method: one of the names above.
        beta: :math:`\beta` of ``"effective_number"`` (Cui et al. 2019), default 0.999.

    Returns:
        float64 array of shape ``(C,)``.

    Example:
        >>> class_weights_from_counts([10, 30, 0, 60], "inverse_frequency").tolist()
        [10.0, 3.3333333333333335, 10.0, 1.6666666666666667]
        >>> class_weights_from_counts([75, 25], "balanced").tolist()
        [0.25, 0.75]

    References:
        Eigen & Fergus 2015 (median frequency); Paszke et al. 2016, ENet (log inverse);
        Cui et al. 2019 (effective number); Xie & Tu 2015, HED (balanced).
    """
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if method not in STRATEGIES:
        raise ValueError(
            f"class_weights_from_counts: method must be one of {STRATEGIES}; got {method!r}."
        )
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError(
            f"class_weights_from_counts: counts must be finite and >= 0; got {counts.tolist()}."
        )
    if method == "balanced":
        if counts.shape != (2,):
            raise ValueError(
                "class_weights_from_counts: counts must be [negatives, positives] for "
                f"'balanced'; got length {counts.size}."
            )
        negatives, positives = counts
        if negatives == 0 or positives == 0:
            return np.array([0.5, 0.5])
        positive_fraction = positives / (negatives + positives)
        return np.array([positive_fraction, 1.0 - positive_fraction])

    present = counts > 0
    if not np.any(present):
        return np.ones(counts.shape)
    frequencies = counts / counts.sum()
    weights = np.zeros(counts.shape)
    for c in np.flatnonzero(present):
        f, n = frequencies[c], counts[c]
        if method == "inverse_frequency":
            weights[c] = 1.0 / f
        elif method == "inverse_sqrt_frequency":
            weights[c] = 1.0 / math.sqrt(f)
        elif method == "median_frequency":
            weights[c] = np.median(frequencies[present]) / f
        elif method == "effective_number":
            weights[c] = (1.0 - beta) / (1.0 - beta**n)
        else:  # log_inverse
            weights[c] = 1.0 / math.log(1.02 + f)
    weights[~present] = weights[present].max()
    return weights


def resolve_class_weights(name, class_weights, prepared, beta):
    """The per-class weights of one call.

    Returns ``(w, positive, negative)``, three float64 arrays of shape (C,): ``w`` multiplies
    class c's loss; ``positive`` / ``negative`` multiply the positive / negative BCE terms
    (all ones unless ``class_weights="balanced"``). Strategies use the current target's counts
    over the whole batch, weighted by ignore/mask validity but not by ``pixel_weights``.
    """
    n_classes = prepared.n_classes
    ones = np.ones(n_classes)
    if class_weights is None:
        return ones, ones, ones
    if isinstance(class_weights, str):
        if class_weights not in STRATEGIES:
            raise ValueError(
                f"{name}: class_weights must be a length-{n_classes} sequence or one of "
                f"{STRATEGIES}; got {class_weights!r}."
            )
        if class_weights != "balanced" and prepared.mode != "multiclass":
            raise ValueError(
                f"{name}: class_weights must be a length-{n_classes} sequence or 'balanced' "
                f"for mode={prepared.mode!r} (the frequency strategies are for multiclass "
                f"mode); got {class_weights!r}."
            )
        sum_axes = tuple(a for a in range(prepared.t.ndim) if a != 1)
        positives = np.sum(prepared.valid * prepared.t, axis=sum_axes)
        if class_weights == "balanced":
            if prepared.mode == "multiclass":
                raise ValueError(
                    f"{name}: class_weights='balanced' needs mode='binary' or 'multilabel'; "
                    "got mode='multiclass'."
                )
            negatives = np.sum(prepared.valid * (1.0 - prepared.t), axis=sum_axes)
            pairs = [
                class_weights_from_counts([negatives[c], positives[c]], "balanced")
                for c in range(n_classes)
            ]
            negative = np.array([pair[0] for pair in pairs])
            positive = np.array([pair[1] for pair in pairs])
            return ones, positive, negative
        return class_weights_from_counts(positives, class_weights, beta=beta), ones, ones
    weights = np.asarray(class_weights, dtype=np.float64).reshape(-1)
    if weights.shape != (n_classes,):
        raise ValueError(f"{name}: class_weights must have length {n_classes}; got {weights.size}.")
    return weights, ones, ones
