"""Neural Collaborative Filtering (He, Liao, Zhang, Nie, Hu & Chua, WWW 2017): GMF, MLP, NeuMF.

* GMF: ``sigma(h . (p_u * q_i))`` -- MF with a learned weighting of the factors;
* MLP: ``sigma(h . MLP([p_u, q_i]))`` -- a ReLU tower on concatenated embeddings;
* NeuMF: ``sigma(h . [p_u^G * q_i^G, MLP([p_u^M, q_i^M])])`` -- both, with separate embeddings.

The paper trains with log loss (``loss="bce"``) and 4 sampled negatives per positive, and
initialises NeuMF from pre-trained GMF and MLP (``NeuMF.fit(..., pretrained=(gmf, mlp))``,
alpha = 0.5). The article's MSE loss stays the kit's default. Rendle, Krichene, Zhang & Anderson
(RecSys 2020) showed that a well-tuned dot product (MF) matches or beats the MLP here.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from recsys_tf.models.keras_base import KerasRecommender
from recsys_tf.models.nets import GMFNet, MLPNet, NeuMFNet


class GMF(KerasRecommender):
    """Generalized matrix factorization; ``factors`` = predictive factors."""

    name = "gmf"
    net_class = GMFNet
    _param_names = KerasRecommender._param_names + ("factors",)

    def __init__(self, factors: int = 8, **kwargs: Any) -> None:
        kwargs.setdefault("l2", 0.0)
        super().__init__(**kwargs)
        self.factors = factors

    def _net_args(self) -> dict[str, Any]:
        return {"factors": self.factors}


class MLP(KerasRecommender):
    """The NCF MLP; ``layers`` = tower widths, the first being the concatenated embedding size."""

    name = "mlp"
    net_class = MLPNet
    _param_names = KerasRecommender._param_names + ("layers",)

    def __init__(self, layers: Sequence[int] = (64, 32, 16), **kwargs: Any) -> None:
        kwargs.setdefault("l2", 0.0)
        super().__init__(**kwargs)
        self.layers = list(layers)

    def _net_args(self) -> dict[str, Any]:
        return {"layer_sizes": self.layers}


class NeuMF(KerasRecommender):
    """NeuMF: GMF with ``factors`` and the MLP with ``layers`` side by side."""

    name = "neumf"
    net_class = NeuMFNet
    _param_names = KerasRecommender._param_names + ("factors", "layers", "alpha")

    def __init__(self, factors: int = 8, layers: Sequence[int] = (64, 32, 16), alpha: float = 0.5, **kwargs: Any) -> None:
        kwargs.setdefault("l2", 0.0)
        super().__init__(**kwargs)
        self.factors, self.layers, self.alpha = factors, list(layers), alpha

    def _net_args(self) -> dict[str, Any]:
        return {"factors": self.factors, "layer_sizes": self.layers}

    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None, val: pd.DataFrame | None = None,
            pretrained: tuple[GMF, MLP] | None = None) -> "NeuMF":  # fmt: skip
        """Fit; with ``pretrained=(gmf, mlp)`` (fitted on the same data) start from their weights.

        The paper fine-tunes the pre-trained NeuMF with plain SGD; here Adam is kept, so give it a
        lower learning rate (e.g. 1e-4) to keep what pre-training learned.
        """
        self._pretrained = pretrained
        return super().fit(train, items, val=val)

    def _fit(self, train: pd.DataFrame, val: pd.DataFrame | None = None, init_net=None) -> None:
        pre = getattr(self, "_pretrained", None)
        if pre is not None:
            gmf, mlp = pre
            if gmf.n_items != self.n_items or gmf.n_users != self.n_users or mlp.n_items != self.n_items:
                raise ValueError("pre-trained GMF and MLP must be fitted on the same users and items as NeuMF.")
            if gmf.factors != self.factors or list(mlp.layers) != self.layers:
                raise ValueError("pre-trained GMF factors / MLP layers must match NeuMF's.")
            init_net = self._build_net(0.0)
            init_net.load_pretrained(gmf.net_, mlp.net_, self.alpha)
        super()._fit(train, val=val, init_net=init_net)
