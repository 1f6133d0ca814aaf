"""Small helpers shared by the whole kit: seeding and progress bars."""

from __future__ import annotations

import logging
import os
import random
import stat
from pathlib import Path
from typing import Any

import numpy as np


def seed_everything(seed: int = 42) -> np.random.Generator:
    """Seed Python, NumPy and (if imported) Keras, and return a fresh NumPy ``Generator``.

    Keras is seeded only when it is already imported, so data-only code stays light.
    ``TF_DETERMINISTIC_OPS`` makes TensorFlow kernels deterministic on CPU and GPU.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may still use the global state
    import sys

    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


def progress(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar that renders as a widget in Jupyter and as text elsewhere.

    Set ``RECSYS_TF_PROGRESS=0`` to silence bars (the course runner does, to keep
    executed notebooks small).
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", os.environ.get("RECSYS_TF_PROGRESS", "1") == "0")
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, **kwargs)


def temp_sibling(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a new, empty temporary file next to ``path``; return its open descriptor and name.

    Unlike ``tempfile.mkstemp`` (always mode 0600), the file gets the mode an ordinary new file would
    (0666 less the umask), so what is renamed into place is readable as any other file the user writes.
    """
    import uuid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - a 48-bit random name clashing
            continue


def _keep_mode(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the permission bits of the ``target`` it replaces (a user's chmod survives a rewrite)."""
    try:
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
    except FileNotFoundError:
        pass


def atomic_write(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` through a temporary sibling file and a rename.

    A reader sees the old file or the new one, never half of it; a failure (full disk, a killed
    process) leaves the old file as it was and no temporary file behind. A new file gets the usual
    mode (0666 less the umask); a replaced one keeps its mode.
    """
    path = Path(path)
    fd, tmp = temp_sibling(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode(encoding) if isinstance(data, str) else data)
        _keep_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_folder(folder: str | os.PathLike, write: Any, suffix: str = ".tmp") -> Path:
    """Run ``write(tmp)`` in a temporary sibling of ``folder``, then swap it into place.

    The previous folder (if any) is renamed away and deleted only after the new one is in place; on
    any failure the temporary folder is removed and the previous one restored. Modes as for
    :func:`atomic_write` (0777 less the umask for a new folder).
    """
    import shutil
    import uuid

    folder = Path(folder).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:12]}{suffix}"
    tmp.mkdir(0o777)
    try:
        write(tmp)
        _keep_mode(tmp, folder)
        old = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.old"
        had_old = folder.exists()
        if had_old:
            os.rename(folder, old)
        try:
            os.rename(tmp, folder)
        except BaseException:
            if had_old:
                os.rename(old, folder)
            raise
        if had_old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def unit_rows(x: Any) -> np.ndarray:
    """``x`` with every vector (last axis) scaled to unit L2 length; zero vectors stay zero."""
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def padded_width(real: np.ndarray, multiple: int = 8) -> int:
    """How many columns of a padded (B, L) batch to keep: the most real tokens in a row (``real`` is
    True on them), rounded up to a multiple of ``multiple`` so that few shapes get compiled, at most L."""
    used = int(np.count_nonzero(real, axis=1).max(initial=1))
    return min(real.shape[1], -(-used // multiple) * multiple)


def first_occurrence(rows: np.ndarray) -> np.ndarray:
    """Boolean mask, same shape as the 2-D ``rows``: True where a value appears for the first time in its row."""
    order = np.argsort(rows, axis=1, kind="stable")
    srt = np.take_along_axis(rows, order, axis=1)
    repeat = np.zeros(rows.shape, bool)
    repeat[:, 1:] = srt[:, 1:] == srt[:, :-1]
    first = np.empty(rows.shape, bool)
    np.put_along_axis(first, order, ~repeat, axis=1)
    return first


def import_keras_quietly():
    """Import Keras (and TensorFlow under it) with the process's native stderr silenced meanwhile.

    TensorFlow 2.21 writes absl lines ("oneDNN custom operations are on", "Could not find cuda
    drivers") before it reads ``TF_CPP_MIN_LOG_LEVEL``, so they land in every notebook. Python
    errors are unaffected (they are raised, not printed, inside the import). Set
    ``TF_CPP_MIN_LOG_LEVEL=0`` to see everything (including the retracing notes filtered below).
    """
    import sys

    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") != "0"
    if quiet:
        _drop_retracing_notes()  # also when Keras came first by another path: the notes come later, from fits
    if not quiet or "keras" in sys.modules:
        import keras

        return keras
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras


class _RetracingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _drop_retracing_notes() -> None:
    # Every recommender's fit builds its own compiled train step; a notebook that fits many small
    # models makes TensorFlow warn about "retracing", which is expected here and says nothing useful.
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())
