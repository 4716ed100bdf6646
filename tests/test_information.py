"""seglosses.information: entropy, cross-entropy and KL divergence of discrete distributions."""

import math
import re
import warnings

import numpy as np
import pytest

import seglosses.numpy as oracle
from seglosses.information import cross_entropy, entropy, kl_divergence


def test_textbook_values_in_bits():
    assert entropy([0.5, 0.125, 0.25, 0.125]) == pytest.approx(1.75, rel=1e-15)
    # 7/8 log2(8/7) + 3/24 log2(24) = 0.168564 + 0.573120 = 0.741684
    assert entropy([7 / 8, 1 / 24, 1 / 24, 1 / 24]) == pytest.approx(
        7 / 8 * math.log2(8 / 7) + 1 / 8 * math.log2(24), rel=1e-14
    )
    assert round(entropy([7 / 8, 1 / 24, 1 / 24, 1 / 24]), 2) == 0.74
    assert cross_entropy([1, 0, 0], [0.9, 0.05, 0.05]) == pytest.approx(-math.log2(0.9))
    assert round(cross_entropy([1, 0, 0], [0.9, 0.05, 0.05]), 3) == 0.152
    assert cross_entropy([1, 0, 0], [0.4, 0.3, 0.3]) == pytest.approx(-math.log2(0.4))
    assert round(cross_entropy([1, 0, 0], [0.4, 0.3, 0.3]), 2) == 1.32


@pytest.mark.parametrize("k", [2, 3, 10])
def test_uniform_distribution_in_several_bases(k):
    uniform = np.full(k, 1 / k)
    assert entropy(uniform) == pytest.approx(math.log2(k), rel=1e-14)
    assert entropy(uniform, base=math.e) == pytest.approx(math.log(k), rel=1e-14)
    assert entropy(uniform, base=10) == pytest.approx(math.log10(k), rel=1e-14)
    assert entropy(uniform, base=k) == pytest.approx(1.0, rel=1e-14)


def test_zero_log_zero_is_zero_and_impossible_outcomes_are_infinite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert entropy([1.0, 0.0]) == 0.0
        assert cross_entropy([0.0, 1.0], [0.0, 1.0]) == 0.0
        assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(1.0)  # log2(1/.5)
        assert cross_entropy([0.5, 0.5], [1.0, 0.0]) == math.inf
        assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_kl_is_cross_entropy_minus_entropy_and_gibbs_inequality():
    g = np.random.default_rng(7)
    p = g.dirichlet(np.ones(5), size=20)
    q = g.dirichlet(np.ones(5), size=20)
    kl = kl_divergence(p, q)
    assert kl.shape == (20,)
    np.testing.assert_allclose(kl, cross_entropy(p, q) - entropy(p), rtol=1e-10, atol=1e-14)
    assert np.all(kl > 0)
    np.testing.assert_allclose(kl_divergence(p, p), 0.0, atol=1e-15)
    assert np.all(cross_entropy(p, q) >= entropy(p))
    np.testing.assert_allclose(cross_entropy(p, p), entropy(p), rtol=1e-14)


def test_axis_and_broadcasting():
    g = np.random.default_rng(8)
    p = g.dirichlet(np.ones(4), size=3)  # (3, 4), distributions along the last axis
    np.testing.assert_allclose(entropy(p.T, axis=0), entropy(p), rtol=1e-15)
    np.testing.assert_allclose(
        cross_entropy(p.T, p[::-1].T, axis=0), cross_entropy(p, p[::-1]), rtol=1e-15
    )
    target = np.array([0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(cross_entropy(target, p), -np.log2(p[:, 1]), rtol=1e-14)
    assert isinstance(entropy(p[0]), float)


def test_cross_entropy_in_nats_is_the_pixel_loss():
    # The oracle's CE with a soft target and probabilities q is the mean over pixels of
    # H(target, q) in nats.
    g = np.random.default_rng(9)
    target = g.dirichlet(np.ones(3), size=6)
    q = g.dirichlet(np.ones(3), size=6)
    loss = oracle.cross_entropy(q, target, from_logits=False)
    assert loss == pytest.approx(np.mean(cross_entropy(target, q, base=math.e)), rel=1e-12)


def test_sum_error_message():
    message = "entropy: p must sum to 1 along axis -1; got sums [0.9]."
    with pytest.raises(ValueError, match=re.escape(message)):
        entropy([0.5, 0.4])
    with pytest.raises(ValueError, match=re.escape("got sums [2.0, 0.5].")):
        entropy([[1.0, 1.0], [0.25, 0.75], [0.25, 0.25]])
    with pytest.raises(ValueError, match=re.escape("kl_divergence: q must sum to 1 along axis 0")):
        kl_divergence([[0.5], [0.5]], [[0.5], [0.6]], axis=0)
    # within 1e-6 is accepted
    assert entropy([0.5, 0.5 + 5e-7]) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ([1.5, -0.5], "entropy: p must be non-negative; got minimum -0.5."),
        ([np.nan, 1.0], "entropy: p must be finite; got [nan]."),
        ([np.inf, 0.0], "entropy: p must be finite; got [inf]."),
        (0.5, "entropy: p must have at least one axis; got a scalar."),
    ],
)
def test_value_errors(values, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        entropy(values)


@pytest.mark.parametrize("base", [1, 0, -2, math.inf, "2", True])
def test_bad_base(base):
    with pytest.raises(ValueError, match="cross_entropy: base must be a finite number > 0"):
        cross_entropy([1.0, 0.0], [0.5, 0.5], base=base)


def test_argument_named_in_errors_and_shape_mismatch():
    with pytest.raises(ValueError, match=re.escape("cross_entropy: q must be non-negative")):
        cross_entropy([1.0, 0.0], [1.5, -0.5])
    with pytest.raises(ValueError, match="p and q must have broadcastable shapes"):
        kl_divergence([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
