"""Figures and the report of ``seglosses compare``: ``report.md``, a self-contained
``report.html`` (inline CSS, images embedded as base64 PNG) and ``results.json``.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no display, no
global state), so they work in worker processes and on headless machines.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from pathlib import Path

import numpy as np

from .verdict import decide

# Qualitative colours (Okabe–Ito first: distinguishable with colour-blindness), then tab20.
_BASE_COLOURS = ["#000000", "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00",
                 "#cc79a7", "#999999", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8"]
IGNORED_COLOUR = (255, 255, 255)


def palette(num_classes: int) -> np.ndarray:
    """``(C, 3)`` uint8 colours: class 0 (usually background) black, then distinct hues.

    >>> palette(3).tolist()
    [[0, 0, 0], [230, 159, 0], [86, 180, 233]]
    """
    colours = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in _BASE_COLOURS]
    rng = np.random.default_rng(0)  # beyond 20 classes: fixed random colours
    while len(colours) < num_classes:
        colours.append(tuple(int(v) for v in rng.integers(40, 256, 3)))
    return np.array(colours[:num_classes], dtype=np.uint8)


def colourise(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Label map → RGB image; labels outside ``[0, C)`` (ignored pixels) are white."""
    labels = np.asarray(labels)
    out = np.empty((*labels.shape, 3), dtype=np.uint8)
    out[...] = IGNORED_COLOUR
    valid = (labels >= 0) & (labels < num_classes)
    out[valid] = palette(num_classes)[labels[valid]]
    return out


def display_image(image: np.ndarray) -> np.ndarray:
    """``(C_in, H, W)`` → something ``imshow`` shows: RGB for 3 channels, else channel 0;
    min–max scaled to [0, 1]."""
    image = np.asarray(image, dtype=np.float64)
    image = np.moveaxis(image[:3], 0, -1) if image.shape[0] == 3 else image[0]
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


# ---------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, facecolor="white")
    return buffer.getvalue()


def _style(axes, title: str, xlabel: str = "epoch") -> None:
    from matplotlib.ticker import MaxNLocator

    if xlabel == "epoch":
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_xlabel(xlabel, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _values(history, key):
    return [math.nan if r.get(key) is None else r[key] for r in history]


def curves_figure(history: list[dict], title: str = ""):
    """Loss (train, val and each compound term) and validation metrics against the epoch."""
    figure = _figure(8.0, 3.0)
    loss_axes, metric_axes = figure.subplots(1, 2)
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) < 12 else None
    loss_axes.plot(epochs, _values(history, "train_loss"), marker=marker, label="train")
    loss_axes.plot(epochs, _values(history, "val_loss"), marker=marker, label="val")
    terms = list(history[0]["train_terms"]) if history else []
    if len(terms) > 1:
        for name in terms:
            loss_axes.plot(epochs, [r["train_terms"][name] for r in history], linestyle="--",
                           linewidth=1, label=f"train {name}")
    _style(loss_axes, f"{title} loss".strip())
    loss_axes.legend(fontsize=7, frameon=False)
    for key, name in (("val_mean_iou", "mean IoU"), ("val_mean_dice", "mean Dice"),
                      ("val_pixel_accuracy", "pixel accuracy")):
        metric_axes.plot(epochs, _values(history, key), marker=marker, label=name)
    metric_axes.set_ylim(0, 1)
    _style(metric_axes, "validation metrics")
    metric_axes.legend(fontsize=7, frameon=False)
    return figure


def _loss_colours(names) -> dict[str, str]:
    """One colour per loss, the same in every chart (keyed by the sorted names, so the ranked
    bars and the curves in the user's order agree)."""
    return {name: _BASE_COLOURS[1 + i % (len(_BASE_COLOURS) - 1)]
            for i, name in enumerate(sorted(set(names)))}


