"""The NumPy oracle against hand-computed values, published values and closed forms.

Every other path is tested against ``seglosses.numpy``, so this file checks the oracle itself:
the reference values of docs/semantics.md, Keras's documented values, hand-worked small cases
for every option, and identities between the losses. Hand computations are written out in the
comments.
"""

import math

import numpy as np
import pytest

import seglosses.numpy as oracle

RNG_SEED = 20240601
LN2 = math.log(2.0)


def rng():
    return np.random.default_rng(RNG_SEED)


def log_softmax(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


REGION_LOSSES = [oracle.dice_loss, oracle.jaccard_loss, oracle.tversky_loss]
PIXEL_LOSSES = [oracle.cross_entropy, oracle.focal_loss]
ALL_LOSSES = [*PIXEL_LOSSES, oracle.binary_cross_entropy, *REGION_LOSSES, oracle.dice_ce_loss]


# --------------------------------------------------------------------------------------------
# docs/semantics.md, reference values
# --------------------------------------------------------------------------------------------

THREE_PIXELS = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]])


def test_three_pixel_cross_entropy_with_one_hot_and_index_targets():
    # -ln .7 - ln .8 - ln .9 = 0.356675 + 0.223144 + 0.105361 = 0.685179
    expected = -math.log(0.7) - math.log(0.8) - math.log(0.9)
    one_hot = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float64)
    for target in (one_hot, np.array([1, 2, 0])):
        value = oracle.cross_entropy(THREE_PIXELS, target, from_logits=False, reduction="sum")
        assert value == pytest.approx(expected, rel=1e-12)
        assert round(value, 6) == 0.685179


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_uniform_logits_give_log_c(n_classes):
    labels = rng().integers(0, n_classes, size=(2, 3, 4))
    z = np.zeros((2, n_classes, 3, 4))
    assert oracle.cross_entropy(z, labels) == pytest.approx(math.log(n_classes), rel=1e-14)
    none = oracle.cross_entropy(z, labels, reduction="none")
    assert none.shape == (2, 3, 4)
    np.testing.assert_allclose(none, math.log(n_classes), rtol=1e-14)


def test_focal_with_gamma_zero_equals_cross_entropy():
    g = rng()
    z = g.normal(size=(2, 4, 5, 3)) * 3
    labels = g.integers(0, 4, size=(2, 5, 3))
    labels[0, 0, 0] = 255
    options = dict(ignore_index=255, class_weights=[0.5, 1.0, 2.0, 3.0], label_smoothing=0.1)
    for reduction in ("mean", "sum"):
        assert oracle.focal_loss(z, labels, gamma=0.0, reduction=reduction, **options) == (
            pytest.approx(
                oracle.cross_entropy(z, labels, reduction=reduction, **options), rel=1e-14
            )
        )
    y = (g.random(size=(2, 3, 5)) > 0.5).astype(np.float64)
    zs = g.normal(size=(2, 3, 5)) * 3
    sig = dict(mode="multilabel", pos_weight=[1.0, 2.0, 0.5], label_smoothing=0.2)
    np.testing.assert_allclose(
        oracle.focal_loss(zs, y, gamma=0.0, reduction="none", **sig),
        oracle.binary_cross_entropy(zs, y, reduction="none", **sig),
        rtol=1e-14,
    )


def random_region_case(seed=0, shape=(2, 3, 6, 5)):
    g = np.random.default_rng(seed)
    z = g.normal(size=shape) * 2
    labels = g.integers(0, shape[1], size=(shape[0],) + shape[2:])
    return z, labels


def test_dice_and_jaccard_are_tversky_special_cases_at_smooth_zero():
    z, labels = random_region_case()
    none = dict(smooth=0.0, reduction="none")
    dice = oracle.dice_loss(z, labels, **none)
    jaccard = oracle.jaccard_loss(z, labels, **none)
    np.testing.assert_allclose(
        dice, oracle.tversky_loss(z, labels, alpha=0.5, beta=0.5, **none), rtol=1e-12
    )
    np.testing.assert_allclose(
        jaccard, oracle.tversky_loss(z, labels, alpha=1, beta=1, **none), rtol=1e-12
    )
    d, j = 1 - dice, 1 - jaccard
    np.testing.assert_allclose(j, d / (2 - d), rtol=1e-12)


@pytest.mark.parametrize("smooth", [0.5, 1.0, 3.0])
def test_dice_with_smooth_s_is_tversky_half_half_with_smooth_s_over_two(smooth):
    z, labels = random_region_case(1)
    np.testing.assert_allclose(
        oracle.dice_loss(z, labels, smooth=smooth, reduction="none"),
        oracle.tversky_loss(z, labels, alpha=0.5, beta=0.5, smooth=smooth / 2, reduction="none"),
        rtol=1e-12,
    )


@pytest.mark.parametrize("loss", [oracle.dice_loss, oracle.jaccard_loss])
def test_perfect_prediction_scores_zero_and_disjoint_scores_one(loss):
    labels = np.array([[0, 1, 2, 2, 1, 0]])
    perfect = 40.0 * (np.eye(3)[labels].transpose(0, 2, 1) - 0.5)
    disjoint = 40.0 * (np.eye(3)[(labels + 1) % 3].transpose(0, 2, 1) - 0.5)
    assert loss(perfect, labels, smooth=0.0) == pytest.approx(0.0, abs=1e-12)
    assert loss(disjoint, labels, smooth=0.0) == pytest.approx(1.0, abs=1e-12)
    assert loss(perfect, labels) == pytest.approx(0.0, abs=1e-12)
    assert loss(disjoint, labels) == pytest.approx(1.0, abs=0.34)  # (0+1)/(4+1) vs 1/(2+1)
    assert loss(disjoint, labels) > 0.66


# --------------------------------------------------------------------------------------------
# Keras's documented values
# --------------------------------------------------------------------------------------------


