"""``nn.Module`` wrappers: each stores its options (checked at construction) and calls its
functional. Per-class tensors (``class_weights``, ``pos_weight``, ``alpha``) are buffers, so
``.to(device)`` and ``state_dict()`` carry them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from .. import _spec as spec
from .._spec import fail
from . import functional as F

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

_TENSOR_OPTIONS = ("class_weights", "pos_weight", "alpha")


class _SegmentationLoss(nn.Module):
    """Shared machinery; subclasses only declare their options and their functional."""

    function: Callable  # the functional this module calls, set by each subclass

    def __init__(self, options: dict):
        super().__init__()
        options = {k: v for k, v in options.items() if k not in ("self", "__class__")}
        spec.check_flags(type(self).__name__, **{k: v for k, v in options.items()
                                                 if k in spec.FLAGS})
        self._check(options)
        for name in _TENSOR_OPTIONS:
            value = options.get(name)
            if isinstance(value, (list, tuple, torch.Tensor)):
                self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).clone())
                options.pop(name)
        self.options = options

    def _check(self, options: dict) -> None:
        raise NotImplementedError

    def forward(self, input: torch.Tensor, target: torch.Tensor, *, mask=None,
                pixel_weights=None) -> torch.Tensor:
        tensors = {name: getattr(self, name) for name in _TENSOR_OPTIONS
                   if name in self._buffers}
        return type(self).function(input, target, mask=mask, pixel_weights=pixel_weights,
                                   **self.options, **tensors)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if not isinstance(v, torch.Tensor)}
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _pixel_check(name):
    def check(self, options):
        F.check_pixel_options(name, mode=options["mode"], reduction=options["reduction"],
                              label_smoothing=options["label_smoothing"], impl=options["impl"],
                              class_weights=options["class_weights"], beta=options["beta"],
                              aggregate=options["aggregate"])
        if "gamma" in options:
            F.check_alpha(name, options["alpha"], options["mode"])
            F.check_number(name, "gamma", options["gamma"])
    return check


def _region_check(name):
    def check(self, options):
        tversky = "weight_beta" in options  # TverskyLoss: beta is the FN weight
        class_weights = options["class_weights"]
        if name == "DiceCELoss":
            class_weights = None if spec.is_balanced(class_weights) else class_weights
            F.check_compound(name, reduction=options["reduction"],
                             lambda_ce=options["lambda_ce"], lambda_dice=options["lambda_dice"],
                             label_smoothing=options["label_smoothing"])
        F.check_region_options(
            name, mode=options["mode"], reduction=options["reduction"], smooth=options["smooth"],
            absent=options["absent"], aggregate=options["aggregate"],
            include_background=options["include_background"], impl=options["impl"],
            class_weights=class_weights,
            weight_beta=options["weight_beta" if tversky else "beta"],
            weight_beta_name="weight_beta" if tversky else "beta",
            **({k: options[k] for k in ("alpha", "beta", "gamma")} if tversky else {}))
    return check


class CrossEntropyLoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.cross_entropy` (same options and defaults).

    ``forward(input, target, *, mask=None, pixel_weights=None)``.
    """

    function = staticmethod(F.cross_entropy)
    _check = _pixel_check("CrossEntropyLoss")

    def __init__(self, *, mode="multiclass", class_dim=1, from_logits=True, ignore_index=None,
                 class_weights=None, beta=0.999, pos_weight=None, label_smoothing=0.0,
                 reduction="mean", aggregate="batch", validate=True, impl="auto"):
        super().__init__(locals())


class BCELoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.binary_cross_entropy`."""

    function = staticmethod(F.binary_cross_entropy)
    _check = _pixel_check("BCELoss")

    def __init__(self, *, mode="binary", class_dim=1, from_logits=True, ignore_index=None,
                 class_weights=None, beta=0.999, pos_weight=None, label_smoothing=0.0,
                 reduction="mean", aggregate="batch", validate=True, impl="auto"):
        if mode not in ("binary", "multilabel"):
            raise fail("BCELoss", "mode", "be one of 'binary', 'multilabel'", repr(mode))
        super().__init__(locals())


class FocalLoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.focal_loss`."""

    function = staticmethod(F.focal_loss)
    _check = _pixel_check("FocalLoss")

    def __init__(self, *, mode="multiclass", gamma=2.0, alpha=None, class_dim=1,
                 from_logits=True, ignore_index=None, class_weights=None, beta=0.999,
                 pos_weight=None, label_smoothing=0.0, reduction="mean", aggregate="batch",
                 validate=True, impl="auto"):
        super().__init__(locals())


class TverskyLoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.tversky_loss` (focal-Tversky with ``gamma``)."""

    function = staticmethod(F.tversky_loss)
    _check = _region_check("TverskyLoss")

    def __init__(self, *, mode="multiclass", alpha=0.5, beta=0.5, gamma=1.0, smooth=1.0,
                 absent="include", aggregate="image", include_background=True, soft_label=False,
                 class_dim=1, from_logits=True, ignore_index=None, class_weights=None,
                 weight_beta=0.999, reduction="mean", validate=True, impl="auto"):
        super().__init__(locals())


class DiceLoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.dice_loss`."""

    function = staticmethod(F.dice_loss)
    _check = _region_check("DiceLoss")

    def __init__(self, *, mode="multiclass", smooth=1.0, absent="include", aggregate="image",
                 include_background=True, soft_label=False, class_dim=1, from_logits=True,
                 ignore_index=None, class_weights=None, beta=0.999, reduction="mean",
                 validate=True, impl="auto"):
        super().__init__(locals())


class JaccardLoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.jaccard_loss`."""

    function = staticmethod(F.jaccard_loss)
    _check = _region_check("JaccardLoss")

    def __init__(self, *, mode="multiclass", smooth=1.0, absent="include", aggregate="image",
                 include_background=True, soft_label=False, class_dim=1, from_logits=True,
                 ignore_index=None, class_weights=None, beta=0.999, reduction="mean",
                 validate=True, impl="auto"):
        super().__init__(locals())


class DiceCELoss(_SegmentationLoss):
    """Module form of :func:`seglosses.torch.dice_ce_loss` (Dice+CE, or BCE-Dice)."""

    function = staticmethod(F.dice_ce_loss)
    _check = _region_check("DiceCELoss")

    def __init__(self, *, mode="multiclass", lambda_ce=1.0, lambda_dice=1.0, smooth=1.0,
                 absent="include", aggregate="image", include_background=True,
                 soft_label=False, label_smoothing=0.0, pos_weight=None, class_dim=1,
                 from_logits=True, ignore_index=None, class_weights=None, beta=0.999,
                 reduction="mean", validate=True, impl="auto"):
        super().__init__(locals())


class CompoundLoss(nn.Module):
    """A weighted sum of losses that remembers each term's last value for logging.

    Args:
        terms: a mapping ``name -> (weight, loss)``, or a sequence of ``(weight, loss)`` or
            ``(name, weight, loss)``; each loss is a module or callable ``loss(input, target,
            **kwargs)``.

    After each call, ``last_values`` maps every term's name to its (unweighted, detached) value;
    reading them with ``float()`` is left to the caller so the training step stays sync-free.

    Example:
        >>> import torch
        >>> loss = CompoundLoss({"ce": (1.0, CrossEntropyLoss()), "dice": (0.5, DiceLoss())})
        >>> value = loss(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
        >>> sorted(loss.last_values)
        ['ce', 'dice']
    """

    def __init__(self, terms):
        super().__init__()
        items = list(terms.items()) if isinstance(terms, Mapping) else list(terms)
        if not items:
            raise fail("CompoundLoss", "terms", "hold at least one (weight, loss) term", "none")
        self.losses = nn.ModuleDict()
        self._callables: dict[str, Callable] = {}
        self.weights: dict[str, float] = {}
        for position, item in enumerate(items):
            if isinstance(terms, Mapping):
                name, (weight, loss) = item[0], item[1]
            elif len(item) == 3:
                name, weight, loss = item
            elif len(item) == 2:
                weight, loss = item
                name = _default_name(loss, position, self.weights)
            else:
                raise fail("CompoundLoss", "terms", "hold (weight, loss) or (name, weight, loss) "
                           "items", repr(item))
            if not callable(loss):
                raise fail("CompoundLoss", f"terms[{name!r}]", "be a loss module or callable",
                           type(loss).__name__, error=TypeError)
            F.check_number("CompoundLoss", f"weight of {name!r}", weight, low=-float("inf"))
            if name in self.weights:
                raise fail("CompoundLoss", "terms", "have unique names", f"{name!r} twice")
            self.weights[name] = float(weight)
            if isinstance(loss, nn.Module):
                self.losses[name] = loss
            else:
                self._callables[name] = loss
        self.last_values: dict[str, torch.Tensor] = {}
        reductions = {name: loss.options["reduction"] for name, loss in self.losses.items()
                      if isinstance(getattr(loss, "options", None), dict)
                      and "reduction" in loss.options}
        if len(set(reductions.values())) > 1:
            raise fail("CompoundLoss", "terms", "share one reduction (their sum would broadcast)",
                       ", ".join(f"{n}: {r!r}" for n, r in reductions.items()))

    def forward(self, input, target, **kwargs):
        total = shape = None
        for name, weight in self.weights.items():
            loss = self.losses[name] if name in self.losses else self._callables[name]
            value = loss(input, target, **kwargs)
            if shape is not None and value.shape != shape:
                raise fail("CompoundLoss", f"term {name!r}", f"give a value of shape "
                           f"{tuple(shape)} like the terms before it (one reduction)",
                           f"shape {tuple(value.shape)}")
            shape = value.shape
            self.last_values[name] = value.detach()
            total = weight * value if total is None else total + weight * value
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{n}" for n, w in self.weights.items())


def _default_name(loss, position, taken) -> str:
    base = type(loss).__name__ if isinstance(loss, nn.Module) else \
        getattr(loss, "__name__", f"term{position}")
    base = base[:-4].lower() if base.endswith("Loss") else base
    return base if base not in taken else f"{base}_{position}"
