"""Optional parts of the test suite (Keras and its backends, Triton, MONAI, nibabel, a browser).

A test of an optional part skips with a one-line reason naming what to install when that part
is missing, so `pip install -e ".[torch,cli,dev]"` alone gives a green run. `.ci/run` installs
everything and sets ``SEGLOSSES_REQUIRE_OPTIONAL=1``; the repository's ``conftest.py`` then
fails the session if any test skipped for a missing optional part.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil

import pytest

# Every skip for a missing optional part starts with this text; conftest.py looks for it.
MISSING = "optional part missing"

# module -> how to install it
INSTALL = {
    "keras": 'pip install -e ".[keras]"',
    "tensorflow": "pip install tensorflow-cpu",
    "jax": "pip install jax jaxlib",
    "triton": 'pip install -e ".[triton]"',
    "monai": 'pip install -e ".[dev]"',
    "nibabel": 'pip install -e ".[nifti]"',
}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def reason(what: str, install: str) -> str:
    return f"{MISSING}: {what} ({install})"


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def needs(module: str):
    """Import ``module`` (a dotted name), or skip the calling test or module."""
    top = module.split(".")[0]
    if not installed(top):
        pytest.skip(reason(f"{top} is not installed", INSTALL.get(top, f"pip install {top}")),
                    allow_module_level=True)
    return importlib.import_module(module)


def skip_unless_installed(module: str) -> pytest.MarkDecorator:
    """A mark that skips when ``module`` is not installed."""
    return pytest.mark.skipif(not installed(module), reason=reason(
        f"{module} is not installed", INSTALL.get(module, f"pip install {module}")))


def browser() -> str | None:
    """The path of a headless-capable Chromium, or None."""
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


def skip_without_browser() -> pytest.MarkDecorator:
    return pytest.mark.skipif(browser() is None, reason=reason(
        "headless Chromium is not installed", "apt-get install -y chromium"))
