"""Train a U-Net with any loss expression: ``train(TrainConfig(...)) -> RunResult``.

A run folder holds

* ``config.json`` — the :class:`TrainConfig`, the dataset it resolved to and the versions;
* ``metrics.jsonl`` — one JSON object per epoch (keys below);
* ``last.pt`` / ``best.pt`` — checkpoints, each written to a temporary file in the same folder,
  flushed to disk and renamed over the old one, so an interrupted run never leaves a torn file;
* ``curves.png`` — loss and metric curves; ``predictions.npz`` — the best model's predictions on
  the first validation images (the report's grid); ``result.json`` — the summary, once finished.

Per-epoch metrics come from one validation confusion matrix (torchmetrics, summed over every
rank under DDP): per-class IoU ``tp / (tp + fp + fn)`` and Dice ``2tp / (2tp + fp + fn)``. A
class that is neither in the validation labels nor predicted anywhere has no IoU or Dice: it is
``NaN`` in Python, ``null`` in the JSON files, and left out of the means. A class predicted but
absent from the labels scores 0. Ignored pixels count nowhere.

``resume`` continues a run exactly: model, optimizer, scheduler, AMP scaler, epoch, the RNG
states of torch, NumPy and Python (each rank's own under DDP), and the data order (a function of
``seed`` and the epoch), so an interrupted run resumed ends with the same numbers as one never
interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._spec import check_ignore_index
from .config import RESUMABLE, TrainConfig, UsageError
from .runs import (
    CONFIG_FORMAT,
    FORMAT_VERSION,
    RUN_FILES,
    RunLock,
    append_metrics,
    as_dict,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    dumps,
    nan_lists,
    npz_bytes,
    read_metrics,
    rewrite_metrics,
)

log = logging.getLogger("seglosses.cli")

CHECKPOINT_FORMAT = "seglosses.checkpoint"


@dataclass
class RunResult:
    """What :func:`train` returns (and ``result.json`` stores).

    ``history`` holds the ``metrics.jsonl`` records; ``best`` is the record of ``best_epoch``
    (highest validation mean IoU), ``last`` the final one. ``weights_sha256`` has one checksum of
    the final weights per process: under DDP they must all be equal.
    """

    run_dir: Path
    config: TrainConfig
    dataset: dict
    history: list[dict]
    best_epoch: int
    elapsed_s: float
    world_size: int = 1
    weights_sha256: list[str] = field(default_factory=list)
    device: str = "cpu"

    @property
    def best(self) -> dict:
        return next(r for r in self.history if r["epoch"] == self.best_epoch)

    @property
    def last(self) -> dict:
        return self.history[-1]

    def to_dict(self) -> dict:
        return {"run_dir": os.fspath(self.run_dir), "config": self.config.to_dict(),
                "dataset": self.dataset, "best_epoch": self.best_epoch, "best": self.best,
                "last": self.last, "elapsed_s": self.elapsed_s, "world_size": self.world_size,
                "weights_sha256": self.weights_sha256, "device": self.device}

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> RunResult:
        """Read a finished run back from its folder."""
        run_dir = Path(run_dir)
        path = run_dir / "result.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no result.json; the run did not finish (resume it "
                                    "with `seglosses train --resume RUN_DIR`)")
        data = json.loads(path.read_text(encoding="utf-8"), object_hook=nan_lists)
        return cls(run_dir, TrainConfig.from_dict(data["config"]), data["dataset"],
                   read_metrics(run_dir), data["best_epoch"], data["elapsed_s"],
                   data["world_size"], data["weights_sha256"], data.get("device", "cpu"))


# ---------------------------------------------------------------------------- entry point


def train(config: TrainConfig, *, progress: bool = True, label: str = "",
          on_epoch_end: Callable[[dict], None] | None = None) -> RunResult:
    """Train (or resume) one run and return its :class:`RunResult`.

    Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls this: the process group is
    initialised (gloo on the CPU, nccl on CUDA) unless it already is, the data is sharded with a
    ``DistributedSampler``, the model is wrapped in ``DistributedDataParallel``, the validation
    confusion matrix and losses are summed over ranks, and only rank 0 writes files.

    Args:
        config: the run's options.
        progress: show tqdm progress bars (on stderr, rank 0 only).
        label: a prefix for the progress bars and logs (``compare`` names the loss).
        on_epoch_end: called with each epoch's record after its checkpoint is on disk.

    Raises:
        ValueError, FileNotFoundError: bad options or data (the CLI exits with status 1).
    """
    from .data import build_datasets
    from .expr import parse_loss
    from .unet import UNet

    started = time.perf_counter()
    elapsed_before = 0.0
    run_dir = Path(config.resume or config.out)
    config = _resolved_paths(config)
    with distributed(config.device) as (rank, world, device), \
            (RunLock(run_dir) if rank == 0 else contextlib.nullcontext()):
        if device.type == "cuda":  # this run's own peak, not an earlier run's in the process
            torch.cuda.reset_peak_memory_stats(device)
        saved = _prepare_run_dir(run_dir, config, rank, world)
        if saved is not None:
            elapsed_before = saved.get("elapsed_s", 0.0)
        train_ds, val_ds, info = build_datasets(
            config.data, dims=config.dims, num_classes=config.num_classes, size=config.size,
            val_split=config.val_split, seed=config.data_seed, ignore_index=config.ignore_index,
            crop=config.crop, num_images=config.num_images, palette=config.palette,
            folds=config.folds, fold=config.fold)
        if len(val_ds) == 0:
            raise ValueError(f"train: the data {config.data!r} has no validation image; "
                             "raise --val-split or add a val/ folder.")
        num_classes = info.num_classes
        ignore = info.ignore_index if info.ignore_index is not None else config.ignore_index
        dataset = as_dict(info)
        stats = None
        if config.class_stats is not None:
            from ..stats import ClassStats

            stats = ClassStats.from_json(config.class_stats)
        try:
            loss_fn = parse_loss(config.loss, num_classes=num_classes, ignore_index=ignore,
                                 class_stats=stats).to(device)
        except (TypeError, ValueError) as error:
            raise UsageError("--loss", str(error)) from None
        _check_depth(config.depth, train_ds, val_ds)

        _seed_everything(config.seed)  # identical initial weights on every rank
        model = UNet(info.in_channels, num_classes, dims=config.dims, base_width=config.width,
                     depth=config.depth, norm=config.norm).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                      weight_decay=config.weight_decay)
        epochs = config.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: _lr_factor(config.scheduler, e, epochs))
        amp = config.amp and device.type == "cuda"
        if config.amp and not amp:
            log.warning("--amp needs CUDA; training in float32 on %s", device)
        scaler = torch.amp.GradScaler(device.type, enabled=amp)
        _seed_everything(config.seed + 1009 * rank)  # each rank its own augmentation stream

        history: list[dict] = []
        best_epoch, best_miou, start_epoch = 0, -math.inf, 0
        if saved is not None:
            start_epoch, best_epoch, best_miou = _restore(saved, model, optimizer, scheduler,
                                                          scaler, rank, world)
            history = [r for r in read_metrics(run_dir) if r["epoch"] <= start_epoch]
            if [r["epoch"] for r in history] != list(range(1, start_epoch + 1)):
                raise ValueError(f"train: {run_dir / 'metrics.jsonl'} lacks epochs of the "
                                 f"checkpoint (it has {len(history)} of {start_epoch}); the "
                                 "run cannot be resumed. Start it again with --overwrite.")
            if rank == 0:
                rewrite_metrics(run_dir, history)  # drop records newer than the checkpoint
                log.info("%sresuming %s at epoch %d/%d", _prefix(label), run_dir,
                         start_epoch + 1, epochs)
        if rank == 0 and (saved is None or config.epochs != saved["config"]["epochs"]):
            _write_config(run_dir, config, dataset, world if saved is None else
                          saved.get("world_size", 1))

        wrapped = model
        if world > 1:
            wrapped = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        train_loader, val_loader, sampler = _loaders(train_ds, val_ds, config, rank, world,
                                                     device)
        metric = _confusion_matrix(max(num_classes, 2), device)
        show = progress and rank == 0

        for epoch in range(start_epoch, epochs):
            epoch_started = time.perf_counter()
            sampler.set_epoch(epoch)
            _set_epoch(train_ds, epoch)  # the folder data's random crops
            header = f"{_prefix(label)}epoch {epoch + 1}/{epochs}"
            lr = optimizer.param_groups[0]["lr"]
            train_started = time.perf_counter()
            seen = torch.zeros(max(num_classes, 2) + 1, dtype=torch.int64, device=device)
            train_sums = _train_epoch(wrapped, loss_fn, optimizer, scaler, train_loader, device,
                                      amp, config.steps_per_epoch, show, header, seen)
            train_seconds = time.perf_counter() - train_started  # the sums synced the device
            if world > 1:  # BatchNorm statistics: keep rank 0's, as DDP's next forward would
                for buffer in model.buffers():
                    torch.distributed.broadcast(buffer, src=0)
            scheduler.step()
            val_sums, matrix = _validate(model, loss_fn, val_loader, metric, device, amp,
                                         ignore, show, header)
            record = _record(epoch + 1, lr, train_sums, val_sums, matrix, loss_fn,
                             time.perf_counter() - epoch_started)
            record["train_steps"] = round(train_sums["steps"] / world)  # per process
            if world > 1:
                torch.distributed.all_reduce(seen)
            record["train_class_pixels"] = seen[:-1].tolist()  # this epoch's crops
            record["train_time_s"] = train_seconds
            record["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device) \
                if device.type == "cuda" else None
            history.append(record)
            # the first epoch is always a "best", so best.pt exists even if no mIoU is defined
            improved = best_epoch == 0 or (record["val_mean_iou"] is not None
                                           and record["val_mean_iou"] > best_miou)
            if improved:
                best_epoch = epoch + 1
                best_miou = record["val_mean_iou"] if record["val_mean_iou"] is not None \
                    else -math.inf
            rng = _gather_rng_states(world)
            if rank == 0:
                append_metrics(run_dir, record)
                state = {"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION,
                         "epoch": epoch + 1, "model": model.state_dict(),
                         "num_classes": num_classes, "in_channels": info.in_channels,
                         "config": config.to_dict(), "metrics": record}
                if improved:
                    atomic_save(state, run_dir / "best.pt")
                atomic_save({**state, "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                             "best_epoch": best_epoch, "best_mean_iou": best_miou,
                             "rng": rng, "world_size": world,
                             "elapsed_s": elapsed_before + time.perf_counter() - started},
                            run_dir / "last.pt")
                _write_curves(run_dir, history)
                log.info("%s  %s%s", header, _summary(record), "  *best" if improved else "")
            if on_epoch_end is not None:
                on_epoch_end(record)

        checksums = _gather_checksums(model, world)
        if len(set(checksums)) != 1:
            raise RuntimeError(f"train: the {world} ranks ended with different weights "
                               f"(sha256 {checksums}); DDP did not keep them in sync.")
        elapsed = elapsed_before + time.perf_counter() - started
        result = RunResult(run_dir, config, dataset, history, best_epoch, elapsed, world,
                           checksums, _device_text(device))
        if rank == 0:
            _write_predictions(run_dir, model, val_ds, config.preview, device, amp)
            atomic_write_text(run_dir / "result.json", dumps(result.to_dict()))
        if world > 1:
            torch.distributed.barrier()
        return result


def _check_depth(depth: int, *datasets) -> None:
    """Each of ``depth`` poolings halves the image: the bottleneck must keep 2 pixels per axis
    (normalisation needs more than one value), so --depth is a usage error when it does not."""
    for dataset in datasets:
        if len(dataset):
            size = tuple(dataset[0][1].shape)  # the mask: the image's spatial size
            bottom = tuple(-(-s // 2**depth) for s in size)
            if min(bottom) < 2:
                deepest = max(1, int(math.log2(min(size))) - 1)
                raise UsageError("--depth", f"{depth} pools {'x'.join(map(str, size))} images "
                                 f"down to {'x'.join(map(str, bottom))}; at most {deepest} "
                                 "fits (each level halves the size, and the deepest needs 2 "
                                 "pixels per axis).")


# ---------------------------------------------------------------------------- one epoch


def _train_epoch(model, loss_fn, optimizer, scaler, loader, device, amp, max_steps, show,
                 header, seen) -> dict:
    """Run one epoch; return float64 sums (weighted by batch size) of the loss and its terms.
    ``seen`` (C + 1 bins) counts the training pixels of each class; its last bin the ignored
    and invalid ones (a scatter, no host sync)."""
    from tqdm.auto import tqdm

    model.train()
    total = len(loader) if max_steps is None else min(max_steps, len(loader))
    sums = {"images": torch.zeros((), dtype=torch.float64, device=device),
            "loss": torch.zeros((), dtype=torch.float64, device=device),
            "steps": torch.zeros((), dtype=torch.float64, device=device)}
    bar = tqdm(total=total, desc=f"{header} train", leave=False, disable=not show,
               dynamic_ncols=True)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # no sync per step
    with bar:
        for step, (images, masks) in enumerate(loader):
            if step == total:
                break
            images = images.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            labels = masks.flatten()
            other = seen.numel() - 1
            seen.scatter_add_(0, torch.where((labels >= 0) & (labels < other), labels, other),
                              torch.ones_like(labels))
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                logits = model(images)
            loss = loss_fn(logits.float() if amp else logits, masks)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            count = images.shape[0]
            sums["images"] += count
            sums["steps"] += 1
            sums["loss"] += loss.detach().double() * count
            for name, value in loss_fn.last_values.items():
                term = sums.setdefault(f"term:{name}",
                                       torch.zeros((), dtype=torch.float64, device=device))
                term += value.double() * count
            bar.update()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()),
                                    step, first_bad)
            if step % 10 == 0 or step == total - 1:  # a host sync, so not every step
                _stop_if_diverged(int(first_bad), header, optimizer)
                if show:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
    return _all_reduce(sums)


class Diverged(ValueError):
    """The training loss became NaN or infinite: the run stops (exit 1) instead of training on."""


def _stop_if_diverged(first_bad: int, header: str, optimizer) -> None:
    if first_bad >= 0:
        group = optimizer.param_groups[0]
        lr = group.get("initial_lr", group["lr"])  # --lr, before the schedule
        raise Diverged(f"train: the training loss is not finite at {header.strip()}, step "
                       f"{first_bad + 1}: the run diverged. Lower --lr (it was {lr:g}) or "
                       "check the loss's options; last.pt holds the last good epoch.")


@torch.no_grad()
def _validate(model, loss_fn, loader, metric, device, amp, ignore, show, header):
    from tqdm.auto import tqdm

    model.eval()
    metric.reset()
    ignored = check_ignore_index("train", ignore)
    sums = {"images": torch.zeros((), dtype=torch.float64, device=device),
            "loss": torch.zeros((), dtype=torch.float64, device=device)}
    num_classes = metric.num_classes
    for images, masks in tqdm(loader, desc=f"{header} val", leave=False, disable=not show,
                              dynamic_ncols=True):
        images = images.to(device, non_blocking=True)
        masks = masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = model(images)
        logits = logits.float()
        loss = loss_fn(logits, masks)
        count = images.shape[0]
        sums["images"] += count
        sums["loss"] += loss.double() * count
        for name, value in loss_fn.last_values.items():
            term = sums.setdefault(f"term:{name}",
                                   torch.zeros((), dtype=torch.float64, device=device))
            term += value.double() * count
        valid = (masks >= 0) & (masks < num_classes)
        if ignored:
            valid &= ~torch.isin(masks, torch.tensor(ignored, device=device))
        metric.update(predict(logits)[valid], masks[valid])
    matrix = metric.compute()  # torchmetrics sums the matrix over ranks under DDP
    return _all_reduce(sums), matrix.to(torch.float64).cpu().numpy()


def predict(logits: torch.Tensor) -> torch.Tensor:
    """Labels from logits ``(N, C, *S)``: the argmax, or ``logit > 0`` for one channel."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)