def comparison_curves_figure(histories: dict[str, list[dict]]):
    """Validation mean IoU and training loss of every loss, one line each (first seed)."""
    figure = _figure(9.0, 3.2)
    iou_axes, loss_axes = figure.subplots(1, 2)
    colours = _loss_colours(histories)
    for name, history in histories.items():
        epochs = [r["epoch"] for r in history]
        colour = colours[name]
        iou_axes.plot(epochs, _values(history, "val_mean_iou"), color=colour, marker="o",
                      markersize=3, label=name)
        loss_axes.plot(epochs, _values(history, "train_loss"), color=colour, marker="o",
                       markersize=3, label=name)
    _style(iou_axes, "validation mean IoU")
    _style(loss_axes, "training loss (each loss on its own scale)")
    iou_axes.legend(fontsize=7, frameon=False)
    return figure


def iou_bars_figure(rows: list[dict], class_names: list[str]):
    """Grouped bars: per-class validation IoU of every loss (mean over seeds); no bar for a
    class without IoU (absent from labels and predictions)."""
    num_classes = len(class_names)
    figure = _figure(max(6.0, 0.9 * num_classes + 2.5), 3.4)
    axes = figure.subplots()
    width = 0.8 / max(len(rows), 1)
    positions = np.arange(num_classes)
    colours = _loss_colours(row["loss"] for row in rows)
    for index, row in enumerate(rows):
        colour = colours[row["loss"]]
        values = np.array([math.nan if v is None else v for v in row["class_iou"]])
        axes.bar(positions + (index - (len(rows) - 1) / 2) * width, np.nan_to_num(values),
                 width, color=colour, label=row["loss"], edgecolor="white", linewidth=0.5)
    axes.set_xticks(positions, class_names, rotation=30 if num_classes > 8 else 0, ha="right"
                    if num_classes > 8 else "center")
    axes.set_ylim(0, 1)
    _style(axes, "per-class validation IoU (best epoch, mean over seeds)", xlabel="class")
    axes.legend(fontsize=7, frameon=False, ncols=min(len(rows), 3))
    return figure


def predictions_figure(images: np.ndarray, masks: np.ndarray, predictions: dict[str, np.ndarray],
                       class_names: list[str]):
    """Rows: validation images; columns: image, ground truth, then each loss's prediction."""
    from matplotlib.patches import Patch

    num_classes = len(class_names)
    rows, columns = len(images), 2 + len(predictions)
    figure = _figure(1.9 * columns, 1.9 * rows + 0.8)
    grid = figure.subplots(rows, columns, squeeze=False)
    titles = ["image", "ground truth", *predictions]
    for row in range(rows):
        panels = [display_image(images[row]), colourise(masks[row], num_classes)]
        panels += [colourise(p[row], num_classes) for p in predictions.values()]
        for column, panel in enumerate(panels):
            axes = grid[row][column]
            axes.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(_wrap(titles[column]), fontsize=8)
    colours = palette(num_classes) / 255.0
    handles = [Patch(facecolor=colours[c], edgecolor="#888888", label=name)
               for c, name in enumerate(class_names)]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(num_classes, 8),
                  fontsize=7, frameon=False)
    return figure


def _wrap(text: str, width: int = 20) -> str:
    """Break a loss expression after ``(``, ``,`` or ``+`` so column titles stay narrow.

    >>> print(_wrap("ce(class_weights=inverse_frequency)"))
    ce(
    class_weights=inverse_frequency)
    """
    lines = [""]
    for piece in re.split(r"(?<=[(,+])", text):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


# ---------------------------------------------------------------------------- numbers