def test_keras_sparse_categorical_crossentropy_from_logits():
    # Per row, lse - z_y: ln(1 + 2e^-7) = 0.001822, ln(1 + e^-9 + e^-8) = 0.000459,
    # 5 + ln(1 + e^-3 + e^-2) - 5 = 0.169846; mean 0.057376.
    z = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
    value = oracle.cross_entropy(z, np.array([0, 1, 2]))
    hand = (
        math.log(1 + 2 * math.exp(-7))
        + math.log(1 + math.exp(-9) + math.exp(-8))
        + math.log(1 + math.exp(-3) + math.exp(-2))
    ) / 3
    assert value == pytest.approx(hand, rel=1e-12)
    assert value == pytest.approx(0.0573, abs=1e-4)


def test_keras_binary_crossentropy_with_label_smoothing():
    # y' = 0.9 y + 0.05 = [.95, .05, .95]; softplus(10) = 10.0000454, softplus(-10) = 4.54e-5:
    # .95*4.54e-5 + .05*10.0000454 = 0.500045; the same for the middle element;
    # .95*10.0000454 + .05*4.54e-5 = 9.500045; mean = 3.500045.
    z = np.array([[10.0, -10.0, -10.0]])
    y = np.array([[1.0, 0.0, 1.0]])
    sp = lambda x: math.log1p(math.exp(x))
    hand = (
        0.95 * sp(-10)
        + 0.05 * sp(10)
        + 0.05 * sp(10)
        + 0.95 * sp(-10)
        + 0.95 * sp(10)
        + 0.05 * sp(-10)
    ) / 3
    as_multilabel = oracle.binary_cross_entropy(
        z, y, mode="multilabel", class_dim=-1, label_smoothing=0.1
    )
    as_binary = oracle.binary_cross_entropy(z, y, mode="binary", label_smoothing=0.1)
    assert as_multilabel == pytest.approx(hand, rel=1e-12)
    assert as_binary == pytest.approx(hand, rel=1e-12)
    assert as_binary == pytest.approx(3.5, abs=1e-4)


def test_keras_categorical_crossentropy_with_label_smoothing():
    # q = 0.9 * [1, 0, 0] + 0.1 / 3 = [0.9333.., 0.0333.., 0.0333..]; log-softmax of
    # [100, -100, -100] is [0, -200, -200] (the e^-200 terms vanish), so the loss is
    # 2 * (0.1 / 3) * 200 = 40 / 3 = 13.333..., Keras's documented value.
    z = np.array([[100.0, -100.0, -100.0]])
    one_hot = np.array([[1.0, 0.0, 0.0]])
    value = oracle.cross_entropy(z, one_hot, label_smoothing=0.1)
    assert value == pytest.approx(40.0 / 3.0, rel=1e-12)
    assert oracle.cross_entropy(z, np.array([0]), label_smoothing=0.1) == pytest.approx(
        40.0 / 3.0, rel=1e-12
    )


def test_keras3_binary_crossentropy_on_probabilities_in_float32():
    # Keras 3: clip to [1e-7, 1 - 1e-7] in float32, where 1 - 1e-7 rounds to 1 - 2^-23.
    # y = 1 everywhere, so only -log p counts: -log(1 - 2^-23) twice and -log(float32(1e-7)).
    y_true = np.array([[1.0, 1.0, 1.0]], dtype=np.float32)
    y_pred = np.array([[1.0, 1.0, 0.0]], dtype=np.float32)
    value = oracle.binary_cross_entropy(y_pred, y_true, from_logits=False)
    hand = (-2 * math.log(1 - 2.0**-23) - math.log(float(np.float32(1e-7)))) / 3
    assert value == pytest.approx(hand, rel=1e-12)
    assert value == pytest.approx(5.3727, abs=1e-4)

    # tf.keras 2.x also added eps inside the log, -[y log(p + eps) + (1-y) log(1 - p + eps)],
    # in float32; that is where its printed 5.1416497 came from (documentation, not the oracle).
    eps = np.float32(1e-7)
    p = np.clip(y_pred, eps, np.float32(1) - eps)
    tf2 = -(y_true * np.log(p + eps) + (1 - y_true) * np.log(1 - p + eps))
    assert float(np.mean(tf2)) == pytest.approx(5.1416497, rel=1e-6)


def test_clipping_happens_in_the_input_dtype():
    # p = 1, y = 0: -log(1 - hi) with hi = 1 - 2^-23 in float32 (23 ln 2) and
    # hi = 1 - 1e-7 in float64 (-ln(1e-7) up to float64 rounding of 1 - (1 - 1e-7)).
    y = np.array([0.0])
    float32 = oracle.binary_cross_entropy(np.array([1.0], dtype=np.float32), y, from_logits=False)
    float64 = oracle.binary_cross_entropy(np.array([1.0]), y, from_logits=False)
    assert float32 == pytest.approx(23 * LN2, rel=1e-12)
    assert float64 == pytest.approx(-math.log(1e-7), rel=1e-8)


def test_multiclass_probabilities_are_renormalised_before_clipping():
    # [.4, .4, .2] / 2 would be the same distribution as [.2, .2, .1] after renormalisation.
    probs = np.array([[0.4, 0.4, 0.2]])
    halved = probs / 2
    assert oracle.cross_entropy(halved, np.array([2]), from_logits=False) == pytest.approx(
        -math.log(0.2), rel=1e-12
    )
    assert oracle.dice_loss(halved, np.array([2]), from_logits=False) == pytest.approx(
        oracle.dice_loss(probs, np.array([2]), from_logits=False), rel=1e-12
    )


# --------------------------------------------------------------------------------------------
# Class-weight strategies
# --------------------------------------------------------------------------------------------

COUNTS = [10, 30, 0, 60]  # f = [.1, .3, absent, .6]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("inverse_frequency", [10.0, 1 / 0.3, 10.0, 1 / 0.6]),
        (
            "inverse_sqrt_frequency",
            [1 / math.sqrt(0.1), 1 / math.sqrt(0.3), 1 / math.sqrt(0.1), 1 / math.sqrt(0.6)],
        ),
        # median of the present frequencies [.1, .3, .6] is .3
        ("median_frequency", [3.0, 1.0, 3.0, 0.5]),
        (
            "log_inverse",
            [1 / math.log(1.12), 1 / math.log(1.32), 1 / math.log(1.12), 1 / math.log(1.62)],
        ),
        # (1 - .999) / (1 - .999^n) for n = 10, 30, 60; the absent class takes the largest
        (
            "effective_number",
            [
                0.001 / (1 - 0.999**10),
                0.001 / (1 - 0.999**30),
                0.001 / (1 - 0.999**10),
                0.001 / (1 - 0.999**60),
            ],
        ),
    ],
)
def test_class_weight_strategies_on_hand_counts(method, expected):
    np.testing.assert_allclose(
        oracle.class_weights_from_counts(COUNTS, method), expected, rtol=1e-12
    )


