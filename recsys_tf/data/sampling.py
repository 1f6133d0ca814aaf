"""Negative sampling and sampled candidate sets, vectorized with rejection.

A user's *seen* items are looked up as sorted ``user * n_items + item`` keys with
``np.searchsorted``: one array operation for millions of draws.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.utils import first_occurrence

Strategy = Literal["uniform", "popularity"]


def pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Sorted unique int64 keys of (user, item) pairs: the seen-set used for rejection."""
    return np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))


def _is_seen(keys: np.ndarray, users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    q = users * n_items + items
    pos = np.searchsorted(keys, q)
    pos = np.minimum(pos, len(keys) - 1)
    return keys[pos] == q if len(keys) else np.zeros(len(q), bool)


def _item_sampler(n_items: int, strategy: Strategy, item_counts: np.ndarray | None, rng: np.random.Generator):
    if strategy == "uniform":
        return lambda size: rng.integers(0, n_items, size)
    if strategy == "popularity":
        if item_counts is None or len(item_counts) != n_items:
            raise ValueError("popularity sampling needs item_counts of length n_items.")
        cdf = np.cumsum(np.asarray(item_counts, float) + 1e-12)
        cdf /= cdf[-1]
        return lambda size: np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_items - 1)
    raise ValueError(f"strategy must be 'uniform' or 'popularity', got {strategy!r}.")


def sample_negatives(users: np.ndarray, seen: np.ndarray, n_items: int, n_neg: int = 4,
                     strategy: Strategy = "uniform", item_counts: np.ndarray | None = None,
                     seed: int | np.random.Generator = 0, max_rounds: int = 50) -> np.ndarray:  # fmt: skip
    """``len(users) x n_neg`` items each user has not interacted with (training negatives).

    ``seen``: keys from :func:`pair_keys` over the training interactions. Draws are uniform over
    items or proportional to ``item_counts`` (popularity); seen items are rejected and redrawn.
    Repeats within a row are allowed (as in NCF training); use :func:`sample_candidates` for
    distinct evaluation candidates.
    """
    rng = np.random.default_rng(seed)
    users = np.asarray(users, np.int64)
    draw = _item_sampler(n_items, strategy, item_counts, rng)
    u = np.repeat(users, n_neg)
    out = draw(len(u))
    bad = _is_seen(seen, u, out, n_items)
    for _ in range(max_rounds):
        if not bad.any():
            break
        idx = np.flatnonzero(bad)
        out[idx] = draw(len(idx))
        bad[idx] = _is_seen(seen, u[idx], out[idx], n_items)
    if bad.any():
        full = np.unique(u[bad])[:5].tolist()
        raise DataError(f"could not find unseen items for user(s) {full}: they have interacted with (almost) every item.")
    return out.reshape(len(users), n_neg)


def sample_candidates(users: np.ndarray, positives: np.ndarray, seen: np.ndarray, n_items: int,
                      n_neg: int = 99, strategy: Strategy = "uniform", item_counts: np.ndarray | None = None,
                      seed: int | np.random.Generator = 0) -> np.ndarray:  # fmt: skip
    """Evaluation candidate sets (the NCF protocol): ``users x (1 + n_neg)`` with the held-out
    positive in column 0 and ``n_neg`` distinct items the user never interacted with after it.

    ``seen`` should hold *all* the user's known interactions (train, validation and test), so that
    no true positive is sampled as a negative.
    """
    rng = np.random.default_rng(seed)
    users, positives = np.asarray(users, np.int64), np.asarray(positives, np.int64)
    draw = _item_sampler(n_items, strategy, item_counts, rng)
    n_seen = pd.Series(seen // n_items).value_counts().reindex(np.unique(users)).fillna(0)
    short = n_seen[n_items - n_seen < n_neg + 1]
    if len(short):
        raise DataError(f"user(s) {short.index[:5].tolist()} have fewer than {n_neg} unseen items to sample from.")
    out = np.empty((len(users), n_neg), np.int64)
    todo = np.arange(len(users))
    width = 2 * n_neg + 8
    for _ in range(100):  # rows that drew too few valid items are redrawn whole, with more width
        if not len(todo):
            break
        cand = draw(len(todo) * width).reshape(len(todo), width)
        u = np.repeat(users[todo], width)
        ok = ~_is_seen(seen, u, cand.ravel(), n_items).reshape(cand.shape)
        ok &= cand != positives[todo, None]
        ok &= first_occurrence(cand)  # distinct items within a row
        enough = ok.sum(axis=1) >= n_neg
        rows = np.flatnonzero(enough)
        rank = np.cumsum(ok[rows], axis=1)
        take = ok[rows] & (rank <= n_neg)
        out[todo[rows]] = cand[rows][take].reshape(len(rows), n_neg)
        todo = todo[~enough]
        width *= 2
    if len(todo):
        raise DataError(f"could not draw {n_neg} distinct unseen items for user(s) {users[todo][:5].tolist()}.")
    return np.column_stack([positives, out])
