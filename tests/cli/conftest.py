"""Fixtures that write small real-format files (PNG, TIFF, NPY/NPZ, NIfTI) under tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _optional import needs

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]  # class c has colour PALETTE[c]


class Files:
    """Writers of one file each; every method returns the path it wrote."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, relative: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def png(self, relative: str, array: np.ndarray) -> Path:
        """Grey 8/16-bit (by dtype) or RGB(A) PNG."""
        path = self._path(relative)
        Image.fromarray(np.ascontiguousarray(array)).save(path)
        return path

    def palette_png(self, relative: str, labels: np.ndarray, colours=PALETTE) -> Path:
        """A mode-'P' PNG whose pixel values are ``labels`` (palette indices)."""
        path = self._path(relative)
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        flat = [value for colour in colours for value in colour]
        image.putpalette(flat + [0] * (768 - len(flat)))
        image.save(path)
        return path

    def tiff(self, relative: str, array: np.ndarray) -> Path:
        path = self._path(relative)
        try:
            import tifffile
        except ImportError:
            Image.fromarray(np.ascontiguousarray(array)).save(path)
        else:
            tifffile.imwrite(path, array)
        return path

    def npy(self, relative: str, array: np.ndarray) -> Path:
        path = self._path(relative)
        np.save(path, array)
        return path

    def npz(self, relative: str, **arrays) -> Path:
        path = self._path(relative)
        np.savez(path, **arrays)
        return path

    def nifti(self, relative: str, array: np.ndarray) -> Path:
        nibabel = needs("nibabel")
        path = self._path(relative)
        nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), str(path))
        return path

    def raw(self, relative: str, data: bytes) -> Path:
        path = self._path(relative)
        path.write_bytes(data)
        return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
    spinning threads make each step ~100x slower; restore the setting afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def files(tmp_path) -> Files:
    return Files(tmp_path)


def random_masks(rng, count: int, shape=(12, 10), num_classes: int = 4, ignore: int | None = 255):
    """Integer masks with a few ignored pixels; class ``num_classes - 1`` is rare."""
    masks = []
    for _ in range(count):
        mask = rng.integers(0, num_classes - 1, shape).astype(np.uint8)
        mask[rng.random(shape) < 0.03] = num_classes - 1
        if ignore is not None:
            mask[rng.random(shape) < 0.05] = ignore
        masks.append(mask)
    return masks


@pytest.fixture
def make_masks(rng):
    """``make_masks(count, shape=..., num_classes=..., ignore=...)``: see :func:`random_masks`."""
    return lambda count, **options: random_masks(rng, count, **options)


@pytest.fixture
def grey_folder(files, rng):
    """``root/images/*.png`` (8-bit grey) + ``root/masks/*.png`` (labels 0..3 and 255), 6 pairs
    of 12×10 pixels; returns ``(root, masks)`` with the masks in stem order."""
    masks = random_masks(rng, 6)
    for index, mask in enumerate(masks):
        files.png(f"data/images/img{index}.png", rng.integers(0, 256, mask.shape, np.uint8))
        files.png(f"data/masks/img{index}.png", mask)
    return files.root / "data", masks