def _confusion_matrix(num_classes: int, device):
    from torchmetrics.classification import MulticlassConfusionMatrix

    return MulticlassConfusionMatrix(num_classes, validate_args=False).to(device)


def class_metrics(matrix: np.ndarray) -> dict:
    """Per-class IoU, Dice, precision and recall, the means, and pixel accuracy of a confusion
    matrix.

    ``matrix[t, p]`` counts pixels of label ``t`` predicted as ``p``. Classes with no label and
    no prediction are ``nan`` and left out of the means; precision is ``nan`` for a class never
    predicted, recall for a class never labelled.

    >>> m = class_metrics(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    >>> [round(v, 3) for v in m["iou"][:2]], math.isnan(m["iou"][2]), round(m["mean_iou"], 3)
    ([0.75, 0.667], True, 0.708)
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    fp = matrix.sum(0) - tp
    fn = matrix.sum(1) - tp
    union = tp + fp + fn
    defined = union > 0
    iou = np.full(tp.shape, np.nan)
    dice = np.full(tp.shape, np.nan)
    iou[defined] = tp[defined] / union[defined]
    dice[defined] = 2 * tp[defined] / (union[defined] + tp[defined])
    predicted, labelled = tp + fp, tp + fn
    precision = np.divide(tp, predicted, out=np.full(tp.shape, np.nan), where=predicted > 0)
    recall = np.divide(tp, labelled, out=np.full(tp.shape, np.nan), where=labelled > 0)
    total = matrix.sum()
    return {"iou": iou.tolist(), "dice": dice.tolist(), "precision": precision.tolist(),
            "recall": recall.tolist(),
            "mean_iou": float(iou[defined].mean()) if defined.any() else math.nan,
            "mean_dice": float(dice[defined].mean()) if defined.any() else math.nan,
            "pixel_accuracy": float(tp.sum() / total) if total > 0 else math.nan,
            "class_pixels": [int(n) for n in matrix.sum(1)]}


def _record(epoch, lr, train_sums, val_sums, matrix, loss_fn, seconds) -> dict:
    def mean(sums, key):
        return float(sums[key] / sums["images"]) if sums["images"] > 0 else math.nan

    metrics = class_metrics(matrix)
    names = list(loss_fn.weights)
    return {
        "epoch": epoch, "lr": lr,
        "train_loss": mean(train_sums, "loss"),
        "train_terms": {n: mean(train_sums, f"term:{n}") for n in names},
        "val_loss": mean(val_sums, "loss"),
        "val_terms": {n: mean(val_sums, f"term:{n}") for n in names},
        "val_iou": metrics["iou"], "val_dice": metrics["dice"],
        "val_precision": metrics["precision"], "val_recall": metrics["recall"],
        "val_mean_iou": _finite_or_none(metrics["mean_iou"]),
        "val_mean_dice": _finite_or_none(metrics["mean_dice"]),
        "val_pixel_accuracy": metrics["pixel_accuracy"],
        "val_class_pixels": metrics["class_pixels"],
        "time_s": seconds,
    }


def _summary(record: dict) -> str:
    terms = ", ".join(f"{k} {v:.4f}" for k, v in record["train_terms"].items())
    terms = f" ({terms})" if len(record["train_terms"]) > 1 else ""
    miou = record["val_mean_iou"]
    return (f"train loss {record['train_loss']:.4f}{terms}  val loss {record['val_loss']:.4f}  "
            f"mIoU {miou if miou is None else format(miou, '.4f')}  "
            f"acc {record['val_pixel_accuracy']:.4f}  {record['time_s']:.1f}s")


def _lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / epochs))


# ---------------------------------------------------------------------------- data


def _set_epoch(dataset, epoch: int) -> None:
    while dataset is not None:  # through Subset wrappers
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        dataset = getattr(dataset, "dataset", None)


def _loaders(train_ds, val_ds, config, rank, world, device):
    from torch.utils.data import DataLoader, DistributedSampler

    # One sampler for 1 or K processes: the order is a function of (seed, epoch), so a resumed
    # run sees the same batches as an uninterrupted one.
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    common = {"num_workers": config.num_workers, "pin_memory": device.type == "cuda",
              "persistent_workers": False}
    train_loader = DataLoader(train_ds, batch_size=config.batch_size, sampler=sampler,
                              drop_last=False, **common)
    # validation: every image exactly once over all ranks (no padding duplicates)
    val_loader = DataLoader(val_ds, batch_size=config.batch_size,
                            sampler=list(range(rank, len(val_ds), world)), **common)
    return train_loader, val_loader, sampler


# ---------------------------------------------------------------------------- distributed


@contextlib.contextmanager
def distributed(device_name: str):
    """Yield ``(rank, world_size, device)``; set up torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1, _device(device_name, None)
        return
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(device_name, local_rank)
    owner = not dist.is_initialized()
    if owner:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if rank != 0:  # one voice: the other ranks only report problems
        log.setLevel(max(log.getEffectiveLevel(), logging.WARNING))
    try:
        yield rank, dist.get_world_size(), device
    finally:
        if owner:
            dist.destroy_process_group()


