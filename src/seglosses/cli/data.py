"""Datasets of the ``seglosses`` command: a built-in synthetic set and the folder format.

Two datasets give ``(image, mask)`` pairs, ``image`` float32 ``(in_channels, *size)`` in
[0, 1] and ``mask`` int64 ``(*size)``:

- :class:`SyntheticSegmentation` draws images on the fly, deterministically (no download).
  Shape classes of very different sizes make the class imbalance real.
- :class:`FolderSegmentation` reads ``root/images/*`` and ``root/masks/*``, matched by file stem.

Each item is read with :mod:`seglosses.cli.readers`. :func:`build_datasets` turns the ``--data``
argument into a train set, a validation set and a :class:`DatasetInfo`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .._spec import check_ignore_index, fail
from .readers import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    check_dims,
    check_labels,
    normalise_palette,
    read_image,
    read_mask,
    split_suffix,
)
from .scan import SPARSE_LABELS_HINT, mostly_absent, scan_masks

__all__ = ["DatasetInfo", "FolderSegmentation", "SyntheticSegmentation", "build_datasets"]

# --------------------------------------------------------------------------------------------
# Synthetic data


_KINDS = ("blob", "ellipse", "box", "ring", "line", "dot")
_PRESENCE = 0.85  # each shape kind appears in an image with this probability


class SyntheticSegmentation(Dataset):
    """Images of shapes with very different sizes, drawn deterministically on the fly.

    Class 0 is the background; the others cycle through a large irregular blob (about a fifth
    of the pixels), medium ellipses, boxes, thin rings, thin lines and tiny dots (well under
    1 % of the pixels), drawn in that order so small shapes lie on top. Each class has its own
    mean intensity (per channel when ``in_channels > 1``) with a little jitter per shape, then
    the image is blurred and gets a smooth illumination gradient and Gaussian noise: a small
    U-Net learns it in a few epochs, yet the small classes stay hard. ``dims=3`` draws the same
    shapes in volumes (spheres, shells, tubes). With ``num_classes=1`` the mask is binary:
    1 on any shape, 0 on the background.

    Image ``i`` depends only on ``(seed, i)``, so every epoch, worker and process sees the same
    data.

    Args:
        num_images: length of the dataset.
        num_classes: C >= 1 (default 7: background and the six shape kinds).
        size: spatial size, ``(H, W)`` for ``dims=2`` or ``(D, H, W)`` for ``dims=3``; an int
            gives a square/cube.
        dims: 2 or 3.
        seed: a non-negative int.
        in_channels: image channels.

    ``__getitem__(i)`` returns ``(image, mask)``: float32 ``(in_channels, *size)`` in [0, 1] and
    int64 ``(*size)``.

    Example:
        >>> data = SyntheticSegmentation(4, size=(32, 48))
        >>> image, mask = data[0]
        >>> tuple(image.shape), tuple(mask.shape), mask.dtype, data.class_names[1]
        ((1, 32, 48), (32, 48), torch.int64, 'blob')
    """

    def __init__(self, num_images: int = 64, *, num_classes: int = 7,
                 size: Sequence[int] | int = (96, 96), dims: int = 2, seed: int = 0,
                 in_channels: int = 1):
        function = "SyntheticSegmentation"
        self.dims = check_dims(function, dims)
        self.size = _size(function, "size", size, dims)
        if min(self.size) < 8:
            raise fail(function, "size", "be at least 8 along every axis", self.size)
        self.num_images = _positive(function, "num_images", num_images, low=0)
        self.num_classes = _positive(function, "num_classes", num_classes)
        self.in_channels = _positive(function, "in_channels", in_channels)
        self.seed = _positive(function, "seed", seed, low=0)
        kinds = [_KINDS[(c - 1) % len(_KINDS)] for c in range(1, max(self.num_classes, 2))]
        self._kinds = tuple(kinds)
        if self.num_classes == 1:
            self.class_names = ("foreground",)
        else:
            names = ["background"]
            for position, kind in enumerate(kinds):
                repeat = position // len(_KINDS)
                names.append(kind if repeat == 0 else f"{kind}{repeat + 1}")
            self.class_names = tuple(names)
        # Class means: background darkest, smaller shapes brighter (more contrast where the
        # blur hurts most). Extra channels get fixed, class-specific random values.
        labels = len(kinds) + 1
        table = np.empty((labels, self.in_channels), dtype=np.float32)
        table[:, 0] = np.linspace(0.1, 0.9, labels)
        if self.in_channels > 1:
            colours = np.random.default_rng(0x5E6).uniform(0.1, 0.9, (labels, self.in_channels))
            table[:, 1:] = colours[:, 1:]
        self._means = table
        self._grid = None

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = _index(index, self.num_images)
        image, labels = self.generate(index)
        if self.num_classes == 1:
            labels = (labels > 0).astype(np.int64)
        return torch.from_numpy(image), torch.from_numpy(labels)

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index`` as NumPy arrays: float32 ``(in_channels, *size)``, int64 ``(*size)``
        holding the multiclass labels (before the ``num_classes=1`` binarisation)."""
        from scipy.ndimage import gaussian_filter

        rng = np.random.default_rng([self.seed, index])
        if self._grid is None:
            self._grid = np.indices(self.size, dtype=np.float32)
        grid, size = self._grid, np.asarray(self.size, dtype=np.float64)
        scale = float(size.min())
        labels = np.zeros(self.size, dtype=np.int64)
        shade = np.empty((self.in_channels, *self.size), dtype=np.float32)
        shade[:] = self._means[0].reshape(-1, *([1] * self.dims))
        for label, kind in enumerate(self._kinds, start=1):
            if rng.random() > _PRESENCE:
                continue
            for _ in range(_COUNTS[kind](rng)):
                inside = _DRAW[kind](rng, grid, size, scale)
                jitter = rng.normal(0.0, 0.02, self.in_channels).astype(np.float32)
                labels[inside] = label
                shade[:, inside] = (self._means[label] + jitter)[:, None]
        sigma = 0.6
        image = np.stack([gaussian_filter(channel, sigma) for channel in shade])
        direction = rng.normal(size=self.dims)
        direction /= np.linalg.norm(direction) + 1e-12
        ramp = np.tensordot(direction, (grid / float(scale)) - 0.5, axes=1).astype(np.float32)
        image += 0.06 * ramp[None] + rng.normal(0.0, 0.05, image.shape).astype(np.float32)
        return np.clip(image, 0.0, 1.0).astype(np.float32), labels


