"""Parity with Keras's own losses where the semantics coincide, Keras's published values, and
the sample_weight forms (docs/semantics.md, tolerances: Keras front vs Keras built-in, float32)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras_helpers import numpy, tensor

import seglosses.keras as slk
import seglosses.numpy as oracle

RTOL, ATOL = 1e-6, 1e-6
rng = np.random.default_rng(42)
N, H, W, C = 3, 5, 4, 4
LOGITS = rng.normal(0.0, 2.0, size=(N, H, W, C)).astype("float32")
LABELS = rng.integers(0, C, size=(N, H, W))
ONE_HOT = np.eye(C, dtype="float32")[LABELS]
PROBABILITIES = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype("float32")
BINARY_LOGITS = rng.normal(0.0, 2.0, size=(N, H, W, 1)).astype("float32")
BINARY = rng.integers(0, 2, size=(N, H, W, 1)).astype("float32")
BINARY_PROBABILITIES = (1 / (1 + np.exp(-BINARY_LOGITS))).astype("float32")


def close(ours, theirs, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(numpy(ours), numpy(theirs), rtol=rtol, atol=atol)


# ---- Keras's published values ---------------------------------------------------------------

def test_sparse_categorical_crossentropy_published_value():
    logits = np.array([[8, 1, 1], [0, 9, 1], [2, 3, 5]], "float32")
    loss = slk.CrossEntropyLoss()(np.array([0, 1, 2]), logits)
    assert abs(float(numpy(loss)) - 0.0573) < 1e-4  # 0.057376, printed 0.0573 by Keras
    close(loss, keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        np.array([0, 1, 2]), logits))


def test_binary_crossentropy_smoothing_published_value():
    loss = slk.BCELoss(label_smoothing=0.1)(np.array([[1, 0, 1]]),
                                            np.array([[10, -10, -10]], "float32"))
    np.testing.assert_allclose(numpy(loss), 3.5, atol=1e-4)  # 3.500045: log σ(10) ≠ 0
    close(loss, keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.array([[1, 0, 1]]), np.array([[10, -10, -10]], "float32")))


def test_categorical_crossentropy_smoothing_published_value():
    loss = slk.CrossEntropyLoss(label_smoothing=0.1)(np.array([[1.0, 0, 0]]),
                                                     np.array([[100, -100, -100]], "float32"))
    np.testing.assert_allclose(numpy(loss), 40 / 3, rtol=1e-6)
    close(loss, keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.array([[1.0, 0, 0]]), np.array([[100, -100, -100]], "float32")))


def test_binary_crossentropy_on_probabilities_is_keras_3s_5_3727():
    y_true, y_pred = np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0], "float32")
    ours = slk.BCELoss(from_logits=False)(y_true, y_pred)
    assert round(float(numpy(ours)), 4) == 5.3727
    close(ours, keras.losses.BinaryCrossentropy()(y_true, y_pred))
    # tf.keras 2.x clipped the same way and also added eps inside the log (docs/keras.md)
    eps = 1e-7
    p = np.clip(y_pred, eps, 1 - eps)
    tf_keras_2 = -np.mean(y_true * np.log(p + eps) + (1 - y_true) * np.log(1 - p + eps))
    assert round(float(tf_keras_2), 4) == 5.1416


# ---- built-ins with matched settings ---------------------------------------------------------

@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_categorical_crossentropy(from_logits, smoothing):
    x = LOGITS if from_logits else PROBABILITIES
    ours = slk.CrossEntropyLoss(from_logits=from_logits, label_smoothing=smoothing)
    theirs = keras.losses.CategoricalCrossentropy(from_logits=from_logits,
                                                  label_smoothing=smoothing)
    close(ours(ONE_HOT, x), theirs(ONE_HOT, x))


def test_sparse_categorical_crossentropy_with_ignore_class():
    labels = LABELS.copy()
    labels[0, :2] = 255
    labels[2] = 255
    ours = slk.CrossEntropyLoss(ignore_index=255)(labels, LOGITS)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    close(ours, theirs(labels, LOGITS))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("multilabel", [False, True])
def test_binary_crossentropy(from_logits, smoothing, multilabel):
    if multilabel:
        y, x = ONE_HOT, LOGITS if from_logits else 1 / (1 + np.exp(-LOGITS))
    else:
        y, x = BINARY, BINARY_LOGITS if from_logits else BINARY_PROBABILITIES
    x = np.asarray(x, "float32")
    ours = slk.BCELoss(mode="multilabel" if multilabel else "binary", from_logits=from_logits,
                       label_smoothing=smoothing)
    theirs = keras.losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    close(ours(y, x), theirs(y, x))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.6, 0.5)])
def test_binary_focal_crossentropy(from_logits, alpha, gamma):
    x = BINARY_LOGITS if from_logits else BINARY_PROBABILITIES
    balanced = slk.FocalLoss(mode="binary", alpha=alpha, gamma=gamma, from_logits=from_logits)
    theirs = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=alpha,
                                                  gamma=gamma, from_logits=from_logits)
    close(balanced(BINARY, x), theirs(BINARY, x))
    plain = slk.FocalLoss(mode="binary", gamma=gamma, from_logits=from_logits)
    theirs = keras.losses.BinaryFocalCrossentropy(gamma=gamma, from_logits=from_logits)
    close(plain(BINARY, x), theirs(BINARY, x))


@pytest.mark.parametrize("from_logits", [True, False])
def test_categorical_focal_crossentropy(from_logits):
    x = LOGITS if from_logits else PROBABILITIES
    ours = slk.FocalLoss(alpha=0.25, gamma=2.0, from_logits=from_logits)
    theirs = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0,
                                                       from_logits=from_logits)
    close(ours(ONE_HOT, x), theirs(ONE_HOT, x))


def test_dice_pools_the_whole_tensor_or_each_sample():
    """Keras's Dice is one ratio over its axes, no smoothing, 1e-7 in the denominator."""
    y, p = BINARY, BINARY_PROBABILITIES
    batch = slk.DiceLoss(mode="binary", from_logits=False, smooth=0.0, aggregate="batch")
    close(batch(y, p), keras.losses.Dice()(y, p))
    per_image = slk.DiceLoss(mode="binary", from_logits=False, smooth=0.0)
    close(per_image(y, p), keras.losses.Dice(axis=(1, 2, 3))(y, p))


