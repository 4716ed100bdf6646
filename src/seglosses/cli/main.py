"""``seglosses``: the command line. Each subcommand parses its options and calls one importable
function (``scan_masks``, ``train``, ``compare``, ``run_benchmark``).

Results go to stdout, progress bars and logs to stderr. Exit status: 0 success, 1 a data or
file error (the message names the file or option), 2 a usage error (argparse's own), 130
interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Sequence

from .config import TrainConfig, UsageError

log = logging.getLogger("seglosses.cli")

DEMO_LOSSES = "ce;ce(class_weights=inverse_frequency);dice;ce+dice;focal"
# Demo defaults: 7 classes on 64×64 synthetic images, 3-fold cross-validation over 96 (64
# train / 32 val per fold), a width-16 U-Net of depth 3, 6 epochs: about the image-steps of
# one 128-image run of 8 epochs (a couple of minutes on a 2-core CPU for the five losses),
# and three paired runs per loss, so that the verdict can measure its uncertainty.
DEMO = {"data": "synthetic", "out": "seglosses-demo", "size": 64, "num_images": 96,
        "folds": 3, "epochs": 6, "batch_size": 8, "lr": 3e-3, "width": 16, "depth": 3}

_DESCRIPTION = """\
Segmentation losses on your data: scan a mask dataset, train a U-Net with any loss,
compare losses and get a report. Run `seglosses COMMAND --help` for the options and
examples of each command.
"""

_EPILOG = """\
examples:
  seglosses demo
  seglosses scan data/masks --ignore-index 255 --json stats.json
  seglosses train --data data/ --loss "0.5*ce+dice" --epochs 30 --out runs/dice-ce
  seglosses compare --data data/ --losses "ce;dice;ce+dice" --seeds 0,1,2

exit status: 0 ok, 1 data error, 2 usage error
"""

_LOSS_HELP = """\
loss expressions:
  terms       ce, bce, focal, dice, jaccard (or iou), tversky, focal_tversky, dice_ce
  options     focal(gamma=2), tversky(alpha=0.3,beta=0.7), ce(class_weights=median_frequency)
  weights     0.5*ce+dice, bce+dice, ce+0.5*jaccard
"""

_TRAIN_EPILOG = _LOSS_HELP + """
examples:
  # built-in synthetic data (7 classes), a 2-step smoke test
  seglosses train --data synthetic --epochs 1 --num-images 5 --batch-size 2 --out runs/smoke

  # your data: DATA/images/* and DATA/masks/* matched by file stem (or DATA/train, DATA/val)
  seglosses train --data DATA --crop 256 --ignore-index 255 --loss "ce+dice" --out runs/a

  # continue an interrupted run where it stopped (or extend it with --epochs)
  seglosses train --resume runs/a

  # 2 processes with DDP (gloo on the CPU, nccl on GPUs)
  torchrun --standalone --nproc-per-node 2 -m seglosses train --data DATA --out runs/ddp

writes RUN_DIR/config.json, metrics.jsonl (one line per epoch; null marks a per-class value
that is undefined because the class is in neither the labels nor the predictions),
best.pt, last.pt, curves.png, predictions.npz and result.json.
"""

_COMPARE_EPILOG = _LOSS_HELP + """
examples:
  seglosses compare --data DATA --losses "ce;ce(class_weights=inverse_frequency);dice;ce+dice"
  seglosses compare --data synthetic --losses "ce;focal(gamma=2)" --seeds 0,1,2 --epochs 10
  seglosses compare --data DATA --losses "ce;ce+dice" --folds 5 --epochs 20   # 5-fold CV
  seglosses compare --out seglosses-compare --resume      # continue an interrupted comparison

writes OUT/report.html (self-contained: open it in a browser), OUT/report.md,
OUT/results.json (every number) and one run folder per loss and seed under OUT/runs/.
"""

_DEMO_EPILOG = f"""\
The demo trains a small U-Net on the built-in synthetic dataset (7 shape classes of very
different sizes, 64x64 images; 3-fold cross-validation over 96 images, 6 epochs) with five
losses:
  {DEMO_LOSSES}
and prints the ranking, the verdict and the path of the report.

examples:
  seglosses demo
  seglosses demo --epochs 10 --seeds 0,1,2 --out my-demo
  seglosses demo --losses "ce;dice" --device cuda
