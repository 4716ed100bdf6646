"""The Keras front against the float64 NumPy oracle over random combinations of options
(``combinations.draw``, the class axis moved last): float32 values within the tolerances of
docs/semantics.md, or the same error type on both."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import BACKEND, keras_layout, numpy, tensor

import seglosses.keras as slk
import seglosses.numpy as oracle

torch = pytest.importorskip("torch")  # the combinations are drawn as torch tensors
from combinations import draw  # noqa: E402

# JAX compiles every operation for every new shape (~30 ms each): a third of the seeds there
SEEDS = range(0, 200, 3) if BACKEND == "jax" else range(200)


def _numpy_options(options):
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in options.items()}


def _outcome(call):
    try:
        return call()
    except (TypeError, ValueError) as error:
        return type(error).__name__


@pytest.mark.parametrize("seed", SEEDS)
def test_random_combination_matches_the_oracle(seed):
    name, mode, x, target, options = draw(seed)
    x, target, options = x.detach().numpy(), target.numpy(), _numpy_options(options)
    x = x.astype(np.float32).astype(np.float64)  # the values Keras sees
    expected = _outcome(lambda: np.asarray(
        getattr(oracle, name)(x, target, mode=mode, **options), dtype=np.float64))
    kx, kt, koptions = keras_layout(x, target, options)
    got = _outcome(lambda: numpy(getattr(slk, name)(
        tensor(np.ascontiguousarray(kt)), tensor(np.ascontiguousarray(kx)), mode=mode,
        **{k: tensor(v) for k, v in koptions.items()})))
    if isinstance(expected, str) or isinstance(got, str):
        assert got == expected, (name, mode, options)
        return
    class_dim = options.get("class_dim", 1)
    if expected.ndim == x.ndim and class_dim % x.ndim != x.ndim - 1:
        expected = np.moveaxis(expected, class_dim, -1)  # an elementwise "none" output
    assert got.shape == expected.shape, (name, mode, options)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5,
                               err_msg=f"{name} {mode} {options}")
