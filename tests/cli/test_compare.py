"""``compare`` and its report: every section, every number, ranking and resume."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from seglosses.cli.compare import (
    compare,
    parse_losses,
    parse_seeds,
    rank_losses,
    run_folder_name,
)
from seglosses.cli.config import TrainConfig
from seglosses.cli.report import format_mean_std, summary_sentence, text_table
from seglosses.cli.train import RunResult

TINY = dict(data="synthetic", size=32, num_images=6, val_split=0.34, batch_size=2, width=4,
            depth=2, device="cpu", preview=2, epochs=2)
LOSSES = ["ce", "ce+dice"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("compare")
        config = TrainConfig(**TINY, out=str(out))
        return compare(config, LOSSES, [0, 1], progress=False)
    finally:
        torch.set_num_threads(threads)


def test_every_run_has_its_folder(compared):
    assert list(compared.runs) == LOSSES
    for position, loss in enumerate(LOSSES):
        for seed, result in zip([0, 1], compared.runs[loss], strict=True):
            assert result.run_dir == compared.out / "runs" / run_folder_name(position, loss) / \
                f"seed-{seed}"
            assert result.config.loss == loss and result.config.seed == seed
            assert (result.run_dir / "best.pt").is_file()
    # the seeds change the weights, not the data
    first, second = compared.runs["ce"]
    assert first.weights_sha256 != second.weights_sha256
    assert first.last["val_class_pixels"] == second.last["val_class_pixels"]


def test_the_ranking_is_sorted_with_mean_and_std_over_seeds(compared):
    rows = compared.ranking
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["mean_iou"] >= rows[1]["mean_iou"]
    for row in rows:
        per_seed = [r.best["val_mean_iou"] for r in compared.runs[row["loss"]]]
        assert row["mean_iou"] == pytest.approx(sum(per_seed) / 2)
        assert row["mean_iou_std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
        assert len(row["class_iou"]) == 7


def test_report_markdown_has_every_section(compared):
    text = compared.report["markdown"].read_text()
    for heading in ("# seglosses compare", "## Ranking by validation mean IoU",
                    "## Per-class IoU", "## Curves", "## Validation predictions"):
        assert heading in text
    assert "| rank | loss | val mIoU |" in text and " ± " in text
    assert "| share of val pixels |" in text  # how rare each class is, above its IoU
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (compared.out / image).is_file(), image
    assert {p.name for p in (compared.out / "figures").iterdir()} == \
        {"iou_bars.png", "curves.png", "predictions.png"}


def test_report_html_is_self_contained(compared):
    page = compared.report["html"].read_text()
    assert '<table id="ranking">' in page and '<table id="class-iou">' in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 3 + len(LOSSES)  # bars, curves, predictions + each loss's curves
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page and "http" not in page
    for section in ("figure-iou_bars", "figure-curves", "figure-predictions"):
        assert f'id="{section}"' in page


def test_results_json_holds_every_number(compared):
    data = json.loads(compared.report["results"].read_text())
    assert data["format"] == "seglosses.CompareResult"
    assert data["losses"] == LOSSES and data["seeds"] == [0, 1]
    assert [r["loss"] for r in data["ranking"]] == [r["loss"] for r in compared.ranking]
    assert len(data["runs"]) == 4
    for run in data["runs"]:
        assert len(run["history"]) == 2 and "val_iou" in run["history"][0]
        assert run["best"]["epoch"] == run["best_epoch"]
    assert data["dataset"]["class_names"][0] == "background"
    assert data["descriptions"]["ce+dice"].startswith("cross-entropy")


def test_resume_reuses_finished_runs(compared):
    config = TrainConfig(**TINY, out=str(compared.out))
    with pytest.raises(ValueError, match="already holds a comparison"):
        compare(config, LOSSES, [0, 1], progress=False)
    again = compare(config, LOSSES, [0, 1], progress=False, resume=True)
    assert [r["mean_iou"] for r in again.ranking] == [r["mean_iou"] for r in compared.ranking]
    for loss in LOSSES:
        assert [len(r.history) for r in again.runs[loss]] == [2, 2]


def test_bad_arguments_fail_before_any_training(tmp_path):
    config = TrainConfig(**TINY, out=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="unknown|loss"):
        compare(config, ["ce", "nonsense_loss"], [0], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        compare(config, ["ce", "ce"], [0], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        compare(config, ["ce"], [1, 1], progress=False)
    assert not (tmp_path / "c").exists()


def test_parsers_and_names():
    assert parse_losses(" ce ; dice;;focal(gamma=2) ") == ["ce", "dice", "focal(gamma=2)"]
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    for bad in ("", "a", "-1"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="losses"):
        parse_losses(" ; ")
    assert run_folder_name(4, "tversky(alpha=0.3,beta=0.7)") == "05-tversky-alpha-0.3-beta-0.7"


def _fake(loss: str, seed: int, mious: list, class_iou: list) -> RunResult:
    history = [{"epoch": e + 1, "val_mean_iou": m, "val_iou": class_iou, "val_dice": class_iou,
                "val_mean_dice": m, "val_pixel_accuracy": 0.5, "val_loss": 1.0}
               for e, m in enumerate(mious)]
    defined = [m for m in mious if m is not None]
    best = 1 + mious.index(max(defined)) if defined else 1
    return RunResult(Path(f"/runs/{loss}/{seed}"), TrainConfig(loss=loss, seed=seed), {},
                     history, best, 10.0)


def test_rank_losses_handles_undefined_values():
    nan = math.nan
    runs = {
        "a": [_fake("a", 0, [0.2, 0.4], [0.5, nan]), _fake("a", 1, [0.6], [0.7, 0.1])],
        "b": [_fake("b", 0, [None], [nan, nan])],
        "c": [_fake("c", 0, [0.9], [0.9, 0.9])],
    }
    rows = rank_losses(runs)
    assert [r["loss"] for r in rows] == ["c", "a", "b"]
    a = rows[1]
    assert a["mean_iou"] == pytest.approx(0.5) and a["mean_iou_std"] == pytest.approx(0.1414, 1e-3)
    assert a["class_iou"] == pytest.approx([0.6, 0.1])  # NaN seeds left out per class
    assert rows[2]["mean_iou"] is None and rows[2]["class_iou"] == [None, None]
    assert rows[0]["mean_iou_std"] is None  # one seed: no spread
    assert format_mean_std(0.5, 0.1414) == "0.500 ± 0.141"
    assert format_mean_std(0.5, None) == "0.500" and format_mean_std(None, None) == "n/a"
    table = text_table(rows)
    assert table.splitlines()[0].startswith("rank  loss") and "n/a" in table
    # c has one run: its lead over a has no measured uncertainty, so no winner is named
    assert summary_sentence(rows).startswith(
        "No clear winner: c leads with validation mean IoU 0.900, but one run per loss "
        "cannot measure the uncertainty of its lead of 0.400 over a")


def test_each_loss_has_one_colour_in_every_chart():
    """The ranked bars and the curves (in the user's order) colour a loss the same way."""
    from matplotlib.colors import to_hex

    from seglosses.cli import report

    history = [{"epoch": 1, "val_mean_iou": 0.5, "train_loss": 1.0}]
    curves = report.comparison_curves_figure({"ce": history, "dice": history, "focal": history})
    bars = report.iou_bars_figure(
        [{"loss": name, "class_iou": [0.5, 0.4]} for name in ("focal", "dice", "ce")],
        ["background", "object"])
    line_colours = {line.get_label(): to_hex(line.get_color())
                    for line in curves.axes[0].get_lines()}
    bar_colours = {container.get_label(): to_hex(container.patches[0].get_facecolor())
                   for container in bars.axes[0].containers}
    assert line_colours == bar_colours
    assert len(set(line_colours.values())) == 3


def test_baselines_score_the_predictors_that_learn_nothing():
    from seglosses.cli.verdict import baselines

    scores = baselines([700, 0, 200, 100])  # class 1 absent from the validation set
    majority, prior = scores["majority"], scores["prior"]
    assert majority["class_iou"] == [pytest.approx(0.7), None, 0.0, 0.0]
    assert majority["mean_iou"] == pytest.approx(0.7 / 3)
    assert majority["pixel_accuracy"] == pytest.approx(0.7)
    expected = [f / (2 - f) for f in (0.7, 0.2, 0.1)]  # E[TP] / E[TP + FP + FN]
    assert prior["mean_iou"] == pytest.approx(sum(expected) / 3)
    assert prior["pixel_accuracy"] == pytest.approx(0.7**2 + 0.2**2 + 0.1**2)
    assert baselines([0, 0])["majority"]["mean_iou"] is None


def test_a_loss_that_does_not_beat_the_baselines_is_never_best():
    from seglosses.cli.verdict import baselines

    reference = baselines([700, 200, 100])  # majority class: mIoU 0.233
    runs = {"a": [_fake("a", 0, [0.2], [0.2, 0.2])], "b": [_fake("b", 0, [0.1], [0.1, 0.1])],
            "c": [_fake("c", 0, [0.3], [0.3, 0.3])]}
    rows = rank_losses(runs, reference)
    assert [(r["loss"], r["learned"]) for r in rows] == [("c", True), ("a", False),
                                                          ("b", False)]
    assert summary_sentence(rows, reference).startswith(
        "Best: c with validation mean IoU 0.300, the only loss that beat the baselines")
    del runs["c"]
    rows = rank_losses(runs, reference)
    sentence = summary_sentence(rows, reference)
    assert sentence.startswith("No clear winner: no loss beat the baselines (the majority "
                               "class everywhere: mIoU 0.233, pixel accuracy 0.700")
    assert "Best" not in sentence


def test_health_and_data_notes():
    from seglosses.cli.verdict import data_notes, health_notes

    row = {"best_epochs": [3, 2], "learned": False}
    notes = health_notes(row, epochs=3, steps_per_epoch=1)
    assert notes[0].startswith("1 optimiser step(s) per epoch, 3 in all")
    assert "still improving, train longer" in notes[1] and "did not learn" in notes[2]
    assert health_notes({"best_epochs": [2], "learned": True}, epochs=3,
                        steps_per_epoch=50) == []
    notes = data_notes(["bg", "small", "gone"], [10_000, 49, 0], num_val=2)
    assert notes == ["class small has 49 validation pixel(s): too few to rank the losses on it",
                     "class gone has no validation pixel: its IoU is not defined",
                     "2 validation image(s): differences between losses are mostly noise at "
                     "this size"]


def test_class_metrics_give_precision_and_recall():
    from seglosses.cli.train import class_metrics

    metrics = class_metrics(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    assert metrics["precision"][:2] == [1.0, pytest.approx(2 / 3)]
    assert metrics["recall"][:2] == [0.75, 1.0]
    assert math.isnan(metrics["precision"][2]) and math.isnan(metrics["recall"][2])


def _seeded(loss: str, mious: list[float]) -> list[RunResult]:
    return [_fake(loss, seed, [m], [m, m]) for seed, m in enumerate(mious)]


def test_the_verdict_pairs_the_runs_and_names_a_winner_only_beyond_the_noise():
    from seglosses.cli.verdict import decide

    clear = rank_losses({"a": _seeded("a", [0.60, 0.62, 0.61]),
                         "b": _seeded("b", [0.50, 0.53, 0.51])})
    verdict = decide(clear)
    assert verdict["winner"] == "a" and verdict["paired"]["runs"] == 3
    assert verdict["paired"]["mean"] == pytest.approx(0.0966667, 1e-5)
    assert summary_sentence(clear).startswith(
        "Best: a with validation mean IoU 0.610, 0.097 ahead of b (± 0.003, paired over 3 runs)")
    # the same means, but b wins one seed: the lead is within twice its standard error
    noisy = rank_losses({"a": _seeded("a", [0.70, 0.40, 0.73]),
                         "b": _seeded("b", [0.50, 0.56, 0.51])})
    assert decide(noisy)["winner"] is None
    assert "is within twice its standard error" in summary_sentence(noisy)


def test_folds_split_the_images_into_disjoint_validation_parts():
    from seglosses.cli.data import build_datasets

    seen = []
    for fold in range(3):
        train, val, info = build_datasets("synthetic", size=16, num_images=10, folds=3,
                                          fold=fold, seed=4)
        assert sorted(train.indices + val.indices) == list(range(10))
        assert info.num_val == len(val) in (3, 4)
        seen += val.indices
    assert sorted(seen) == list(range(10))  # every image validates exactly once
    with pytest.raises(ValueError, match=r"folds must be an int in \[2, 10\]"):
        build_datasets("synthetic", size=16, num_images=10, folds=11, fold=0)


def test_step_time_is_the_warm_epochs_median_and_rare_classes_are_marked():
    from seglosses.cli.compare import steady_step_time
    from seglosses.cli.report import _time_cell, marked_names

    history = [{"train_time_s": 10.0, "train_steps": 5}, {"train_time_s": 2.0, "train_steps": 4},
               {"train_time_s": 3.0, "train_steps": 4}, {"train_time_s": 9.0, "train_steps": 4}]
    assert steady_step_time(history) == pytest.approx(0.75)  # median of 0.5, 0.75, 2.25
    assert steady_step_time(history[:1]) == pytest.approx(2.0)
    assert steady_step_time([{"time_s": 1.0}]) is None  # a run from before these fields
    row = {"time_s": 12.4, "step_time_s": 0.0456, "peak_memory_bytes": 3 * 2**29}
    assert _time_cell(row) == "12 s, 46 ms/step, 1.50 GiB peak"
    assert marked_names(["bg", "a", "b", "gone"], [990, 9, 1, 0]) == ["bg", "a*", "b*", "gone"]
    assert marked_names(["bg"], None) == ["bg"]


def test_data_summary_gives_shares_imbalance_and_strategy_weights():
    from seglosses import class_weights_from_counts
    from seglosses.cli.verdict import data_summary

    summary = data_summary(["bg", "a", "b"], [900, 90, 10], [80, 15, 5])
    assert summary["imbalance_ratio"] == pytest.approx(90.0)
    assert summary["strategy_weights"]["median_frequency"] == pytest.approx(
        class_weights_from_counts([900, 90, 10], "median_frequency").tolist())
    assert set(summary["strategy_weights"]) == {"inverse_frequency", "inverse_sqrt_frequency",
                                                "median_frequency", "effective_number",
                                                "log_inverse"}
    assert data_summary(["bg"], [], [3])["strategy_weights"] == {}
