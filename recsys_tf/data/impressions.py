"""Impressions for click-through prediction: which shown items were clicked, and what the shopper did before.

In the shop's log a ``view`` is an impression (the item was shown) and a ``click`` in the same
session on the same item makes it a positive. The behaviour sequence of an impression is the
shopper's clicks strictly before it, most recent last -- the input of DIN (Zhou et al., KDD 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_tf.data.schema import ITEM, USER
from recsys_tf.errors import DataError

ATTRIBUTES = ("category", "brand", "price_tier")


def ctr_samples(events: pd.DataFrame) -> pd.DataFrame:
    """One row per view: ``user_id, item_id, session_id, timestamp, label`` (1 when the item was
    clicked in that session). Needs the columns of the shop's event log."""
    need = {USER, ITEM, "event", "timestamp", "session_id"}
    missing = need - set(events.columns)
    if missing:
        raise DataError(f"events lack column(s) {sorted(missing)}; ctr_samples needs {sorted(need)} (the shop's event log).")
    views = events[events["event"] == "view"]
    if not len(views):
        raise DataError("no 'view' events: there are no impressions to learn click-through from.")
    keys = [USER, ITEM, "session_id"]
    clicked = events.loc[events["event"] == "click", keys].drop_duplicates()
    out = views[[*keys, "timestamp"]].merge(clicked.assign(label=1.0), on=keys, how="left")
    return out.assign(label=out["label"].fillna(0.0).astype(np.float32)).reset_index(drop=True)


@dataclass(frozen=True)
class Behaviours:
    """Each shopper's clicks sorted by time (CSR): ``items[offsets[r]:offsets[r+1]]`` with ``times``."""

    users: np.ndarray
    offsets: np.ndarray
    items: np.ndarray  # raw item ids
    times: np.ndarray

    @classmethod
    def from_clicks(cls, clicks: pd.DataFrame) -> "Behaviours":
        for col in (USER, ITEM, "timestamp"):
            if col not in clicks:
                raise DataError(f"clicks lack the column {col!r}.")
        order = np.lexsort((np.arange(len(clicks)), clicks["timestamp"].to_numpy(), clicks[USER].to_numpy()))
        users_sorted = clicks[USER].to_numpy()[order]
        users, counts = np.unique(users_sorted, return_counts=True)
        return cls(users, np.r_[0, np.cumsum(counts)].astype(np.int64), clicks[ITEM].to_numpy()[order],
                   clicks["timestamp"].to_numpy()[order].astype(np.int64))  # fmt: skip

    def before(self, users: np.ndarray, times: np.ndarray, maxlen: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``maxlen`` clicked item ids of each (user, time) strictly before ``time``, left-padded;
        and a mask of which slots hold an item. Vectorized: one search over the sorted clicks."""
        users, times = np.asarray(users), np.asarray(times, dtype=np.int64)
        row = np.searchsorted(self.users, users)
        known = (row < len(self.users)) & (self.users[np.clip(row, 0, len(self.users) - 1)] == users)
        row = np.clip(row, 0, len(self.users) - 1)
        start = self.offsets[row]
        # one global search on (user block, time) keys: the first click at or after `time` in the block
        base = int(self.times.min()) if len(self.times) else 0
        span = (int(self.times.max()) - base + 3) if len(self.times) else 2  # keys 1..span-2; span-1: after all
        owner = np.repeat(np.arange(len(self.users), dtype=np.int64), np.diff(self.offsets))
        keys = owner * span + (self.times - base + 1)
        query = row.astype(np.int64) * span + np.clip(times - base + 1, 0, span - 1)
        end = np.where(known, np.searchsorted(keys, query, side="left"), start)
        idx = end[:, None] - maxlen + np.arange(maxlen)[None, :]
        valid = (idx >= start[:, None]) & known[:, None]
        items = np.where(valid, self.items[np.clip(idx, 0, max(len(self.items) - 1, 0))], 0) if len(self.items) else np.zeros_like(idx)
        return items, valid