def test_median_frequency_with_an_even_number_of_present_classes():
    # f = [.1, .2, .3, .4]: the median is (.2 + .3) / 2 = .25
    np.testing.assert_allclose(
        oracle.class_weights_from_counts([10, 20, 30, 40], "median_frequency"),
        [2.5, 1.25, 0.25 / 0.3, 0.625],
        rtol=1e-12,
    )
    # with an absent class, the median runs over the present ones only: [.25, .75] -> .5
    np.testing.assert_allclose(
        oracle.class_weights_from_counts([0, 1, 3], "median_frequency"),
        [2.0, 2.0, 2 / 3],
        rtol=1e-12,
    )


def test_effective_number_with_a_hand_beta():
    # beta = .9: n = 1 -> .1/.1 = 1; n = 2 -> .1/.19; n = 3 -> .1/.271; absent -> 1 (largest)
    np.testing.assert_allclose(
        oracle.class_weights_from_counts([1, 2, 0, 3], "effective_number", beta=0.9),
        [1.0, 0.1 / 0.19, 1.0, 0.1 / 0.271],
        rtol=1e-12,
    )


def test_no_class_present_gives_unit_weights_and_balanced_rules():
    np.testing.assert_array_equal(
        oracle.class_weights_from_counts([0, 0, 0], "inverse_frequency"), [1.0, 1.0, 1.0]
    )
    # balanced: counts = [negatives, positives] -> [positive fraction, negative fraction]
    np.testing.assert_allclose(oracle.class_weights_from_counts([75, 25], "balanced"), [0.25, 0.75])
    for one_sided in ([0, 10], [10, 0], [0, 0]):
        np.testing.assert_array_equal(
            oracle.class_weights_from_counts(one_sided, "balanced"), [0.5, 0.5]
        )
    with pytest.raises(ValueError, match="method must be one of"):
        oracle.class_weights_from_counts([1, 2], "inverse")


def test_strategy_uses_valid_pixels_and_mask_but_not_pixel_weights():
    g = rng()
    z = g.normal(size=(1, 3, 5))
    labels = np.array([[0, 0, 0, 1, 255]])  # valid counts [3, 1, 0]: f = [.75, .25, 0]
    explicit = [4 / 3, 4.0, 4.0]  # 1/f, the absent class takes the largest
    pixel_weights = g.random(size=(1, 5)) + 0.5
    for loss in (oracle.cross_entropy, oracle.focal_loss, oracle.dice_loss):
        kw = dict(ignore_index=255, pixel_weights=pixel_weights)
        assert loss(z, labels, class_weights="inverse_frequency", **kw) == pytest.approx(
            loss(z, labels, class_weights=explicit, **kw), rel=1e-13
        )
    # A float mask of .5 on pixel 0 makes the counts [2.5, 1, 0]: f = [5/7, 2/7].
    mask = np.array([[0.5, 1, 1, 1, 1]])
    assert oracle.cross_entropy(
        z, labels, ignore_index=255, mask=mask, class_weights="inverse_frequency"
    ) == pytest.approx(
        oracle.cross_entropy(z, labels, ignore_index=255, mask=mask, class_weights=[1.4, 3.5, 3.5]),
        rel=1e-13,
    )


