"""The options of one training run, :class:`TrainConfig` (``config.json`` stores it); NumPy-free
and torch-free, so the command line parses and checks options without importing torch."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .._spec import fail
from .runs import read_config


class UsageError(ValueError):
    """An option value found wrong only once the data is known (a loss that does not fit the
    classes, a network too deep for the images): the command line exits 2 naming ``option``."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option


# Options a resumed run may change; every other option must match the run's config.json.
RESUMABLE = ("epochs", "device", "num_workers", "resume", "out", "overwrite", "preview")


@dataclass
class TrainConfig:
    """Everything one training run depends on (``config.json`` stores it).

    Args:
        data: ``"synthetic"`` (built-in, generated on the fly) or a folder with ``images/`` and
            ``masks/`` (see :func:`seglosses.cli.data.build_datasets`).
        out: the run folder.
        loss: a loss expression (``"ce"``, ``"0.5*ce+dice"``, ``"focal(gamma=2)"``, ...).
        dims: 2 or 3 (3-D volumes and a 3-D U-Net).
        epochs: passes over the training set.
        batch_size: images per step (per process under DDP).
        crop: random-crop / patch size of training images (int or one int per axis).
        size: image size of the synthetic dataset (int or one int per axis).
        num_images: number of synthetic images (training + validation).
        lr: AdamW learning rate; ``weight_decay`` its decay.
        scheduler: ``"cosine"`` (per-epoch cosine decay to 0 over ``epochs``) or ``"constant"``.
        seed: seed of the weights' initialisation, the data order and augmentation.
        data_seed: seed of the data split and of the synthetic images; kept apart from ``seed``
            so that runs with several seeds see the same data.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        amp: float16 autocast with a gradient scaler (CUDA only; ignored on the CPU).
        val_split: fraction of the images held out when the data has no ``val/`` folder.
        ignore_index: a label whose pixels count in neither the loss nor the metrics.
        num_classes: C; inferred from the data when ``None``. C = 1 is a binary problem: one
            output channel, foreground where its logit is > 0.
        palette: for RGB masks, colours → classes: ``{"r,g,b": class}`` or a list of colours.
        class_stats: a ``ClassStats`` JSON file (``seglosses scan --json``): class-weight
            strategies in the loss then use the dataset's counts instead of each batch's.
        width, depth: the U-Net's base width (channels of the first level) and levels.
        norm: the U-Net's normalisation: ``"batch"``, ``"instance"``, ``"group"`` or ``"none"``.
        steps_per_epoch: stop each epoch after this many steps (``None``: the whole set).
        num_workers: data-loading processes.
        preview: validation images whose predictions are saved for the report.
        resume: a run folder to continue; see :meth:`from_run`.
        overwrite: start again in a folder that already holds a run (its run files are removed).
        folds, fold: cross-validation: with ``folds`` K > 1 the images are split into K parts
            and part ``fold`` validates (see :func:`seglosses.cli.data.build_datasets`).
    """

    data: str = "synthetic"
    out: str = "seglosses-run"
    loss: str = "ce+dice"
    dims: int = 2
    epochs: int = 10
    batch_size: int = 8
    crop: int | tuple[int, ...] | None = None
    size: int | tuple[int, ...] | None = None
    num_images: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    seed: int = 0
    data_seed: int = 0
    device: str = "auto"
    amp: bool = False
    val_split: float = 0.2
    ignore_index: int | None = None
    num_classes: int | None = None
    palette: dict | list | None = None
    class_stats: str | None = None
    width: int = 16
    depth: int = 3
    norm: str = "batch"
    steps_per_epoch: int | None = None
    num_workers: int = 0
    preview: int = 4
    resume: str | None = None
    overwrite: bool = False
    folds: int = 1
    fold: int = 0

    def __post_init__(self):
        function = "TrainConfig"
        for name in ("epochs", "batch_size", "width", "depth"):
            _positive_int(function, name, getattr(self, name))
        for name in ("steps_per_epoch", "num_images", "num_classes"):
            if getattr(self, name) is not None:
                _positive_int(function, name, getattr(self, name))
        _positive_int(function, "folds", self.folds)
        if isinstance(self.fold, bool) or not isinstance(self.fold, int) or \
                not 0 <= self.fold < self.folds:
            raise fail(function, "fold", f"be an int in [0, {self.folds})", repr(self.fold))
        for name in ("seed", "data_seed", "num_workers", "preview"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(function, name, "be a non-negative int", repr(value))
        if self.dims not in (2, 3):
            raise fail(function, "dims", "be 2 or 3", repr(self.dims))
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise fail(function, "device", "be 'auto', 'cpu', 'cuda' or 'cuda:N'",
                       repr(self.device))
        if self.norm not in ("batch", "instance", "group", "none"):
            raise fail(function, "norm", "be 'batch', 'instance', 'group' or 'none'",
                       repr(self.norm))
        if self.scheduler not in ("cosine", "constant"):
            raise fail(function, "scheduler", "be 'cosine' or 'constant'", repr(self.scheduler))
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise fail(function, "lr", "be a positive number", repr(self.lr))
        if not 0.0 <= float(self.val_split) < 1.0:
            raise fail(function, "val_split", "lie in [0, 1)", repr(self.val_split))
        for name in ("crop", "size"):  # JSON stores tuples as lists
            if isinstance(getattr(self, name), list):
                setattr(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, **overrides) -> TrainConfig:
        """The config stored in ``run_dir/config.json``, set to resume that run.

        ``overrides`` may change the options in ``RESUMABLE`` (e.g. ``epochs`` to extend a run);
        :func:`train` refuses any other change, since the run would no longer be one experiment.
        """
        data = read_config(Path(run_dir))
        try:
            config = cls.from_dict(data["config"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"train: {Path(run_dir) / 'config.json'} holds an invalid config "
                             f"({error}); the run cannot be resumed. Start it again with "
                             "--overwrite.") from None
        return dataclasses.replace(config, **overrides, resume=os.fspath(run_dir),
                                   out=os.fspath(run_dir), overwrite=False)


def _positive_int(function: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(function, name, "be a positive int", repr(value))
