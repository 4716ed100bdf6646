"""What the in-graph label check costs: a traced loss call with ``validate=True`` against the
same call with ``validate=False``, on the CPU.

Keras (``DiceCELoss``, channels-last ``(N, H, W, C)`` logits, uint8 labels with an ignore
label) traced as ``fit`` traces it: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX, each
backend in its own process. The torch front (``dice_ce_loss``, ``(N, C, H, W)``) under
``torch.compile`` (inductor). Forward and backward of the loss alone, so the check's cost is
measured against the loss and not hidden by a network. Median of ``--repeat`` calls, the two
settings interleaved.

    python benchmarks/label_check.py                # (8, 128, 128, 7), 50 calls each
    python benchmarks/label_check.py --quick        # small shapes, a smoke test
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def _inputs(shape):
    import numpy as np

    n, h, w, c = shape
    rng = np.random.default_rng(0)
    logits = rng.normal(size=shape).astype("float32")
    labels = rng.integers(0, c, (n, h, w)).astype("uint8")
    labels[:, :2] = 255
    return logits, labels


def _median_ms(calls: dict, repeat: int) -> dict:
    """Interleaved timing: every setting runs once per round; median per setting in ms."""
    times = {name: [] for name in calls}
    for call in calls.values():  # warm-up: tracing and compilation
        call()
        call()
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def keras_backend(shape, repeat: int) -> dict:
    """Runs in a process whose KERAS_BACKEND is already set."""
    import keras

    import seglosses.keras as slk

    logits, labels = _inputs(shape)
    name = keras.backend.backend()
    calls = {}
    for validate in (True, False):
        loss = slk.DiceCELoss(ignore_index=255, validate=validate)
        if name == "tensorflow":
            import tensorflow as tf

            x, y = tf.constant(logits), tf.constant(labels)

            @tf.function
            def step(x, y, loss=loss):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    value = loss(y, x)
                return tape.gradient(value, x)

            calls[validate] = lambda step=step, x=x, y=y: step(x, y).numpy()
        elif name == "jax":
            import jax

            x, y = jax.numpy.asarray(logits), jax.numpy.asarray(labels)
            step = jax.jit(jax.grad(lambda x, y, loss=loss: loss(y, x)))
            calls[validate] = lambda step=step, x=x, y=y: step(x, y).block_until_ready()
    timed = _median_ms(calls, repeat)
    return {"front": f"keras ({name}, {'tf.function' if name == 'tensorflow' else 'jax.jit'})",
            "checked_ms": timed[True], "unchecked_ms": timed[False]}


def torch_front(shape, repeat: int) -> dict:
    import torch

    import seglosses.torch as sl

    logits, labels = _inputs(shape)
    x = torch.from_numpy(logits).permute(0, 3, 1, 2).contiguous().requires_grad_()
    y = torch.from_numpy(labels)
    calls = {}
    for validate in (True, False):
        step = torch.compile(lambda x, y, validate=validate: sl.dice_ce_loss(
            x, y, ignore_index=255, validate=validate), fullgraph=True)

        def call(step=step):
            x.grad = None
            step(x, y).backward()

        calls[validate] = call
    timed = _median_ms(calls, repeat)
    return {"front": "torch (torch.compile, inductor)", "checked_ms": timed[True],
            "unchecked_ms": timed[False]}


def _in_subprocess(backend: str, shape, repeat: int) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend)
    code = (f"import json, label_check; print(json.dumps(label_check.keras_backend("
            f"{tuple(shape)!r}, {repeat})))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.abspath(__file__)), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, a smoke test")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    shape = (2, 16, 16, 7) if args.quick else (8, 128, 128, 7)
    repeat = 5 if args.quick else args.repeat
    rows = [_in_subprocess(b, shape, repeat) for b in ("tensorflow", "jax")
            if importlib.util.find_spec(b) and importlib.util.find_spec("keras")]
    rows.append(torch_front(shape, repeat))
    print(f"device: cpu ({platform.machine()}); logits {shape} channels-last float32, uint8 "
          f"labels; DiceCE forward + backward; median of {repeat} interleaved calls\n")
    print("| front | validate=True | validate=False | check's cost |")
    print("|---|---|---|---|")
    for row in rows:
        cost = row["checked_ms"] / row["unchecked_ms"] - 1
        print(f"| {row['front']} | {row['checked_ms']:.2f} ms | {row['unchecked_ms']:.2f} ms "
              f"| {cost:+.1%} |")


if __name__ == "__main__":
    main()
