"""The one schema every loader returns, and the checks that guard it.

Interactions (one row per user-item event)
    ``user_id``   int64 or string, never NaN
    ``item_id``   int64 or string, never NaN
    ``rating``    float32 explicit rating (1-5 stars...) -- or ``label`` for implicit feedback (1.0)
    ``timestamp`` int64: Unix seconds where the source has them, otherwise the position of the
                  event in the user's chronological sequence (0, 1, 2...). ``Dataset.time_unit``
                  says which.

Items: ``item_id`` plus whatever attributes exist: ``title``, ``categories`` (list of str),
``brand``, ``price``, ``text``, ``picture`` (a path or None), ``attributes`` (list of ids).

Users: ``user_id`` plus attributes (``gender``, ``age``, ``occupation``, ``zip``... where present).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError

USER, ITEM, RATING, LABEL, TIMESTAMP = "user_id", "item_id", "rating", "label", "timestamp"


@dataclass
class Dataset:
    """A loaded data set: interactions, item and user attributes, and where it came from."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    time_unit: Literal["seconds", "sequence"] = "seconds"
    extras: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        df = self.interactions
        return (
            f"Dataset({self.name!r}: {len(df):,} interactions, {df[USER].nunique():,} users, "
            f"{df[ITEM].nunique():,} items; items has {list(self.items.columns)}, "
            f"users has {list(self.users.columns)})"
        )

    def summary(self) -> pd.Series:
        """Counts and sparsity: the first numbers to look at in any data set."""
        df = self.interactions
        n_u, n_i = df[USER].nunique(), df[ITEM].nunique()
        return pd.Series(
            {
                "interactions": len(df),
                "users": n_u,
                "items": n_i,
                "density": len(df) / max(n_u * n_i, 1),
                "interactions per user (median)": float(df.groupby(USER).size().median()),
                "interactions per item (median)": float(df.groupby(ITEM).size().median()),
            },
            name=self.name,
        )


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str = "frame") -> None:
    """Raise a :class:`DataError` naming every missing column and the columns that exist."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} is missing column(s) {missing}; it has {list(df.columns)}. "
            f"Rename your columns to the kit's schema (see recsys_tf.data.schema)."
        )


def validate_interactions(
    df: pd.DataFrame,
    what: str = "interactions",
    value: str | None = None,
    require_timestamp: bool = False,
) -> pd.DataFrame:
    """Check an interactions frame and return it unchanged.

    Raises :class:`DataError` for: a non-DataFrame, an empty frame, missing ``user_id`` /
    ``item_id`` (or ``value`` / ``timestamp`` when asked for), NaN ids, and NaN or infinite values.
    """
    cols = [USER, ITEM] + ([value] if value else []) + ([TIMESTAMP] if require_timestamp else [])
    require_columns(df, cols, what)
    if len(df) == 0:
        raise DataError(f"{what} is empty (0 rows): nothing to learn from. Check the filters applied before this step.")
    for col in (USER, ITEM):
        n_nan = int(df[col].isna().sum())
        if n_nan:
            raise DataError(
                f"{what} has {n_nan:,} row(s) with a missing {col} (NaN/None). "
                f"Drop or repair them first, e.g. with recsys_tf.data.cleaning.drop_missing()."
            )
    for col in [c for c in (value, TIMESTAMP if require_timestamp else None) if c]:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = int((~np.isfinite(vals.to_numpy(dtype="float64"))).sum())
        if bad:
            raise DataError(f"{what} has {bad:,} row(s) whose {col} is missing or not a finite number.")
    return df


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """An empty frame with the given columns (for data sets without user attributes, say)."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
