"""Dataset-wide class statistics of segmentation masks (``seglosses scan`` produces them).

``ClassStats`` holds per-class pixel counts gathered over a mask dataset and turns them into
class weights with the same formulas the losses use on a batch (:func:`class_weights_from_counts`).
It is NumPy only: no framework is imported.
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ._spec import STRATEGIES, check_choice, check_ignore_index, check_number, fail
from ._weights import class_weights_from_counts

FORMAT = "seglosses.ClassStats"
VERSION = 1
_REQUIRED = ("counts", "images_with_class", "ignored", "num_images", "ignore_index")
_SHOWN_VALUES = 8


def _count(function: str, argument: str, value: object) -> int:
    """A non-negative int (NumPy ints accepted; bools and floats rejected)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise fail(function, argument, "be a non-negative int", repr(value), error=TypeError)
    number = operator.index(value)
    if number < 0:
        raise fail(function, argument, "be a non-negative int", number)
    return number


def _counts(function: str, argument: str, values: object) -> tuple[int, ...]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise fail(function, argument, "be a sequence of non-negative ints", repr(values),
                   error=TypeError)
    items = tuple(values)
    if any(isinstance(item, bool) or not hasattr(item, "__index__") for item in items):
        raise fail(function, argument, "hold ints only", list(items), error=TypeError)
    numbers = tuple(operator.index(item) for item in items)
    if any(n < 0 for n in numbers):
        raise fail(function, argument, "hold non-negative counts only", list(numbers))
    return numbers


def _fields(function: str, counts, images_with_class, ignored, num_images, ignore_index,
            class_names) -> dict:
    """Check and normalise the fields of a ``ClassStats``; errors name ``function``.

    A value of the wrong type raises ``TypeError``, a wrong value ``ValueError``.
    """
    counts = _counts(function, "counts", counts)
    if not counts:
        raise fail(function, "counts", "hold one count per class (at least one class)", "[]")
    images = _counts(function, "images_with_class", images_with_class)
    if len(images) != len(counts):
        raise fail(function, "images_with_class", f"have one entry per class, i.e. length "
                   f"{len(counts)} like counts", f"length {len(images)}")
    ignored = _count(function, "ignored", ignored)
    num_images = _count(function, "num_images", num_images)
    # an image that contains a class adds at least one pixel of it
    if any(i > min(num_images, n) for i, n in zip(images, counts, strict=True)):
        raise fail(function, "images_with_class", f"be <= num_images ({num_images}) and <= "
                   f"the class's count for every class (counts={list(counts)})", list(images))
    ignore = check_ignore_index(function, ignore_index)
    if class_names is not None:
        if isinstance(class_names, str) or not isinstance(class_names, Iterable):
            raise fail(function, "class_names", "be None or a sequence of str", repr(class_names),
                       error=TypeError)
        class_names = tuple(class_names)
        if len(class_names) != len(counts) or not all(isinstance(n, str) for n in class_names):
            raise fail(function, "class_names", f"hold {len(counts)} strings (one per class)",
                       repr(list(class_names)))
    return {"counts": counts, "images_with_class": images, "ignored": ignored,
            "num_images": num_images, "ignore_index": ignore, "class_names": class_names}


def _shown(values: np.ndarray) -> str:
    listed = ", ".join(str(v) for v in values[:_SHOWN_VALUES].tolist())
    more = f", ... ({values.size} distinct)" if values.size > _SHOWN_VALUES else ""
    return f"[{listed}{more}]"


