"""Matrix factorization with Keras embeddings, trained with MSE (the article's loss) or log loss.

Prediction (Koren, Bell & Volinsky, "Matrix Factorization Techniques for Recommender Systems",
IEEE Computer 2009):

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

Explicit feedback minimises ``mean (r - r_hat)^2 + lambda (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)``
over observed ratings. Implicit feedback treats each observed pair as 1 and sampled unobserved
pairs as 0 (see :mod:`recsys_tf.models.keras_base`). The non-negative variant (NMF; Lee & Seung,
NIPS 2001) constrains ``p_u, q_i >= 0`` and drops the biases, so each factor reads as an additive part.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys_tf.models.keras_base import KerasRecommender
from recsys_tf.models.nets import MFNet, SVDppNet


class MatrixFactorization(KerasRecommender):
    """Biased MF as a Keras model with the kit's ``fit`` / ``score`` / ``recommend`` API.

    ``factors``: embedding size; ``init_std``: standard deviation of the initial factors;
    ``reg``: Koren's per-rating penalty ``lambda`` on ``|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2`` of each
    training pair (regularises users and items in proportion to their data; ``l2`` instead
    penalises whole embedding tables every batch). Other parameters: see
    :class:`~recsys_tf.models.keras_base.KerasRecommender`.
    """

    name = "mf"
    net_class = MFNet
    _param_names = KerasRecommender._param_names + ("factors", "init_std", "reg")

    def __init__(self, factors: int = 32, init_std: float = 0.1, reg: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factors, self.init_std, self.reg = factors, init_std, reg

    def _net_args(self) -> dict[str, Any]:
        return {"factors": self.factors, "init_std": self.init_std, "reg": self.reg}

    @property
    def item_factors(self) -> np.ndarray:
        """Item embeddings ``q_i`` in code order (rows align with :attr:`item_ids`)."""
        import keras

        return keras.ops.convert_to_numpy(self.net_.q.embeddings)

    @property
    def user_factors(self) -> np.ndarray:
        import keras

        return keras.ops.convert_to_numpy(self.net_.p.embeddings)


class NMF(MatrixFactorization):
    """Non-negative MF: ``r_hat = p_u . q_i`` with ``p_u, q_i >= 0`` (Lee & Seung 2001), explicit by default."""

    name = "nmf"

    def __init__(self, factors: int = 15, init_std: float = 0.3, feedback="explicit", **kwargs: Any) -> None:
        super().__init__(factors=factors, init_std=init_std, feedback=feedback, **kwargs)

    def _net_args(self) -> dict[str, Any]:
        return {**super()._net_args(), "use_bias": False, "nonneg": True}

    def _build_net(self, mu: float):
        # No global bias either: every predicted rating is a sum of non-negative parts.
        return super()._build_net(0.0)


class SVDpp(MatrixFactorization):
    """SVD++ (Koren, "Factorization Meets the Neighborhood", KDD 2008), explicit ratings by default.

    ``r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^(-1/2) sum_{j in N(u)} y_j)``: a user is
    described by their factors *and* by which items they rated, which helps users with few ratings.
    N(u) is the user's training items; ``fit(train, implicit=frame)`` adds more (user, item) pairs
    whose ratings are unknown -- Koren's setting, where N(u) also holds the items a user rated in
    the held-out set (their ratings are never seen). Unknown users or items in ``implicit`` are
    ignored there (they have no code). Scoring keeps a dense users x items matrix of weights
    (4 bytes a cell: 6 MB on ML-100K, 90 MB on ML-1M). ``implicit_reg``: the penalty on each
    ``|y_j|^2`` (default: ``reg``).
    """

    name = "svdpp"
    net_class = SVDppNet
    _param_names = MatrixFactorization._param_names + ("implicit_reg",)

    def __init__(self, factors: int = 20, feedback="explicit", implicit_reg: float | None = None, **kwargs: Any) -> None:
        super().__init__(factors=factors, feedback=feedback, **kwargs)
        self.implicit_reg = implicit_reg

    def fit(self, train, items=None, implicit=None, **kwargs: Any) -> "SVDpp":
        self._implicit_frame = implicit
        try:
            return super().fit(train, items, **kwargs)
        finally:
            self._implicit_frame = None

    def _implicit_matrix(self, train) -> np.ndarray:
        u, i = train["user_idx"].to_numpy(), train["item_idx"].to_numpy()
        extra = getattr(self, "_implicit_frame", None)
        if extra is not None:
            codes = self.encoder_.transform(extra, unknown="oov")
            known = (codes["user_idx"].to_numpy() >= 0) & (codes["item_idx"].to_numpy() >= 0)
            u, i = np.r_[u, codes["user_idx"].to_numpy()[known]], np.r_[i, codes["item_idx"].to_numpy()[known]]
        m = np.zeros((self.n_users, self.n_items), np.float32)
        m[u, i] = 1.0  # a pair listed twice counts once
        counts = m.sum(axis=1, keepdims=True)
        return m / np.sqrt(np.maximum(counts, 1.0))

    def _fit(self, train, val=None, init_net=None) -> None:
        self._implicit = self._implicit_matrix(train)
        try:
            super()._fit(train, val, init_net)
        finally:
            del self._implicit

    def _net_args(self) -> dict[str, Any]:
        args = {**super()._net_args(), "implicit_reg": self.implicit_reg}
        if hasattr(self, "_implicit"):
            args["implicit"] = self._implicit
        return args
