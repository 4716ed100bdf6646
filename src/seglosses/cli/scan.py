"""``seglosses scan``: class statistics of a mask dataset, streamed file by file.

:func:`scan_masks` reads one mask at a time (optionally in worker processes, a bounded number
of files in flight) and sums per-class counts, so memory stays constant however large the
dataset; :func:`format_scan` prints what it found and the class weights of every strategy.
"""

from __future__ import annotations

import functools
import glob
import multiprocessing
import os
import sys
import textwrap
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .._spec import MULTICLASS_STRATEGIES, check_ignore_index, fail
from ..stats import ClassStats
from .readers import MASK_SUFFIXES, read_mask, split_suffix

__all__ = ["ScanResult", "format_scan", "mask_files", "mostly_absent", "scan_masks"]

_IN_FLIGHT_PER_WORKER = 4
# Labels at or above this are no class index (instance ids, raw intensities): counting them
# would need a table of that many classes.
MAX_LABEL = 65536
SPARSE_LABELS_HINT = ("Binary masks saved as 0/255 need remapping to 0/1; a label that marks "
                      "pixels to skip (often 255) needs --ignore-index.")
_SHORT_NAMES = {
    "inverse_frequency": "inv_freq",
    "inverse_sqrt_frequency": "inv_sqrt",
    "median_frequency": "median",
    "effective_number": "eff_num",
    "log_inverse": "log_inv",
    "balanced": "balanced",
}


@dataclass
class ScanResult:
    """What :func:`scan_masks` found.

    Attributes:
        stats: the class statistics of the masks that were read (``stats.num_images`` of them).
        skipped: ``(path, reason)`` of each bad file left out (``skip_bad=True`` only).
        files: the number of files looked at, skipped ones included.
    """

    stats: ClassStats
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0


def mask_files(source: str | os.PathLike) -> list[str]:
    """The mask files of a folder (recursively; its ``masks/`` subfolder when it has one),
    of a glob pattern, or the file itself; sorted. Only the paths are listed, never the data.

    Raises:
        ValueError: nothing matches.
    """
    function = "scan_masks"
    text = os.fspath(source)
    if os.path.isdir(text):
        root = os.path.join(text, "masks") if os.path.isdir(os.path.join(text, "masks")) \
            else text
        found = []
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            found += [os.path.join(folder, name) for name in names
                      if not name.startswith(".") and split_suffix(name)[1] in MASK_SUFFIXES]
        if not found:
            raise fail(function, "source", "hold mask files (" + ", ".join(MASK_SUFFIXES) + ")",
                       f"none in {root}")
        return sorted(found)
    if os.path.isfile(text):
        return [text]
    if glob.has_magic(text):
        found = sorted(path for path in glob.glob(text, recursive=True) if os.path.isfile(path))
        if not found:
            raise fail(function, "source", "match at least one file", f"no match for {text!r}")
        return found
    raise fail(function, "source", "be a folder, a file, a glob pattern or a list of paths",
               repr(text), "No such file or folder.")


