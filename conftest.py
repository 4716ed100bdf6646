"""Repository-level pytest setup: the Keras backend for in-process tests, the Triton
interpreter for the kernel tests on the CPU, and no doctest import of the Keras front end
where Keras is not installed (it is an optional extra).

``TRITON_INTERPRET`` must be set before the kernels are defined (at their import); on a GPU
machine run ``TRITON_INTERPRET=0 python -m pytest -m gpu`` to compile them for the device.
"""

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TRITON_INTERPRET", "1")
collect_ignore = [] if importlib.util.find_spec("keras") else ["src/seglosses/keras"]
if not importlib.util.find_spec("triton"):  # the triton extra: its kernels cannot be defined
    collect_ignore += ["src/seglosses/triton/softmax.py", "src/seglosses/triton/sigmoid.py",
                       "src/seglosses/triton/_common.py", "tests/triton_compile_check.py"]
