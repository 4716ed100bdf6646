"""Layout, activation, targets and pixel validity for the NumPy oracle.

Everything here is float64 and naive on purpose: it is the reference the fast paths
are tested against, so it favours formulas that can be checked by eye over speed.
"""

from types import SimpleNamespace

import numpy as np

EPS = 1e-7
MODES = ("multiclass", "binary", "multilabel")
REDUCTIONS = ("mean", "sum", "none")


def check_mode(name, mode):
    if mode not in MODES:
        raise ValueError(f"{name}: mode must be one of {MODES}; got {mode!r}.")


def check_reduction(name, reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {allowed}; got {reduction!r}.")


def ignore_labels(ignore_index):
    """``None`` -> (), ``255`` -> (255,), ``(-100, 255)`` -> (-100, 255)."""
    if ignore_index is None:
        return ()
    if np.ndim(ignore_index) == 0:
        return (int(ignore_index),)
    return tuple(int(label) for label in ignore_index)


def softplus(x):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def clip_probabilities(x):
    """Clip to ``[eps, 1 - eps]`` in ``x``'s own dtype (Keras 3), then go to float64.

    In float32, ``1 - 1e-7`` rounds to ``1 - 2**-23``; Keras's published values depend on it.
    In float16 it rounds to 1, which would clip nothing: the upper bound is then the largest
    number below 1 (``1 - 2**-11``), so a probability of exactly 1 still gives a finite loss.
    """
    lo = np.asarray(EPS, dtype=x.dtype)
    hi = np.minimum(np.asarray(1 - EPS, dtype=x.dtype),
                    np.asarray(1 - np.finfo(x.dtype).eps / 2, dtype=x.dtype))
    return np.clip(x, lo, hi).astype(np.float64)


def _per_pixel_map(name, argument, array, class_dim, n_spatial_shape, full_shape, moved):
    """A mask / pixel-weight map of shape (N, *spatial) -> (N, 1, *spatial) float64.

    For sigmoid modes a map of the input's full shape is also accepted (per element).
    """
    array = np.asarray(array)
    if array.shape == tuple(n_spatial_shape):
        return np.expand_dims(array.astype(np.float64), 1)
    if full_shape is not None and array.shape == tuple(full_shape):
        array = array.astype(np.float64)
        return np.moveaxis(array, class_dim, 1) if moved else np.expand_dims(array, 1)
    raise ValueError(
        f"{name}: {argument} must have shape {tuple(n_spatial_shape)}; got {array.shape}."
    )


def prepare(
    name, input, target, *, mode, class_dim, from_logits, ignore_index, mask, pixel_weights
):
    """Bring a call's tensors to the oracle's canonical form.

    Returns a namespace with (all float64, class axis at 1, ``S`` the spatial shape):

    - ``p``: probabilities ``(N, C, *S)``; ``neg_log_p``: ``-log p``.
    - sigmoid modes only: ``one_minus_p`` (``1 - p``) and ``neg_log_one_minus_p``.
    - ``t``: target ``(N, C, *S)``: one-hot for index maps (0 at ignored pixels), else as given.
    - ``index_target``: whether the target was an index map (multiclass).
    - ``valid``: ignore x mask, broadcastable to ``(N, C, *S)`` (``(N, 1, *S)`` in multiclass).
    - ``v``: ``valid x pixel_weights``, same shape.
    - sigmoid modes only: ``restore(loss)`` maps a per-element ``(N, C, *S)`` loss back to
      the input's layout.
    """
    check_mode(name, mode)
    x = np.asarray(input)
    y = np.asarray(target)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}: input must be a float array; got dtype {x.dtype}.")
    ignored = ignore_labels(ignore_index)
    out = SimpleNamespace(mode=mode, index_target=False)
    if mode == "multiclass":
        valid, layout = _multiclass(name, out, x, y, class_dim, from_logits, ignored)
    else:
        valid, layout = _sigmoid(name, out, x, y, mode, class_dim, from_logits, ignored)

    if mask is not None:
        valid = valid * _per_pixel_map(name, "mask", mask, class_dim, *layout)
    out.valid = valid
    out.v = valid
    if pixel_weights is not None:
        out.v = valid * _per_pixel_map(name, "pixel_weights", pixel_weights, class_dim, *layout)
    out.n_classes = out.p.shape[1]
    return out


