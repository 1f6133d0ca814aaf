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
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from recsys_tf.data.registry import DatasetSpec, FileSpec, get_spec
from recsys_tf.errors import ChecksumError, DataNotFoundError
from recsys_tf.utils import progress, temp_sibling

DATA_ENV, CACHE_ENV, OFFLINE_ENV = "RECSYS_TF_DATA", "RECSYS_TF_CACHE", "RECSYS_TF_OFFLINE"
TIMEOUT_ENV, DEADLINE_ENV = "RECSYS_TF_DOWNLOAD_TIMEOUT", "RECSYS_TF_DOWNLOAD_DEADLINE"


REPO = Path(__file__).resolve().parents[2]  # the repository root, when the kit runs from a checkout


def data_dir() -> Path | None:
    """The local-data directory, as an absolute path, found the same way by every entry point.

    ``$RECSYS_TF_DATA`` when set: a relative value is taken from the current directory, or else
    from the repository root (notebooks run inside ``notebooks/``, so ``RECSYS_TF_DATA=data`` set
    at the top still works there). When unset: the repository's ``datasets/`` if it holds a data
    set folder, else ``../shared/datasets`` beside the repository if it exists, else None.
    """
    value = os.environ.get(DATA_ENV)
    if value:
        path = Path(value).expanduser()
        if path.is_absolute():
            return path
        here = Path.cwd() / path
        return (here if here.exists() or not (REPO / path).exists() else REPO / path).resolve()
    own = REPO / "datasets"
    if own.is_dir() and any(p.is_dir() for p in own.iterdir()):
        return own
    shared = REPO.parent / "shared" / "datasets"
    return shared if shared.is_dir() else None


def export_data_dir() -> Path | None:
    """Set ``$RECSYS_TF_DATA`` to :func:`data_dir`'s absolute path, so processes started from here
    (Jupyter kernels, whose working directory is ``notebooks/``) find the same data."""
    found = data_dir()
    if found is not None:
        os.environ[DATA_ENV] = str(found)
    return found


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


def verify(path: Path, spec: FileSpec, delete_hint: bool = True) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches the registry's sha256 / size / lines.

    ``delete_hint``: end the message with the fix for a file that stays where it is (a local copy
    or cache entry: delete or replace it); a download that fails is removed by the caller instead.
    """
    fix = f" Delete {path} and fetch it again (or replace it with the publisher's file)." if delete_hint else " The download was discarded."
    if spec.size is not None and path.stat().st_size != spec.size:
        raise ChecksumError(
            f"{path.name}: {path.stat().st_size:,} bytes, expected {spec.size:,}: the file is truncated, "
            f"corrupt or another version.{fix}"
        )
    if spec.sha256 is not None:
        got = sha256sum(path)
        if got != spec.sha256:
            raise ChecksumError(
                f"{path.name}: sha256 {got}, expected {spec.sha256}: the file is corrupt or another version.{fix}"
            )
    elif spec.lines is not None:
        got_lines = _count_lines(path)
        if got_lines != spec.lines:
            raise ChecksumError(f"{path.name}: {got_lines:,} lines, expected {spec.lines:,}: corrupt or another version.{fix}")


def offline() -> bool:
    """``$RECSYS_TF_OFFLINE`` set to 1, true, yes or on (any case): downloads are forbidden."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _timeouts() -> tuple[float, float]:
    """(seconds a silent connection may wait, seconds a whole download may take)."""
    return (float(os.environ.get(TIMEOUT_ENV, "20")), float(os.environ.get(DEADLINE_ENV, "1800")))


