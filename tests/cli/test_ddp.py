"""``torchrun --nproc-per-node 2 -m seglosses train`` on the CPU (gloo): the run finishes, rank 0
alone writes the files, the ranks end with identical weights, and the validation metrics cover
every validation image (summed over ranks). The loss aggregates its Dice statistics and CE
normaliser over the ranks (``aggregate=global``), as a multi-GPU user would train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seglosses.cli.runs import read_metrics
from seglosses.cli.train import class_metrics, predict, state_dict_sha256

SRC = str(Path(__file__).resolve().parents[2] / "src")
EPOCHS = 2


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "seglosses", "train", "--data", "synthetic",
               "--size", "32", "--num-images", "10", "--batch-size", "2", "--width", "4",
               "--depth", "2", "--epochs", str(EPOCHS), "--device", "cpu", "--out", str(out),
               "--loss", "ce(aggregate=global)+dice(aggregate=global)"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done


def test_rank_0_writes_each_file_once(ddp_run):
    out, done = ddp_run
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png", "predictions.npz",
         "result.json"])
    assert [r["epoch"] for r in read_metrics(out)] == list(range(1, EPOCHS + 1))
    assert done.stdout.count("run: ") == 1  # one summary, from rank 0
    assert done.stderr.count(f"epoch {EPOCHS}/{EPOCHS}  train loss") == 1
    assert json.loads((out / "config.json").read_text())["world_size"] == 2


def test_every_rank_ends_with_the_same_weights(ddp_run):
    out, _ = ddp_run
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2
    first, second = result["weights_sha256"]  # one checksum per rank, gathered at the end
    assert first == second
    last = torch.load(out / "last.pt", weights_only=False)
    assert state_dict_sha256(last["model"]) == first
    assert len(last["rng"]) == 2  # each rank's RNG state, for an exact resume


def test_validation_metrics_are_summed_over_ranks(ddp_run):
    from seglosses.cli.data import build_datasets
    from seglosses.cli.unet import UNet

    out, _ = ddp_run
    record = read_metrics(out)[-1]
    _, val, info = build_datasets("synthetic", size=32, num_images=10)
    assert info.num_val == 2  # one image per rank
    assert sum(record["val_class_pixels"]) == 2 * 32 * 32

    # one process, the saved weights, the whole validation set: the same numbers
    model = UNet(1, 7, base_width=4, depth=2)
    model.load_state_dict(torch.load(out / "last.pt", weights_only=False)["model"])
    model.eval()
    matrix = np.zeros((7, 7), dtype=np.int64)
    with torch.no_grad():
        for image, mask in val:
            pred = predict(model(image[None]))[0]
            np.add.at(matrix, (mask.numpy().ravel(), pred.numpy().ravel()), 1)
    expected = class_metrics(matrix)
    assert record["val_mean_iou"] == pytest.approx(expected["mean_iou"], abs=1e-9)
    assert record["val_pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"], abs=1e-9)
