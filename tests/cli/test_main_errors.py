"""The command line never shows a traceback: every broken run file, bad option value and bad
mask ends in one line on stderr, exit 1 for a data error (naming the file) and exit 2 for a
usage error (naming the option)."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from seglosses.cli.main import main

SHALLOW = ["--size", "32", "--num-images", "6", "--val-split", "0.34", "--batch-size", "2",
           "--width", "4", "--device", "cpu", "-q"]
TINY = [*SHALLOW, "--depth", "2"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    return run


def _break_last(run):
    (run / "last.pt").write_bytes(np.random.default_rng(0).bytes(200))


def _truncate_last(run):
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])


def _empty_last(run):
    (run / "last.pt").write_bytes(b"")


def _best_over_last(run):
    shutil.copy(run / "best.pt", run / "last.pt")


def _torn_config(run):
    (run / "config.json").write_text("{")


def _config_without_key(run):
    data = json.loads((run / "config.json").read_text())
    del data["config"]
    (run / "config.json").write_text(json.dumps(data))


def _config_with_bad_value(run):
    data = json.loads((run / "config.json").read_text())
    data["config"]["epochs"] = "many"
    (run / "config.json").write_text(json.dumps(data))


def _no_metrics(run):
    (run / "metrics.jsonl").unlink()


@pytest.mark.parametrize("damage, named", [
    (_break_last, "last.pt"), (_truncate_last, "last.pt"), (_empty_last, "last.pt"),
    (_best_over_last, "last.pt"), (_torn_config, "config.json"),
    (_config_without_key, "config.json"), (_config_with_bad_value, "config.json"),
    (_no_metrics, "metrics.jsonl"),
])
def test_a_damaged_run_folder_is_a_data_error_naming_the_file(finished_run, tmp_path, damage,
                                                              named, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    assert main(["train", "--resume", str(run), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(run / named) in err and "--overwrite" in err, err


@pytest.mark.parametrize("argv, option", [
    (["train", "--loss", "bce(pos_weight=2)"], "--loss"),
    (["train", "--loss", "focal(alpha=[1,2])", "--num-classes", "3"], "--loss"),
    (["train", "--loss", "1e400*ce"], "--loss"),
    (["train", "--weight-decay", "-1"], "--weight-decay"),
    (["compare", "--losses", "ce;ce"], "--losses"),
    (["compare", "--losses", "ce,dice"], "--losses"),
    (["train", "--depth", "5"], "--depth"),
])
def test_bad_option_values_are_usage_errors_naming_the_option(argv, option, tmp_path, capsys):
    argv = [*argv, *(SHALLOW if "--depth" in argv else TINY)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {option}" in err or f"error: argument {option}" in err, err
    assert "Traceback" not in err, err
    assert not (tmp_path / "out" / "metrics.jsonl").exists()  # refused before training


def test_the_depth_error_names_the_image_size(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", *SHALLOW, "--depth", "5", "--out", str(tmp_path / "out")])
    assert "32x32" in capsys.readouterr().err


def test_a_malformed_palette_is_a_usage_error(files, tmp_path, capsys):
    for text in ("[[1, 2]]", '{"red": 1}', "[1, 2, 3]", '{"1,2,3": "one"}'):
        palette = files.raw("palette.json", text.encode())
        with pytest.raises(SystemExit) as exit_info:
            main(["scan", str(tmp_path), "--palette", str(palette)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--palette" in err and "palette.json" in err and "Traceback" not in err, err


def test_a_huge_label_is_a_bad_file_not_a_memory_error(files, capsys):
    files.npy("masks/good.npy", np.array([[0, 1], [2, 1]], dtype=np.int64))
    files.npy("masks/huge.npy", np.array([[0, 2**40], [1, 1]], dtype=np.int64))
    assert main(["scan", str(files.root / "masks"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "huge.npy" in err and "1099511627776" in err, err
    assert main(["scan", str(files.root / "masks"), "--skip-bad", "-q"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 bad file(s)" in out and "huge.npy" in out


def test_masks_holding_255_without_ignore_index_are_refused(files, tmp_path, capsys, rng):
    for index in range(4):
        files.png(f"data/images/i{index}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
        mask = rng.integers(0, 3, (16, 16)).astype(np.uint8)
        mask[:2] = 255
        files.png(f"data/masks/i{index}.png", mask)
    argv = ["train", "--data", str(files.root / "data"), "--epochs", "1", "--batch-size", "2",
            "--width", "4", "--depth", "2", "--device", "cpu", "-q"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "252 of 256 classes" in err and "--ignore-index" in err, err
    assert main([*argv, "--ignore-index", "255", "--out", str(tmp_path / "b")]) == 0


def test_an_unexpected_error_is_one_line(monkeypatch, tmp_path, capsys):
    def broken(*args, **kwargs):
        raise KeyError("something we did not foresee")

    monkeypatch.setattr("seglosses.cli.train.train", broken)
    monkeypatch.delenv("SEGLOSSES_TRACEBACK", raising=False)
    assert main(["train", *TINY, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "Traceback" not in err
    monkeypatch.setenv("SEGLOSSES_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(["train", *TINY, "--out", str(tmp_path / "out")])


# ------------------------------------------------------------------ the run folder


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path, capsys):
    from seglosses.cli.runs import RunLock

    out = tmp_path / "run"
    with RunLock(out):  # another run holds the folder
        assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 1
        assert f"{out} is in use by another run (process {os.getpid()})" in \
            capsys.readouterr().err
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert not (out / ".lock").exists()


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_epoch_1(finished_run,
                                                                         tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    for name in ("last.pt", "best.pt", "result.json", "predictions.npz"):
        (run / name).unlink()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "torn')
    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert "starts again from epoch 1" in capsys.readouterr().err
    assert [json.loads(line)["epoch"] for line in
            (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_compare_resume_restarts_a_run_that_never_checkpointed(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", *TINY, "--epochs", "1", "--losses", "ce;dice", "--out", str(out)]
    assert main(argv) == 0
    stranded = next((out / "runs").glob("*dice*/seed-0"))
    for name in ("last.pt", "best.pt", "result.json"):
        (stranded / name).unlink()
    (out / "results.json").unlink()
    assert main([*argv, "--resume"]) == 0
    assert (stranded / "result.json").is_file()


def test_a_run_on_folder_data_resumes_from_another_directory(files, make_masks, tmp_path,
                                                             monkeypatch, rng):
    for index, mask in enumerate(make_masks(6, shape=(16, 16), ignore=None)):
        files.png(f"data/images/i{index}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
        files.png(f"data/masks/i{index}.png", mask)
    monkeypatch.chdir(files.root)
    argv = ["--epochs", "1", "--batch-size", "2", "--width", "4", "--depth", "2", "--device",
            "cpu", "-q"]
    assert main(["train", "--data", "data", *argv, "--out", "run"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(files.root / "run"), "--epochs", "2", "-q"]) == 0


def test_resume_with_fewer_epochs_than_trained_is_a_usage_error(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "-q"]) == 0
    config = (run / "config.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", str(run), "--epochs", "1", "-q"])
    assert exit_info.value.code == 2
    assert "--epochs: must be at least the 2 epochs" in capsys.readouterr().err
    assert (run / "config.json").read_text() == config  # nothing rewritten


def test_stale_temporary_files_are_removed(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (run / ".notes.tmp").write_text("not ours")
    assert main(["train", "--resume", str(run), "--epochs", "2", "-q"]) == 0
    assert not (run / ".last.pt.x1y2.tmp").exists() and (run / ".notes.tmp").exists()


def test_a_diverging_run_stops_with_exit_1(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "3", "--lr", "1e12", "--loss", "ce",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "the run diverged" in err and "Lower --lr (it was 1e+12)" in err, err
    assert re.search(r"not finite at epoch \d/3, step \d", err), err


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "never"
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(out), "-q"]) == 1
    assert not out.exists()


def test_compare_ranks_the_losses_that_trained_and_names_the_one_that_diverged(tmp_path,
                                                                              capsys):
    out = tmp_path / "cmp"
    # 3e38 * CE overflows float32 at the first step: that loss diverges, ce trains
    assert main(["compare", *TINY, "--epochs", "1", "--losses", "ce;3e38*ce",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    ranked = [line.split()[1] for line in text.splitlines()[1:] if line.split()[:1] and
              line.split()[0].isdigit()]
    assert ranked == ["ce"], text
    assert "3e38*ce: diverged, not ranked (seed 0: " in text and "step 1" in text
    results = json.loads((out / "results.json").read_text())
    assert [row["loss"] for row in results["ranking"]] == ["ce"]
    assert "3e38*ce" in results["diverged"]
    assert "3e38*ce: diverged, not ranked" in (out / "report.md").read_text()
    assert "3e38*ce: diverged, not ranked" in (out / "report.html").read_text()
    assert main(["compare", *TINY, "--epochs", "1", "--losses", "3e38*ce;1e39*dice",
                 "--out", str(tmp_path / "all")]) == 1
    assert "every loss diverged" in capsys.readouterr().err