def scan_masks(source: str | os.PathLike | Iterable[str | os.PathLike], *,
               num_classes: int | None = None, ignore_index=None, skip_bad: bool = False,
               workers: int = 0, progress: bool = True,
               palette: Mapping | Sequence | None = None) -> ScanResult:
    """Per-class pixel statistics of a set of masks, streamed in constant memory.

    Args:
        source: a folder (recursively its mask files, or those of its ``masks/`` subfolder), a
            glob pattern (``"data/**/*.png"``), a file, or an iterable of paths (consumed lazily,
            one file at a time).
        num_classes: C. ``None`` infers it in the same single pass as the largest label + 1
            (ignored labels left out; the count vector grows as larger labels appear).
        ignore_index: an int or a sequence of ints whose pixels are counted as ignored.
        skip_bad: list bad files in ``result.skipped`` and go on, instead of raising.
        workers: read files in this many processes when > 1 (a bounded window of files in
            flight; results are summed in file order, so every ``workers`` gives the same
            result).
        progress: show a tqdm progress bar on stderr.
        palette: for RGB masks, a mapping ``(r, g, b) -> class`` (see :func:`read_mask`).

    Returns:
        a :class:`ScanResult`; ``result.stats`` is the ``ClassStats`` that
        ``ClassStats.from_masks`` gives on the same arrays.

    Raises:
        ValueError: naming the file, for an unreadable file, a float mask, an RGB mask without a
        palette, a negative label or a label ``>= num_classes`` that is not ignored (unless
        ``skip_bad``); also when the source holds no file.
    """
    function = "scan_masks"
    ignore = check_ignore_index(function, ignore_index)
    if num_classes is not None and (isinstance(num_classes, bool) or
                                    not isinstance(num_classes, int) or num_classes < 1):
        raise fail(function, "num_classes", "be an int >= 1 or None", repr(num_classes))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise fail(function, "workers", "be an int >= 0", repr(workers))
    if isinstance(source, (str, os.PathLike)):
        paths: Iterable = mask_files(source)
    elif isinstance(source, Iterable):
        paths = source
    else:
        raise fail(function, "source", "be a folder, a glob pattern or an iterable of paths",
                   type(source).__name__, error=TypeError)
    total = len(paths) if isinstance(paths, Sequence) else None
    job = functools.partial(_count_file, num_classes=num_classes, ignore=ignore,
                            palette=palette)

    counts = np.zeros(num_classes or 0, dtype=np.int64)
    images = np.zeros(num_classes or 0, dtype=np.int64)
    ignored = num_images = files = 0
    skipped: list[tuple[str, str]] = []
    bar = _progress(total, progress)
    results = _results(paths, job, workers)
    try:
        for path, (found, found_ignored, error) in results:
            files += 1
            bar.update(1)
            if error is not None:
                if not skip_bad:
                    raise ValueError(error)
                skipped.append((path, error))
                continue
            if found.size > counts.size:
                counts = np.pad(counts, (0, found.size - counts.size))
                images = np.pad(images, (0, found.size - images.size))
            counts[:found.size] += found
            images[:found.size] += found > 0
            ignored += found_ignored
            num_images += 1
    finally:
        results.close()  # stops the worker processes now, even when a bad file raised
        bar.close()
    if files == 0:
        raise fail(function, "source", "hold at least one mask file", "an empty list")
    if counts.size == 0:  # C inferred, yet no valid pixel anywhere
        counts = images = np.zeros(1, dtype=np.int64)
    stats = ClassStats(tuple(counts.tolist()), tuple(images.tolist()), ignored, num_images,
                       ignore)
    return ScanResult(stats, skipped, files)


def _count_file(path: str, *, num_classes, ignore, palette):
    """``(counts, ignored, None)`` of one mask, or ``(None, 0, message)`` when it is bad."""
    try:
        mask = read_mask(path, palette=palette)
    except ValueError as error:
        return None, 0, str(error)
    flat = mask.reshape(-1)
    if ignore:
        skip = flat == ignore[0] if len(ignore) == 1 else np.isin(flat, ignore)
        valid, ignored = flat[~skip], int(skip.sum())
    else:
        valid, ignored = flat, 0
    if valid.size:
        low, high = int(valid.min()), int(valid.max())
        limit = MAX_LABEL if num_classes is None else num_classes
        too_high = high >= limit
        if low < 0 or too_high:
            values = np.unique(valid)
            bad = values[(values < 0) | (values >= limit)][:8].tolist()
            span = f"[0, {limit})"
            error = fail("scan_masks", f"labels of {path}", f"lie in {span} or be ignored "
                         f"(ignore_index={list(ignore)})", f"values {bad}",
                         "Pass --ignore-index for labels that mark pixels to skip, or a larger "
                         "--num-classes." if too_high else "")
            return None, 0, str(error)
    counts = np.bincount(valid.astype(np.intp, copy=False), minlength=num_classes or 0)
    return counts.astype(np.int64, copy=False), ignored, None


def mostly_absent(stats: ClassStats) -> bool:
    """More than half of C > 2 classes never occur: C was likely inferred from a label that is
    no class (255 for "skip", or 0/255 binary masks)."""
    return stats.num_classes > 2 and len(stats.absent_classes) > stats.num_classes // 2


