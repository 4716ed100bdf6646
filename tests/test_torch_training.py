"""A tiny model learns a small mask with every loss (the loss falls, the argmax becomes right)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import seglosses.torch as sl


def _data(classes):
    torch.manual_seed(0)
    images = torch.randn(8, 3, 16, 16)
    # the label of a pixel is decided by which input channel is largest: learnable per pixel
    labels = images[:, :classes].argmax(1) if classes > 1 else (images[:, 0] > 0).long()
    return images, labels


LOSSES = {
    "cross_entropy": (3, lambda: sl.CrossEntropyLoss()),
    "weighted_ce": (3, lambda: sl.CrossEntropyLoss(class_weights="median_frequency")),
    "focal": (3, lambda: sl.FocalLoss(gamma=2.0)),
    "dice": (3, lambda: sl.DiceLoss()),
    "jaccard": (3, lambda: sl.JaccardLoss(aggregate="batch")),
    "tversky": (3, lambda: sl.TverskyLoss(alpha=0.3, beta=0.7, gamma=1.3)),
    "dice_ce": (3, lambda: sl.DiceCELoss(include_background=False)),
    "compound": (3, lambda: sl.CompoundLoss([(0.5, sl.CrossEntropyLoss()),
                                             (1.0, sl.DiceLoss())])),
    "bce": (1, lambda: sl.BCELoss(pos_weight=[2.0])),
    "bce_dice": (1, lambda: sl.DiceCELoss(mode="binary")),
    "sigmoid_focal": (1, lambda: sl.FocalLoss(mode="binary", alpha=0.25)),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_tiny_model_learns_with_every_loss(name):
    classes, make = LOSSES[name]
    images, labels = _data(classes)
    model = nn.Sequential(nn.Conv2d(3, 16, 1), nn.ReLU(), nn.Conv2d(16, classes, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = make()
    target = labels.unsqueeze(1) if classes == 1 else labels
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = loss_fn(model(images), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    with torch.no_grad():
        out = model(images)
        predicted = out.argmax(1) if classes > 1 else (out[:, 0] > 0).long()
    assert (predicted == labels).float().mean() > 0.9
