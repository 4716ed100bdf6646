"""Class-weight strategies, written once for NumPy arrays and torch tensors.

The torch path computes weights from each batch's labels on the device, without a host sync
(so it also traces under ``torch.compile``); ``class_weights_from_counts`` computes the same
numbers from dataset-wide counts. One formula serves both, so they cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

from ._spec import STRATEGIES, check_choice, check_number, fail


class _NumpyOps:
    where = staticmethod(np.where)
    sqrt = staticmethod(np.sqrt)
    log = staticmethod(np.log)
    sort = staticmethod(np.sort)

    @staticmethod
    def full_like(x, value):
        return np.full_like(x, value)


class _TorchOps:
    def __init__(self):
        import torch

        self.torch = torch

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def sqrt(self, x):
        return self.torch.sqrt(x)

    def log(self, x):
        return self.torch.log(x)

    def sort(self, x):
        return self.torch.sort(x).values

    def full_like(self, x, value):
        return self.torch.full_like(x, value)


def _ops(counts):
    return _NumpyOps if isinstance(counts, np.ndarray) else _TorchOps()


def strategy_weights(counts, method: str, beta: float = 0.999):
    """Per-class weights from per-class counts (a 1-D float array or tensor).

    ``f_c = n_c / Σ n``; the formulas are those of SPEC §4. Classes with ``n_c = 0`` get the
    largest weight among present classes; with no class present every weight is 1.
    """
    ops = _ops(counts)
    present = counts > 0
    total = counts.sum()
    safe_counts = ops.where(present, counts, ops.full_like(counts, 1.0))
    freq = safe_counts / ops.where(total > 0, total, ops.full_like(total, 1.0))
    if method == "inverse_frequency":
        weights = 1.0 / freq
    elif method == "inverse_sqrt_frequency":
        weights = 1.0 / ops.sqrt(freq)
    elif method == "median_frequency":
        # numpy-style median of the present classes' frequencies: absent ones sort last (inf),
        # and the two middle entries among the k present ones are averaged.
        ordered = ops.sort(ops.where(present, freq, ops.full_like(freq, math.inf)))
        k, last = present.sum(), freq.shape[0] - 1
        low = ordered.take(((k - 1) // 2).clip(0, last))  # take: no host sync in torch
        high = ordered.take((k // 2).clip(0, last))
        weights = (0.5 * (low + high)) / freq
    elif method == "effective_number":
        weights = (1.0 - beta) / (1.0 - beta ** safe_counts)
    elif method == "log_inverse":
        weights = 1.0 / ops.log(1.02 + freq)
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(method)
    # every weight is positive, so 0 is neutral for the max over present classes
    largest = ops.where(present, weights, ops.full_like(weights, 0.0)).max()
    weights = ops.where(present, weights, largest)
    return ops.where(present.any(), weights, ops.full_like(weights, 1.0))


def balanced_weights(negatives, positives):
    """HED class-balanced weights (Xie & Tu 2015) per channel: ``(w_neg, w_pos)``.

    Positives are weighted by the fraction of negatives and vice versa; a channel where one side
    is absent gets ``0.5`` for both (the HED weights would zero the only class present).
    """
    ops = _ops(negatives)
    total = negatives + positives
    both = (negatives > 0) & (positives > 0)
    safe_total = ops.where(both, total, ops.full_like(total, 1.0))
    half = ops.full_like(total, 0.5)
    return (ops.where(both, positives / safe_total, half),
            ops.where(both, negatives / safe_total, half))


def class_weights_from_counts(counts, method: str, *, beta: float = 0.999) -> np.ndarray:
    """Class weights from dataset-wide pixel counts, with the same formulas as the losses.

    .. math::
        f_c = n_c / \\sum_k n_k, \\quad
        w_c = 1/f_c,\\ 1/\\sqrt{f_c},\\ \\mathrm{median}(f)/f_c,\\
        (1-\\beta)/(1-\\beta^{n_c}),\\ 1/\\ln(1.02 + f_c)

    for ``inverse_frequency``, ``inverse_sqrt_frequency``, ``median_frequency`` (Eigen & Fergus
    2015, median over the present classes), ``effective_number`` (Cui et al. 2019) and
    ``log_inverse`` (ENet). Absent classes (``n_c = 0``) get the largest weight among the present
    ones. ``balanced`` takes ``counts = [negatives, positives]`` of a binary mask and returns
    ``[w_neg, w_pos]`` (HED). Weights are scale-free for every ``"mean"`` reduction.

    Args:
        counts: 1-D sequence of non-negative pixel counts, one per class.
        method: one of the strategy names above.
        beta: the effective-number β in ``[0, 1)``.

    Returns:
        ``np.ndarray`` of float64 weights, one per class.

    Example:
        >>> class_weights_from_counts([900, 90, 10], "median_frequency").round(3).tolist()
        [0.1, 1.0, 9.0]
        >>> class_weights_from_counts([75, 25], "balanced").tolist()
        [0.25, 0.75]
    """
    function = "class_weights_from_counts"
    check_choice(function, "method", method, STRATEGIES)
    beta = check_number(function, "beta", beta, low=0.0, high=1.0, high_inclusive=False)
    array = np.asarray(counts, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise fail(function, "counts", "be a non-empty 1-D sequence of counts",
                   f"shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise fail(function, "counts", "be finite and >= 0", array.tolist())
    if method == "balanced":
        if array.size != 2:
            raise fail(function, "counts", "have length 2 ([negatives, positives]) for "
                       "method='balanced'", f"length {array.size}")
        negative, positive = balanced_weights(array[:1], array[1:])
        return np.concatenate([negative, positive])
    return np.asarray(strategy_weights(array, method, beta), dtype=np.float64)
