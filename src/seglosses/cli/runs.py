"""Run folders of the command line, NumPy only (no torch): the file formats, atomic writes and
strict JSON.

Every file is written to a temporary file in the same folder, flushed to disk and renamed over
the old one (:func:`atomic_write`), so an interrupted run never leaves a torn file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CONFIG_FORMAT = "seglosses.TrainConfig"
FORMAT_VERSION = 1
# Run files a training run writes; ``overwrite`` removes exactly these and nothing else.
RUN_FILES = ("config.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png",
             "predictions.npz", "result.json")


def read_config(run_dir: Path) -> dict:
    """``run_dir/config.json``: a dict with the run's ``config`` and ``dataset`` (both dicts)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"train: resume must name a run folder with a config.json; "
                                f"got {os.fspath(run_dir)!r}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"train: {path} is not valid JSON ({error}); the run cannot be "
                         "resumed. Start it again with --overwrite.") from None
    if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
        raise ValueError(f"train: {path} is not a seglosses run config.")
    missing = [key for key in ("config", "dataset") if not isinstance(data.get(key), dict)]
    if missing:
        raise ValueError(f"train: {path} lacks {' and '.join(repr(k) for k in missing)}; the "
                         "run cannot be resumed. Start it again with --overwrite.")
    return data


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``metrics.jsonl`` (JSON ``null`` per-class values read back as ``nan``)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):  # a line torn by a crash
                records.append(nan_lists(json.loads(line)))
    return records


def nan_lists(record: dict) -> dict:
    for key in ("val_iou", "val_dice", "val_precision", "val_recall"):
        if key in record:
            record[key] = [math.nan if v is None else v for v in record[key]]
    return record


def append_metrics(run_dir: Path, record: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as file:
        file.write(dumps(record, indent=None) + "\n")
        file.flush()
        os.fsync(file.fileno())


def rewrite_metrics(run_dir: Path, history: list[dict]) -> None:
    atomic_write_text(run_dir / "metrics.jsonl",
                      "".join(dumps(r, indent=None) + "\n" for r in history))


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, then rename it over."""
    atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write(path: Path, write: Callable) -> None:
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 is too private for results
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def dumps(data, indent: int | None = 2) -> str:
    """JSON with ``nan``/``inf`` written as ``null`` (strict JSON that any reader accepts)."""
    return json.dumps(json_safe(data), indent=indent, allow_nan=False)


def json_safe(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def as_dict(info) -> dict:
    data = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(vars(info))
    return json_safe(data)


class RunLock:
    """An exclusive lock on ``run_dir/.lock`` while a run writes the folder, so a second run into
    the same folder is refused instead of interleaving the files. The operating system drops
    the lock when the process dies, so a killed run never leaves the folder locked (only a
    stale ``.lock`` file, which the next run takes over). The folder is created here; one
    created for a run that failed before writing anything is removed again.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.created = False
        self.file = None

    def __enter__(self) -> RunLock:
        self.created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(self.run_dir / ".lock", "a+", encoding="utf-8")  # noqa: SIM115
        try:
            import fcntl
        except ImportError:  # not POSIX (Windows): runs are not locked there
            return self
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise ValueError(f"train: {self.run_dir} is in use by another run (process "
                             f"{holder}); wait for it to end, or choose another --out.") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc_info) -> None:
        # unlinked while still held: a run that opens the old file now is still refused
        (self.run_dir / ".lock").unlink(missing_ok=True)
        self.file.close()  # releases the lock
        if self.created:
            with contextlib.suppress(OSError):  # not empty: the run wrote files
                self.run_dir.rmdir()
