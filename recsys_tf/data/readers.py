"""Strict, vectorized readers for delimited text files: malformed lines are named, never skipped."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from recsys_tf.data.schema import not_int64
from recsys_tf.errors import DataError

_UNIT_SEP = "\x1f"  # stands in for multi-character separators such as MovieLens-1M's "::"


def _line_numbers(mask: np.ndarray, header: bool, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)[:limit] + 1 + int(header)
    more = "" if mask.sum() <= limit else f" and {int(mask.sum()) - limit:,} more"
    return ", ".join(str(r) for r in rows) + more


_EXTRA = "__extra_field__"


def to_integers(values: pd.Series, path: str | Path, col: str, fmt: str, first_line: int = 1) -> np.ndarray:
    """Text or numbers -> int64, refusing what a cast would change: 1.5 (-> 1), 2**70 or 1e30 (-> INT64_MIN).

    ``first_line`` is the file line of the row labelled 0 in ``values``' index, so errors name real lines.
    """
    nums = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_signed_integer_dtype(nums.dtype):
        return nums.to_numpy(np.int64)
    f = nums.to_numpy(dtype="float64", na_value=np.nan)
    bad = not_int64(f)
    if pd.api.types.is_unsigned_integer_dtype(nums.dtype):
        bad = nums.to_numpy() > np.iinfo(np.int64).max
    if bad.any():
        words = (nums.isna() & values.notna()).to_numpy()
        if words.any():
            bad, what = words, f"a non-numeric {col}"
        else:
            what = f"a {col} that is not a whole number within int64"
        rows = np.flatnonzero(bad)
        lines = np.asarray(values.index)[rows] + first_line
        raise DataError(
            f"{path}: line(s) {', '.join(str(r) for r in lines[:5])}"
            f"{'' if len(rows) <= 5 else f' and {len(rows) - 5:,} more'} have {what} "
            f"(e.g. {values.iloc[rows[0]]!r}); each line must have {fmt}."
        )
    return f.astype(np.int64)


def read_table(
    path: str | Path,
    sep: str,
    names: Sequence[str],
    numeric: Sequence[str] = (),
    required: Sequence[str] | None = None,
    encoding: str = "utf-8",
    header: bool | Sequence[str] = False,
    integer: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a delimited file into a frame, checking every line.

    ``numeric`` columns are converted to numbers and ``integer`` ones to int64 (a value such as 1.5
    or 2**70 that a cast would change is refused); ``required`` columns (default: all of ``names``)
    must be present on every line. ``header``: ``False`` (no header line), ``True`` (skip the first
    line) or the exact header fields the file must start with -- a file without its header, or with
    columns swapped or renamed, is refused rather than read with its columns mixed up. A line with
    too many or too few fields, a blank line, or a bad value raises :class:`DataError` with the
    file, the line numbers and the expected format -- nothing is silently dropped.
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(sep) > 1:
        raw = raw.replace(sep.encode(encoding), _UNIT_SEP.encode())
    the_sep = _UNIT_SEP if len(sep) > 1 else sep
    fmt = f"{len(names)} fields separated by {sep!r} ({', '.join(names)})"
    quoting = csv.QUOTE_MINIMAL if header is not False else csv.QUOTE_NONE
    if not isinstance(header, bool):
        fmt = f"a header line {sep.join(header)!r}, then lines of {fmt}"
        first = raw.split(b"\n", 1)[0].rstrip(b"\r")
        try:
            got = next(csv.reader([first.decode(encoding)], delimiter=the_sep)) if first else []
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not {encoding} text ({exc}); is the file corrupt?") from exc
        if [g.strip() for g in got] != list(header):
            raise DataError(
                f"{path}: the first line is {first[:200].decode(encoding, 'replace')!r}, but the header must be "
                f"{sep.join(header)!r} (these columns, in this order). A file without its header, or with columns "
                f"renamed or swapped, would be read wrongly; fix the first line."
            )
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            sep=the_sep,
            names=[*names, _EXTRA],
            header=None,
            skiprows=1 if header is not False else 0,
            dtype=str,
            encoding=encoding,
            keep_default_na=False,
            na_values=[""],
            quoting=quoting,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed line: {exc}. Each line must have {fmt}.") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text ({exc}); is the file corrupt?") from exc
    if len(df) == 0:
        raise DataError(f"{path} holds no rows; expected lines of {fmt}.")
    has_header = header is not False
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        raise DataError(f"{path}: line(s) {_line_numbers(blank, has_header)} are blank; each line must have {fmt}. "
                        f"Remove the blank lines.")  # fmt: skip
    extra = df[_EXTRA].notna().to_numpy()
    if extra.any():
        raise DataError(
            f"{path}: line(s) {_line_numbers(extra, has_header)} have more than {len(names)} fields "
            f"(e.g. {df[_EXTRA][extra].iloc[0]!r} after the last one); each line must have {fmt}. Is it another "
            f"file format, or another separator?"
        )
    df = df.drop(columns=_EXTRA)
    required = list(names) if required is None else list(required)
    missing = df[required].isna().any(axis=1).to_numpy()
    if missing.any():
        raise DataError(
            f"{path}: line(s) {_line_numbers(missing, has_header)} have too few fields or an empty value; "
            f"each line must have {fmt}."
        )
    for col in numeric:
        if col in integer:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = (values.isna() & df[col].notna()).to_numpy()
        if bad.any():
            raise DataError(
                f"{path}: line(s) {_line_numbers(bad, has_header)} have a non-numeric {col} "
                f"(e.g. {df[col][bad].iloc[0]!r}); each line must have {fmt}."
            )
        df[col] = values
    for col in integer:
        present = df[col].notna().to_numpy()
        values = np.zeros(len(df), np.int64)
        values[present] = to_integers(df[col][present], path, col, fmt, first_line=1 + int(has_header))
        # an optional integer column keeps its empty fields as <NA>
        df[col] = values if present.all() else pd.arrays.IntegerArray(values, ~present)
    return df


def read_sequences(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read ``user item item ...`` lines (S3Rec format) into (user, item, position) rows.

    Returns columns ``user`` (the first token), ``item`` (strings) and ``position`` (0-based
    order of the item within its line). Lines with a user but no items are kept out with a
    count in ``frame.attrs["empty_lines"]``, since they carry no interaction; a file in which no
    line has items (another separator) is refused.
    """
    path = Path(path)
    fmt = "'user item item ...' separated by spaces"
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text ({exc}); is the file corrupt or binary? Expected {fmt}.") from exc
    if "\0" in text:
        raise DataError(f"{path}: holds NUL bytes, so it is binary, not text lines of {fmt}.")
    lines = pd.Series(text.splitlines(), dtype=object)
    if len(lines) == 0:
        raise DataError(f"{path} holds no lines; expected {fmt}.")
    tokens = lines.str.split()
    blank = tokens.str.len().fillna(0).to_numpy() == 0
    if blank.any():
        raise DataError(f"{path}: line(s) {_line_numbers(blank, False)} are blank; expected {fmt}.")
    n_items = tokens.str.len().to_numpy() - 1
    if not n_items.any():
        raise DataError(f"{path}: no line has an item after its user (first line: {lines.iloc[0][:80]!r}); "
                        f"expected {fmt}. Is it another separator?")  # fmt: skip
    exploded = tokens.str[1:].explode().dropna()  # dropna: lines with a user and no items
    frame = pd.DataFrame(
        {"user": np.repeat(tokens.str[0].to_numpy(), n_items), "item": exploded.to_numpy(dtype=object)}
    )
    starts = np.repeat(np.cumsum(n_items) - n_items, n_items)
    frame["position"] = np.arange(len(frame)) - starts
    frame["line"] = np.repeat(np.arange(1, len(lines) + 1), n_items)
    frame.attrs["empty_lines"] = int((n_items == 0).sum())
    return frame
