r"""``keras.losses.Loss`` classes: the seglosses losses for ``model.compile(loss=...)``.

Each class stores its options (checked at construction, with the torch front's texts), calls
the functional form of :mod:`seglosses.keras.functional`, and leaves the reduction and
``sample_weight`` to Keras's base class. ``get_config`` / ``from_config`` round-trip every
option, and the classes are registered (package ``"seglosses"``), so ``model.save`` /
``keras.models.load_model`` keep the loss.

**Per-sample values.** ``call(y_true, y_pred)`` returns one value per sample, shape ``(N,)``,
chosen so that Keras's reductions give the torch front's numbers:

- ``"sum_over_batch_size"`` (the default), ``"mean"``, ``"mean_with_sample_weight"`` and
  ``None``/``"none"``: sample ``n`` carries ``N · S_n / Z``, where ``S_n`` is the sum of its
  (weighted) pixel terms or kept ``w_c L_nc`` pairs and ``Z`` is the *whole batch's*
  ``"mean"`` normaliser (``Σ v_i w_{y_i}``, ``Σ v_i``, or ``Σ w_c`` over kept pairs). Their mean
  over the batch is exactly seglosses.torch's ``reduction="mean"`` (ignored pixels, class
  weights and absent classes included). With ``aggregate="batch"`` every sample carries the
  batch loss.
- ``"sum"``: sample ``n`` carries ``S_n`` (``aggregate="batch"``: the batch sum ÷ N), so the sum
  is seglosses.torch's ``reduction="sum"``.

**sample_weight.** A scalar or per-sample ``(N,)`` / ``(N, 1)`` weight goes to Keras's base
class, which multiplies the per-sample values above (so ``"sum_over_batch_size"`` gives
``Σ_n sw_n N S_n / Z / N``). A *per-pixel* weight ``(N, *spatial)`` (or ``(N, *spatial, 1)``)
cannot multiply per-sample values, so it enters the loss itself, exactly as the torch front's
``mask=(sample_weight != 0)`` together with ``pixel_weights=sample_weight``: it multiplies
every pixel's term in every sum, numerators *and* "mean" denominators (a weighted mean; a 0/1
map removes pixels as ``ignore_index`` does, also from the class frequencies of the weight
strategies), and Keras then reduces the per-sample values without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np
from keras import ops

from .._spec import FLAGS, check_choice, check_flags, check_number, fail
from ._backend import HALF_DTYPES, is_tracing, static_shape, values
from ._options import as_float_list, check_alpha, check_pixel_options, check_region_options
from .functional import (
    PER_SAMPLE_MEAN,
    PER_SAMPLE_SUM,
    check_dice_ce,
    compound,
    dice_family,
    pixel_loss,
    region,
)

__all__ = [
    "CrossEntropyLoss",
    "BCELoss",
    "FocalLoss",
    "TverskyLoss",
    "DiceLoss",
    "JaccardLoss",
    "DiceCELoss",
    "CompoundLoss",
]

_register = keras.saving.register_keras_serializable(package="seglosses")
_PER_CLASS_OPTIONS = ("class_weights", "pos_weight", "alpha")


def _loss_dtype(dtype):
    """The loss computes in float32 under any 16-bit policy; float64 stays (docs/semantics.md,
    precision)."""
    policy = keras.dtype_policies.get(dtype or keras.config.floatx())
    return "float32" if policy.compute_dtype in HALF_DTYPES else dtype


def _is_per_pixel(sample_weight) -> bool:
    shape = static_shape(sample_weight)
    return len(shape) >= 2 and not (len(shape) == 2 and shape[1] == 1)


def _check_sample_weight(function: str, sample_weight, y_pred):
    """A scalar, per-sample ``(N,)`` / ``(N, 1)`` or per-pixel weight, finite and >= 0 where
    its values can be read (a per-pixel one is checked by the loss, as ``pixel_weights``)."""
    if isinstance(sample_weight, (int, float)) and not isinstance(sample_weight, bool):
        if not (math.isfinite(sample_weight) and sample_weight >= 0):
            raise fail(function, "sample_weight", "be finite and >= 0", repr(sample_weight))
        return sample_weight
    sample_weight = ops.convert_to_tensor(sample_weight)
    if _is_per_pixel(sample_weight):
        return sample_weight
    shape, batch = static_shape(sample_weight), static_shape(ops.convert_to_tensor(y_pred))[0]
    if len(shape) > 2 or (shape and None not in (shape[0], batch) and shape[0] != batch):
        raise fail(function, "sample_weight", f"be a scalar, (N,) or (N, 1) with N={batch}, or "
                   "per pixel (N, *spatial)", f"shape {tuple(shape)}")
    if not is_tracing(sample_weight):
        array = values(sample_weight).astype(np.float64)
        if not (np.isfinite(array) & (array >= 0)).all():
            bad = array[~(np.isfinite(array) & (array >= 0))]
            raise fail(function, "sample_weight", "be finite and >= 0",
                       f"values {np.unique(bad).tolist()[:5]}")
    return sample_weight


class _SegmentationLoss(keras.losses.Loss):
    """Shared machinery; subclasses declare their options, checks and computation."""

    _function = ""

    def __init__(self, options: dict, *, reduction, name, dtype):
        options = {k: v for k, v in options.items()
                   if k not in ("self", "__class__", "reduction", "name", "dtype")}
        check_flags(type(self).__name__, **{k: v for k, v in options.items() if k in FLAGS})
        self._check(options)
        if isinstance(options.get("ignore_index"), (list, tuple, set, frozenset)):
            options["ignore_index"] = list(options["ignore_index"])  # as JSON gives it back
        for key in _PER_CLASS_OPTIONS:  # JSON-friendly config: lists of floats
            value = options.get(key)
            if value is None or isinstance(value, (str, int, float)):
                continue
            if getattr(value, "ndim", 1) == 0:
                options[key] = float(value)
            else:
                options[key] = as_float_list(type(self).__name__, key, value)
        super().__init__(name=name, reduction=reduction, dtype=_loss_dtype(dtype))
        # a DTypePolicy object is stored by name, so the config stays plain JSON
        self._dtype_argument = dtype if dtype is None or isinstance(dtype, str) else \
            getattr(dtype, "name", str(dtype))
        self.options = options
        self._sample_pixel_weights = None

    def _check(self, options: dict) -> None:
        raise NotImplementedError

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        name = type(self).__name__
        if sample_weight is not None:
            sample_weight = _check_sample_weight(name, sample_weight, y_pred)
        if static_shape(ops.convert_to_tensor(y_pred))[:1] == (0,):  # an empty batch
            return ops.zeros((), dtype=self.dtype)
        if sample_weight is not None and not isinstance(sample_weight, (int, float)):
            if _is_per_pixel(sample_weight):
                # a per-pixel weight enters the loss itself (see the module docstring)
                self._sample_pixel_weights = sample_weight
                try:
                    return super().__call__(y_true, y_pred)
                finally:
                    self._sample_pixel_weights = None
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return self.per_sample(y_true, y_pred, sample_weight=self._sample_pixel_weights)

    def per_sample(self, y_true, y_pred, *, sample_weight=None):
        """The ``(N,)`` per-sample values for this loss's reduction (see the module docs)."""
        share = PER_SAMPLE_SUM if self.reduction == "sum" else PER_SAMPLE_MEAN
        return self._compute(y_true, y_pred, reduction=share, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(self.options)
        config["dtype"] = self._dtype_argument
        return config

    def __repr__(self):
        shown = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({shown})"


def _pixel_check(name, focal=False):
    def check(self, options):
        check_pixel_options(name, mode=options["mode"], reduction="mean",
                            label_smoothing=options["label_smoothing"],
                            class_weights=options["class_weights"], beta=options["beta"])
        if focal:
            check_alpha(name, options["alpha"], options["mode"])
            check_number(name, "gamma", options["gamma"])
    return check


def _region_check(name):
    def check(self, options):
        tversky = "weight_beta" in options  # TverskyLoss: beta is the FN weight
        check_region_options(
            name, mode=options["mode"], reduction="mean", smooth=options["smooth"],
            absent=options["absent"], aggregate=options["aggregate"],
            include_background=options["include_background"],
            class_weights=options["class_weights"],
            weight_beta=options["weight_beta" if tversky else "beta"],
            weight_beta_name="weight_beta" if tversky else "beta",
            **({k: options[k] for k in ("alpha", "beta", "gamma")} if tversky else {}))
    return check


@_register
class CrossEntropyLoss(_SegmentationLoss):
    """Keras form of :func:`seglosses.keras.cross_entropy` (same options and defaults).

    Returns per-sample values ``(N,)`` (see :mod:`seglosses.keras.losses`); per-pixel
    ``sample_weight`` acts as the functional's ``pixel_weights``.
    """

    _function = "cross_entropy"
    _check = _pixel_check("CrossEntropyLoss")

    def __init__(self, *, mode="multiclass", class_dim=-1, from_logits=True, ignore_index=None,
                 class_weights=None, beta=0.999, pos_weight=None, label_smoothing=0.0,
                 validate=True, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        return pixel_loss(self._function, y_true, y_pred, mask=None, pixel_weights=None,
                          sample_weight=sample_weight, reduction=reduction, **self.options)


@_register
class BCELoss(_SegmentationLoss):
    """Keras form of :func:`seglosses.keras.binary_cross_entropy`."""

    _function = "binary_cross_entropy"
    _check = _pixel_check("BCELoss")

    def __init__(self, *, mode="binary", class_dim=-1, from_logits=True, ignore_index=None,
                 class_weights=None, beta=0.999, pos_weight=None, label_smoothing=0.0,
                 validate=True, reduction="sum_over_batch_size", name=None, dtype=None):
        check_choice("BCELoss", "mode", mode, ("binary", "multilabel"))
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)

    _compute = CrossEntropyLoss._compute


@_register
class FocalLoss(_SegmentationLoss):
    """Keras form of :func:`seglosses.keras.focal_loss`."""

    _function = "focal_loss"
    _check = _pixel_check("FocalLoss", focal=True)

    def __init__(self, *, mode="multiclass", gamma=2.0, alpha=None, class_dim=-1,
                 from_logits=True, ignore_index=None, class_weights=None, beta=0.999,
                 pos_weight=None, label_smoothing=0.0, validate=True,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        return pixel_loss(self._function, y_true, y_pred, focal=True, mask=None,
                          pixel_weights=None, sample_weight=sample_weight, reduction=reduction,
                          **self.options)


@_register
class TverskyLoss(_SegmentationLoss):
    """Keras form of :func:`seglosses.keras.tversky_loss` (α weighs FP, β FN)."""

    _function = "tversky_loss"
    _check = _region_check("TverskyLoss")

    def __init__(self, *, mode="multiclass", alpha=0.5, beta=0.5, gamma=1.0, smooth=1.0,
                 absent="include", aggregate="image", include_background=True, soft_label=False,
                 class_dim=-1, from_logits=True, ignore_index=None, class_weights=None,
                 weight_beta=0.999, validate=True, reduction="sum_over_batch_size", name=None,
                 dtype=None):
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        return region(self._function, y_true, y_pred, mask=None, pixel_weights=None,
                      sample_weight=sample_weight, reduction=reduction, **self.options)


class _DiceFamily(_SegmentationLoss):
    _shape = (0.5, 0.5, 0.5)  # alpha, beta, smooth scale

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        options = dict(self.options)
        beta = options.pop("beta")
        return dice_family(self._function, *self._shape, y_true, y_pred, mask=None,
                           pixel_weights=None, sample_weight=sample_weight, reduction=reduction,
                           beta_weights=beta, check=False, **options)


@_register
class DiceLoss(_DiceFamily):
    """Keras form of :func:`seglosses.keras.dice_loss`."""

    _function = "dice_loss"
    _check = _region_check("DiceLoss")

    def __init__(self, *, mode="multiclass", smooth=1.0, absent="include", aggregate="image",
                 include_background=True, soft_label=False, class_dim=-1, from_logits=True,
                 ignore_index=None, class_weights=None, beta=0.999, validate=True,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)


@_register
class JaccardLoss(_DiceFamily):
    """Keras form of :func:`seglosses.keras.jaccard_loss`."""

    _function = "jaccard_loss"
    _check = _region_check("JaccardLoss")
    _shape = (1.0, 1.0, 1.0)

    def __init__(self, *, mode="multiclass", smooth=1.0, absent="include", aggregate="image",
                 include_background=True, soft_label=False, class_dim=-1, from_logits=True,
                 ignore_index=None, class_weights=None, beta=0.999, validate=True,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)


@_register
class DiceCELoss(_SegmentationLoss):
    """Keras form of :func:`seglosses.keras.dice_ce_loss` (Dice + CE, or BCE-Dice)."""

    _function = "dice_ce_loss"

    def __init__(self, *, mode="multiclass", lambda_ce=1.0, lambda_dice=1.0, smooth=1.0,
                 absent="include", aggregate="image", include_background=True,
                 soft_label=False, label_smoothing=0.0, pos_weight=None, class_dim=-1,
                 from_logits=True, ignore_index=None, class_weights=None, beta=0.999,
                 validate=True, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(locals(), reduction=reduction, name=name, dtype=dtype)

    def _check(self, options):
        check_dice_ce("DiceCELoss", mode=options["mode"], reduction="mean",
                      lambda_ce=options["lambda_ce"], lambda_dice=options["lambda_dice"],
                      label_smoothing=options["label_smoothing"], smooth=options["smooth"],
                      absent=options["absent"], aggregate=options["aggregate"],
                      include_background=options["include_background"],
                      class_weights=options["class_weights"], beta=options["beta"])

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        return compound(self._function, y_true, y_pred, mask=None, pixel_weights=None,
                        sample_weight=sample_weight, reduction=reduction, **self.options)


@_register
class CompoundLoss(_SegmentationLoss):
    """A weighted sum of seglosses.keras losses, each with its own options.

    Args:
        terms: a mapping ``name -> (weight, loss)``, or a sequence of ``(weight, loss)`` or
            ``(name, weight, loss)``; each loss is a seglosses.keras loss instance.

    Per-sample values are the weighted sums of the terms' per-sample values, so every Keras
    reduction and ``sample_weight`` form works as for a single loss. While running eagerly,
    ``last_values`` maps each term's name to its last (unweighted) reduced value, for logging;
    inside a traced ``fit`` step use a metric instead.

    Example:
        >>> loss = CompoundLoss({"ce": (1.0, CrossEntropyLoss()), "dice": (0.5, DiceLoss())})
        >>> sorted(loss.get_config()["terms"][0])
        ['loss', 'name', 'weight']
    """

    def __init__(self, terms, *, reduction="sum_over_batch_size", name=None, dtype=None):
        self.terms = _parse_terms(terms)
        self.last_values = {}
        super().__init__({}, reduction=reduction, name=name, dtype=dtype)

    def _check(self, options):
        return None

    def _compute(self, y_true, y_pred, *, reduction, sample_weight):
        total = None
        for name, weight, loss in self.terms:
            value = loss._compute(y_true, y_pred, reduction=reduction,
                                  sample_weight=sample_weight)
            if not is_tracing(value):
                self.last_values[name] = ops.stop_gradient(
                    ops.sum(value) if reduction == PER_SAMPLE_SUM else ops.mean(value))
            total = weight * value if total is None else total + weight * value
        return total

    def get_config(self):
        config = keras.losses.Loss.get_config(self)
        config["terms"] = [{"name": name, "weight": weight,
                            "loss": keras.saving.serialize_keras_object(loss)}
                           for name, weight, loss in self.terms]
        config["dtype"] = self._dtype_argument
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["terms"] = [(term["name"], term["weight"],
                            keras.saving.deserialize_keras_object(term["loss"]))
                           for term in config["terms"]]
        return cls(**config)

    def __repr__(self):
        return "CompoundLoss(" + " + ".join(f"{w:g}*{n}" for n, w, _ in self.terms) + ")"


def _parse_terms(terms):
    items = list(terms.items()) if isinstance(terms, Mapping) else list(terms)
    if not items:
        raise fail("CompoundLoss", "terms", "hold at least one (weight, loss) term", "none")
    parsed, names = [], set()
    for position, item in enumerate(items):
        if isinstance(terms, Mapping):
            name, (weight, loss) = item[0], item[1]
        elif len(item) == 3:
            name, weight, loss = item
        elif len(item) == 2:
            weight, loss = item
            base = type(loss).__name__
            base = base[:-4].lower() if base.endswith("Loss") else base
            name = base if base not in names else f"{base}_{position}"
        else:
            raise fail("CompoundLoss", "terms", "hold (weight, loss) or (name, weight, loss) "
                       "items", repr(item))
        if not isinstance(loss, _SegmentationLoss) or isinstance(loss, CompoundLoss):
            raise fail("CompoundLoss", f"terms[{name!r}]", "be a seglosses.keras loss",
                       type(loss).__name__, error=TypeError)
        check_number("CompoundLoss", f"weight of {name!r}", weight, low=-float("inf"))
        if name in names:
            raise fail("CompoundLoss", "terms", "have unique names", f"{name!r} twice")
        names.add(name)
        parsed.append((str(name), float(weight), loss))
    return parsed
