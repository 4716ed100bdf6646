"""What the losses need to know about the Keras backend: dtypes, static shapes, and whether
values can be read (eager) or are being traced (``tf.function``, ``jax.jit``, ``torch.compile``).

Only the backend Keras itself runs on is ever imported here, and only lazily.
"""

from __future__ import annotations

import numpy as np
from keras import backend, ops

from .._spec import label_range_error, label_range_parts, label_range_unreadable

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
HALF_DTYPES = ("float16", "bfloat16")
INDEX_DTYPES = ("uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "bool")

# The upper clip bound of probabilities, in each dtype (docs/semantics.md, precision):
# ``1 - 1e-7`` rounded to the dtype (Keras 3), or the largest number below 1 where that
# rounds to 1 (float16, bfloat16).
CLIP_HIGH = {
    "float16": 1.0 - 2.0**-11,
    "bfloat16": 1.0 - 2.0**-8,
    "float32": float(np.float32(1.0 - 1e-7)),
    "float64": 1.0 - 1e-7,
}
TINY = {  # the smallest normal number of each dtype
    "float16": 2.0**-14,
    "bfloat16": 2.0**-126,
    "float32": 2.0**-126,
    "float64": 2.0**-1022,
}


def dtype_of(x) -> str:
    return backend.standardize_dtype(x.dtype)


def compute_dtype(dtype: str) -> str:
    """fp16/bf16 are computed in float32, float32/float64 in their own precision
    (docs/semantics.md, precision)."""
    return "float64" if dtype == "float64" else "float32"


def static_shape(x) -> tuple:
    """The static shape, ``None`` for a dimension unknown while tracing."""
    return tuple(None if s is None else int(s) for s in x.shape)


def batch_size(x):
    """The batch size: an int, or a scalar tensor while a graph with unknown batch is traced."""
    n = x.shape[0]
    return int(n) if n is not None else ops.shape(x)[0]


def is_tracing(x) -> bool:
    """True while ``x`` is symbolic: its values cannot be read (no value checks then)."""
    name = backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly() or not hasattr(x, "numpy")
    if name == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    if name == "torch":
        import torch

        return torch.compiler.is_compiling()
    try:  # another backend: readable or not
        ops.convert_to_numpy(x)
    except Exception:  # noqa: BLE001 - any failure means "not readable here"
        return True
    return False


def values(x) -> np.ndarray:
    """The values of an eager tensor as a NumPy array (a host copy)."""
    if backend.backend() == "torch" and not isinstance(x, np.ndarray):
        # keras's convert_to_numpy goes through np.array(tensor), which NumPy 2 warns about
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    if backend.backend() == "tensorflow" and hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(ops.convert_to_numpy(x))


def stop_on_bad_labels(function: str, bad, labels, ignore, num_classes: int) -> None:
    """Stop a traced step where ``bad`` (a bool tensor) marks a label outside ``[0, C)`` that is
    not ignored: the in-graph form of the eager label check, for ``validate=True`` inside a
    traced ``fit``. Only the cheap ``any(bad)`` runs on every step.

    TensorFlow: a graph assertion showing the bad values (XLA drops it: the loss is NaN there);
    JAX: a host callback that raises the eager check's ``ValueError`` (with the smallest and
    the largest bad label); torch under
    ``torch.compile``: ``torch._assert_async`` on the CPU (on a GPU a device-side assert would
    poison the CUDA context: the loss is NaN there).
    """
    name = backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        def fail():
            head, hint = label_range_parts(function, ignore, num_classes)
            shown = tf.unique(tf.boolean_mask(tf.reshape(labels, [-1]),
                                              tf.reshape(bad, [-1])))[0][:8]
            stop = tf.debugging.Assert(False, [head, shown, hint], summarize=8)
            with tf.control_dependencies([stop]):
                return tf.constant(False)

        tf.cond(tf.reduce_any(bad), fail, lambda: tf.constant(True))
    elif name == "jax":
        import jax

        def raise_error(low, high):
            raise label_range_error(function, [int(low), int(high)], ignore, num_classes)

        # the smallest and the largest bad label go to the host: two scalars, not the labels,
        # so that the branch does not keep a label-sized array alive (+17 % time otherwise)
        low = ops.min(ops.where(bad, labels, np.iinfo("int32").max))
        high = ops.max(ops.where(bad, labels, np.iinfo("int32").min))
        jax.lax.cond(ops.any(bad), lambda a, b: jax.debug.callback(raise_error, a, b),
                     lambda a, b: None, low, high)
    elif name == "torch" and bad.device.type == "cpu":
        import torch

        torch._assert_async(torch.logical_not(bad.any()),
                            label_range_unreadable(function, ignore, num_classes))
