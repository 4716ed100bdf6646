"""Invariants of the losses, checked with hypothesis on small random shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seglosses.information as info
import seglosses.torch as sl

shapes = st.tuples(st.integers(1, 3), st.integers(2, 5), st.integers(1, 5), st.integers(1, 5))
seeds = st.integers(0, 2**31 - 1)


def _draw(shape, seed, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    x = torch.randn(shape, generator=g, dtype=dtype) * scale
    y = torch.randint(0, c, (n, h, w), generator=g)
    return x, y, g


@given(shapes, seeds)
def test_cross_entropy_nonnegative_and_shift_invariant(shape, seed):
    x, y, g = _draw(shape, seed)
    loss = sl.cross_entropy(x, y, reduction="none")
    assert torch.all(loss >= 0)
    shift = torch.randn((shape[0], 1, *shape[2:]), generator=g, dtype=x.dtype) * 10
    torch.testing.assert_close(sl.cross_entropy(x + shift, y, reduction="none"), loss)
    torch.testing.assert_close(sl.dice_ce_loss(x + shift, y), sl.dice_ce_loss(x, y))


@given(shapes, seeds)
def test_class_permutation_equivariance(shape, seed):
    x, y, g = _draw(shape, seed)
    perm = torch.randperm(shape[1], generator=g)
    inverse = torch.argsort(perm)
    weights = torch.rand(shape[1], generator=g, dtype=x.dtype) + 0.1
    for fn in (sl.cross_entropy, sl.dice_loss, sl.focal_loss, sl.dice_ce_loss):
        xa = x.clone().requires_grad_()
        xb = x[:, perm].clone().requires_grad_()
        a = fn(xa, y, class_weights=weights)
        b = fn(xb, inverse[y], class_weights=weights[perm])
        torch.testing.assert_close(a, b)
        a.backward()
        b.backward()
        torch.testing.assert_close(xb.grad, xa.grad[:, perm])


@given(shapes, seeds, st.sampled_from(["mean", "sum"]))
def test_cross_entropy_gradient_is_softmax_minus_target(shape, seed, reduction):
    x, y, g = _draw(shape, seed)
    if y.numel() > 1:  # keep one valid pixel (all-ignored has its own test)
        y[0, 0, 0] = 255
    x.requires_grad_()
    sl.cross_entropy(x, y, ignore_index=255, reduction=reduction).backward()
    valid = y != 255
    onehot = torch.nn.functional.one_hot(y.clamp(max=shape[1] - 1), shape[1]).movedim(-1, 1)
    expected = (torch.softmax(x.detach(), 1) - onehot) * valid.unsqueeze(1)
    if reduction == "mean":
        expected = expected / valid.sum()
    torch.testing.assert_close(x.grad, expected)
    torch.testing.assert_close(x.grad.sum(1), torch.zeros_like(x.grad.sum(1)))
    if y.numel() > 1:
        assert torch.all(x.grad[0, :, 0, 0] == 0)


@given(st.integers(2, 6), st.integers(1, 20), seeds)
def test_cross_entropy_is_at_least_the_entropy_with_equality_at_the_target(c, n, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.softmax(torch.randn(n, c, generator=g, dtype=torch.float64) * 2, 1)
    entropy = info.entropy(q.numpy(), base=math.e, axis=1)
    at_target = sl.cross_entropy(torch.log(q), q, reduction="none").numpy()
    np.testing.assert_allclose(at_target, entropy, rtol=1e-10, atol=1e-12)
    other = torch.randn(n, c, generator=g, dtype=torch.float64)
    assert np.all(sl.cross_entropy(other, q, reduction="none").numpy() >= entropy - 1e-12)


@given(shapes, seeds, st.floats(0.0, 1.0))
def test_label_smoothing_is_ce_against_the_smoothed_target(shape, seed, epsilon):
    x, y, _ = _draw(shape, seed)
    c = shape[1]
    smoothed = (1 - epsilon) * torch.nn.functional.one_hot(y, c).movedim(-1, 1) + epsilon / c
    torch.testing.assert_close(sl.cross_entropy(x, y, label_smoothing=epsilon),
                               sl.cross_entropy(x, smoothed.double()))


@given(shapes, seeds)
def test_tversky_special_cases_at_smooth_zero(shape, seed):
    x, y, _ = _draw(shape, seed)
    dice = sl.dice_loss(x, y, smooth=0.0, reduction="none")
    torch.testing.assert_close(sl.tversky_loss(x, y, alpha=0.5, beta=0.5, smooth=0.0,
                                               reduction="none"), dice)
    jaccard = sl.jaccard_loss(x, y, smooth=0.0, reduction="none")
    torch.testing.assert_close(sl.tversky_loss(x, y, alpha=1.0, beta=1.0, smooth=0.0,
                                               reduction="none"), jaccard)
    d, j = 1 - dice, 1 - jaccard
    torch.testing.assert_close(j, d / (2 - d))
    torch.testing.assert_close(sl.dice_loss(x, y, smooth=2.0),
                               sl.tversky_loss(x, y, smooth=1.0))


@given(shapes, seeds, st.sampled_from(["dice_loss", "jaccard_loss", "tversky_loss"]))
def test_batch_aggregate_equals_image_on_the_concatenation(shape, seed, name):
    x, y, _ = _draw(shape, seed)
    fn = getattr(sl, name)
    joined_x = torch.cat(list(x), dim=-1).unsqueeze(0)  # images side by side
    joined_y = torch.cat(list(y), dim=-1).unsqueeze(0)
    torch.testing.assert_close(fn(x, y, aggregate="batch", reduction="none"),
                               fn(joined_x, joined_y, reduction="none")[0])


@given(shapes, seeds)
def test_ignore_index_with_nothing_ignored_changes_nothing(shape, seed):
    x, y, _ = _draw(shape, seed)
    for fn in (sl.cross_entropy, sl.focal_loss, sl.dice_loss, sl.dice_ce_loss):
        torch.testing.assert_close(fn(x, y, ignore_index=(255, -100)), fn(x, y))


@given(shapes, seeds, st.floats(0.01, 100.0))
def test_weights_uniform_equals_none_and_scale_free_for_mean(shape, seed, k):
    x, y, g = _draw(shape, seed)
    c = shape[1]
    weights = torch.rand(c, generator=g, dtype=x.dtype) + 0.05
    for fn in (sl.cross_entropy, sl.dice_loss, sl.focal_loss, sl.dice_ce_loss):
        torch.testing.assert_close(fn(x, y, class_weights=[k] * c), fn(x, y))
        torch.testing.assert_close(fn(x, y, class_weights=weights * k),
                                   fn(x, y, class_weights=weights))


@given(shapes, seeds)
def test_sum_is_none_summed_and_mean_uses_the_spec_normaliser(shape, seed):
    x, y, g = _draw(shape, seed)
    if y.numel() > y.shape[-1]:  # keep valid pixels (all-ignored has its own test)
        y[0, 0] = 255
    weights = torch.rand(shape[1], generator=g, dtype=x.dtype) + 0.1
    options = {"ignore_index": 255, "class_weights": weights}
    for fn in (sl.cross_entropy, sl.focal_loss, sl.dice_loss, sl.tversky_loss):
        none = fn(x, y, reduction="none", **options)
        torch.testing.assert_close(fn(x, y, reduction="sum", **options), none.sum())
    valid = y != 255
    normaliser = weights[y.clamp(max=shape[1] - 1)][valid].sum()
    torch.testing.assert_close(sl.cross_entropy(x, y, **options),
                               sl.cross_entropy(x, y, reduction="sum", **options) / normaliser)
    images_with_pixels = valid.flatten(1).any(1).sum()  # wholly ignored images leave the mean
    torch.testing.assert_close(sl.dice_loss(x, y, **options),
                               sl.dice_loss(x, y, reduction="sum", **options)
                               / (weights.sum() * images_with_pixels))


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
@given(seed=seeds)
def test_sigmoid_focal_gamma_zero_is_bce(mode, seed):
    g = torch.Generator().manual_seed(seed)
    c = 1 if mode == "binary" else 3
    x = torch.randn(2, c, 4, 4, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (2, c, 4, 4), generator=g)
    torch.testing.assert_close(sl.focal_loss(x, y, mode=mode, gamma=0.0, pos_weight=[2.0] * c),
                               sl.binary_cross_entropy(x, y, mode=mode, pos_weight=[2.0] * c))
