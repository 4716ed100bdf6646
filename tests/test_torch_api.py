"""The public API: Module == functional, defaults, buffers, pickling, torch.compile, lazy imports,
CompoundLoss, and the README example."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import pytest
import torch

import seglosses
import seglosses.torch as sl

PAIRS = [
    (sl.CrossEntropyLoss, sl.cross_entropy, {"class_weights": [1.0, 2.0, 0.5], "ignore_index": 255,
                                             "label_smoothing": 0.1}),
    (sl.FocalLoss, sl.focal_loss, {"gamma": 1.5, "alpha": [0.2, 0.3, 0.5], "ignore_index": 255}),
    (sl.TverskyLoss, sl.tversky_loss, {"alpha": 0.3, "beta": 0.7, "gamma": 1.3,
                                       "class_weights": "median_frequency", "ignore_index": 255}),
    (sl.DiceLoss, sl.dice_loss, {"include_background": False, "aggregate": "batch",
                                 "ignore_index": 255}),
    (sl.JaccardLoss, sl.jaccard_loss, {"absent": "exclude", "ignore_index": 255}),
    (sl.DiceCELoss, sl.dice_ce_loss, {"lambda_ce": 0.5, "class_weights": "inverse_frequency",
                                      "ignore_index": 255}),
]


@pytest.fixture
def batch():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 8, 8))
    labels[0, 0] = 255
    return torch.randn(2, 3, 8, 8), labels


@pytest.mark.parametrize("module,function,options", PAIRS, ids=lambda p: getattr(p, "__name__", ""))
def test_module_equals_functional(module, function, options, batch):
    x, y = batch
    pixel_weights = torch.rand(2, 8, 8)
    torch.testing.assert_close(module(**options)(x, y, pixel_weights=pixel_weights),
                               function(x, y, pixel_weights=pixel_weights, **options))


def test_bce_module_equals_functional():
    x, y = torch.randn(2, 3, 5, 5), torch.randint(0, 2, (2, 3, 5, 5))
    options = {"mode": "multilabel", "pos_weight": [1.0, 2.0, 3.0], "class_weights": "balanced"}
    torch.testing.assert_close(sl.BCELoss(**options)(x, y),
                               sl.binary_cross_entropy(x, y, **options))


@pytest.mark.parametrize("module,function", [
    (sl.CrossEntropyLoss, sl.cross_entropy), (sl.BCELoss, sl.binary_cross_entropy),
    (sl.FocalLoss, sl.focal_loss), (sl.TverskyLoss, sl.tversky_loss),
    (sl.DiceLoss, sl.dice_loss), (sl.JaccardLoss, sl.jaccard_loss),
    (sl.DiceCELoss, sl.dice_ce_loss)])
def test_module_defaults_equal_functional_defaults(module, function):
    module_defaults = {k: p.default for k, p in inspect.signature(module).parameters.items()}
    function_defaults = {k: p.default for k, p in inspect.signature(function).parameters.items()
                         if p.default is not inspect.Parameter.empty}
    per_call = {"mask", "pixel_weights"}
    assert set(module_defaults) == set(function_defaults) - per_call
    for name, default in module_defaults.items():
        assert function_defaults[name] == default, name


def test_class_weights_are_buffers_that_follow_the_module():
    loss = sl.DiceCELoss(class_weights=[1.0, 2.0, 3.0])
    assert "class_weights" in dict(loss.named_buffers())
    assert "class_weights" in loss.state_dict()
    loss = loss.double()
    assert loss.class_weights.dtype == torch.float64


@pytest.mark.parametrize("module,function,options", PAIRS, ids=lambda p: getattr(p, "__name__", ""))
def test_modules_pickle(module, function, options, batch):
    x, y = batch
    original = module(**options)
    restored = pickle.loads(pickle.dumps(original))
    torch.testing.assert_close(restored(x, y), original(x, y))
    assert repr(restored) == repr(original)


def test_compound_loss_remembers_its_terms(batch):
    x, y = batch
    compound = sl.CompoundLoss([(0.5, sl.CrossEntropyLoss(ignore_index=255)),
                                ("dice", 2.0, sl.DiceLoss(ignore_index=255))])
    total = compound(x, y)
    ce = sl.cross_entropy(x, y, ignore_index=255)
    dice = sl.dice_loss(x, y, ignore_index=255)
    torch.testing.assert_close(total, 0.5 * ce + 2.0 * dice)
    assert set(compound.last_values) == {"crossentropy", "dice"}
    torch.testing.assert_close(compound.last_values["dice"], dice)
    assert not compound.last_values["dice"].requires_grad
    assert "0.5*crossentropy + 2*dice" in repr(compound)
    restored = pickle.loads(pickle.dumps(compound))
    torch.testing.assert_close(restored(x, y), total)


def test_compound_loss_accepts_callables_and_mappings(batch):
    x, y = batch
    compound = sl.CompoundLoss({"focal": (1.0, lambda a, b: sl.focal_loss(a, b, ignore_index=255)),
                                "jaccard": (0.3, sl.JaccardLoss(ignore_index=255))})
    expected = sl.focal_loss(x, y, ignore_index=255) + 0.3 * sl.jaccard_loss(x, y,
                                                                             ignore_index=255)
    torch.testing.assert_close(compound(x, y), expected)
    with pytest.raises(ValueError, match="unique names"):
        sl.CompoundLoss([("a", 1.0, sl.DiceLoss()), ("a", 1.0, sl.DiceLoss())])


def test_dice_ce_equals_the_sum_of_its_terms(batch):
    x, y = batch
    options = {"ignore_index": 255, "class_weights": [0.5, 1.0, 2.0]}
    torch.testing.assert_close(
        sl.dice_ce_loss(x, y, lambda_ce=0.7, lambda_dice=1.3, label_smoothing=0.1, **options),
        0.7 * sl.cross_entropy(x, y, label_smoothing=0.1, **options)
        + 1.3 * sl.dice_loss(x, y, **options))


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "dice_ce_loss", "tversky_loss"])
def test_torch_compile_fullgraph(name, batch):
    x, y = batch
    y = y.clamp(max=2)
    function = getattr(sl, name)
    eager_x = x.clone().requires_grad_()
    eager = function(eager_x, y, validate=False)
    eager.backward()
    compiled = torch.compile(lambda a, b: function(a, b, validate=False), fullgraph=True,
                             backend="aot_eager")
    compiled_x = x.clone().requires_grad_()
    value = compiled(compiled_x, y)
    value.backward()
    torch.testing.assert_close(value, eager)
    torch.testing.assert_close(compiled_x.grad, eager_x.grad)


def test_torch_compile_with_validation_on_and_batch_weights(batch):
    """validate=True's value checks are skipped while tracing, so fullgraph still holds."""
    x, y = batch
    compiled = torch.compile(lambda a, b: sl.dice_ce_loss(a, b, ignore_index=255,
                                                          class_weights="median_frequency"),
                             fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, y), sl.dice_ce_loss(
        x, y, ignore_index=255, class_weights="median_frequency"))


