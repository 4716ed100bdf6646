"""Class weights on the torch path: static weights, and strategies computed from each batch."""

from __future__ import annotations

import numpy as np
import torch

from .._spec import check_strategy, check_weight_values, fail
from .._weights import balanced_weights, strategy_weights


def static_class_weights(function: str, weights, num_classes: int, device, dtype, *,
                         check: bool = True, argument: str = "class_weights",
                         allow_zero_sum: bool = False) -> torch.Tensor:
    """A length-C sequence or tensor → a (C,) tensor on ``device``, checked."""
    if isinstance(weights, np.ndarray):  # e.g. class_weights_from_counts or ClassStats.weights
        weights = torch.from_numpy(weights)
    if isinstance(weights, torch.Tensor):
        if weights.ndim != 1:
            raise fail(function, argument, f"be a 1-D tensor of length C={num_classes}",
                       f"shape {tuple(weights.shape)}")
        if weights.is_complex() or weights.dtype == torch.bool:
            raise fail(function, argument, "be a real tensor", f"dtype {weights.dtype}",
                       error=TypeError)
        tensor = weights.to(device=device, dtype=dtype)
        if check or weights.device.type == "cpu":
            check_weight_values(function, argument, weights.detach().cpu().double().tolist(),
                                num_classes, allow_zero_sum=allow_zero_sum)
        return tensor
    if isinstance(weights, (list, tuple)):
        try:
            values = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise fail(function, argument, "be a sequence of numbers", repr(weights),
                       error=TypeError) from None
        check_weight_values(function, argument, values, num_classes,
                            allow_zero_sum=allow_zero_sum)
        return torch.tensor(values, device=device, dtype=dtype)
    raise fail(function, argument, "be a length-C sequence, a 1-D tensor or a strategy name",
               type(weights).__name__, error=TypeError)


def batch_class_weights(function: str, strategy: str, counts, mode: str, beta: float):
    """Weights of a strategy from the current batch's counts, on the device, no host sync.

    ``counts`` is a (C,) tensor for multiclass strategies, or ``(negatives, positives)`` per
    channel for ``"balanced"``, which returns ``(negative_weights, positive_weights)``.
    """
    check_strategy(function, strategy, mode)
    if strategy == "balanced":
        negatives, positives = counts
        return balanced_weights(negatives, positives)
    return strategy_weights(counts, strategy, beta)


def unet_weight_map(labels, *, w0: float = 10.0, sigma: float = 5.0, instances: bool = False,
                    class_balance: bool = True, background: int = 0, ignore_index=None):
    """U-Net border weight map (Ronneberger et al. 2015, eq. 2) of a batch of label maps.

    Accepts a tensor or array ``(N, *spatial)`` and returns a float32 tensor of the same shape
    on the labels' device, ready for ``pixel_weights=``. The distance transforms run on the CPU
    (SciPy); compute the map once per image in the data pipeline, not in the training step.
    See :func:`seglosses._unet_map.unet_weight_map` for the formula and the options.
    """
    from .._unet_map import unet_weight_map as numpy_map

    device = labels.device if isinstance(labels, torch.Tensor) else torch.device("cpu")
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    weights = numpy_map(array, w0=w0, sigma=sigma, instances=instances,
                        class_balance=class_balance, background=background,
                        ignore_index=ignore_index)
    return torch.from_numpy(weights).to(device)
