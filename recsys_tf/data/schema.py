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
        check_ids(df, col, what)
    if value:
        numeric_values(df, value, what)
    if require_timestamp:
        time_values(df, what)
    return df


_INT64_MAX = np.iinfo(np.int64).max


def not_int64(values: np.ndarray) -> np.ndarray:
    """Mask of float values that an int64 cast would change: fractions, NaN, infinities, |x| >= 2**63."""
    return ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) >= 2.0**63)


def check_ids(df: pd.DataFrame, col: str, what: str = "interactions") -> None:
    """Ids are whole numbers that fit in int64, or strings; anything a cast would silently change is refused.

    Float ids such as 1.7 and 1.2 would both become user 1 (two shoppers merged); uint64 ids above
    2**63 - 1 would wrap to negative numbers; 1e30 would become INT64_MIN.
    """
    raw = df[col]
    if pd.api.types.is_float_dtype(raw.dtype):
        vals = raw.to_numpy(dtype="float64", na_value=np.nan)
        bad = not_int64(vals) & ~np.isnan(vals)  # NaN ids are reported by validate_interactions
        if bad.any():
            raise DataError(
                f"{what}: column {col!r} holds {int(bad.sum()):,} id(s) that are not whole numbers within int64 "
                f"({_examples(df, bad, col)}); casting would merge or corrupt ids. Map them to integers or "
                f"strings explicitly (e.g. df[{col!r}] = df[{col!r}].astype(str))."
            )
    elif pd.api.types.is_unsigned_integer_dtype(raw.dtype):
        bad = raw.to_numpy() > _INT64_MAX
        if bad.any():
            raise DataError(
                f"{what}: column {col!r} holds {int(bad.sum()):,} id(s) above 2**63 - 1 ({_examples(df, bad, col)}), "
                f"which would wrap negative as int64. Convert them to strings: df[{col!r}] = df[{col!r}].astype(str)."
            )
    elif raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) in ("mixed-integer", "mixed"):
        raise DataError(
            f"{what}: column {col!r} mixes strings and numbers (e.g. 1 and '1' would be two ids). "
            f"Use one type: df[{col!r}] = df[{col!r}].astype(str)."
        )


def time_values(df: pd.DataFrame, what: str = "interactions") -> np.ndarray:
    """The ``timestamp`` column as numbers that sort in time order (datetimes as nanoseconds).

    Numbers stored as text ("9", "10") are compared as numbers, never as text; anything that is
    neither a number nor a datetime is refused.
    """
    raw = df[TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        if raw.isna().any():
            raise DataError(f"{what}: column 'timestamp' has {int(raw.isna().sum()):,} missing time(s).")
        return raw.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    if pd.api.types.is_integer_dtype(raw.dtype) and not raw.isna().any():
        return raw.to_numpy(dtype=np.int64)  # exact: float64 would round nanosecond stamps
    return numeric_values(df, TIMESTAMP, what)


def _examples(df: pd.DataFrame, mask: np.ndarray, col: str, limit: int = 3) -> str:
    rows = df.loc[mask, col].head(limit)
    return ", ".join(f"row {idx!r}: {val!r}" for idx, val in rows.items())


def numeric_values(df: pd.DataFrame, col: str, what: str = "interactions", allow_nan: bool = False) -> np.ndarray:
    """``df[col]`` as float64, or a :class:`DataError` naming the column, the count and example rows.

    Strings that are not numbers (``rating='five'``) and NaN / inf values are refused; with
    ``allow_nan`` missing values pass (infinities and non-numbers still do not).
    """
    raw = df[col]
    if raw.dtype == bool or pd.api.types.is_numeric_dtype(raw.dtype):
        vals = raw.to_numpy(dtype="float64", na_value=np.nan)
    else:
        coerced = pd.to_numeric(raw, errors="coerce")
        words = (coerced.isna() & raw.notna()).to_numpy()
        if words.any():
            raise DataError(
                f"{what}: column {col!r} must hold numbers, but {int(words.sum()):,} row(s) do not "
                f"({_examples(df, words, col)}). Convert them first, e.g. with a mapping to numbers."
            )
        vals = coerced.to_numpy(dtype="float64", na_value=np.nan)
    bad = np.isinf(vals) if allow_nan else ~np.isfinite(vals)
    if bad.any():
        kind = "infinite" if allow_nan else "missing (NaN) or infinite"
        raise DataError(
            f"{what}: column {col!r} has {int(bad.sum()):,} {kind} value(s) ({_examples(df, bad, col)}). "
            f"A model trained on them learns NaN; drop or repair those rows first."
        )
    return vals


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """An empty frame with the given columns (for data sets without user attributes, say)."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
