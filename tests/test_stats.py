"""ClassStats: counting, merging, JSON round trip, weights and the summary table."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seglosses import class_weights_from_counts
from seglosses.stats import ClassStats

MASKS = [
    np.array([[0, 0, 1],
              [0, 2, 255]]),
    np.array([[0, 1],
              [1, 1]], dtype=np.uint8),
    np.array([[[2, 2], [255, 0]]], dtype=np.int16),  # 3-D: any shape is one image
]


def test_counts_match_a_hand_count():
    stats = ClassStats.from_masks(MASKS, 3, ignore_index=255)
    # class 0: 3 + 1 + 1, class 1: 1 + 3, class 2: 1 + 2; 255 twice
    assert stats.counts == (5, 4, 3)
    assert stats.images_with_class == (3, 2, 2)
    assert stats.ignored == 2
    assert stats.num_images == 3
    assert stats.ignore_index == (255,)
    assert stats.num_classes == 3
    assert stats.total == 12
    np.testing.assert_array_equal(stats.frequencies, np.array([5, 4, 3]) / 12)
    assert stats.frequencies.dtype == np.float64
    assert all(isinstance(n, int) for n in stats.counts)


def test_an_array_of_masks_counts_one_image_per_row():
    batch = np.array([[[0, 0], [0, 0]], [[0, 1], [1, 1]]])
    stats = ClassStats.from_masks(batch, 2)
    assert stats.num_images == 2
    assert stats.counts == (5, 3)
    assert stats.images_with_class == (2, 1)


def test_ignored_labels_inside_and_outside_the_class_range():
    mask = np.array([[0, 1, 2, -100], [255, 2, 2, 0]])
    stats = ClassStats.from_masks([mask], 3, ignore_index=(255, -100, 2))
    # an ignore label inside [0, C) removes its pixels; the class stays, with count 0
    assert stats.counts == (2, 1, 0)
    assert stats.ignored == 5
    assert stats.ignore_index == (-100, 2, 255)
    assert stats.absent_classes == (2,)
    assert stats.images_with_class == (1, 1, 0)


def test_labels_out_of_range_name_the_values_and_the_mask():
    masks = [np.array([0, 1, 2]), np.array([[0, 3], [-1, 255], [3, 1]])]
    with pytest.raises(ValueError, match=re.escape(
            "ClassStats.from_masks: labels of masks[1] must lie in [0, 3) or be ignored "
            "(ignore_index=[]); got values [-1, 3, 255].")):
        ClassStats.from_masks(masks, 3)
    # with 255 ignored, only the real offenders remain
    with pytest.raises(ValueError, match=re.escape("got values [-1, 3].")):
        ClassStats.from_masks(masks, 3, ignore_index=255)


def test_many_offending_values_are_elided():
    with pytest.raises(ValueError, match=re.escape("[2, 3, 4, 5, 6, 7, 8, 9, ... (20 distinct)]")):
        ClassStats.from_masks([np.arange(22)], 2)


def test_bad_masks_and_num_classes_raise():
    with pytest.raises(TypeError, match=r"masks\[0\] must be an integer array of labels; "
                                        r"got dtype float32"):
        ClassStats.from_masks([np.zeros(3, dtype=np.float32)], 2)
    with pytest.raises(ValueError, match="num_classes must be >= 1; got 0"):
        ClassStats.from_masks([np.zeros(3, dtype=int)], 0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        ClassStats.from_masks([np.zeros(3, dtype=int)], 2.0)
    with pytest.raises(TypeError, match="masks must be an iterable"):
        ClassStats.from_masks(5, 2)


def test_empty_inputs():
    stats = ClassStats.from_masks([], 3)
    assert stats == ClassStats.empty(3)
    assert stats.total == 0
    np.testing.assert_array_equal(stats.frequencies, np.zeros(3))
    assert math.isnan(stats.imbalance_ratio)
    assert stats.absent_classes == (0, 1, 2)
    # an empty mask is still an image
    assert ClassStats.from_masks([np.zeros((0, 4), dtype=int)], 2).num_images == 1


def test_imbalance_ratio_is_over_present_classes():
    stats = ClassStats((800, 0, 20, 40), (2, 0, 1, 1), 0, 2)
    assert stats.imbalance_ratio == 40.0
    assert stats.absent_classes == (1,)
    assert ClassStats((7, 0), (1, 0), 0, 1).imbalance_ratio == 1.0


# ---------------------------------------------------------------------------- merging

def test_merge_equals_counting_the_concatenation():
    whole = ClassStats.from_masks(MASKS, 3, ignore_index=255)
    parts = ClassStats.from_masks(MASKS[:1], 3, ignore_index=255) + \
        ClassStats.from_masks(MASKS[1:], 3, ignore_index=255)
    assert parts == whole
    streamed = ClassStats.empty(3, ignore_index=255)
    for mask in MASKS:
        streamed = streamed.update(mask)
    assert streamed == whole
    assert sum(ClassStats.from_masks([m], 3, ignore_index=255) for m in MASKS) == whole


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=0, max_size=12), min_size=1, max_size=6),
       st.integers(0, 6))
def test_merge_is_split_invariant(rows, split):
    masks = [np.array(row, dtype=np.int64) for row in rows]
    split = min(split, len(masks))
    whole = ClassStats.from_masks(masks, 4, ignore_index=4)
    merged = ClassStats.from_masks(masks[:split], 4, ignore_index=4) + \
        ClassStats.from_masks(masks[split:], 4, ignore_index=4)
    assert merged == whole
    assert whole.total + whole.ignored == sum(len(row) for row in rows)


def test_merge_rejects_different_classes_ignore_or_names():
    a = ClassStats.from_masks([np.array([0, 1])], 2)
    with pytest.raises(ValueError, match=r"ClassStats.__add__: other must have the same number "
                                         r"of classes \(2\); got 3"):
        a + ClassStats.from_masks([np.array([0, 1])], 3)
    with pytest.raises(ValueError, match=r"same ignore_index \[\]; got \[255\]"):
        a + ClassStats.from_masks([np.array([0, 1])], 2, ignore_index=255)
    named = dataclasses.replace(a, class_names=("bg", "fg"))
    assert (a + named).class_names == ("bg", "fg")
    with pytest.raises(ValueError, match="same class_names"):
        named + dataclasses.replace(a, class_names=("x", "y"))
    with pytest.raises(TypeError):
        a + 1


# ---------------------------------------------------------------------------- construction

def test_constructor_checks_its_fields():
    with pytest.raises(ValueError, match=r"ClassStats: images_with_class must have one entry "
                                         r"per class, i.e. length 2 like counts; got length 3"):
        ClassStats((1, 2), (1, 1, 1), 0, 1)
    with pytest.raises(ValueError, match="counts must hold non-negative counts only"):
        ClassStats((1, -2), (1, 1), 0, 1)
    with pytest.raises(ValueError, match=r"images_with_class must be <= num_images \(1\)"):
        ClassStats((5, 5), (2, 1), 0, 1)
    with pytest.raises(TypeError, match="counts must hold ints only"):
        ClassStats((1.5, 2), (1, 1), 0, 1)
    with pytest.raises(ValueError, match="class_names must hold 2 strings"):
        ClassStats((1, 2), (1, 1), 0, 1, class_names=("a",))
    stats = ClassStats(np.array([3, 4]), [1, 1], np.int64(2), 1, [255, -100])
    assert stats.counts == (3, 4) and type(stats.ignored) is int
    assert stats.ignore_index == (-100, 255)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.ignored = 0


# ---------------------------------------------------------------------------- JSON

def test_json_round_trip_through_text_and_files(tmp_path):
    stats = ClassStats.from_masks(MASKS, 3, ignore_index=(255, -100),
                                  class_names=("bg", "road", "car"))
    text = stats.to_json()
    data = json.loads(text)
    assert data["format"] == "seglosses.ClassStats" and data["version"] == 1
    assert data["counts"] == [5, 4, 3]
    assert ClassStats.from_json(text) == stats
    assert ClassStats.from_json(text.encode()) == stats

    path = tmp_path / "stats.json"
    assert stats.to_json(path) == text
    assert path.read_text() == text
    assert ClassStats.from_json(path) == stats
    assert ClassStats.from_json(str(path)) == stats

    unnamed = ClassStats.from_masks(MASKS[:2], 3, ignore_index=255)
    assert json.loads(unnamed.to_json())["class_names"] is None
    assert ClassStats.from_json(unnamed.to_json()) == unnamed
    assert ClassStats.from_dict(unnamed.to_dict()) == unnamed


def _document(**changes):
    data = ClassStats((5, 4, 3), (3, 2, 2), 2, 3, (255,)).to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize("key", ["counts", "images_with_class", "ignored", "num_images",
                                 "ignore_index"])
def test_json_missing_key_is_named(key):
    data = _document()
    del data[key]
    with pytest.raises(ValueError, match=rf"ClassStats.from_json: {key} must be present; "
                                         r"got keys \["):
        ClassStats.from_json(json.dumps(data))


@pytest.mark.parametrize("changes, pattern", [
    ({"counts": [5, -4, 3]}, r"counts must hold non-negative counts only; got \[5, -4, 3\]"),
    ({"counts": [5, 4]}, r"images_with_class must have one entry per class, i.e. length 2"),
    ({"counts": [5, 4.5, 3]}, r"counts must hold ints only"),
    ({"counts": "543"}, r"counts must be a sequence of non-negative ints"),
    ({"ignored": -1}, r"ignored must be a non-negative int; got -1"),
    ({"num_images": 1}, r"images_with_class must be <= num_images \(1\)"),
    ({"ignore_index": ["255"]}, r"ignore_index must be an int or a sequence of ints"),
    ({"class_names": ["a"]}, r"class_names must hold 3 strings"),
    ({"format": "other"}, r"format must be 'seglosses.ClassStats'; got 'other'"),
    ({"version": 2}, r"version must be 1 .*; got 2"),
])
def test_bad_json_values_raise_value_error_naming_the_key(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        ClassStats.from_json(json.dumps(_document(**changes)))


def test_bad_json_text_and_paths(tmp_path):
    with pytest.raises(ValueError, match="text_or_path must hold valid JSON"):
        ClassStats.from_json('{"counts": [1,')
    with pytest.raises(ValueError, match="data must be a JSON object"):
        ClassStats.from_json("[1, 2]")
    with pytest.raises(FileNotFoundError, match="path of an existing file"):
        ClassStats.from_json(tmp_path / "missing.json")
    with pytest.raises(TypeError, match="text_or_path must be JSON text or a path"):
        ClassStats.from_json(3)
    # unknown keys are tolerated
    assert ClassStats.from_json(json.dumps(_document(source="masks/"))).counts == (5, 4, 3)


# ---------------------------------------------------------------------------- weights

@pytest.mark.parametrize("method", ["inverse_frequency", "inverse_sqrt_frequency",
                                    "median_frequency", "effective_number", "log_inverse"])
def test_weights_equal_class_weights_from_counts(method):
    stats = ClassStats((9000, 700, 0, 300), (4, 3, 0, 1), 0, 4)
    expected = class_weights_from_counts([9000, 700, 0, 300], method, beta=0.99)
    np.testing.assert_array_equal(stats.weights(method, beta=0.99), expected)
    # hand check of one strategy: 1/f_c, the absent class takes the largest present weight
    if method == "inverse_frequency":
        np.testing.assert_allclose(stats.weights(method),
                                   [10000 / 9000, 10000 / 700, 10000 / 300, 10000 / 300])


def test_balanced_weights_need_two_classes():
    np.testing.assert_array_equal(ClassStats((75, 25), (1, 1), 0, 1).weights("balanced"),
                                  [0.25, 0.75])
    with pytest.raises(ValueError, match=r"ClassStats.weights: method must name a multiclass "
                                         r"strategy when there are 3 classes"):
        ClassStats((1, 1, 1), (1, 1, 1), 0, 1).weights("balanced")
    with pytest.raises(ValueError, match="ClassStats.weights: method must be one of"):
        ClassStats((1, 1), (1, 1), 0, 1).weights("inverse")
    with pytest.raises(ValueError, match="ClassStats.weights: beta must be"):
        ClassStats((1, 1), (1, 1), 0, 1).weights("effective_number", beta=1.0)


# ---------------------------------------------------------------------------- summary

def test_summary_lists_every_class():
    stats = ClassStats((1_234_567, 0, 89), (3, 0, 1), 12, 3, (255,), ("sky", "bird", "plane"))
    lines = stats.summary().splitlines()
    assert lines[0].split() == ["class", "pixels", "fraction", "images"]
    assert lines[1].split() == ["0", "sky", "1,234,567", f"{1_234_567 / 1_234_656:.4f}", "3"]
    assert lines[2].split() == ["1", "bird", "0", "0.0000", "0"]
    assert lines[3].split() == ["2", "plane", "89", f"{89 / 1_234_656:.4f}", "1"]
    assert lines[4] == "3 images, 1,234,656 valid pixels, 12 ignored (ignore_index=[255])"
    assert "absent classes: [1]" in lines[5]
    # the columns line up
    assert len({len(line) for line in lines[:4]}) == 1