"""

_SCAN_EPILOG = """\
examples:
  seglosses scan data/masks
  seglosses scan "data/**/*.png" --num-classes 5 --ignore-index 255 --workers 4
  seglosses scan data/ --skip-bad --json stats.json     # list unreadable files, keep going
  seglosses scan masks_rgb/ --palette palette.json      # {"r,g,b": class, ...}

prints per-class pixel counts and fractions, images containing each class, the imbalance
ratio, ignored pixels and the class weights of every strategy.
"""

_BENCH_EPILOG = """\
examples:
  seglosses bench
  seglosses bench --shape 8,19,256,256 --shape 2,4,64,64,64 --repeat 50
  seglosses bench --device cuda --dtype bfloat16 --json bench.json

times are the median forward + backward of one loss call; memory is the peak memory the
call adds on top of its inputs (CUDA allocator peak, or the resident set size of a fresh
process on the CPU).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


class _TqdmHandler(logging.Handler):
    """Log records to stderr through tqdm.write, so they do not break a progress bar."""

    def emit(self, record):
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _configure_logging(quiet: bool) -> None:
    if not any(isinstance(h, _TqdmHandler) for h in log.handlers):
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


# ---------------------------------------------------------------------------- option types


def _message(error: Exception) -> str:
    """An error's text for the command line: without the leading name of the function that
    raised it (``describe_loss: ``, ``train: ``), which means nothing to a user; a nested one
    (``--loss: parse_loss: ...``) loses it too."""
    return re.sub(r"^((?:--[\w-]+: )?)[A-Za-z_]\w*: ", r"\1", str(error))


def _size(text: str) -> int | tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected a positive int or ints like 64,64; got "
                                         f"{text!r}")
    return values[0] if len(values) == 1 else values


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (4, 5) or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected N,C,H,W or N,C,D,H,W (positive ints); got "
                                         f"{text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0; got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1); got {text!r}")
    return value


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def _loss(text: str) -> str:
    from .expr import describe_loss

    try:
        describe_loss(text)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(_message(error)) from None
    return text


