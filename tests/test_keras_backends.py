"""The Keras front on every installed Keras backend.

The main pytest process runs tests/keras_front with one backend (``KERAS_BACKEND``, torch when
unset); Keras picks its backend once per process, so each other installed backend gets the
same folder in a subprocess here. Also: ``import seglosses.keras`` imports torch only when the
backend is torch.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from _optional import INSTALL, installed, needs, reason

needs("keras")

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "tensorflow", "jax")
CURRENT = os.environ.get("KERAS_BACKEND", "torch")


def _environment(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("PYTEST_ADDOPTS", None)
    return env


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != CURRENT])
def test_the_keras_suite_passes_on_another_backend(backend):
    if not installed(backend):
        pytest.skip(reason(f"the Keras backend {backend} is not installed", INSTALL[backend]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/keras_front"],
        cwd=ROOT, env=_environment(backend), capture_output=True, text=True, timeout=900)
    lines = (result.stdout + result.stderr).splitlines()
    tail = "\n".join(lines[-40:])
    assert result.returncode == 0, f"tests/keras_front failed on KERAS_BACKEND={backend}:\n{tail}"
    assert " passed" in lines[-1] and " failed" not in lines[-1], tail


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_importing_seglosses_keras_does_not_import_torch(backend):
    if not installed(backend):
        pytest.skip(reason(f"the Keras backend {backend} is not installed", INSTALL[backend]))
    code = ("import sys, seglosses, seglosses.keras as slk, numpy as np; "
            "slk.dice_ce_loss(np.zeros((1, 4, 4), int), np.zeros((1, 4, 4, 3), 'float32')); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_environment(backend),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
