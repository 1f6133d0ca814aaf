"""A hybrid recommender: collaborative ids plus item content, able to rank items never seen in training."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.models.keras_base import KerasRecommender
from recsys_tf.models.nets import HybridNet


class HybridRecommender(KerasRecommender):
    """Matrix factorization whose item vectors add a learned projection of content features.

    ``item_features``: a frame indexed by ``item_id`` with numeric columns (text vectors, picture
    descriptors, one-hot category / brand, price...), one row for every item of the catalog passed
    to ``fit``. Items without training interactions are scored from their content alone (see
    :class:`~recsys_tf.models.nets.HybridNet`); ``id_dropout`` is the share of training samples
    that must do without the item id.
    """

    name = "hybrid"
    net_class = HybridNet
    _param_names = KerasRecommender._param_names + ("factors", "id_dropout")

    def __init__(self, item_features: pd.DataFrame | None = None, factors: int = 32, id_dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item_features, self.factors, self.id_dropout = item_features, factors, id_dropout
        self._content = self._has_id = None

    def _fit(self, train: pd.DataFrame, val: pd.DataFrame | None = None, init_net=None) -> None:
        if self.item_features is None:
            raise DataError("HybridRecommender needs item_features: a frame indexed by item_id with numeric columns.")
        feats = self.item_features.reindex(self.item_ids)
        missing = feats.isna().any(axis=1)
        if missing.any():
            raise DataError(f"{int(missing.sum())} item(s) have no (complete) content features, e.g. "
                            f"{self.item_ids[missing.to_numpy()][:5].tolist()}; give every catalog item a row.")  # fmt: skip
        self._content = feats.to_numpy(np.float32)
        self._has_id = np.zeros(self.n_items, np.float32)
        self._has_id[np.unique(train["item_idx"].to_numpy())] = 1.0
        super()._fit(train, val=val, init_net=init_net)

    def _net_args(self) -> dict[str, Any]:
        return {"content": self._content, "has_id": self._has_id, "factors": self.factors, "id_dropout": self.id_dropout}

    def _negative_pool(self) -> np.ndarray:
        # New items are not in the shop yet when the model trains: they cannot be negatives either.
        return self._has_id

    def _state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}  # the features live in the saved network
