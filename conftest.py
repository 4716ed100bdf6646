"""Repository-level pytest setup.

- The Keras backend for in-process tests, and the Triton interpreter for the kernel tests on
  the CPU (``TRITON_INTERPRET`` must be set before the kernels are defined, at their import; on
  a GPU machine run ``TRITON_INTERPRET=0 python -m pytest -m gpu`` to compile them instead).
- Optional parts: files that import Keras or Triton (their tests and doctests) are skipped
  with a one-line reason when it is missing (``tests/_optional.py``). With
  ``SEGLOSSES_REQUIRE_OPTIONAL=1`` (set by ``.ci/run``) any such skip fails the session.
"""

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TRITON_INTERPRET", "1")

import _optional  # noqa: E402 - tests/ is on the path (pyproject: pythonpath)

_ROOT = pathlib.Path(__file__).parent
# folder or file (relative to the repository) -> the module everything in it imports
_PARTS = {
    "src/seglosses/keras": "keras",
    "tests/keras_front": "keras",
    "src/seglosses/triton/_common.py": "triton",
    "src/seglosses/triton/labels.py": "triton",
    "src/seglosses/triton/region.py": "triton",
    "src/seglosses/triton/sigmoid.py": "triton",
    "src/seglosses/triton/softmax.py": "triton",
    "tests/triton_compile_check.py": "triton",
    "tests/test_triton.py": "triton",
    "tests/test_triton_combinations.py": "triton",
    "tests/test_triton_labels.py": "triton",
}


def _missing_part(path: pathlib.Path) -> str | None:
    try:
        relative = path.resolve().relative_to(_ROOT.resolve()).as_posix()
    except ValueError:
        return None
    for prefix, module in _PARTS.items():
        if (relative == prefix or relative.startswith(prefix + "/")) and \
                not _optional.installed(module):
            return _optional.reason(f"{module} is not installed", _optional.INSTALL[module])
    return None


class _MissingPart(pytest.File):
    """Stands in for a file whose import needs a missing optional part: one skip, no import."""

    reason = ""

    def collect(self):
        pytest.skip(self.reason)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collectors = yield
    reason = _missing_part(file_path) if collectors else None
    if reason is None:
        return collectors
    node = _MissingPart.from_parent(parent, path=file_path)
    node.reason = reason
    return [node]


_SKIPPED_PARTS: list[str] = []


def _note_skip(report) -> None:
    if report.skipped:
        text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if _optional.MISSING in text:
            _SKIPPED_PARTS.append(f"{report.nodeid}: {text}")


def pytest_collectreport(report):
    _note_skip(report)


def pytest_runtest_logreport(report):
    _note_skip(report)


def _required() -> bool:
    return os.environ.get("SEGLOSSES_REQUIRE_OPTIONAL") == "1"


def pytest_sessionfinish(session, exitstatus):
    if _required() and _SKIPPED_PARTS and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _required() and _SKIPPED_PARTS:
        terminalreporter.section("optional parts skipped (SEGLOSSES_REQUIRE_OPTIONAL=1)", red=True)
        for line in _SKIPPED_PARTS:
            terminalreporter.write_line(line)
