"""The target adapter of the Keras front: checks every argument once and brings prediction and
target to one form, with ``keras.ops`` only.

Both modes end in a channels-last 3-D arrangement ``(N, P, C)`` (``P`` = the pixels of an image),
whatever ``class_dim`` was: for ``class_dim=-1`` (the Keras default) that is a reshape and costs
nothing. Index maps become one-hot tensors here (simple, and Keras tensors are small next to
the activations); ignored and invalid labels become class 0 with pixel weight 0 (or NaN when the
values are not checked, as the torch front), so they are never used as an index.

Keras casts ``y_true`` to the loss's float dtype before ``Loss.call``, so an index map may
arrive as floats: a float target of shape ``(N, *spatial)`` (or ``(N, *spatial, 1)``) in
multiclass mode, and any binary / multilabel target when ``ignore_index`` is set, is read as
integer labels (the values are exact small integers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from keras import ops

from .._spec import (
    PROBABILITY_EPS,
    check_class_dim,
    check_ignore_index,
    check_strategy,
    check_weight_values,
    fail,
    label_range_error,
    shape_text,
    sum_to_one_error,
    sum_tolerance,
    target_shape_error,
)
from .._weights import balanced_weights, strategy_weights
from ._backend import (
    CLIP_HIGH,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    TINY,
    batch_size,
    compute_dtype,
    dtype_of,
    is_tracing,
    static_shape,
    stop_on_bad_labels,
    values,
)
from ._options import as_float_list


@dataclass
class Multiclass:
    """A multiclass problem: everything ``(N, P, C)`` / ``(N, P)``, compute dtype."""

    logp: object  # log-probabilities
    p: object  # probabilities
    t: object  # one-hot (index map) or the given soft target
    index: bool  # the target was an index map
    v: object | None  # (N, P) pixel weight, 0 at ignored pixels; None means all 1
    class_weights: object | None  # (C,)
    n: object  # batch size (int, or a scalar tensor while tracing)
    restore: object  # (N, P) → (N, *spatial), for reduction="none"


@dataclass
class Sigmoid:
    """A binary / multilabel problem, ``(N, P, C)``."""

    p: object
    logp: object
    log1mp: object
    t: object  # target, 0 at ignored elements
    smoothed: object  # after label smoothing (pixel losses)
    integer: bool  # the target holds labels (integer dtype, or ignore_index set)
    v: object | None  # (N, P, 1) or (N, P, C)
    class_weights: object | None  # (C,) static weights of the region class mean
    positive_weights: object | None  # (C,) coefficient of y·log p
    negative_weights: object | None  # (C,) coefficient of (1-y)·log(1-p)
    n: object
    restore: object  # (N, P, C) → the input's layout and shape


# --------------------------------------------------------------------------------------------
# Small helpers


def _same_shape(a, b) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y
                                    for x, y in zip(a, b, strict=True))


def _shape_error(function, mode, input_shape, target_shape, class_dim):
    """``target_shape_error`` of the torch front; an unknown (traced) dimension prints None."""
    unknown = -(10**9)
    error = target_shape_error(function, mode,
                               tuple(unknown if s is None else s for s in input_shape),
                               tuple(unknown if s is None else s for s in target_shape),
                               class_dim)
    return type(error)(str(error).replace(str(unknown), "None"))


def _sample(array: np.ndarray, limit: int = 5) -> str:
    """``values [..] (k element(s))``, as the torch front prints them."""
    flat = np.asarray(array).reshape(-1)
    # NaNs stay distinct, as torch.unique keeps them (the same text on both fronts)
    unique = np.unique(flat[:100_000], equal_nan=False).tolist() if flat.size else []
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in unique[:limit])
    more = ", ..." if len(unique) > limit else ""
    return f"values [{shown}{more}] ({flat.size} element(s))"


def _checking(validate: bool, *tensors) -> bool:
    # values can only be read eagerly; inside tf.function / jax.jit / torch.compile the checks
    # are skipped (as the torch front under torch.compile)
    return validate and not any(is_tracing(t) for t in tensors if t is not None)


def to_tensor(function: str, argument: str, value):
    if value is None:
        return None
    try:
        return ops.convert_to_tensor(value)
    except Exception as error:  # noqa: BLE001 - any framework's conversion error
        raise fail(function, argument, "be a tensor or an array", type(value).__name__,
                   error=TypeError) from error


def check_prediction(function: str, y_pred):
    y_pred = to_tensor(function, "input", y_pred)
    dtype = dtype_of(y_pred)
    if dtype not in FLOAT_DTYPES:
        raise fail(function, "input", "be a floating-point tensor of logits or probabilities",
                   f"dtype {dtype}", "Cast it with keras.ops.cast(y_pred, 'float32').",
                   error=TypeError)
    return y_pred


def _clip(probabilities):
    """Clip to [eps, 1 - eps] in the input's own dtype (Keras 3; see the torch front)."""
    return ops.clip(probabilities, PROBABILITY_EPS, CLIP_HIGH[dtype_of(probabilities)])


