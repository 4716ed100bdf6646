"""Repository-level pytest setup: the Keras backend for in-process tests, and no doctest import
of the Keras front end where Keras is not installed (it is an optional extra)."""

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
collect_ignore = [] if importlib.util.find_spec("keras") else ["src/seglosses/keras"]
