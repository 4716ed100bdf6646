"""Framework-free weighting utilities: class weights from counts and the U-Net weight map.

The torch namespace re-exports both (``seglosses.torch.unet_weight_map`` takes and returns
tensors); these take and return NumPy arrays, for data pipelines and the ``scan`` command.
"""

from ._unet_map import unet_weight_map
from ._weights import class_weights_from_counts

__all__ = ["class_weights_from_counts", "unet_weight_map"]