def _rotation(rng, dims) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dims, dims)))
    return q * np.sign(np.diag(r))


def _centre(rng, size, low=0.15, high=0.85):
    return rng.uniform(low, high, len(size)) * (size - 1)


def _offsets(grid, centre):
    return grid - centre.reshape(-1, *([1] * (grid.ndim - 1))).astype(np.float32)


def _blob(rng, grid, size, scale):
    radius = rng.uniform(0.22, 0.30) * scale
    delta = _offsets(grid, _centre(rng, size, 0.35, 0.65))
    distance = np.sqrt((delta ** 2).sum(0))
    wobble = np.ones_like(distance)
    for k in (1, 2, 3):  # low-frequency bumps on the radius, in any number of dims
        direction = rng.normal(size=len(size))
        direction *= k / (np.linalg.norm(direction) * radius)
        phase = np.tensordot(direction, delta, axes=1) + rng.uniform(0, 2 * np.pi)
        wobble += rng.uniform(0.05, 0.12) * np.cos(2.0 * phase)
    return distance < radius * wobble


def _ellipse(rng, grid, size, scale):
    axes = rng.uniform(0.05, 0.11, len(size)) * scale
    local = np.tensordot(_rotation(rng, len(size)), _offsets(grid, _centre(rng, size)), axes=1)
    return (((local / axes.reshape(-1, *([1] * len(size)))) ** 2).sum(0)) < 1.0


def _box(rng, grid, size, scale):
    half = rng.uniform(0.035, 0.07, len(size)) * scale
    local = np.tensordot(_rotation(rng, len(size)), _offsets(grid, _centre(rng, size)), axes=1)
    return (np.abs(local) / half.reshape(-1, *([1] * len(size)))).max(0) < 1.0


def _ring(rng, grid, size, scale):
    radius = rng.uniform(0.06, 0.10) * scale
    distance = np.sqrt((_offsets(grid, _centre(rng, size)) ** 2).sum(0))
    return np.abs(distance - radius) < rng.uniform(0.6, 0.9)


