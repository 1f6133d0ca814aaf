"""Picture features of items, the classic descriptors the article names: colour, shape, texture.

All take a batch of pictures ``n x h x w x 3`` (uint8 or float in [0, 255]) and are vectorized
over the batch. The background is taken to be the picture's most common border colour.
"""

from __future__ import annotations

import numpy as np

from recsys_tf.errors import DataError
from recsys_tf.utils import unit_rows


def check_pictures(pictures: np.ndarray) -> np.ndarray:
    """``pictures`` as an array, once it is known to be a non-empty ``n x height x width x 3`` batch."""
    p = np.asarray(pictures)
    if p.ndim != 4 or p.shape[-1] != 3:
        raise DataError(f"pictures must be an n x height x width x 3 array, got shape {p.shape}.")
    if len(p) == 0:
        raise DataError("no pictures given.")
    return p


def _check(pictures: np.ndarray) -> np.ndarray:
    return check_pictures(pictures).astype(np.float32)


def _foreground(p: np.ndarray, tol: float = 12.0) -> np.ndarray:
    border = np.concatenate([p[:, 0], p[:, -1], p[:, :, 0], p[:, :, -1]], axis=1)  # n x (2h + 2w) x 3
    background = np.median(border, axis=1)  # n x 3
    return np.abs(p - background[:, None, None, :]).max(axis=-1) > tol


def colour_histogram(pictures: np.ndarray, bins: int = 4) -> np.ndarray:
    """Joint RGB histogram of the foreground pixels (``bins^3`` cells), L1-normalised per picture."""
    p = _check(pictures)
    fg = _foreground(p)
    cells = np.minimum((p / 256.0 * bins).astype(np.int64), bins - 1)
    idx = (cells[..., 0] * bins + cells[..., 1]) * bins + cells[..., 2]  # n x h x w
    n = len(p)
    flat = (np.arange(n)[:, None, None] * bins**3 + idx)[fg]
    hist = np.bincount(flat, minlength=n * bins**3).reshape(n, bins**3).astype(np.float64)
    return hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0)


def shape_descriptors(pictures: np.ndarray) -> np.ndarray:
    """Foreground silhouette: area share, bounding-box fill, aspect ratio, elongation (from the second
    moments), and a 4 x 4 grid of occupancy -- 20 numbers per picture."""
    p = _check(pictures)
    fg = _foreground(p).astype(np.float64)
    n, h, w = fg.shape
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    area = fg.sum(axis=(1, 2))
    safe = np.maximum(area, 1.0)
    cy, cx = (fg * y).sum(axis=(1, 2)) / safe, (fg * x).sum(axis=(1, 2)) / safe
    vy = (fg * (y - cy[:, None, None]) ** 2).sum(axis=(1, 2)) / safe
    vx = (fg * (x - cx[:, None, None]) ** 2).sum(axis=(1, 2)) / safe
    cov = (fg * (y - cy[:, None, None]) * (x - cx[:, None, None])).sum(axis=(1, 2)) / safe
    spread = np.sqrt(((vy - vx) / 2) ** 2 + cov**2)
    major, minor = (vy + vx) / 2 + spread, np.maximum((vy + vx) / 2 - spread, 1e-9)
    rows, cols = fg.any(axis=2), fg.any(axis=1)
    height = rows.sum(axis=1) / h
    width = cols.sum(axis=1) / w
    grid = fg.reshape(n, 4, h // 4, 4, w // 4).mean(axis=(2, 4)).reshape(n, 16)
    return np.column_stack([area / (h * w), area / np.maximum(height * width * h * w, 1.0),
                            height / np.maximum(width, 1e-9), np.sqrt(major / minor) / 10.0, grid])  # fmt: skip


def texture_descriptors(pictures: np.ndarray, orientations: int = 8) -> np.ndarray:
    """Texture inside the silhouette, independent of the colour: brightness is divided by its mean
    over the foreground, then a histogram of gradient orientations weighted by gradient magnitude
    (HOG with one cell, Dalal & Triggs 2005) and the spread of relative brightness -- stripes, dots
    and checks give different signatures. ``orientations + 1`` numbers per picture."""
    p = _check(pictures)
    fg = _foreground(p)
    grey = p.mean(axis=-1) + 1.0
    area = np.maximum(fg.sum(axis=(1, 2)), 1.0)
    rel = grey / ((grey * fg).sum(axis=(1, 2)) / area)[:, None, None]  # 1 = the silhouette's mean brightness
    gy, gx = np.gradient(rel, axis=(1, 2))
    inner = fg & np.roll(fg, 1, 1) & np.roll(fg, -1, 1) & np.roll(fg, 1, 2) & np.roll(fg, -1, 2)  # not the outline
    mag = np.hypot(gx, gy) * inner
    ang = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation
    cell = np.minimum((ang / np.pi * orientations).astype(np.int64), orientations - 1)
    n = len(p)
    flat = np.arange(n)[:, None, None] * orientations + cell
    hist = np.bincount(flat.ravel(), weights=mag.ravel(), minlength=n * orientations).reshape(n, orientations)
    std = np.sqrt((((rel - 1.0) ** 2) * fg).sum(axis=(1, 2)) / area)
    return np.column_stack([hist / area[:, None], std])


def image_features(pictures: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Colour, shape and texture descriptors side by side, each block scaled to unit norm, in batches."""
    from recsys_tf.utils import progress

    blocks = []
    for start in progress(range(0, len(pictures), batch_size), desc="picture features"):
        batch = pictures[start : start + batch_size]
        parts = [colour_histogram(batch), shape_descriptors(batch), texture_descriptors(batch)]
        blocks.append(np.hstack([unit_rows(b) for b in parts]))
    return np.vstack(blocks)


def save_pictures(folder, pictures: np.ndarray, names) -> list:
    """Write pictures as PNG files ``folder/<name>.png`` (e.g. a catalog's, to try the file pipeline)."""
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pic, name in zip(_check(pictures).astype(np.uint8), names):
        paths.append(folder / f"{name}.png")
        Image.fromarray(pic).save(paths[-1])
    return paths


def load_pictures(paths, size: int = 64, batch_size: int = 256) -> np.ndarray:
    """Read picture files (any format Pillow reads) as one ``n x size x size x 3`` uint8 array:
    converted to RGB, resized (bilinear) to a square -- the loading step for real product photos."""
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    from recsys_tf.utils import progress

    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{len(missing)} picture file(s) do not exist, e.g. {missing[:3]}.")
    out = np.empty((len(paths), size, size, 3), np.uint8)
    for k in progress(range(len(paths)), desc="loading pictures", miniters=batch_size):
        try:
            with Image.open(paths[k]) as im:
                out[k] = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{paths[k]} is not a readable picture ({e}); replace or remove it.") from e
    return out
