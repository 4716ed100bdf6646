"""Loss expressions: the terms they build, their values against seglosses.torch, bad input."""

from __future__ import annotations

import inspect

import pytest
import torch

import seglosses.torch as sl
from seglosses.cli import expr
from seglosses.cli.expr import IndexTargetLoss, describe_loss, parse_loss, parse_terms
from seglosses.stats import ClassStats

C = 4
IGNORE = 255


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, C, 6, 5, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, C, (2, 6, 5), generator=generator)
    labels[0, 0, :3] = IGNORE
    return logits, labels


# (expression, [(term name, weight, module class, {option: value})])
EXAMPLES = [
    ("ce", [("ce", 1.0, sl.CrossEntropyLoss, {})]),
    ("bce", [("bce", 1.0, sl.BCELoss, {"mode": "multilabel"})]),
    ("dice", [("dice", 1.0, sl.DiceLoss, {})]),
    ("jaccard", [("jaccard", 1.0, sl.JaccardLoss, {})]),
    ("iou", [("iou", 1.0, sl.JaccardLoss, {})]),
    ("tversky(alpha=0.3,beta=0.7)", [("tversky", 1.0, sl.TverskyLoss,
                                      {"alpha": 0.3, "beta": 0.7, "gamma": 1.0})]),
    ("focal(gamma=2)", [("focal", 1.0, sl.FocalLoss, {"gamma": 2})]),
    ("focal_tversky(gamma=0.75)", [("focal_tversky", 1.0, sl.TverskyLoss,
                                    {"alpha": 0.3, "beta": 0.7, "gamma": 0.75})]),
    ("ce(class_weights=median_frequency)", [("ce", 1.0, sl.CrossEntropyLoss,
                                             {"class_weights": "median_frequency"})]),
    ("dice(include_background=false, aggregate=batch)",
     [("dice", 1.0, sl.DiceLoss, {"include_background": False, "aggregate": "batch"})]),
    ("0.5*ce+dice", [("ce", 0.5, sl.CrossEntropyLoss, {}), ("dice", 1.0, sl.DiceLoss, {})]),
    ("bce+dice", [("bce", 1.0, sl.BCELoss, {"mode": "multilabel"}),
                  ("dice", 1.0, sl.DiceLoss, {"mode": "multilabel"})]),
    ("dice_ce(lambda_dice=2)", [("dice_ce", 1.0, sl.DiceCELoss, {"lambda_dice": 2})]),
    ("2*(ce + dice/4) + ce(label_smoothing=0.1)*0.5",
     [("ce", 2.0, sl.CrossEntropyLoss, {}), ("dice", 0.5, sl.DiceLoss, {}),
      ("ce_2", 0.5, sl.CrossEntropyLoss, {"label_smoothing": 0.1})]),
    ("ce(class_weights=[1, 2, 3, 0.5]) + focal(alpha=[0.5,1,1,1], gamma=0)",
     [("ce", 1.0, sl.CrossEntropyLoss, {}), ("focal", 1.0, sl.FocalLoss, {"gamma": 0})]),
]


@pytest.mark.parametrize("expression, expected", EXAMPLES, ids=[e for e, _ in EXAMPLES])
def test_examples_build_the_right_terms(expression, expected):
    loss = parse_loss(expression, num_classes=C, ignore_index=IGNORE)
    assert isinstance(loss, sl.CompoundLoss)
    assert list(loss.weights.items()) == [(name, weight) for name, weight, _, _ in expected]
    for name, _, cls, options in expected:
        term = loss.losses[name]
        assert isinstance(term, IndexTargetLoss) and type(term.loss) is cls
        built = {"mode": "multiclass", "ignore_index": IGNORE, **options}
        for key, value in built.items():
            assert term.loss.options[key] == value, (name, key)
        assert term.mode == term.loss.options["mode"]


