"""Train the same model with several losses (and seeds) and rank them:
``compare(config, losses, seeds) -> CompareResult``.

Runs go to ``OUT/runs/<NN-loss>/seed-<S>/`` (each a full :func:`~seglosses.cli.train.train` run
folder); ``OUT/report.md``, ``OUT/report.html`` and ``OUT/results.json`` hold the comparison
(see :mod:`seglosses.cli.report`). Every run uses the same data (``config.data_seed``), so the
seeds vary only the initial weights, the data order and the augmentation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._spec import fail
from .config import TrainConfig
from .train import Diverged, RunResult, distributed, train
from .verdict import baselines_over_folds, data_notes, data_summary, health_notes, learned

FORMAT = "seglosses.CompareResult"


@dataclass
class CompareResult:
    """What :func:`compare` returns.

    Attributes:
        out: the compare folder.
        ranking: one row per loss, best first (keys: ``rank``, ``loss``, ``mean_iou``,
            ``mean_iou_std``, ``class_iou``, ``min_class_iou``, ``mean_dice``,
            ``pixel_accuracy``, ``best_epochs``, ``time_s``, ``run_dirs``).
        runs: every :class:`RunResult` by loss expression, one per seed.
        report: paths of ``report.md``, ``report.html`` and ``results.json`` (empty on ranks
            other than 0 under DDP).
        elapsed_s: wall time of the whole comparison.
        diverged: loss expression -> why it was left out of the ranking (its training loss
            became NaN or infinite; the message names the seed, epoch and step).
        baselines: the scores of the predictors that learn nothing (``verdict.baselines``).
    """

    out: Path
    ranking: list[dict]
    runs: dict[str, list[RunResult]]
    report: dict[str, Path]
    elapsed_s: float
    diverged: dict[str, str] = dataclasses.field(default_factory=dict)
    baselines: dict[str, dict] = dataclasses.field(default_factory=dict)


def parse_losses(text: str) -> list[str]:
    """``"ce; dice ;ce+dice"`` → ``["ce", "dice", "ce+dice"]`` (``;`` separates losses)."""
    losses = [part.strip() for part in text.split(";") if part.strip()]
    if not losses:
        raise fail("compare", "losses", "name at least one loss expression, separated by ';'",
                   repr(text))
    if len(losses) == 1 and "," in re.sub(r"\([^()]*\)", "", losses[0]):
        raise fail("compare", "losses", "be loss expressions separated by ';'", repr(text),
                   f"Did you mean {text.replace(',', ';')!r}?")
    repeated = sorted({loss for loss in losses if losses.count(loss) > 1})
    if repeated:
        raise fail("compare", "losses", "be distinct loss expressions",
                   f"{', '.join(repeated)} more than once")
    return losses


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise fail("compare", "seeds", "be non-negative ints separated by commas, e.g. '0,1,2'",
                   repr(text))
    return seeds


def run_folder_name(position: int, loss: str) -> str:
    """A readable, unique folder name for a loss expression.

    >>> run_folder_name(1, "ce(class_weights=inverse_frequency)")
    '02-ce-class_weights-inverse_frequency'
    >>> run_folder_name(0, "0.5*ce+dice")
    '01-0.5xce+dice'
    """
    text = loss.replace("*", "x").replace(" ", "")
    text = re.sub(r"[^A-Za-z0-9.+_-]+", "-", text).strip("-.")[:60]
    return f"{position + 1:02d}-{text or 'loss'}"


def compare(config: TrainConfig, losses: list[str], seeds: list[int], *,
            progress: bool = True, resume: bool = False) -> CompareResult:
    """Train ``config`` once per (loss, seed), then write the report to ``config.out``.

    Args:
        config: the shared options (its ``loss`` and ``seed`` are replaced per run; its ``out``
            is the compare folder).
        losses: loss expressions, e.g. ``["ce", "ce(class_weights=inverse_frequency)",
            "dice", "ce+dice", "focal"]``.
        seeds: training seeds; the table shows mean ± std over them.
        progress: progress bars on stderr.
        resume: continue an interrupted comparison: finished runs are reused, unfinished ones
            resumed from their last checkpoint, missing ones trained.

    Raises:
        ValueError: an empty or repeated loss or seed, a bad expression (before any training),
            or a folder that already holds a comparison (without ``resume``/``overwrite``).
    """
    from .expr import describe_loss

    function = "compare"
    if not losses or len(set(losses)) != len(losses):
        raise fail(function, "losses", "be distinct loss expressions (at least one)",
                   repr(losses))
    if not seeds or len(set(seeds)) != len(seeds):
        raise fail(function, "seeds", "be distinct ints (at least one)", repr(seeds))
    for loss in losses:
        describe_loss(loss)  # a typo in the fifth loss fails now, not after four trainings
    out = Path(config.out)
    if not (resume or config.overwrite) and (out / "results.json").exists():
        raise fail(function, "out", "be a new folder", f"{os.fspath(out)!r}, which already "
                   "holds a comparison", "Pass --resume to continue it or --overwrite to start "
                   "again.")
    started = time.perf_counter()
    runs: dict[str, list[RunResult]] = {}
    diverged: dict[str, str] = {}
    splits = [(fold, seed) for fold in range(config.folds) for seed in seeds]
    total = len(losses) * len(splits)
    with distributed(config.device) as (rank, _world, _device):
        for position, loss in enumerate(losses):
            runs[loss] = []
            for fold, seed in splits:
                run_dir = out / "runs" / run_folder_name(position, loss)
                run_dir = (run_dir / f"fold-{fold}" if config.folds > 1 else run_dir) / \
                    f"seed-{seed}"
                run_config = dataclasses.replace(config, loss=loss, seed=seed, fold=fold,
                                                 out=os.fspath(run_dir), resume=None)
                if resume and (run_dir / "config.json").is_file():
                    # a run stopped before its first checkpoint starts again from epoch 1
                    run_config = dataclasses.replace(run_config, resume=os.fspath(run_dir),
                                                     overwrite=False)
                number = position * len(splits) + splits.index((fold, seed)) + 1
                label = f"{number}/{total} {loss}" + \
                    (f" fold {fold}" if config.folds > 1 else "") + \
                    (f" seed {seed}" if len(seeds) > 1 else "")
                try:
                    runs[loss].append(train(run_config, progress=progress, label=label))
                except Diverged as error:  # not ranked: its numbers say nothing about the loss
                    where = (f"fold {fold}, " if config.folds > 1 else "") + f"seed {seed}"
                    diverged[loss] = f"{where}: {str(error).removeprefix('train: ')}"
                    del runs[loss]
                    break
        if not runs:
            raise Diverged(f"compare: every loss diverged ({'; '.join(diverged.values())})")
        first = next(iter(runs.values()))[0]
        fold_pixels = _fold_pixels(runs)
        reference = baselines_over_folds(list(fold_pixels.values()))
        ranking = rank_losses(runs, reference)
        steps = steps_per_epoch(first.dataset["num_train"], config, first.world_size)
        for row in ranking:
            row["notes"] = health_notes(row, epochs=config.epochs, steps_per_epoch=steps)
        report: dict[str, Path] = {}
        if rank == 0:
            report = _write(out, config, losses, seeds, runs, ranking,
                            time.perf_counter() - started, diverged, reference,
                            np.sum(list(fold_pixels.values()), axis=0).tolist())
    return CompareResult(out, ranking, runs, report, time.perf_counter() - started, diverged,
                         reference)


def steps_per_epoch(num_train: int, config: TrainConfig, world: int = 1) -> int:
    """Optimiser steps of one epoch (each process takes ``num_train / world`` images)."""
    steps = math.ceil(math.ceil(num_train / world) / config.batch_size)
    return steps if config.steps_per_epoch is None else min(steps, config.steps_per_epoch)


def rank_losses(runs: dict[str, list[RunResult]], reference: dict | None = None) -> list[dict]:
    """One row per loss from its runs' best epochs, sorted by mean IoU (undefined last); a
    loss whose mean IoU does not beat the ``reference`` baselines (``verdict.baselines``)
    ranks after every loss that does (``learned`` False)."""
    rows = []
    for loss, results in runs.items():
        best = [r.best for r in results]
        mious = [b["val_mean_iou"] for b in best if b["val_mean_iou"] is not None]
        class_iou = _nanmean_columns([b["val_iou"] for b in best])
        defined = [v for v in class_iou if v is not None]
        rows.append({
            "loss": loss,
            "seeds": [r.config.seed for r in results],
            "run_keys": [[r.config.fold, r.config.seed] for r in results],
            "mean_iou": float(np.mean(mious)) if mious else None,
            "mean_iou_std": float(np.std(mious, ddof=1)) if len(mious) > 1 else None,
            "mean_iou_per_seed": [b["val_mean_iou"] for b in best],
            "final_mean_iou": _mean([r.last["val_mean_iou"] for r in results]),
            "class_iou": class_iou,
            "class_dice": _nanmean_columns([b["val_dice"] for b in best]),
            "class_precision": _nanmean_columns([b.get("val_precision", []) for b in best]),
            "class_recall": _nanmean_columns([b.get("val_recall", []) for b in best]),
            "min_class_iou": min(defined) if defined else None,
            "mean_dice": _mean([b["val_mean_dice"] for b in best]),
            "pixel_accuracy": _mean([b["val_pixel_accuracy"] for b in best]),
            "val_loss": _mean([b["val_loss"] for b in best]),
            "best_epochs": [r.best_epoch for r in results],
            # the epochs' own time: the first run's start-up (imports, data) is not the loss's
            "time_s": float(np.mean([sum(h.get("time_s", 0.0) for h in r.history)
                                     for r in results])),
            "step_time_s": _mean([steady_step_time(r.history) for r in results]),
            "peak_memory_bytes": max((h["peak_memory_bytes"] for r in results for h in r.history
                                      if h.get("peak_memory_bytes") is not None), default=None),
            "run_dirs": [os.fspath(r.run_dir) for r in results],
        })
    for row in rows:
        row["learned"] = learned(row["mean_iou"], reference or {})
    rows.sort(key=lambda row: (not row["learned"], row["mean_iou"] is None,
                               -(row["mean_iou"] or 0.0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def steady_step_time(history: list[dict]) -> float | None:
    """Seconds per optimiser step once warm: the median over the epochs after the first (the
    first pays for warm-up), or the first epoch's when there is only one."""
    times = [h["train_time_s"] / h["train_steps"] for h in history
             if h.get("train_steps") and h.get("train_time_s") is not None]
    return float(np.median(times[1:] if len(times) > 1 else times)) if times else None


