"""The command line end to end, in process: ``main([...])`` for every command, help texts,
exit statuses (0 ok, 1 data error, 2 usage), stdout for results and stderr for the rest."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seglosses.cli.main import main
from seglosses.stats import ClassStats

TINY = ["--size", "32", "--num-images", "6", "--val-split", "0.34", "--batch-size", "2",
        "--width", "4", "--depth", "2", "--device", "cpu"]
COMMANDS = ["scan", "train", "compare", "demo", "bench"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_exits_0_and_shows_examples(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    example = f"seglosses {command or 'demo'}"
    assert example in text, text


@pytest.mark.parametrize("argv, message", [
    ([], "required: COMMAND"),
    (["fly"], "invalid choice: 'fly'"),
    (["train", "--epochs", "0"], "expected a positive int"),
    (["train", "--loss", "ce+nonsense"], "--loss"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["bench", "--shape", "8"], "expected N,C,H,W"),
    (["compare", "--seeds", "a,b"], "--seeds"),
    (["scan"], "the following arguments are required: masks"),
    (["train", "--resume", "runs/x", "--loss", "dice"], "only --epochs, --device"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"run: {out}")
    assert "best epoch 1/1: val mean IoU" in captured.out and "background" in captured.out
    assert "epoch 1/1" in captured.err and "mIoU" in captured.err  # logs on stderr
    assert "epoch" not in captured.out.split("\n", 2)[2].split("files:")[0]

    assert main(["train", "--resume", str(out), "--epochs", "2", "-q"]) == 0
    captured = capsys.readouterr()
    assert "best epoch" in captured.out  # --quiet: no bars, no logs; warnings only
    assert captured.err == "resume: epochs 1 -> 2 stretches the cosine schedule from here on\n"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_train_data_errors_exit_1(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r"),
                 "-q"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "none"), "-q"]) == 1
    assert "config.json" in capsys.readouterr().err


def test_compare_prints_the_ranking_and_the_report(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *TINY, "--epochs", "1", "--losses", "ce;dice", "--out", str(out),
                 "-q"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["rank", "loss", "val"]
    assert {line.split()[1] for line in text.splitlines()[1:3]} == {"ce", "dice"}
    assert f"report: {out / 'report.html'}" in text
    assert (out / "report.md").is_file() and (out / "results.json").is_file()


def test_demo_runs_with_small_overrides(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--size", "32", "--num-images", "6", "--width", "4", "--depth", "2",
            "--epochs", "1", "--device", "cpu", "--losses", "ce;focal", "--out", str(out), "-q"]
    assert main(argv) == 0
    assert main(argv) == 0  # the demo rewrites its own folder
    text = capsys.readouterr().out
    assert "focal" in text and str(out / "report.html") in text
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["lr"] == 3e-3 and data["config"]["folds"] == 3
    assert data["dataset"]["num_train"] == 4  # 3 folds of 6 images: 2 validate, 4 train


@pytest.fixture
def bad_mask_folder(files, rng):
    for index in range(3):
        files.png(f"masks/m{index}.png", rng.integers(0, 3, (8, 8)).astype(np.uint8))
    files.raw("masks/broken.png", b"not a png at all")
    return files.root / "masks"


def test_scan_names_the_bad_file_or_skips_it(bad_mask_folder, tmp_path, capsys):
    assert main(["scan", str(bad_mask_folder), "-q"]) == 1
    assert "broken.png" in capsys.readouterr().err

    stats_path = tmp_path / "stats.json"
    assert main(["scan", str(bad_mask_folder), "--skip-bad", "--json", str(stats_path),
                 "-q"]) == 0
    text = capsys.readouterr().out
    assert "skipped 1 bad file(s)" in text and "broken.png" in text
    stats = ClassStats.from_json(stats_path)
    assert stats.num_images == 3 and stats.num_classes == 3


def test_train_reads_scan_statistics(tmp_path, capsys):
    stats = ClassStats((9000, 900, 90, 9, 9, 9, 9), (6, 6, 6, 6, 6, 6, 6), 0, 6)
    path = tmp_path / "stats.json"
    stats.to_json(path)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--loss", "ce(class_weights=inverse_frequency)",
                 "--class-stats", str(path), "--out", str(out), "-q"]) == 0
    weights = json.loads((out / "config.json").read_text())["config"]["class_stats"]
    assert weights == str(path)


def test_bench_prints_a_table(capsys, tmp_path):
    results = tmp_path / "bench.json"
    assert main(["bench", "--shape", "1,3,8,8", "--repeat", "1", "--device", "cpu",
                 "--no-memory", "--json", str(results), "-q"]) == 0
    text = capsys.readouterr().out
    assert "| shape" in text and "torch F.cross_entropy" in text and "anchor" in text
    rows = json.loads(results.read_text())["rows"]
    timed = {r["name"] for r in rows if "median_ms" in r}
    assert {"torch F.cross_entropy", "seglosses.cross_entropy", "seglosses.dice_loss",
            "seglosses.dice_ce_loss", "seglosses.focal_loss"} <= timed
    triton = [r for r in rows if r["name"].endswith("[triton]")]
    assert triton and all("skipped" in r for r in triton)  # no CUDA here


def test_bench_measures_cpu_memory_in_a_fresh_process():
    from seglosses.cli.bench import _memory_in_fresh_process

    peak = _memory_in_fresh_process("seglosses.cross_entropy", (2, 4, 64, 64), "float32")
    assert isinstance(peak, float) and peak >= 0.0


def test_python_dash_m_seglosses(tmp_path):
    done = subprocess.run([sys.executable, "-m", "seglosses", "--version"], capture_output=True,
                          text=True, env={"PYTHONPATH": SRC, "PATH": ""}, check=False)
    assert done.returncode == 0 and done.stdout.startswith("seglosses ")


# Modules the command line must not import for help or a scan: torch alone costs seconds.
HEAVY = ("torch", "matplotlib", "scipy", "torchmetrics")


@pytest.mark.parametrize("argv", [["--help"], *([command, "--help"] for command in COMMANDS),
                                  ["scan", "MASKS", "--json", "STATS"]])
def test_help_and_scan_import_no_torch(argv, files, make_masks, tmp_path):
    for index, mask in enumerate(make_masks(3)):
        files.png(f"masks/m{index}.png", mask)
    argv = [str(files.root / "masks") if a == "MASKS" else str(tmp_path / "s.json")
            if a == "STATS" else a for a in argv]
    code = ("import sys\nfrom seglosses.cli.main import main\n"
            f"try:\n    status = main({argv!r})\nexcept SystemExit as exit:\n"
            "    status = exit.code\n"
            f"print(status, sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": SRC, "PATH": ""}, check=False)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout[-500:] + done.stderr[-2000:]


def _examples() -> list[str]:
    """Every ``seglosses ...`` command line the README and the --help texts show."""
    from seglosses.cli.main import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"(?:^|&& |`)(seglosses [^`\n&]*)", readme, flags=re.M)
    parser = build_parser()
    texts = [parser.epilog] + [sub.epilog for sub in parser.commands.values()]
    lines += [match for text in texts
              for match in re.findall(r"^\s+(?:torchrun .*?-m )?(seglosses [^#\n]*)", text,
                                      flags=re.M)]
    # synopses ("seglosses scan MASKS [--num-classes C]", "seglosses COMMAND --help") are not
    # examples
    return sorted({line.strip() for line in lines if "[" not in line and "COMMAND" not in line})


@pytest.mark.parametrize("example", _examples())
def test_every_documented_command_line_parses(example, tmp_path, monkeypatch):
    from seglosses.cli.main import build_parser

    monkeypatch.chdir(tmp_path)
    (tmp_path / "palette.json").write_text('{"0,0,0": 0, "255,0,0": 1}')  # read at parse time
    argv = shlex.split(example)[1:]
    build_parser().parse_args(argv)  # argparse exits 2 on a wrong example


def test_the_examples_cover_every_command():
    assert {shlex.split(e)[1] for e in _examples()} == set(COMMANDS)


def test_compare_with_folds_trains_every_loss_on_every_fold(tmp_path, capsys):
    out = tmp_path / "cv"
    argv = ["compare", "--size", "32", "--num-images", "6", "--batch-size", "2", "--width", "4",
            "--depth", "2", "--device", "cpu", "--epochs", "1", "--losses", "ce;dice",
            "--folds", "2", "--out", str(out), "-q"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "No clear winner" in text, text  # two runs per loss never name a winner
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["folds"] == 2
    assert {tuple(k) for row in results["ranking"] for k in row["run_keys"]} == {(0, 0), (1, 0)}
    assert sorted(p.relative_to(out).as_posix() for p in (out / "runs").glob("*/fold-*/*")) == [
        "runs/01-ce/fold-0/seed-0", "runs/01-ce/fold-1/seed-0", "runs/02-dice/fold-0/seed-0",
        "runs/02-dice/fold-1/seed-0"]
    assert main([*argv[:-5], "--folds", "9", "--out", str(tmp_path / "x"), "-q"]) == 1
    assert "folds must be an int in [2, 6]" in capsys.readouterr().err
