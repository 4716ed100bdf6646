"""The Keras front's tests run in the main pytest process with the backend named by
``KERAS_BACKEND`` (torch when unset); ``tests/test_keras_backends.py`` re-runs this folder in a
subprocess for every other installed backend. Without Keras the folder is skipped (the
repository's conftest.py)."""

import os
import pathlib
import sys

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras
if os.environ["KERAS_BACKEND"] == "jax":
    # JAX compiles every operation for every new shape; on the CPU the cheapest compiler
    # settings halve the suite's time (the numbers do not depend on them)
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                       "--xla_llvm_disable_expensive_passes=true")


_HERE = pathlib.Path(__file__).parent
if str(_HERE) not in sys.path:  # keras_helpers, under --import-mode=importlib too
    sys.path.insert(0, str(_HERE))
# Keras's own NumPy conversions (of torch tensors, Keras variables) trip a NumPy 2 deprecation
# that is neither ours nor actionable here.
_KERAS_NUMPY_WARNING = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in pathlib.Path(str(item.path)).parents:
            item.add_marker(_KERAS_NUMPY_WARNING)
