"""The content-based baseline: recommend items whose features resemble what the user interacted with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.models.base import Recommender
from recsys_tf.utils import unit_rows


class ContentKNN(Recommender):
    """``score(u, i) = cos(p_u, c_i)`` with ``p_u`` the mean content vector of ``u``'s training items.

    The classic content-based recommender (Pazzani & Billsus, "Content-based recommendation
    systems", The Adaptive Web, 2007): no collaborative signal at all, so it ranks new items as
    easily as old ones -- and is the baseline a hybrid model must beat on new items.
    ``item_features``: a frame indexed by item_id with numeric columns, one row per catalog item.
    """

    name = "content-knn"

    def __init__(self, item_features: pd.DataFrame | None = None) -> None:
        super().__init__()
        self.item_features = item_features

    def _fit(self, train: pd.DataFrame, **kwargs: Any) -> None:
        import scipy.sparse as sp

        if self.item_features is None:
            raise DataError("ContentKNN needs item_features: a frame indexed by item_id with numeric columns.")
        c = self._per_item(self.item_features, "content features")
        self.content_ = unit_rows(c)
        u, i = train["user_idx"].to_numpy(), train["item_idx"].to_numpy()
        x = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(self.n_users, self.n_items))
        p = np.asarray(x @ self.content_)
        self.profiles_ = unit_rows(p)

    def _score_codes(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        if items is None:
            return self.profiles_[users] @ self.content_.T
        return np.einsum("nd,nd->n", self.profiles_[users], self.content_[items])

    def fold_in_scores(self, histories: Sequence[Sequence]) -> np.ndarray:
        """Scores of every item for shoppers known only by their items (raw ids): the same profile as in training."""
        flat, lengths = self._history_codes(histories)
        p = np.add.reduceat(self.content_[flat], np.cumsum(lengths) - lengths, axis=0)
        return unit_rows(p) @ self.content_.T

    def _save_weights(self, folder: Path) -> None:
        np.savez(folder / "content.npz", content=self.content_, profiles=self.profiles_)

    def _load_weights(self, folder: Path) -> None:
        with np.load(folder / "content.npz") as z:
            self.content_, self.profiles_ = z["content"], z["profiles"]
