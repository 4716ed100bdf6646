"""Option checks, error texts and defaults shared by every front end (torch, Keras).

Nothing here imports a framework: checks take Python values, shapes (tuples of ints) and
dtype *kinds* ("float", "int", "bool", "complex"), so the torch and Keras fronts raise the
same text for the same mistake (docs/semantics.md, errors).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MODES = ("multiclass", "binary", "multilabel")
REDUCTIONS = ("mean", "sum", "none")
AGGREGATES = ("image", "batch", "global")
PIXEL_AGGREGATES = ("batch", "global")
ABSENT = ("include", "exclude")
IMPLS = ("auto", "torch", "triton")
MULTICLASS_STRATEGIES = (
    "inverse_frequency",
    "inverse_sqrt_frequency",
    "median_frequency",
    "effective_number",
    "log_inverse",
)
BINARY_STRATEGIES = ("balanced",)
STRATEGIES = MULTICLASS_STRATEGIES + BINARY_STRATEGIES
PROBABILITY_EPS = 1e-7


def fail(function: str, argument: str, expectation: str, actual: object, hint: str = "",
         error: type[Exception] = ValueError) -> Exception:
    """The one error format of the library: ``"<function>: <argument> must ...; got ...."``."""
    text = f"{function}: {argument} must {expectation}; got {actual}."
    if hint:
        text += f" {hint}"
    return error(text)


def check_choice(function: str, argument: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(function, argument, "be one of " + ", ".join(repr(c) for c in choices),
                   repr(value))
    return value


def check_number(function: str, argument: str, value: object, *, low: float = 0.0,
                 high: float = math.inf, high_inclusive: bool = True) -> float:
    """A finite real in ``[low, high]`` (or ``[low, high)``); bools are rejected."""
    if isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        raise fail(function, argument, "be a real number", repr(value), error=TypeError)
    if not isinstance(value, (int, float)):
        # numpy / torch scalars expose __float__; accept them, reject everything else.
        if not (hasattr(value, "__float__") and getattr(value, "ndim", 0) == 0):
            raise fail(function, argument, "be a real number", type(value).__name__,
                       error=TypeError)
    number = float(value)  # type: ignore[arg-type]
    closing = "]" if high_inclusive else ")"
    inside = low <= number and (number <= high if high_inclusive else number < high)
    if not math.isfinite(number) or not inside:
        span = f"[{low:g}, {high:g}{closing}" if math.isfinite(high) else f">= {low:g}"
        expectation = f"be a finite number in {span}" if "[" in span else \
            f"be a finite number {span}" if math.isfinite(low) else "be a finite number"
        raise fail(function, argument, expectation, repr(value))
    return number


# The largest smooth, Tversky alpha / beta, focal alpha, class or positive weight: a product
# of such a factor with a loss or a count, summed over a large volume, must stay finite in the
# float32 sums (3.4e38 / (1e4 loss per pixel · 1e10 pixels) leaves room above 1e20).
MAX_FACTOR = 1e20


def check_ignore_index(function: str, value: object) -> tuple[int, ...]:
    """``None``, an int or a sequence of ints → a tuple of ints."""
    if value is None:
        return ()
    items = (value,) if not isinstance(value, (list, tuple, set, frozenset)) else tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise fail(function, "ignore_index", "be an int or a sequence of ints",
                       repr(value), error=TypeError)
        if not -(2**63) <= item < 2**63:  # labels are at most int64
            raise fail(function, "ignore_index", "fit in int64", repr(item))
    return tuple(sorted(set(items)))


# Options that are True or False, and nothing else ('no' is truthy).
FLAGS = ("from_logits", "validate", "soft_label", "include_background")


def check_flags(function: str, **flags) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise fail(function, name, "be True or False", repr(value), error=TypeError)


def check_class_dim(function: str, class_dim: object, ndim: int) -> int:
    if isinstance(class_dim, bool) or not isinstance(class_dim, int):
        raise fail(function, "class_dim", "be an int", type(class_dim).__name__, error=TypeError)
    if ndim < 2:
        raise fail(function, "input", "have at least 2 dimensions (N, C, *spatial)",
                   f"{ndim} dimension(s)")
    if not -ndim < class_dim < ndim or class_dim in (0, -ndim):
        raise fail(function, "class_dim", f"index a non-batch axis of the {ndim}-D input, "
                   f"i.e. lie in [1, {ndim - 1}] or [-{ndim - 1}, -1]", class_dim)
    return class_dim % ndim


def check_strategy(function: str, name: str, mode: str) -> str:
    allowed = MULTICLASS_STRATEGIES if mode == "multiclass" else BINARY_STRATEGIES
    if name not in allowed:
        raise fail(function, "class_weights",
                   f"be a length-C sequence or one of {', '.join(map(repr, allowed))} "
                   f"for mode={mode!r}", repr(name))
    return name


def check_factor(function: str, argument: str, value: float) -> None:
    if value > MAX_FACTOR:
        raise fail(function, argument, f"be at most {MAX_FACTOR:g} (larger values overflow the "
                   "float32 sums)", repr(value))


def check_weight_values(function: str, argument: str, values: Sequence[float], length: int,
                        *, allow_zero_sum: bool = False) -> None:
    """Static per-class weights: length C, finite, >= 0, not all 0."""
    if len(values) != length:
        raise fail(function, argument, f"have length C={length} (one weight per class)",
                   f"length {len(values)}")
    if any(not math.isfinite(v) for v in values):
        raise fail(function, argument, "be finite", list(values))
    if any(v < 0 for v in values):
        raise fail(function, argument, "be >= 0", list(values))
    check_factor(function, argument, max(values, default=0.0))
    if not allow_zero_sum and not any(v > 0 for v in values):
        raise fail(function, argument, "not be all zero", list(values))


def shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def expected_index_shape(input_shape: Sequence[int], class_dim: int) -> tuple[int, ...]:
    return tuple(s for axis, s in enumerate(input_shape) if axis != class_dim)


def target_shape_error(function: str, mode: str, input_shape: Sequence[int],
                       target_shape: Sequence[int], class_dim: int) -> Exception:
    """The shape error with a hint for the usual mistakes (channels-last, missing axis)."""
    input_shape, target_shape = tuple(input_shape), tuple(target_shape)
    if mode == "multiclass":
        expected = (f"{shape_text(expected_index_shape(input_shape, class_dim))} (index map) or "
                    f"{shape_text(input_shape)} (one-hot / soft)")
    else:
        expected = shape_text(input_shape)
    hint = ""
    ndim = len(input_shape)
    for other in (1, ndim - 1):
        if other != class_dim and mode == "multiclass" and \
                target_shape == expected_index_shape(input_shape, other):
            hint = f"Did you mean class_dim={other if other == 1 else -1}?"
    if not hint and mode != "multiclass" and len(target_shape) == ndim - 1 and \
            target_shape == expected_index_shape(input_shape, class_dim) and \
            input_shape[class_dim] == 1:
        hint = f"Add the channel axis with target.unsqueeze({class_dim})."
    return fail(function, "target", f"have shape {expected} for mode={mode!r} and input "
                f"{shape_text(input_shape)}", shape_text(target_shape), hint)


def combine_reduction_check(function: str, reduction: str) -> str:
    """Compound losses sum terms of different shapes, so they have no 'none'."""
    if reduction not in ("mean", "sum"):
        raise fail(function, "reduction", "be 'mean' or 'sum' for a compound loss "
                   "(its terms have different shapes)", repr(reduction),
                   "Use the separate losses, or CompoundLoss, to see each term.")
    return reduction


# --------------------------------------------------------------------------------------------
# Option checks shared by the torch and Keras fronts (constructors and functionals)


def option_values(function: str, argument: str, value) -> list[float]:
    """A per-class option (sequence, NumPy array, or any framework's tensor) → floats."""
    if isinstance(value, (list, tuple)):
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError):
            raise fail(function, argument, "be a sequence of numbers", repr(value),
                       error=TypeError) from None
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if hasattr(value, "detach"):  # torch (also Keras's torch backend)
            value = value.detach().cpu()
        import numpy as np

        array = np.asarray(value)
        if array.ndim != 1:
            raise fail(function, argument, "be a 1-D tensor of length C", f"shape {array.shape}")
        if array.dtype.kind not in "fiu":
            raise fail(function, argument, "be a real tensor", f"dtype {array.dtype}",
                       error=TypeError)
        return [float(v) for v in array.tolist()]
    raise fail(function, argument, "be a length-C sequence, a 1-D tensor or a strategy name",
               type(value).__name__, error=TypeError)


