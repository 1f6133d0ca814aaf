"""Train / validation / test splits: random, global temporal, per-user leave-last-out.

Which split matches the question? A shop recommends *tomorrow's* purchases from *today's*
data: a random split lets the model train on events that happen after the test events (it
"sees the future") and flatters it. :func:`future_leakage` measures how much.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_tf.data.schema import TIMESTAMP, USER, time_values, validate_interactions
from recsys_tf.errors import DataError


@dataclass
class Split:
    """Three disjoint parts of one interactions frame."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    strategy: str = ""

    def summary(self) -> pd.DataFrame:
        parts = {"train": self.train, "val": self.val, "test": self.test}
        return pd.DataFrame({
            "rows": {k: len(v) for k, v in parts.items()},
            "users": {k: v[USER].nunique() for k, v in parts.items()},
            "first": {k: pd.to_datetime(v[TIMESTAMP].min(), unit="s") if len(v) and TIMESTAMP in v else None for k, v in parts.items()},
            "last": {k: pd.to_datetime(v[TIMESTAMP].max(), unit="s") if len(v) and TIMESTAMP in v else None for k, v in parts.items()},
        })  # fmt: skip


def _check_fractions(test_size: float, val_size: float) -> None:
    if not (0 <= test_size < 1 and 0 <= val_size < 1 and test_size + val_size < 1):
        raise ValueError(f"test_size and val_size must be in [0, 1) and sum below 1; got {test_size}, {val_size}.")


def random_split(df: pd.DataFrame, test_size: float = 0.2, val_size: float = 0.1, seed: int = 0) -> Split:
    """Shuffle rows and cut them by share: the classic (and, for time-ordered data, leaky) split."""
    validate_interactions(df)
    _check_fractions(test_size, val_size)
    perm = np.random.default_rng(seed).permutation(len(df))
    n_test, n_val = int(round(test_size * len(df))), int(round(val_size * len(df)))
    parts = np.split(perm, [n_test, n_test + n_val])
    test, val, train = (df.iloc[np.sort(p)].reset_index(drop=True) for p in parts)
    return Split(train, val, test, "random")


def temporal_split(df: pd.DataFrame, test_size: float = 0.2, val_size: float = 0.1) -> Split:
    """Global time cut: the last ``test_size`` of events (by time) are test, the ``val_size`` before them validation.

    Every training event happens before every validation event, which happens before every test
    event: exactly the situation of a model deployed on a date. Ties at a cut stay together.
    """
    validate_interactions(df, require_timestamp=True)
    _check_fractions(test_size, val_size)
    ts = time_values(df)
    t_test = np.quantile(ts, 1 - test_size, method="higher") if test_size else np.inf
    t_val = np.quantile(ts, 1 - test_size - val_size, method="higher") if val_size else t_test
    train, val, test = df[ts < t_val], df[(ts >= t_val) & (ts < t_test)], df[ts >= t_test]
    if not len(train):
        raise DataError(
            f"temporal_split left no training rows: {int((ts == ts.min()).sum()):,} of {len(ts):,} events share the "
            f"earliest time, and ties at a cut stay together. Use leave_last_out or random_split, or fix the timestamps."
        )
    for name, part, size in (("validation", val, val_size), ("test", test, test_size)):
        if size and not len(part):
            warnings.warn(f"temporal_split: the {name} part is empty (ties at the cut moved its events to "
                          f"the next part).", stacklevel=2)  # fmt: skip
    return Split(*(p.reset_index(drop=True) for p in (train, val, test)), strategy="temporal")


def leave_last_out(df: pd.DataFrame, n_test: int = 1, n_val: int = 1, min_train: int = 1) -> Split:
    """Per user: the last ``n_test`` interactions are test, the ``n_val`` before them validation.

    The NCF / SASRec protocol. Users with fewer than ``n_test + n_val + min_train`` interactions
    keep everything in training (they still help learn item embeddings); ``Split.train.attrs``
    counts them. Ties in time keep the input order (stable sort).
    """
    validate_interactions(df, require_timestamp=True)
    order = np.lexsort((np.arange(len(df)), time_values(df), pd.factorize(df[USER], sort=True)[0]))
    d = df.iloc[order]
    users = d[USER].to_numpy()
    size = d.groupby(USER, sort=False)[USER].transform("size").to_numpy()
    # position from the end within the user's history: 0 = latest
    starts = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1]
    pos = np.arange(len(d)) - np.repeat(starts, np.diff(np.r_[starts, len(d)]))
    from_end = size - 1 - pos
    eligible = size >= n_test + n_val + min_train
    test_m = eligible & (from_end < n_test)
    val_m = eligible & (from_end >= n_test) & (from_end < n_test + n_val)
    train = d[~test_m & ~val_m].reset_index(drop=True)
    train.attrs["users_train_only"] = int(pd.Series(users[~eligible]).nunique())
    return Split(train, d[val_m].reset_index(drop=True), d[test_m].reset_index(drop=True), "leave-last-out")


def future_leakage(split: Split) -> float:
    """Share of training rows that happen after the *earliest* test row of the same user.

    0 for temporal and leave-last-out splits; large for random splits of time-ordered data.
    """
    if not len(split.test) or not len(split.train):
        return 0.0
    first_test = split.test.groupby(USER)[TIMESTAMP].min()
    t = split.train[USER].map(first_test)
    return float((split.train[TIMESTAMP] > t).mean())
