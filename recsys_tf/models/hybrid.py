"""A hybrid recommender: collaborative ids plus item content, able to rank items never seen in training."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys_tf.errors import DataError
from recsys_tf.models.keras_base import KerasRecommender
from recsys_tf.models.nets import HybridNet
from recsys_tf.models.nets import _np as keras_np


class HybridRecommender(KerasRecommender):
    """Matrix factorization whose item vectors add learned projections of the item's content.

    ``item_features``: a frame indexed by ``item_id`` with numeric columns (text vectors, picture
    descriptors or CNN embeddings, one-hot category / brand, price...), one row for every item of
    the catalog passed to ``fit`` (see :func:`recsys_tf.features.feature_table`).
    ``item_texts``: a series of strings indexed by ``item_id``; a vocabulary is learned from the
    training items' texts and word embeddings are trained with the recommender (``text_dim``-d,
    first ``text_length`` tokens). Give either or both.

    Items without training interactions are scored from their content alone (see
    :class:`~recsys_tf.models.nets.HybridNet`); ``id_dropout`` is the share of training samples
    that must do without the item id. Negatives are drawn from the items seen in training only:
    items launched later did not exist for the shoppers then.
    """

    name = "hybrid"
    net_class = HybridNet
    _param_names = KerasRecommender._param_names + ("factors", "id_dropout", "text_dim", "text_length", "max_tokens")

    def __init__(self, item_features: pd.DataFrame | None = None, item_texts: pd.Series | None = None, factors: int = 32,
                 id_dropout: float = 0.5, text_dim: int = 32, text_length: int = 32, max_tokens: int = 20_000,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.item_features, self.item_texts, self.factors, self.id_dropout = item_features, item_texts, factors, id_dropout
        self.text_dim, self.text_length, self.max_tokens = text_dim, text_length, max_tokens
        self._content = self._has_id = self._tokens = None
        self._vocab_size = 0

    def _fit(self, train: pd.DataFrame, val: pd.DataFrame | None = None, init_net=None) -> None:
        if self.item_features is None and self.item_texts is None:
            raise DataError("HybridRecommender needs item_features (a frame indexed by item_id) and/or item_texts (a series of strings).")
        self._has_id = np.zeros(self.n_items, np.float32)
        self._has_id[np.unique(train["item_idx"].to_numpy())] = 1.0
        if self.item_features is not None:
            self._content = self._per_item(self.item_features, "content features")
        if self.item_texts is not None:
            from recsys_tf.features.text import TextEncoder

            texts = self._per_item(self.item_texts, "text").astype(str).tolist()
            enc = TextEncoder(max_tokens=self.max_tokens, sequence_length=self.text_length)
            enc.adapt([t for t, seen in zip(texts, self._has_id) if seen])  # words of new items stay out-of-vocabulary
            self._tokens, self._vocab_size = enc.token_ids(texts), enc.vectorizer.vocabulary_size()
        super()._fit(train, val=val, init_net=init_net)

    def _net_args(self) -> dict[str, Any]:
        return {"content": self._content, "has_id": self._has_id, "factors": self.factors, "id_dropout": self.id_dropout,
                "tokens": self._tokens, "vocab_size": self._vocab_size, "text_dim": self.text_dim}  # fmt: skip

    def _negative_pool(self) -> np.ndarray:
        # New items are not in the shop yet when the model trains: they cannot be negatives either.
        return self._has_id

    def _state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}  # the features live in the saved network

    @property
    def item_factors(self) -> np.ndarray:
        """Items x factors: the vectors items are scored with (new items: from content alone)."""
        self._check_fitted()
        return self.net_.all_item_vectors()

    def fold_in(self, histories: Sequence[Sequence], reg: float = 1.0) -> np.ndarray:
        """Vectors for shoppers the model never trained on, from the few items each touched (raw ids).

        ``p = argmin_p sum_{i in H} (1 - b_i - p . q_i)^2 + reg |p|^2 = (Q'Q + reg I)^-1 Q'(1 - b)`` with
        ``q_i`` the items' vectors (content alone for new items) -- the fold-in of implicit matrix
        factorization (Hu, Koren & Volinsky, ICDM 2008), one small ridge regression per shopper, all
        solved at once. Returns ``len(histories) x factors``; score items with ``vectors @ item_factors.T``.
        """
        flat, lengths = self._history_codes(histories)  # unknown ids raise, naming them
        q, b = self.item_factors, keras_np(self.net_.bi.embeddings)[:, 0]
        rows = np.repeat(np.arange(len(lengths)), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        idx = np.zeros((len(lengths), lengths.max()), np.int64)
        mask = np.zeros(idx.shape, bool)
        idx[rows, cols], mask[rows, cols] = flat, True
        qh = q[idx] * mask[..., None]  # users x width x factors
        a = np.einsum("uif,uig->ufg", qh, qh) + reg * np.eye(q.shape[1])[None]
        rhs = np.einsum("uif,ui->uf", qh, (1.0 - b[idx]) * mask)
        return np.linalg.solve(a, rhs[..., None])[..., 0]

    def fold_in_scores(self, histories: Sequence[Sequence], reg: float = 1.0) -> np.ndarray:
        """``len(histories) x n_items`` scores for shoppers known only by their items (see :meth:`fold_in`)."""
        return self.fold_in(histories, reg) @ self.item_factors.T + keras_np(self.net_.bi.embeddings)[:, 0][None, :]

    def recommend_for_history(self, items: Sequence, k: int = 10, exclude_seen: bool = True, reg: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids and scores for a shopper known only by the items they touched (see :meth:`fold_in`).

        With ``exclude_seen`` the touched items are never returned (fewer than ``k`` when few are left).
        """
        from recsys_tf.models.base import top_k

        scores = self.fold_in_scores([items], reg)
        if exclude_seen:
            scores[0, self.encoder_.items.transform(np.asarray(items))] = -np.inf
        idx, vals = top_k(scores, k)
        keep = vals[0] > -np.inf
        return self.item_ids[idx[0][keep]], vals[0][keep]