@pytest.mark.parametrize("strategy", ["inverse_frequency", "inverse_sqrt_frequency",
                                      "median_frequency", "effective_number", "log_inverse"])
def test_every_class_weight_strategy_compiles_with_inductor(strategy, batch):
    """The default backend (inductor), fullgraph: Dice+CE (both terms) with each per-batch
    strategy gives the eager value and gradient (median_frequency's data-dependent index failed
    in inductor's decomposition of Tensor.take)."""
    x, y = batch
    eager_x, compiled_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    eager = sl.dice_ce_loss(eager_x, y, ignore_index=255, class_weights=strategy)
    eager.backward()
    compiled = torch.compile(lambda a, b: sl.dice_ce_loss(a, b, ignore_index=255,
                                                          class_weights=strategy),
                             fullgraph=True)
    value = compiled(compiled_x, y)
    value.backward()
    torch.testing.assert_close(value, eager)
    torch.testing.assert_close(compiled_x.grad, eager_x.grad)


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "dice_ce_loss"])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_torch_compile_stops_on_a_bad_label_on_the_cpu(name, ignore_index, batch):
    """Under torch.compile (inductor, fullgraph) the label check runs in the graph on the CPU:
    label 9 of a 3-class input raises with the eager message's text, and with
    validate=False its pixel is NaN, never silently counted as another class."""
    x, y = batch
    y = y.clone()
    y[0, 0, 0] = 9
    function = getattr(sl, name)
    compiled = torch.compile(lambda a, b: function(a, b, ignore_index=ignore_index),
                             fullgraph=True)
    with pytest.raises(RuntimeError, match=rf"{name}: target must hold class indices in \[0, "
                                           r"3\) .* got values outside it"):
        compiled(x, y)
    unchecked = torch.compile(lambda a, b: function(a, b, ignore_index=ignore_index,
                                                    validate=False), fullgraph=True)
    assert torch.isnan(unchecked(x, y))


def test_import_seglosses_imports_no_framework():
    code = ("import sys, seglosses, seglosses.numpy, seglosses.information, seglosses.stats, "
            "seglosses.weights; "
            "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_reexport():
    assert seglosses.DiceCELoss is sl.DiceCELoss
    assert seglosses.class_weights_from_counts([1, 3], "inverse_frequency").tolist() == [4.0,
                                                                                        4 / 3]
    assert seglosses.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        seglosses.nope  # noqa: B018


def test_the_readme_example():
    logits = torch.randn(4, 7, 128, 128, requires_grad=True)
    labels = torch.randint(0, 7, (4, 128, 128))
    loss = sl.dice_ce_loss(logits, labels, ignore_index=255, class_weights="median_frequency")
    loss.backward()
    crit = sl.DiceCELoss(include_background=False, aggregate="batch")
    assert torch.isfinite(loss) and torch.isfinite(crit(logits, labels))
    assert logits.grad.shape == logits.shape


def test_batch_strategy_weights_equal_class_weights_from_counts():
    labels = torch.tensor([[0, 0, 0, 0, 1, 1, 2, 255]])
    x = torch.randn(1, 4, 8, dtype=torch.float64)
    counts = [4, 2, 1, 0]
    for method in ["inverse_frequency", "inverse_sqrt_frequency", "median_frequency",
                   "effective_number", "log_inverse"]:
        weights = torch.from_numpy(sl.class_weights_from_counts(counts, method))
        torch.testing.assert_close(
            sl.cross_entropy(x, labels, ignore_index=255, class_weights=method),
            sl.cross_entropy(x, labels, ignore_index=255, class_weights=weights))


def test_unet_weight_map_tensor_wrapper():
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[0, 4:14, 4:14] = 1
    labels[0, 4:14, 16:26] = 1  # two objects with a 2-pixel gap
    weights = sl.unet_weight_map(labels, w0=10, sigma=5)
    assert weights.shape == labels.shape and weights.dtype == torch.float32
    assert weights[0, 8, 14] > weights[0, 30, 30] + 5  # the gap weighs most
    assert torch.isfinite(sl.cross_entropy(torch.randn(1, 2, 32, 32), labels,
                                           pixel_weights=weights))
