"""Parity with the libraries users come from, with matched settings (docs/semantics.md lists
every place where the semantics differ and why)."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as tF

import seglosses.torch as sl
from _optional import installed, skip_unless_installed

torch.manual_seed(0)


def _close(a, b, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def _grads(fn_a, fn_b, x):
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    va, vb = fn_a(xa), fn_b(xb)
    _close(va, vb)
    (va * 1.7).sum().backward()
    (vb * 1.7).sum().backward()
    _close(xa.grad, xb.grad)


@pytest.fixture
def logits():
    return torch.randn(3, 5, 6, 7, dtype=torch.float64)


@pytest.fixture
def labels():
    y = torch.randint(0, 5, (3, 6, 7))
    y[0, :2] = 255
    return y


# ---- torch.nn.functional ------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [
    {},
    {"weight": [0.1, 2.0, 1.0, 0.5, 3.0]},
    {"ignore_index": 255},
    {"label_smoothing": 0.15},
    {"weight": [0.1, 2.0, 1.0, 0.5, 3.0], "ignore_index": 255, "label_smoothing": 0.3},
])
def test_cross_entropy_matches_torch(logits, labels, options, reduction):
    if "ignore_index" not in options:
        labels = labels.clamp(max=4)
    ours = {"class_weights": options.get("weight"), "ignore_index": options.get("ignore_index"),
            "label_smoothing": options.get("label_smoothing", 0.0), "reduction": reduction}
    theirs = dict(options, reduction=reduction)
    if "weight" in theirs:
        theirs["weight"] = torch.tensor(theirs["weight"], dtype=torch.float64)
    theirs.setdefault("ignore_index", -100)
    _grads(lambda x: sl.cross_entropy(x, labels, **ours),
           lambda x: tF.cross_entropy(x, labels, **theirs), logits)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_match_torch(logits, smoothing):
    target = torch.softmax(torch.randn_like(logits) * 3, 1)
    weight = torch.tensor([0.1, 2.0, 1.0, 0.5, 3.0], dtype=torch.float64)
    _grads(lambda x: sl.cross_entropy(x, target, class_weights=weight,
                                      label_smoothing=smoothing, reduction="sum"),
           lambda x: tF.cross_entropy(x, target, weight=weight, label_smoothing=smoothing,
                                      reduction="sum"), logits)
    _grads(lambda x: sl.cross_entropy(x, target, label_smoothing=smoothing),
           lambda x: tF.cross_entropy(x, target, label_smoothing=smoothing), logits)
    # the documented difference: with class weights our "mean" divides by Σ_i Σ_c w_c t_ic
    # (the number of the index map for a one-hot target); torch divides soft targets by N
    expected = weight.view(1, -1, 1, 1).mul(target).sum()
    _grads(lambda x: sl.cross_entropy(x, target, class_weights=weight,
                                      label_smoothing=smoothing),
           lambda x: tF.cross_entropy(x, target, weight=weight, label_smoothing=smoothing,
                                      reduction="sum") / expected, logits)


def test_cross_entropy_channels_last_matches_torch_on_permuted(logits, labels):
    labels = labels.clamp(max=4)
    last = logits.movedim(1, -1).contiguous()
    _close(sl.cross_entropy(last, labels, class_dim=-1), tF.cross_entropy(logits, labels))


def test_all_ignored_is_zero_where_torch_is_nan(logits):
    """Documented difference: torch's mean over zero pixels is NaN; ours is 0, zero gradient."""
    labels = torch.full((3, 6, 7), 255)
    assert torch.isnan(tF.cross_entropy(logits, labels, ignore_index=255))
    x = logits.clone().requires_grad_()
    loss = sl.cross_entropy(x, labels, ignore_index=255)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(x.grad) == 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_pos_weight_along_class_axis(reduction):
    """pos_weight applies along class_dim, where torch broadcasts it along the last axis."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 3, 4, 5)).double()
    pw = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    w = torch.tensor([1.0, 0.3, 2.0], dtype=torch.float64)
    _grads(lambda z: sl.binary_cross_entropy(z, y, mode="multilabel", pos_weight=pw,
                                             class_weights=w, reduction=reduction),
           lambda z: tF.binary_cross_entropy_with_logits(
               z, y, pos_weight=pw.view(3, 1, 1), weight=w.view(3, 1, 1), reduction=reduction),
           x)


def test_bce_on_probabilities_matches_torch_inside_the_clip():
    p = torch.rand(2, 1, 8, 8, dtype=torch.float64) * 0.98 + 0.01
    y = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    _grads(lambda z: sl.binary_cross_entropy(z, y, from_logits=False),
           lambda z: tF.binary_cross_entropy(z, y), p)


def test_focal_gamma_zero_is_cross_entropy(logits, labels):
    labels = labels.clamp(max=4)
    _grads(lambda x: sl.focal_loss(x, labels, gamma=0.0),
           lambda x: tF.cross_entropy(x, labels), logits)


# ---- MONAI ----------------------------------------------------------------------------------

requires_monai = skip_unless_installed("monai")
monai_losses = importlib.import_module("monai.losses") if installed("monai") else None


def _monai_target(labels):
    return labels.clamp(max=4).unsqueeze(1)


@requires_monai
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("smooth", [1e-5, 1.0])
def test_dice_matches_monai(logits, labels, batch, include_background, smooth):
    monai = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, batch=batch, smooth_nr=smooth,
                                  smooth_dr=smooth, include_background=include_background)
    _grads(lambda x: sl.dice_loss(x, labels.clamp(max=4), smooth=smooth,
                                  aggregate="batch" if batch else "image",
                                  include_background=include_background),
           lambda x: monai(x, _monai_target(labels)), logits)


@requires_monai
def test_jaccard_matches_monai_with_half_the_smoothing(logits, labels):
    """MONAI's jaccard=True is (2TP + s) / (2(TP+FP+FN) + s): our smooth s/2."""
    monai = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, jaccard=True, smooth_nr=1.0,
                                  smooth_dr=1.0)
    _grads(lambda x: sl.jaccard_loss(x, labels.clamp(max=4), smooth=0.5),
           lambda x: monai(x, _monai_target(labels)), logits)