def format_mean_std(mean: float | None, std: float | None, digits: int = 3) -> str:
    """``0.612 ± 0.010``; just the mean for one seed; ``n/a`` when undefined."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


TABLE_COLUMNS = ("rank", "loss", "val mIoU", "min class IoU", "mean Dice", "pixel acc",
                 "best epoch", "time")


def table_cells(row: dict) -> list[str]:
    return [str(row["rank"]), row["loss"], format_mean_std(row["mean_iou"], row["mean_iou_std"]),
            _number(row["min_class_iou"]), _number(row["mean_dice"]),
            _number(row["pixel_accuracy"]), ", ".join(str(e) for e in row["best_epochs"]),
            _time_cell(row)]


def _time_cell(row: dict) -> str:
    """Training time (epochs only), the steady-state step time, and the peak device memory
    where the device reports it (CUDA)."""
    text = f"{row['time_s']:.{1 if row['time_s'] < 10 else 0}f} s"
    if row.get("step_time_s") is not None:
        text += f", {1000 * row['step_time_s']:.0f} ms/step"
    if row.get("peak_memory_bytes") is not None:
        text += f", {row['peak_memory_bytes'] / 2**30:.2f} GiB peak"
    return text


def text_table(rows: list[dict]) -> str:
    """The ranking as aligned plain text (what ``compare`` and ``demo`` print)."""
    cells = [list(TABLE_COLUMNS)] + [table_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def _markdown_table(header: list[str], lines: list[list[str]]) -> str:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(escape(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def _class_table(rows: list[dict], class_names: list[str],
                 pixels: list[int] | None = None) -> tuple[list[str], list[list[str]]]:
    """Per-class IoU of each loss, under a first line with each class's share of the
    validation pixels (how rare it is)."""
    header = ["loss", *class_names]
    lines = [[r["loss"], *(_number(v) for v in r["class_iou"])] for r in rows]
    if pixels and sum(pixels) > 0:
        share = [f"{100 * n / sum(pixels):.2g} %" for n in pixels]
        lines.insert(0, ["share of val pixels", *share])
    return header, lines


def diverged_lines(diverged: dict[str, str]) -> list[str]:
    """One line per loss left out of the ranking because its training diverged."""
    return [f"{loss}: diverged, not ranked ({why})" for loss, why in diverged.items()]


def summary_sentence(rows: list[dict], reference: dict | None = None) -> str:
    """One line a reader can act on: the winner when its lead exceeds its paired uncertainty
    (``verdict.decide``), otherwise "No clear winner" and why; when no loss beat the baselines
    (``reference``), that no model learned."""
    if not rows or rows[0]["mean_iou"] is None:
        return "No run produced a validation mean IoU."
    best = rows[0]
    if not best.get("learned", True):
        bars = "; ".join(f"{_BASELINE_NAMES[name]}: mIoU {_number(b['mean_iou'])}, pixel "
                         f"accuracy {_number(b['pixel_accuracy'])}"
                         for name, b in (reference or {}).items())
        return (f"No clear winner: no loss beat the baselines ({bars}), so none of the models "
                "learned. Train longer or on more images before comparing.")
    verdict = decide(rows)
    if verdict["winner"] is None:
        text = (f"No clear winner: {best['loss']} leads with validation mean IoU "
                f"{_number(best['mean_iou'])}, but {verdict['reason']}")
    else:
        text = f"Best: {best['loss']} with validation mean IoU {_number(best['mean_iou'])}"
        paired = verdict["paired"]
        if paired is not None:
            text += (f", {paired['mean']:.3f} ahead of {rows[1]['loss']} (± {paired['se']:.3f}, "
                     f"paired over {paired['runs']} runs)")
        elif len(rows) > 1:
            text += ", the only loss that beat the baselines"
    if any("still improving" in note for note in best.get("notes", [])):
        text += "; its best epoch was the last, so it was still improving"
    return text + "."


_BASELINE_NAMES = {"majority": "the majority class everywhere",
                   "prior": "a guess by the class frequencies"}


def baseline_table(reference: dict) -> tuple[list[str], list[list[str]]]:
    """The baselines' scores on the validation set (what a model must beat)."""
    return (["predictor", "val mIoU", "pixel acc"],
            [[_BASELINE_NAMES[name], _number(b["mean_iou"]), _number(b["pixel_accuracy"])]
             for name, b in reference.items()])