def _mean(values) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _nanmean_columns(lists: list[list[float]]) -> list[float | None]:
    """Per-class mean over seeds, skipping undefined (NaN/None) values; None if all are."""
    columns = zip(*lists, strict=True)
    return [_mean(column) for column in columns]


def class_names_of(dataset: dict) -> list[str]:
    """Names of the metric classes (a binary problem has background and foreground)."""
    names = list(dataset.get("class_names") or [])
    if dataset["num_classes"] == 1:
        return ["background", names[0] if names else "foreground"]
    return names if len(names) == dataset["num_classes"] else \
        [str(c) for c in range(dataset["num_classes"])]


def _fold_pixels(runs: dict[str, list[RunResult]]) -> dict[int, list[int]]:
    """Each fold's validation pixels per class (the same for every loss and seed)."""
    return {r.config.fold: r.last["val_class_pixels"] for r in next(iter(runs.values()))}


def _write(out: Path, config, losses, seeds, runs, ranking, elapsed, diverged: dict[str, str],
           reference: dict, val_pixels: list[int]) -> dict[str, Path]:
    """The report; ``val_pixels`` are the validation pixels per class over all folds (each
    image validates once)."""
    import seglosses

    from . import report
    from .expr import describe_loss

    first = {loss: results[0] for loss, results in runs.items()}
    dataset = next(iter(first.values())).dataset
    class_names = class_names_of(dataset)
    dataset_pixels = val_pixels
    figures = {
        "iou_bars": report.figure_png(report.iou_bars_figure(ranking, class_names)),
        "curves": report.figure_png(report.comparison_curves_figure(
            {loss: result.history for loss, result in first.items()})),
    }
    predictions = {}
    for loss, result in first.items():
        path = result.run_dir / "predictions.npz"
        if path.is_file():
            with np.load(path) as archive:
                predictions[loss] = {k: archive[k] for k in ("images", "masks", "preds")}
    if predictions:
        sample = next(iter(predictions.values()))
        figures["predictions"] = report.figure_png(report.predictions_figure(
            sample["images"], sample["masks"], {k: v["preds"] for k, v in predictions.items()},
            class_names))
    base = config.to_dict()
    base.pop("loss")
    base.pop("seed")
    data = {
        "format": FORMAT, "version": 1, "config": base, "losses": losses, "seeds": seeds,
        "descriptions": {loss: describe_loss(loss) for loss in losses},
        "dataset": {**dataset, "class_names": class_names,
                    "val_class_pixels": dataset_pixels},
        "device": next(iter(first.values())).device, "elapsed_s": elapsed,
        "ranking": ranking, "diverged": diverged,
        "trained": _trained(losses, dataset, config),
        "data_summary": data_summary(class_names,
                                     next(iter(first.values())).history[0].get(
                                         "train_class_pixels", []), dataset_pixels),
        "baselines": reference,
        "notes": data_notes(class_names, dataset_pixels, dataset["num_val"]),
        "runs": [{"loss": loss, "seed": r.config.seed, **r.to_dict(), "history": r.history}
                 for loss, results in runs.items() for r in results],
        "versions": {"seglosses": seglosses.__version__, "torch": _torch_version()},
    }
    run_curves = {loss: result.run_dir / "curves.png" for loss, result in first.items()}
    return report.write_report(out, data, figures, run_curves)


def _trained(losses: list[str], dataset: dict, config: TrainConfig) -> dict[str, list[dict]]:
    """Each loss's terms as they were built for this data (``expr.expanded_terms``)."""
    from ..stats import ClassStats
    from .expr import expanded_terms, parse_loss

    stats = None if config.class_stats is None else ClassStats.from_json(config.class_stats)
    ignore = dataset.get("ignore_index", config.ignore_index)
    return {loss: expanded_terms(parse_loss(loss, num_classes=dataset["num_classes"],
                                            ignore_index=ignore, class_stats=stats),
                                 class_stats_path=config.class_stats) for loss in losses}


def _torch_version() -> str:
    import torch

    return torch.__version__
