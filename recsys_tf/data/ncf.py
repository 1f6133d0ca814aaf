"""The leave-one-out files of Neural Collaborative Filtering (He et al., WWW 2017).

Per user, the latest interaction is the test item, ranked against 99 sampled negatives
(``*.test.negative``). In the published ML-1M file 156 of 6,040 users have their test item among
their own negatives; NCF's ``evaluate.py`` keeps scores in a dict, so such a user ranks 99
distinct items. :func:`load_ncf` keeps the file as published and reports the count; the
evaluation code de-duplicates.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_tf.data.download import fetch
from recsys_tf.data.readers import read_table
from recsys_tf.data.schema import ITEM, RATING, TIMESTAMP, USER, not_int64
from recsys_tf.errors import DataError


@dataclass
class NCFData:
    """NCF split: ``test`` (one row per user), ``negatives`` (users x 99 item ids), ``train`` if loaded."""

    name: str
    test: pd.DataFrame
    negatives: np.ndarray
    train: pd.DataFrame | None = None

    @property
    def n_test_in_negatives(self) -> int:
        """Users whose test item is among their own sampled negatives (156 in ML-1M)."""
        return int((self.negatives == self.test[ITEM].to_numpy()[:, None]).any(axis=1).sum())

    def candidates(self) -> np.ndarray:
        """Users x 100 candidate items: the test item in column 0, then the 99 negatives."""
        return np.column_stack([self.test[ITEM].to_numpy(), self.negatives])


def read_ncf_ratings(path: str | Path) -> pd.DataFrame:
    """``*.train.rating`` / ``*.test.rating``: ``user \\t item \\t rating \\t timestamp``, 0-based ids."""
    cols = [USER, ITEM, RATING, TIMESTAMP]
    return read_table(path, "\t", cols, numeric=cols, integer=[USER, ITEM, TIMESTAMP]).astype(
        {USER: "int64", ITEM: "int64", RATING: "float32", TIMESTAMP: "int64"}
    )


def read_ncf_negatives(path: str | Path, test: pd.DataFrame | None = None, n_negatives: int = 99) -> np.ndarray:
    """``*.test.negative``: ``(user,item)`` then ``n_negatives`` item ids per line, tab-separated.

    When ``test`` is given, each line's ``(user,item)`` must match the same row of ``test``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); is the file corrupt or binary? "
                        f"Expected '(user,item)' then {n_negatives} item ids per line.") from exc  # fmt: skip
    text = text.replace("(", "").replace(")", "").replace(",", "\t")
    try:
        arr = pd.read_csv(io.StringIO(text), sep="\t", header=None, dtype="float64", skip_blank_lines=False).to_numpy()
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: malformed line ({exc}); expected '(user,item)' then {n_negatives} item ids.") from exc
    if arr.shape[1] != n_negatives + 2 or np.isnan(arr).any():
        bad = np.flatnonzero(np.isnan(arr).any(axis=1))[:5] + 1
        raise DataError(
            f"{path}: expected '(user,item)' then {n_negatives} tab-separated item ids per line; "
            f"found {arr.shape[1] - 2} columns" + (f", short or non-numeric line(s) {list(bad)}" if len(bad) else "") + "."
        )
    cast_changes = not_int64(arr)
    if cast_changes.any():
        bad = np.flatnonzero(cast_changes.any(axis=1))[:5] + 1
        raise DataError(f"{path}: line(s) {list(bad)} hold ids that are not whole numbers within int64.")
    arr = arr.astype(np.int64)
    if test is not None:
        if len(test) != len(arr):
            raise DataError(f"{path} has {len(arr):,} lines but the test ratings have {len(test):,}.")
        mismatch = (arr[:, 0] != test[USER].to_numpy()) | (arr[:, 1] != test[ITEM].to_numpy())
        if mismatch.any():
            raise DataError(f"{path}: line(s) {list(np.flatnonzero(mismatch)[:5] + 1)} do not match test.rating.")
    return arr[:, 2:]


def load_ncf(name: str = "ml-1m", include_train: bool = False) -> NCFData:
    """Load the NCF test split (and the training file when ``include_train``).

    ``name``: ``"ml-1m"`` (test + negatives; train from the NCF repository) or ``"pinterest-20"``
    (test only; its negatives are not available, so ``negatives`` is empty).
    """
    dataset = f"ncf-{name}"
    test = read_ncf_ratings(fetch(dataset, f"{name}.test.rating"))
    if name == "ml-1m":
        negatives = read_ncf_negatives(fetch(dataset, f"{name}.test.negative"), test)
    else:
        negatives = np.empty((len(test), 0), dtype=np.int64)
    train = read_ncf_ratings(fetch(dataset, f"{name}.train.rating")) if include_train else None
    return NCFData(name=name, test=test, negatives=negatives, train=train)