def _direct(expression, logits, labels):
    """The same losses by hand, with the seglosses.torch functionals."""
    one_hot = torch.nn.functional.one_hot(labels.clamp(max=C - 1), C).movedim(-1, 1)
    valid = (labels != IGNORE).to(logits.dtype)  # the ignored pixels, as a mask
    ig = dict(ignore_index=IGNORE)
    x, y = logits, labels
    ce, dice = sl.cross_entropy, sl.dice_loss
    return {
        "ce": lambda: ce(x, y, **ig),
        "bce": lambda: sl.binary_cross_entropy(x, one_hot, mode="multilabel", mask=valid),
        "dice": lambda: dice(x, y, **ig),
        "jaccard": lambda: sl.jaccard_loss(x, y, **ig),
        "iou": lambda: sl.jaccard_loss(x, y, **ig),
        "tversky(alpha=0.3,beta=0.7)": lambda: sl.tversky_loss(x, y, alpha=0.3, beta=0.7, **ig),
        "focal(gamma=2)": lambda: sl.focal_loss(x, y, gamma=2, **ig),
        "focal_tversky(gamma=0.75)":
            lambda: sl.tversky_loss(x, y, alpha=0.3, beta=0.7, gamma=0.75, **ig),
        "ce(class_weights=median_frequency)":
            lambda: ce(x, y, class_weights="median_frequency", **ig),
        "dice(include_background=false, aggregate=batch)":
            lambda: dice(x, y, include_background=False, aggregate="batch", **ig),
        "0.5*ce+dice": lambda: 0.5 * ce(x, y, **ig) + dice(x, y, **ig),
        "bce+dice": lambda: sl.binary_cross_entropy(x, one_hot, mode="multilabel", mask=valid)
            + dice(x, one_hot, mode="multilabel", mask=valid),
        "dice_ce(lambda_dice=2)": lambda: sl.dice_ce_loss(x, y, lambda_dice=2, **ig),
        "2*(ce + dice/4) + ce(label_smoothing=0.1)*0.5": lambda: 2 * ce(x, y, **ig)
            + 0.5 * dice(x, y, **ig) + 0.5 * ce(x, y, label_smoothing=0.1, **ig),
        "ce(class_weights=[1, 2, 3, 0.5]) + focal(alpha=[0.5,1,1,1], gamma=0)":
            lambda: ce(x, y, class_weights=[1, 2, 3, 0.5], **ig)
            + sl.focal_loss(x, y, alpha=[0.5, 1, 1, 1], gamma=0, **ig),
    }[expression]()


@pytest.mark.parametrize("expression", [e for e, _ in EXAMPLES])
def test_values_equal_calling_seglosses_torch(expression, batch):
    logits, labels = batch
    logits.requires_grad_(True)
    loss = parse_loss(expression, num_classes=C, ignore_index=IGNORE)
    value = loss(logits, labels)
    expected = _direct(expression, logits, labels)
    torch.testing.assert_close(value, expected)
    (grad,) = torch.autograd.grad(value, logits)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad, expected_grad)
    assert set(loss.last_values) == set(loss.weights)


def test_binary_model_takes_the_index_mask(batch):
    logits = batch[0][:, :1]
    labels = (batch[1] == 1).long()
    labels[0, 0, 0] = IGNORE
    loss = parse_loss("bce + dice", num_classes=1, ignore_index=IGNORE)
    assert loss.mode == "binary" and {t.mode for t in loss.losses.values()} == {"binary"}
    target = labels.unsqueeze(1)
    expected = sl.binary_cross_entropy(logits, target, ignore_index=IGNORE) + \
        sl.dice_loss(logits, target, mode="binary", ignore_index=IGNORE)
    torch.testing.assert_close(loss(logits, labels), expected)
    ce = parse_loss("ce", num_classes=1)
    torch.testing.assert_close(ce(logits, labels.clamp(max=1)),
                               sl.cross_entropy(logits, labels.clamp(max=1).unsqueeze(1),
                                                mode="binary"))


def test_modes_and_dense_targets(batch):
    logits, labels = batch
    assert parse_loss("ce + dice", num_classes=C).mode == "multiclass"
    assert parse_loss("bce + dice", num_classes=C).mode == "multilabel"
    mixed = parse_loss("bce + dice(mode=multiclass)", num_classes=C)
    assert [t.mode for t in mixed.losses.values()] == ["multilabel", "multiclass"]
    forced = parse_loss("dice", num_classes=C, mode="multilabel", ignore_index=IGNORE)
    one_hot = torch.nn.functional.one_hot(labels.clamp(max=C - 1), C).movedim(-1, 1)
    one_hot = one_hot.masked_fill((labels == IGNORE).unsqueeze(1), IGNORE)
    torch.testing.assert_close(forced(logits, labels), forced(logits, one_hot))
    with pytest.raises(ValueError, match=r"mode must be one of 'binary'.*num_classes=1"):
        parse_loss("ce", num_classes=1, mode="multiclass")
    with pytest.raises(ValueError, match=r"mode must be one of 'multiclass', 'multilabel'"):
        parse_loss("ce", num_classes=3, mode="binary")
    with pytest.raises(ValueError, match=r"target must hold labels in \[0, 4\).*\[7\]"):
        parse_loss("bce", num_classes=C)(logits, torch.full_like(labels, 7))


