"""unet_weight_map: eq. 2 of Ronneberger et al. 2015 against values computed by hand."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from seglosses.weights import unet_weight_map

W0, SIGMA = 10.0, 5.0


def border(d1: float, d2: float, w0: float = W0, sigma: float = SIGMA) -> float:
    return w0 * math.exp(-((d1 + d2) ** 2) / (2 * sigma**2))


def two_squares(second_label: int = 1) -> np.ndarray:
    """(1, 10, 14): 4×4 squares at rows 3..6, columns 2..5 and 8..11; gap columns 6 and 7."""
    labels = np.zeros((1, 10, 14), dtype=np.int64)
    labels[0, 3:7, 2:6] = 1
    labels[0, 3:7, 8:12] = second_label
    return labels


def test_gap_between_two_squares_matches_the_edt_distances():
    weights = unet_weight_map(two_squares(), w0=W0, sigma=SIGMA, class_balance=False)[0]
    for row in range(3, 7):
        # column 6 touches the left square (d1 = 1) and is 2 from the right one; 7 mirrors it
        assert weights[row, 6] == pytest.approx(1 + border(1, 2), rel=1e-6)
        assert weights[row, 7] == pytest.approx(1 + border(1, 2), rel=1e-6)
    # diagonal neighbours of the gap: Euclidean distances, not city-block
    assert weights[2, 6] == pytest.approx(1 + border(math.sqrt(2), math.sqrt(5)), rel=1e-6)
    # left of the left square: 1 from it, 7 from the right square (column 8)
    assert weights[4, 1] == pytest.approx(1 + border(1, 7), rel=1e-6)
    # objects get no border term
    np.testing.assert_array_equal(weights[3:7, 2:6], 1.0)
    np.testing.assert_array_equal(weights[3:7, 8:12], 1.0)


def test_class_balance_uses_the_image_frequencies():
    labels = two_squares()
    weights = unet_weight_map(labels, w0=W0, sigma=SIGMA)[0]
    # 32 foreground pixels, 108 background: background weighs 1, foreground 108 / 32
    w_fg = 108 / 32
    np.testing.assert_allclose(weights[labels[0] == 1], w_fg, rtol=1e-6)
    assert weights[4, 6] == pytest.approx(1 + border(1, 2), rel=1e-6)
    # without the border term the map is exactly w_c
    plain = unet_weight_map(labels, w0=0.0)[0]
    np.testing.assert_allclose(plain, np.where(labels[0] == 1, w_fg, 1.0), rtol=1e-6)


def test_three_classes_are_balanced_against_the_most_frequent():
    labels = np.zeros((1, 4, 5), dtype=np.int64)
    labels[0, 0, :2] = 1         # 2 pixels
    labels[0, 3, :] = 2          # 5 pixels; background 13 pixels
    weights = unet_weight_map(labels, w0=0.0)[0]
    expected = np.select([labels[0] == 1, labels[0] == 2], [13 / 2, 13 / 5], 1.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_far_background_decays_to_the_class_weight():
    labels = np.zeros((1, 40, 120), dtype=np.int64)
    labels[0, 10:14, 2:6] = 1
    labels[0, 10:14, 8:12] = 1
    weights = unet_weight_map(labels, class_balance=False)[0]
    assert weights[12, 100] == pytest.approx(1.0 + border(89, 95), abs=1e-7)
    assert weights[12, 100] == 1.0  # the term (~1e-280) is far below float32 resolution
    # it decays monotonically away from the gap along the row
    row = weights[12, 12:100]
    assert np.all(np.diff(row) <= 0) and row[0] > 1.0


def test_fewer_than_two_objects_give_no_border_term():
    one = np.zeros((1, 12, 12), dtype=np.int64)
    one[0, 4:8, 4:8] = 3
    np.testing.assert_array_equal(unet_weight_map(one, class_balance=False), 1.0)
    empty = np.zeros((2, 5, 5), dtype=np.int64)
    np.testing.assert_array_equal(unet_weight_map(empty), 1.0)


def test_ignored_pixels_get_zero_and_leave_frequencies_and_objects():
    labels = two_squares()
    labels[0, 0, :] = 255            # a fully ignored top row
    labels[0, 3:7, 8:12] = 255       # the right square ignored: one object is left
    weights = unet_weight_map(labels, ignore_index=(255, -1))[0]
    assert np.all(weights[labels[0] == 255] == 0.0)
    # valid pixels: 16 foreground, 140 - 14 - 16 - 16 = 94 background; no border term
    np.testing.assert_allclose(weights[labels[0] == 1], 94 / 16, rtol=1e-6)
    np.testing.assert_array_equal(weights[labels[0] == 0], 1.0)
    assert np.all(unet_weight_map(np.full((1, 3, 3), 7), ignore_index=7) == 0.0)


def test_instance_and_semantic_maps():
    semantic = two_squares(second_label=1)
    instance = two_squares(second_label=2)
    # separate objects: a semantic map's components are the instances
    np.testing.assert_allclose(unet_weight_map(semantic),
                               unet_weight_map(instance, instances=True), rtol=1e-6)

    # touching objects: one component in a semantic map, two instances in an instance map
    touching = np.zeros((1, 10, 12), dtype=np.int64)
    touching[0, 3:7, 2:6] = 1
    touching[0, 3:7, 6:10] = 2
    as_semantic_one_class = unet_weight_map(np.where(touching > 0, 1, 0), class_balance=False)
    np.testing.assert_array_equal(as_semantic_one_class, 1.0)
    as_instances = unet_weight_map(touching, instances=True, class_balance=False)[0]
    # the pixel above the seam's left side: (3, 5) is 1 away, (3, 6) is sqrt(2) away
    assert as_instances[2, 5] == pytest.approx(1 + border(1, math.sqrt(2)), rel=1e-6)
    # semantic map with two different classes touching: each class is its own object
    as_classes = unet_weight_map(touching, class_balance=False)[0]
    np.testing.assert_allclose(as_classes, as_instances, rtol=1e-6)
    # instance mode balances background against all objects together (2 classes, not 3)
    balanced = unet_weight_map(touching, instances=True, w0=0.0)[0]
    np.testing.assert_allclose(balanced[touching[0] > 0], 88 / 32, rtol=1e-6)


def test_non_adjacent_components_of_one_class_are_separate_objects():
    labels = np.zeros((1, 9, 9), dtype=np.int64)
    labels[0, 4, 3] = 1
    labels[0, 4, 5] = 1  # one background pixel between two single-pixel components
    weights = unet_weight_map(labels, class_balance=False)[0]
    assert weights[4, 4] == pytest.approx(1 + border(1, 1), rel=1e-6)


def test_volumes_use_three_dimensional_distances():
    labels = np.zeros((1, 7, 8, 12), dtype=np.int64)
    labels[0, 2:5, 2:6, 1:5] = 1
    labels[0, 2:5, 2:6, 7:11] = 1       # two cuboids, gap at x = 5, 6
    weights = unet_weight_map(labels, class_balance=False)
    assert weights.shape == labels.shape and weights.dtype == np.float32
    assert weights[0, 3, 3, 5] == pytest.approx(1 + border(1, 2), rel=1e-6)
    # the voxel in front of the gap, diagonal in (z, x): sqrt(1 + 1) and sqrt(1 + 4)
    assert weights[0, 1, 3, 5] == pytest.approx(1 + border(math.sqrt(2), math.sqrt(5)),
                                                rel=1e-6)


def test_shape_dtype_and_per_image_independence():
    first = two_squares()[0]
    second = np.zeros_like(first)
    second[1:3, 1:3] = 1
    batch = np.stack([first, second]).astype(np.uint8)
    weights = unet_weight_map(batch)
    assert weights.shape == batch.shape and weights.dtype == np.float32
    np.testing.assert_array_equal(weights[0], unet_weight_map(first[None])[0])
    np.testing.assert_array_equal(weights[1], unet_weight_map(second[None])[0])
    assert unet_weight_map(np.zeros((0, 4, 4), dtype=np.int64)).shape == (0, 4, 4)


def test_background_label_can_be_changed():
    labels = two_squares()
    shifted = np.where(labels == 0, 9, labels)  # background 9, squares 1
    np.testing.assert_array_equal(unet_weight_map(shifted, background=9),
                                  unet_weight_map(labels))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unet_weight_map: labels must have shape \(N, \*spatial"
                                         r"\) with at least 2 spatial axes; got shape \(5, 5\)\. "
                                         r"For a single \(H, W\) map pass labels\[None\]\."):
        unet_weight_map(np.zeros((5, 5), dtype=np.int64))
    with pytest.raises(TypeError, match="labels must be an integer array of labels; got dtype "
                                        "float64"):
        unet_weight_map(np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match="unet_weight_map: sigma must be > 0; got 0.0"):
        unet_weight_map(np.zeros((1, 5, 5), dtype=np.int64), sigma=0.0)
    with pytest.raises(ValueError, match="unet_weight_map: w0 must be a finite number"):
        unet_weight_map(np.zeros((1, 5, 5), dtype=np.int64), w0=-1.0)
    with pytest.raises(TypeError, match="instances must be a bool"):
        unet_weight_map(np.zeros((1, 5, 5), dtype=np.int64), instances=1)
    with pytest.raises(TypeError, match="ignore_index must be an int or a sequence of ints"):
        unet_weight_map(np.zeros((1, 5, 5), dtype=np.int64), ignore_index=2.5)


def test_missing_scipy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)
    with pytest.raises(ImportError, match="pip install scipy"):
        unet_weight_map(two_squares())