def note_lines(data: dict) -> list[str]:
    """The validation set's warnings, then each loss's training-health notes."""
    lines = list(data.get("notes", []))
    lines += [f"{row['loss']}: {note}" for row in data["ranking"] for note in row.get("notes", [])]
    return lines + diverged_lines(data.get("diverged", {}))


def trained_lines(trained: dict[str, list[dict]]) -> list[str]:
    """One line per term of each loss: weight, loss class, class-weight source, options."""
    lines = []
    for loss, terms in trained.items():
        for term in terms:
            options = ", ".join(f"{k}={v}" for k, v in term["options"].items())
            lines.append(f"{loss}: {term['weight']:g} × {term['loss']} (class weights: "
                         f"{term['class_weights_source']}) {options}")
    return lines


BASELINES_TEXT = ("What a model that learned nothing scores on the same validation set; a loss "
                  "must beat both to rank as learned.")


def data_text(summary: dict) -> str:
    return (f"Imbalance (largest / smallest class in training): "
            f"{_number(summary['imbalance_ratio'], 4)}. The strategy columns give each "
            "class-weight strategy's weights on the training counts.")


# A class under this share of the validation pixels is marked rare in the per-class tables.
RARE_SHARE = 0.01
RARE_NOTE = "* rare: under 1 % of the validation pixels."


def marked_names(class_names: list[str], pixels: list[int] | None) -> list[str]:
    """The class names, rare ones (present, under ``RARE_SHARE`` of the pixels) marked ``*``."""
    total = sum(pixels or [])
    if not total:
        return list(class_names)
    return [f"{name}*" if 0 < n < RARE_SHARE * total else name
            for name, n in zip(class_names, pixels, strict=True)]


def data_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Per class: its share of the training and validation pixels and each strategy's weight
    on the training counts (``verdict.data_summary``)."""
    strategies = list(summary.get("strategy_weights", {}))
    train, val = summary["train_class_pixels"], summary["val_class_pixels"]

    def share(counts, c):
        total = sum(counts)
        return f"{100 * counts[c] / total:.2g} %" if total and c < len(counts) else "n/a"

    lines = [[name, share(train, c), share(val, c),
              *(f"{summary['strategy_weights'][k][c]:.3g}" for k in strategies)]
             for c, name in enumerate(summary["class_names"])]
    return ["class", "train pixels", "val pixels", *strategies], lines


def _metric_table(rows: list[dict], class_names: list[str], key: str):
    return ["loss", *class_names], [[r["loss"], *(_number(v) for v in r.get(key, []))]
                                    for r in rows]


# per-class tables after the IoU one: (title, ranking key, html id)
_CLASS_TABLES = (("Per-class Dice", "class_dice", "class-dice"),
                 ("Per-class precision", "class_precision", "class-precision"),
                 ("Per-class recall", "class_recall", "class-recall"))


# ---------------------------------------------------------------------------- writers


_CSS = """
:root { --ink:#1f2328; --muted:#656d76; --line:#d0d7de; --soft:#f6f8fa; --accent:#0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 32px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 1px solid
     var(--line); }
p.meta { color: var(--muted); margin: 0 0 16px; }
ul.notes { color: var(--muted); margin: 8px 0 16px; padding-left: 20px; }
ul.notes li { margin: 2px 0; }
p.summary { background: var(--soft); border-left: 4px solid var(--accent); padding: 10px 14px;
            border-radius: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
#ranking tbody tr:first-child td { font-weight: 600; }
#class-iou tbody tr:first-child td { color: var(--muted); font-style: italic; }
tbody tr:hover { background: #fafbfc; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--soft);
       padding: 1px 5px; border-radius: 4px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr));
        gap: 16px; }