def _download(url: str, dest: Path, desc: str) -> None:
    """Stream ``url`` into ``dest`` atomically (``.part`` file, then rename), within a total deadline.

    A server that stops answering fails after ``$RECSYS_TF_DOWNLOAD_TIMEOUT`` seconds (default 20);
    one that trickles bytes fails once the whole download has taken ``$RECSYS_TF_DOWNLOAD_DEADLINE``
    seconds (default 1,800). Either way the partial file is removed.
    """
    wait, total = _timeouts()
    deadline = time.monotonic() + total
    fd, tmp = temp_sibling(dest, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=wait) as resp:  # noqa: S310
            total_bytes = int(resp.headers.get("Content-Length") or 0) or None
            read = getattr(resp, "read1", resp.read)  # whatever has arrived: the deadline is checked often
            with progress(total=total_bytes, unit="B", unit_scale=True, desc=desc) as bar:
                for block in iter(lambda: read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{url} took more than {total:g} s (${DEADLINE_ENV}); the server is too slow")
            if total_bytes is not None and out.tell() != total_bytes:
                raise OSError(f"{url} ended after {out.tell():,} of {total_bytes:,} bytes (connection dropped)")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _install_verified(src: Path, dest: Path, spec: FileSpec) -> None:
    """Verify ``src`` then move it to ``dest``; on a mismatch ``src`` is deleted."""
    try:
        verify(src, spec, delete_hint=False)
    except ChecksumError:
        src.unlink(missing_ok=True)
        raise
    os.replace(src, dest)


def _extract(zf: zipfile.ZipFile, member: str, folder: Path, name: str) -> Path:
    """One archive member into a temporary file of ``folder`` (removed on a CRC or read error)."""
    fd, tmp = temp_sibling(folder / name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, zf.open(member) as src:
            shutil.copyfileobj(src, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _download_into_cache(ds: DatasetSpec, filename: str, dest: Path) -> None:
    url = ds.url_for(filename)
    if ds.archive:
        archive = dest.parent / Path(url).name
        if not archive.exists():
            _download(url, archive, desc=f"{ds.name}: {archive.name}")
        prefix = ds.archive.get("prefix", "")
        try:  # a bad archive is removed, so the next fetch downloads it afresh instead of failing forever
            with zipfile.ZipFile(archive) as zf:
                names = set(zf.namelist())
                for name, fspec in ds.files.items():  # unpack every registered member once
                    target = dest.parent / name
                    if target.exists() or prefix + name not in names:
                        continue
                    _install_verified(_extract(zf, prefix + name, dest.parent, name), target, fspec)
        except (zipfile.BadZipFile, ChecksumError, EOFError, OSError, zlib.error) as exc:
            page = _looks_like_html(archive)
            archive.unlink(missing_ok=True)
            why = " (it looks like a web page: the server sent an error instead of the file)" if page else ""
            raise ChecksumError(
                f"the archive downloaded from {url} is damaged{why}: {exc}. It was removed from the cache; "
                f"run again to download it afresh, or put the files in ${DATA_ENV}/{ds.name}/."
            ) from exc
        if not dest.exists():
            raise DataNotFoundError(f"{url} does not contain {prefix + filename}.")
    else:
        part = dest.with_name(dest.name + ".download")
        _download(url, part, desc=f"{ds.name}: {filename}")
        _install_verified(part, dest, ds.files[filename])


def _looks_like_html(path: Path) -> bool:
    """The file starts like an HTML page (an error or login page served in place of the archive)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml"))


def fetch(dataset: str | DatasetSpec, filename: str, download: bool | None = None) -> Path:
    """Return the verified local path of one registered file, downloading it if needed.

    Parameters
    ----------
    dataset : registry name (``"movielens-100k"``) or a :class:`DatasetSpec`.
    filename : a file of that data set (``"u.data"``).
    download : allow a download; default: yes unless ``RECSYS_TF_OFFLINE`` is 1, true, yes or on.

    Raises
    ------
    DataNotFoundError : the file is nowhere and cannot be downloaded; the message names the data
        set, the file, every place looked in and the URL.
    ChecksumError : a local copy does not match the registry (it is left alone: it is yours), or a
        download or cached copy is damaged (it is removed, so running again starts clean).
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
        looked.append(f"${DATA_ENV} (not set, and no datasets/ or ../shared/datasets beside the repository)")
    cached = cache_dir() / ds.name / filename
    if cached.exists():
        try:
            verify(cached, fspec, delete_hint=False)
        except ChecksumError as exc:  # the cache is ours: a damaged entry goes, and is fetched again below
            cached.unlink(missing_ok=True)
            if download is False or (download is None and offline()):
                raise ChecksumError(f"{exc.args[0].split(' The download')[0]} The damaged copy in the cache "
                                    f"({cached}) was removed; run again with downloads allowed to fetch it afresh, "
                                    f"or put the file in ${DATA_ENV}/{ds.name}/.") from exc  # fmt: skip
        else:
            return cached
    looked.append(f"{cached} (cache, ${CACHE_ENV})")
    if download is None:
        download = not offline()
    url = ds.url_for(filename)
    reason = f"downloads are off (${OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)})" if offline() else "downloads were not allowed (download=False)"
    if download:
        try:
            _download_into_cache(ds, filename, cached)
            return cached
        except (urllib.error.URLError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, DataNotFoundError):
                raise
            reason = f"the download failed: {exc}; nothing was left in the cache, so running again retries cleanly"
    raise DataNotFoundError(
        f"Data set {ds.name!r}: file {filename!r} was not found. Looked in: {'; '.join(looked)}. "
        f"Source: {url} -- {reason}. Fix: download it from {ds.homepage} (terms: {ds.terms}) and put "
        f"{filename} in $RECSYS_TF_DATA/{ds.name}/, or run once with network access."
    )
