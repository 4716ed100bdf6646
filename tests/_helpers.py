"""Small helpers shared by the torch tests: conversions and the oracle's numerical gradient."""

from __future__ import annotations

import numpy as np
import torch


def to_torch(value, dtype=torch.float64):
    """NumPy → torch for a test: floats to ``dtype``, ints to int64, bools kept."""
    if isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value.copy())
        return tensor.to(dtype) if tensor.is_floating_point() else tensor
    return value


def torch_kwargs(kwargs, dtype=torch.float64):
    return {k: to_torch(v, dtype) for k, v in kwargs.items()}


def numerical_gradient(function, x: np.ndarray) -> np.ndarray:
    """Fourth-order central differences of a scalar float64 function (the oracle's gradient).

    The step is 1e-3·min(|x|, |1 - x|), within [1e-6, 1e-3], so that probabilities near 0 or
    1, whose logs have large higher derivatives, are differenced accurately.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        step = 1e-3 * min(max(min(abs(original), abs(1 - original)), 1e-3), 1.0)
        values = []
        for offset in (2, 1, -1, -2):
            flat[i] = original + offset * step
            values.append(float(function(x)))
        flat[i] = original
        out[i] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * step)
    return grad


def assert_grad_close(actual, expected, relative):
    """max |actual - expected| <= relative * max |expected| (docs/semantics.md, tolerances)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(expected).max(initial=0.0), 1e-12)
    error = np.abs(actual - expected).max(initial=0.0)
    assert error <= relative * scale, f"max abs error {error:.3g} > {relative:g} x {scale:.3g}"


def assert_compiled_like_eager(step, x, target):
    """``torch.compile(step, fullgraph=True)`` gives the eager value and gradient of ``x``."""
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    loss = compiled(x, target)
    loss.backward()
    grad, x.grad = x.grad.clone(), None
    eager = step(x, target)
    eager.backward()
    torch.testing.assert_close(loss, eager)
    torch.testing.assert_close(grad, x.grad)