def _line(rng, grid, size, scale):
    start = _centre(rng, size, 0.1, 0.9)
    direction = rng.normal(size=len(size))
    direction *= rng.uniform(0.2, 0.45) * scale / np.linalg.norm(direction)
    delta = _offsets(grid, start)
    along = np.tensordot(direction, delta, axes=1) / float(direction @ direction)
    nearest = np.clip(along, 0.0, 1.0)
    gap = delta - nearest[None] * direction.reshape(-1, *([1] * len(size))).astype(np.float32)
    return np.sqrt((gap ** 2).sum(0)) < rng.uniform(0.55, 0.85)


def _dot(rng, grid, size, scale):
    distance = np.sqrt((_offsets(grid, _centre(rng, size, 0.05, 0.95)) ** 2).sum(0))
    return distance < rng.uniform(0.8, 1.5)


_DRAW = {"blob": _blob, "ellipse": _ellipse, "box": _box, "ring": _ring, "line": _line,
         "dot": _dot}
_COUNTS = {
    "blob": lambda rng: 1,
    "ellipse": lambda rng: int(rng.integers(1, 4)),
    "box": lambda rng: int(rng.integers(1, 3)),
    "ring": lambda rng: int(rng.integers(1, 3)),
    "line": lambda rng: int(rng.integers(1, 3)),
    "dot": lambda rng: int(rng.integers(2, 7)),
}


# --------------------------------------------------------------------------------------------
# The folder format


