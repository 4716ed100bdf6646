"""seglosses: correct, consistent and fast loss functions for image segmentation.

``import seglosses`` imports no framework. The PyTorch API is re-exported lazily
(``seglosses.DiceCELoss`` imports torch on first use); ``seglosses.numpy`` is the float64
oracle and ``seglosses.information`` computes entropy, cross-entropy and KL in bits or nats.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_TORCH_NAMES = frozenset({
    "cross_entropy", "binary_cross_entropy", "focal_loss", "tversky_loss", "dice_loss",
    "jaccard_loss", "dice_ce_loss", "CrossEntropyLoss", "BCELoss", "FocalLoss", "TverskyLoss",
    "DiceLoss", "JaccardLoss", "DiceCELoss", "CompoundLoss", "unet_weight_map",
})
_FREE_NAMES = {"class_weights_from_counts": "._weights", "ClassStats": ".stats"}


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(".torch", __name__), name)
    if name in _FREE_NAMES:
        return getattr(importlib.import_module(_FREE_NAMES[name], __name__), name)
    raise AttributeError(f"module 'seglosses' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _TORCH_NAMES | set(_FREE_NAMES))


__all__ = sorted(_TORCH_NAMES | set(_FREE_NAMES))