def is_balanced(class_weights) -> bool:
    """``class_weights == "balanced"`` for any value (an array compares elementwise)."""
    return isinstance(class_weights, str) and class_weights == "balanced"


def check_options_weights(function: str, class_weights, mode: str):
    """Construction-time check of ``class_weights``: a strategy name or values."""
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        return check_strategy(function, class_weights, mode)
    values = list(class_weights) if isinstance(class_weights, (list, tuple)) else \
        option_values(function, "class_weights", class_weights)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value < 0:
            raise fail(function, "class_weights", "hold finite numbers >= 0", values)
    if values and not any(v > 0 for v in values):
        raise fail(function, "class_weights", "not be all zero", values)
    return class_weights


def check_pixel_options(function, *, mode, reduction, label_smoothing, class_weights, beta,
                        aggregate="batch", modes=MODES, reductions=REDUCTIONS):
    check_choice(function, "mode", mode, modes)
    check_choice(function, "reduction", reduction, reductions)
    check_choice(function, "aggregate", aggregate, PIXEL_AGGREGATES)
    check_number(function, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_number(function, "beta", beta, low=0.0, high=1.0, high_inclusive=False)
    check_options_weights(function, class_weights, mode)


def check_region_options(function, *, mode, reduction, smooth, absent, aggregate,
                         include_background, class_weights, weight_beta, alpha=0.5, beta=0.5,
                         gamma=1.0, weight_beta_name="beta", reductions=REDUCTIONS):
    check_choice(function, "mode", mode, MODES)
    check_choice(function, "reduction", reduction, reductions)
    check_choice(function, "absent", absent, ABSENT)
    check_choice(function, "aggregate", aggregate, AGGREGATES)
    for name, value in (("smooth", smooth), ("alpha", alpha), ("beta", beta)):
        check_factor(function, name, check_number(function, name, value))
    check_number(function, "gamma", gamma)
    check_number(function, weight_beta_name, weight_beta, low=0.0, high=1.0,
                 high_inclusive=False)
    if not isinstance(include_background, bool):
        raise fail(function, "include_background", "be a bool", repr(include_background),
                   error=TypeError)
    if not include_background and mode != "multiclass":
        raise fail(function, "include_background", f"be True for mode={mode!r} (class 0 is "
                   "background only in multiclass mode)", include_background)
    if is_balanced(class_weights):
        raise fail(function, "class_weights", "be a length-C sequence or a multiclass strategy "
                   "for a region loss ('balanced' weighs the pixels of a BCE)", repr("balanced"))
    check_options_weights(function, class_weights, mode)


def check_alpha(function, alpha, mode):
    """Focal ``alpha``: None, a scalar, or one value per class (within [0, 1] for sigmoids)."""
    if alpha is None:
        return
    high = 1.0 if mode != "multiclass" else math.inf
    if isinstance(alpha, (list, tuple)) or getattr(alpha, "ndim", 0):
        values = option_values(function, "alpha", alpha)
    else:
        values = [alpha]
    for value in values:
        check_factor(function, "alpha", check_number(function, "alpha", value, low=0.0,
                                                     high=high))


def check_alpha_length(function, alpha, num_classes: int) -> None:
    """A per-class focal ``alpha`` has one value per class (a scalar applies to all)."""
    if isinstance(alpha, (list, tuple)) or getattr(alpha, "ndim", 0):
        length = len(alpha) if isinstance(alpha, (list, tuple)) else int(alpha.shape[0])
        if length != num_classes:
            raise fail(function, "alpha", f"have length C={num_classes} (one value per class) "
                       "or be a scalar", f"length {length}")


def check_compound(function, *, reduction, lambda_ce, lambda_dice, label_smoothing):
    """The extra checks of ``dice_ce_loss`` (before its region checks)."""
    combine_reduction_check(function, reduction)
    check_number(function, "lambda_ce", lambda_ce)
    check_number(function, "lambda_dice", lambda_dice)
    check_number(function, "label_smoothing", label_smoothing, low=0.0, high=1.0)


def _label_range(ignore, num_classes: int) -> str:
    return (f"hold class indices in [0, {num_classes}) or an ignore_index "
            f"{list(ignore) if ignore else '(none set)'}")


def sum_tolerance(num_classes: int, eps: float) -> float:
    """How far from 1 a multiclass target's sum over C may be: 1e-3, or C roundings of the
    target's dtype where that is larger (a soft bfloat16 target)."""
    return max(1e-3, num_classes * eps)


def sum_to_one_error(function: str, ndim: int, summing_axes, low: float, high: float,
                     count: int, total: int) -> Exception:
    """A float multiclass target whose sums over the class axis are not 1: the error names
    the class_dim whose sums are 1, or mode='multilabel' for a multi-hot mask."""
    if summing_axes:
        axis = summing_axes[0]
        hint = f"Did you mean class_dim={-1 if axis == ndim - 1 else axis}?"
    else:
        hint = ("A multi-hot mask (several classes per pixel) needs mode='multilabel'; a "
                "one-hot or soft target sums to 1 over its classes.")
    return fail(function, "target", "sum to 1 over the class axis for mode='multiclass' "
                "(one-hot or soft probabilities)", f"sums from {low:g} to {high:g} at {count} "
                f"of {total} pixel(s)", hint)


def label_range_error(function: str, outside, ignore, num_classes: int) -> Exception:
    """The out-of-range label error of every front, from the offending label values."""
    outside = sorted(set(int(v) for v in outside))
    hint = ""
    if all(v < 0 or v >= num_classes for v in outside):
        hint = (f"Did you mean ignore_index={outside[0]}?" if len(outside) == 1
                else f"Did you mean ignore_index={tuple(outside[:4])}?")
    return fail(function, "target", _label_range(ignore, num_classes), f"values {outside[:8]}",
                hint)


def label_range_parts(function: str, ignore, num_classes: int) -> tuple[str, str]:
    """The out-of-range label error where a traced graph checks the labels: the text before
    the bad values, and the hint after them."""
    head = f"{function}: target must {_label_range(ignore, num_classes)}; got values"
    return head, ("Set ignore_index for a label that marks pixels to skip, or fix the labels "
                  "(validate=False turns this check off).")


def label_range_unreadable(function: str, ignore, num_classes: int) -> str:
    """The out-of-range label message of ``torch._assert_async``, which cannot show values."""
    head, hint = label_range_parts(function, ignore, num_classes)
    return (f"{head} outside it (they cannot be read while torch.compile traces; call the loss "
            f"eagerly to see them). {hint}")