@dataclass(frozen=True)
class ClassStats:
    """Per-class pixel statistics of a set of label masks.

    Fields are plain Python values (tuples of ints), so a ``ClassStats`` is immutable, hashable,
    compares by value and survives a JSON round trip exactly.

    Args:
        counts: valid (non-ignored) pixels of each class, length C.
        images_with_class: number of masks in which each class occurs, length C.
        ignored: pixels whose label is in ``ignore_index``.
        num_images: number of masks scanned.
        ignore_index: the ignored labels, a sorted tuple of ints (may be empty).
        class_names: optional names, one per class.

    Example:
        >>> import numpy as np
        >>> masks = [np.array([[0, 0, 1], [0, 2, 255]]), np.array([[0, 1], [1, 1]])]
        >>> stats = ClassStats.from_masks(masks, 3, ignore_index=255)
        >>> stats.counts, stats.images_with_class, stats.ignored, stats.num_images
        ((4, 4, 1), (2, 2, 1), 1, 2)
        >>> stats.frequencies.tolist()
        [0.4444444444444444, 0.4444444444444444, 0.1111111111111111]
        >>> stats.weights("inverse_frequency").tolist()
        [2.25, 2.25, 9.0]

        Streaming over a dataset, one mask at a time:

        >>> total = ClassStats.empty(3, ignore_index=255)
        >>> for mask in masks:
        ...     total = total + ClassStats.from_masks([mask], 3, ignore_index=255)
        >>> total == stats
        True
    """

    counts: tuple[int, ...]
    images_with_class: tuple[int, ...]
    ignored: int
    num_images: int
    ignore_index: tuple[int, ...] = ()
    class_names: tuple[str, ...] | None = None

    def __post_init__(self):
        checked = _fields("ClassStats", self.counts, self.images_with_class, self.ignored,
                          self.num_images, self.ignore_index, self.class_names)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ derived values

    @property
    def num_classes(self) -> int:
        """C, the number of classes."""
        return len(self.counts)

    @property
    def total(self) -> int:
        """Valid pixels: the sum of ``counts`` (ignored pixels excluded)."""
        return sum(self.counts)

    @property
    def frequencies(self) -> np.ndarray:
        """``counts / total`` as float64, shape (C,); all zeros when no pixel is valid."""
        counts = np.asarray(self.counts, dtype=np.float64)
        return counts / self.total if self.total > 0 else np.zeros_like(counts)

    @property
    def imbalance_ratio(self) -> float:
        """Largest count over smallest *non-zero* count, i.e. over the present classes.

        Absent classes are left out (they would make every ratio infinite; see
        :attr:`absent_classes`). 1.0 when one class is present, ``nan`` when none is.

        >>> ClassStats((900, 90, 0, 10), (1, 1, 0, 1), 0, 1).imbalance_ratio
        90.0
        """
        present = [n for n in self.counts if n > 0]
        return max(present) / min(present) if present else math.nan

    @property
    def absent_classes(self) -> tuple[int, ...]:
        """Indices of the classes with no valid pixel."""
        return tuple(c for c, n in enumerate(self.counts) if n == 0)

    def weights(self, method: str, *, beta: float = 0.999) -> np.ndarray:
        """Class weights from the counts, exactly :func:`class_weights_from_counts`.

        Args:
            method: a strategy (docs/semantics.md, class_weights): ``"inverse_frequency"``,
                ``"inverse_sqrt_frequency"``, ``"median_frequency"``, ``"effective_number"``,
                ``"log_inverse"``, or
                ``"balanced"`` (needs C = 2: class 0 the negatives, class 1 the positives).
            beta: the effective-number β in ``[0, 1)``.

        Returns:
            float64 array of shape (C,); absent classes get the largest present weight.

        >>> ClassStats((75, 25), (1, 1), 0, 1).weights("balanced").tolist()
        [0.25, 0.75]
        """
        function = "ClassStats.weights"
        check_choice(function, "method", method, STRATEGIES)
        check_number(function, "beta", beta, low=0.0, high=1.0, high_inclusive=False)
        if method == "balanced" and self.num_classes != 2:
            raise fail(function, "method", "name a multiclass strategy when there are "
                       f"{self.num_classes} classes ('balanced' needs C = 2: negatives, "
                       "positives)", repr(method))
        return class_weights_from_counts(self.counts, method, beta=beta)

    # ------------------------------------------------------------------ building

    @classmethod
    def empty(cls, num_classes: int, *, ignore_index=None,
              class_names=None) -> ClassStats:
        """Statistics of no mask at all: the start of a streaming sum."""
        num_classes = _num_classes("ClassStats.empty", num_classes)
        return cls((0,) * num_classes, (0,) * num_classes, 0, 0,
                   check_ignore_index("ClassStats.empty", ignore_index), class_names)

    @classmethod
    def from_masks(cls, masks: Iterable, num_classes: int, *, ignore_index=None,
                   class_names=None) -> ClassStats:
        """Count the classes of integer label masks, one mask per image.

        Args:
            masks: an iterable of integer (or bool) NumPy arrays of any shape, one per image;
                an ``(N, *spatial)`` array counts as N images.
            num_classes: C; every label must lie in ``[0, C)`` or be ignored.
            ignore_index: an int or a sequence of ints whose pixels are counted in ``ignored``
                only. Labels inside ``[0, C)`` may be ignored too.
            class_names: optional names, one per class.

        Raises:
            TypeError: a mask is not an integer array.
            ValueError: a mask holds labels outside ``[0, C)`` that are not ignored; the message
                names the values and the mask's position.

        >>> import numpy as np
        >>> ClassStats.from_masks(np.zeros((4, 8, 8), dtype=np.uint8), 2).images_with_class
        (4, 0)
        """
        function = "ClassStats.from_masks"
        num_classes = _num_classes(function, num_classes)
        ignore = check_ignore_index(function, ignore_index)
        if isinstance(masks, (str, bytes)) or not isinstance(masks, Iterable):
            raise fail(function, "masks", "be an iterable of integer arrays, one per image",
                       type(masks).__name__, error=TypeError)
        counts = np.zeros(num_classes, dtype=np.int64)
        images = np.zeros(num_classes, dtype=np.int64)
        ignored = num_images = 0
        for position, mask in enumerate(masks):
            flat = np.asarray(mask).reshape(-1)
            if flat.dtype.kind not in "biu":
                raise fail(function, f"masks[{position}]", "be an integer array of labels",
                           f"dtype {flat.dtype}", "Convert it with .astype(np.int64) if its "
                           "values are whole numbers.", error=TypeError)
            skip = np.isin(flat, ignore) if ignore else np.zeros(flat.shape, dtype=bool)
            valid = flat[~skip]
            if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
                bad = np.unique(valid[(valid < 0) | (valid >= num_classes)])
                raise fail(function, f"labels of masks[{position}]",
                           f"lie in [0, {num_classes}) or be ignored "
                           f"(ignore_index={list(ignore)})", f"values {_shown(bad)}",
                           "Pass ignore_index=... for labels that mark pixels to skip, or a "
                           "larger num_classes.")
            found = np.bincount(valid.astype(np.intp), minlength=num_classes)
            counts += found
            images += found > 0
            ignored += int(skip.sum())
            num_images += 1
        return cls(tuple(counts.tolist()), tuple(images.tolist()), ignored, num_images,
                   ignore, class_names)

    def update(self, mask) -> ClassStats:
        """A new ``ClassStats`` that also counts ``mask`` (one image), with this C and ignore."""
        return self + ClassStats.from_masks([mask], self.num_classes,
                                            ignore_index=self.ignore_index)

    def __add__(self, other: ClassStats) -> ClassStats:
        """Merge the statistics of two disjoint sets of masks (same C and ignore_index)."""
        if not isinstance(other, ClassStats):
            return NotImplemented
        function = "ClassStats.__add__"
        if other.num_classes != self.num_classes:
            raise fail(function, "other", f"have the same number of classes ({self.num_classes})",
                       other.num_classes)
        if other.ignore_index != self.ignore_index:
            raise fail(function, "other", f"have the same ignore_index {list(self.ignore_index)}",
                       list(other.ignore_index))
        names = self.class_names if self.class_names is not None else other.class_names
        if other.class_names is not None and other.class_names != names:
            raise fail(function, "other", f"have the same class_names {list(names)}",
                       list(other.class_names))
        return ClassStats(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            tuple(a + b for a, b in zip(self.images_with_class, other.images_with_class,
                                        strict=True)),
            self.ignored + other.ignored, self.num_images + other.num_images,
            self.ignore_index, names)

    def __radd__(self, other: object) -> ClassStats:
        """``0 + stats`` is ``stats``, so ``sum(list_of_stats)`` works."""
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        """A JSON-ready dict tagged with ``"format": "seglosses.ClassStats"`` and ``"version"``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "counts": list(self.counts),
            "images_with_class": list(self.images_with_class),
            "ignored": self.ignored,
            "num_images": self.num_images,
            "ignore_index": list(self.ignore_index),
            "class_names": None if self.class_names is None else list(self.class_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ClassStats:
        """Inverse of :meth:`to_dict`; checks the format tag, the keys and the values."""
        return cls._from_dict("ClassStats.from_dict", data)

    @classmethod
    def _from_dict(cls, function: str, data: object) -> ClassStats:
        if not isinstance(data, Mapping):
            raise fail(function, "data", "be a JSON object (a dict)", type(data).__name__)
        if data.get("format") != FORMAT:
            raise fail(function, "format", f"be {FORMAT!r}", repr(data.get("format")))
        if data.get("version") != VERSION:
            raise fail(function, "version", f"be {VERSION} (the version this seglosses reads)",
                       repr(data.get("version")))
        for key in _REQUIRED:
            if key not in data:
                raise fail(function, key, "be present", f"keys {sorted(data)}")
        try:
            fields = _fields(function, data["counts"], data["images_with_class"],
                             data["ignored"], data["num_images"], data["ignore_index"],
                             data.get("class_names"))
        except TypeError as error:  # in a file, a value of the wrong type is a bad value
            raise ValueError(str(error)) from None
        return cls(**fields)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The statistics as JSON text (see :meth:`to_dict`); also written to ``path`` if given.

        >>> text = ClassStats((3, 1), (1, 1), 0, 1).to_json()
        >>> ClassStats.from_json(text) == ClassStats((3, 1), (1, 1), 0, 1)
        True
        """
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | bytes | os.PathLike) -> ClassStats:
        """Read :meth:`to_json`'s output from JSON text or from a file.

        A ``str`` that starts (after whitespace) with ``{`` or ``[`` is JSON text; any other
        ``str`` or path-like is a file path. Unknown keys are ignored; a missing key, a wrong
        ``format``/``version``, a negative count or a length mismatch raises ``ValueError``
        naming the key.
        """
        function = "ClassStats.from_json"
        if isinstance(text_or_path, bytes):
            text_or_path = text_or_path.decode("utf-8")
        if isinstance(text_or_path, str) and text_or_path.lstrip()[:1] in ("{", "["):
            text = text_or_path
        elif isinstance(text_or_path, (str, os.PathLike)):
            if not os.path.isfile(text_or_path):
                raise fail(function, "text_or_path", "be JSON text or the path of an existing "
                           "file", repr(os.fspath(text_or_path)), error=FileNotFoundError)
            with open(text_or_path, encoding="utf-8") as file:
                text = file.read()
        else:
            raise fail(function, "text_or_path", "be JSON text or a path",
                       type(text_or_path).__name__, error=TypeError)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise fail(function, "text_or_path", "hold valid JSON", str(error)) from None
        return cls._from_dict(function, data)

    # ------------------------------------------------------------------ display

    def summary(self) -> str:
        """A small table (class, pixels, fraction, images) for the CLI.

        >>> print(ClassStats((9000, 900, 0, 100), (2, 1, 0, 1), 5, 2,
        ...                  class_names=("road", "car", "bike", "sign")).summary())
        class   pixels  fraction  images
        0 road   9,000    0.9000       2
        1 car      900    0.0900       1
        2 bike       0    0.0000       0
        3 sign     100    0.0100       1
        2 images, 10,000 valid pixels, 5 ignored (ignore_index=[])
        imbalance ratio (present classes): 90; absent classes: [2]
        """
        labels = [f"{c} {self.class_names[c]}" if self.class_names else str(c)
                  for c in range(self.num_classes)]
        width = max(len("class"), *(len(label) for label in labels)) + 2
        digits = max(len("pixels"), *(len(f"{n:,}") for n in self.counts))
        rows = [f"{'class':<{width}}{'pixels':>{digits}}  fraction  images"]
        for label, n, f, k in zip(labels, self.counts, self.frequencies.tolist(),
                                  self.images_with_class, strict=True):
            rows.append(f"{label:<{width}}{n:>{digits},}  {f:>8.4f}  {k:>6}")
        rows.append(f"{self.num_images} images, {self.total:,} valid pixels, {self.ignored:,} "
                    f"ignored (ignore_index={list(self.ignore_index)})")
        rows.append(f"imbalance ratio (present classes): {self.imbalance_ratio:.4g}; "
                    f"absent classes: {list(self.absent_classes)}")
        return "\n".join(rows)


def _num_classes(function: str, value: object) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise fail(function, "num_classes", "be an int", repr(value), error=TypeError)
    number = operator.index(value)
    if number < 1:
        raise fail(function, "num_classes", "be >= 1", number)
    return number
