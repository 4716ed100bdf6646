r"""Entropy, cross-entropy and KL divergence of discrete distributions (NumPy).

The quantities behind the cross-entropy loss, in bits (``base=2``, the default) or nats
(``base=math.e``). Each function reduces one axis (``axis=-1``) and returns a float for a
single distribution or an array for a batch of them. Arguments are checked: finite,
non-negative, and summing to 1 (within 1e-6) along ``axis``.

Conventions: :math:`0 \log 0 = 0` and :math:`0 \log(0/q) = 0`; where :math:`p > 0` and
:math:`q = 0`, the cross-entropy and the KL divergence are :math:`+\infty` (``q`` cannot
encode an outcome it calls impossible).
"""

import math
import numbers

import numpy as np

__all__ = ["cross_entropy", "entropy", "kl_divergence"]

_SUM_TOLERANCE = 1e-6


def _distribution(function, argument, values, axis):
    """float64 array of ``values``, checked to be a distribution along ``axis``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError(f"{function}: {argument} must have at least one axis; got a scalar.")
    if not np.all(np.isfinite(array)):
        shown = array[~np.isfinite(array)][:5].tolist()
        raise ValueError(f"{function}: {argument} must be finite; got {shown}.")
    if np.any(array < 0):
        raise ValueError(
            f"{function}: {argument} must be non-negative; got minimum {array.min():.6g}."
        )
    sums = np.sum(array, axis=axis)
    bad = np.atleast_1d(np.abs(sums - 1.0) > _SUM_TOLERANCE)
    if np.any(bad):
        shown = [float(f"{s:.6g}") for s in np.atleast_1d(sums)[bad][:5]]
        more = ", ..." if bad.sum() > 5 else ""
        raise ValueError(
            f"{function}: {argument} must sum to 1 along axis {axis}; "
            f"got sums {str(shown)[:-1]}{more}]."
        )
    return array


def _log_scale(function, base):
    """ln(base), after checking that ``base`` is a finite number > 0 and != 1."""
    number = isinstance(base, numbers.Real) and not isinstance(base, bool)
    if not (number and math.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"{function}: base must be a finite number > 0 and != 1; got {base!r}.")
    return math.log(base)


def _sum_of_terms(p, term, axis):
    """sum_k term_k over ``axis``, with the terms where p_k = 0 set to 0 (0 log 0 = 0).

    ``term`` is evaluated everywhere and may produce log(0) = -inf or 0 * -inf = NaN at those
    masked places, so NumPy's warnings about them are silenced.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(np.where(p > 0, term(), 0.0), axis=axis)


def _result(value):
    return float(value) if np.ndim(value) == 0 else value


def entropy(p, *, base=2, axis=-1):
    r"""Shannon entropy of a discrete distribution.

    .. math::

        H(p) = -\sum_k p_k \log_b p_k

    where :math:`p_k` is the probability of outcome :math:`k` (along ``axis``), :math:`b` the
    ``base``, and :math:`0 \log 0 = 0`.

    Args:
        p: probabilities, non-negative, summing to 1 along ``axis``.
        base: logarithm base, 2 (bits, default) or ``math.e`` (nats); any finite ``b > 0``,
            ``b != 1``.
        axis: the outcome axis (default ``-1``).

    Returns:
        A float for a single distribution, else an array with ``axis`` removed.

    Raises:
        ValueError: if ``p`` is not finite, has a negative entry, or does not sum to 1.

    Example:
        >>> entropy([0.5, 0.125, 0.25, 0.125])
        1.75
        >>> round(entropy([7 / 8, 1 / 24, 1 / 24, 1 / 24]), 2)
        0.74
        >>> round(entropy([0.5, 0.5], base=math.e), 6)  # ln 2 nats
        0.693147
    """
    p = _distribution("entropy", "p", p, axis)
    scale = _log_scale("entropy", base)
    return _result(_sum_of_terms(p, lambda: -p * np.log(p) / scale, axis))


def cross_entropy(p, q, *, base=2, axis=-1):
    r"""Cross-entropy of ``q`` relative to the true distribution ``p``.

    .. math::

        H(p, q) = -\sum_k p_k \log_b q_k = H(p) + D_{KL}(p \,\|\, q)

    where :math:`p` is the true distribution, :math:`q` the model's, :math:`b` the ``base``;
    terms with :math:`p_k = 0` are 0, and :math:`H(p, q) = +\infty` if some :math:`p_k > 0`
    has :math:`q_k = 0`. This is the segmentation cross-entropy loss of one pixel with target
    ``p`` and prediction ``q`` (in nats, ``base=math.e``).

    Args:
        p: the true distribution; ``q``: the model distribution. Both non-negative and summing
            to 1 along ``axis``; their shapes must broadcast.
        base: logarithm base (default 2, bits).
        axis: the outcome axis (default ``-1``).

    Returns:
        A float for a single pair of distributions, else an array.

    Example:
        >>> round(cross_entropy([1, 0, 0], [0.9, 0.05, 0.05]), 3)
        0.152
        >>> round(cross_entropy([1, 0, 0], [0.4, 0.3, 0.3]), 2)
        1.32
        >>> cross_entropy([0.5, 0.5], [1.0, 0.0])
        inf
    """
    p = _distribution("cross_entropy", "p", p, axis)
    q = _distribution("cross_entropy", "q", q, axis)
    _check_broadcast("cross_entropy", p, q)
    scale = _log_scale("cross_entropy", base)
    return _result(_sum_of_terms(p, lambda: -p * np.log(q) / scale, axis))


def kl_divergence(p, q, *, base=2, axis=-1):
    r"""Kullback-Leibler divergence of ``q`` from ``p``.

    .. math::

        D_{KL}(p \,\|\, q) = \sum_k p_k \log_b \frac{p_k}{q_k} = H(p, q) - H(p) \ge 0

    where terms with :math:`p_k = 0` are 0 and the divergence is :math:`+\infty` if some
    :math:`p_k > 0` has :math:`q_k = 0`.

    Args:
        p: the true distribution; ``q``: the approximating one (shapes must broadcast).
        base: logarithm base (default 2, bits).
        axis: the outcome axis (default ``-1``).

    Returns:
        A float for a single pair of distributions, else an array.

    Example:
        >>> round(kl_divergence([1, 0, 0], [0.4, 0.3, 0.3]), 2)  # = H(p, q) since H(p) = 0
        1.32
        >>> kl_divergence([0.25, 0.75], [0.25, 0.75])
        0.0
    """
    p = _distribution("kl_divergence", "p", p, axis)
    q = _distribution("kl_divergence", "q", q, axis)
    _check_broadcast("kl_divergence", p, q)
    scale = _log_scale("kl_divergence", base)
    return _result(_sum_of_terms(p, lambda: p * (np.log(p) - np.log(q)) / scale, axis))


def _check_broadcast(function, p, q):
    try:
        np.broadcast_shapes(p.shape, q.shape)
    except ValueError:
        raise ValueError(
            f"{function}: p and q must have broadcastable shapes; got {p.shape} and {q.shape}."
        ) from None