def _listing(function: str, folder: str, suffixes, role: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        stem, suffix = split_suffix(name)
        if name.startswith(".") or suffix not in suffixes or not os.path.isfile(path):
            continue
        if stem in found:
            raise fail(function, f"{role} {path}", f"have a file stem of its own in {folder}",
                       f"the same stem as {found[stem]}")
        found[stem] = path
    return found


def pair_files(root: str | os.PathLike, *, function: str = "FolderSegmentation"
               ) -> list[tuple[str, str]]:
    """``[(image_path, mask_path), ...]`` of ``root/images`` and ``root/masks``, by file stem,
    sorted; every image needs a mask and every mask an image."""
    root = os.fspath(root)
    images_dir, masks_dir = os.path.join(root, "images"), os.path.join(root, "masks")
    for folder in (images_dir, masks_dir):
        if not os.path.isdir(folder):
            raise fail(function, "root", "be a folder with images/ and masks/ subfolders "
                       "(files matched by stem)", repr(root), f"{folder} is missing.")
    images = _listing(function, images_dir, IMAGE_SUFFIXES, "image")
    masks = _listing(function, masks_dir, MASK_SUFFIXES, "mask")
    for stem, path in images.items():
        if stem not in masks:
            raise fail(function, f"image {path}", f"have a mask with the same file stem in "
                       f"{masks_dir}", "none", f"Expected e.g. {masks_dir}/{stem}.png.")
    for stem, path in masks.items():
        if stem not in images:
            raise fail(function, f"mask {path}", f"have an image with the same file stem in "
                       f"{images_dir}", "none")
    if not images:
        raise fail(function, "root", f"hold images in {images_dir}", "no image file",
                   "Supported: " + ", ".join(IMAGE_SUFFIXES))
    return [(images[stem], masks[stem]) for stem in sorted(images)]


class FolderSegmentation(Dataset):
    """Images and masks from ``root/images/*`` and ``root/masks/*``, matched by file stem.

    Images: 8/16-bit grey or RGB PNG/TIFF, JPEG, NPY/NPZ, NIfTI (``.nii``/``.nii.gz``, with
    nibabel) for ``dims=3``; see :func:`read_image` for the layout and the scaling to [0, 1].
    Masks: see :func:`read_mask` (palette PNG → indices; RGB masks need ``palette``).

    With ``crop`` (one size per spatial axis, or an int for all), every pair is cut to that
    size: a random window when ``train=True`` (drawn from ``(seed, epoch, index)``; call
    :meth:`set_epoch` each epoch for new windows), the centre one otherwise. Axes shorter than
    ``crop`` are zero-padded (at a random offset when training, centred otherwise); padded mask
    pixels get ``ignore_index`` when set, else 0. Without ``crop`` the sizes are left alone
    (batches then need equal sizes).

    Args:
        root: the folder.
        num_classes: C; ``None`` scans the masks (max label + 1, ignored labels left out).
            ``num_classes=1`` means binary masks with labels {0, 1}.
        ignore_index: the label of pixels to ignore (an int), or None.
        crop: output size, or None.
        dims: 2 or 3 spatial axes.
        seed: seed of the random crops.
        train: random crops (True) or centred ones (False).
        palette: for RGB masks, a mapping ``(r, g, b) -> class``.

    ``__getitem__`` returns float32 ``(in_channels, *size)`` and int64 ``(*size)`` tensors and
    raises ``ValueError`` naming the file for an unreadable file, an image and mask of different
    sizes, a channel count unlike the first image's, or a label outside ``[0, C)`` that is not
    ignored.
    """

    def __init__(self, root: str | os.PathLike, *, num_classes: int | None = None,
                 ignore_index: int | None = None, crop: Sequence[int] | int | None = None,
                 dims: int = 2, seed: int = 0, train: bool = True,
                 palette: Mapping | Sequence | None = None):
        function = "FolderSegmentation"
        self.root = os.fspath(root)
        self.dims = check_dims(function, dims)
        self.ignore_index = _ignore(function, ignore_index)
        self.crop = None if crop is None else _size(function, "crop", crop, dims)
        self.seed = _positive(function, "seed", seed, low=0)
        self.train = bool(train)
        if palette is not None:
            normalise_palette(function, palette)  # fail early on a malformed palette
        self.palette = palette
        self.files = pair_files(self.root, function=function)
        if num_classes is None:
            num_classes = infer_num_classes([mask for _, mask in self.files],
                                            ignore_index=self.ignore_index, palette=self.palette)
        self.num_classes = _positive(function, "num_classes", num_classes)
        self.class_names = default_class_names(self.num_classes)
        self.in_channels = int(read_image(self.files[0][0], dims=self.dims).shape[0])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the random crops of ``epoch`` (like ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        function = "FolderSegmentation"
        index = _index(index, len(self.files))
        image_path, mask_path = self.files[index]
        image = read_image(image_path, dims=self.dims)
        mask = read_mask(mask_path, palette=self.palette, dims=self.dims)
        if image.shape[1:] != mask.shape:
            raise fail(function, f"mask {mask_path}", f"have the size of its image "
                       f"{image_path}, {tuple(image.shape[1:])}", tuple(mask.shape))
        if image.shape[0] != self.in_channels:
            raise fail(function, f"image {image_path}", f"have {self.in_channels} channel(s) "
                       f"like {self.files[0][0]}", image.shape[0])
        check_labels(function, mask_path, mask, self.num_classes, self.ignore_index)
        mask = mask.astype(np.int64)
        if self.crop is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
            fill = 0 if self.ignore_index is None else self.ignore_index
            image, mask = fit(image, mask, self.crop, rng=rng, fill=fill)
        return torch.from_numpy(np.ascontiguousarray(image)), \
            torch.from_numpy(np.ascontiguousarray(mask))


def fit(image: np.ndarray, mask: np.ndarray, size: Sequence[int], *, rng=None, fill: int = 0):
    """Crop/pad ``image`` (C, *S) and ``mask`` (*S) to ``size``: random windows with ``rng``,
    centred ones without; padded image pixels are 0 and padded mask pixels ``fill``."""
    crops, pads = [slice(None)], []
    for have, want in zip(mask.shape, size, strict=True):
        spare = abs(have - want)
        start = int(rng.integers(0, spare + 1)) if rng is not None else spare // 2
        if have >= want:
            crops.append(slice(start, start + want))
            pads.append((0, 0))
        else:
            crops.append(slice(None))
            pads.append((start, spare - start))
    image, mask = image[tuple(crops)], mask[tuple(crops[1:])]
    if any(p != (0, 0) for p in pads):
        image = np.pad(image, [(0, 0), *pads])
        mask = np.pad(mask, pads, constant_values=fill)
    return image, mask


def default_class_names(num_classes: int) -> tuple[str, ...]:
    return ("foreground",) if num_classes == 1 else tuple(f"class_{c}" for c in range(num_classes))


def infer_num_classes(mask_paths, *, ignore_index=None, palette=None) -> int:
    """C = largest label + 1 over the masks (ignored labels left out), by a streaming scan.

    Refuses a C most of whose classes never occur (masks holding 255 without an ignore index
    would otherwise give a 256-class model without a word)."""
    stats = scan_masks(list(mask_paths), ignore_index=ignore_index, palette=palette,
                       progress=False).stats
    if mostly_absent(stats):
        raise fail("infer_num_classes", "the masks' labels", "be mostly classes that occur "
                   f"when C is inferred as largest label + 1 = {stats.num_classes}",
                   f"{len(stats.absent_classes)} of {stats.num_classes} classes that never "
                   "occur", f"{SPARSE_LABELS_HINT} Give --num-classes if C is really "
                   f"{stats.num_classes}.")
    return stats.num_classes


# --------------------------------------------------------------------------------------------
# build_datasets


@dataclass(frozen=True)
class DatasetInfo:
    """What the trainer needs to know about the data (JSON-ready with ``dataclasses.asdict``)."""

    name: str
    num_classes: int
    in_channels: int
    class_names: tuple[str, ...]
    dims: int
    ignore_index: int | None
    num_train: int
    num_val: int


def build_datasets(data: str, *, dims: int = 2, num_classes: int | None = None,
                   size: Sequence[int] | int | None = None, val_split: float = 0.2,
                   seed: int = 0, ignore_index: int | None = None,
                   crop: Sequence[int] | int | None = None, num_images: int | None = None,
                   palette: Mapping | Sequence | None = None, folds: int = 1, fold: int = 0
                   ) -> tuple[Dataset, Dataset, DatasetInfo]:
    """The train and validation sets of ``--data``, and a :class:`DatasetInfo`.

    Args:
        data: ``"synthetic"`` (the built-in :class:`SyntheticSegmentation`) or a folder. A folder
            with ``train/`` and ``val/`` subfolders (each with ``images/`` and ``masks/``) uses
            them; otherwise its ``images/`` and ``masks/`` are split by a seeded permutation.
        dims: 2 or 3.
        num_classes: C; for a folder ``None`` scans the masks (max label + 1); synthetic
            default 7.
        size: synthetic image size (default ``(96, 96)``, or ``(32, 32, 32)`` for 3-D; ``crop``
            stands in when ``size`` is None). For a folder, ``size`` stands in for ``crop``.
        val_split: fraction of the images for validation, in ``[0, 1)``; at least one image
            goes to validation when it is > 0 and there are two or more images.
        seed: seed of the split, the random crops and the synthetic images.
        ignore_index: the label to ignore (also the label of padded mask pixels).
        crop: crop/pad size of the folder images (random crops for training, centred for
            validation).
        num_images: synthetic: the number of images (default 64 for 2-D, 16 for 3-D), split
            into train and val; folder: use only the first ``num_images`` pairs (by stem) of
            the folder, or of each of ``train/`` and ``val/``.
        palette: for RGB masks, a mapping ``(r, g, b) -> class``.
        folds, fold: with ``folds`` K > 1, cross-validation: the images (one pool: synthetic,
            or a folder without ``train/`` and ``val/``) are split by a seeded permutation into
            K parts of near-equal size; part ``fold`` validates, the others train
            (``val_split`` is then unused).

    Returns:
        ``(train, val, info)``: datasets yielding ``(image, mask)`` tensor pairs.
    """
    function = "build_datasets"
    dims = check_dims(function, dims)
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) or \
            not 0.0 <= val_split < 1.0:
        raise fail(function, "val_split", "be a number in [0, 1)", repr(val_split))
    ignore_index = _ignore(function, ignore_index)
    if num_images is not None:
        num_images = _positive(function, "num_images", num_images)
    if data == "synthetic":
        shape = size if size is not None else crop if crop is not None else \
            ((96, 96) if dims == 2 else (32, 32, 32))
        total = num_images if num_images is not None else (64 if dims == 2 else 16)
        dataset = SyntheticSegmentation(total, num_classes=7 if num_classes is None
                                        else num_classes, size=shape, dims=dims, seed=seed)
        if folds > 1:
            train_index, val_index = _fold_split(function, total, folds, fold, seed)
        else:
            num_val = _num_val(total, val_split)
            train_index, val_index = range(total - num_val), range(total - num_val, total)
        train, val = Subset(dataset, train_index), Subset(dataset, val_index)
        return train, val, DatasetInfo("synthetic", dataset.num_classes, dataset.in_channels,
                                       dataset.class_names, dims, ignore_index, len(train),
                                       len(val))
    root = os.fspath(data)
    if not os.path.isdir(root):
        raise fail(function, "data", "be 'synthetic' or an existing folder", repr(data),
                   "A folder holds images/ and masks/, or train/ and val/ with those inside.")
    crop = crop if crop is not None else size
    options = dict(ignore_index=ignore_index, crop=crop, dims=dims, seed=seed, palette=palette)
    split = all(os.path.isdir(os.path.join(root, name)) for name in ("train", "val"))
    roots = (os.path.join(root, "train"), os.path.join(root, "val")) if split else (root,)
    if num_classes is None:
        masks = [mask for folder in roots
                 for _, mask in pair_files(folder, function=function)[:num_images]]
        num_classes = infer_num_classes(masks, ignore_index=ignore_index, palette=palette)
    if split and folds > 1:
        raise fail(function, "folds", "be 1 for a folder with train/ and val/ (its split is "
                   "fixed)", folds, "Cross-validation needs one pool: images/ and masks/.")
    if split:
        train_set = FolderSegmentation(roots[0], num_classes=num_classes, train=True, **options)
        val_set = FolderSegmentation(roots[1], num_classes=num_classes, train=False, **options)
        train = Subset(train_set, range(min(len(train_set), num_images or len(train_set))))
        val = Subset(val_set, range(min(len(val_set), num_images or len(val_set))))
    else:
        train_set = FolderSegmentation(root, num_classes=num_classes, train=True, **options)
        val_set = FolderSegmentation(root, num_classes=num_classes, train=False, **options)
        total = min(len(train_set), num_images or len(train_set))
        if folds > 1:
            train_index, val_index = _fold_split(function, total, folds, fold, seed)
        else:
            order = np.random.default_rng(seed).permutation(total).tolist()
            num_val = _num_val(total, val_split)
            train_index, val_index = sorted(order[num_val:]), sorted(order[:num_val])
        train, val = Subset(train_set, train_index), Subset(val_set, val_index)
    if val_set.in_channels != train_set.in_channels:
        raise fail(function, "data", "hold images with the same channels in train/ and val/",
                   f"{train_set.in_channels} and {val_set.in_channels}")
    name = os.path.basename(os.path.normpath(root)) or root
    return train, val, DatasetInfo(name, train_set.num_classes, train_set.in_channels,
                                   train_set.class_names, dims, ignore_index, len(train),
                                   len(val))


# --------------------------------------------------------------------------------------------
# Small checks


def _fold_split(function: str, total: int, folds: int, fold: int, seed: int):
    """Image indices ``(train, val)`` of fold ``fold`` of ``folds`` (a seeded permutation)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= total:
        raise fail(function, "folds", f"be an int in [2, {total}] (one image per fold at "
                   "least)", repr(folds))
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise fail(function, "fold", f"be an int in [0, {folds})", repr(fold))
    parts = np.array_split(np.random.default_rng(seed).permutation(total), folds)
    val = sorted(parts[fold].tolist())
    return sorted(set(range(total)) - set(val)), val


def _num_val(total: int, val_split: float) -> int:
    if val_split <= 0 or total < 2:
        return 0
    return min(total - 1, max(1, round(total * val_split)))


def _positive(function: str, argument: str, value, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise fail(function, argument, f"be an int >= {low}", repr(value))
    return int(value)


def _size(function: str, argument: str, value, dims: int) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * dims
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != dims or \
            any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                for v in value):
        raise fail(function, argument, f"be {dims} positive ints (one per spatial axis) or one "
                   f"int", repr(value))
    return tuple(int(v) for v in value)


def _ignore(function: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise fail(function, "ignore_index", "be an int or None", repr(value), error=TypeError)
    return check_ignore_index(function, int(value))[0]


def _index(index, length: int) -> int:
    if isinstance(index, torch.Tensor):
        index = int(index)
    index = int(index)
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} images")
    return index % length