def _check_probabilities(function: str, y_pred) -> None:
    array = values(y_pred).astype(np.float64)
    bad = np.isnan(array) | (array < 0) | (array > 1)
    if bad.any():
        raise fail(function, "input", "hold probabilities in [0, 1] with from_logits=False",
                   _sample(array[bad]), "Pass raw scores with from_logits=True (the default).")


def _side_map(function, name, value, pixel_shape, class_axis, checking):
    """``mask`` / ``pixel_weights`` / per-pixel ``sample_weight`` → a float (N, P) tensor.

    A size-1 class axis (``(N, *spatial, 1)`` for channels-last) is accepted and dropped.
    """
    if value is None:
        return None
    value = to_tensor(function, name, value)
    shape = static_shape(value)
    if len(shape) == len(pixel_shape) + 1 and shape[class_axis] == 1:
        value = ops.squeeze(value, axis=class_axis)
        shape = static_shape(value)
    if not _same_shape(shape, pixel_shape):
        raise fail(function, name, f"have shape {_text(pixel_shape)} (N, *spatial)",
                   _text(shape))
    dtype = dtype_of(value)
    if dtype.startswith("complex") or dtype == "string":
        raise fail(function, name, "be a real or bool tensor", f"dtype {dtype}",
                   error=TypeError)
    if dtype != "bool" and checking and not is_tracing(value):
        array = values(value).astype(np.float64)
        bad = ~np.isfinite(array) | (array < 0)
        if bad.any():
            raise fail(function, name, "be finite and >= 0", _sample(array[bad]))
    return value


def _text(shape) -> str:
    if any(s is None for s in shape):
        return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    return shape_text(shape)


def _pixels(x, class_axis=None) -> int:
    """P, the pixels per image of ``x`` (its class axis left out), when its spatial shape is
    static; -1 otherwise. An explicit P keeps the reshapes valid for an empty batch (N = 0),
    where -1 is ambiguous (torch refuses it, JAX divides by zero)."""
    shape = [s for axis, s in enumerate(static_shape(x)) if axis != class_axis][1:]
    return int(np.prod(shape, dtype=np.int64)) if None not in shape else -1


def _flat_pixels(m, n, dtype):
    """(N, *spatial) → (N, P) in ``dtype`` (bool → 0/1)."""
    return ops.reshape(ops.cast(m, dtype), (n, _pixels(m)))


def _combine(*factors):
    out = None
    for factor in factors:
        if factor is not None:
            out = factor if out is None else out * factor
    return out


