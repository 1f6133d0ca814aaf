"""Matrix factorization with Keras embeddings, trained with MSE (the article's loss) or log loss.

Prediction (Koren, Bell & Volinsky, "Matrix Factorization Techniques for Recommender Systems",
IEEE Computer 2009):

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

Explicit feedback minimises the mean squared error over observed ratings,
``mean (r - r_hat)^2 + lambda (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)``. Implicit feedback treats each
observed pair as 1 and ``n_neg`` items sampled afresh every epoch as 0, with MSE (default, as in
the article) or binary cross-entropy on ``sigmoid(r_hat)`` (``loss="bce"``, as in NCF).
Written with ``keras.ops`` only: it trains on the TensorFlow, JAX or PyTorch backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_tf.data.sampling import sample_negatives
from recsys_tf.models.base import Recommender
from recsys_tf.utils import progress


def _mf_net(n_users: int, n_items: int, factors: int, l2: float, global_bias: float, seed: int):
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="recsys_tf")
    class MFNet(keras.Model):
        """mu + b_u + b_i + p_u . q_i on integer (user, item) pairs of shape (batch, 2)."""

        def __init__(self, n_users: int, n_items: int, factors: int = 32, l2: float = 0.0,
                     global_bias: float = 0.0, seed: int = 0, **kwargs: Any) -> None:  # fmt: skip
            super().__init__(**kwargs)
            self.cfg = dict(n_users=n_users, n_items=n_items, factors=factors, l2=l2, global_bias=global_bias, seed=seed)
            reg = keras.regularizers.L2(l2) if l2 else None
            init = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
            self.p = layers.Embedding(n_users, factors, embeddings_initializer=init, embeddings_regularizer=reg, name="user_factors")
            self.q = layers.Embedding(n_items, factors, embeddings_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1),
                                      embeddings_regularizer=reg, name="item_factors")  # fmt: skip
            self.bu = layers.Embedding(n_users, 1, embeddings_initializer="zeros", embeddings_regularizer=reg, name="user_bias")
            self.bi = layers.Embedding(n_items, 1, embeddings_initializer="zeros", embeddings_regularizer=reg, name="item_bias")
            self.mu = global_bias

        def call(self, pairs):
            u, i = pairs[:, 0], pairs[:, 1]
            dot = ops.sum(self.p(u) * self.q(i), axis=-1)
            return dot + ops.squeeze(self.bu(u), -1) + ops.squeeze(self.bi(i), -1) + self.mu

        def get_config(self) -> dict:
            return {**super().get_config(), **self.cfg}

    net = MFNet(n_users, n_items, factors, l2, global_bias, seed)
    net(np.zeros((1, 2), dtype="int32"))  # build the weights
    return net


class MatrixFactorization(Recommender):
    """Biased MF as a Keras model, with the kit's ``fit`` / ``score`` / ``recommend`` API.

    Parameters
    ----------
    factors : embedding size.
    feedback : ``"explicit"`` (fit the ``rating`` column) or ``"implicit"`` (positives vs sampled negatives).
    loss : ``"mse"`` (default) or ``"bce"`` (implicit only).
    n_neg : negatives per positive, re-sampled every epoch (implicit only).
    l2 : L2 penalty on embeddings and biases (Keras adds it to the loss per batch).
    """

    name = "mf"

    def __init__(self, factors: int = 32, feedback: Literal["explicit", "implicit"] = "implicit",
                 loss: Literal["mse", "bce"] = "mse", n_neg: int = 4, epochs: int = 10, batch_size: int = 1024,
                 learning_rate: float = 0.005, l2: float = 1e-5, seed: int = 0, verbose: bool = True) -> None:  # fmt: skip
        super().__init__()
        if feedback not in ("explicit", "implicit"):
            raise ValueError(f"feedback must be 'explicit' or 'implicit', got {feedback!r}.")
        if loss not in ("mse", "bce") or (loss == "bce" and feedback == "explicit"):
            raise ValueError(f"loss must be 'mse', or 'bce' with implicit feedback; got {loss!r} with {feedback!r}.")
        self.factors, self.feedback, self.loss, self.n_neg = factors, feedback, loss, n_neg
        self.epochs, self.batch_size, self.learning_rate, self.l2 = epochs, batch_size, learning_rate, l2
        self.seed, self.verbose = seed, verbose
        self.history_: list[dict[str, float]] = []
        self.net_ = None

    def _state(self) -> dict[str, Any]:
        keys = ("factors", "feedback", "loss", "n_neg", "epochs", "batch_size", "learning_rate", "l2", "seed")
        return {k: getattr(self, k) for k in keys}

    def _fit(self, train: pd.DataFrame, val: pd.DataFrame | None = None) -> None:
        import keras

        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        users, items = train["user_idx"].to_numpy(), train["item_idx"].to_numpy()
        if self.feedback == "explicit":
            if "rating" not in train:
                from recsys_tf.errors import DataError

                raise DataError("explicit feedback needs a 'rating' column in the training frame.")
            target = train["rating"].to_numpy(np.float32)
            mu = float(target.mean())
        else:
            target, mu = np.ones(len(users), np.float32), 0.0
        self.net_ = _mf_net(self.n_users, self.n_items, self.factors, self.l2, mu, self.seed)
        from_logits = self.loss == "bce"
        self.net_.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=keras.losses.BinaryCrossentropy(from_logits=True) if from_logits else keras.losses.MeanSquaredError(),
        )
        val_xy = None
        if val is not None and self.feedback == "explicit":
            v = self.encoder_.transform(val)
            val_xy = (np.column_stack([v["user_idx"], v["item_idx"]]).astype("int32"), v["rating"].to_numpy(np.float32))
        bar = progress(range(self.epochs), desc=f"{self.name} epochs", disable=not self.verbose or None)
        for epoch in bar:
            if self.feedback == "implicit":
                neg = sample_negatives(users, self.seen_, self.n_items, self.n_neg, seed=rng).ravel()
                x = np.column_stack([np.r_[users, np.repeat(users, self.n_neg)], np.r_[items, neg]]).astype("int32")
                y = np.r_[target, np.zeros(len(neg), np.float32)]
            else:
                x, y = np.column_stack([users, items]).astype("int32"), target
            perm = rng.permutation(len(x))
            hist = self.net_.fit(x[perm], y[perm], batch_size=self.batch_size, epochs=1, verbose=0,
                                 validation_data=val_xy, shuffle=False)  # fmt: skip
            rec = {"epoch": epoch + 1, **{k: float(v[-1]) for k, v in hist.history.items()}}
            self.history_.append(rec)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k != "epoch"})

    def _score_codes(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Full score matrix (users x all items) when ``items`` is None, else pairwise scores.

        Full scores use the learned weights directly as one matrix product (fast, any backend).
        """
        p, q, bu, bi = (np.asarray(w) for w in self._weights())
        mu = self.net_.mu
        if items is None:
            return p[users] @ q.T + bu[users] + bi[:, 0][None, :] + mu
        return np.sum(p[users] * q[items], axis=1) + bu[users, 0] + bi[items, 0] + mu

    def _weights(self):
        import keras

        net = self.net_
        return [keras.ops.convert_to_numpy(layer.embeddings) for layer in (net.p, net.q, net.bu, net.bi)]

    @property
    def item_factors(self) -> np.ndarray:
        """Item embeddings ``q_i`` in code order (rows align with :attr:`item_ids`)."""
        return self._weights()[1]

    def _save_weights(self, folder: Path) -> None:
        self.net_.save(folder / "model.keras")

    def _load_weights(self, folder: Path) -> None:
        import keras

        _mf_net(1, 1, 1, 0.0, 0.0, 0)  # registers MFNet for deserialisation
        self.net_ = keras.models.load_model(folder / "model.keras")
