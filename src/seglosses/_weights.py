"""Class-weight strategies, written once for NumPy arrays, torch tensors and keras.ops tensors.

The torch path computes weights from each batch's labels on the device, without a host sync
(so it also traces under ``torch.compile``); the Keras front does the same with ``keras.ops``
on any backend (so it traces under ``tf.function`` and ``jax.jit``);
``class_weights_from_counts`` computes the same numbers from dataset-wide counts. One formula
serves all three, so they cannot drift apart. Reductions and indexing go through the small ops
adapters below, because TensorFlow tensors have no ``.sum()``/``.take()`` methods.
"""

from __future__ import annotations

import math

import numpy as np

from ._spec import STRATEGIES, check_choice, check_number, fail


class _NumpyOps:
    where = staticmethod(np.where)
    sqrt = staticmethod(np.sqrt)
    log = staticmethod(np.log)
    expm1 = staticmethod(np.expm1)
    sort = staticmethod(np.sort)

    @staticmethod
    def full_like(x, value):
        return np.full_like(x, value)

    @staticmethod
    def sum(x):
        return x.sum()

    @staticmethod
    def max(x):
        return x.max()

    @staticmethod
    def any(x):
        return x.any()

    @staticmethod
    def take(x, index):
        return x.take(index)

    @staticmethod
    def clip(x, low, high):
        return x.clip(low, high)


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

    def expm1(self, x):
        return self.torch.expm1(x)

    def sort(self, x):
        return self.torch.sort(x).values

    def full_like(self, x, value):
        return self.torch.full_like(x, value)

    # the tensor methods the formulas used before the Keras adapter existed (no behaviour change)
    sum = staticmethod(_NumpyOps.sum)
    max = staticmethod(_NumpyOps.max)
    any = staticmethod(_NumpyOps.any)

    @staticmethod
    def take(x, index):
        # gather, not Tensor.take: inductor's decomposition of take guards on the index's
        # value, which fails for a data-dependent index (the median's position) under compile
        return x.gather(0, index.reshape(1)).reshape(())
    clip = staticmethod(_NumpyOps.clip)


class _KerasOps:
    """``keras.ops`` on any backend (TensorFlow tensors have no reduction methods)."""

    def __init__(self):
        from keras import backend, ops

        self.ops, self.backend = ops, backend

    def where(self, cond, a, b):
        return self.ops.where(cond, a, b)

    def sqrt(self, x):
        return self.ops.sqrt(x)

    def log(self, x):
        return self.ops.log(x)

    def expm1(self, x):
        return self.ops.expm1(x)

    def sort(self, x):
        return self.ops.sort(x)

    def full_like(self, x, value):
        return self.ops.full_like(x, value)

    def sum(self, x):
        if self.backend.standardize_dtype(x.dtype) == "bool":
            x = self.ops.cast(x, "int32")
        return self.ops.sum(x)

    def max(self, x):
        return self.ops.max(x)

    def any(self, x):
        return self.ops.any(x)

    def take(self, x, index):
        return self.ops.take(x, index)

    def clip(self, x, low, high):
        return self.ops.clip(x, low, high)


def _ops(counts):
    if isinstance(counts, np.ndarray):
        return _NumpyOps
    if type(counts).__module__.split(".")[0] == "torch":
        return _TorchOps()
    return _KerasOps()  # a TensorFlow or JAX tensor from the Keras front


def strategy_weights(counts, method: str, beta: float = 0.999):
    """Per-class weights from per-class counts (a 1-D float array or tensor).

    ``f_c = n_c / Σ n``; the formulas are those of docs/semantics.md, class_weights. Classes
    with ``n_c = 0`` get the largest weight among present classes; with no class present every
    weight is 1.
    """
    ops = _ops(counts)
    present = counts > 0
    total = ops.sum(counts)
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
        k, last = ops.sum(present), freq.shape[0] - 1
        low = ops.take(ordered, ops.clip((k - 1) // 2, 0, last))  # take: no host sync in torch
        high = ops.take(ordered, ops.clip(k // 2, 0, last))
        weights = (0.5 * (low + high)) / freq
    elif method == "effective_number":
        # 1 - β^n as -expm1(n ln β): β^n in float32 loses ~n·1e-8 and 1 - β^n then has a
        # relative error of ~1e-5 for small n; this form keeps float32 within ~1e-7
        log_beta = math.log(beta) if beta > 0 else -math.inf
        weights = (1.0 - beta) / -ops.expm1(safe_counts * log_beta)
    elif method == "log_inverse":
        weights = 1.0 / ops.log(1.02 + freq)
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(method)
    # every weight is positive, so 0 is neutral for the max over present classes
    largest = ops.max(ops.where(present, weights, ops.full_like(weights, 0.0)))
    weights = ops.where(present, weights, largest)
    return ops.where(ops.any(present), weights, ops.full_like(weights, 1.0))


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