.scroll { overflow-x: auto; }
footer { color: var(--muted); font-size: 13px; margin-top: 48px; }
"""


def write_report(out: Path, data: dict, figures: dict[str, bytes],
                 run_curves: dict[str, Path]) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``results.json`` and ``figures/*.png`` to ``out``.

    Args:
        out: the compare folder.
        data: everything ``results.json`` holds (see :func:`seglosses.cli.compare.compare`).
        figures: PNG bytes by name: ``iou_bars``, ``curves``, ``predictions`` (any may be absent).
        run_curves: each loss's ``curves.png`` (its first seed's run).
    """
    from .runs import atomic_write_bytes, atomic_write_text, dumps

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        atomic_write_bytes(out / "figures" / f"{name}.png", png)
    paths = {"markdown": out / "report.md", "html": out / "report.html",
             "results": out / "results.json"}
    atomic_write_text(paths["results"], dumps(data) + "\n")
    atomic_write_text(paths["markdown"], _markdown(out, data, figures, run_curves))
    atomic_write_text(paths["html"], _html(data, figures, run_curves))
    return paths


_CAPTIONS = {
    "iou_bars": "Per-class validation IoU at each loss's best epoch (mean over seeds). "
                "A missing bar: the class is in neither the labels nor the predictions.",
    "curves": "Validation mean IoU and training loss per epoch (first seed).",
    "predictions": "The first validation images, their ground truth, and each loss's "
                   "prediction (best checkpoint, first seed). White: ignored pixels.",
}


def _meta(data: dict) -> str:
    config, dataset = data["config"], data["dataset"]
    return (f"data <code>{html.escape(str(config['data']))}</code> · {dataset['num_classes']} "
            f"classes · {dataset['num_train']} train / {dataset['num_val']} val images · "
            f"{config['dims']}-D U-Net (width {config['width']}, depth {config['depth']}) · "
            f"{config['epochs']} epochs · "
            + (f"{config['folds']} folds · " if config.get("folds", 1) > 1 else "")
            + f"seeds {', '.join(map(str, data['seeds']))} · "
            f"{html.escape(data['device'])} · {data['elapsed_s']:.0f} s")


def _markdown(out: Path, data: dict, figures: dict, run_curves: dict) -> str:
    rows, class_names = data["ranking"], data["dataset"]["class_names"]
    notes = note_lines(data)
    meta = _meta(data).replace("<code>", "`").replace("</code>", "`")
    parts = ["# seglosses compare", "", html.unescape(meta), "",
             f"**{summary_sentence(rows, data.get('baselines'))}**", "",
             "## Ranking by validation mean IoU", "",
             _markdown_table(list(TABLE_COLUMNS), [table_cells(r) for r in rows]), "",
             *[f"- {line}" for line in notes], *([""] if notes else []),
             "mIoU is the best epoch's validation mean IoU, mean ± std over the runs (folds × "
             "seeds); n/a marks a value that is not defined (see the run folders' "
             "metrics.jsonl).", ""]
    parts += ["## Per-class IoU", ""]
    if "iou_bars" in figures:
        parts += ["![per-class IoU](figures/iou_bars.png)", "", _CAPTIONS["iou_bars"], ""]
    pixels = data["dataset"].get("val_class_pixels")
    marked = marked_names(class_names, pixels)
    parts += [_markdown_table(*_class_table(rows, marked, pixels)), "", RARE_NOTE, ""]
    for title, key, _ in _CLASS_TABLES:
        parts += [f"## {title}", "", _markdown_table(*_metric_table(rows, marked, key)), ""]
    if data.get("data_summary", {}).get("train_class_pixels"):
        parts += ["## Data", "", data_text(data["data_summary"]), "",
                  _markdown_table(*data_table(data["data_summary"])), ""]
    if data.get("trained"):
        parts += ["## What was trained", "", *[f"- `{line}`" for line in
                                                 trained_lines(data["trained"])], ""]
    if data.get("baselines"):
        parts += ["## Baselines", "", BASELINES_TEXT, "",
                  _markdown_table(*baseline_table(data["baselines"])), ""]
    parts += ["## Curves", ""]
    if "curves" in figures:
        parts += ["![curves](figures/curves.png)", "", _CAPTIONS["curves"], ""]
    for loss, path in run_curves.items():
        parts += [f"### {loss}", "", f"![{loss}]({Path(os.path.relpath(path, out)).as_posix()})",
                  ""]
    if "predictions" in figures:
        parts += ["## Validation predictions", "", "![predictions](figures/predictions.png)",
                  "", _CAPTIONS["predictions"], ""]
    parts += ["## Files", "", "`results.json` holds every number; each run folder holds "
              "`config.json`, `metrics.jsonl`, `best.pt`, `last.pt` and `curves.png`.", ""]
    return "\n".join(parts)


