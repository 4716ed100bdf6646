"""``train``: the run folder, exact resume, metrics, atomic files, folder data, binary runs."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from seglosses.cli.config import TrainConfig
from seglosses.cli.runs import RUN_FILES, dumps, read_metrics
from seglosses.cli.train import RunResult, atomic_save, class_metrics, state_dict_sha256, train

TINY = dict(data="synthetic", size=32, num_images=6, val_split=0.34, batch_size=2, width=4,
            depth=2, device="cpu", preview=2)


def tiny(tmp_path: Path, name: str = "run", **options) -> TrainConfig:
    return TrainConfig(**{**TINY, "out": str(tmp_path / name), **options})


def _numbers(records: list[dict]) -> list[dict]:
    """Records without their wall-clock times, NaN (an undefined per-class value) as None so
    that two records with the same undefined values compare equal."""
    return [json.loads(dumps({k: v for k, v in r.items() if k not in ("time_s", "train_time_s")}))
            for r in records]


def test_a_two_step_run_writes_every_file(tmp_path):
    config = tiny(tmp_path, num_images=5, val_split=0.2, epochs=1, loss="0.5*ce+dice")
    result = train(config, progress=False)

    run = Path(config.out)
    assert sorted(p.name for p in run.iterdir()) == sorted(RUN_FILES)  # no temp files left
    last = torch.load(run / "last.pt", weights_only=False)
    steps = {int(s["step"]) for s in last["optimizer"]["state"].values()}
    assert steps == {2}  # 4 training images, batch 2: two optimiser steps
    assert last["epoch"] == 1 and len(last["rng"]) == 1

    (record,) = read_metrics(run)
    assert record["epoch"] == 1 and set(record["train_terms"]) == {"ce", "dice"}
    assert record["train_loss"] == pytest.approx(
        0.5 * record["train_terms"]["ce"] + record["train_terms"]["dice"], rel=1e-6)
    assert len(record["val_iou"]) == len(record["val_dice"]) == 7
    assert sum(record["val_class_pixels"]) == 32 * 32  # one validation image, every pixel
    assert 0.0 <= record["val_pixel_accuracy"] <= 1.0

    saved = json.loads((run / "config.json").read_text())
    assert TrainConfig.from_dict(saved["config"]) == config
    assert saved["dataset"]["num_classes"] == 7 and saved["dataset"]["num_val"] == 1
    with np.load(run / "predictions.npz") as preview:
        assert preview["images"].shape == (1, 1, 32, 32)
        assert preview["masks"].shape == preview["preds"].shape == (1, 32, 32)
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    loaded = RunResult.load(run)
    assert loaded.best_epoch == result.best_epoch == 1
    assert loaded.weights_sha256 == result.weights_sha256
    assert state_dict_sha256(last["model"]) == result.weights_sha256[0]


def _rng_fingerprint() -> tuple:
    """The global RNG states, read without drawing (the data loaders draw from torch's)."""
    return (torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate())


def test_an_interrupted_run_resumed_equals_an_uninterrupted_one(tmp_path):
    states = {"whole": {}, "resumed": {}}
    whole = train(tiny(tmp_path, "whole", epochs=3), progress=False,
                  on_epoch_end=lambda r: states["whole"].__setitem__(r["epoch"],
                                                                     _rng_fingerprint()))

    def interrupt(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    cut = tiny(tmp_path, "cut", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cut, progress=False, on_epoch_end=interrupt)
    run = Path(cut.out)
    assert len(read_metrics(run)) == 2 and not (run / "result.json").exists()
    # a crash between the metrics line and the checkpoint leaves a record to drop on resume
    with open(run / "metrics.jsonl", "a") as file:
        file.write(json.dumps({"epoch": 3, "train_loss": 0.0}) + "\n")

    torch.manual_seed(1234)  # whatever the process did meanwhile: resume restores the RNGs
    resumed = train(TrainConfig.from_run(run), progress=False,
                    on_epoch_end=lambda r: states["resumed"].__setitem__(r["epoch"],
                                                                         _rng_fingerprint()))

    assert _numbers(read_metrics(run)) == _numbers(read_metrics(whole.run_dir))
    assert _numbers(resumed.history) == _numbers(whole.history)
    assert resumed.weights_sha256 == whole.weights_sha256
    assert resumed.best_epoch == whole.best_epoch
    (torch_whole, numpy_whole, python_whole), (torch_resumed, numpy_resumed, python_resumed) = \
        states["whole"][3], states["resumed"][3]
    assert torch.equal(torch_whole, torch_resumed)
    assert np.array_equal(numpy_whole, numpy_resumed) and python_whole == python_resumed
    assert not torch.equal(states["whole"][1][0], torch_whole)  # the loaders do draw


def test_a_finished_run_can_be_extended(tmp_path):
    first = train(tiny(tmp_path, epochs=1, scheduler="constant"), progress=False)
    longer = train(TrainConfig.from_run(first.run_dir, epochs=2), progress=False)
    assert [r["epoch"] for r in read_metrics(first.run_dir)] == [1, 2]
    assert longer.config.epochs == 2
    saved = json.loads((first.run_dir / "config.json").read_text())
    assert saved["config"]["epochs"] == 2


def test_existing_runs_are_never_overwritten_silently(tmp_path):
    config = tiny(tmp_path, epochs=1)
    train(config, progress=False)
    with pytest.raises(ValueError, match="--resume .* or --overwrite"):
        train(config, progress=False)
    again = train(dataclasses.replace(config, overwrite=True), progress=False)
    assert len(again.history) == 1 and len(read_metrics(config.out)) == 1


def test_resume_refuses_changed_options_and_missing_runs(tmp_path):
    result = train(tiny(tmp_path, epochs=1), progress=False)
    changed = dataclasses.replace(TrainConfig.from_run(result.run_dir), loss="dice")
    with pytest.raises(ValueError, match=r"loss \('ce\+dice' -> 'dice'\)"):
        train(changed, progress=False)
    with pytest.raises(FileNotFoundError, match="config.json"):
        TrainConfig.from_run(tmp_path / "nothing")


@pytest.mark.parametrize("options, message", [
    ({"epochs": 0}, "epochs must be a positive int"),
    ({"device": "tpu"}, "device must be"),
    ({"dims": 4}, "dims must be 2 or 3"),
    ({"scheduler": "step"}, "scheduler must be"),
    ({"val_split": 1.0}, r"val_split must lie in \[0, 1\)"),
])
def test_config_checks(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_data_errors_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="existing folder"):
        train(tiny(tmp_path, data=str(tmp_path / "missing")), progress=False)
    with pytest.raises(ValueError, match="no validation image"):
        train(tiny(tmp_path, val_split=0.0), progress=False)


def test_class_metrics_leave_undefined_classes_out():
    # class 2: predicted, never labelled -> IoU 0; class 3: neither -> undefined (NaN)
    matrix = np.array([[5, 1, 1, 0], [0, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    metrics = class_metrics(matrix)
    assert metrics["iou"][:3] == pytest.approx([5 / 7, 3 / 4, 0.0])
    assert metrics["dice"][:3] == pytest.approx([10 / 12, 6 / 7, 0.0])
    assert math.isnan(metrics["iou"][3]) and math.isnan(metrics["dice"][3])
    assert metrics["mean_iou"] == pytest.approx((5 / 7 + 3 / 4) / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(8 / 10)
    assert json.loads(dumps(metrics))["iou"][3] is None  # strict JSON: NaN is written null


def test_undefined_values_round_trip_through_metrics_jsonl(tmp_path):
    result = train(tiny(tmp_path, epochs=1), progress=False)
    result.history[0]["val_iou"][6] = math.nan  # as train() records an undefined class
    (result.run_dir / "metrics.jsonl").write_text(dumps(result.history[0], indent=None) + "\n")
    assert '"val_iou": [' in (result.run_dir / "metrics.jsonl").read_text()
    assert json.loads((result.run_dir / "metrics.jsonl").read_text())["val_iou"][6] is None
    assert math.isnan(read_metrics(result.run_dir)[0]["val_iou"][6])


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save({"epoch": 2, "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_folder_data_with_an_ignore_label(tmp_path, grey_folder):
    root, masks = grey_folder  # 6 pairs of 12x10, labels 0..3 and 255
    config = tiny(tmp_path, data=str(root), ignore_index=255, crop=8, epochs=1,
                  loss="ce+dice", size=None, num_images=None)
    result = train(config, progress=False)
    assert result.dataset["num_classes"] == 4
    record = result.last
    valid = sum(int(((m != 255)[2:10, 1:9]).sum()) for m in [masks[i] for i in _val(result)])
    assert sum(record["val_class_pixels"]) == valid  # centred 8x8 crops of 12x10, ignored out


def _val(result) -> list[int]:
    # the validation images of the seeded split (build_datasets' permutation)
    order = np.random.default_rng(result.config.data_seed).permutation(6).tolist()
    return sorted(order[:result.dataset["num_val"]])


def test_a_binary_run_has_one_output_channel(tmp_path):
    result = train(tiny(tmp_path, num_classes=1, loss="bce+dice", epochs=1), progress=False)
    last = torch.load(result.run_dir / "last.pt", weights_only=False)
    assert last["model"]["head.weight"].shape[0] == 1
    assert len(result.last["val_iou"]) == 2  # background and foreground
    with np.load(result.run_dir / "predictions.npz") as preview:
        assert set(np.unique(preview["preds"])) <= {0, 1}
