"""The Keras front against the float64 NumPy oracle and the torch front on the shared case
table (class axis moved to -1), float32 (docs/semantics.md, tolerances): the functional forms
with the torch reductions, and the Loss classes under Keras's reductions."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops
from keras_helpers import BACKEND, keras_case, keras_kwargs, numpy, tensor, value_and_grad

import seglosses.keras as slk
import seglosses.numpy as oracle
from cases import CASES

RTOL, ATOL = 1e-5, 1e-6
# JAX compiles every operation for every new shape (~30 ms each), so it runs every other case
# of the table (all losses, most options); torch and TensorFlow run all of them
TABLE = CASES[::2] if BACKEND == "jax" else CASES
CLASSES = {
    "cross_entropy": slk.CrossEntropyLoss,
    "binary_cross_entropy": slk.BCELoss,
    "focal_loss": slk.FocalLoss,
    "tversky_loss": slk.TverskyLoss,
    "dice_loss": slk.DiceLoss,
    "jaccard_loss": slk.JaccardLoss,
    "dice_ce_loss": slk.DiceCELoss,
}


def _oracle(case, x, target, kwargs, **override):
    kwargs = dict(kwargs, **override)
    return np.asarray(getattr(oracle, case.loss)(x.astype(np.float32), target, **kwargs),
                      dtype=np.float64)


def _in_keras_layout(expected, x, class_dim):
    """An elementwise sigmoid "none" output has the input's layout: move its class axis too."""
    if expected.ndim == x.ndim and class_dim % x.ndim != x.ndim - 1:
        return np.moveaxis(expected, class_dim, -1)
    return expected


@pytest.mark.parametrize("case", TABLE, ids=lambda c: c.id)
def test_functional_matches_the_oracle(case):
    x, target, kwargs, (ox, ot, okw) = keras_case(case)
    loss = getattr(slk, case.loss)(tensor(target), tensor(x), **keras_kwargs(kwargs))
    expected = _in_keras_layout(_oracle(case, ox, ot, okw), ox, okw.get("class_dim", 1))
    assert tuple(loss.shape) == expected.shape
    np.testing.assert_allclose(numpy(loss), expected, rtol=RTOL, atol=ATOL)


def _class_and_weights(case, kwargs):
    """The Loss class's options and the per-pixel sample_weight standing for mask·weights."""
    options = {k: v for k, v in kwargs.items() if k not in ("reduction", "mask", "pixel_weights")}
    weight = None
    for key in ("mask", "pixel_weights"):
        if key in kwargs:
            factor = np.asarray(kwargs[key], dtype=np.float64)
            weight = factor if weight is None else weight * factor
    return options, weight


@pytest.mark.parametrize("case", TABLE, ids=lambda c: c.id)
def test_loss_class_reductions_give_the_torch_mean_and_sum(case):
    """"sum_over_batch_size" (the Keras default) is the oracle's "mean", "sum" its "sum",
    and the per-sample values (reduction=None) average to the "mean"."""
    x, target, kwargs, (ox, ot, okw) = keras_case(case)
    options, weight = _class_and_weights(case, kwargs)
    expected_mean = _oracle(case, ox, ot, okw, reduction="mean")
    expected_sum = _oracle(case, ox, ot, okw, reduction="sum")
    cls = CLASSES[case.loss]
    sample_weight = None if weight is None else tensor(weight)
    mean, total, per_sample = (
        cls(**options, reduction=reduction)(target, tensor(x), sample_weight=sample_weight)
        for reduction in ("sum_over_batch_size", "sum", None))
    np.testing.assert_allclose(numpy(mean), expected_mean, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(numpy(total), expected_sum, rtol=RTOL, atol=ATOL)
    assert tuple(per_sample.shape) == (x.shape[0],)
    np.testing.assert_allclose(numpy(per_sample).mean(), expected_mean, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", [c for c in TABLE if c.options.get("reduction") != "none"
                                  and c.options.get("aggregate") != "batch"],
                         ids=lambda c: c.id)
def test_per_sample_sum_values_are_the_images_own_sums(case):
    """With reduction="sum" sample n carries the sum of its own terms (statistics per image)."""
    x, target, kwargs, (ox, ot, okw) = keras_case(case)
    options, weight = _class_and_weights(case, kwargs)
    if isinstance(options.get("class_weights"), str):
        pytest.skip("batch-computed class weights depend on the whole batch")
    cls = CLASSES[case.loss]
    sample_weight = None if weight is None else tensor(weight)
    loss = cls(**options, reduction="sum")
    per_sample = numpy(loss.per_sample(target, tensor(x), sample_weight=sample_weight))
    for n in range(x.shape[0]):
        alone = dict(okw)
        for key in ("mask", "pixel_weights"):
            if key in alone:
                alone[key] = alone[key][n:n + 1]
        expected = _oracle(case, ox[n:n + 1], ot[n:n + 1], alone, reduction="sum")
        np.testing.assert_allclose(per_sample[n], expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", TABLE, ids=lambda c: c.id)
def test_gradient_matches_the_torch_front(case):
    torch = pytest.importorskip("torch")
    import seglosses.torch as sl

    x, target, kwargs, (ox, ot, okw) = keras_case(case)
    function = getattr(slk, case.loss)
    keras_options = keras_kwargs(kwargs)

    def loss(t):
        return ops.sum(function(tensor(target), t, **keras_options))

    value, grad = value_and_grad(loss, x)
    reference = torch.tensor(ox.astype(np.float32), dtype=torch.float64, requires_grad=True)
    torch_kwargs = {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
                    for k, v in okw.items()}
    torch_target = torch.from_numpy(np.array(ot))
    if torch_target.is_floating_point():
        torch_target = torch_target.double()
    expected = getattr(sl, case.loss)(reference, torch_target, **torch_kwargs).sum()
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=RTOL, atol=ATOL)
    expected_grad = reference.grad.numpy()
    class_dim = okw.get("class_dim", 1)
    if class_dim % ox.ndim != ox.ndim - 1:
        expected_grad = np.moveaxis(expected_grad, class_dim, -1)
    scale = max(np.abs(expected_grad).max(initial=0.0), 1e-12)
    assert np.abs(grad - expected_grad).max(initial=0.0) <= 1e-5 * scale