def _device(name: str, local_rank: int | None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("train: device must be a CUDA device that exists; got "
                             f"{name!r} but torch.cuda.is_available() is False. Use --device cpu.")
        if name == "cuda":
            return torch.device("cuda", local_rank or 0)
    return torch.device(name)


def _device_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _all_reduce(sums: dict) -> dict:
    """Sum the tensors of ``sums`` over ranks (same keys on every rank, in the same order)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        names = sorted(sums)
        stacked = torch.stack([sums[n] for n in names])
        torch.distributed.all_reduce(stacked)
        return {n: float(v) for n, v in zip(names, stacked.tolist(), strict=True)}
    return {n: float(v) for n, v in sums.items()}


def _gather_rng_states(world: int) -> list:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    if world == 1:
        return [state]
    states: list = [None] * world
    torch.distributed.all_gather_object(states, state)
    return states


def _gather_checksums(model: nn.Module, world: int) -> list[str]:
    checksum = state_dict_sha256(model.state_dict())
    if world == 1:
        return [checksum]
    checksums: list = [None] * world
    torch.distributed.all_gather_object(checksums, checksum)
    return checksums


def state_dict_sha256(state: dict) -> str:
    """A checksum of a state dict's names and tensor bytes (equal bytes ⇔ equal weights)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------- files


def _prepare_run_dir(run_dir: Path, config: TrainConfig, rank: int, world: int) -> dict | None:
    """Check the folder against ``resume``/``overwrite``; return the checkpoint to resume."""
    checkpoint = _check_run_dir(run_dir, config)
    if world > 1:  # every rank has looked at the folder before rank 0 changes it
        torch.distributed.barrier()
    if rank == 0:
        for stale in run_dir.glob(".*.tmp"):  # left by a process killed mid-write
            if any(stale.name.startswith(f".{name}.") for name in RUN_FILES):
                stale.unlink(missing_ok=True)
    if rank == 0 and checkpoint is None:
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (run_dir / name).unlink()
    return checkpoint


def _resolved_paths(config: TrainConfig) -> TrainConfig:
    """The data folder and class statistics as absolute paths: a run resumes from anywhere."""
    data = config.data if config.data == "synthetic" else os.path.abspath(config.data)
    stats = None if config.class_stats is None else os.path.abspath(config.class_stats)
    return dataclasses.replace(config, data=data, class_stats=stats)


def _check_run_dir(run_dir: Path, config: TrainConfig) -> dict | None:
    if config.resume:
        saved_config = _resolved_paths(TrainConfig.from_run(run_dir))
        changed = [f"{name} ({getattr(saved_config, name)!r} -> {getattr(config, name)!r})"
                   for name in (f.name for f in dataclasses.fields(TrainConfig))
                   if name not in RESUMABLE
                   and getattr(saved_config, name) != getattr(config, name)]
        if changed:
            raise ValueError(f"train: a resumed run must keep its options; got changes to "
                             f"{', '.join(changed)}. Only epochs, device, num_workers and "
                             "preview may change.")
        if not (run_dir / "last.pt").is_file():
            log.warning("resume: %s stopped before its first checkpoint; it starts again from "
                        "epoch 1", run_dir)
            return None
        checkpoint = _load_checkpoint(run_dir / "last.pt")
        if config.epochs < checkpoint["epoch"]:
            raise UsageError("--epochs", f"must be at least the {checkpoint['epoch']} epochs "
                                         f"{run_dir} has trained; got {config.epochs}")
        if config.epochs != saved_config.epochs and config.scheduler == "cosine":
            log.warning("resume: epochs %d -> %d stretches the cosine schedule from here on",
                        saved_config.epochs, config.epochs)
        return checkpoint
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not config.overwrite:
        raise ValueError(f"train: out must be a new or empty run folder; {os.fspath(run_dir)!r} "
                         f"already holds {', '.join(existing)}. Pass --resume {run_dir} to "
                         "continue it, or --overwrite to start again.")
    return None


# What last.pt holds beyond best.pt's weights: a resume needs all of it.
_RESUME_KEYS = ("epoch", "model", "optimizer", "scheduler", "scaler", "best_epoch",
                "best_mean_iou", "rng")


def _load_checkpoint(path: Path) -> dict:
    """The resume checkpoint at ``path``; a ``ValueError`` naming the file when it is torn,
    empty, foreign or a weights-only ``best.pt``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a broken file
        raise ValueError(f"train: {path} cannot be read ({type(error).__name__}: {error}); the "
                         "run cannot be resumed. Start it again with --overwrite.") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"train: {path} is not a seglosses checkpoint.")
    missing = [key for key in _RESUME_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"train: {path} lacks {', '.join(missing)} (a best.pt holds the "
                         "weights only); the run cannot be resumed. Start it again with "
                         "--overwrite.")
    return checkpoint


def _restore(checkpoint, model, optimizer, scheduler, scaler, rank, world):
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    states = checkpoint["rng"]
    if len(states) != world:
        log.warning("resume: the run had %d process(es), this one %d; the data order is kept "
                    "but augmentation draws differ", len(states), world)
    state = states[rank % len(states)]
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs than the run had
            torch.cuda.set_rng_state_all(state["cuda"])
    return checkpoint["epoch"], checkpoint["best_epoch"], checkpoint["best_mean_iou"]


def _write_config(run_dir: Path, config: TrainConfig, dataset: dict, world: int) -> None:
    import seglosses

    atomic_write_text(run_dir / "config.json", dumps({
        "format": CONFIG_FORMAT, "version": FORMAT_VERSION, "config": config.to_dict(),
        "dataset": dataset, "world_size": world,
        "versions": {"seglosses": seglosses.__version__, "torch": torch.__version__}}))


def _write_curves(run_dir: Path, history: list[dict]) -> None:
    from .report import curves_figure, figure_png

    atomic_write_bytes(run_dir / "curves.png", figure_png(curves_figure(history)))


@torch.no_grad()
def _write_predictions(run_dir: Path, model, val_ds, count: int, device, amp) -> None:
    """The best model's predictions on the first ``count`` validation images (2-D slices)."""
    count = min(count, len(val_ds))
    if count == 0:
        return
    best = torch.load(run_dir / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best["model"])
    model.eval()
    images, masks, preds = [], [], []
    for index in range(count):
        image, mask = val_ds[index]
        image = torch.as_tensor(image)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = model(image.unsqueeze(0).to(device))
        pred = predict(logits.float())[0].cpu()
        image, mask = image.numpy(), np.asarray(mask)
        if image.ndim == 4:  # 3-D: the middle slice along the first spatial axis
            middle = image.shape[1] // 2
            image, mask, pred = image[:, middle], mask[middle], pred[middle]
        images.append(image.astype(np.float32))
        masks.append(mask.astype(np.int64))
        preds.append(pred.numpy().astype(np.int64))
    buffer = npz_bytes(images=np.stack(images), masks=np.stack(masks), preds=np.stack(preds),
                        epoch=np.array(best["epoch"]))
    atomic_write_bytes(run_dir / "predictions.npz", buffer)


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` that never leaves a torn file: temp file, fsync, ``os.replace``."""
    atomic_write(path, lambda file: torch.save(obj, file))


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _prefix(label: str) -> str:
    return f"[{label}] " if label else ""
