"""Arbitrary option values for the property tests of both fronts (test_errors.py and
keras_front/test_keras_errors.py): each loss gets a random subset of its own keyword options,
each drawn from valid, absurd and wrongly typed values."""

from __future__ import annotations

import inspect
import math

import numpy as np
from hypothesis import strategies as st

NAN, INF = math.nan, math.inf

VALUES = {
    "mode": ["multiclass", "binary", "multilabel", "bogus"],
    "class_dim": [1, -1, 0, 5, 1.0, True],
    "from_logits": [True, False, "no", 1, None],
    "validate": [True, False, "yes"],
    "ignore_index": [None, 255, -1, (0, 255), 2**70, 2.5, "255", True],
    "class_weights": [None, "inverse_frequency", "median_frequency", "balanced", "bogus",
                      [1.0, 2.0, 3.0], [1.0, 2.0], [0.0, 0.0, 0.0], [1.0, -1.0, 1.0],
                      [1.0, NAN, 1.0], [1e30, 1.0, 1.0], np.array([1.0, 2.0, 3.0]), (3, 2, 1),
                      2.0],
    "beta": [0.999, 0.5, 0.0, 1.0, -1.0, 1e39, NAN, "x"],
    "weight_beta": [0.999, 0.0, 1.0, 2.0],
    "label_smoothing": [0.0, 0.1, 1.0, -0.5, 2.0, True, NAN],
    "reduction": ["mean", "sum", "none", "avg", None],
    "pos_weight": [None, 2.0, [1.0, 2.0, 3.0], [1.0, 2.0], np.array([1.0, 2.0, 3.0]),
                   "balanced", [-1.0, 1.0, 1.0], [1e30, 1.0, 1.0]],
    "gamma": [0.0, 1.0, 2.0, -1.0, 1e308, INF, "2"],
    "alpha": [None, 0.0, 0.3, 1.0, 2.0, -0.5, 1e39, [1.0, 2.0], [0.2, 0.3, 0.5],
              np.array([0.2, 0.3, 0.5]), True],
    "smooth": [0.0, 1.0, 1e-5, -1.0, 1e40, 1e38, NAN, True, "1"],
    "absent": ["include", "exclude", "skip"],
    "aggregate": ["image", "batch", "dataset"],
    "include_background": [True, False, "false"],
    "soft_label": [True, False, 0],
    "lambda_ce": [1.0, 0.0, -1.0, NAN],
    "lambda_dice": [1.0, 0.5, INF],
}


def draw_options(data, function) -> dict:
    """A random subset of ``function``'s keyword options with drawn values."""
    names = [name for name, parameter in inspect.signature(function).parameters.items()
             if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name in VALUES]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=5), label="names")
    return {name: data.draw(st.sampled_from(VALUES[name]), label=name) for name in chosen}