def _side_maps(function, mask, pixel_weights, sample_weight, pixel_shape, class_axis,
               checking, n, dtype):
    """The pixel-weight factors as (N, P) tensors: ``counting`` (what enters the class
    frequencies: mask, and whether a sample weight is non-zero) and ``weight`` (everything)."""
    mask = _side_map(function, "mask", mask, pixel_shape, class_axis, checking)
    pixel_weights = _side_map(function, "pixel_weights", pixel_weights, pixel_shape,
                              class_axis, checking)
    sample_weight = _side_map(function, "sample_weight", sample_weight, pixel_shape,
                              class_axis, checking)
    mask = None if mask is None else _flat_pixels(mask, n, dtype)
    pixel_weights = None if pixel_weights is None else _flat_pixels(pixel_weights, n, dtype)
    nonzero = None
    if sample_weight is not None:
        sample_weight = _flat_pixels(sample_weight, n, dtype)
        nonzero = ops.cast(ops.not_equal(sample_weight, 0), dtype)
    return _combine(mask, nonzero), _combine(pixel_weights, sample_weight)


def static_class_weights(function, weights, num_classes, dtype, *, argument="class_weights",
                         allow_zero_sum=False):
    """A length-C sequence / array / tensor → a checked (C,) tensor."""
    values_ = as_float_list(function, argument, weights)
    check_weight_values(function, argument, values_, num_classes, allow_zero_sum=allow_zero_sum)
    return ops.convert_to_tensor(np.asarray(values_), dtype=dtype)


def _nan_to_zero(x):
    return None if x is None else ops.where(ops.isnan(x), ops.zeros_like(x), x)


# --------------------------------------------------------------------------------------------
# Multiclass


def prepare_multiclass(function: str, y_true, y_pred, *, class_dim: int, from_logits: bool,
                       ignore_index, mask, pixel_weights, sample_weight, class_weights,
                       beta: float, validate: bool, want_log: bool = True) -> Multiclass:
    y_pred = check_prediction(function, y_pred)
    y_true = to_tensor(function, "target", y_true)
    input_shape = static_shape(y_pred)
    class_dim = check_class_dim(function, class_dim, len(input_shape))
    ignore = check_ignore_index(function, ignore_index)
    num_classes = input_shape[class_dim]
    if num_classes is None:
        raise fail(function, "input", "have a known number of classes along class_dim",
                   _text(input_shape))
    if num_classes < 2:
        raise fail(function, "input", "have C >= 2 classes along class_dim for "
                   "mode='multiclass'", f"C={num_classes} (shape {_text(input_shape)})",
                   "Use mode='binary' for a single sigmoid channel.")
    pixel_shape = tuple(s for axis, s in enumerate(input_shape) if axis != class_dim)
    target_shape = static_shape(y_true)
    target_dtype = dtype_of(y_true)
    if len(target_shape) == len(input_shape) and target_shape[class_dim] == 1 and \
            _same_shape(target_shape[:class_dim] + target_shape[class_dim + 1:], pixel_shape):
        # (N, *spatial, 1) labels: an index map, never broadcast (Keras casts it to float)
        y_true, is_index = ops.squeeze(y_true, axis=class_dim), True
    elif _same_shape(target_shape, input_shape):
        is_index = False
    elif _same_shape(target_shape, pixel_shape):
        is_index = True
    else:
        raise _shape_error(function, "multiclass", input_shape, target_shape, class_dim)
    if target_dtype.startswith("complex") or target_dtype == "string":
        raise fail(function, "target", "be a real tensor", f"dtype {target_dtype}",
                   error=TypeError)
    if not is_index and ignore:
        raise fail(function, "ignore_index", "be None for a one-hot / soft target",
                   repr(ignore_index), "Mark the pixels to skip with mask= instead.")

    checking = _checking(validate, y_pred, y_true)
    input_dtype = dtype_of(y_pred)
    dtype = compute_dtype(input_dtype)
    n = batch_size(y_pred)
    counting, weight = _side_maps(function, mask, pixel_weights, sample_weight, pixel_shape,
                                  class_dim, checking, n, dtype)

    x = ops.moveaxis(y_pred, class_dim, -1) if class_dim != len(input_shape) - 1 else y_pred
    moved_shape = ops.shape(x)
    x = ops.reshape(x, (n, _pixels(x, len(input_shape) - 1), num_classes))
    if from_logits:
        x = ops.cast(x, dtype)
        logp = ops.log_softmax(x, axis=-1)
        p = ops.exp(logp)
    else:
        if checking:
            _check_probabilities(function, y_pred)
        total = ops.sum(x, axis=-1, keepdims=True)
        normalised = x / ops.maximum(total, ops.cast(TINY[input_dtype], input_dtype))
        p = ops.cast(_clip(normalised), dtype)
        logp = ops.log(p) if want_log else None

    valid = None
    if is_index:
        labels, valid = _index_labels(function, y_true, ignore, num_classes, checking, validate,
                                      n, dtype)
        t = ops.one_hot(labels, num_classes, dtype=dtype)
    else:
        t = ops.cast(y_true, dtype)
        if checking:
            array = values(t).astype(np.float64)
            bad = ~np.isfinite(array) | (array < 0) | (array > 1)
            if bad.any():
                raise fail(function, "target", "hold one-hot or soft probabilities in [0, 1] "
                           "without NaN/Inf", _sample(array[bad]))
            _check_sums_to_one(function, array, class_dim, target_dtype, mask)
        t = ops.moveaxis(t, class_dim, -1) if class_dim != len(input_shape) - 1 else t
        t = ops.reshape(t, (n, _pixels(t, len(input_shape) - 1), num_classes))

    counting = _combine(valid, counting)  # validity for class frequencies
    v = _combine(counting, weight)

    weights = None
    if isinstance(class_weights, str):
        check_strategy(function, class_weights, "multiclass")
        frequency_weight = _nan_to_zero(counting)
        counted = t if frequency_weight is None else t * ops.expand_dims(frequency_weight, -1)
        counts = ops.sum(ops.reshape(counted, (-1, num_classes)), axis=0)
        weights = ops.stop_gradient(strategy_weights(counts, class_weights, beta))
    elif class_weights is not None:
        weights = static_class_weights(function, class_weights, num_classes, dtype)

    def restore(loss):  # (N, P) → (N, *spatial)
        return ops.reshape(loss, tuple(moved_shape[:-1]))

    return Multiclass(logp, p, t, is_index, v, weights, n, restore)