def test_tversky_keras_applies_alpha_to_false_negatives():
    """Ours: α weighs FP, β FN (Salehi et al., MONAI). Keras 3.15's Tversky(alpha=a, beta=b)
    is ours with the two swapped; unswapped the numbers differ."""
    y, p = BINARY, BINARY_PROBABILITIES
    keras_value = keras.losses.Tversky(alpha=0.3, beta=0.7)(y, p)
    swapped = slk.TverskyLoss(mode="binary", from_logits=False, smooth=0.0, aggregate="batch",
                              alpha=0.7, beta=0.3)
    close(swapped(y, p), keras_value)
    same_names = slk.TverskyLoss(mode="binary", from_logits=False, smooth=0.0,
                                 aggregate="batch", alpha=0.3, beta=0.7)
    assert abs(float(numpy(same_names(y, p))) - float(numpy(keras_value))) > 1e-3
    # our documented meaning, from the statistics
    pc = np.clip(p.astype(np.float64), 1e-7, 1 - 2**-23)
    tp, fp, fn = (pc * y).sum(), (pc * (1 - y)).sum(), ((1 - pc) * y).sum()
    np.testing.assert_allclose(numpy(same_names(y, p)), 1 - tp / (tp + 0.3 * fp + 0.7 * fn),
                               rtol=1e-5)


# ---- sample_weight through Keras's base class ----------------------------------------------

