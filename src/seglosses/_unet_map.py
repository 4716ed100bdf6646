"""The U-Net border weight map (Ronneberger et al. 2015, eq. 2) on NumPy label maps.

The distance transforms come from SciPy (imported on first use); the torch front end
(:func:`seglosses.torch.unet_weight_map`) wraps this function.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ._spec import check_ignore_index, check_number, fail

FUNCTION = "unet_weight_map"
# The border term is dropped where it is below TERM_FLOOR (weights are >= 1, so this is far
# below float32 resolution); it bounds the window each object's distance transform needs.
TERM_FLOOR = 1e-10


def _ndimage():
    try:
        from scipy import ndimage
    except ImportError as error:
        raise ImportError(f"{FUNCTION} needs SciPy for its distance transforms: "
                          "pip install scipy (or pip install 'seglosses[torch]').") from error
    return ndimage


def unet_weight_map(labels, *, w0: float = 10.0, sigma: float = 5.0, instances: bool = False,
                    class_balance: bool = True, background: int = 0,
                    ignore_index=None) -> np.ndarray:
    """U-Net weight map: class balance plus a term that separates nearby objects.

    .. math::
        w(x) = w_c(x) + w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

    where

    - :math:`w_c(x)` balances the classes of the image: the frequency of the most frequent class
      divided by the frequency of :math:`x`'s class (so the most frequent class weighs 1 and a
      class ten times rarer weighs 10), over the image's non-ignored pixels; 1 everywhere with
      ``class_balance=False``. With ``instances=True`` the classes are background and
      foreground (all objects together).
    - :math:`d_1(x)`, :math:`d_2(x)` are the Euclidean distances, in pixels, from :math:`x` to
      the nearest pixel of the nearest and of the second-nearest object (a background pixel next
      to an object has :math:`d_1 = 1`). The term is added to background pixels only, as in the
      paper: it is large in narrow gaps between objects. With fewer than two objects
      :math:`d_2 = \\infty` and the term is 0.

    Objects are the distinct non-background labels of an instance map (``instances=True``), or
    the connected components (face connectivity, :func:`scipy.ndimage.label`) of each
    non-background class of a semantic map (``instances=False``). Ignored pixels belong to no
    object, count in no class frequency, and get weight 0.

    Cost: one :func:`scipy.ndimage.distance_transform_edt` per object, over the object's bounding
    box grown by :math:`R = \\sigma\\sqrt{2\\ln(w_0 / 10^{-10})}` (36 pixels at the defaults;
    beyond it the term is below :math:`10^{-10}` and is dropped). A 512×512 image with 50 objects
    takes some tens of milliseconds. Compute the map once per image in the data pipeline.

    Args:
        labels: integer array ``(N, *spatial)``: a batch of N label maps with at least 2
            spatial axes, e.g. ``(N, H, W)`` or ``(N, D, H, W)``. Add the batch axis to a single
            map with ``labels[None]``.
        w0: weight of the border term, >= 0 (paper: 10).
        sigma: width of the border term in pixels, > 0 (paper: about 5).
        instances: ``labels`` is an instance map (each object its own label) rather than a
            semantic map.
        class_balance: use the class-balancing :math:`w_c`; else :math:`w_c = 1`.
        background: the background label.
        ignore_index: an int or a sequence of ints whose pixels get weight 0.

    Returns:
        float32 array of ``labels``' shape, for ``pixel_weights=``.

    Example:
        >>> import numpy as np
        >>> labels = np.zeros((1, 8, 12), dtype=np.int64)
        >>> labels[0, 2:6, 1:5] = 1
        >>> labels[0, 2:6, 7:11] = 1     # two squares, two background columns apart
        >>> weights = unet_weight_map(labels, w0=10.0, sigma=5.0, class_balance=False)
        >>> weights.shape, weights.dtype
        ((1, 8, 12), dtype('float32'))
        >>> round(float(weights[0, 3, 5]), 4)   # d1 = 1, d2 = 2: 1 + 10 exp(-9 / 50)
        9.3527

    References:
        Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
        Segmentation", MICCAI 2015, eq. 2.
    """
    array = np.asarray(labels)
    if array.dtype.kind not in "biu":
        raise fail(FUNCTION, "labels", "be an integer array of labels", f"dtype {array.dtype}",
                   error=TypeError)
    if array.ndim < 3:
        raise fail(FUNCTION, "labels", "have shape (N, *spatial) with at least 2 spatial axes",
                   f"shape {array.shape}", "For a single (H, W) map pass labels[None].")
    w0 = check_number(FUNCTION, "w0", w0)
    sigma = check_number(FUNCTION, "sigma", sigma)
    if sigma == 0:
        raise fail(FUNCTION, "sigma", "be > 0", repr(sigma))
    for name, flag in (("instances", instances), ("class_balance", class_balance)):
        if not isinstance(flag, bool):
            raise fail(FUNCTION, name, "be a bool", repr(flag), error=TypeError)
    if isinstance(background, bool) or not hasattr(background, "__index__"):
        raise fail(FUNCTION, "background", "be an int", repr(background), error=TypeError)
    background = operator.index(background)
    ignore = check_ignore_index(FUNCTION, ignore_index)

    out = np.empty(array.shape, dtype=np.float32)
    for n in range(array.shape[0]):
        out[n] = _image_weights(array[n], w0=w0, sigma=sigma, instances=instances,
                                class_balance=class_balance, background=background,
                                ignore=ignore)
    return out


def _image_weights(image: np.ndarray, *, w0: float, sigma: float, instances: bool,
                   class_balance: bool, background: int, ignore: tuple[int, ...]) -> np.ndarray:
    ignored = np.isin(image, ignore) if ignore else np.zeros(image.shape, dtype=bool)
    valid = ~ignored
    weights = np.ones(image.shape, dtype=np.float64)
    if class_balance and valid.any():
        classes = (image != background) if instances else image
        _, inverse, counts = np.unique(classes[valid], return_inverse=True, return_counts=True)
        weights[valid] = counts.max() / counts[inverse.reshape(-1)]
    gaps = valid & (image == background)
    if w0 > 0 and gaps.any():
        objects, count = _objects(image, valid & ~gaps, instances)
        if count >= 2:
            d1, d2 = _two_nearest(objects, count, w0, sigma)
            weights[gaps] += w0 * np.exp(-((d1[gaps] + d2[gaps]) ** 2) / (2.0 * sigma * sigma))
    weights[ignored] = 0.0
    return weights


def _objects(image: np.ndarray, foreground: np.ndarray, instances: bool):
    """Label the objects 1..K (0 elsewhere); returns ``(objects, K)``."""
    objects = np.zeros(image.shape, dtype=np.int64)
    if instances:
        found, inverse = np.unique(image[foreground], return_inverse=True)
        objects[foreground] = inverse.reshape(-1) + 1
        return objects, int(found.size)
    ndimage = _ndimage()
    count = 0
    for value in np.unique(image[foreground]):
        components, found = ndimage.label(foreground & (image == value))
        inside = components > 0
        objects[inside] = components[inside] + count
        count += int(found)
    return objects, count


def _two_nearest(objects: np.ndarray, count: int, w0: float, sigma: float):
    """Per pixel, the distances to the nearest and second-nearest object (inf when none).

    Each object's distance transform runs on its bounding box grown by ``reach``; outside it
    the distance exceeds ``reach`` and the border term is below ``TERM_FLOOR``, so those
    pixels keep inf (the dropped term is at most TERM_FLOOR).
    """
    ndimage = _ndimage()
    reach = math.ceil(sigma * math.sqrt(2.0 * math.log(max(w0 / TERM_FLOOR, 1.0))))
    d1 = np.full(objects.shape, np.inf)
    d2 = np.full(objects.shape, np.inf)
    for k, box in enumerate(ndimage.find_objects(objects, max_label=count), start=1):
        window = tuple(slice(max(s.start - reach, 0), min(s.stop + reach, size))
                       for s, size in zip(box, objects.shape, strict=True))
        distance = ndimage.distance_transform_edt(objects[window] != k)
        near, second = d1[window], d2[window]  # views: updated in place
        np.minimum(second, np.maximum(near, distance), out=second)
        np.minimum(near, distance, out=near)
    return d1, d2
