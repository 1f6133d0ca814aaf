"""Embeddings of the pretrained encoders kept on disk: the same pictures or texts, through the same
encoder, are encoded once.

EfficientNet-Lite0 takes ~34 ms a picture on a 2-core CPU: the small shop's 1,500 pictures cost
notebook 09 about a minute every time it runs. Each result is stored as a
``.npy`` file (read back with ``allow_pickle=False``: no code in it can run) under
``$RECSYS_TF_CACHE/embeddings`` (default ``~/.cache/recsys_tf/embeddings``), named by a SHA-256 of
everything the numbers depend on: the encoder and its settings, its weight file(s), the Keras version
and backend, and the inputs' bytes. A file that is unreadable or of the wrong shape is computed again
and replaced; writes are atomic. ``cache=True`` on an encoder turns this on (off by default: a
notebook that times an encoder must not time the cache); deleting the folder empties it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

# bump when an encoder's arithmetic changes without its settings or weights changing
FORMAT = 1


def cache_folder() -> Path:
    """``$RECSYS_TF_CACHE/embeddings`` (default ``~/.cache/recsys_tf/embeddings``)."""
    from recsys_tf.data.download import cache_dir

    return cache_dir() / "embeddings"


def weights_id(paths: Iterable[Path]) -> str:
    """A weight file's identity for the key: its name, size and modification time (hashing hundreds of
    megabytes on every call would cost more than some encodings)."""
    parts = []
    for p in sorted(Path(x) for x in paths):
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def cached(encoder: str, inputs: Iterable[bytes], n: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``'s result (``n`` rows), from the cache when an earlier call stored it.

    ``encoder``: the encoder, its settings and its weights' identity, as text; ``inputs``: the bytes of
    the inputs, in order (pictures' pixels, texts' UTF-8).
    """
    import keras

    h = hashlib.sha256(f"{FORMAT}|{encoder}|keras {keras.__version__}|{keras.backend.backend()}".encode())
    for chunk in inputs:
        h.update(len(chunk).to_bytes(8, "little"))  # b"ab", b"c" and b"a", b"bc" differ
        h.update(chunk)
    path = cache_folder() / f"{h.hexdigest()}.npy"
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                out = np.load(fh, allow_pickle=False)
            if out.ndim == 2 and len(out) == n and out.dtype == np.float32:
                return out
        except (OSError, ValueError):
            pass  # damaged: computed again and replaced below
    out = compute()
    try:
        from recsys_tf.utils import atomic_write

        buf = io.BytesIO()
        np.save(buf, out, allow_pickle=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buf.getvalue())
    except OSError:
        pass  # a read-only or full disk costs the next call its time, not this call its result
    return out
