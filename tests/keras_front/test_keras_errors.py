"""The same mistake gets the same text on the torch and Keras fronts (docs/semantics.md,
errors), Keras-only errors, a fully masked batch, and mixed precision."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras_helpers import numpy, tensor, value_and_grad

import seglosses.keras as slk
from option_draws import draw_options

rng = np.random.default_rng(0)
X = rng.normal(size=(2, 6, 6, 4)).astype("float32")  # channels-last logits
Y = rng.integers(0, 4, size=(2, 6, 6))
XB = rng.normal(size=(2, 6, 6, 1)).astype("float32")
YB = rng.integers(0, 2, size=(2, 6, 6, 1)).astype("float32")
XM = rng.normal(size=(2, 6, 6, 3)).astype("float32")
YM = rng.random((2, 6, 6, 3)).astype("float32")

# (id, call(front, x, y, xb, yb, xm, ym) for both fronts). `front` is seglosses.torch or
# seglosses.keras; `call` builds the arguments in each front's order.
MISTAKES = [
    ("batch mismatch", lambda f, a: a(f.dice_loss, X, Y[:1])),
    ("spatial mismatch", lambda f, a: a(f.dice_ce_loss, X, Y[:, :5])),
    ("channels-first hint", lambda f, a: a(f.dice_loss, np.moveaxis(X, -1, 1), Y)),
    ("label 255 without ignore_index", lambda f, a: a(f.cross_entropy, X,
                                                      np.where(Y == 0, 255, Y))),
    ("label -1", lambda f, a: a(f.dice_loss, X, np.where(Y == 0, -1, Y))),
    ("two labels outside", lambda f, a: a(f.dice_loss, X, np.where(Y == 0, -1,
                                                                   np.where(Y == 1, 7, Y)))),
    ("label C", lambda f, a: a(f.dice_ce_loss, X, np.where(Y == 0, 4, Y), ignore_index=255)),
    ("probabilities above 1", lambda f, a: a(f.cross_entropy, np.abs(X) + 1, Y,
                                             from_logits=False)),
    ("NaN probabilities", lambda f, a: a(f.dice_loss, np.full_like(X, math.nan), Y,
                                         from_logits=False)),
    ("binary target outside [0, 1]", lambda f, a: a(f.binary_cross_entropy, XB, YB * 2)),
    ("NaN soft target", lambda f, a: a(f.cross_entropy, X, np.full_like(X, math.nan))),
    ("class weights wrong length", lambda f, a: a(f.cross_entropy, X, Y,
                                                  class_weights=[1, 2, 3])),
    ("class weights negative", lambda f, a: a(f.dice_loss, X, Y, class_weights=[1, -2, 3, 1])),
    ("class weights all zero", lambda f, a: a(f.cross_entropy, X, Y,
                                              class_weights=[0, 0, 0, 0])),
    ("unknown strategy", lambda f, a: a(f.cross_entropy, X, Y, class_weights="inverse")),
    ("balanced in multiclass", lambda f, a: a(f.cross_entropy, X, Y, class_weights="balanced")),
    ("label smoothing > 1", lambda f, a: a(f.cross_entropy, X, Y, label_smoothing=1.5)),
    ("unknown reduction", lambda f, a: a(f.dice_loss, X, Y, reduction="avg")),
    ("compound reduction none", lambda f, a: a(f.dice_ce_loss, X, Y, reduction="none")),
    ("unknown mode", lambda f, a: a(f.cross_entropy, X, Y, mode="softmax")),
    ("negative smooth", lambda f, a: a(f.dice_loss, X, Y, smooth=-1.0)),
    ("negative alpha", lambda f, a: a(f.tversky_loss, X, Y, alpha=-0.3)),
    ("negative gamma", lambda f, a: a(f.focal_loss, X, Y, gamma=-2)),
    ("sigmoid alpha above 1", lambda f, a: a(f.focal_loss, XB, YB, mode="binary", alpha=2.0)),
    ("focal alpha of the wrong length", lambda f, a: a(f.focal_loss, X, Y, alpha=[1.0, 2.0])),
    ("from_logits not a bool", lambda f, a: a(f.cross_entropy, X, Y, from_logits="no")),
    ("smooth a bool", lambda f, a: a(f.dice_loss, X, Y, smooth=True)),
    ("ignore_index beyond int64", lambda f, a: a(f.cross_entropy, X, Y, ignore_index=2**70)),
    ("smooth overflowing float32", lambda f, a: a(f.dice_loss, X, Y, smooth=1e40)),
    ("class weights as a NumPy array of the wrong length",
     lambda f, a: a(f.dice_loss, X, Y, class_weights=np.ones(3))),
    ("multi-hot target in multiclass", lambda f, a: a(f.dice_loss, X, (np.eye(4)[Y] + np.eye(4)[
        (Y + 1) % 4]).astype("float32"))),
    ("one-hot target on the wrong class axis", lambda f, a: a(f.dice_loss, np.moveaxis(X, -1, 1),
                                                              np.moveaxis(np.eye(4)[Y], -1, 1)
                                                              .astype("float32"))),
    ("float target with ignore_index", lambda f, a: a(f.cross_entropy, X,
                                                      np.eye(4, dtype="float32")[Y],
                                                      ignore_index=255)),
    ("ignore_index not int", lambda f, a: a(f.cross_entropy, X, Y, ignore_index=2.5)),
    ("class_dim out of range", lambda f, a: a(f.dice_loss, X, Y, class_dim=4)),
    ("class_dim = 0", lambda f, a: a(f.cross_entropy, X, Y, class_dim=0)),
    ("class_dim not int", lambda f, a: a(f.cross_entropy, X, Y, class_dim=1.0)),
    ("one class in multiclass", lambda f, a: a(f.cross_entropy, XB, Y)),
    ("pos_weight in multiclass", lambda f, a: a(f.cross_entropy, X, Y, pos_weight=[1, 2, 3, 4])),
    ("pos_weight wrong length", lambda f, a: a(f.binary_cross_entropy, XM, YM,
                                               mode="multilabel", pos_weight=[1, 2])),
    ("mask wrong shape", lambda f, a: a(f.dice_loss, X, Y, mask=np.ones((2, 6), bool))),
    ("negative pixel weights", lambda f, a: a(f.cross_entropy, X, Y,
                                              pixel_weights=-np.ones((2, 6, 6), "float32"))),
    ("include_background in binary", lambda f, a: a(f.dice_loss, XB, YB, mode="binary",
                                                    include_background=False)),
    ("unknown absent", lambda f, a: a(f.dice_loss, X, Y, absent="skip")),
    ("unknown aggregate", lambda f, a: a(f.dice_loss, X, Y, aggregate="dataset")),
    ("binary_cross_entropy multiclass", lambda f, a: a(f.binary_cross_entropy, X, Y,
                                                       mode="multiclass")),
]


def _torch_call(function, x, y, **kwargs):
    import torch

    def convert(value):
        return torch.from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value

    kwargs = {k: convert(v) for k, v in kwargs.items()}
    kwargs.setdefault("class_dim", -1)
    return function(convert(x), convert(y), **kwargs)


def _keras_call(function, x, y, **kwargs):
    return function(tensor(y), tensor(x), **{k: tensor(v) for k, v in kwargs.items()})


def _message(call):
    try:
        call()
    except (ValueError, TypeError) as error:
        return type(error), str(error)
    raise AssertionError("no error raised")


@pytest.mark.parametrize("mistake", [m[1] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_same_mistake_same_text_as_torch(mistake):
    pytest.importorskip("torch")
    import seglosses.torch as sl

    theirs = _message(lambda: mistake(sl, _torch_call))
    ours = _message(lambda: mistake(slk, _keras_call))
    assert ours == theirs


@pytest.mark.parametrize("make", [
    lambda f: f.TverskyLoss(alpha=-1),
    lambda f: f.CrossEntropyLoss(label_smoothing=2),
    lambda f: f.FocalLoss(gamma=-1),
    lambda f: f.DiceCELoss(class_weights=[1, -1]),
    lambda f: f.BCELoss(mode="multiclass"),
    lambda f: f.JaccardLoss(class_weights="median"),
    lambda f: f.DiceLoss(absent="never"),
    lambda f: f.FocalLoss(mode="binary", alpha=1.5),
    lambda f: f.CompoundLoss([]),
])
def test_constructors_check_their_options_with_the_torch_text(make):
    pytest.importorskip("torch")
    import seglosses.torch as sl

    assert _message(lambda: make(slk)) == _message(lambda: make(sl))


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: slk.cross_entropy(Y, Y[..., None].repeat(4, -1)), TypeError,
     r"cross_entropy: input must be a floating-point tensor of logits or probabilities; "
     r"got dtype int"),
    (lambda: slk.cross_entropy(Y + 0.5, X), ValueError,
     r"cross_entropy: target must hold integer class indices \(an index map\); "
     r"got values \[0\.5, 1\.5, 2\.5, 3\.5\]"),
    (lambda: slk.dice_loss(Y, X, aggregate="global"), ValueError,
     r"dice_loss: aggregate must be 'image' or 'batch' in Keras; got 'global'\."),
    (lambda: slk.DiceLoss(aggregate="global"), ValueError,
     r"DiceLoss: aggregate must be 'image' or 'batch' in Keras"),
    (lambda: slk.CompoundLoss([(1.0, keras.losses.MeanSquaredError())]), TypeError,
     r"CompoundLoss: terms\['MeanSquaredError'\] must be a seglosses.keras loss"),
    (lambda: slk.DiceLoss()(Y, X, sample_weight=np.ones((2, 6, 5), "float32")), ValueError,
     r"dice_loss: sample_weight must have shape \(2, 6, 6\) \(N, \*spatial\); got \(2, 6, 5\)"),
    (lambda: slk.FocalLoss(alpha=[0.1, 0.2])(Y, X), ValueError,
     r"focal_loss: alpha must have length C=4"),
])
def test_keras_only_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


LOSSES = [
    slk.CrossEntropyLoss(ignore_index=255, class_weights="inverse_frequency"),
    slk.FocalLoss(ignore_index=255, alpha=0.25),
    slk.TverskyLoss(ignore_index=255, gamma=0.75),
    slk.DiceLoss(ignore_index=255),
    slk.JaccardLoss(ignore_index=255, smooth=0.0),
    slk.DiceCELoss(ignore_index=255, class_weights="median_frequency"),
    slk.CompoundLoss([(1.0, slk.CrossEntropyLoss(ignore_index=255)),
                      (0.5, slk.DiceLoss(ignore_index=255, aggregate="batch"))]),
]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_a_fully_masked_batch_gives_zero_and_no_gradient(loss):
    ignored = np.full(Y.shape, 255)
    value, grad = value_and_grad(lambda x: loss(ignored, x), X)
    assert value == 0.0
    assert np.all(grad == 0.0)
    zero_weights = np.zeros(Y.shape, "float32")
    assert float(numpy(loss(Y, X, sample_weight=zero_weights))) == 0.0


@pytest.mark.parametrize("mode,x,y", [("binary", XB, YB.astype("int64")),
                                      ("multilabel", XM, (YM > 0.5).astype("int64"))])
def test_a_fully_masked_sigmoid_batch_gives_zero(mode, x, y):
    ignored = np.full(y.shape, 255)
    for function in (slk.binary_cross_entropy, slk.dice_loss, slk.dice_ce_loss):
        assert float(numpy(function(ignored, x, mode=mode, ignore_index=255))) == 0.0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_input_is_computed_and_returned_in_float32(dtype):
    x16 = tensor(X, dtype)
    reference = tensor(numpy(x16).astype("float32"))  # the same rounded input in float32
    for function in (slk.cross_entropy, slk.dice_ce_loss, slk.focal_loss):
        value = function(Y, x16)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        np.testing.assert_allclose(numpy(value), numpy(function(Y, reference)), rtol=1e-6)
    none = slk.cross_entropy(Y, x16, reduction="none")
    assert keras.backend.standardize_dtype(none.dtype) == dtype
    # a 16-bit dtype policy on the loss still computes in float32
    loss = slk.DiceCELoss(dtype="mixed_float16")
    assert loss.dtype == "float32"
    value = loss(Y, x16)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    np.testing.assert_allclose(numpy(value), numpy(slk.dice_ce_loss(Y, reference)), rtol=1e-6)


def test_float16_probabilities_of_one_stay_finite():
    p = np.zeros((2, 4, 4, 1), "float16")
    p[...] = 1.0
    value = slk.binary_cross_entropy(np.zeros((2, 4, 4, 1)), tensor(p, "float16"),
                                     from_logits=False)
    np.testing.assert_allclose(numpy(value), -np.log(2.0**-11), rtol=1e-3)  # 7.62


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "FocalLoss", "DiceLoss", "DiceCELoss",
                                  "TverskyLoss", "JaccardLoss"])
def test_an_empty_batch_gives_zero(name):
    x, y = X[:0], Y[:0]
    assert float(numpy(getattr(slk, name)()(tensor(y), tensor(x)))) == 0.0
    functional = {"CrossEntropyLoss": slk.cross_entropy, "DiceLoss": slk.dice_loss,
                  "DiceCELoss": slk.dice_ce_loss}.get(name)
    if functional is not None:
        assert float(numpy(functional(tensor(y), tensor(x)))) == 0.0


@pytest.mark.parametrize("weight, message", [
    (np.ones(3, "float32"), r"DiceCELoss: sample_weight must be a scalar, \(N,\) or \(N, 1\) "
                            r"with N=2"),
    (np.array([1.0, math.nan], "float32"), r"DiceCELoss: sample_weight must be finite and "
                                           r">= 0; got values \[nan\]"),
    (-1.0, r"DiceCELoss: sample_weight must be finite and >= 0; got -1\.0"),
    (np.ones((2, 6), "float32"), r"dice_ce_loss: sample_weight must have shape \(2, 6, 6\)"),
])
def test_a_bad_sample_weight_is_a_clear_error(weight, message):
    with pytest.raises(ValueError, match=message):
        slk.DiceCELoss()(tensor(Y), tensor(X), sample_weight=weight if isinstance(weight, float)
                         else tensor(weight))


KERAS_LOSSES = ["cross_entropy", "binary_cross_entropy", "focal_loss", "tversky_loss",
                "dice_loss", "jaccard_loss", "dice_ce_loss"]


@settings(max_examples=40 if keras.backend.backend() == "jax" else 60, deadline=None)
@given(data=st.data(), name=st.sampled_from(KERAS_LOSSES))
def test_any_option_value_gives_a_finite_result_or_an_error_naming_the_function(data, name):
    """The torch front's property test on the Keras functional forms (channels-last)."""
    options = draw_options(data, getattr(slk, name))
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 3, (2, 4, 4))
    try:
        result = getattr(slk, name)(tensor(y), tensor(x), **options)
    except (ValueError, TypeError) as error:
        assert str(error).startswith(f"{name}: "), (options, error)
        return
    assert np.isfinite(numpy(result)).all(), (options, numpy(result))
