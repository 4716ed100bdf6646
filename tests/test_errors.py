"""The bad-input table (exception type and message of each mistake), fuzzed validators."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seglosses.torch as sl
from option_draws import draw_options

X = torch.randn(2, 4, 6, 6)
Y = torch.randint(0, 4, (2, 6, 6))
XB = torch.randn(2, 1, 6, 6)
YB = torch.randint(0, 2, (2, 1, 6, 6)).float()

# (id, callable, exception type, message regex)
BAD_INPUTS = [
    ("integer logits", lambda: sl.cross_entropy(Y.unsqueeze(1).repeat(1, 4, 1, 1), Y),
     TypeError, r"cross_entropy: input must be a floating-point tensor .*; got dtype torch\.int64"),
    ("logits not a tensor", lambda: sl.dice_loss(X.numpy(), Y), TypeError,
     r"dice_loss: input must be a torch\.Tensor; got ndarray"),
    ("float index target", lambda: sl.cross_entropy(X, Y.float()), TypeError,
     r"cross_entropy: target must be an integer index map for shape \(2, 6, 6\); "
     r"got dtype torch\.float32\. Pass labels as integers"),
    ("batch mismatch", lambda: sl.dice_loss(X, Y[:1]), ValueError,
     r"dice_loss: target must have shape \(2, 6, 6\) \(index map\) or \(2, 4, 6, 6\) "
     r"\(one-hot / soft\) for mode='multiclass' and input \(2, 4, 6, 6\); got \(1, 6, 6\)\."),
    ("spatial mismatch", lambda: sl.dice_ce_loss(X, Y[:, :5]), ValueError,
     r"dice_ce_loss: target must have shape .*; got \(2, 5, 6\)\."),
    ("channels-last target hint", lambda: sl.dice_loss(torch.randn(2, 6, 6, 4), Y), ValueError,
     r"got \(2, 6, 6\)\. Did you mean class_dim=-1\?"),
    ("(N,1,H,W) float target in multiclass", lambda: sl.cross_entropy(X, Y.unsqueeze(1).float()),
     TypeError, r"cross_entropy: target must be an integer index map for shape \(2, 6, 6\); got "
                r"dtype torch.float32\. Pass labels as integers \(target.long\(\)\)"),
    ("multi-hot target in multiclass", lambda: sl.dice_loss(X, (torch.rand(2, 4, 6, 6) > 0.5)
                                                            .float()),
     ValueError, r"dice_loss: target must sum to 1 over the class axis for mode='multiclass' "
                 r".*; got sums from .*mode='multilabel'"),
    ("one-hot target on the wrong class axis", lambda: sl.dice_loss(
        torch.randn(2, 4, 6, 4), torch.nn.functional.one_hot(torch.randint(0, 4, (2, 4, 6)), 4)
        .float()), ValueError, r"dice_loss: target must sum to 1 over the class axis .* Did "
                               r"you mean class_dim=-1\?"),
    ("label 255 without ignore_index", lambda: sl.cross_entropy(X, torch.where(Y == 0, 255, Y)),
     ValueError, r"cross_entropy: target must hold class indices in \[0, 4\) or an ignore_index "
     r"\(none set\); got values \[255\]\. Did you mean ignore_index=255\?"),
    ("label -1", lambda: sl.dice_loss(X, torch.where(Y == 0, -1, Y)), ValueError,
     r"dice_loss: target must hold class indices in \[0, 4\).*; got values \[-1\]"),
    ("label C", lambda: sl.dice_ce_loss(X, torch.where(Y == 0, 4, Y), ignore_index=255),
     ValueError, r"target must hold class indices in \[0, 4\) or an ignore_index \[255\]; "
     r"got values \[4\]"),
    ("probabilities above 1", lambda: sl.cross_entropy(X.abs() + 1, Y, from_logits=False),
     ValueError, r"cross_entropy: input must hold probabilities in \[0, 1\] with "
     r"from_logits=False; got values .*Pass raw scores"),
    ("NaN probabilities", lambda: sl.dice_loss(torch.full_like(X, math.nan), Y,
                                               from_logits=False),
     ValueError, r"dice_loss: input must hold probabilities in \[0, 1\]"),
    ("binary target outside [0, 1]", lambda: sl.binary_cross_entropy(XB, YB * 2), ValueError,
     r"binary_cross_entropy: target must hold values in \[0, 1\] for mode='binary'; "
     r"got values \[2\]"),
    ("binary integer target 2", lambda: sl.dice_loss(XB, (YB * 2).long(), mode="binary"),
     ValueError, r"dice_loss: target must hold 0 or 1 \(or an ignore_index\)"),
    ("NaN soft target", lambda: sl.cross_entropy(X, torch.full_like(X, math.nan)), ValueError,
     r"cross_entropy: target must hold one-hot or soft probabilities in \[0, 1\] without NaN"),
    ("class weights wrong length", lambda: sl.cross_entropy(X, Y, class_weights=[1, 2, 3]),
     ValueError, r"cross_entropy: class_weights must have length C=4 \(one weight per class\); "
     r"got length 3\."),
    ("class weights negative", lambda: sl.dice_loss(X, Y, class_weights=[1, -2, 3, 1]),
     ValueError, r"dice_loss: class_weights must (be >= 0|hold finite numbers >= 0)"),
    ("class weights NaN", lambda: sl.cross_entropy(X, Y, class_weights=torch.tensor(
        [1, math.nan, 1, 1])), ValueError, r"cross_entropy: class_weights must (be finite|hold)"),
    ("class weights all zero", lambda: sl.cross_entropy(X, Y, class_weights=[0, 0, 0, 0]),
     ValueError, r"cross_entropy: class_weights must not be all zero; got \[0, 0, 0, 0\]\."),
    ("unknown strategy", lambda: sl.cross_entropy(X, Y, class_weights="inverse"), ValueError,
     r"cross_entropy: class_weights must be a length-C sequence or one of 'inverse_frequency'"),
    ("balanced in multiclass", lambda: sl.cross_entropy(X, Y, class_weights="balanced"),
     ValueError, r"class_weights must be a length-C sequence or one of .* for "
     r"mode='multiclass'; got 'balanced'"),
    ("label smoothing > 1", lambda: sl.cross_entropy(X, Y, label_smoothing=1.5), ValueError,
     r"cross_entropy: label_smoothing must be a finite number in \[0, 1\]; got 1\.5\."),
    ("label smoothing < 0", lambda: sl.dice_ce_loss(X, Y, label_smoothing=-0.1), ValueError,
     r"dice_ce_loss: label_smoothing must be a finite number in \[0, 1\]; got -0\.1\."),
    ("unknown reduction", lambda: sl.dice_loss(X, Y, reduction="avg"), ValueError,
     r"dice_loss: reduction must be one of 'mean', 'sum', 'none'; got 'avg'\."),
    ("compound reduction none", lambda: sl.dice_ce_loss(X, Y, reduction="none"), ValueError,
     r"dice_ce_loss: reduction must be 'mean' or 'sum' for a compound loss"),
    ("unknown mode", lambda: sl.cross_entropy(X, Y, mode="softmax"), ValueError,
     r"cross_entropy: mode must be one of 'multiclass', 'binary', 'multilabel'; "
     r"got 'softmax'\."),
    ("negative smooth", lambda: sl.dice_loss(X, Y, smooth=-1.0), ValueError,
     r"dice_loss: smooth must be a finite number >= 0; got -1\.0\."),
    ("negative alpha", lambda: sl.tversky_loss(X, Y, alpha=-0.3), ValueError,
     r"tversky_loss: alpha must be a finite number >= 0; got -0\.3\."),
    ("negative beta", lambda: sl.tversky_loss(X, Y, beta=-0.7), ValueError,
     r"tversky_loss: beta must be a finite number >= 0; got -0\.7\."),
    ("negative gamma", lambda: sl.focal_loss(X, Y, gamma=-2), ValueError,
     r"focal_loss: gamma must be a finite number >= 0; got -2\."),
    ("negative tversky gamma", lambda: sl.tversky_loss(X, Y, gamma=-1.0), ValueError,
     r"tversky_loss: gamma must be a finite number >= 0"),
    ("sigmoid alpha above 1", lambda: sl.focal_loss(XB, YB, mode="binary", alpha=2.0),
     ValueError, r"focal_loss: alpha must be a finite number in \[0, 1\]; got 2\.0\."),
    ("focal alpha of the wrong length", lambda: sl.focal_loss(X, Y, alpha=[1.0, 2.0]),
     ValueError, r"focal_loss: alpha must have length C=4 \(one value per class\) or be a "
                 r"scalar; got length 2\."),
    ("float target with ignore_index", lambda: sl.cross_entropy(X, torch.softmax(X, 1),
                                                                ignore_index=255),
     ValueError, r"cross_entropy: ignore_index must be None for a one-hot / soft target; "
     r"got 255\. Mark the pixels to skip with mask= instead\."),
    ("binary float target with ignore_index", lambda: sl.dice_loss(XB, YB, mode="binary",
                                                                   ignore_index=255),
     ValueError, r"dice_loss: ignore_index must be None for a float target"),
    ("ignore_index not int", lambda: sl.cross_entropy(X, Y, ignore_index=2.5), TypeError,
     r"cross_entropy: ignore_index must be an int or a sequence of ints; got 2\.5\."),
    ("different devices", lambda: sl.cross_entropy(X, Y.to("meta")), ValueError,
     r"cross_entropy: target must be on the input's device \(cpu\); got device meta\."),
    ("class_dim out of range", lambda: sl.dice_loss(X, Y, class_dim=4), ValueError,
     r"dice_loss: class_dim must index a non-batch axis of the 4-D input, i\.e\. lie in "
     r"\[1, 3\] or \[-3, -1\]; got 4\."),
    ("class_dim = 0", lambda: sl.cross_entropy(X, Y, class_dim=0), ValueError,
     r"class_dim must index a non-batch axis"),
    ("class_dim not int", lambda: sl.cross_entropy(X, Y, class_dim=1.0), TypeError,
     r"cross_entropy: class_dim must be an int; got float\."),
    ("one class in multiclass", lambda: sl.cross_entropy(XB, Y), ValueError,
     r"cross_entropy: input must have C >= 2 classes along class_dim for mode='multiclass'; "
     r"got C=1 .* Use mode='binary'"),
    ("pos_weight in multiclass", lambda: sl.cross_entropy(X, Y, pos_weight=[1, 2, 3, 4]),
     ValueError, r"cross_entropy: pos_weight must be None for mode='multiclass'"),
    ("pos_weight wrong length", lambda: sl.binary_cross_entropy(
        torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4), mode="multilabel", pos_weight=[1, 2]),
     ValueError, r"binary_cross_entropy: pos_weight must have length C=3"),
    ("mask wrong shape", lambda: sl.dice_loss(X, Y, mask=torch.ones(2, 6)), ValueError,
     r"dice_loss: mask must have shape \(2, 6, 6\) \(N, \*spatial\); got \(2, 6\)\."),
    ("negative pixel weights", lambda: sl.cross_entropy(X, Y, pixel_weights=-torch.ones(2, 6, 6)),
     ValueError, r"cross_entropy: pixel_weights must be finite and >= 0"),
    ("binary target without channel axis", lambda: sl.dice_loss(XB, YB[:, 0], mode="binary"),
     ValueError, r"dice_loss: target must have shape \(2, 1, 6, 6\) .*; got \(2, 6, 6\)\. "
     r"Add the channel axis with target\.unsqueeze\(1\)\."),
    ("include_background in binary", lambda: sl.dice_loss(XB, YB, mode="binary",
                                                          include_background=False),
     ValueError, r"dice_loss: include_background must be True for mode='binary'"),
    ("unknown absent", lambda: sl.dice_loss(X, Y, absent="skip"), ValueError,
     r"dice_loss: absent must be one of 'include', 'exclude'; got 'skip'\."),
    ("unknown aggregate", lambda: sl.dice_loss(X, Y, aggregate="dataset"), ValueError,
     r"dice_loss: aggregate must be one of 'image', 'batch', 'global'; got 'dataset'\."),
    ("pixel aggregate image", lambda: sl.cross_entropy(X, Y, aggregate="image"), ValueError,
     r"cross_entropy: aggregate must be one of 'batch', 'global'; got 'image'\."),
    ("unknown impl", lambda: sl.dice_loss(X, Y, impl="cuda"), ValueError,
     r"dice_loss: impl must be one of 'auto', 'torch', 'triton'; got 'cuda'\."),
    ("binary_cross_entropy multiclass", lambda: sl.binary_cross_entropy(X, Y, mode="multiclass"),
     ValueError, r"binary_cross_entropy: mode must be one of 'binary', 'multilabel'"),
    ("from_logits not a bool", lambda: sl.cross_entropy(X, Y, from_logits="no"), TypeError,
     r"cross_entropy: from_logits must be True or False; got 'no'\."),
    ("smooth a bool", lambda: sl.dice_loss(X, Y, smooth=True), TypeError,
     r"dice_loss: smooth must be a real number; got True\."),
    ("ignore_index beyond int64", lambda: sl.cross_entropy(X, Y, ignore_index=2**70), ValueError,
     r"cross_entropy: ignore_index must fit in int64; got 1180591620717411303424\."),
    ("smooth overflowing float32", lambda: sl.dice_loss(X, Y, smooth=1e40), ValueError,
     r"dice_loss: smooth must be at most 1e\+20 \(larger values overflow the float32 sums\)"),
    ("absurd tversky alpha", lambda: sl.tversky_loss(X, Y, alpha=1e39), ValueError,
     r"tversky_loss: alpha must be at most 1e\+20"),
]


@pytest.mark.parametrize("call,error,pattern", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("make,pattern", [
    (lambda: sl.DiceLoss(reduction="avg"), r"DiceLoss: reduction must be one of"),
    (lambda: sl.CrossEntropyLoss(label_smoothing=2), r"CrossEntropyLoss: label_smoothing must"),
    (lambda: sl.TverskyLoss(alpha=-1), r"TverskyLoss: alpha must be a finite number >= 0"),
    (lambda: sl.FocalLoss(gamma=-1), r"FocalLoss: gamma must be a finite number >= 0"),
    (lambda: sl.DiceCELoss(reduction="none"), r"DiceCELoss: reduction must be 'mean' or 'sum'"),
    (lambda: sl.DiceCELoss(class_weights=[1, -1]), r"DiceCELoss: class_weights must hold"),
    (lambda: sl.BCELoss(mode="multiclass"), r"BCELoss: mode must be one of 'binary'"),
    (lambda: sl.JaccardLoss(class_weights="median"), r"JaccardLoss: class_weights must be"),
    (lambda: sl.CompoundLoss([]), r"CompoundLoss: terms must hold at least one"),
    (lambda: sl.CompoundLoss([(1.0, "dice")]), r"CompoundLoss: terms\['term0'\] must be a loss"),
    (lambda: sl.DiceLoss(from_logits="no"), r"DiceLoss: from_logits must be True or False"),
    (lambda: sl.CrossEntropyLoss(validate=1), r"CrossEntropyLoss: validate must be True or"),
    (lambda: sl.CompoundLoss([("a", 1.0, sl.DiceLoss(reduction="none")),
                              ("b", 1.0, sl.CrossEntropyLoss())]),
     r"CompoundLoss: terms must share one reduction .*a: 'none', b: 'mean'"),
])
def test_module_constructors_check_their_options(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


LOSSES = ["cross_entropy", "binary_cross_entropy", "focal_loss", "tversky_loss", "dice_loss",
          "jaccard_loss", "dice_ce_loss"]


@given(
    loss=st.sampled_from(LOSSES),
    mode=st.sampled_from(["multiclass", "binary", "multilabel", "bogus"]),
    n=st.integers(0, 3), c=st.integers(1, 4), spatial=st.lists(st.integers(0, 4), max_size=3),
    target_kind=st.sampled_from(["index", "onehot", "float_index", "binary", "wrong_shape"]),
    label_high=st.integers(1, 6),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64,
                           torch.int64]),
    class_dim=st.integers(-5, 5),
    ignore=st.sampled_from([None, 255, -1, (0, 255)]),
    reduction=st.sampled_from(["mean", "sum", "none", "avg"]),
    smoothing=st.sampled_from([0.0, 0.1, 1.0, -0.5]),
    from_logits=st.booleans(),
    weights=st.sampled_from([None, "inverse_frequency", "median_frequency", "balanced",
                             [1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]),
    seed=st.integers(0, 2**16),
)
def test_validator_fuzz_never_crashes_nor_returns_silent_nan(loss, mode, n, c, spatial,
                                                             target_kind, label_high, dtype,
                                                             class_dim, ignore, reduction,
                                                             smoothing, from_logits, weights,
                                                             seed):
    generator = torch.Generator().manual_seed(seed)
    shape = (n, c, *spatial)
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=generator).to(dtype)
        if not from_logits:
            x = torch.rand(shape, generator=generator).to(dtype)
    else:
        x = torch.randint(0, 3, shape, generator=generator)
    pixel = (n, *spatial)
    if target_kind == "index":
        y = torch.randint(0, label_high, pixel, generator=generator)
    elif target_kind == "onehot":
        y = torch.rand(shape, generator=generator)
    elif target_kind == "float_index":
        y = torch.randint(0, label_high, pixel, generator=generator).float()
    elif target_kind == "binary":
        y = torch.randint(0, 2, shape, generator=generator)
    else:
        y = torch.randint(0, 2, (n + 1, *spatial), generator=generator)
    options = dict(mode=mode, class_dim=class_dim, ignore_index=ignore, reduction=reduction,
                   from_logits=from_logits, class_weights=weights)
    if loss in ("cross_entropy", "binary_cross_entropy", "focal_loss", "dice_ce_loss"):
        options["label_smoothing"] = smoothing
    try:
        result = getattr(sl, loss)(x, y, **options)
    except (ValueError, TypeError):
        return
    assert isinstance(result, torch.Tensor)
    if reduction != "none":
        assert result.shape == ()
    assert torch.isfinite(result.float()).all(), f"silent non-finite result {result}"


@given(data=st.data(), name=st.sampled_from(LOSSES))
def test_any_option_value_gives_a_finite_result_or_an_error_naming_the_function(data, name):
    """Every public loss, a random subset of its options drawn from valid, absurd and wrongly
    typed values: a finite result, or a ValueError / TypeError whose message starts with the
    function's name. Nothing else escapes (no OverflowError, no RuntimeError, no NaN)."""
    options = draw_options(data, getattr(sl, name))
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    try:
        result = getattr(sl, name)(x, y, **options)
    except (ValueError, TypeError) as error:
        assert str(error).startswith(f"{name}: "), (options, error)
        return
    assert torch.isfinite(result).all(), (options, result)


