"""Per-user item sequences for sequence-aware recommenders (GRU4Rec, SASRec, BERT4Rec).

A :class:`Sequences` holds every user's items oldest first in one flat array (CSR layout):
user ``r``'s items are ``codes[offsets[r]:offsets[r + 1]]``. Item codes run from 1 to
``n_items``; code 0 is padding. Everything is built and sliced with NumPy on whole arrays -- no
Python loop over users or events -- so ML-1M-sized logs take well under a second.

The protocol of SASRec and S3-Rec is :func:`leave_one_out`: each user's last item is the test
target, the one before it the validation target, the rest training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_tf.data.schema import ITEM, USER, time_values, validate_interactions
from recsys_tf.errors import DataError

PAD = 0


@dataclass(frozen=True)
class Sequences:
    """Users' item sequences, oldest first; see the module docstring for the layout."""

    users: np.ndarray  # raw user id of each sequence
    offsets: np.ndarray  # int64, len(users) + 1
    codes: np.ndarray  # int32 item codes, 1..n_items
    item_ids: np.ndarray  # raw item id of code c is item_ids[c - 1]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.users)

    def padded(self, maxlen: int, end: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """``(rows, maxlen)`` int32: each row's last ``maxlen`` items before position ``end`` (exclusive,
        counted from the row's start; default: the whole sequence), left-padded with 0.

        Longer histories are truncated to their most recent ``maxlen`` items, as SASRec does.
        """
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        start = self.offsets[rows]
        stop = start + (self.lengths[rows] if end is None else np.asarray(end))
        idx = stop[:, None] - maxlen + np.arange(maxlen)[None, :]
        valid = idx >= start[:, None]
        return np.where(valid, self.codes[np.clip(idx, 0, max(len(self.codes) - 1, 0))], PAD).astype(np.int32)


def to_sequences(df: pd.DataFrame, item_ids: np.ndarray | None = None) -> Sequences:
    """Interactions (``user_id``, ``item_id``, ``timestamp``) -> :class:`Sequences` ordered by time.

    Ties in time keep the input order. ``item_ids``: the catalogue's raw ids to code against
    (default: the items of ``df``, sorted); an item outside it is a DataError.
    """
    validate_interactions(df, require_timestamp=True)  # empty frames, missing columns, NaN ids: named errors
    user_codes, users = pd.factorize(df[USER], sort=True)
    order = np.lexsort((np.arange(len(df)), time_values(df), user_codes))
    items = df[ITEM].to_numpy()[order]
    if item_ids is None:
        item_ids, codes = np.unique(items, return_inverse=True)
    else:
        item_ids = np.asarray(item_ids)
        codes = np.searchsorted(item_ids, items)
        bad = (codes >= len(item_ids)) | (item_ids[np.clip(codes, 0, len(item_ids) - 1)] != items)
        if bad.any():
            raise DataError(f"{int(bad.sum())} interaction(s) name items outside the catalogue, e.g. {items[bad][:5].tolist()}.")
    counts = np.bincount(user_codes, minlength=len(users))
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return Sequences(np.asarray(users), offsets, (np.asarray(codes) + 1).astype(np.int32), np.asarray(item_ids))


@dataclass(frozen=True)
class SequenceSplit:
    """Leave-one-out by time: per user, ``train`` is the sequence without its last two items;
    validation predicts item ``-2`` from ``train``; test predicts item ``-1`` from everything before it.

    Users with fewer than 3 items stay whole in ``train`` and are not evaluated (``n_short``).
    The ``*_frame`` tables are ``user_id, item_id, timestamp`` rows for the kit's frame-based APIs.
    """

    full: Sequences
    train: Sequences
    val_frame: pd.DataFrame
    test_frame: pd.DataFrame
    n_short: int

    @property
    def train_frame(self) -> pd.DataFrame:
        """The training part as interactions (``timestamp`` = position in the sequence), for ``fit``."""
        t = self.train
        pos = np.arange(len(t.codes)) - np.repeat(t.offsets[:-1], t.lengths)
        return pd.DataFrame({USER: np.repeat(t.users, t.lengths), ITEM: t.item_ids[t.codes - 1], "timestamp": pos})


def leave_one_out(seq: Sequences) -> SequenceSplit:
    """The SASRec / S3-Rec protocol: last item = test, second-to-last = validation, the rest training."""
    n = seq.lengths
    evaluated = n >= 3
    keep = np.where(evaluated, n - 2, n)
    pos = np.arange(len(seq.codes)) - np.repeat(seq.offsets[:-1], n)  # position within the user's sequence
    in_train = pos < np.repeat(keep, n)
    train = Sequences(seq.users, np.r_[0, np.cumsum(keep)].astype(np.int64), seq.codes[in_train], seq.item_ids)

    def frame(back: int) -> pd.DataFrame:
        rows = np.flatnonzero(evaluated)
        at = seq.offsets[rows + 1] - back
        return pd.DataFrame({USER: seq.users[rows], ITEM: seq.item_ids[seq.codes[at] - 1], "timestamp": n[rows] - back})

    return SequenceSplit(seq, train, frame(2), frame(1), int((~evaluated).sum()))


def read_candidates(path, users: np.ndarray) -> np.ndarray:
    """S3-Rec's ``*_sample.txt`` (``user neg1 ... neg99`` per line) -> raw negatives for ``users``, in order.

    A user missing from the file is a DataError (the published negatives must cover every test user).
    """
    from recsys_tf.data.readers import read_sequences, to_integers

    seq = read_sequences(path)
    tokens = pd.Series(seq["item"].to_numpy(), index=seq["line"].to_numpy() - 1)
    items = to_integers(tokens, path, "item id", "'user item item ...' with integer ids")
    user = to_integers(pd.Series(seq["user"].to_numpy(), index=seq["line"].to_numpy() - 1), path, "user id", "'user item ...'")
    counts = pd.Series(user).value_counts()
    width = int(counts.max())
    if (counts != width).any():
        raise DataError(f"{path}: every user needs the same number of negatives; found {sorted(counts.unique())[:5]}.")
    table = pd.DataFrame(items.reshape(-1, width), index=user.reshape(-1, width)[:, 0])
    missing = ~pd.Index(users).isin(table.index)
    if missing.any():
        raise DataError(f"{path}: no negatives for user(s) {np.asarray(users)[missing][:5].tolist()}.")
    return table.loc[users].to_numpy()