def _losses(text: str) -> list[str]:
    from .compare import parse_losses

    try:
        losses = parse_losses(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(_message(error)) from None
    return [_loss(loss) for loss in losses]


def _seeds(text: str) -> list[int]:
    from .compare import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(_message(error)) from None


def _device(text: str) -> str:
    if text not in ("auto", "cpu", "cuda") and not text.startswith("cuda:"):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N; got {text!r}")
    return text


def _palette(path: str) -> dict | list:
    """A palette JSON file: ``{"r,g,b": class, ...}`` or ``[[r, g, b], ...]`` (position =
    class). Read and checked at parse time, so a missing or malformed file is a usage error."""
    from .readers import normalise_palette

    try:
        with open(path, encoding="utf-8") as file:
            palette = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise argparse.ArgumentTypeError(f"cannot read palette {path!r}: {error}") from None
    if not isinstance(palette, (dict, list)):
        raise argparse.ArgumentTypeError(f"palette {path!r} must hold a JSON object or list")
    try:
        normalise_palette(f"palette {path}", palette)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(_message(error)) from None
    return palette


def _decay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0; got {text!r}")
    return value


# ---------------------------------------------------------------------------- the parser


_DEFAULTS = TrainConfig()


def _default(name: str) -> str:
    return f" (default: {getattr(_DEFAULTS, name)})"


def _add_training_options(parser: argparse.ArgumentParser, *, demo: bool = False) -> None:
    """Training options; defaults are SUPPRESSed so ``train --resume`` sees what was typed."""
    S = argparse.SUPPRESS
    data = parser.add_argument_group("data")
    if not demo:
        data.add_argument("--data", default=S, metavar="DATA",
                          help="'synthetic' (built in) or a folder with images/ and masks/ "
                               "(or train/ and val/ holding those)" + _default("data"))
        data.add_argument("--dims", type=int, choices=(2, 3), default=S,
                          help="2-D images or 3-D volumes" + _default("dims"))
        data.add_argument("--num-classes", type=_positive, default=S, metavar="C",
                          help="number of classes (default: inferred from the masks)")
        data.add_argument("--ignore-index", type=int, default=S, metavar="LABEL",
                          help="label of pixels that count nowhere (e.g. 255)")
        data.add_argument("--palette", type=_palette, default=S, metavar="JSON",
                          help="RGB masks: a JSON file mapping \"r,g,b\" to a class")
        data.add_argument("--class-stats", default=S, metavar="JSON",
                          help="class counts from `seglosses scan --json`: class-weight "
                               "strategies in the loss use them instead of each batch's")
        data.add_argument("--crop", type=_size, default=S, metavar="SIZE",
                          help="random crop / patch size for training, e.g. 256 or 128,128")
        data.add_argument("--val-split", type=_fraction, default=S, metavar="F",
                          help="fraction held out for validation without a val/ folder"
                               + _default("val_split"))
    data.add_argument("--size", type=_size, default=S, metavar="SIZE",
                      help="synthetic image size, e.g. 96 or 32,32,32" +
                      (f" (default: {DEMO['size']})" if demo else " (default: 96)"))
    data.add_argument("--num-images", type=_positive, default=S, metavar="N",
                      help="synthetic images (train + val), or the first N of a folder" +
                      (f" (default: {DEMO['num_images']})" if demo else ""))
    data.add_argument("--data-seed", type=_non_negative, default=S, metavar="S",
                      help="seed of the split and the synthetic images" + _default("data_seed"))

    model = parser.add_argument_group("model and optimisation")
    defaults = DEMO if demo else {}
    model.add_argument("--width", type=_positive, default=S,
                       help="U-Net base width" + f" (default: {defaults.get('width', 16)})")
    model.add_argument("--depth", type=_positive, default=S,
                       help="U-Net down-sampling steps" +
                       f" (default: {defaults.get('depth', 3)})")
    model.add_argument("--norm", choices=("batch", "instance", "group", "none"), default=S,
                       help="U-Net normalisation" + f" (default: {defaults.get('norm', 'batch')})")
    model.add_argument("--epochs", type=_positive, default=S,
                       help=f"passes over the training set (default: "
                            f"{defaults.get('epochs', _DEFAULTS.epochs)})")
    model.add_argument("--batch-size", type=_positive, default=S,
                       help=f"images per step and process (default: "
                            f"{defaults.get('batch_size', _DEFAULTS.batch_size)})")
    model.add_argument("--lr", type=_learning_rate, default=S,
                       help=f"AdamW learning rate (default: {defaults.get('lr', _DEFAULTS.lr)})")
    model.add_argument("--weight-decay", type=_decay, default=S,
                       help="AdamW weight decay" + _default("weight_decay"))
    model.add_argument("--scheduler", choices=("cosine", "constant"), default=S,
                       help="learning-rate schedule over the epochs" + _default("scheduler"))
    model.add_argument("--steps-per-epoch", type=_positive, default=S, metavar="N",
                       help="stop each epoch after N steps (default: the whole set)")

    run = parser.add_argument_group("run")
    run.add_argument("--device", type=_device, default=S,
                     help="auto (CUDA when available), cpu, cuda or cuda:N" + _default("device"))
    run.add_argument("--amp", action="store_true", default=S,
                     help="float16 mixed precision (CUDA only)")
    run.add_argument("--num-workers", type=_non_negative, default=S, metavar="N",
                     help="data-loading processes" + _default("num_workers"))
    run.add_argument("--preview", type=_non_negative, default=S, metavar="N",
                     help="validation images whose predictions are kept" + _default("preview"))
    run.add_argument("--overwrite", action="store_true", default=S,
                     help="start again in a folder that already holds a run")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or logs on stderr (results still on stdout)")


def build_parser() -> argparse.ArgumentParser:
    """The ``seglosses`` argument parser (subcommands scan, train, compare, demo, bench)."""
    import seglosses

    parser = argparse.ArgumentParser(prog="seglosses", description=_DESCRIPTION,
                                     epilog=_EPILOG, formatter_class=_Formatter)
    parser.add_argument("--version", action="version",
                        version=f"seglosses {seglosses.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     title="commands")

    scan = commands.add_parser(
        "scan", help="class statistics and weights of a mask dataset", formatter_class=_Formatter,
        description="Stream a mask dataset (folder or glob; PNG/TIFF/NPY/NPZ, NIfTI with "
                    "nibabel) and print its class statistics.", epilog=_SCAN_EPILOG)
    scan.add_argument("masks", help="a folder (its masks/ subfolder if any), a glob pattern in "
                                    "quotes, or a file")
    scan.add_argument("--num-classes", type=_positive, metavar="C",
                      help="number of classes; labels >= C are errors (default: max label + 1)")
    scan.add_argument("--ignore-index", type=int, action="append", metavar="LABEL",
                      help="label to leave out of the counts (repeat for several)")
    scan.add_argument("--palette", type=_palette, metavar="JSON",
                      help="RGB masks: a JSON file mapping \"r,g,b\" to a class")
    scan.add_argument("--skip-bad", action="store_true",
                      help="list unreadable or inconsistent files and go on")
    scan.add_argument("--workers", type=_non_negative, default=0, metavar="N",
                      help="read files in N processes (default: 0, in this one)")
    scan.add_argument("--json", metavar="FILE",
                      help="also write the ClassStats as JSON (train and the library read it)")
    _add_common(scan)

    train = commands.add_parser(
        "train", help="train a U-Net with a loss expression", formatter_class=_Formatter,
        description="Train a U-Net (2-D, or 3-D with --dims 3) on --data with --loss.",
        epilog=_TRAIN_EPILOG)
    train.add_argument("--loss", type=_loss, default=argparse.SUPPRESS, metavar="EXPR",
                       help="loss expression (default: ce+dice)")
    train.add_argument("--out", default=argparse.SUPPRESS, metavar="RUN_DIR",
                       help="run folder" + _default("out"))
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the run in RUN_DIR with its own options (only "
                            "--epochs, --device, --num-workers, --preview may be given)")
    train.add_argument("--seed", type=_non_negative, default=argparse.SUPPRESS,
                       help="seed of weights, data order and augmentation" + _default("seed"))
    _add_training_options(train)
    _add_common(train)

    compare = commands.add_parser(
        "compare", help="train once per loss and seed, rank, write a report",
        formatter_class=_Formatter, epilog=_COMPARE_EPILOG,
        description="Train the same U-Net with each loss (and seed) and write a report ranked "
                    "by validation mean IoU.")
    compare.add_argument("--losses", type=_losses, default=DEMO_LOSSES.split(";"),
                         metavar="'A;B;...'", help=f"loss expressions separated by ';' "
                                                   f"(default: \"{DEMO_LOSSES}\")")
    compare.add_argument("--seeds", type=_seeds, default=[0], metavar="S,S,...",
                         help="training seeds; the table shows mean ± std (default: 0)")
    compare.add_argument("--folds", type=_positive, default=argparse.SUPPRESS, metavar="K",
                         help="cross-validation: train every loss on K folds of the images "
                              "(one pool: synthetic or images/ + masks/); the ranking and the "
                              "verdict pair the runs over folds x seeds (default: 1, "
                              "--val-split)")
    compare.add_argument("--out", default="seglosses-compare", metavar="OUT",
                         help="report folder (default: seglosses-compare)")
    compare.add_argument("--resume", action="store_true",
                         help="continue an interrupted comparison in OUT")
    _add_training_options(compare)
    _add_common(compare)

    demo = commands.add_parser(
        "demo", help="compare losses on the built-in synthetic data", formatter_class=_Formatter,
        description="Compare five losses on the built-in synthetic dataset and write a report.",
        epilog=_DEMO_EPILOG)
    demo.add_argument("--losses", type=_losses, default=DEMO_LOSSES.split(";"),
                      metavar="'A;B;...'", help="loss expressions separated by ';'")
    demo.add_argument("--seeds", type=_seeds, default=[0], metavar="S,S,...",
                      help="training seeds (default: 0)")
    demo.add_argument("--folds", type=_positive, default=argparse.SUPPRESS, metavar="K",
                      help=f"cross-validation over K folds of the images (default: "
                           f"{DEMO['folds']})")
    demo.add_argument("--out", default=DEMO["out"], metavar="OUT",
                      help=f"report folder, rewritten on every run (default: {DEMO['out']})")
    _add_training_options(demo, demo=True)
    _add_common(demo)

    bench = commands.add_parser(
        "bench", help="speed and memory of the losses on this device", formatter_class=_Formatter,
        description="Time forward + backward of the library's losses against torch and MONAI.",
        epilog=_BENCH_EPILOG)
    bench.add_argument("--shape", type=_shape, action="append", metavar="N,C,H,W[,D]",
                       help="logits shape (repeat for several; default: one 2-D and one 3-D "
                            "shape sized for the device)")
    bench.add_argument("--repeat", type=_positive, default=None,
                       help="timed calls per method (default: 20 on CUDA, 10 on the CPU)")
    bench.add_argument("--device", type=_device, default="auto",
                       help="auto, cpu, cuda or cuda:N (default: auto)")
    bench.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                       help="logits dtype (default: float32)")
    bench.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    bench.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    _add_common(bench)
    parser.commands = commands.choices  # name -> subparser, for usage errors found later
    return parser


# ---------------------------------------------------------------------------- commands


def _config(args: argparse.Namespace, base: dict) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {name: value for name, value in vars(args).items()
             if name in names and name not in ("resume",)}
    return TrainConfig(**{**base, **given})


def _scan(args) -> int:
    from .scan import format_scan, scan_masks

    result = scan_masks(args.masks, num_classes=args.num_classes,
                        ignore_index=args.ignore_index, skip_bad=args.skip_bad,
                        workers=args.workers, progress=not args.quiet, palette=args.palette)
    print(format_scan(result))
    if args.json:
        result.stats.to_json(args.json)
        print(f"class statistics written to {args.json}")
    return 0


def _train(args) -> int:
    from .train import train

    if args.resume:
        allowed = {"epochs", "device", "num_workers", "preview", "quiet", "resume", "command"}
        extra = sorted(set(vars(args)) - allowed)
        if extra:
            options = ", ".join("--" + name.replace("_", "-") for name in extra)
            raise UsageError("--resume", f"reuses the run's options; only --epochs, --device, "
                                         f"--num-workers and --preview may be given with it "
                                         f"(got {options})")
        overrides = {k: getattr(args, k) for k in ("epochs", "device", "num_workers", "preview")
                     if hasattr(args, k)}
        config = TrainConfig.from_run(args.resume, **overrides)
    else:
        config = _config(args, {})
    result = train(config, progress=not args.quiet)
    if _rank() == 0:
        print(_run_summary(result))
    return 0


def _run_summary(result) -> str:
    from .compare import class_names_of

    best = result.best
    names = class_names_of(result.dataset)
    width = max(len("class"), *(len(n) for n in names)) + 2

    def number(value):
        return "n/a" if value is None or value != value else f"{value:.4f}"

    lines = [f"run: {result.run_dir}",
             f"best epoch {result.best_epoch}/{result.config.epochs}: val mean IoU "
             f"{number(best['val_mean_iou'])}, mean Dice {number(best['val_mean_dice'])}, "
             f"pixel accuracy {number(best['val_pixel_accuracy'])}",
             f"{'class':<{width}}{'IoU':>8}{'Dice':>8}"]
    lines += [f"{name:<{width}}{number(iou):>8}{number(dice):>8}"
              for name, iou, dice in zip(names, best["val_iou"], best["val_dice"], strict=True)]
    lines.append(f"files: {result.run_dir / 'metrics.jsonl'}, best.pt, last.pt, curves.png "
                 f"({result.elapsed_s:.0f} s)")
    return "\n".join(lines)


def _compare(args, base: dict) -> int:
    from .compare import compare
    from .report import diverged_lines, summary_sentence, text_table

    config = _config(args, base)
    result = compare(config, args.losses, args.seeds, progress=not args.quiet,
                     resume=getattr(args, "resume", False))
    if _rank() == 0:
        print(text_table(result.ranking))
        print(summary_sentence(result.ranking, result.baselines))
        for line in [f"{row['loss']}: {note}" for row in result.ranking
                     for note in row["notes"]] + diverged_lines(result.diverged):
            print(f"  {line}")
        print(f"\nreport: {result.report['html']}")
        print(f"        {result.report['markdown']}, {result.report['results']} "
              f"({result.elapsed_s:.0f} s)")
    return 0


def _bench(args) -> int:
    from .bench import format_table, run_benchmark

    results = run_benchmark(shapes=args.shape, repeat=args.repeat, device=args.device,
                            dtype=args.dtype, memory=not args.no_memory,
                            progress=not args.quiet)
    print(format_table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    ``--help`` and usage errors raise ``SystemExit`` (0 and 2) as argparse does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "train":
            return _train(args)
        if args.command == "compare":
            return _compare(args, {})
        if args.command == "demo":
            return _compare(args, {**DEMO, "out": args.out, "overwrite": True})
        return _bench(args)
    except UsageError as error:
        parser.commands[args.command].error(_message(error))  # exits 2, like argparse's own
    except (ValueError, OSError) as error:
        print(f"seglosses {args.command}: error: {_message(error)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"seglosses {args.command}: error: out of memory (smaller --batch-size, --crop "
              "or --size)", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line, never a traceback
        if os.environ.get("SEGLOSSES_TRACEBACK"):
            raise
        print(f"seglosses {args.command}: internal error: {type(error).__name__}: {error} "
              "(set SEGLOSSES_TRACEBACK=1 to see where; please report it)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command in ("train", "compare") else ""
        print(f"seglosses {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