def _check_sums_to_one(function, array: np.ndarray, class_dim: int, dtype: str, mask) -> None:
    """A float multiclass target sums to 1 over C (masked-out pixels excepted), as on the
    torch front: a multi-hot mask or the wrong class_dim would give a finite, wrong loss."""
    eps = float(np.finfo(dtype).eps) if dtype in ("float16", "float32", "float64") else \
        (2.0**-7 if dtype == "bfloat16" else 0.0)
    tolerance = sum_tolerance(array.shape[class_dim], eps)
    sums = array.sum(axis=class_dim)
    off = np.abs(sums - 1) > tolerance
    if mask is not None:
        off &= np.reshape(values(to_tensor(function, "mask", mask)), off.shape) != 0
    if off.any():
        ndim = array.ndim
        summing = [axis for axis in range(1, ndim) if axis != class_dim % ndim
                   and bool((np.abs(array.sum(axis=axis) - 1) <= tolerance).all())]
        raise sum_to_one_error(function, ndim, summing, float(sums[off].min()),
                               float(sums[off].max()), int(off.sum()), sums.size)


def _index_labels(function, y_true, ignore, num_classes, checking, validate, n, dtype):
    """Integer labels safe to one-hot (ignored / invalid → 0) and the validity weight."""
    target_dtype = dtype_of(y_true)
    integer = target_dtype in INDEX_DTYPES
    if checking:
        array = values(y_true)
        if not integer:
            broken = ~np.isfinite(array) | (array != np.round(array))
            if broken.any():
                raise fail(function, "target", "hold integer class indices (an index map)",
                           _sample(array[broken]),
                           "Pass a one-hot / soft target of the input's shape for "
                           "probabilities.")
        labels_np = array.astype(np.int64)
        ignored_np = np.isin(labels_np, ignore) if ignore else np.zeros(labels_np.shape, bool)
        bad = ((labels_np < 0) | (labels_np >= num_classes)) & ~ignored_np
        if bad.any():
            raise label_range_error(function, np.unique(labels_np[bad]).tolist(), ignore,
                                    num_classes)
    flat = ops.reshape(y_true, (n, _pixels(y_true)))
    broken = None
    if not integer:  # NaN / fractions can only come through unchecked: they become invalid
        broken = ops.logical_or(ops.logical_not(ops.isfinite(flat)),
                                ops.not_equal(flat, ops.round(flat)))
        flat = ops.where(broken, ops.zeros_like(flat), flat)
    labels = raw = ops.cast(flat, "int32")
    ignored = None
    for label in ignore:
        hit = ops.equal(labels, label)
        ignored = hit if ignored is None else ops.logical_or(ignored, hit)
    outside = ops.logical_or(ops.less(labels, 0), ops.greater_equal(labels, num_classes))
    if broken is not None:
        outside = ops.logical_or(outside, broken)
    invalid = outside if ignored is None else ops.logical_and(outside, ops.logical_not(ignored))
    unusable = invalid if ignored is None else ops.logical_or(invalid, ignored)
    labels = ops.where(unusable, ops.zeros_like(labels), labels)
    valid = None if ignored is None else ops.cast(ops.logical_not(ignored), dtype)
    if not checking:
        if validate:  # a traced step: the check runs inside the graph
            stop_on_bad_labels(function, invalid, raw, ignore, num_classes)
        # an out-of-range label is never used as an index: its pixel becomes NaN instead
        one = ops.ones_like(labels, dtype=dtype) if valid is None else valid
        valid = ops.where(invalid, ops.full_like(one, float("nan")), one)
    return labels, valid