def _multiclass(name, out, x, y, class_dim, from_logits, ignored):
    """Softmax (or renormalised, clipped probabilities) and the one-hot target, into ``out``.

    Returns the validity (N, 1, *S) and the layout for :func:`_per_pixel_map`.
    """
    input_shape = x.shape
    axis = class_dim % x.ndim
    n_spatial_shape = x.shape[:axis] + x.shape[axis + 1 :]
    x = np.moveaxis(x, axis, 1)
    if from_logits:
        z = x.astype(np.float64)
        shifted = z - np.max(z, axis=1, keepdims=True)
        log_norm = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        out.neg_log_p = log_norm - shifted
        out.p = np.exp(shifted - log_norm)
    else:
        # Keras: renormalise over C, clip in the input's dtype, then log.
        out.p = clip_probabilities(x / np.sum(x, axis=1, keepdims=True))
        out.neg_log_p = -np.log(out.p)
    n_classes = x.shape[1]
    integer = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if y.shape == input_shape:
        if ignored:
            raise ValueError(
                f"{name}: ignore_index needs an index target; got a target of the "
                f"input's shape {y.shape}. Use mask= for one-hot or soft targets."
            )
        out.t = np.moveaxis(y.astype(np.float64), axis, 1)
        valid = np.ones(n_spatial_shape)
    elif integer and (
        y.shape == n_spatial_shape
        or (
            y.ndim == len(n_spatial_shape) + 1
            and y.shape[axis] == 1
            and np.squeeze(y, axis).shape == n_spatial_shape
        )
    ):
        labels = y if y.shape == n_spatial_shape else np.squeeze(y, axis)
        labels = labels.astype(np.int64)
        valid = np.ones(n_spatial_shape)
        for label in ignored:
            valid = valid * (labels != label)
        # Compare instead of indexing, so ignored labels outside [0, C) are never indices.
        out.t = np.stack(
            [((labels == c) & (valid > 0)).astype(np.float64) for c in range(n_classes)],
            axis=1,
        )
        out.index_target = True
    else:
        raise ValueError(
            f"{name}: target must have shape {n_spatial_shape} (index map) or "
            f"{input_shape} (one-hot / soft) for mode='multiclass'; got {y.shape}."
        )
    valid = np.expand_dims(valid, 1)
    return valid, (n_spatial_shape, None, True)


def _sigmoid(name, out, x, y, mode, class_dim, from_logits, ignored):
    """Sigmoid (or clipped probabilities), -log p, -log(1 - p) and the target, into ``out``.

    Returns the validity (N, C, *S) and the layout for :func:`_per_pixel_map`.
    """
    original_shape = x.shape
    if y.shape != original_shape:
        raise ValueError(
            f"{name}: target must have the input's shape {original_shape} for "
            f"mode={mode!r}; got {y.shape}."
        )
    # A binary input may come without a channel axis; a multilabel input always has one.
    moved = mode == "multilabel" or (x.ndim >= 2 and x.shape[class_dim % x.ndim] == 1)
    if moved:
        axis = class_dim % x.ndim
        n_spatial_shape = x.shape[:axis] + x.shape[axis + 1 :]
        x = np.moveaxis(x, axis, 1)
        y = np.moveaxis(y, axis, 1)
        out.restore = lambda loss: np.moveaxis(loss, 1, axis)
    else:  # binary input without a channel axis: (N, *S)
        axis = 1
        n_spatial_shape = x.shape
        x = np.expand_dims(x, 1)
        y = np.expand_dims(y, 1)
        out.restore = lambda loss: loss[:, 0]
    if mode == "binary" and x.shape[1] != 1:
        raise ValueError(
            f"{name}: input must have one channel for mode='binary'; got {original_shape}."
        )
    if from_logits:
        z = x.astype(np.float64)
        out.p = sigmoid(z)
        out.one_minus_p = sigmoid(-z)
        out.neg_log_p = softplus(-z)
        out.neg_log_one_minus_p = softplus(z)
    else:
        out.p = clip_probabilities(x)
        out.one_minus_p = 1.0 - out.p
        out.neg_log_p = -np.log(out.p)
        out.neg_log_one_minus_p = -np.log(out.one_minus_p)
    valid = np.ones(x.shape)
    if ignored:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{name}: ignore_index needs an integer target; got dtype {y.dtype}. "
                "Use mask= for float targets."
            )
        for label in ignored:
            valid = valid * (y != label)
    out.t = np.where(valid > 0, y, 0).astype(np.float64)
    return valid, (n_spatial_shape, original_shape, moved)


def per_class(name, values, n_classes, argument):
    """A length-C sequence or a scalar -> float64 array of shape (C,)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return np.full(n_classes, float(values))
    values = values.reshape(-1)
    if values.shape != (n_classes,):
        raise ValueError(f"{name}: {argument} must have length {n_classes}; got {values.size}.")
    return values


def along_classes(vector, ndim):
    """(C,) -> (1, C, 1, ..., 1) so it broadcasts along the class axis of an ndim array."""
    return np.asarray(vector).reshape((1, -1) + (1,) * (ndim - 2))


def safe_divide(numerator, denominator):
    """``numerator / denominator``, or 0.0 when the denominator is 0 (all ignored, empty)."""
    return float(numerator / denominator) if denominator != 0 else 0.0
