"""Helpers of the Keras tests: the case table in Keras's layout, tensors, and gradients on
whichever backend Keras runs."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from cases import make_case

BACKEND = keras.backend.backend()


def keras_case(case, seed=0):
    """``make_case`` with the class axis moved to -1 (Keras's layout).

    Returns ``(x, target, kwargs)`` for the Keras front (channels-last, ``class_dim=-1``) and
    ``(x, target, kwargs)`` of the case as generated, for the oracle and the torch front.
    """
    x, target, kwargs = make_case(case, seed)
    return (*keras_layout(x, target, kwargs), (x, target, dict(kwargs)))


def keras_layout(x: np.ndarray, target: np.ndarray, kwargs: dict):
    """``(x, target, kwargs)`` with the class axis (``kwargs["class_dim"]``, 1 when absent)
    moved to -1; a target of the logits' shape moves with them."""
    kwargs = dict(kwargs)
    class_dim = kwargs.pop("class_dim", 1)
    if class_dim % x.ndim != x.ndim - 1:
        if target.ndim == x.ndim:
            target = np.moveaxis(target, class_dim, -1)
        x = np.moveaxis(x, class_dim, -1)
    kwargs["class_dim"] = -1
    return x, target, kwargs


def tensor(value, dtype="float32"):
    """NumPy → a backend tensor: floats to ``dtype``, ints and bools kept."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return ops.convert_to_tensor(value.astype(dtype))
        return ops.convert_to_tensor(value)
    return value


def keras_kwargs(kwargs, dtype="float32"):
    return {k: tensor(v, dtype) for k, v in kwargs.items()}


def numpy(value) -> np.ndarray:
    """A backend tensor → float64 NumPy (torch directly: NumPy 2 warns on np.array(tensor))."""
    if BACKEND == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().double().numpy()
    if BACKEND == "tensorflow" and hasattr(value, "numpy"):
        return np.asarray(value.numpy(), dtype=np.float64)
    return np.asarray(ops.convert_to_numpy(value), dtype=np.float64)


def value_and_grad(function, x: np.ndarray, dtype="float32"):
    """``function(tensor) -> scalar`` and its gradient with respect to the tensor (NumPy out)."""
    if BACKEND == "torch":
        import torch

        t = torch.tensor(x.astype(dtype), requires_grad=True)
        value = function(t)
        value.backward()
        return float(value.detach()), t.grad.numpy().astype(np.float64)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        t = tf.constant(x.astype(dtype))
        with tf.GradientTape() as tape:
            tape.watch(t)
            value = function(t)
        return float(value), tape.gradient(value, t).numpy().astype(np.float64)
    if BACKEND == "jax":
        import jax

        value, grad = jax.jit(jax.value_and_grad(function))(jax.numpy.asarray(x.astype(dtype)))
        return float(value), np.asarray(grad, dtype=np.float64)
    raise NotImplementedError(BACKEND)

