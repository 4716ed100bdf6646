"""Segmentation losses for PyTorch: functionals, ``nn.Module`` wrappers and utilities.

>>> import torch, seglosses.torch as sl
>>> logits = torch.randn(2, 7, 16, 16, requires_grad=True)
>>> labels = torch.randint(0, 7, (2, 16, 16))
>>> sl.dice_ce_loss(logits, labels, ignore_index=255).backward()
"""

from .._weights import class_weights_from_counts
from ..stats import ClassStats
from .functional import (
    binary_cross_entropy,
    cross_entropy,
    dice_ce_loss,
    dice_loss,
    focal_loss,
    jaccard_loss,
    tversky_loss,
)
from .modules import (
    BCELoss,
    CompoundLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    TverskyLoss,
)
from .weights import unet_weight_map

__all__ = [
    "cross_entropy", "binary_cross_entropy", "focal_loss", "tversky_loss", "dice_loss",
    "jaccard_loss", "dice_ce_loss", "CrossEntropyLoss", "BCELoss", "FocalLoss", "TverskyLoss",
    "DiceLoss", "JaccardLoss", "DiceCELoss", "CompoundLoss", "class_weights_from_counts",
    "ClassStats", "unet_weight_map",
]
