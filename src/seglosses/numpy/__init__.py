"""The float64 reference ("oracle") of every seglosses loss.

Naive, formula-by-formula NumPy code that shares nothing with the PyTorch, Triton or Keras
paths; the fast paths are tested against it (docs/semantics.md, tolerances), and it is itself
tested against hand-computed values (docs/semantics.md, reference values). Inputs may be any
float dtype; probabilities given with ``from_logits=False`` are clipped in that dtype, then
everything is computed in float64.

Functions take the tensors positionally and every option by keyword, with the names and
defaults of ``seglosses.torch``.
"""

from ._pixel import binary_cross_entropy, cross_entropy, focal_loss
from ._region import dice_ce_loss, dice_loss, jaccard_loss, tversky_loss
from ._weights import class_weights_from_counts

__all__ = [
    "binary_cross_entropy",
    "class_weights_from_counts",
    "cross_entropy",
    "dice_ce_loss",
    "dice_loss",
    "focal_loss",
    "jaccard_loss",
    "tversky_loss",
]
