"""Segmentation losses for Keras 3, on every backend (TensorFlow, JAX, PyTorch).

The names, options and numbers of :mod:`seglosses.torch`, written with ``keras.ops`` only and
with Keras's conventions: ``(y_true, y_pred)`` argument order, channels-last by default
(``class_dim=-1``), integer masks accepted although Keras casts ``y_true`` to float, and
``keras.losses.Loss`` classes that return one value per sample, so Keras's reductions and
``sample_weight`` work (see :mod:`seglosses.keras.losses` and ``docs/keras.md``).
``from_logits=True`` is the default, as in the torch front (Keras's own losses default to
False): pass ``from_logits=False`` after a softmax / sigmoid output layer.

This package imports Keras and, through it, only the backend Keras runs on (never torch
unless ``KERAS_BACKEND=torch``).

>>> import numpy as np, seglosses.keras as slk
>>> loss = slk.DiceCELoss(class_weights="inverse_frequency", ignore_index=255)
>>> labels = np.random.default_rng(0).integers(0, 7, size=(2, 16, 16))
>>> logits = np.random.default_rng(1).normal(size=(2, 16, 16, 7)).astype("float32")
>>> tuple(loss(labels, logits).shape), tuple(loss.call(labels, logits).shape)
((), (2,))
"""

from .._weights import class_weights_from_counts
from .functional import (
    binary_cross_entropy,
    cross_entropy,
    dice_ce_loss,
    dice_loss,
    focal_loss,
    jaccard_loss,
    tversky_loss,
)
from .losses import (
    BCELoss,
    CompoundLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    TverskyLoss,
)

__all__ = [
    "cross_entropy", "binary_cross_entropy", "focal_loss", "tversky_loss", "dice_loss",
    "jaccard_loss", "dice_ce_loss", "CrossEntropyLoss", "BCELoss", "FocalLoss", "TverskyLoss",
    "DiceLoss", "JaccardLoss", "DiceCELoss", "CompoundLoss", "class_weights_from_counts",
]
