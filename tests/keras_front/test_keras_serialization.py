"""Every Loss class survives get_config/from_config, Keras serialization, and a model.save /
keras.models.load_model round trip with its options and numbers."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras_helpers import numpy

import seglosses.keras as slk

# the shapes of test_keras_errors.py: JAX compiles each operation once per shape
rng = np.random.default_rng(3)
X = rng.normal(size=(2, 6, 6, 4)).astype("float32")
Y = rng.integers(0, 4, size=(2, 6, 6))
Y[0, 0] = 255

LOSSES = [
    slk.CrossEntropyLoss(ignore_index=(255, -1), class_weights=[0.2, 1.0, 3.0, 1.0],
                         label_smoothing=0.1, name="ce"),
    slk.BCELoss(mode="multilabel", pos_weight=np.array([1.0, 2.0, 0.5, 1.0]),
                label_smoothing=0.05),
    slk.FocalLoss(gamma=1.5, alpha=[0.2, 0.3, 0.4, 0.1], ignore_index=255,
                  class_weights="median_frequency", reduction="sum"),
    slk.TverskyLoss(alpha=0.3, beta=0.7, gamma=0.75, aggregate="batch", ignore_index=255,
                    class_weights="effective_number", weight_beta=0.99),
    slk.DiceLoss(smooth=0.5, absent="exclude", include_background=False, ignore_index=255),
    slk.JaccardLoss(soft_label=True, class_weights=[1.0, 2.0, 1.0, 1.0], ignore_index=255,
                    reduction="mean_with_sample_weight"),
    slk.DiceCELoss(lambda_ce=0.5, lambda_dice=2.0, class_weights="inverse_frequency",
                   ignore_index=255, label_smoothing=0.1, dtype="float32"),
    slk.CompoundLoss({"ce": (1.0, slk.CrossEntropyLoss(ignore_index=255)),
                      "dice": (0.5, slk.DiceLoss(ignore_index=255, smooth=2.0))}),
]


def _target(loss):
    return np.eye(4, dtype="float32")[np.where(Y == 255, 0, Y)] if isinstance(loss, slk.BCELoss) \
        else Y


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_get_config_from_config_round_trip(loss):
    config = loss.get_config()
    json.dumps(config)  # plain JSON: lists, numbers, strings
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    assert clone.reduction == loss.reduction and clone.name == loss.name
    np.testing.assert_allclose(numpy(clone(_target(loss), X)), numpy(loss(_target(loss), X)),
                               rtol=1e-6)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_keras_serialization_is_registered(loss):
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"] == f"seglosses>{type(loss).__name__}"
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(clone) is type(loss)
    assert clone.get_config() == loss.get_config()
    assert keras.losses.get(serialized).get_config() == loss.get_config()


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_model_save_and_load_keep_the_loss(loss, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 4)), keras.layers.Conv2D(4, 1)])
    model.compile(optimizer="sgd", loss=loss)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is type(loss)
    assert loaded.loss.get_config() == loss.get_config()
    prediction = loaded.predict(X, verbose=0)
    np.testing.assert_allclose(numpy(loaded.loss(_target(loss), prediction)),
                               numpy(loss(_target(loss), model.predict(X, verbose=0))),
                               rtol=1e-6)
