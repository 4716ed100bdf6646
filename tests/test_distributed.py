"""aggregate="global" across DDP ranks (gloo on CPU): every rank's loss equals the single-process
loss on the concatenated batch, and after DDP's gradient averaging every gradient equals the
single-process gradient."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import seglosses.torch as sl
from seglosses import triton as kernels

C = 4


def _batch(n_total, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_total, C, 6, 5, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, C, (n_total, 6, 5), generator=g)
    y[y == 3] = 2  # class 3 absent everywhere but in the last image
    y[-1, 0, 0] = 3
    y[:, -1] = 255  # an ignored row in every image
    return x, y


def _scenarios(world):
    """(split sizes, indices of images whose pixels are all ignored)."""
    if world == 2:
        return [([1, 3], []), ([2, 2], [0, 1])]
    return [([2, 1, 2], [2]), ([2, 0, 3], [])]  # one rank wholly ignored; one rank empty


LOSSES = {
    "dice": lambda agg: lambda x, y: sl.dice_loss(x, y, ignore_index=255, aggregate=agg),
    "tversky_weighted": lambda agg: lambda x, y: sl.tversky_loss(
        x, y, ignore_index=255, aggregate=agg, alpha=0.3, beta=0.7, gamma=1.5,
        class_weights="median_frequency"),
    "jaccard_exclude": lambda agg: lambda x, y: sl.jaccard_loss(
        x, y, ignore_index=255, aggregate=agg, absent="exclude", include_background=False),
    "dice_ce_weighted": lambda agg: lambda x, y: sl.dice_ce_loss(
        x, y, ignore_index=255, aggregate=agg, class_weights="inverse_frequency",
        label_smoothing=0.1),
    "ce_weighted": lambda agg: lambda x, y: sl.cross_entropy(
        x, y, ignore_index=255, class_weights="log_inverse",
        aggregate="global" if agg == "global" else "batch"),
    "compound": lambda agg: lambda x, y: sl.CompoundLoss([
        (0.5, sl.FocalLoss(ignore_index=255, aggregate="global" if agg == "global"
                           else "batch")),
        (1.0, sl.DiceLoss(ignore_index=255, aggregate=agg))])(x, y),
    "bce_dice_multilabel": lambda agg: lambda x, y: sl.dice_ce_loss(
        x, torch.nn.functional.one_hot(y.clamp(max=C - 1), C).movedim(-1, 1).double(),
        mode="multilabel", aggregate=agg, class_weights="balanced",
        mask=(y != 255).double()),
}


if kernels.available() and kernels.interpreting():
    # the kernels' path: statistics from the stats pass and the fused CE's sum cross ranks
    LOSSES.update({
        "dice_ce_triton": lambda agg: lambda x, y: sl.dice_ce_loss(
            x, y, ignore_index=255, aggregate=agg, class_weights="inverse_frequency",
            impl="triton"),
        "ce_triton": lambda agg: lambda x, y: sl.cross_entropy(
            x, y, ignore_index=255, class_weights="median_frequency", impl="triton",
            aggregate="global" if agg == "global" else "batch"),
        "focal_multilabel_triton": lambda agg: lambda x, y: sl.focal_loss(
            x, torch.nn.functional.one_hot(y.clamp(max=C - 1), C).movedim(-1, 1).double(),
            mode="multilabel", gamma=1.5, mask=(y != 255).double(), impl="triton",
            aggregate="global" if agg == "global" else "batch"),
    })


def _split(tensor, sizes, rank):
    start = sum(sizes[:rank])
    return tensor[start:start + sizes[rank]]


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        results = {}
        for number, (sizes, ignored) in enumerate(_scenarios(world)):
            x, y = _batch(sum(sizes), seed=number)
            y[ignored] = 255
            local_x, local_y = _split(x, sizes, rank), _split(y, sizes, rank)
            for name, make in LOSSES.items():
                xr = local_x.clone().requires_grad_()
                value = make("global")(xr, local_y)
                (value * 1.7).backward()
                results[(number, name)] = (value.detach(), xr.grad)
        results["ddp"] = _ddp_step(rank, world)
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(results, f)
    finally:
        dist.destroy_process_group()


def _model():
    torch.manual_seed(0)
    return torch.nn.Conv2d(3, C, 3, padding=1).double()


def _ddp_data(world):
    g = torch.Generator().manual_seed(5)
    images = torch.randn(5, 3, 8, 8, generator=g, dtype=torch.float64)
    labels = torch.randint(0, C, (5, 8, 8), generator=g)
    labels[1] = 255
    sizes = [2, 3] if world == 2 else [2, 1, 2]
    return images, labels, sizes


def _ddp_loss(logits, labels):
    return sl.dice_ce_loss(logits, labels, ignore_index=255, aggregate="global",
                           class_weights="median_frequency")


def _ddp_step(rank, world):
    """One DDP backward on uneven shards: the averaged parameter gradients."""
    images, labels, sizes = _ddp_data(world)
    model = torch.nn.parallel.DistributedDataParallel(_model())
    loss = _ddp_loss(model(_split(images, sizes, rank)), _split(labels, sizes, rank))
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("world", [2, 3])
def test_global_aggregate_equals_single_process(world, tmp_path):
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world,
             join=True)
    ranks = []
    for rank in range(world):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as f:
            ranks.append(pickle.load(f))

    for number, (sizes, ignored) in enumerate(_scenarios(world)):
        x, y = _batch(sum(sizes), seed=number)
        y[ignored] = 255
        for name, make in LOSSES.items():
            full = x.clone().requires_grad_()
            expected = make("batch")(full, y)
            (expected * 1.7).backward()
            for rank in range(world):
                value, grad = ranks[rank][(number, name)]
                assert torch.isfinite(value), (name, rank)
                torch.testing.assert_close(value, expected.detach(), msg=f"{name} rank {rank}")
                # DDP averages gradients over ranks: grad / world is the single-process one
                torch.testing.assert_close(grad / world, _split(full.grad, sizes, rank),
                                           msg=f"{name} gradient, rank {rank}")

    images, labels, _ = _ddp_data(world)
    model = _model()
    expected = _ddp_loss(model(images), labels)
    expected.backward()
    for rank in range(world):
        value, grads = ranks[rank]["ddp"]
        torch.testing.assert_close(value, expected.detach())
        for got, want in zip(grads, [p.grad for p in model.parameters()], strict=True):
            torch.testing.assert_close(got, want, msg=f"DDP parameter gradient, rank {rank}")


def test_global_without_a_process_group_is_batch():
    x, y = _batch(3)
    assert not dist.is_initialized()
    for make in LOSSES.values():
        torch.testing.assert_close(make("global")(x, y), make("batch")(x, y))
