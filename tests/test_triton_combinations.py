"""The kernels against the torch path over random combinations of options
(``combinations.draw``): value and gradient (with a random upstream gradient) must match in
float64, or both paths must raise the same error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglosses.torch as sl
from _helpers import assert_grad_close
from combinations import draw
from seglosses import triton as kernels

pytestmark = pytest.mark.skipif(not (kernels.available() and kernels.interpreting()),
                                reason="needs triton and TRITON_INTERPRET=1 (set by conftest)")


def _run(name, mode, x, target, options, impl):
    """Value and gradient, or the error's type and message."""
    x = x.detach().clone().requires_grad_()
    try:
        value = getattr(sl, name)(x, target, mode=mode, impl=impl, **options)
    except (TypeError, ValueError) as error:
        return f"{type(error).__name__}: {error}", None
    upstream = torch.randn(value.shape, dtype=value.dtype,
                           generator=torch.Generator().manual_seed(1))
    (value * upstream).sum().backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("seed", range(300))
def test_random_combination_matches_the_torch_path(seed):
    name, mode, x, target, options = draw(seed)
    value, grad = _run(name, mode, x, target, options, "triton")
    reference, ref_grad = _run(name, mode, x, target, options, "torch")
    if isinstance(reference, str) or isinstance(value, str):
        assert value == reference, (name, mode, options)
        return
    assert value.shape == reference.shape, (name, mode, options)
    np.testing.assert_allclose(value.numpy(), reference.numpy(), rtol=1e-9, atol=1e-11,
                               err_msg=f"{name} {mode} {options}")
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-9)
