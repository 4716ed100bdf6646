"""Reading one image or mask file, NumPy only (no torch): what ``seglosses scan`` needs, and what
the datasets of :mod:`seglosses.cli.data` read each item with.

:func:`read_image` and :func:`read_mask` read one file in any supported format (PNG, TIFF, NPY,
NPZ, JPEG images, and NIfTI when ``nibabel`` is installed); :func:`check_labels` checks a mask's
labels against the number of classes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from .._spec import fail

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "check_labels",
    "read_image",
    "read_mask",
    "split_suffix",
]

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".npz", ".nii", ".nii.gz")
IMAGE_SUFFIXES = MASK_SUFFIXES + (".jpg", ".jpeg")
_PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
_SHOWN_COLOURS = 8


# --------------------------------------------------------------------------------------------
# Reading one file


def split_suffix(path: str | os.PathLike) -> tuple[str, str]:
    """``("name", ".nii.gz")`` for ``dir/name.nii.gz``: the stem and the (lower-case) suffix."""
    name = os.path.basename(os.fspath(path))
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    stem, suffix = os.path.splitext(name)
    return stem, suffix.lower()


def _file_error(function: str, path, expectation: str, actual: object, hint: str = ""):
    return fail(function, f"file {os.fspath(path)}", expectation, actual, hint)


def _read_pil(path, *, mask: bool) -> tuple[np.ndarray, bool]:
    """Array of a PNG/JPEG/TIFF read by Pillow, and whether its last axis is colour."""
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        frames = [_pil_frame(frame.copy(), mask=mask)
                  for frame in ImageSequence.Iterator(image)]
    if len(frames) == 1:
        return frames[0]
    return np.stack([frame for frame, _ in frames]), frames[0][1]  # a multi-page TIFF volume


def _pil_frame(image, *, mask: bool) -> tuple[np.ndarray, bool]:
    mode = image.mode
    if mode in ("P", "PA") and not mask:  # a palette *image*: its colours, not its indices
        image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
        mode = image.mode
    if mode in ("LA", "PA"):
        return np.asarray(image)[..., 0], False
    if mode == "1":
        return np.asarray(image).astype(np.uint8), False
    if mode in ("L", "P", "I;16", "F"):
        return np.asarray(image), False
    if mode.startswith("I;16"):  # big-endian variants
        return np.asarray(image).astype(np.uint16), False
    if mode == "I":  # 32-bit int; most often a 16-bit PNG read by an older Pillow
        array = np.asarray(image)
        if array.size and array.min() >= 0 and array.max() <= np.iinfo(np.uint16).max:
            array = array.astype(np.uint16)
        return array, False
    if mode != "RGB":
        image = image.convert("RGBA" if "A" in mode else "RGB")
    return np.asarray(image)[..., :3], True


def _read_raw(function: str, path, *, mask: bool) -> tuple[np.ndarray, str]:
    """The stored array and its layout: ``"colour-last"``, ``"nifti"`` or ``"array"``."""
    _, suffix = split_suffix(path)
    allowed = MASK_SUFFIXES if mask else IMAGE_SUFFIXES
    if suffix not in allowed:
        raise _file_error(function, path, "have one of the suffixes " + ", ".join(allowed),
                          repr(suffix))
    try:
        if suffix in (".nii", ".nii.gz"):
            return _read_nifti(function, path, mask=mask), "nifti"
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), "array"
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = archive.files
                if not names:
                    raise ValueError("the archive holds no array")
                name = "mask" if mask and "mask" in names else \
                    "image" if not mask and "image" in names else names[0]
                return archive[name], "array"
        if suffix in (".tif", ".tiff"):
            try:
                import tifffile
            except ImportError:
                array, colour = _read_pil(path, mask=mask)
                return array, "colour-last" if colour else "array"
            return tifffile.imread(path), "array"
        array, colour = _read_pil(path, mask=mask)
        return array, "colour-last" if colour else "array"
    except ValueError as error:
        if str(error).startswith(function):  # already names the file
            raise
        raise _unreadable(function, path, suffix, error) from None
    except Exception as error:  # OSError, PIL's UnidentifiedImageError, zipfile.BadZipFile...
        raise _unreadable(function, path, suffix, error) from None


def _unreadable(function, path, suffix, error):
    kind = "NIfTI" if suffix.startswith(".nii") else suffix.lstrip(".").upper()
    return _file_error(function, path, f"be a readable {kind} file",
                       f"{type(error).__name__}: {error}")


def _read_nifti(function: str, path, *, mask: bool) -> np.ndarray:
    try:
        import nibabel
    except ImportError:
        raise _file_error(function, path, "be read with nibabel (NIfTI support)",
                          "nibabel not installed", "pip install nibabel") from None
    volume = nibabel.load(os.fspath(path))
    array = np.asanyarray(volume.dataobj)
    while array.ndim > 4 and array.shape[3] == 1:  # (X, Y, Z, 1, C): the NIfTI vector form
        array = array.reshape(array.shape[:3] + array.shape[4:])
    if mask and array.dtype.kind == "f":
        # NIfTI tools often store labels as floats; whole numbers are accepted as labels.
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise _file_error(function, path, "hold integer labels", f"dtype {array.dtype} "
                              "with fractional or non-finite values")
        array = array.astype(np.int64)
    return np.asarray(array)


def _guess_dims(array: np.ndarray, layout: str) -> int:
    if layout == "nifti":
        return 3
    if layout == "colour-last":
        return array.ndim - 1
    if array.ndim == 3 and (array.shape[0] in (1, 3, 4) or array.shape[-1] in (1, 3, 4)):
        return 2
    return min(max(array.ndim, 2), 3) if array.ndim <= 3 else 3


def check_dims(function: str, dims) -> int:
    if dims not in (2, 3):
        raise fail(function, "dims", "be 2 or 3", repr(dims))
    return dims


def read_image(path: str | os.PathLike, *, dims: int | None = None) -> np.ndarray:
    """Read an image as channels-first float32 ``(C, *spatial)`` in [0, 1].

    Unsigned integers are divided by their dtype's maximum (8-bit by 255, 16-bit by 65535);
    bools give 0/1; signed integers and floats already in [0, 1] are kept, others are scaled
    to [0, 1] by the image's own minimum and maximum (CT numbers, for instance). RGBA and
    grey+alpha drop the alpha channel; palette images become RGB.

    The channel axis: colour PNG/JPEG/TIFF are channels-last; a NIfTI volume ``(X, Y, Z)`` gets
    one channel and ``(X, Y, Z, C)`` is channels-last; for other arrays with one axis more than
    ``dims`` the smaller of the first and last axes holds the channels. ``dims`` (2 or 3) says
    how many spatial axes to expect; when ``None`` it is guessed (NIfTI: 3; an array whose first
    or last axis is 1, 3 or 4 long: 2-D with channels; any other 3-D array: a volume).

    Raises:
        ValueError: naming the file, if it cannot be read or its shape does not fit ``dims``.
    """
    function = "read_image"
    array, layout = _read_raw(function, path, mask=False)
    dims = _guess_dims(array, layout) if dims is None else check_dims(function, dims)
    if array.ndim == dims:
        array = array[None]
    elif array.ndim == dims + 1:
        channels_last = layout in ("colour-last", "nifti") or array.shape[-1] < array.shape[0]
        if channels_last:
            array = np.moveaxis(array, -1, 0)
    else:
        raise _file_error(function, path, f"hold a {dims}-D image, with or without a channel "
                          f"axis, for dims={dims}", f"shape {tuple(array.shape)}")
    return _to_unit(function, path, np.ascontiguousarray(array))


def _to_unit(function: str, path, array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.float32)
    if kind == "u":
        return (array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max))
    if kind not in "if":
        raise _file_error(function, path, "hold a numeric image", f"dtype {array.dtype}")
    values = array.astype(np.float32)
    if values.size == 0:
        return values
    if not np.all(np.isfinite(values)):
        raise _file_error(function, path, "hold finite values", "NaN or infinity")
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return values
    return (values - low) / np.float32(high - low) if high > low else np.zeros_like(values)


def read_mask(path: str | os.PathLike, *, palette: Mapping | Sequence | None = None,
              dims: int | None = None) -> np.ndarray:
    """Read a label mask as an integer array of its spatial shape (the stored integer dtype).

    - Grey PNG/TIFF (8 or 16 bit), NPY/NPZ (the array named ``"mask"``, else the first) and
      NIfTI hold the labels themselves. A palette PNG gives its palette *indices*.
    - An RGB(A) mask needs ``palette``, a mapping from an ``(r, g, b)`` colour to its class
      index (keys may also be ``"r,g,b"`` or ``"#rrggbb"`` strings), or a sequence of colours
      whose positions are the classes. An RGB mask whose three channels are equal everywhere is
      read as a grey one.
    - A single-channel axis (``(1, H, W)`` or ``(H, W, 1)``) is dropped.
    - Float masks are refused, except NIfTI volumes of whole numbers (NIfTI tools store labels
      as floats).

    Raises:
        ValueError: naming the file, if it cannot be read, holds floats, is RGB without a
        ``palette`` or holds a colour the palette lacks.
    """
    function = "read_mask"
    array, layout = _read_raw(function, path, mask=True)
    if dims is None:
        dims = 3 if layout == "nifti" or (array.ndim == 3 and array.shape[-1] not in (3, 4)
                                          and layout != "colour-last") else 2
    else:
        check_dims(function, dims)
    if array.ndim == dims + 1:
        if layout == "colour-last" or (array.shape[-1] in (3, 4) and array.shape[0] != 1):
            array = _colours_to_labels(function, path, array[..., :3], palette)
        elif array.shape[-1] == 1 or array.shape[0] == 1:
            array = array.reshape(array.shape[:-1] if array.shape[-1] == 1 else array.shape[1:])
        elif array.shape[0] in (3, 4):
            array = _colours_to_labels(function, path, np.moveaxis(array[:3], 0, -1), palette)
    if array.ndim != dims:
        raise _file_error(function, path, f"hold a {dims}-D label mask (or an RGB one) for "
                          f"dims={dims}", f"shape {tuple(array.shape)}")
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.kind not in "iu":
        raise _file_error(function, path, "hold integer class labels", f"dtype {array.dtype}",
                          "Save masks as integer PNG/TIFF/NPY (floats would be rounded "
                          "silently otherwise).")
    return array


def normalise_palette(function: str, palette) -> dict[int, int]:
    """Palette → {0xRRGGBB: class}."""
    if isinstance(palette, Mapping):
        items = list(palette.items())
    elif isinstance(palette, Sequence) and not isinstance(palette, (str, bytes)):
        items = [(colour, index) for index, colour in enumerate(palette)]
    else:
        raise fail(function, "palette", "be a mapping (r, g, b) -> class or a sequence of "
                   "colours", type(palette).__name__, error=TypeError)
    table = {}
    for colour, index in items:
        try:
            if isinstance(colour, str):
                text = colour.strip()
                parts = [int(text[i:i + 2], 16) for i in (1, 3, 5)] if text.startswith("#") \
                    and len(text) == 7 else [int(p) for p in text.replace(" ", "").split(",")]
            else:
                parts = [int(p) for p in colour]
        except (TypeError, ValueError):
            parts = []
        if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
            raise fail(function, "palette", "have (r, g, b) colours with values in [0, 255]",
                       repr(colour))
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise fail(function, "palette", "map colours to int class indices",
                       f"{colour!r}: {index!r}", error=TypeError)
        table[(parts[0] << 16) | (parts[1] << 8) | parts[2]] = int(index)
    return table


def _colours_to_labels(function: str, path, rgb: np.ndarray, palette) -> np.ndarray:
    if rgb.dtype.kind not in "iu":
        raise _file_error(function, path, "hold integer colours", f"dtype {rgb.dtype}")
    if palette is None:
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0])
        raise _file_error(function, path, "be a label mask (grey or palette PNG, TIFF, NPY); an "
                          "RGB mask needs a palette mapping colours to classes", "an RGB mask",
                          "Pass palette={(r, g, b): class, ...} (--palette on the command line).")
    table = normalise_palette(function, palette)
    keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | \
        rgb[..., 2].astype(np.int64)
    colours, inverse = np.unique(keys.reshape(-1), return_inverse=True)
    unknown = [int(c) for c in colours if int(c) not in table]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})"
                          for c in unknown[:_SHOWN_COLOURS])
        more = f", ... ({len(unknown)} colours)" if len(unknown) > _SHOWN_COLOURS else ""
        raise _file_error(function, path, "use only the palette's colours",
                          f"colours {shown}{more}", "Add them to the palette.")
    lookup = np.array([table[int(c)] for c in colours], dtype=np.int64)
    return lookup[inverse].reshape(keys.shape)


def check_labels(function: str, path, mask: np.ndarray, num_classes: int,
                 ignore_index: int | None) -> None:
    """Every label lies in ``[0, C)`` (``{0, 1}`` for C = 1) or equals ``ignore_index``."""
    if mask.size == 0:
        return
    limit = 2 if num_classes == 1 else num_classes
    low, high = mask.min(), mask.max()
    if low >= 0 and high < limit:
        return
    values = np.unique(mask)
    bad = values[(values < 0) | (values >= limit)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:8].tolist())
        raise fail(function, f"labels of {os.fspath(path)}", f"lie in [0, {limit}) or be "
                   f"ignore_index={ignore_index}", f"values [{shown}]",
                   "Set ignore_index for labels that mark pixels to skip, or a larger "
                   "num_classes.")
