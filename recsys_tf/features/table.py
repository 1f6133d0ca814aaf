"""Put item features side by side: one frame indexed by item_id, one block per feature kind.

Each block is scaled to unit norm per item and then by its weight, so that a 384-d text vector
does not drown a 7-column one-hot just by being wider. Column names start with the block's name
(``text_0``, ``picture_12``, ``category=Mugs``) so an ablation can drop a kind by prefix.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.utils import unit_rows


def attribute_features(catalog: pd.DataFrame, categorical: Sequence[str] = ("category", "brand", "price_tier"),
                       numeric: Sequence[str] = ("price",)) -> np.ndarray:  # fmt: skip
    """One-hot columns of the ``categorical`` attributes and standardised ``log1p`` of ``numeric``."""
    missing = [c for c in (*categorical, *numeric) if c not in catalog]
    if missing:
        raise DataError(f"the catalog lacks the attribute columns {missing}; pass the ones it has.")
    parts = [pd.get_dummies(catalog[c].astype(str), prefix=c).to_numpy(np.float32) for c in categorical]
    for c in numeric:
        x = np.log1p(pd.to_numeric(catalog[c], errors="coerce").to_numpy(np.float64))
        if np.isnan(x).any():
            raise DataError(f"{int(np.isnan(x).sum())} item(s) have a missing or non-numeric {c!r}; fill or drop them first.")
        parts.append(((x - x.mean()) / max(x.std(), 1e-12))[:, None].astype(np.float32))
    return np.hstack(parts) if parts else np.zeros((len(catalog), 0), np.float32)


def feature_table(item_ids: Sequence, blocks: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """``blocks``: ``{name: items x d array}`` in the order of ``item_ids``. Returns a frame indexed
    by item_id whose columns are ``{name}_{j}``; every block is L2-normalised per row, times its weight."""
    weights = weights or {}
    ids = np.asarray(item_ids)
    cols, names = [], []
    for name, block in blocks.items():
        b = np.asarray(block, dtype=np.float32)
        if b.ndim != 2 or len(b) != len(ids):
            raise DataError(f"feature block {name!r} has shape {b.shape}; expected {len(ids)} rows (one per item).")
        if not np.isfinite(b).all():
            raise DataError(f"feature block {name!r} has NaN or infinite values.")
        b = unit_rows(b) * float(weights.get(name, 1.0))
        cols.append(b)
        names += [f"{name}_{j}" for j in range(b.shape[1])]
    if not cols:
        raise DataError("no feature blocks given.")
    return pd.DataFrame(np.hstack(cols), index=pd.Index(ids, name="item_id"), columns=names)


def drop_blocks(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The table without the blocks ``names`` (for ablations)."""
    keep = [c for c in table.columns if c.rsplit("_", 1)[0] not in set(names)]
    if not keep:
        raise DataError("no feature block would be left.")
    return table[keep]