def _img(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _html_table(header: list[str], lines: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>"
                   for line in lines)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _html(data: dict, figures: dict, run_curves: dict) -> str:
    rows, class_names = data["ranking"], data["dataset"]["class_names"]
    pixels = data["dataset"].get("val_class_pixels")
    marked = marked_names(class_names, pixels)
    notes = note_lines(data)

    def figure(name: str) -> str:
        if name not in figures:
            return ""
        return (f'<figure id="figure-{name}">{_img(figures[name], name)}'
                f"<figcaption>{html.escape(_CAPTIONS[name])}</figcaption></figure>")

    per_run = "".join(
        f"<figure>{_img(path.read_bytes(), loss)}<figcaption>{html.escape(loss)}</figcaption>"
        f"</figure>" for loss, path in run_curves.items() if path.is_file())
    sections = [
        "<h1>seglosses compare</h1>", f'<p class="meta">{_meta(data)}</p>',
        f'<p class="summary">{html.escape(summary_sentence(rows, data.get("baselines")))}</p>',
        "<h2>Ranking by validation mean IoU</h2>",
        _html_table(list(TABLE_COLUMNS), [table_cells(r) for r in rows], "ranking"),
        *(['<ul class="notes">' + "".join(f"<li>{html.escape(line)}</li>" for line in notes)
           + "</ul>"] if notes else []),
        '<p class="meta">mIoU: the best epoch\'s validation mean IoU, mean ± std over the runs '
        "(folds × seeds). n/a: not defined.</p>",
        "<h2>Per-class IoU</h2>", figure("iou_bars"),
        _html_table(*_class_table(rows, marked, pixels), "class-iou"),
        f'<p class="meta">{html.escape(RARE_NOTE)}</p>',
        *[part for title, key, table_id in _CLASS_TABLES
          for part in (f"<h2>{title}</h2>",
                       _html_table(*_metric_table(rows, marked, key), table_id))],
        *(["<h2>Data</h2>", f'<p class="meta">{html.escape(data_text(data["data_summary"]))}</p>',
           _html_table(*data_table(data["data_summary"]), "data")]
          if data.get("data_summary", {}).get("train_class_pixels") else []),
        *(["<h2>What was trained</h2>", "<ul>" + "".join(
            f"<li><code>{html.escape(line)}</code></li>"
            for line in trained_lines(data["trained"])) + "</ul>"]
          if data.get("trained") else []),
        *(["<h2>Baselines</h2>", f'<p class="meta">{html.escape(BASELINES_TEXT)}</p>',
           _html_table(*baseline_table(data["baselines"]), "baselines")]
          if data.get("baselines") else []),
        "<h2>Curves</h2>", figure("curves"), f'<div class="grid">{per_run}</div>',
    ]
    if "predictions" in figures:
        sections += ["<h2>Validation predictions</h2>", figure("predictions")]
    sections.append("<footer><code>results.json</code> next to this page holds every number; "
                    "each run folder holds <code>config.json</code>, <code>metrics.jsonl</code>, "
                    "checkpoints and <code>curves.png</code>. Made by seglosses "
                    f"{html.escape(data['versions']['seglosses'])}.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>seglosses compare</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(sections)}</main></body></html>\n")