def test_ignore_index_reaches_every_term():
    loss = parse_loss("ce + dice + focal + bce(mode=multilabel)", num_classes=3,
                      ignore_index=[255, -1])
    assert all(term.loss.options["ignore_index"] == [255, -1] for term in loss.losses.values())
    assert all(term.ignore_index == (-1, 255) for term in loss.losses.values())
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    labels = torch.full((1, 2, 2), 255)
    labels[0, 0, 0] = 1
    loss(logits, labels).backward()
    assert (logits.grad[0, :, 1:, :] == 0).all() and (logits.grad[0, :, 0, 1] == 0).all()


def test_class_stats_give_dataset_weights(batch):
    logits, labels = batch
    stats = ClassStats((900, 90, 9, 1), (1, 1, 1, 1), 0, 1)
    loss = parse_loss("ce(class_weights=median_frequency) + dice", num_classes=C,
                      ignore_index=IGNORE, class_stats=stats)
    weights = stats.weights("median_frequency")
    torch.testing.assert_close(loss.losses["ce"].loss.class_weights,
                               torch.tensor(weights, dtype=torch.float32))
    torch.testing.assert_close(loss.losses["ce"](logits, labels), sl.cross_entropy(
        logits, labels, class_weights=weights.tolist(), ignore_index=IGNORE))
    with pytest.raises(ValueError, match="class_stats must describe 3 classes"):
        parse_loss("ce", num_classes=3, class_stats=stats)


@pytest.mark.parametrize("expression, message", [
    ("", "non-empty"),
    ("ce +", "Syntax error"),
    ("cee", r"use the losses ce, cross_entropy, bce, .*; got unknown loss 'cee'"),
    ("focal(gama=2)", r"options of 'focal' must be among mode, gamma, alpha.*'gama'"),
    ("focal(2)", "give options by keyword"),
    ("focal(gamma=-1)", r"term 'focal\(gamma=-1\)'.*gamma"),
    ("ce(ignore_index=3)", "--ignore-index"),
    ("dice(reduction=sum)", r"'reduction'\. The command sets reduction for every term\.$"),
    ("dice(class_weights=balanced)", "class_weights"),
    ("ce - dice", "add losses, not subtract"),
    ("-1*ce", "weight >= 0"),
    ("ce*dice", "multiply or divide a loss by a number"),
    ("ce/0", "divide by zero"),
    ("0.5", "not only a number"),
    ("dice(smooth=x.y)", "option values"),
    ("ce(**{'a': 1})", r"without '\*\*'"),
    ("dice(smooth=1, smooth=2)", "once"),
    ("[ce, dice]", "use only loss names"),
    ("lambda: 0", "use only loss names"),
    ("__import__('os')", "unknown loss '__import__'"),
    ("__import__('os').system('echo hacked')", "name a loss"),
    ("ce.__class__", "use only loss names"),
    ("(ce := 1)", "use only loss names"),
])
def test_bad_expressions_raise_helpful_value_errors(expression, message):
    with pytest.raises(ValueError, match=message):
        parse_loss(expression, num_classes=C)


def test_never_evaluates_the_text(monkeypatch):
    def trap(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr("builtins.eval", trap)
    monkeypatch.setattr("builtins.exec", trap)
    parse_loss("0.5*ce + dice(smooth=0)", num_classes=C)
    source = inspect.getsource(expr)
    assert "eval(" not in source.replace('mode="eval"', "") and "exec(" not in source
    with pytest.raises(TypeError, match="string"):
        parse_terms(["ce"])


def test_describe_loss():
    assert describe_loss("0.5*ce + dice(include_background=false, aggregate=batch)") == \
        "0.5 × cross-entropy + Dice (include_background=false, aggregate=batch)"
    assert describe_loss("tversky") == "Tversky (alpha=0.3, beta=0.7)"
    assert describe_loss("ce(class_weights=[1, 2.5])") == "cross-entropy (class_weights=[1, 2.5])"
    assert describe_loss("bce+dice") == "binary cross-entropy + Dice"
    with pytest.raises(ValueError, match="describe_loss"):
        describe_loss("nope")


def test_a_python_keyword_as_an_option_value():
    """``aggregate=global`` must parse although ``global`` is a Python keyword."""
    terms = parse_terms("ce(aggregate=global) + 0.5*dice(aggregate=global)")
    assert [(t.name, t.weight, t.options) for t in terms] == [
        ("ce", 1.0, {"aggregate": "global"}), ("dice", 0.5, {"aggregate": "global"})]
    loss = parse_loss("dice(aggregate=global)", num_classes=3)
    logits, labels = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    torch.testing.assert_close(loss(logits, labels),
                               sl.dice_loss(logits, labels, aggregate="batch"))