def test_per_class_vectors_of_any_kind_give_the_same_number():
    """A list, a tuple, a NumPy array (what class_weights_from_counts returns) or a tensor."""
    from seglosses import class_weights_from_counts

    weights = class_weights_from_counts([900, 90, 9, 1], "inverse_frequency")
    xb = torch.randn(2, 4, 6, 6)
    yb = (torch.rand(2, 4, 6, 6) > 0.5).float()
    for call in (lambda w: sl.dice_loss(X, Y, class_weights=w),
                 lambda w: sl.cross_entropy(X, Y, class_weights=w),
                 lambda w: sl.dice_ce_loss(X, Y, class_weights=w),
                 lambda w: sl.focal_loss(X, Y, alpha=w),
                 lambda w: sl.binary_cross_entropy(xb, yb, mode="multilabel", pos_weight=w)):
        expected = call(weights.tolist())
        for kind in (tuple(weights.tolist()), weights, torch.from_numpy(weights)):
            torch.testing.assert_close(call(kind), expected)


def test_labels_of_any_integer_dtype_give_the_same_number():
    expected = sl.dice_ce_loss(X, Y, ignore_index=255)
    for dtype in (torch.uint8, torch.int16, torch.int32, torch.uint16, torch.uint32):
        torch.testing.assert_close(sl.dice_ce_loss(X, Y.to(dtype), ignore_index=255), expected)


def test_a_compound_of_terms_with_different_shapes_is_an_error():
    loss = sl.CompoundLoss([("dice", 1.0, lambda x, y: sl.dice_loss(x, y, reduction="none")),
                            ("ce", 1.0, sl.CrossEntropyLoss())])
    with pytest.raises(ValueError, match=r"CompoundLoss: term 'ce' must give a value of shape "
                                         r"\(2, 4\)"):
        loss(X, Y)
