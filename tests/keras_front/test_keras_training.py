"""A tiny channels-last U-Net (7 classes, 16×16) trains with every loss, and the examples of
docs/keras.md run (including issue 4's compile call with MeanIoU)."""

from __future__ import annotations

import pathlib
import re

import keras
import numpy as np
import pytest
from keras import layers

import seglosses.keras as slk

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "keras.md"


def tiny_unet(channels=7):
    inputs = keras.Input((16, 16, 3))
    c1 = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    c2 = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D()(c1))
    up = layers.Concatenate()([layers.UpSampling2D()(c2), c1])
    return keras.Model(inputs, layers.Conv2D(channels, 1)(up))


def _data():
    rng = np.random.default_rng(0)
    images = rng.random((8, 16, 16, 3), dtype="float32")
    # a learnable mask: the class is a function of the pixel's colour
    masks = np.argmax(images @ rng.normal(size=(3, 7)), axis=-1).astype("uint8")
    masks[:, 0] = 255
    return images, masks


def _losses():
    return [
        ("ce", slk.CrossEntropyLoss(ignore_index=255, class_weights="median_frequency")),
        ("bce", slk.BCELoss(mode="multilabel")),
        ("focal", slk.FocalLoss(ignore_index=255)),
        ("tversky", slk.TverskyLoss(ignore_index=255, alpha=0.3, beta=0.7, gamma=0.75)),
        ("dice", slk.DiceLoss(ignore_index=255, aggregate="batch")),
        ("jaccard", slk.JaccardLoss(ignore_index=255)),
        ("dice_ce", slk.DiceCELoss(ignore_index=255, class_weights="inverse_frequency")),
        ("compound", slk.CompoundLoss([(1.0, slk.CrossEntropyLoss(ignore_index=255)),
                                       (0.5, slk.DiceLoss(ignore_index=255))])),
    ]


# JAX compiles each training step for ~1 s: there one loss of each kind (all on the others)
TRAINED = [(n, loss) for n, loss in _losses() if keras.backend.backend() != "jax"
           or n in ("ce", "bce", "tversky", "dice_ce", "compound")]


@pytest.mark.parametrize("name,loss", TRAINED, ids=[name for name, _ in TRAINED])
def test_tiny_unet_trains_and_its_loss_falls(name, loss):
    images, masks = _data()
    target = masks
    if name == "bce":  # a one-hot mask for the multilabel BCE
        target = np.eye(7, dtype="float32")[np.where(masks == 255, 0, masks)]
    keras.utils.set_random_seed(0)
    model = tiny_unet()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    # one batch per epoch: epoch 1 reports the loss before the first update, epoch 2 after it
    history = model.fit(images, target, batch_size=8, epochs=2, shuffle=False, verbose=0)
    first, second = history.history["loss"]
    assert np.isfinite(first) and second < first


def test_fit_with_per_pixel_sample_weight():
    images, masks = _data()
    weights = np.where(masks == 255, 0.0, 1.0).astype("float32")
    weights[:, 8:] *= 3.0
    keras.utils.set_random_seed(0)
    model = tiny_unet()
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=slk.DiceCELoss(class_weights="inverse_frequency"))
    history = model.fit(images, np.where(masks == 255, 0, masks), sample_weight=weights,
                        batch_size=8, epochs=2, shuffle=False, verbose=0)
    first, second = history.history["loss"]
    assert np.isfinite(first) and second < first


@pytest.mark.parametrize("loss", [slk.CrossEntropyLoss, slk.DiceCELoss])
def test_a_bad_label_stops_a_traced_fit_with_the_eager_message(loss):
    """Label 9 of a 7-class model inside ``fit`` (traced on TensorFlow and JAX): an error that
    names the function, the argument and the value, never a NaN loss; validate=False gives the
    NaN instead (the documented price of turning the check off)."""
    images, masks = _data()
    masks[1, 5, 5] = 9
    keras.utils.set_random_seed(0)
    model = tiny_unet()
    model.compile(optimizer="adam", loss=loss(ignore_index=255))
    with pytest.raises(Exception) as error:  # each backend wraps the error its own way
        model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
    text = str(error.value)
    assert "target must hold class indices in [0, 7) or an ignore_index [255]" in text, text
    assert re.search(r"\b9\b", text.split("ignore_index [255]", 1)[1]), text

    model = tiny_unet()  # a fresh one: JAX leaves the first half-built after the error
    model.compile(optimizer="adam", loss=loss(ignore_index=255, validate=False))
    history = model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
    assert np.isnan(history.history["loss"][0])


def test_issue_4_compile_call_with_mean_iou():
    images, masks = _data()
    keras.utils.set_random_seed(0)
    model = tiny_unet()
    model.compile(optimizer="adam",
                  loss=slk.DiceCELoss(class_weights="inverse_frequency", ignore_index=255),
                  metrics=[keras.metrics.MeanIoU(num_classes=7, sparse_y_true=True,
                                                 sparse_y_pred=False)])
    history = model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "mean_io_u"}
    assert all(np.isfinite(v).all() for v in history.history.values())


def test_the_examples_of_docs_keras_md_run():
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "docs_keras_md"}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
