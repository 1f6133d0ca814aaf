"""Find a data file: the local-data directory, then the cache, then the publisher.

Order of search for ``fetch("movielens-100k", "u.data")``:

1. ``$RECSYS_TF_DATA/movielens-100k/u.data`` -- local copies (CI points this at ``../shared/datasets``);
2. ``$RECSYS_TF_CACHE/movielens-100k/u.data`` (default ``~/.cache/recsys_tf``);
3. the publisher's URL from the registry, unless ``RECSYS_TF_OFFLINE=1``.

Every file is checked against the registry (sha256, or size and row count where no sha256 is
published). Downloads go to a ``.part`` file in the cache directory and are renamed into place
only once verified, so a failed or corrupt download never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from recsys_tf.data.registry import DatasetSpec, FileSpec, get_spec
from recsys_tf.errors import ChecksumError, DataNotFoundError
from recsys_tf.utils import progress

DATA_ENV, CACHE_ENV, OFFLINE_ENV = "RECSYS_TF_DATA", "RECSYS_TF_CACHE", "RECSYS_TF_OFFLINE"


def data_dir() -> Path | None:
    """The local-data directory named by ``$RECSYS_TF_DATA``, or None when unset."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads are kept: ``$RECSYS_TF_CACHE`` or ``~/.cache/recsys_tf``."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/recsys_tf")).expanduser()


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def verify(path: Path, spec: FileSpec) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches the registry's sha256 / size / lines."""
    if spec.size is not None and path.stat().st_size != spec.size:
        raise ChecksumError(
            f"{path} has {path.stat().st_size:,} bytes, expected {spec.size:,}: the file is truncated, "
            f"corrupt or another version. Delete it and fetch it again."
        )
    if spec.sha256 is not None:
        got = sha256sum(path)
        if got != spec.sha256:
            raise ChecksumError(
                f"{path} has sha256 {got}, expected {spec.sha256}: the file is corrupt or another "
                f"version. Delete it and fetch it again."
            )
    elif spec.lines is not None:
        got_lines = _count_lines(path)
        if got_lines != spec.lines:
            raise ChecksumError(f"{path} has {got_lines:,} lines, expected {spec.lines:,}: corrupt or another version.")


def _download(url: str, dest: Path, desc: str) -> None:
    """Stream ``url`` into ``dest`` atomically (``.part`` file, then rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress(total=total, unit="B", unit_scale=True, desc=desc) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _install_verified(src: Path, dest: Path, spec: FileSpec) -> None:
    """Verify ``src`` then move it to ``dest``; on a mismatch ``src`` is deleted."""
    try:
        verify(src, spec)
    except ChecksumError:
        src.unlink(missing_ok=True)
        raise
    os.replace(src, dest)


def _download_into_cache(ds: DatasetSpec, filename: str, dest: Path) -> None:
    url = ds.url_for(filename)
    if ds.archive:
        archive = dest.parent / Path(url).name
        if not archive.exists():
            _download(url, archive, desc=f"{ds.name}: {archive.name}")
        prefix = ds.archive.get("prefix", "")
        with zipfile.ZipFile(archive) as zf:
            for name, fspec in ds.files.items():  # unpack every registered member once
                target = dest.parent / name
                if target.exists() or prefix + name not in zf.namelist():
                    continue
                fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=dest.parent)
                with os.fdopen(fd, "wb") as out, zf.open(prefix + name) as member:
                    shutil.copyfileobj(member, out)
                _install_verified(Path(tmp), target, fspec)
        if not dest.exists():
            raise DataNotFoundError(f"{url} does not contain {prefix + filename}.")
    else:
        part = dest.with_name(dest.name + ".download")
        _download(url, part, desc=f"{ds.name}: {filename}")
        _install_verified(part, dest, ds.files[filename])


def fetch(dataset: str | DatasetSpec, filename: str, download: bool | None = None) -> Path:
    """Return the verified local path of one registered file, downloading it if needed.

    Parameters
    ----------
    dataset : registry name (``"movielens-100k"``) or a :class:`DatasetSpec`.
    filename : a file of that data set (``"u.data"``).
    download : allow a download; default: yes unless ``RECSYS_TF_OFFLINE=1``.

    Raises
    ------
    DataNotFoundError : the file is nowhere and cannot be downloaded; the message names the data
        set, the file, every place looked in and the URL.
    ChecksumError : a local copy does not match the registry.
    """
    ds = dataset if isinstance(dataset, DatasetSpec) else get_spec(dataset)
    if filename not in ds.files:
        raise KeyError(f"{ds.name} has no file {filename!r}; its files are {sorted(ds.files)}.")
    fspec = ds.files[filename]
    looked: list[str] = []
    local_root = data_dir()
    if local_root is not None:
        local = local_root / ds.name / filename
        if local.exists():
            verify(local, fspec)
            return local
        looked.append(f"{local} (${DATA_ENV})")
    else:
        looked.append(f"${DATA_ENV} (not set)")
    cached = cache_dir() / ds.name / filename
    if cached.exists():
        verify(cached, fspec)
        return cached
    looked.append(f"{cached} (cache, ${CACHE_ENV})")
    if download is None:
        download = os.environ.get(OFFLINE_ENV, "0") != "1"
    url = ds.url_for(filename)
    reason = f"downloads are off (${OFFLINE_ENV}=1)"
    if download:
        try:
            _download_into_cache(ds, filename, cached)
            return cached
        except (urllib.error.URLError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, DataNotFoundError):
                raise
            reason = f"the download failed: {exc}"
    raise DataNotFoundError(
        f"Data set {ds.name!r}: file {filename!r} was not found. Looked in: {'; '.join(looked)}. "
        f"Source: {url} -- {reason}. Fix: download it from {ds.homepage} (terms: {ds.terms}) and put "
        f"{filename} in $RECSYS_TF_DATA/{ds.name}/, or run once with network access."
    )
