"""The torch path against the float64 NumPy oracle on the shared case table (within the
tolerances of docs/semantics.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglosses.numpy as oracle
import seglosses.torch as sl
from _helpers import assert_grad_close, numerical_gradient, to_torch, torch_kwargs
from cases import CASES, make_case


def _run_torch(case, dtype, seed=0, upstream=None):
    x, target, kwargs = make_case(case, seed)
    input = to_torch(x, dtype).requires_grad_()
    loss = getattr(sl, case.loss)(input, to_torch(target, dtype), **torch_kwargs(kwargs, dtype))
    weights = upstream if upstream is not None else torch.ones_like(loss)
    (loss * weights.to(loss.dtype)).sum().backward()
    return loss.detach(), input.grad


def _oracle(case, x, target, kwargs):
    return np.asarray(getattr(oracle, case.loss)(x, target, **kwargs), dtype=np.float64)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float64_value_and_gradient(case):
    x, target, kwargs = make_case(case)
    loss, grad = _run_torch(case, torch.float64)
    expected = _oracle(case, x, target, kwargs)
    assert loss.shape == expected.shape
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-10, atol=1e-12)
    # the oracle's gradient, by finite differences of its (summed) value
    fd = numerical_gradient(lambda z: _oracle(case, z, target, kwargs).sum(), x.copy())
    assert_grad_close(grad.numpy(), fd, 1e-8)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_against_reference(case):
    x, target, kwargs = make_case(case)
    loss32, grad32 = _run_torch(case, torch.float32)
    # the oracle sees the same rounded input
    expected = _oracle(case, x.astype(np.float32), target, kwargs)
    np.testing.assert_allclose(loss32.double().numpy(), expected, rtol=1e-5, atol=1e-6)
    _, grad64 = _run_torch(case, torch.float64)
    assert_grad_close(grad32.numpy(), grad64.numpy(), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", CASES[::3], ids=lambda c: c.id)
def test_half_precision_against_reference(case, dtype):
    x, target, kwargs = make_case(case)
    rounded = torch.from_numpy(x).to(dtype)
    loss, grad = _run_torch(case, dtype)
    if loss.ndim == 0:
        assert loss.dtype == torch.float32  # reduced in float32 (docs/semantics.md, precision)
    same_input = rounded.double().numpy()
    if case.probabilities:
        same_input = rounded.float().numpy()  # clip in a float dtype numpy knows
    expected = _oracle(case, same_input, target, kwargs)
    np.testing.assert_allclose(loss.double().numpy(), expected, rtol=1e-2, atol=1e-3)
    reference = torch.from_numpy(same_input).double()
    _, grad64 = _run_torch_on(case, reference, target, kwargs)
    assert_grad_close(grad.double().numpy(), grad64.numpy(), 1e-2)


def _run_torch_on(case, input, target, kwargs):
    input = input.clone().requires_grad_()
    loss = getattr(sl, case.loss)(input, to_torch(target), **torch_kwargs(kwargs))
    loss.sum().backward()
    return loss.detach(), input.grad


@pytest.mark.parametrize("case", [c for c in CASES if c.options.get("reduction") == "none"],
                         ids=lambda c: c.id)
def test_random_upstream_gradient(case):
    """reduction='none' with a random upstream gradient equals the weighted oracle."""
    x, target, kwargs = make_case(case)
    shape = _oracle(case, x, target, kwargs).shape
    upstream = np.random.default_rng(7).normal(size=shape)
    _, grad = _run_torch(case, torch.float64, upstream=torch.from_numpy(upstream))
    fd = numerical_gradient(lambda z: (_oracle(case, z, target, kwargs) * upstream).sum(),
                            x.copy())
    assert_grad_close(grad.numpy(), fd, 1e-8)