# --------------------------------------------------------------------------------------------
# Binary / multilabel


def prepare_sigmoid(function: str, y_true, y_pred, *, mode: str, class_dim: int,
                    from_logits: bool, ignore_index, mask, pixel_weights, sample_weight,
                    class_weights, pos_weight, label_smoothing: float, validate: bool) -> Sigmoid:
    y_pred = check_prediction(function, y_pred)
    y_true = to_tensor(function, "target", y_true)
    ignore = check_ignore_index(function, ignore_index)
    output_shape = static_shape(y_pred)
    ndim = len(output_shape)
    if ndim >= 2:
        class_dim = check_class_dim(function, class_dim, ndim)
    target_shape = static_shape(y_true)
    added = False
    if mode == "binary":
        if ndim < 2 or output_shape[class_dim] != 1:  # (N, *spatial): add a channel axis
            if _same_shape(target_shape, output_shape):
                y_true = ops.expand_dims(y_true, -1)
            y_pred, class_dim, added = ops.expand_dims(y_pred, -1), ndim, True
        elif len(target_shape) == ndim - 1 and _same_shape(
                target_shape, output_shape[:class_dim] + output_shape[class_dim + 1:]):
            y_true = ops.expand_dims(y_true, class_dim)  # (N, *spatial) mask, one channel
    elif ndim < 2:
        check_class_dim(function, class_dim, ndim)
    input_shape = static_shape(y_pred)
    if not _same_shape(static_shape(y_true), input_shape):
        shown = input_shape if mode == "multilabel" or not added else output_shape
        raise _shape_error(function, mode, shown, target_shape, class_dim if not added else 1)
    target_dtype = dtype_of(y_true)
    if target_dtype.startswith("complex") or target_dtype == "string":
        raise fail(function, "target", "be a real tensor", f"dtype {target_dtype}",
                   error=TypeError)
    # Keras casts y_true to float: with ignore labels set, the target holds labels
    integer = target_dtype in INDEX_DTYPES or bool(ignore)
    num_channels = input_shape[class_dim]
    if num_channels is None:
        raise fail(function, "input", "have a known number of channels along class_dim",
                   _text(input_shape))
    pixel_shape = tuple(s for axis, s in enumerate(input_shape) if axis != class_dim)
    checking = _checking(validate, y_pred, y_true)
    input_dtype = dtype_of(y_pred)
    dtype = compute_dtype(input_dtype)
    n = batch_size(y_pred)
    # the maps are (N, *spatial) of the input without its channel axis
    map_class_axis = class_dim if not added else len(pixel_shape)
    counting, weight = _side_maps(function, mask, pixel_weights, sample_weight, pixel_shape,
                                  map_class_axis, checking, n, dtype)

    last = len(input_shape) - 1

    def arrange(z):  # the input's layout → (N, P, C)
        z = ops.moveaxis(z, class_dim, -1) if class_dim != last else z
        return ops.reshape(z, (n, _pixels(z, last), num_channels))

    moved_shape = ops.shape(ops.moveaxis(y_pred, class_dim, -1) if class_dim != last else y_pred)

    valid = None
    if integer:
        if checking:
            array = values(y_true)
            ignored_np = np.isin(array, ignore) if ignore else np.zeros(array.shape, bool)
            bad = (array != 0) & (array != 1) & ~ignored_np
            if bad.any():
                raise fail(function, "target", f"hold 0 or 1 (or an ignore_index) for "
                           f"mode={mode!r}", _sample(array[bad]))
        t = arrange(y_true)
        ignored = None
        for label in ignore:
            hit = ops.equal(t, ops.cast(label, dtype_of(t)))
            ignored = hit if ignored is None else ops.logical_or(ignored, hit)
        t = ops.cast(t, dtype)
        if ignored is not None:
            valid = ops.cast(ops.logical_not(ignored), dtype)
            t = ops.where(ignored, ops.zeros_like(t), t)
    else:
        if checking:
            array = values(y_true).astype(np.float64)
            bad = ~np.isfinite(array) | (array < 0) | (array > 1)
            if bad.any():
                raise fail(function, "target", f"hold values in [0, 1] for mode={mode!r}",
                           _sample(array[bad]))
        t = ops.cast(arrange(y_true), dtype)

    x = arrange(y_pred)
    if from_logits:
        x = ops.cast(x, dtype)
        p = ops.sigmoid(x)
        logp, log1mp = -ops.softplus(-x), -ops.softplus(x)
    else:
        if checking:
            _check_probabilities(function, y_pred)
        p = ops.cast(_clip(x), dtype)
        logp, log1mp = ops.log(p), ops.log1p(-p)

    side = [None if m is None else ops.expand_dims(m, -1) for m in (counting, weight)]
    counting = _combine(valid, side[0])
    v = _combine(counting, side[1])
    region_weights = positive = negative = None
    if isinstance(class_weights, str):
        check_strategy(function, class_weights, mode)
        validity = ops.ones_like(t) if counting is None else \
            _nan_to_zero(counting) * ops.ones_like(t)
        positives = ops.sum(ops.reshape(t * validity, (-1, num_channels)), axis=0)
        negatives = ops.sum(ops.reshape((1 - t) * validity, (-1, num_channels)), axis=0)
        negative, positive = (ops.stop_gradient(w) for w in balanced_weights(negatives,
                                                                              positives))
    elif class_weights is not None:
        region_weights = static_class_weights(function, class_weights, num_channels, dtype)
        positive = negative = region_weights
    if pos_weight is not None:
        pw = static_class_weights(function, pos_weight, num_channels, dtype,
                                  argument="pos_weight", allow_zero_sum=True)
        positive = pw if positive is None else positive * pw
    smoothed = t if label_smoothing == 0 else t * (1 - label_smoothing) + label_smoothing / 2

    def restore(loss):  # (N, P, C) → the input's layout and shape
        loss = ops.reshape(loss, tuple(moved_shape))
        loss = ops.moveaxis(loss, -1, class_dim) if class_dim != last else loss
        return ops.squeeze(loss, axis=-1) if added else loss

    return Sigmoid(p, logp, log1mp, t, smoothed, integer, v, region_weights, positive, negative,
                   n, restore)