@requires_monai
def test_dice_class_weights_match_monai_sum(logits, labels):
    """MONAI's weighted 'mean' divides by N·C, ours by Σ w: their 'sum' agree."""
    weight = [0.5, 1.0, 2.0, 0.125, 3.0]  # exact in float32, which MONAI casts to
    monai = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, weight=weight, reduction="sum")
    _grads(lambda x: sl.dice_loss(x, labels.clamp(max=4), smooth=1e-5, class_weights=weight,
                                  reduction="sum"),
           lambda x: monai(x, _monai_target(labels)), logits)


@requires_monai
def test_sigmoid_dice_matches_monai():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 3, 6, 6)).double()
    monai = monai_losses.DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    _grads(lambda z: sl.dice_loss(z, y, mode="multilabel"), lambda z: monai(z, y), x)


@requires_monai
@pytest.mark.parametrize("lambdas", [(1.0, 1.0), (0.3, 1.7)])
def test_dice_ce_matches_monai(logits, labels, lambdas):
    monai = monai_losses.DiceCELoss(softmax=True, to_onehot_y=True, lambda_ce=lambdas[0],
                                    lambda_dice=lambdas[1])
    _grads(lambda x: sl.dice_ce_loss(x, labels.clamp(max=4), smooth=1e-5, lambda_ce=lambdas[0],
                                     lambda_dice=lambdas[1]),
           lambda x: monai(x, _monai_target(labels)), logits)


@requires_monai
@pytest.mark.parametrize("batch", [False, True])
def test_tversky_matches_monai(logits, labels, batch):
    monai = monai_losses.TverskyLoss(softmax=True, to_onehot_y=True, alpha=0.3, beta=0.7,
                                     batch=batch, smooth_nr=1.0, smooth_dr=1.0)
    _grads(lambda x: sl.tversky_loss(x, labels.clamp(max=4), alpha=0.3, beta=0.7,
                                     aggregate="batch" if batch else "image"),
           lambda x: monai(x, _monai_target(labels)), logits)


def _close32(fn_a, fn_b, x):
    """MONAI's focal loss computes in float32 (``input.float()``)."""
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    va, vb = fn_a(xa), fn_b(xb)
    torch.testing.assert_close(va, vb.double(), rtol=1e-5, atol=1e-6)
    va.backward()
    vb.backward()
    torch.testing.assert_close(xa.grad, xb.grad.double(), rtol=1e-4, atol=1e-6)


@requires_monai
@pytest.mark.parametrize("alpha", [None, [0.1, 0.2, 0.3, 0.2, 0.2]])
def test_softmax_focal_matches_monai(logits, labels, alpha):
    """MONAI's softmax focal 'mean' averages over N·C·H·W, i.e. ours (over N·H·W) ÷ C."""
    monai = monai_losses.FocalLoss(use_softmax=True, to_onehot_y=True, gamma=2.0, alpha=alpha)
    classes = logits.shape[1]
    _close32(lambda x: sl.focal_loss(x, labels.clamp(max=4), gamma=2.0, alpha=alpha) / classes,
             lambda x: monai(x, _monai_target(labels)), logits)


@requires_monai
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_focal_matches_monai(alpha):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 3, 6, 6)).double()
    monai = monai_losses.FocalLoss(use_softmax=False, gamma=2.0, alpha=alpha)
    _close32(lambda z: sl.focal_loss(z, y, mode="multilabel", gamma=2.0, alpha=alpha),
             lambda z: monai(z, y), x)


# ---- segmentation_models_pytorch (only where it installs beside the CPU torch) ---------------

def test_dice_matches_smp(logits, labels):
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    smp = smp_losses.DiceLoss("multiclass", from_logits=True, smooth=0.0, eps=1e-7)
    # smp aggregates over the batch, zeroes classes absent from the batch target, and still
    # divides by C: our batch Dice summed over the present classes, over C
    labels = labels.clamp(max=3)  # class 4 absent
    ours = sl.dice_loss(logits, labels, smooth=0.0, aggregate="batch", absent="exclude",
                        reduction="sum") / logits.shape[1]
    _close(ours, smp(logits, labels), rtol=1e-6, atol=1e-6)
