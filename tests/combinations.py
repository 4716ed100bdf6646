"""Random combinations of loss options, one per seed, for the differential tests
(``test_triton_combinations.py``: the kernels against the torch path;
``keras/test_keras_combinations.py``: the Keras front against the oracle).

The case table (cases.py) names the combinations someone thought of; the bugs it missed
lived between options: a scalar focal α alone (a stride-0 class scale), per-batch class
weights beside pixel weights without a mask (frequencies weighted by the pixel weights), the
oracle accepting frequency strategies that both fronts reject in sigmoid modes. Each seed
draws a loss, a mode, a class count, a shape (1-D to 3-D, one pixel included), a layout
(NCHW, channels_last, ``class_dim=-1``), a target kind and dtype, and any of ignore labels,
mask, pixel weights, label smoothing, class weights (fixed or a strategy), pos_weight, focal
γ/α, reductions and the region options.
"""

from __future__ import annotations

import random

import torch

REGION = ("dice_loss", "jaccard_loss", "tversky_loss", "dice_ce_loss")
STRATEGIES = {"multiclass": ["median_frequency", "inverse_sqrt_frequency", "effective_number",
                             "log_inverse"],
              "sigmoid": ["median_frequency", "inverse_frequency", "balanced"]}


def draw(seed: int):
    """``(loss name, mode, logits, target, options)`` of one case."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    name = rng.choice(["cross_entropy", "focal_loss", "binary_cross_entropy", *REGION])
    if name == "binary_cross_entropy":
        mode = rng.choice(["multilabel", "binary"])
    else:
        mode = rng.choice(["multiclass", "multiclass", "multilabel", "binary"])
    classes = 1 if mode == "binary" else rng.choice([2, 3, 4, 5, 8, 19])
    shape = (rng.choice([1, 2, 3]), classes) + rng.choice([(5, 7), (1, 1), (3, 4, 5), (9, 33),
                                                           (6,)])
    pixels = (shape[0],) + shape[2:]
    x = torch.randn(shape, dtype=torch.float64, generator=generator) * 2
    options = {}
    kind = "index" if mode == "multiclass" else "binary"
    if rng.random() < 0.3:
        kind = "soft" if mode == "multiclass" else "float"
    if kind == "index":
        target = torch.randint(0, classes, pixels, generator=generator)
    elif kind == "binary":
        target = torch.randint(0, 2, shape, generator=generator)
    elif kind == "soft":
        target = torch.softmax(torch.randn(shape, dtype=torch.float64, generator=generator), 1)
    else:
        target = torch.rand(shape, dtype=torch.float64, generator=generator)
    if kind in ("index", "binary"):
        target = target.to(rng.choice([torch.uint8, torch.int32, torch.int64]))
        if rng.random() < 0.35:
            options["ignore_index"] = rng.choice([255, (255, 254)])
            target.view(-1)[::5] = 255
    if rng.random() < 0.3:
        options["mask"] = torch.rand(pixels, generator=generator) > 0.3
    if rng.random() < 0.3:
        options["pixel_weights"] = torch.rand(pixels, dtype=torch.float64, generator=generator)
    if name != "focal_loss" or mode == "multiclass":
        if rng.random() < 0.3 and name in ("cross_entropy", "binary_cross_entropy",
                                            "dice_ce_loss", "focal_loss"):
            options["label_smoothing"] = 0.1
    if rng.random() < 0.3:
        strategies = STRATEGIES["multiclass" if mode == "multiclass" else "sigmoid"]
        options["class_weights"] = rng.choice(
            [[0.5 + 0.1 * k for k in range(classes)], *strategies])
    if mode != "multiclass" and name in ("binary_cross_entropy", "focal_loss", "dice_ce_loss") \
            and rng.random() < 0.3:
        options["pos_weight"] = [1.0 + 0.5 * k for k in range(classes)]
    if name == "focal_loss":
        options["gamma"] = rng.choice([0.0, 0.5, 2.0])
        if rng.random() < 0.5:
            options["alpha"] = rng.choice([0.25, [min(0.9, 0.2 + 0.05 * k)
                                                  for k in range(classes)]])
    if name in REGION:
        options["aggregate"] = rng.choice(["image", "batch"])
        options["absent"] = rng.choice(["include", "exclude"])
        if mode == "multiclass" and rng.random() < 0.3:
            options["include_background"] = False
        if kind in ("soft", "float") and rng.random() < 0.5:
            options["soft_label"] = True
        if name == "tversky_loss":
            options.update(alpha=0.3, beta=0.7, gamma=rng.choice([1.0, 1.5]))
        if name == "dice_ce_loss" and rng.random() < 0.3:
            options.update(lambda_ce=0.4, lambda_dice=1.7)
    if name != "dice_ce_loss":
        options["reduction"] = rng.choice(["mean", "sum", "none"])
    layout = rng.choice(["nchw", "nchw", "channels_last", "last"])
    if layout == "channels_last" and x.ndim in (4, 5):
        memory_format = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
        x = x.contiguous(memory_format=memory_format)
        if target.shape == x.shape:
            target = target.contiguous(memory_format=memory_format)
    elif layout == "last":
        x = x.movedim(1, -1)
        target = target.movedim(1, -1) if target.shape == shape else target
        options["class_dim"] = -1
    return name, mode, x, target, options