def test_strategy_on_float_targets_and_sigmoid_channels():
    # one-hot float target: counts = sum of the target, as for the index map
    z = rng().normal(size=(1, 3, 5))
    labels = np.array([[0, 0, 0, 1, 2]])
    one_hot = np.eye(3)[labels].transpose(0, 2, 1)
    assert oracle.cross_entropy(z, one_hot, class_weights="inverse_frequency") == (
        pytest.approx(oracle.cross_entropy(z, one_hot, class_weights=[5 / 3, 5.0, 5.0]), rel=1e-13)
    )
    # sigmoid channels: the frequency strategies are for multiclass mode (docs/semantics.md),
    # as on the torch and Keras fronts; "balanced" is the binary / multilabel strategy
    y = np.array([[[1, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]], dtype=np.float64)
    zs = rng().normal(size=(1, 3, 4))
    for loss in (oracle.binary_cross_entropy, oracle.dice_loss):
        with pytest.raises(ValueError, match=r"'balanced' for mode='multilabel'.*"
                                             r"got 'inverse_frequency'"):
            loss(zs, y, mode="multilabel", class_weights="inverse_frequency")


def test_balanced_binary_cross_entropy_by_hand():
    # logits 0: every term is ln 2; f = 1/4 positive -> positives x 3/4, negatives x 1/4.
    z = np.zeros((1, 1, 4))
    y = np.array([[[1.0, 0.0, 0.0, 0.0]]])
    kw = dict(class_weights="balanced")
    none = oracle.binary_cross_entropy(z, y, reduction="none", **kw)
    np.testing.assert_allclose(none, [[[0.75 * LN2, 0.25 * LN2, 0.25 * LN2, 0.25 * LN2]]])
    assert oracle.binary_cross_entropy(z, y, reduction="sum", **kw) == pytest.approx(1.5 * LN2)
    assert oracle.binary_cross_entropy(z, y, **kw) == pytest.approx(1.5 * LN2 / 4)
    # pos_weight multiplies the positive term on top: (0.75 * 2 + 0.75) ln 2
    assert oracle.binary_cross_entropy(z, y, reduction="sum", pos_weight=[2.0], **kw) == (
        pytest.approx(2.25 * LN2)
    )
    # one side absent: both weights 0.5
    assert oracle.binary_cross_entropy(z, np.ones_like(y), reduction="sum", **kw) == (
        pytest.approx(4 * 0.5 * LN2)
    )
    with pytest.raises(ValueError, match="balanced"):
        oracle.cross_entropy(
            np.zeros((1, 2, 4)), np.zeros((1, 4), dtype=int), class_weights="balanced"
        )


# --------------------------------------------------------------------------------------------
# ignore_index, mask, pixel_weights
# --------------------------------------------------------------------------------------------


def test_ignore_index_with_several_labels_equals_the_kept_pixels():
    g = rng()
    z = g.normal(size=(1, 3, 8)) * 2
    labels = np.array([[0, 255, 2, -100, 1, 1, 7, 0]])  # 7 lies outside [0, C) too
    keep = np.array([0, 2, 4, 5, 7])
    ignore = (255, -100, 7)
    for reduction in ("mean", "sum"):
        assert oracle.cross_entropy(
            z, labels, ignore_index=ignore, reduction=reduction
        ) == pytest.approx(
            oracle.cross_entropy(z[:, :, keep], labels[:, keep], reduction=reduction), rel=1e-13
        )
    for loss in REGION_LOSSES + [oracle.focal_loss]:
        assert loss(z, labels, ignore_index=ignore) == pytest.approx(
            loss(z[:, :, keep], labels[:, keep]), rel=1e-13
        )
    none = oracle.cross_entropy(z, labels, ignore_index=ignore, reduction="none")
    assert none.shape == (1, 8)
    assert np.all(none[0, [1, 3, 6]] == 0.0)
    # an ignore label inside [0, C): those pixels leave, the class stays in the softmax;
    # left: pixel 2 (label 2), pixels 4 and 5 (label 1)
    assert oracle.cross_entropy(z, labels, ignore_index=(0, 255, -100, 7)) == pytest.approx(
        -np.mean(log_softmax(z)[0, [2, 1, 1], [2, 4, 5]]), rel=1e-13
    )


def test_ignore_index_that_matches_nothing_changes_nothing():
    z, labels = random_region_case(2)
    for loss in ALL_LOSSES[:2] + REGION_LOSSES:
        assert loss(z, labels, ignore_index=255) == loss(z, labels)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_everything_ignored_gives_zero(reduction):
    z = rng().normal(size=(2, 3, 4))
    labels = np.full((2, 4), 255)
    for loss in [*PIXEL_LOSSES, *REGION_LOSSES, oracle.dice_ce_loss]:
        assert loss(z, labels, ignore_index=255, reduction=reduction) == 0.0
    y = np.full((2, 3, 4), -1)
    assert (
        oracle.binary_cross_entropy(z, y, mode="multilabel", ignore_index=-1, reduction=reduction)
        == 0.0
    )
    assert (
        oracle.dice_loss(z, y, mode="multilabel", ignore_index=-1, smooth=0.0, reduction=reduction)
        == 0.0
    )
    np.testing.assert_array_equal(
        oracle.cross_entropy(z, labels, ignore_index=255, reduction="none"), np.zeros((2, 4))
    )


def test_sigmoid_ignore_is_elementwise():
    z = rng().normal(size=(1, 2, 3))
    y = np.array([[[1, 0, 255], [255, 1, 0]]])
    kept = oracle.binary_cross_entropy(z, y, mode="multilabel", ignore_index=255, reduction="none")
    assert kept[0, 0, 2] == 0.0 and kept[0, 1, 0] == 0.0
    # mean over the 4 valid elements
    hand = (
        -(
            np.log(sigmoid(z[0, 0, 0]))
            + np.log(1 - sigmoid(z[0, 0, 1]))
            + np.log(sigmoid(z[0, 1, 1]))
            + np.log(1 - sigmoid(z[0, 1, 2]))
        )
        / 4
    )
    assert oracle.binary_cross_entropy(z, y, mode="multilabel", ignore_index=255) == (
        pytest.approx(hand, rel=1e-12)
    )


def test_bool_mask_equals_ignore_and_float_mask_scales():
    g = rng()
    z = g.normal(size=(1, 3, 6))
    labels = g.integers(0, 3, size=(1, 6))
    mask = np.array([[True, False, True, True, False, True]])
    ignored = np.where(mask, labels, 255)
    for loss in [*PIXEL_LOSSES, *REGION_LOSSES]:
        assert loss(z, labels, mask=mask) == pytest.approx(
            loss(z, ignored, ignore_index=255), rel=1e-13
        )
    # float mask m: CE mean = sum m_i l_i / sum m_i
    m = g.random(size=(1, 6))
    per_pixel = -log_softmax(z)[0, labels[0], np.arange(6)]
    assert oracle.cross_entropy(z, labels, mask=m) == pytest.approx(
        np.sum(m[0] * per_pixel) / np.sum(m), rel=1e-13
    )


def test_pixel_weights_in_loss_and_normaliser():
    g = rng()
    z = g.normal(size=(1, 3, 6))
    labels = np.array([[0, 1, 2, 2, 1, 0]])
    pw = g.random(size=(1, 6)) + 0.1
    w = np.array([1.0, 2.0, 0.5])
    per_pixel = -log_softmax(z)[0, labels[0], np.arange(6)]
    weight = pw[0] * w[labels[0]]
    assert oracle.cross_entropy(z, labels, pixel_weights=pw, class_weights=w) == (
        pytest.approx(np.sum(weight * per_pixel) / np.sum(weight), rel=1e-13)
    )
    assert oracle.cross_entropy(
        z, labels, pixel_weights=pw, class_weights=w, reduction="sum"
    ) == pytest.approx(np.sum(weight * per_pixel))
    # in region statistics v_i multiplies every sum: TP = sum pw p t, ...
    p = np.exp(log_softmax(z))[0]
    t = np.eye(3)[labels[0]].T
    tp = (pw[0] * p * t).sum(1)
    fp = (pw[0] * p * (1 - t)).sum(1)
    fn = (pw[0] * (1 - p) * t).sum(1)
    np.testing.assert_allclose(
        oracle.dice_loss(z, labels, pixel_weights=pw, reduction="none", smooth=0.5)[0],
        1 - (2 * tp + 0.5) / (2 * tp + fp + fn + 0.5),
        rtol=1e-13,
    )


def test_mask_broadcasts_over_channels_in_sigmoid_modes():
    g = rng()
    z = g.normal(size=(2, 3, 4))
    y = (g.random(size=(2, 3, 4)) > 0.5).astype(np.float64)
    mask = g.random(size=(2, 4)) > 0.3
    full = np.broadcast_to(mask[:, None, :], z.shape)
    for loss in (oracle.binary_cross_entropy, oracle.dice_loss, oracle.focal_loss):
        assert loss(z, y, mode="multilabel", mask=mask) == pytest.approx(
            loss(z, y, mode="multilabel", mask=full), rel=1e-13
        )


# --------------------------------------------------------------------------------------------
# pos_weight, label smoothing, focal, reductions
# --------------------------------------------------------------------------------------------


def test_pos_weight_runs_along_the_class_axis():
    g = rng()
    z = g.normal(size=(2, 3, 4))  # the last axis (4) differs from C (3) on purpose
    y = (g.random(size=(2, 3, 4)) > 0.5).astype(np.float64)
    pw = np.array([1.0, 2.0, 5.0])
    hand = -(pw[None, :, None] * y * np.log(sigmoid(z)) + (1 - y) * np.log(1 - sigmoid(z)))
    none = oracle.binary_cross_entropy(z, y, mode="multilabel", pos_weight=pw, reduction="none")
    np.testing.assert_allclose(none, hand, rtol=1e-12)
    last = oracle.binary_cross_entropy(
        np.moveaxis(z, 1, -1),
        np.moveaxis(y, 1, -1),
        mode="multilabel",
        class_dim=-1,
        pos_weight=pw,
        reduction="none",
    )
    np.testing.assert_allclose(last, np.moveaxis(hand, 1, -1), rtol=1e-12)


def test_label_smoothing_equals_cross_entropy_against_the_smoothed_target():
    g = rng()
    z = g.normal(size=(2, 4, 5))
    labels = g.integers(0, 4, size=(2, 5))
    eps = 0.2
    smoothed = (1 - eps) * np.eye(4)[labels].transpose(0, 2, 1) + eps / 4
    assert oracle.cross_entropy(z, labels, label_smoothing=eps) == pytest.approx(
        oracle.cross_entropy(z, smoothed), rel=1e-13
    )
    # the region losses ignore label_smoothing (dice_ce passes it to the CE term only)
    lam = oracle.dice_ce_loss(z, labels, label_smoothing=eps, lambda_ce=0.0)
    assert lam == pytest.approx(oracle.dice_loss(z, labels), rel=1e-13)


def test_focal_by_hand_in_both_modes():
    # sigmoid: z = 0 (p = .5), y = 1, gamma = 2, alpha = .25 -> .25 * .5^2 * ln 2
    value = oracle.focal_loss(np.zeros((1, 1)), np.ones((1, 1)), mode="binary", alpha=0.25)
    assert value == pytest.approx(0.25 * 0.25 * LN2, rel=1e-13)
    # y = 0: alpha_t = .75
    value = oracle.focal_loss(np.zeros((1, 1)), np.zeros((1, 1)), mode="binary", alpha=0.25)
    assert value == pytest.approx(0.75 * 0.25 * LN2, rel=1e-13)
    # multiclass, probabilities [.5, .25, .25], label 1: alpha[1] (1 - .25)^2 (-ln .25)
    p = np.array([[0.5, 0.25, 0.25]])
    alpha = [0.1, 0.6, 0.3]
    value = oracle.focal_loss(p, np.array([1]), from_logits=False, alpha=alpha)
    assert value == pytest.approx(0.6 * 0.75**2 * math.log(4), rel=1e-13)
    # a scalar alpha is a uniform scale in multiclass
    assert oracle.focal_loss(p, np.array([1]), from_logits=False, alpha=0.5) == (
        pytest.approx(0.5 * 0.75**2 * math.log(4), rel=1e-13)
    )
    # soft target: sum_c q_c (1 - p_c)^2 (-ln p_c)
    q = np.array([[0.5, 0.5, 0.0]])
    assert oracle.focal_loss(p, q, from_logits=False) == pytest.approx(
        0.5 * 0.25 * LN2 + 0.5 * 0.5625 * math.log(4), rel=1e-13
    )


def test_focal_mean_uses_the_cross_entropy_normaliser_without_alpha():
    z = rng().normal(size=(1, 3, 4))
    labels = np.array([[0, 1, 2, 2]])
    w = np.array([1.0, 2.0, 4.0])
    kw = dict(class_weights=w, alpha=[0.2, 0.3, 0.5])
    total = oracle.focal_loss(z, labels, reduction="sum", **kw)
    assert oracle.focal_loss(z, labels, **kw) == pytest.approx(total / (1 + 2 + 4 + 4))


def test_reductions_of_pixel_losses():
    g = rng()
    z = g.normal(size=(2, 3, 4))
    labels = g.integers(0, 3, size=(2, 4))
    labels[1, 2] = 255
    w = [0.5, 1.0, 3.0]
    for loss in PIXEL_LOSSES:
        none = loss(z, labels, ignore_index=255, class_weights=w, reduction="none")
        assert none.shape == (2, 4)
        total = loss(z, labels, ignore_index=255, class_weights=w, reduction="sum")
        assert total == pytest.approx(none.sum(), rel=1e-14)
        valid = labels != 255
        denominator = np.sum(np.asarray(w)[labels[valid]])
        assert loss(z, labels, ignore_index=255, class_weights=w) == pytest.approx(
            total / denominator, rel=1e-14
        )
    # float target: the mean divides by sum_i sum_c w_c t_ic, so a one-hot mask gives the
    # number of its index map, and a soft target weighs each pixel by its expected weight
    filled = np.where(labels == 255, 0, labels)
    one_hot = np.eye(3)[filled].transpose(0, 2, 1)
    total = oracle.cross_entropy(z, one_hot, class_weights=w, reduction="sum")
    assert oracle.cross_entropy(z, one_hot, class_weights=w) == pytest.approx(
        total / np.sum(np.asarray(w)[filled]), rel=1e-14)
    assert oracle.cross_entropy(z, one_hot, class_weights=w) == pytest.approx(
        oracle.cross_entropy(z, filled, class_weights=w), rel=1e-14)
    soft = 0.7 * one_hot + 0.1
    total = oracle.cross_entropy(z, soft, class_weights=w, reduction="sum")
    expected = np.sum(np.asarray(w)[None, :, None] * soft)
    assert oracle.cross_entropy(z, soft, class_weights=w) == pytest.approx(total / expected,
                                                                          rel=1e-14)
    # binary: mean over valid elements, class weights not in the normaliser
    y = (g.random(size=(2, 3, 4)) > 0.5).astype(np.int64)
    y[0, 1, 1] = 255
    kw = dict(mode="multilabel", ignore_index=255, class_weights=w)
    none = oracle.binary_cross_entropy(z, y, reduction="none", **kw)
    assert none.shape == (2, 3, 4)
    assert oracle.binary_cross_entropy(z, y, reduction="sum", **kw) == pytest.approx(none.sum())
    assert oracle.binary_cross_entropy(z, y, **kw) == pytest.approx(none.sum() / 23)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_unknown_mode_or_reduction_raises(loss):
    z, labels = np.zeros((1, 2, 3)), np.zeros((1, 3), dtype=int)
    if loss is oracle.binary_cross_entropy:
        labels = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="mode"):
        loss(z, labels, mode="softmax")
    with pytest.raises(ValueError, match="reduction"):
        loss(
            z, labels, mode="multilabel" if labels.ndim == 3 else "multiclass", reduction="average"
        )


