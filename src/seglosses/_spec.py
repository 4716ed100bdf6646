"""Option checks, error texts and defaults shared by every front end (torch, Keras).

Nothing here imports a framework: checks take Python values, shapes (tuples of ints) and
dtype *kinds* ("float", "int", "bool", "complex"), so the torch and Keras fronts raise the
same text for the same mistake (SPEC §5).
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
    if isinstance(value, bool) or not isinstance(value, (int, float)):
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
            f"be a finite number {span}"
        raise fail(function, argument, expectation, repr(value))
    return number


def check_ignore_index(function: str, value: object) -> tuple[int, ...]:
    """``None``, an int or a sequence of ints → a tuple of ints."""
    if value is None:
        return ()
    items = (value,) if not isinstance(value, (list, tuple, set, frozenset)) else tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise fail(function, "ignore_index", "be an int or a sequence of ints",
                       repr(value), error=TypeError)
    return tuple(sorted(set(items)))


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