def _oracle_sum_per_image(function, x, y, **kwargs):
    return np.array([function(np.moveaxis(x[n:n + 1], -1, 1), y[n:n + 1], reduction="sum",
                              **kwargs) for n in range(len(x))])


@pytest.mark.parametrize("shape", [(N,), (N, 1)])
def test_per_sample_weight_scales_each_images_share(shape):
    weights = np.array([0.5, 2.0, 0.0], "float32")
    loss = slk.CrossEntropyLoss()
    value = loss(LABELS, LOGITS, sample_weight=weights.reshape(shape))
    sums = _oracle_sum_per_image(oracle.cross_entropy, LOGITS, LABELS)
    np.testing.assert_allclose(numpy(value), (weights * sums).sum() / LABELS.size, rtol=1e-5)
    # "mean_with_sample_weight" divides by the weights instead of N
    shares = numpy(loss.call(LABELS, LOGITS))
    mean_weighted = slk.CrossEntropyLoss(reduction="mean_with_sample_weight")(
        LABELS, LOGITS, sample_weight=weights.reshape(shape))
    np.testing.assert_allclose(numpy(mean_weighted), (weights * shares).sum() / weights.sum(),
                               rtol=1e-5)
    # a scalar multiplies
    close(loss(LABELS, LOGITS, sample_weight=2.5), 2.5 * numpy(loss(LABELS, LOGITS)),
          rtol=1e-6)


@pytest.mark.parametrize("cls,function", [
    (slk.CrossEntropyLoss, oracle.cross_entropy),
    (slk.DiceLoss, oracle.dice_loss),
    (slk.DiceCELoss, oracle.dice_ce_loss),
])
@pytest.mark.parametrize("trailing_axis", [False, True])
def test_per_pixel_sample_weight_is_mask_and_pixel_weights(cls, function, trailing_axis):
    weights = np.random.default_rng(7).random((N, H, W)).astype("float32") * 2
    weights[1, :2] = 0.0
    sw = weights[..., None] if trailing_axis else weights
    expected = function(np.moveaxis(LOGITS, -1, 1), LABELS, mask=weights != 0,
                        pixel_weights=weights, class_weights="inverse_frequency")
    for reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
        loss = cls(class_weights="inverse_frequency", reduction=reduction)
        np.testing.assert_allclose(numpy(loss(LABELS, LOGITS, sample_weight=sw)), expected,
                                   rtol=1e-5, atol=1e-6)


def test_per_pixel_sample_weight_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"dice_loss: sample_weight must have shape "
                       r"\(3, 5, 4\) \(N, \*spatial\); got \(3, 5\)\."):
        slk.DiceLoss()(LABELS, LOGITS, sample_weight=np.ones((N, H), "float32"))


def test_built_in_and_ours_agree_on_per_sample_weights_without_spatial_axes():
    logits, labels = LOGITS[:, 0, 0], LABELS[:, 0, 0]
    weights = np.array([0.2, 1.0, 3.0], "float32")
    close(slk.CrossEntropyLoss()(labels, logits, sample_weight=weights),
          keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
              labels, logits, sample_weight=weights))


def test_integer_float_and_trailing_axis_masks_give_one_number():
    """Keras casts y_true to float; (N, H, W), float and (N, H, W, 1) masks are one index map."""
    loss = slk.DiceCELoss(ignore_index=255)
    labels = LABELS.copy()
    labels[0, 0] = 255
    reference = numpy(loss(labels, LOGITS))
    for variant in (labels.astype("float32"), labels[..., None], labels.astype("uint8")):
        np.testing.assert_allclose(numpy(loss(variant, LOGITS)), reference, rtol=1e-6)
    np.testing.assert_allclose(numpy(slk.dice_ce_loss(tensor(labels.astype("float32")), LOGITS,
                                                      ignore_index=255)), reference, rtol=1e-6)