def test_dice_ce_rejects_reduction_none():
    with pytest.raises(ValueError, match="reduction"):
        oracle.dice_ce_loss(np.zeros((1, 2, 3)), np.zeros((1, 3), dtype=int), reduction="none")


# --------------------------------------------------------------------------------------------
# Region losses: options and edge cases
# --------------------------------------------------------------------------------------------

# Four pixels, all of class 0; the prediction puts .8 on class 0 and .2 on class 1 everywhere.
# class 0: TP = 3.2, FP = 0, FN = .8 -> D0 = (6.4 + 1) / (6.4 + .8 + 1) = 7.4 / 8.2
# class 1: TP = 0, FP = .8, FN = 0   -> D1 = 1 / 1.8 (absent: its target is empty)
ABSENT_P = np.tile(np.array([[0.8], [0.2]]), (1, 1, 4))
ABSENT_Y = np.zeros((1, 4), dtype=np.int64)
L0, L1 = 1 - 7.4 / 8.2, 1 - 1 / 1.8


def test_absent_include_and_exclude():
    kw = dict(from_logits=False)
    assert oracle.dice_loss(ABSENT_P, ABSENT_Y, **kw) == pytest.approx((L0 + L1) / 2)
    assert oracle.dice_loss(ABSENT_P, ABSENT_Y, absent="exclude", **kw) == pytest.approx(L0)
    np.testing.assert_allclose(
        oracle.dice_loss(ABSENT_P, ABSENT_Y, absent="exclude", reduction="none", **kw), [[L0, 0.0]]
    )
    np.testing.assert_allclose(
        oracle.dice_loss(ABSENT_P, ABSENT_Y, reduction="none", **kw), [[L0, L1]]
    )
    assert oracle.dice_loss(ABSENT_P, ABSENT_Y, absent="exclude", reduction="sum", **kw) == (
        pytest.approx(L0)
    )
    # nothing kept: every pair absent and excluded (everything ignored) -> 0
    assert oracle.dice_loss(ABSENT_P, ABSENT_Y + 9, ignore_index=9, absent="exclude", **kw) == 0.0


