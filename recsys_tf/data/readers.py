"""Strict, vectorized readers for delimited text files: malformed lines are named, never skipped."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError

_UNIT_SEP = "\x1f"  # stands in for multi-character separators such as MovieLens-1M's "::"


def _line_numbers(mask: np.ndarray, header: bool, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)[:limit] + 1 + int(header)
    more = "" if mask.sum() <= limit else f" and {int(mask.sum()) - limit:,} more"
    return ", ".join(str(r) for r in rows) + more


def read_table(
    path: str | Path,
    sep: str,
    names: Sequence[str],
    numeric: Sequence[str] = (),
    required: Sequence[str] | None = None,
    encoding: str = "utf-8",
    header: bool = False,
) -> pd.DataFrame:
    """Read a delimited file into a frame, checking every line.

    ``numeric`` columns are converted to numbers; ``required`` columns (default: all of
    ``names``) must be present on every line. A line with too many or too few fields or a
    non-numeric value raises :class:`DataError` with the file, the line numbers and the expected
    format -- nothing is silently dropped.
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(sep) > 1:
        raw = raw.replace(sep.encode(encoding), _UNIT_SEP.encode())
    fmt = f"{len(names)} fields separated by {sep!r} ({', '.join(names)})"
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            sep=_UNIT_SEP if len(sep) > 1 else sep,
            names=list(names),
            header=0 if header else None,
            dtype=str,
            encoding=encoding,
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_MINIMAL if header else csv.QUOTE_NONE,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed line: {exc}. Each line must have {fmt}.") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text ({exc}); is the file corrupt?") from exc
    if len(df) == 0:
        raise DataError(f"{path} holds no rows; expected lines of {fmt}.")
    required = list(names) if required is None else list(required)
    missing = df[required].isna().any(axis=1).to_numpy()
    if missing.any():
        raise DataError(
            f"{path}: line(s) {_line_numbers(missing, header)} have too few fields or an empty value; "
            f"each line must have {fmt}."
        )
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = (values.isna() & df[col].notna()).to_numpy()
        if bad.any():
            raise DataError(
                f"{path}: line(s) {_line_numbers(bad, header)} have a non-numeric {col} "
                f"(e.g. {df[col][bad].iloc[0]!r}); each line must have {fmt}."
            )
        df[col] = values
    return df


def read_sequences(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read ``user item item ...`` lines (S3Rec format) into (user, item, position) rows.

    Returns columns ``user`` (the first token), ``item`` (strings) and ``position`` (0-based
    order of the item within its line). Lines with a user but no items are kept out with a
    count in ``frame.attrs["empty_lines"]``, since they carry no interaction.
    """
    path = Path(path)
    lines = pd.Series(path.read_text(encoding=encoding).splitlines(), dtype=object)
    if len(lines) == 0:
        raise DataError(f"{path} holds no lines; expected 'user item item ...' per line.")
    tokens = lines.str.split()
    blank = tokens.str.len().fillna(0).to_numpy() == 0
    if blank.any():
        raise DataError(f"{path}: line(s) {_line_numbers(blank, False)} are blank; expected 'user item item ...'.")
    n_items = tokens.str.len().to_numpy() - 1
    exploded = tokens.str[1:].explode().dropna()  # dropna: lines with a user and no items
    frame = pd.DataFrame(
        {"user": np.repeat(tokens.str[0].to_numpy(), n_items), "item": exploded.to_numpy(dtype=object)}
    )
    starts = np.repeat(np.cumsum(n_items) - n_items, n_items)
    frame["position"] = np.arange(len(frame)) - starts
    frame.attrs["empty_lines"] = int((n_items == 0).sum())
    return frame
