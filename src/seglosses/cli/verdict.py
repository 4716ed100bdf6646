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

The verdict (:func:`decide`) names a winner only when its lead over the runner-up exceeds its
uncertainty: the two losses' mean IoUs are paired run by run (the same fold and seed), and
the mean difference must exceed twice its standard error. Fewer than three paired runs
measure no uncertainty worth the name, so they name no winner.
"""

from __future__ import annotations

import math

import numpy as np

# A class with fewer validation pixels than this carries too little evidence to rank on.
FEW_PIXELS = 100
# Paired runs needed before a standard error means anything (two give it one degree of
# freedom).
MIN_PAIRED = 3


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


def baselines_over_folds(fold_pixels: list) -> dict[str, dict]:
    """The baselines of several validation sets (one per fold), averaged over the folds as the
    losses' scores are: each fold's predictor is scored on its own validation set.

    >>> b = baselines_over_folds([[900, 90, 10], [800, 150, 50]])
    >>> round(b["majority"]["pixel_accuracy"], 2)
    0.85
    """
    scored = [baselines(pixels) for pixels in fold_pixels]
    if len(scored) == 1:
        return scored[0]

    def mean(values):
        kept = [v for v in values if v is not None]
        return float(np.mean(kept)) if kept else None

    return {name: {"mean_iou": mean([s[name]["mean_iou"] for s in scored]),
                   "pixel_accuracy": mean([s[name]["pixel_accuracy"] for s in scored]),
                   "class_iou": [mean(column) for column in
                                 zip(*(s[name]["class_iou"] for s in scored), strict=True)]}
            for name in scored[0]}


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


def decide(rows: list[dict]) -> dict:
    """The verdict of a ranking (rows of ``compare.rank_losses``, best first).

    Returns ``{"winner": loss or None, "reason": why not (or ""), "paired": {"runs", "mean",
    "se"} or None}``: a winner needs a paired lead of more than two standard errors over the
    runner-up among the losses that beat the baselines; a loss that alone beat them wins.

    >>> keys = [[0, 0], [1, 0], [2, 0]]  # three folds, one seed
    >>> rows = [{"loss": "a", "learned": True, "mean_iou": 0.61, "run_keys": keys,
    ...          "mean_iou_per_seed": [0.6, 0.62, 0.61]},
    ...         {"loss": "b", "learned": True, "mean_iou": 0.5, "run_keys": keys,
    ...          "mean_iou_per_seed": [0.5, 0.49, 0.51]}]
    >>> decide(rows)["winner"]
    'a'
    """
    ranked = [r for r in rows if r.get("learned", True) and r["mean_iou"] is not None]
    if not ranked:
        return {"winner": None, "reason": "no loss beat the baselines", "paired": None}
    best = ranked[0]
    if len(ranked) == 1:
        return {"winner": best["loss"], "reason": "", "paired": None}
    runner = ranked[1]
    theirs = {tuple(k): v for k, v in zip(runner["run_keys"], runner["mean_iou_per_seed"],
                                          strict=True)}
    gaps = [v - theirs[tuple(k)] for k, v in zip(best["run_keys"], best["mean_iou_per_seed"],
                                                   strict=True)
            if v is not None and theirs.get(tuple(k)) is not None]
    gap = best["mean_iou"] - runner["mean_iou"]
    if len(gaps) < MIN_PAIRED:
        runs = "one run" if len(gaps) < 2 else f"{len(gaps)} runs"
        return {"winner": None, "paired": None,
                "reason": f"{runs} per loss cannot measure the uncertainty of its lead of "
                          f"{gap:.3f} over {runner['loss']} (run --seeds 0,1,2 or --folds 5)"}
    mean = float(np.mean(gaps))
    se = float(np.std(gaps, ddof=1)) / math.sqrt(len(gaps))
    paired = {"runs": len(gaps), "mean": mean, "se": se}
    if mean > 2 * se:
        return {"winner": best["loss"], "reason": "", "paired": paired}
    return {"winner": None, "paired": paired,
            "reason": f"its lead of {mean:.3f} over {runner['loss']} is within twice its "
                      f"standard error ({se:.3f}, paired over {len(gaps)} runs)"}


def data_summary(class_names, train_pixels, val_pixels) -> dict:
    """What ``seglosses scan`` says of the data, from the pixels the runs saw: each class's share
    of the training and validation pixels, the training imbalance (largest / smallest present
    class), and the weights every class-weight strategy gives on the training counts (what a
    per-batch strategy gives on average)."""
    from .._spec import MULTICLASS_STRATEGIES
    from .._weights import class_weights_from_counts

    train = np.asarray(train_pixels, dtype=np.float64)
    val = np.asarray(val_pixels, dtype=np.float64)
    present = train[train > 0]
    summary = {"class_names": list(class_names), "train_class_pixels": train.astype(int).tolist(),
               "val_class_pixels": val.astype(int).tolist(),
               "imbalance_ratio": float(present.max() / present.min()) if present.size else None,
               "strategy_weights": {}}
    if train.size > 1 and train.sum() > 0:
        summary["strategy_weights"] = {
            name: [float(w) for w in class_weights_from_counts(train, name)]
            for name in MULTICLASS_STRATEGIES}
    return summary