def test_include_background():
    kw = dict(from_logits=False)
    assert oracle.dice_loss(ABSENT_P, ABSENT_Y, include_background=False, **kw) == (
        pytest.approx(L1)
    )
    none = oracle.dice_loss(ABSENT_P, ABSENT_Y, include_background=False, reduction="none", **kw)
    assert none.shape == (1, 1)
    # background dropped and the only foreground pair excluded: nothing kept -> 0
    assert (
        oracle.dice_loss(ABSENT_P, ABSENT_Y, include_background=False, absent="exclude", **kw)
        == 0.0
    )
    # only the Dice term of dice_ce sees include_background
    ce = oracle.cross_entropy(ABSENT_P, ABSENT_Y, **kw)
    assert oracle.dice_ce_loss(ABSENT_P, ABSENT_Y, include_background=False, **kw) == (
        pytest.approx(ce + L1)
    )
    # in multilabel mode include_background has no effect (classes are independent channels)
    z, y = rng().normal(size=(2, 3, 4)), (rng().random(size=(2, 3, 4)) > 0.5) * 1.0
    assert oracle.dice_loss(z, y, mode="multilabel", include_background=False) == (
        oracle.dice_loss(z, y, mode="multilabel")
    )


def test_region_class_weights_and_reductions():
    z, labels = random_region_case(3)
    w = np.array([0.5, 2.0, 1.5])
    unweighted = oracle.jaccard_loss(z, labels, reduction="none")
    weighted = oracle.jaccard_loss(z, labels, class_weights=w, reduction="none")
    np.testing.assert_allclose(weighted, w * unweighted, rtol=1e-14)
    assert oracle.jaccard_loss(z, labels, class_weights=w, reduction="sum") == (
        pytest.approx(weighted.sum())
    )
    assert oracle.jaccard_loss(z, labels, class_weights=w) == pytest.approx(
        weighted.sum() / (2 * w.sum())
    )
    # without background, class c >= 1 keeps its own weight w_c
    foreground = oracle.jaccard_loss(
        z, labels, class_weights=w, include_background=False, reduction="none"
    )
    np.testing.assert_allclose(foreground, weighted[:, 1:], rtol=1e-14)
    assert oracle.jaccard_loss(z, labels, class_weights=w, include_background=False) == (
        pytest.approx(weighted[:, 1:].sum() / (2 * w[1:].sum()))
    )
    # scale-free mean
    assert oracle.jaccard_loss(z, labels, class_weights=7 * w) == pytest.approx(
        oracle.jaccard_loss(z, labels, class_weights=w), rel=1e-14
    )
    # a strategy gives the same numbers as class_weights_from_counts on the batch counts
    counts = np.bincount(labels.ravel(), minlength=3)
    strategy_w = oracle.class_weights_from_counts(counts, "median_frequency")
    assert oracle.jaccard_loss(z, labels, class_weights="median_frequency") == pytest.approx(
        oracle.jaccard_loss(z, labels, class_weights=strategy_w), rel=1e-14
    )


