"""What a comparison can honestly claim, NumPy only: the scores of two predictors that learn
nothing (the baselines a trained model must beat), and the training-health notes that say why
a ranking may not mean much yet.

The baselines are scored from the validation set's per-class pixel counts ``n_c`` (``N`` in
all, ``f_c = n_c / N``), with the IoU of :func:`seglosses.cli.train.class_metrics`:

* **majority class**: the most frequent validation class ``m`` everywhere. IoU is ``f_m`` for
  ``m``, 0 for every other class that occurs; pixel accuracy ``f_m``.
* **class prior**: each pixel drawn at random with the class frequencies, scored by its expected
  confusion matrix (``TP_c = n_c f_c``, ``FP_c = (N - n_c) f_c``, ``FN_c = n_c (1 - f_c)``): IoU
  ``f_c / (2 - f_c)``, pixel accuracy ``Σ f_c²``.

A class with no validation pixel is left out of the means, as in the runs' metrics.
"""

from __future__ import annotations

import numpy as np

# A class with fewer validation pixels than this carries too little evidence to rank on.
FEW_PIXELS = 100


def baselines(class_pixels) -> dict[str, dict]:
    """``{"majority": ..., "prior": ...}``, each with ``mean_iou``, ``pixel_accuracy`` and
    ``class_iou`` (None for a class without validation pixels).

    >>> b = baselines([900, 90, 10])
    >>> round(b["majority"]["mean_iou"], 3), round(b["majority"]["pixel_accuracy"], 3)
    (0.3, 0.9)
    >>> round(b["prior"]["mean_iou"], 3)
    0.29
    """
    counts = np.asarray(class_pixels, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        empty = {"mean_iou": None, "pixel_accuracy": None, "class_iou": [None] * counts.size}
        return {"majority": empty, "prior": dict(empty)}
    present = counts > 0
    share = counts / total
    majority = np.where(present, 0.0, np.nan)
    majority[int(np.argmax(counts))] = share.max()
    prior = np.where(present, share / (2 - share), np.nan)

    def scored(iou, accuracy):
        return {"mean_iou": float(np.nanmean(iou)), "pixel_accuracy": float(accuracy),
                "class_iou": [None if np.isnan(v) else float(v) for v in iou]}

    return {"majority": scored(majority, share.max()),
            "prior": scored(prior, float(np.sum(share**2)))}


def learned(mean_iou: float | None, reference: dict[str, dict]) -> bool:
    """Whether a validation mean IoU beats every baseline (an undefined one does not)."""
    bars = [b["mean_iou"] for b in reference.values() if b["mean_iou"] is not None]
    return mean_iou is not None and all(mean_iou > bar for bar in bars)


def health_notes(row: dict, *, epochs: int, steps_per_epoch: int) -> list[str]:
    """Why one loss's numbers may not mean much yet: few optimiser steps, a best epoch that
    is the last one (still improving), a model that did not beat the baselines."""
    notes = []
    total = steps_per_epoch * epochs
    if steps_per_epoch < 10:
        notes.append(f"{steps_per_epoch} optimiser step(s) per epoch, {total} in all: "
                     "few for a network to learn (more images, a smaller --batch-size or more "
                     "--epochs)")
    if any(best == epochs for best in row["best_epochs"]):
        notes.append("the best epoch is the last: still improving, train longer")
    if not row["learned"]:
        notes.append("did not beat the baselines: the model did not learn")
    return notes


def data_notes(class_names, class_pixels, num_val: int) -> list[str]:
    """Validation-set warnings: classes with too few pixels to rank on, absent classes."""
    notes = []
    for name, count in zip(class_names, class_pixels, strict=True):
        if count == 0:
            notes.append(f"class {name} has no validation pixel: its IoU is not defined")
        elif count < FEW_PIXELS:
            notes.append(f"class {name} has {count} validation pixel(s): too few to rank the "
                         "losses on it")
    if num_val < 5:
        notes.append(f"{num_val} validation image(s): differences between losses are mostly "
                     "noise at this size")
    return notes
