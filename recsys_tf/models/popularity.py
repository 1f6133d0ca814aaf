"""The popularity baseline: recommend what most people interacted with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_tf.models.base import Recommender


class Popularity(Recommender):
    """Score of item ``i`` = number of training interactions with ``i`` (the same for every user).

    Simple and strong on sparse data; every personalised model must beat it on held-out data.
    """

    name = "popularity"

    def _fit(self, train: pd.DataFrame, **kwargs) -> None:
        self.counts_ = np.bincount(train["item_idx"].to_numpy(), minlength=self.n_items).astype(np.float32)

    def _score_codes(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        if items is None:
            return np.broadcast_to(self.counts_, (len(users), self.n_items)).copy()
        return self.counts_[items]

    def _save_weights(self, folder: Path) -> None:
        np.save(folder / "counts.npy", self.counts_)

    def _load_weights(self, folder: Path) -> None:
        self.counts_ = np.load(folder / "counts.npy")
