"""torch.autograd.gradcheck (float64) for every loss and its main option combinations."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import seglosses.torch as sl

W = [0.5, 1.0, 2.0]


def _index(n=2, c=3, shape=(3, 4), ignore=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n, *shape), generator=g)
    if ignore:
        y[0, 0] = 255
    return x, y


def _soft(n=2, c=3, shape=(3, 4), seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, c, *shape, generator=g, dtype=torch.float64) * 2, 1)


MULTICLASS = [
    ("ce", sl.cross_entropy, {"ignore_index": 255}),
    ("ce weighted smoothed", sl.cross_entropy, {"ignore_index": 255, "class_weights": W,
                                                "label_smoothing": 0.2}),
    ("ce strategy", sl.cross_entropy, {"ignore_index": 255,
                                       "class_weights": "median_frequency"}),
    ("focal", sl.focal_loss, {"ignore_index": 255, "gamma": 2.0, "alpha": [0.2, 0.3, 0.5]}),
    ("focal fractional gamma", sl.focal_loss, {"ignore_index": 255, "gamma": 0.5,
                                               "label_smoothing": 0.1}),
    ("dice", sl.dice_loss, {"ignore_index": 255}),
    ("dice batch no background", sl.dice_loss, {"ignore_index": 255, "aggregate": "batch",
                                                "include_background": False}),
    ("dice weighted exclude", sl.dice_loss, {"ignore_index": 255, "class_weights": W,
                                             "absent": "exclude"}),
    ("jaccard", sl.jaccard_loss, {"ignore_index": 255, "smooth": 0.1}),
    ("tversky focal", sl.tversky_loss, {"ignore_index": 255, "alpha": 0.3, "beta": 0.7,
                                        "gamma": 1.5}),
    ("dice_ce", sl.dice_ce_loss, {"ignore_index": 255, "class_weights": "inverse_frequency",
                                  "label_smoothing": 0.1, "lambda_ce": 0.7}),
    ("dice_ce channels-last", sl.dice_ce_loss, {"ignore_index": 255, "class_dim": -1}),
]


@pytest.mark.parametrize("name,fn,options", MULTICLASS, ids=[m[0] for m in MULTICLASS])
def test_gradcheck_multiclass_index(name, fn, options):
    x, y = _index()
    if options.get("class_dim") == -1:
        x = x.movedim(1, -1).contiguous()
    pixel_weights = torch.rand(y.shape, dtype=torch.float64)
    assert gradcheck(lambda z: fn(z, y, pixel_weights=pixel_weights, **options),
                     (x.requires_grad_(),))


@pytest.mark.parametrize("fn,options", [
    (sl.cross_entropy, {"class_weights": W, "label_smoothing": 0.1}),
    (sl.focal_loss, {"gamma": 1.5}),
    (sl.dice_loss, {"soft_label": True}),
    (sl.tversky_loss, {"alpha": 0.2, "beta": 0.8, "soft_label": False}),
    (sl.dice_ce_loss, {"soft_label": True, "class_weights": W}),
])
def test_gradcheck_multiclass_soft(fn, options):
    x, _ = _index()
    target = _soft()
    mask = torch.rand(target.shape[0], *target.shape[2:]) > 0.2
    assert gradcheck(lambda z: fn(z, target, mask=mask, **options), (x.requires_grad_(),))


@pytest.mark.parametrize("fn", [sl.cross_entropy, sl.dice_loss, sl.dice_ce_loss, sl.focal_loss])
def test_gradcheck_probability_input(fn):
    p = _soft(seed=3)
    _, y = _index(ignore=False)
    assert gradcheck(lambda z: fn(z, y, from_logits=False), (p.requires_grad_(),))


@pytest.mark.parametrize("mode,channels", [("binary", 1), ("multilabel", 3)])
@pytest.mark.parametrize("fn,options", [
    (sl.binary_cross_entropy, {"label_smoothing": 0.1}),
    (sl.binary_cross_entropy, {"class_weights": "balanced"}),
    (sl.focal_loss, {"gamma": 2.0, "alpha": 0.25}),
    (sl.dice_loss, {"aggregate": "batch"}),
    (sl.tversky_loss, {"alpha": 0.7, "beta": 0.3, "gamma": 0.75}),
    (sl.dice_ce_loss, {}),
])
def test_gradcheck_sigmoid(fn, options, mode, channels):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, channels, 3, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (2, channels, 3, 4), generator=g)
    y[0, 0, 0] = 255
    assert gradcheck(lambda z: fn(z, y, mode=mode, ignore_index=255, **options),
                     (x.requires_grad_(),))


def test_gradcheck_reduction_none_with_random_upstream():
    x, y = _index()
    upstream = torch.randn(2, 3, 4, dtype=torch.float64)
    assert gradcheck(lambda z: (sl.cross_entropy(z, y, ignore_index=255, reduction="none")
                                * upstream).sum(), (x.requires_grad_(),))
    region_upstream = torch.randn(2, 3, dtype=torch.float64)
    assert gradcheck(lambda z: (sl.dice_loss(z, y, ignore_index=255, reduction="none")
                                * region_upstream).sum(), (x,))


SOFTMAX_LOSSES = ["cross_entropy", "dice_loss", "jaccard_loss", "tversky_loss", "dice_ce_loss"]


@pytest.mark.parametrize("name", SOFTMAX_LOSSES)
def test_torch_func_grad_and_vmap_give_the_autograd_gradient(name):
    """torch.func transforms take plain autograd (they cannot see through the fused softmax's
    analytic backward) and agree with it."""
    torch.manual_seed(0)
    function = getattr(sl, name)
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 5, 5))
    leaf = x.clone().requires_grad_()
    function(leaf, y).backward()
    torch.testing.assert_close(torch.func.grad(lambda a: function(a, y))(x), leaf.grad)
    per_image = torch.func.vmap(lambda a, b: function(a[None], b[None], validate=False))(x, y)
    torch.testing.assert_close(per_image, torch.stack([function(x[i:i + 1], y[i:i + 1])
                                                       for i in range(3)]))


@pytest.mark.parametrize("name", SOFTMAX_LOSSES)
def test_double_backward_on_logits_is_a_clear_error_and_probabilities_support_it(name):
    torch.manual_seed(0)
    function = getattr(sl, name)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (2, 4, 4))
    with pytest.raises(RuntimeError, match=rf"{name}: the gradient with respect to logits "
                                           r"cannot be differentiated again .*from_logits=False"):
        torch.autograd.grad(function(x, y), x, create_graph=True)
    assert torch.autograd.gradgradcheck(
        lambda a: function(torch.softmax(a, 1), y, from_logits=False), (x,))