def test_tversky_by_hand():
    # one image, one channel (binary), probabilities p = [.9, .6, .2, .1], t = [1, 1, 0, 1]
    # TP = .9 + .6 + .1 = 1.6, FP = .2, FN = .1 + .4 + .9 = 1.4
    p = np.array([[0.9, 0.6, 0.2, 0.1]])
    t = np.array([[1.0, 1.0, 0.0, 1.0]])
    kw = dict(mode="binary", from_logits=False, alpha=0.3, beta=0.7, smooth=1.0)
    index = (1.6 + 1) / (1.6 + 0.3 * 0.2 + 0.7 * 1.4 + 1)
    assert oracle.tversky_loss(p, t, **kw) == pytest.approx(1 - index, rel=1e-13)
    assert oracle.tversky_loss(p, t, gamma=0.75, **kw) == pytest.approx(
        (1 - index) ** 0.75, rel=1e-13
    )
    assert oracle.tversky_loss(p, t, reduction="none", **kw).shape == (1, 1)
    # zero denominator (alpha = beta = 0, TP = 0, smooth = 0): T := 1, loss 0, no NaN
    assert (
        oracle.tversky_loss(
            np.zeros((1, 4)),
            np.zeros((1, 4)),
            mode="binary",
            from_logits=False,
            alpha=0,
            beta=0,
            smooth=0,
        )
        == 0.0
    )


def test_batch_aggregate_equals_image_aggregate_on_the_concatenation():
    z, labels = random_region_case(4, shape=(3, 4, 2, 5))
    concat_z = np.concatenate(list(z), axis=-1)[None]
    concat_y = np.concatenate(list(labels), axis=-1)[None]
    for loss in REGION_LOSSES:
        batch = loss(z, labels, aggregate="batch", reduction="none")
        assert batch.shape == (4,)
        np.testing.assert_allclose(batch, loss(concat_z, concat_y, reduction="none")[0], rtol=1e-13)
        assert loss(z, labels, aggregate="global") == loss(z, labels, aggregate="batch")


def test_soft_label_equals_default_on_hard_targets_and_is_zero_at_p_equals_t():
    z, labels = random_region_case(5)
    one_hot = np.eye(3)[labels].transpose(0, 3, 1, 2)
    for loss in REGION_LOSSES:
        for target in (labels, one_hot):
            for aggregate in ("image", "batch"):
                np.testing.assert_allclose(
                    loss(z, target, soft_label=True, aggregate=aggregate, reduction="none"),
                    loss(z, target, aggregate=aggregate, reduction="none"),
                    rtol=1e-12,
                )
    soft = np.array([[[0.3, 0.6, 0.5], [0.7, 0.4, 0.5]]])
    assert oracle.dice_loss(soft, soft, from_logits=False, smooth=0.0, soft_label=True) == (
        pytest.approx(0.0, abs=1e-15)
    )
    assert oracle.dice_loss(soft, soft, from_logits=False, smooth=0.0) > 0.1


@pytest.mark.parametrize("loss", REGION_LOSSES)
def test_empty_mask_matrix(loss):
    # binary, 1000 pixels, smooth = 1, logits +-20 (sigmoid(20) = 1 - 2.06e-9)
    n = 1000
    empty, full = np.zeros((1, 1, n)), np.ones((1, 1, n))
    clean, everywhere = np.full((1, 1, n), -20.0), np.full((1, 1, n), 20.0)
    kw = dict(mode="binary")
    assert loss(clean, empty, **kw) == pytest.approx(0.0, abs=1e-5)  # T = 1 / (1 + 2e-6)
    fp_everywhere = loss(everywhere, empty, **kw)  # T ~ 1 / (1 + a n)
    assert fp_everywhere > 0.99
    assert loss(everywhere, full, **kw) == pytest.approx(0.0, abs=1e-5)
    assert loss(clean, full, **kw) > 0.99  # T ~ 1 / (1 + b n)
    # with absent="exclude" the empty-target pairs leave the mean: nothing kept -> 0
    assert loss(everywhere, empty, absent="exclude", **kw) == 0.0


def test_empty_mask_values_by_hand():
    # Dice, empty target, all-foreground prediction: TP = 0, FP = n s, FN = 0
    n = 1000
    s = 1 / (1 + math.exp(-20.0))
    fp = n * s
    assert oracle.dice_loss(np.full((1, 1, n), 20.0), np.zeros((1, 1, n)), mode="binary") == (
        pytest.approx(1 - 1 / (fp + 1), rel=1e-12)
    )


# --------------------------------------------------------------------------------------------
# Layouts and target forms
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [*PIXEL_LOSSES, *REGION_LOSSES, oracle.dice_ce_loss])
def test_class_dim_last_equals_class_dim_one(loss):
    g = rng()
    z = g.normal(size=(2, 3, 4, 5))
    labels = g.integers(0, 3, size=(2, 4, 5))
    reduction = "sum" if loss is oracle.dice_ce_loss else "none"
    first = loss(z, labels, reduction=reduction)
    last = loss(np.moveaxis(z, 1, -1), labels, class_dim=-1, reduction=reduction)
    np.testing.assert_allclose(last, first, rtol=1e-13)
    y = (g.random(size=z.shape) > 0.5) * 1.0
    if loss is oracle.cross_entropy:
        loss = oracle.binary_cross_entropy
    first = loss(z, y, mode="multilabel", reduction=reduction)
    last = loss(
        np.moveaxis(z, 1, -1),
        np.moveaxis(y, 1, -1),
        mode="multilabel",
        class_dim=-1,
        reduction=reduction,
    )
    if loss in PIXEL_LOSSES + [oracle.binary_cross_entropy]:
        last = np.moveaxis(last, -1, 1)
    np.testing.assert_allclose(last, first, rtol=1e-13)


