"""The target adapter: checks every argument once and brings input and target to one form.

Multiclass tensors become a 3-D *view* ``(N, C, S)`` (class axis 1) or ``(N, S, C)`` (class axis
2), whichever the input's strides allow without a copy, so ``channels_last`` and ``class_dim=-1``
cost nothing. Sigmoid modes stay in their own layout (everything there is elementwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._spec import (
    PROBABILITY_EPS,
    check_class_dim,
    check_flags,
    check_ignore_index,
    fail,
    label_range_error,
    label_range_unreadable,
    shape_text,
    sum_to_one_error,
    sum_tolerance,
    target_shape_error,
)
from ._distributed import global_sum
from .weights import batch_class_weights, static_class_weights

_INDEX_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)
_WIDE_UNSIGNED = tuple(getattr(torch, name) for name in ("uint16", "uint32", "uint64")
                       if hasattr(torch, name))


@dataclass
class LabelSums:
    """Per-(image, class) sums of an index map, from one read of it (the kernels' path)."""

    weighted: torch.Tensor  # (N, C): Σ v over the pixels labelled c (ignored/invalid left out)
    counted: torch.Tensor  # (N, C): the same without pixel weights (class frequencies)
    invalid: torch.Tensor  # (N,) int64: labels outside [0, C) that are not ignored
    # a loss without class weights needs no class: weighted = counted is (N, 1), and the
    # totals scan hands over the normaliser itself (None when there are class weights)
    total: torch.Tensor | None = None

    def normaliser(self, class_weights: torch.Tensor | None) -> torch.Tensor:
        """The "mean" denominator ``Σ_i v_i w_{y_i}``; NaN where a label was invalid (its
        pixel is NaN too, as ``v`` is on the torch path)."""
        if self.total is not None:  # no class weights
            return self.total
        total = (self.weighted * class_weights).sum()
        return torch.where(self.invalid.sum() > 0, torch.full_like(total, float("nan")), total)

    def has_pixels(self) -> torch.Tensor:
        """(N, 1): images with a pixel that counts (or an invalid one)."""
        return (self.weighted.sum(1, keepdim=True) != 0) | (self.invalid > 0).unsqueeze(1)


@dataclass
class Multiclass:
    """A multiclass problem in the engine's form."""

    x: torch.Tensor  # (N, C, S) or (N, S, C) view, compute dtype
    axis: int  # class axis of ``x``: 1 or 2
    labels: torch.Tensor | None  # (N, S) int64, ignored/invalid pixels set to 0
    dense: torch.Tensor | None  # same arrangement as x: one-hot / soft target (compute dtype;
    #                             the kernels' path: its own dtype, bool viewed as uint8)
    v: torch.Tensor | None  # (N, S) pixel weight, 0 where ignored; None means all 1
    class_weights: torch.Tensor | None  # (C,)
    pixel_shape: tuple[int, ...]  # shape of a per-pixel output, (N, *spatial)
    probabilities: torch.Tensor | None  # for from_logits=False: clipped renormalised p, same view
    # the kernels' path (native=True) with ignore labels, a mask, pixel or class weights: the
    # labels are the caller's own (ignored ones included: the kernels drop ``ignore``), ``v``
    # is the mask / pixel weights in their own dtype, and ``sums`` replaces torch passes over v
    ignore: tuple[int, ...] = ()
    sums: LabelSums | None = None


@dataclass
class ElementSums:
    """Per-(image, channel) sums of a binary / multilabel target over the elements that are
    not ignored, from one read of it (the kernels' path)."""

    # the scan sums only what the call needs (None otherwise)
    weighted: torch.Tensor  # (N, C): Σ v
    counted: torch.Tensor | None  # (N, C): Σ m (m the mask, 1 without one); "balanced" only
    positive: torch.Tensor | None  # (N, C): Σ m y; "balanced" only
    invalid: torch.Tensor | None  # (N, C): targets outside [0, 1] (NaN included); checks only

    def normaliser(self) -> torch.Tensor:
        """The "mean" denominator ``Σ v`` over the elements that count."""
        return self.weighted.sum()

    def has_pixels(self) -> torch.Tensor:
        """(N, C): pairs with an element that counts."""
        return self.weighted != 0


@dataclass
class Sigmoid:
    """A binary / multilabel problem: elementwise, in the input's own layout."""

    x: torch.Tensor  # input with a class axis, compute dtype (logits, or clipped probabilities)
    class_dim: int
    target: torch.Tensor  # same shape as x; torch path: float, ignored elements set to 0
    smoothed: torch.Tensor  # the target after label smoothing (pixel losses only)
    v: torch.Tensor | None  # broadcastable to x
    class_weights: torch.Tensor | None  # (C,) static weights for the region class mean
    positive_weights: torch.Tensor | None  # coefficient of y·log p, broadcast along class_dim
    negative_weights: torch.Tensor | None  # coefficient of (1-y)·log(1-p)
    output_shape: tuple[int, ...]
    # the kernels' path (native=True) keeps the target in its own dtype; with ignore labels
    # (or "balanced" weights and a mask) it is the caller's own, ignored elements included
    # (the kernels drop ``ignore``), and ``sums`` replaces torch passes over the target
    ignore: tuple[int, ...] = ()
    sums: ElementSums | None = None


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp16/bf16 are accumulated in float32, float32/float64 in their own precision
    (docs/semantics.md, precision)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _checking_values(validate: bool) -> bool:
    # Value checks need a host sync and branch on data: skipped while torch.compile traces.
    return validate and not torch.compiler.is_compiling()


def check_input(function: str, input, target) -> None:
    if not isinstance(input, torch.Tensor):
        raise fail(function, "input", "be a torch.Tensor", type(input).__name__, error=TypeError)
    if not isinstance(target, torch.Tensor):
        raise fail(function, "target", "be a torch.Tensor", type(target).__name__,
                   error=TypeError)
    if not input.is_floating_point():
        raise fail(function, "input", "be a floating-point tensor of logits or probabilities",
                   f"dtype {input.dtype}", "Cast it with input.float().", error=TypeError)
    if target.device != input.device:
        raise fail(function, "target", f"be on the input's device ({input.device})",
                   f"device {target.device}")


def _side_map(function: str, name: str, value, pixel_shape, device, validate: bool):
    """``mask`` / ``pixel_weights``: a (N, *spatial) tensor → float tensor, or None."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise fail(function, name, "be a torch.Tensor", type(value).__name__, error=TypeError)
    if tuple(value.shape) != tuple(pixel_shape):
        raise fail(function, name, f"have shape {shape_text(pixel_shape)} (N, *spatial)",
                   shape_text(value.shape))
    if value.device != device:
        raise fail(function, name, f"be on the input's device ({device})", f"device {value.device}")
    if value.is_complex():
        raise fail(function, name, "be a real or bool tensor", f"dtype {value.dtype}",
                   error=TypeError)
    if value.dtype != torch.bool and _checking_values(validate):
        low, high = _extremes(value)
        if not (low >= 0 and high < math.inf):  # NaN fails both
            bad = ~torch.isfinite(value) | (value < 0)
            raise fail(function, name, "be finite and >= 0", _sample(value[bad]))
    return value


def _extremes(t: torch.Tensor) -> tuple[float, float]:
    """``(min, max)`` of a real tensor from one pass and one host sync, without an
    element-sized map (NaN if it holds one; ``(0, 0)`` when empty). The value checks build
    their maps of offending elements only to name them in the error."""
    if not t.numel():
        return 0.0, 0.0
    low, high = torch.aminmax(t)
    low, high = torch.stack((low, high)).tolist()
    return low, high


def _outside_unit(t: torch.Tensor) -> bool:
    """Whether a float tensor holds a value outside [0, 1], NaN included."""
    low, high = _extremes(t)
    return not (low >= 0 and high <= 1)


def _widen_unsigned(target: torch.Tensor) -> torch.Tensor:
    """uint16 / uint32 / uint64 labels as int64: torch's own ops on them are few (a 16-bit PNG
    mask loads as uint16). A uint64 label beyond int64 turns negative: out of range."""
    if target.dtype in _WIDE_UNSIGNED:
        return target.to(torch.int64)
    return target


def _check_sums_to_one(function: str, target, class_dim: int, mask) -> None:
    """A float multiclass target sums to 1 over C (masked-out pixels excepted): a multi-hot
    mask or the wrong class_dim would otherwise give a finite, wrong loss."""
    num_classes = target.shape[class_dim]
    eps = torch.finfo(target.dtype).eps if target.is_floating_point() else 0.0
    tolerance = sum_tolerance(num_classes, eps)
    # the sums in the target's own width (0/1 integers: one byte while C < 256), so that the
    # check builds no float map of the pixels on the kernels' path
    small = not target.is_floating_point() and num_classes < 256
    sums = target.sum(class_dim, dtype=torch.uint8 if small else None)
    off = (sums.float() - 1).abs() > tolerance if sums.is_floating_point() else sums != 1
    if mask is not None:
        off &= mask != 0
    if bool(off.any()):
        values = target.double()  # the error path: the other axes' sums, for the hint
        summing = [axis for axis in range(1, target.ndim) if axis != class_dim
                   and bool(((values.sum(axis) - 1).abs() <= tolerance).all())]
        raise sum_to_one_error(function, target.ndim, summing, float(sums[off].min()),
                               float(sums[off].max()), int(off.sum()), sums.numel())


def _sample(values: torch.Tensor, limit: int = 5) -> str:
    flat = values.detach().flatten()
    unique = torch.unique(flat[: 100_000]).tolist() if flat.numel() else []
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in unique[:limit])
    more = ", ..." if len(unique) > limit else ""
    return f"values [{shown}{more}] ({flat.numel()} element(s))"


def _combine(*factors):
    out = None
    for factor in factors:
        if factor is None:
            continue
        factor = factor.float() if factor.dtype == torch.bool else factor
        out = factor if out is None else out * factor
    return out


def _check_probabilities(function: str, input: torch.Tensor) -> None:
    if _outside_unit(input):
        bad = torch.isnan(input) | (input < 0) | (input > 1)
        raise fail(function, "input", "hold probabilities in [0, 1] with from_logits=False",
                   _sample(input[bad]), "Pass raw scores with from_logits=True (the default).")


_CLIP_HIGH = {  # computed once: no tensor work while torch.compile traces
    dtype: min(torch.tensor(1.0 - PROBABILITY_EPS, dtype=dtype).item(),
               1.0 - torch.finfo(dtype).eps / 2)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


def _clip(probabilities: torch.Tensor) -> torch.Tensor:
    """Clip to [eps, 1 - eps] in the input's own dtype (Keras 3).

    In float32 ``1 - 1e-7`` rounds to ``1 - 2**-23`` (Keras's published values depend on it);
    in float16/bfloat16 it rounds to 1, so the bound becomes the largest number below 1 there.
    """
    return probabilities.clamp(PROBABILITY_EPS, _CLIP_HIGH[probabilities.dtype])


def as_3d(x: torch.Tensor, class_dim: int) -> tuple[torch.Tensor, int]:
    """View ``x`` as (N, C, S) or (N, S, C) without copying when the strides allow it."""
    n, c = x.shape[0], x.shape[class_dim]
    s = math.prod([size for axis, size in enumerate(x.shape) if axis not in (0, class_dim)])
    moved = x.movedim(class_dim, 1)
    try:
        return moved.view(n, c, s), 1
    except RuntimeError:
        pass
    try:
        return x.movedim(class_dim, -1).view(n, s, c), 2
    except RuntimeError:
        return moved.reshape(n, c, s), 1  # arbitrary strides: one copy


def arrange_like(t: torch.Tensor, class_dim: int, axis: int) -> torch.Tensor:
    n, c = t.shape[0], t.shape[class_dim]
    s = math.prod([size for a, size in enumerate(t.shape) if a not in (0, class_dim)])
    if axis == 1:
        return t.movedim(class_dim, 1).reshape(n, c, s)
    return t.movedim(class_dim, -1).reshape(n, s, c)


def prepare_multiclass(function: str, input, target, *, class_dim: int, from_logits: bool,
                       ignore_index, mask, pixel_weights, class_weights, beta: float,
                       validate: bool, global_counts: bool = False,
                       native: bool = False) -> Multiclass:
    """The multiclass problem; ``native=True`` (the Triton kernels) keeps the logits and an
    index map in their own dtypes (the kernels convert in registers)."""
    check_flags(function, from_logits=from_logits, validate=validate)
    check_input(function, input, target)
    class_dim = check_class_dim(function, class_dim, input.ndim)
    ignore = check_ignore_index(function, ignore_index)
    num_classes = input.shape[class_dim]
    if num_classes < 2:
        raise fail(function, "input", "have C >= 2 classes along class_dim for "
                   "mode='multiclass'", f"C={num_classes} (shape {shape_text(input.shape)})",
                   "Use mode='binary' for a single sigmoid channel.")
    pixel_shape = tuple(s for axis, s in enumerate(input.shape) if axis != class_dim)
    squeezable = target.ndim == input.ndim and target.shape[class_dim] == 1 and \
        tuple(target.squeeze(class_dim).shape) == pixel_shape
    target = _widen_unsigned(target)
    if squeezable:  # (N, 1, *spatial) labels: an index map, never broadcast (float: an error)
        target, is_index = target.squeeze(class_dim), True
    elif tuple(target.shape) == tuple(input.shape):
        is_index = False
    elif tuple(target.shape) == pixel_shape:
        is_index = True
    else:
        raise target_shape_error(function, "multiclass", input.shape, target.shape, class_dim)
    if is_index and target.dtype not in _INDEX_DTYPES:
        raise fail(function, "target", f"be an integer index map for shape "
                   f"{shape_text(pixel_shape)}", f"dtype {target.dtype}",
                   f"Pass labels as integers (target.long()), or a one-hot / soft target of "
                   f"the input's shape {shape_text(input.shape)}.", error=TypeError)
    if not is_index and ignore:
        raise fail(function, "ignore_index", "be None for a one-hot / soft target",
                   repr(ignore_index), "Mark the pixels to skip with mask= instead.")
    if target.is_complex():
        raise fail(function, "target", "be a real tensor", f"dtype {target.dtype}",
                   error=TypeError)
    mask = _side_map(function, "mask", mask, pixel_shape, input.device, validate)
    pixel_weights = _side_map(function, "pixel_weights", pixel_weights, pixel_shape,
                              input.device, validate)
    dtype = compute_dtype(input.dtype)
    checking = _checking_values(validate)

    if not from_logits and checking:
        _check_probabilities(function, input)
    x, axis = as_3d(input, class_dim)
    probabilities = None
    if not from_logits:
        normalised = x / x.sum(axis, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        probabilities = _clip(normalised).to(dtype)
    x = x if native else x.to(dtype)
    n = input.shape[0]

    labels = dense = None
    valid = None
    if is_index:
        flat = target.reshape(n, math.prod(pixel_shape[1:]))
        if native and (ignore or mask is not None or pixel_weights is not None or
                       class_weights is not None):
            return _native_index(function, x, axis, flat, ignore, mask, pixel_weights,
                                 class_weights, beta, checking, global_counts, pixel_shape)
        labels, valid = _index_labels(function, flat, ignore, num_classes, checking, validate,
                                      dtype, native)
    else:
        if native:  # the kernels read a one-hot / soft target in its own dtype
            target = _as_bytes(target)
        elif target.dtype == torch.bool or not target.is_floating_point():
            target = target.to(dtype)
        if checking and _outside_unit(target):
            bad = ~torch.isfinite(target) | (target < 0) | (target > 1)
            raise fail(function, "target", "hold one-hot or soft probabilities in [0, 1] "
                       "without NaN/Inf", _sample(target[bad]))
        if checking:
            _check_sums_to_one(function, target, class_dim, mask)
        dense = arrange_like(target if native else target.to(dtype), class_dim, axis)

    flat_side = [None if m is None else m.reshape(n, math.prod(pixel_shape[1:]))
                 for m in (mask, pixel_weights)]
    given = [m for m in flat_side if m is not None]
    if native and len(given) == 1 and not isinstance(class_weights, str):
        # the kernels read a lone mask or pixel-weight map in its own dtype (no float copy)
        counting, v = flat_side[0], _kernel_weight(*flat_side)
    else:
        flat_side = [None if m is None else m.to(dtype) for m in flat_side]
        counting = _combine(valid, flat_side[0])  # validity for class frequencies
        v = _combine(counting, flat_side[1])

    weights = _multiclass_weights(
        function, class_weights, lambda: _class_counts(labels, dense, counting, axis,
                                                       num_classes, dtype),
        num_classes, x.device, dtype, beta, checking, global_counts)
    return Multiclass(x, axis, labels, dense, v, weights, pixel_shape, probabilities)


def _multiclass_weights(function, class_weights, counts, num_classes, device, dtype, beta,
                        checking, global_counts):
    """The (C,) class weights, or None: a strategy's from the batch's class frequencies
    (``counts()``, summed over the ranks for aggregate="global"), or static ones, checked."""
    if isinstance(class_weights, str):
        total = counts()
        if global_counts:
            total = global_sum(total, differentiable=False)
        return batch_class_weights(function, class_weights, total, "multiclass", beta)
    if class_weights is not None:
        return static_class_weights(function, class_weights, num_classes, device, dtype,
                                    check=checking)
    return None


def _native_index(function, x, axis, flat, ignore, mask, pixel_weights, class_weights, beta,
                  checking, global_counts, pixel_shape) -> Multiclass:
    """The kernels' multiclass problem for an index map with ignore labels, a mask, pixel or
    class weights: one scan of the labels (``triton/labels.py``) gives the class counts, the
    normaliser and the validity check; no label-sized map is built (a mask is read in its own
    dtype, and only a mask together with pixel weights is multiplied out)."""
    from ..triton.labels import label_sums, label_totals

    num_classes = x.shape[axis]
    dtype = compute_dtype(x.dtype)
    flat = _as_bytes(flat)
    m, pw = (None if t is None else _as_bytes(t.reshape(flat.shape))
             for t in (mask, pixel_weights))
    v = _kernel_weight(m, pw)
    if class_weights is None:  # Σ v per image is all that is needed
        weighted, invalid, total = label_totals(flat, v, ignore, num_classes, dtype)
        sums = LabelSums(weighted, weighted, invalid, total)
    else:  # the class frequencies count the mask without pixel weights: a second sum then
        frequencies = isinstance(class_weights, str) and pw is not None
        weighted, counted, invalid = label_sums(flat, v, m if frequencies else None, ignore,
                                                num_classes, dtype)
        if frequencies and m is None:  # pixels counted, not weighted: the labels' histogram
            counted = label_sums(flat, None, None, ignore, num_classes, dtype)[0]
        sums = LabelSums(weighted, counted, invalid)
    if checking and bool(sums.invalid.any()):  # the torch path's check finds them and raises
        _index_labels(function, flat, ignore, num_classes, True, True, dtype)
    weights = _multiclass_weights(function, class_weights, lambda: sums.counted.sum(0),
                                  num_classes, x.device, dtype, beta, checking, global_counts)
    return Multiclass(x, axis, flat, None, v, weights, pixel_shape, None, ignore, sums)


def _index_labels(function, flat, ignore, num_classes, checking, validate, dtype, native=False):
    """Labels safe to index with (ignored / invalid → 0) and the validity weight (or None).

    int64 for the torch path; ``native`` keeps the labels' own integer dtype (the kernels
    compare labels with class numbers and never index with them).
    """
    flat = _as_bytes(flat)
    if not ignore and (checking or native):
        # the common case costs one min/max pass and no copy of int64 labels; the kernels
        # (native) turn an unchecked out-of-range label into NaN themselves
        if checking:
            low, high = _extremes(flat)
            if low < 0 or high >= num_classes:
                _raise_labels(function, flat, (flat < 0) | (flat >= num_classes), ignore,
                              num_classes)
        return (flat if native else flat.long()), None
    if len(ignore) == 1:
        ignored = flat == ignore[0]
    elif ignore:
        ignored = torch.isin(flat, torch.tensor(ignore, device=flat.device))
    else:
        ignored = None
    outside = (flat >= num_classes) if flat.dtype == torch.uint8 else \
        (flat < 0) | (flat >= num_classes)
    invalid = outside if ignored is None else outside & ~ignored
    if checking and bool(invalid.any()):
        _raise_labels(function, flat, invalid, ignore, num_classes)
    unusable = invalid if ignored is None else invalid | ignored
    labels = torch.where(unusable, torch.zeros((), dtype=flat.dtype, device=flat.device), flat)
    labels = labels if native else labels.long()
    valid = None if ignored is None else (~ignored).to(dtype)
    if not checking:
        if validate and flat.device.type == "cpu":
            # torch.compile traces: the check runs in the graph (on a GPU a device-side assert
            # would poison the CUDA context; the loss is NaN there)
            torch._assert_async(~invalid.any(),
                                label_range_unreadable(function, ignore, num_classes))
        # an out-of-range label is never used as an index: its pixel becomes NaN instead
        nan = torch.full((), float("nan"), dtype=dtype, device=flat.device)
        one = torch.ones((), dtype=dtype, device=flat.device)
        valid = torch.where(invalid, nan, one if valid is None else valid)
    return labels, valid


def _kernel_weight(mask, pixel_weights):
    """The pixel weight v the kernels read: a lone mask or pixel-weight map in its own dtype
    (bool viewed as uint8, no float copy), the two multiplied out when both are given, or
    None."""
    if mask is not None and pixel_weights is not None:
        return _combine(mask, pixel_weights)
    lone = mask if pixel_weights is None else pixel_weights
    return None if lone is None else _as_bytes(lone)


def _as_bytes(t: torch.Tensor) -> torch.Tensor:
    """A bool tensor viewed as uint8 (what the kernels load); any other tensor as it is."""
    return t.view(torch.uint8) if t.dtype == torch.bool else t


def _outside_01(target: torch.Tensor, ignored: torch.Tensor | None) -> bool:
    """Whether an integer binary target holds a value other than 0, 1 or an ignore label
    (one min/max pass, no element-sized map, when there is no ignore label)."""
    if ignored is not None:
        return bool(((target != 0) & (target != 1) & ~ignored).any())
    if target.dtype == torch.bool:
        return False
    low, high = _extremes(target)
    return low < 0 or high > 1


def _raise_labels(function, flat, bad, ignore, num_classes):
    raise label_range_error(function, torch.unique(flat[bad]).tolist(), ignore, num_classes)


def _class_counts(labels, dense, valid, axis, num_classes, dtype):
    """Per-class pixel counts of the whole batch (valid pixels; no pixel weights)."""
    if labels is not None:
        ones = torch.ones_like(labels, dtype=dtype) if valid is None else \
            torch.nan_to_num(valid, nan=0.0)
        counts = torch.zeros(num_classes, dtype=dtype, device=labels.device)
        return counts.index_add(0, labels.flatten().long(), ones.flatten())  # vmap-able
    spatial_axis = 3 - axis
    if valid is None:
        return dense.sum(dim=(0, spatial_axis), dtype=dtype)
    return (dense * valid.unsqueeze(axis)).sum(dim=(0, spatial_axis), dtype=dtype)


def prepare_sigmoid(function: str, input, target, *, mode: str, class_dim: int,
                    from_logits: bool, ignore_index, mask, pixel_weights, class_weights,
                    pos_weight, label_smoothing: float, validate: bool,
                    global_counts: bool = False, native: bool = False) -> Sigmoid:
    """Binary / multilabel inputs; an input without channel axis gets one at dim 1.

    ``native=True`` (the Triton kernels) keeps the logits and an integer target in their own
    dtypes and leaves label smoothing to the kernel (``smoothed`` is then None).
    """
    check_flags(function, from_logits=from_logits, validate=validate)
    check_input(function, input, target)
    ignore = check_ignore_index(function, ignore_index)
    output_shape = tuple(input.shape)
    if input.ndim >= 2:
        class_dim = check_class_dim(function, class_dim, input.ndim)
    if mode == "binary":
        if input.ndim < 2 or input.shape[class_dim] != 1:
            input, class_dim = input.unsqueeze(1), 1  # (N, *spatial) → (N, 1, *spatial)
            if tuple(target.shape) == output_shape:
                target = target.unsqueeze(1)
    elif input.ndim < 2:
        check_class_dim(function, class_dim, input.ndim)
    if tuple(target.shape) != tuple(input.shape):
        shown = input.shape if mode == "multilabel" or len(output_shape) == input.ndim \
            else output_shape
        raise target_shape_error(function, mode, shown, target.shape, class_dim)
    if target.is_complex():
        raise fail(function, "target", "be a real tensor", f"dtype {target.dtype}",
                   error=TypeError)
    is_integer = not target.is_floating_point()
    if ignore and not is_integer:
        raise fail(function, "ignore_index", "be None for a float target", repr(ignore_index),
                   "Mark the pixels to skip with mask= instead.")
    pixel_shape = tuple(s for axis, s in enumerate(input.shape) if axis != class_dim)
    mask = _side_map(function, "mask", mask, pixel_shape, input.device, validate)
    pixel_weights = _side_map(function, "pixel_weights", pixel_weights, pixel_shape,
                              input.device, validate)
    dtype = compute_dtype(input.dtype)
    checking = _checking_values(validate)
    num_channels = input.shape[class_dim]

    balanced = isinstance(class_weights, str)
    # the kernels' target scan: ignore labels stay in the target (the kernels drop them), and
    # the value check, normaliser and "balanced" counts come from one read of it
    scan = native and (bool(ignore) or (balanced and mask is not None))
    valid = None
    if scan:
        target = _as_bytes(target)
    elif is_integer:
        ignored = torch.isin(_as_bytes(target), torch.tensor(ignore, device=target.device)) \
            if ignore else None
        if checking and _outside_01(target, ignored):
            raise _binary_target_error(function, mode, target, ignore)
        if ignored is not None:
            valid = (~ignored).to(dtype)
            target = torch.where(ignored, torch.zeros((), dtype=target.dtype,
                                                      device=target.device), target)
        if not native:
            target = target.to(dtype)
        elif target.dtype == torch.bool:
            target = target.view(torch.uint8)
    else:
        if checking and _outside_unit(target):
            raise _binary_target_error(function, mode, target, ignore)
        target = target if native else target.to(dtype)

    if not from_logits:
        if checking:
            _check_probabilities(function, input)
        x = _clip(input).to(dtype)
    else:
        x = input if native else input.to(dtype)

    side = [None if m is None else m.unsqueeze(class_dim) for m in (mask, pixel_weights)]
    given = [m for m in side if m is not None]
    sums = None
    if scan:
        v = _kernel_weight(*side)
        counting = None if side[0] is None else _as_bytes(side[0])
        sums = _element_sums(target, v, counting if balanced else None, ignore, class_dim,
                             dtype, counts=balanced, check=checking)
        if checking and bool(sums.invalid.any()):
            raise _binary_target_error(function, mode, target, ignore)
    elif native and valid is None and len(given) == 1 and not balanced:
        # the kernels read a lone mask or pixel-weight map in its own dtype (no float copy)
        counting, v = side[0], _kernel_weight(*side)
    else:
        side = [None if m is None else m.to(dtype) for m in side]
        counting = _combine(valid, side[0])
        v = _combine(counting, side[1])
    broadcast = [1] * x.ndim
    broadcast[class_dim] = num_channels
    region_weights = positive = negative = None
    if balanced:
        dims = tuple(a for a in range(x.ndim) if a != class_dim)
        # Σ y and Σ (1 - y) over the counted elements of each channel, the second as the
        # count minus the first (a target in its own dtype is summed without a float copy)
        if sums is not None:
            positives, totals = sums.positive.sum(0), sums.counted.sum(0)
        elif counting is None:
            positives = target.sum(dims, dtype=dtype)
            totals = torch.full_like(positives, target.numel() // num_channels)
        else:
            validity = torch.nan_to_num(counting.to(dtype), nan=0.0).expand(target.shape)
            positives = (target * validity).sum(dims)
            totals = validity.sum(dims)
        negatives = totals - positives
        if global_counts:
            positives = global_sum(positives, differentiable=False)
            negatives = global_sum(negatives, differentiable=False)
        negative, positive = batch_class_weights(function, class_weights, (negatives, positives),
                                                 mode, 0.0)
        negative, positive = negative.reshape(broadcast), positive.reshape(broadcast)
    elif class_weights is not None:
        region_weights = static_class_weights(function, class_weights, num_channels, x.device,
                                              dtype, check=checking)
        positive = negative = region_weights.reshape(broadcast)
    if pos_weight is not None:
        pw = static_class_weights(function, pos_weight, num_channels, x.device, dtype,
                                  check=checking, argument="pos_weight",
                                  allow_zero_sum=True).reshape(broadcast)
        positive = pw if positive is None else positive * pw
    if native:
        smoothed = None
    else:
        smoothed = target if label_smoothing == 0 else \
            target * (1 - label_smoothing) + label_smoothing / 2
    return Sigmoid(x, class_dim, target, smoothed, v, region_weights, positive, negative,
                   output_shape, ignore if scan else (), sums)


def _element_sums(target, v, m, ignore, class_dim, dtype, *, counts: bool,
                  check: bool) -> ElementSums:
    """The kernels' scan of a binary / multilabel target (``triton/labels.py``), arranged as
    it lies in memory (channel-contiguous targets as (N, S, C)); ``v`` and ``m`` broadcast."""
    from ..triton.labels import element_sums

    axis = 2 if target.shape[class_dim] > 1 and target.stride(class_dim) == 1 else 1
    arranged = [None if t is None else arrange_like(t.expand(target.shape), class_dim, axis)
                for t in (target, v, m)]
    return ElementSums(*element_sums(*arranged, ignore, axis, dtype, counts=counts,
                                     check=check))


def _binary_target_error(function, mode, target, ignore) -> Exception:
    """The error for a binary / multilabel target holding a value other than 0/1 (an integer
    target; ignore labels aside) or outside [0, 1] (a float one), naming the values."""
    if target.is_floating_point():
        bad = ~torch.isfinite(target) | (target < 0) | (target > 1)
        return fail(function, "target", f"hold values in [0, 1] for mode={mode!r}",
                    _sample(target[bad]))
    bad = (target != 0) & (target != 1)
    if ignore:
        bad &= ~torch.isin(_as_bytes(target), torch.tensor(ignore, device=target.device))
    return fail(function, "target", f"hold 0 or 1 (or an ignore_index) for mode={mode!r}",
                _sample(target[bad]))
