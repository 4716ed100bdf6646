"""One table of cases that drives every backend against the NumPy oracle.

A case names a loss, a kind of target, an input shape (class axis at dim 1 when generated) and
options. ``make_case`` builds matching NumPy arrays (for the oracle) and keyword arguments;
each backend's test converts them to its own tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE = (255, -1)


@dataclass(frozen=True)
class Case:
    loss: str
    target: str  # index | index_ignore | index_ignore_inside | onehot | soft | binary | ...
    shape: tuple = (2, 3, 4, 5)
    options: dict = field(default_factory=dict)
    class_dim: int = 1  # the class axis is moved here before the call
    mask: bool = False
    pixel_weights: bool = False
    probabilities: bool = False  # from_logits=False
    name: str = ""

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        bits = [self.loss, self.target, "x".join(map(str, self.shape))]
        bits += [f"{k}={v}" for k, v in sorted(self.options.items())]
        if self.class_dim != 1:
            bits.append(f"class_dim={self.class_dim}")
        bits += [b for b, on in (("mask", self.mask), ("pixel_weights", self.pixel_weights),
                                 ("probs", self.probabilities)) if on]
        return "-".join(bits)


def make_case(case: Case, seed: int = 0):
    """NumPy float64 input, target and keyword arguments for ``case``."""
    rng = np.random.default_rng(seed)
    shape = case.shape
    n, c, spatial = shape[0], shape[1], shape[2:]
    sigmoid = case.target.startswith(("binary", "multilabel"))
    logits = rng.normal(0.0, 2.0, size=shape)
    if case.probabilities:
        if sigmoid:
            x = 1.0 / (1.0 + np.exp(-logits))
        else:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
    else:
        x = logits
    kwargs = dict(case.options)
    labels = rng.integers(0, c, size=(n, *spatial))
    if case.target == "index":
        target = labels
    elif case.target == "index_ignore":
        target = labels.copy()
        draw = rng.random(target.shape)
        target[draw < 0.15] = 255
        target[draw > 0.9] = -1
        kwargs.setdefault("ignore_index", IGNORE)
    elif case.target == "index_ignore_inside":  # an ignore label inside [0, C)
        target = labels
        kwargs.setdefault("ignore_index", 0)
    elif case.target == "onehot":
        target = np.moveaxis(np.eye(c)[labels], -1, 1)
    elif case.target == "soft":
        raw = rng.random(shape) ** 3
        target = raw / raw.sum(axis=1, keepdims=True)
    elif case.target == "binary":  # integer {0, 1}
        target = rng.integers(0, 2, size=shape)
    elif case.target == "binary_ignore":
        target = rng.integers(0, 2, size=shape)
        target[rng.random(shape) < 0.2] = 255
        kwargs.setdefault("ignore_index", 255)
    elif case.target == "binary_float":
        target = rng.integers(0, 2, size=shape).astype(np.float64)
    elif case.target == "binary_soft":
        target = rng.random(shape)
    else:
        raise ValueError(case.target)
    if sigmoid:
        kwargs.setdefault("mode", "binary" if shape[1] == 1 else "multilabel")
    pixel_shape = (n, *spatial)
    if case.mask:
        kwargs["mask"] = rng.random(pixel_shape) > 0.25
    if case.pixel_weights:
        kwargs["pixel_weights"] = rng.random(pixel_shape) * 2
    if case.probabilities:
        kwargs["from_logits"] = False
    if case.class_dim != 1:
        x = np.moveaxis(x, 1, case.class_dim)
        if target.ndim == x.ndim:
            target = np.moveaxis(target, 1, case.class_dim)
        kwargs["class_dim"] = case.class_dim
    return x, target, kwargs


W3 = [0.2, 1.0, 3.0]
STRATEGIES = ["inverse_frequency", "inverse_sqrt_frequency", "median_frequency",
              "effective_number", "log_inverse"]

CASES = [
    # cross-entropy
    Case("cross_entropy", "index"),
    Case("cross_entropy", "index", (3, 2, 7)),
    Case("cross_entropy", "index", (4, 5)),  # no spatial axis
    Case("cross_entropy", "index", (2, 3, 3, 2, 2)),  # 3-D
    Case("cross_entropy", "index", options={"class_weights": W3}),
    *[Case("cross_entropy", "index_ignore", options={"class_weights": s}) for s in STRATEGIES],
    Case("cross_entropy", "index_ignore", options={"class_weights": W3, "label_smoothing": 0.2}),
    Case("cross_entropy", "index_ignore_inside"),
    Case("cross_entropy", "index", options={"reduction": "sum"}, mask=True, pixel_weights=True),
    Case("cross_entropy", "index_ignore", options={"reduction": "none"}, pixel_weights=True),
    # a batch strategy beside pixel weights and no mask: frequencies count pixels, not weights
    Case("cross_entropy", "index", options={"class_weights": "inverse_frequency"},
         pixel_weights=True),
    Case("cross_entropy", "onehot", options={"class_weights": W3}),
    Case("cross_entropy", "soft", options={"label_smoothing": 0.1, "class_weights": W3},
         mask=True),
    Case("cross_entropy", "index", probabilities=True),
    Case("cross_entropy", "soft", probabilities=True, options={"reduction": "sum"}),
    Case("cross_entropy", "index_ignore", class_dim=-1, options={"label_smoothing": 0.1}),
    Case("cross_entropy", "binary", (2, 1, 4, 5)),
    # binary / multilabel cross-entropy
    Case("binary_cross_entropy", "binary", (2, 1, 4, 5)),
    Case("binary_cross_entropy", "binary_float", (2, 1, 4, 5),
         options={"pos_weight": [2.5], "label_smoothing": 0.1}),
    Case("binary_cross_entropy", "binary_ignore", (2, 1, 4, 5), options={"reduction": "sum"}),
    Case("binary_cross_entropy", "binary_soft", (2, 1, 6), mask=True, pixel_weights=True),
    Case("binary_cross_entropy", "binary", (2, 1, 4, 5), options={"class_weights": "balanced"}),
    Case("binary_cross_entropy", "binary", (2, 3, 4, 5),
         options={"pos_weight": [1.0, 2.0, 0.5], "class_weights": W3}),
    Case("binary_cross_entropy", "binary_ignore", (2, 3, 4, 5),
         options={"class_weights": "balanced", "reduction": "none"}),
    Case("binary_cross_entropy", "binary_float", (2, 3, 4, 5), probabilities=True),
    Case("binary_cross_entropy", "binary_soft", (2, 3, 4, 5), class_dim=-1,
         options={"pos_weight": [1.0, 2.0, 0.5]}),
    # focal
    Case("focal_loss", "index"),
    Case("focal_loss", "index_ignore", options={"gamma": 0.5, "alpha": [0.2, 0.3, 0.5]}),
    Case("focal_loss", "index", options={"alpha": 0.25, "label_smoothing": 0.1,
                                          "class_weights": W3}),
    Case("focal_loss", "index", options={"alpha": 0.25}),  # a scalar α alone: C equal weights
    Case("focal_loss", "soft", options={"gamma": 1.5}, pixel_weights=True),
    Case("focal_loss", "index", probabilities=True, options={"reduction": "sum"}),
    Case("focal_loss", "binary_float", (2, 1, 4, 5), options={"alpha": 0.25}),
    Case("focal_loss", "binary_ignore", (2, 3, 4, 5),
         options={"gamma": 1.0, "alpha": [0.2, 0.5, 0.8], "pos_weight": [1.0, 2.0, 3.0]}),
    Case("focal_loss", "binary_soft", (2, 3, 4, 5), options={"label_smoothing": 0.2},
         class_dim=-1),
    # Tversky family
    Case("tversky_loss", "index", options={"alpha": 0.3, "beta": 0.7}),
    Case("tversky_loss", "index_ignore", options={"alpha": 0.7, "beta": 0.3, "gamma": 0.75,
                                                   "aggregate": "batch"}),
    Case("tversky_loss", "index", options={"gamma": 1.5, "class_weights": "median_frequency",
                                            "reduction": "none"}),
    Case("tversky_loss", "soft", options={"soft_label": True, "smooth": 0.5}),
    Case("tversky_loss", "binary", (2, 1, 4, 5), options={"alpha": 0.2, "beta": 0.8}),
    Case("dice_loss", "index"),
    Case("dice_loss", "index", (2, 4, 4, 5), options={"smooth": 0.0}),
    Case("dice_loss", "index_ignore", options={"absent": "exclude", "include_background": False,
                                                "reduction": "none"}),
    Case("dice_loss", "index_ignore", options={"aggregate": "batch", "class_weights": W3,
                                                "reduction": "sum"}),
    Case("dice_loss", "index", mask=True, pixel_weights=True,
         options={"class_weights": "inverse_frequency"}),
    Case("dice_loss", "onehot", class_dim=-1),
    Case("dice_loss", "soft", options={"soft_label": True}),
    Case("dice_loss", "soft", options={"soft_label": False}),
    Case("dice_loss", "index", probabilities=True),
    Case("dice_loss", "index", (2, 3, 3, 2, 2), options={"aggregate": "batch"}),
    Case("dice_loss", "binary_ignore", (2, 1, 4, 5)),
    Case("dice_loss", "binary_soft", (2, 3, 4, 5), options={"soft_label": True,
                                                             "class_weights": W3}),
    Case("dice_loss", "binary_float", (2, 3, 4, 5), probabilities=True,
         options={"absent": "exclude", "aggregate": "batch"}),
    Case("jaccard_loss", "index"),
    Case("jaccard_loss", "index_ignore", options={"smooth": 0.0, "reduction": "none"}),
    Case("jaccard_loss", "binary", (2, 2, 4, 5), options={"aggregate": "batch"}),
    # compounds
    Case("dice_ce_loss", "index"),
    Case("dice_ce_loss", "index_ignore", options={"class_weights": "median_frequency",
                                                   "label_smoothing": 0.1,
                                                   "include_background": False}),
    Case("dice_ce_loss", "index", options={"lambda_ce": 0.3, "lambda_dice": 2.0,
                                            "aggregate": "batch", "reduction": "sum"},
         pixel_weights=True),
    Case("dice_ce_loss", "soft", options={"soft_label": True, "class_weights": W3}, mask=True),
    Case("dice_ce_loss", "index_ignore", options={"class_weights": "median_frequency"},
         pixel_weights=True),
    Case("dice_ce_loss", "index_ignore", class_dim=-1, options={"absent": "exclude"}),
    Case("dice_ce_loss", "index", probabilities=True),
    Case("dice_ce_loss", "binary", (2, 1, 4, 5), options={"pos_weight": [3.0]}),
    Case("dice_ce_loss", "binary_ignore", (2, 3, 4, 5), options={"class_weights": "balanced"}),
    Case("dice_ce_loss", "binary_soft", (2, 3, 4, 5), options={"label_smoothing": 0.1,
                                                                "soft_label": True}),
]