@pytest.mark.parametrize(
    "loss", [oracle.binary_cross_entropy, oracle.focal_loss, *REGION_LOSSES, oracle.dice_ce_loss]
)
def test_binary_and_multilabel_with_one_channel_agree(loss):
    g = rng()
    z = g.normal(size=(2, 1, 3, 4))
    y = (g.random(size=z.shape) > 0.5) * 1.0
    reduction = "sum" if loss is oracle.dice_ce_loss else "mean"
    binary = loss(z, y, mode="binary", reduction=reduction)
    assert binary == pytest.approx(loss(z, y, mode="multilabel", reduction=reduction), rel=1e-14)
    # binary input without a channel axis
    assert binary == pytest.approx(
        loss(z[:, 0], y[:, 0], mode="binary", reduction=reduction), rel=1e-14
    )
    if loss is not oracle.dice_ce_loss:
        assert loss(z[:, 0], y[:, 0], mode="binary", reduction="none").shape == (
            (2, 3, 4) if loss in (oracle.binary_cross_entropy, oracle.focal_loss) else (2, 1)
        )


def test_index_target_forms_agree():
    g = rng()
    z = g.normal(size=(2, 3, 4))
    labels = g.integers(0, 3, size=(2, 4))
    one_hot_int = np.eye(3, dtype=np.uint8)[labels].transpose(0, 2, 1)
    for loss in [*PIXEL_LOSSES, *REGION_LOSSES]:
        reference = loss(z, labels)
        assert loss(z, labels[:, None, :].astype(np.int16)) == pytest.approx(reference)
        assert loss(z, one_hot_int) == pytest.approx(reference, rel=1e-13)
    with pytest.raises(ValueError, match="target must have shape"):
        oracle.cross_entropy(z, labels[:, None, :].astype(np.float64))


def test_empty_tensors():
    z = np.zeros((0, 3, 4))
    labels = np.zeros((0, 4), dtype=np.int64)
    for loss in [*PIXEL_LOSSES, *REGION_LOSSES]:
        assert loss(z, labels) == 0.0
        assert loss(z, labels, reduction="sum") == 0.0
    assert oracle.cross_entropy(z, labels, reduction="none").shape == (0, 4)
    assert oracle.dice_loss(z, labels, reduction="none").shape == (0, 3)


def test_low_precision_probabilities_are_computed_in_float64_after_clipping():
    p32 = THREE_PIXELS.astype(np.float32)
    value = oracle.cross_entropy(p32, np.array([1, 2, 0]), from_logits=False, reduction="sum")
    assert isinstance(value, float)
    renormalised = p32 / p32.sum(axis=1, keepdims=True)
    hand = -np.log(renormalised[[0, 1, 2], [1, 2, 0]].astype(np.float64)).sum()
    assert value == pytest.approx(hand, rel=1e-14)
    p16 = THREE_PIXELS.astype(np.float16)
    assert oracle.dice_loss(p16, np.array([1, 2, 0]), from_logits=False) == (
        pytest.approx(
            oracle.dice_loss(THREE_PIXELS, np.array([1, 2, 0]), from_logits=False), rel=1e-2
        )
    )


# --------------------------------------------------------------------------------------------
# Dice + CE
# --------------------------------------------------------------------------------------------


def test_dice_ce_is_the_weighted_sum_of_its_terms():
    z, labels = random_region_case(6)
    w = [1.0, 2.0, 3.0]
    for reduction in ("mean", "sum"):
        expected = 0.3 * oracle.cross_entropy(
            z, labels, class_weights=w, reduction=reduction, label_smoothing=0.1
        ) + 2.0 * oracle.dice_loss(
            z, labels, class_weights=w, absent="exclude", smooth=0.5, reduction=reduction
        )
        assert oracle.dice_ce_loss(
            z,
            labels,
            lambda_ce=0.3,
            lambda_dice=2.0,
            class_weights=w,
            label_smoothing=0.1,
            absent="exclude",
            smooth=0.5,
            reduction=reduction,
        ) == pytest.approx(expected, rel=1e-14)
    y = (rng().random(size=z.shape) > 0.5) * 1.0
    kw = dict(mode="multilabel")
    expected = oracle.binary_cross_entropy(
        z, y, class_weights="balanced", pos_weight=[1, 2, 3], **kw
    ) + oracle.dice_loss(z, y, **kw)
    assert oracle.dice_ce_loss(
        z, y, class_weights="balanced", pos_weight=[1, 2, 3], **kw
    ) == pytest.approx(expected, rel=1e-14)


# --------------------------------------------------------------------------------------------
# Parity with PyTorch's own losses (an outside anchor; skipped where torch is missing)
# --------------------------------------------------------------------------------------------


def test_cross_entropy_matches_torch_with_weights_ignore_and_label_smoothing():
    torch = pytest.importorskip("torch")
    g = rng()
    z = g.normal(size=(2, 4, 3, 5)) * 2
    labels = g.integers(0, 4, size=(2, 3, 5))
    labels[0, 1, :3] = -100
    w = np.array([0.3, 1.0, 2.0, 0.7])
    for reduction in ("mean", "sum", "none"):
        expected = torch.nn.functional.cross_entropy(
            torch.from_numpy(z),
            torch.from_numpy(labels),
            weight=torch.from_numpy(w),
            ignore_index=-100,
            label_smoothing=0.15,
            reduction=reduction,
        ).numpy()
        value = oracle.cross_entropy(
            z, labels, class_weights=w, ignore_index=-100, label_smoothing=0.15, reduction=reduction
        )
        np.testing.assert_allclose(value, expected, rtol=1e-12)
    soft = g.dirichlet(np.ones(4), size=(2, 3, 5)).transpose(0, 3, 1, 2)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(soft))
    assert oracle.cross_entropy(z, soft) == pytest.approx(float(expected), rel=1e-12)


def test_binary_cross_entropy_matches_torch_with_pos_weight():
    torch = pytest.importorskip("torch")
    g = rng()
    z = g.normal(size=(2, 3, 4)) * 3
    y = g.random(size=(2, 3, 4))
    pw = np.array([0.5, 2.0, 4.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(z), torch.from_numpy(y), pos_weight=torch.from_numpy(pw[:, None])
    )
    value = oracle.binary_cross_entropy(z, y, mode="multilabel", pos_weight=pw)
    assert value == pytest.approx(float(expected), rel=1e-12)