def _results(paths: Iterable, job, workers: int) -> Iterator[tuple[str, tuple]]:
    """``(path, job(path))`` in input order; at most ``4 * workers`` files in flight."""
    if workers <= 1:
        for path in paths:
            path = os.fspath(path)
            yield path, job(path)
        return
    context = multiprocessing.get_context("fork") \
        if "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(workers, mp_context=context)
    pending: deque = deque()
    try:
        for path in paths:
            path = os.fspath(path)
            pending.append((path, pool.submit(job, path)))
            if len(pending) >= _IN_FLIGHT_PER_WORKER * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc="scan", unit="mask", file=sys.stderr, dynamic_ncols=True)


def format_scan(result: ScanResult) -> str:
    """The human summary of a scan: one row per class (pixels, fraction, images with the class,
    and the class weights of every strategy), then totals, the imbalance ratio, ignored pixels
    and the skipped files.

    >>> stats = ClassStats((9000, 900, 100), (2, 2, 1), 50, 2, ignore_index=(255,))
    >>> print(format_scan(ScanResult(stats, [], 2)))
    class  pixels  fraction  images  inv_freq  inv_sqrt    median   eff_num   log_inv
    0       9,000    0.9000       2     1.111     1.054       0.1     0.001     1.533
    1         900    0.0900       2     11.11     3.333         1  0.001685     9.582
    2         100    0.0100       1       100        10         9    0.0105     33.83
    <BLANKLINE>
    2 masks read of 2 files; 10,000 valid pixels; 50 ignored (ignore_index=[255])
    imbalance ratio (largest / smallest present class): 90
    weight columns: inv_freq=inverse_frequency, inv_sqrt=inverse_sqrt_frequency,
      median=median_frequency, eff_num=effective_number, log_inv=log_inverse (beta=0.999)
    """
    stats = result.stats
    strategies = list(MULTICLASS_STRATEGIES) + (["balanced"] if stats.num_classes == 2 else [])
    weights = {name: stats.weights(name) for name in strategies}
    labels = [f"{c} {stats.class_names[c]}" if stats.class_names else str(c)
              for c in range(stats.num_classes)]
    width = max(len("class"), *(len(label) for label in labels)) + 2
    digits = max(len("pixels"), *(len(f"{n:,}") for n in stats.counts))
    header = f"{'class':<{width}}{'pixels':>{digits}}  fraction  images" + "".join(
        f"  {_SHORT_NAMES[name]:>8}" for name in strategies)
    rows = [header]
    for c, label in enumerate(labels):
        row = f"{label:<{width}}{stats.counts[c]:>{digits},}  {stats.frequencies[c]:>8.4f}  " \
              f"{stats.images_with_class[c]:>6}"
        row += "".join(f"  {_weight(weights[name][c]):>8}" for name in strategies)
        rows.append(row)
    ratio = stats.imbalance_ratio
    rows += [
        "",
        f"{stats.num_images:,} masks read of {result.files:,} files; {stats.total:,} valid "
        f"pixels; {stats.ignored:,} ignored (ignore_index={list(stats.ignore_index)})",
        f"imbalance ratio (largest / smallest present class): "
        f"{'n/a' if ratio != ratio else f'{ratio:,.4g}'}"
        + (f"; absent classes: {list(stats.absent_classes)}" if stats.absent_classes else ""),
    ]
    legend = ", ".join(f"{_SHORT_NAMES[name]}={name}" for name in strategies)
    rows += textwrap.wrap(f"weight columns: {legend} (beta=0.999)", 100,
                          subsequent_indent="  ", break_on_hyphens=False)
    if mostly_absent(stats):
        rows += textwrap.wrap(f"note: {len(stats.absent_classes)} of {stats.num_classes} classes "
                              f"never occur. {SPARSE_LABELS_HINT}", 100, subsequent_indent="  ")
    if result.skipped:
        rows.append(f"skipped {len(result.skipped)} bad file(s):")
        rows += [f"  {path}: {reason}" for path, reason in result.skipped]
    return "\n".join(rows)


def _weight(value: float) -> str:
    return f"{value:.4g}"
