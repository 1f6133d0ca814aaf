"""Keras networks scoring (user, item) pairs, written with ``keras.ops`` only (any backend).

Each takes an int tensor of shape ``(batch, 2)`` -- user code, item code -- and returns one score
(a logit for implicit feedback, a rating for explicit feedback) per pair. ``full_scores`` computes
the users x all-items score matrix from the weights with NumPy; ``device_scores`` computes the same
block with ``keras.ops`` where the weights live (the GPU when there is one), so that evaluation can
mask and select the top-k there too. Both use the algebra of each model rather than pushing every
pair through the network. For an MLP the first layer splits over the concatenation:

    relu(W [p_u; q_i] + b) = relu(W_u p_u + (W_i q_i + b))

so ``W_i q_i + b`` is computed once per item and ``W_u p_u`` once per user, and a users x items
block of the first layer is a broadcast add -- no pair is ever materialised.
"""

from __future__ import annotations

from typing import Any, Sequence

from recsys_tf.utils import import_keras_quietly

keras = import_keras_quietly()  # before `from keras import`: keeps TensorFlow's start-up lines out of notebooks

import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

PACKAGE = "recsys_tf"


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _emb(n: int, d: int, l2: float, seed: int, name: str, stddev: float = 0.01, nonneg: bool = False) -> layers.Embedding:
    return layers.Embedding(
        n, d, name=name,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=stddev, seed=seed),
        embeddings_regularizer=keras.regularizers.L2(l2) if l2 else None,
        embeddings_constraint=keras.constraints.NonNeg() if nonneg else None,
    )  # fmt: skip


class PairNet(keras.Model):
    """Base: stores its constructor arguments for ``get_config`` (so ``.keras`` files reload)."""

    def __init__(self, **kwargs: Any) -> None:
        base = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        super().__init__(**base)
        self.cfg = kwargs

    def get_config(self) -> dict:
        return {**super().get_config(), **self.cfg}

    def build(self, input_shape=None) -> None:
        # Creating the weights means running one pair through every layer (nested towers included).
        if not self.built:
            self.call(ops.zeros((1, 2), dtype="int32"))
        self.built = True

    def build_now(self) -> "PairNet":
        self(np.zeros((1, 2), dtype="int32"))
        return self

    # widest per-(user, item) intermediate of device_scores, in floats: sizes its user batches
    pair_width = 1

    def full_scores(self, users: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
        """Users x all items scores through the network, in chunks of pairs (subclasses use faster algebra)."""
        n_items = self.cfg["n_items"]
        pairs = np.column_stack([np.repeat(users, n_items), np.tile(np.arange(n_items), len(users))]).astype("int32")
        out = [_np(self(pairs[s : s + chunk], training=False)) for s in range(0, len(pairs), chunk)]
        return np.concatenate(out).reshape(len(users), n_items)

    def device_scores(self, users):
        """Users x all items float32 scores as a backend tensor, computed on the weights' device."""
        n_items = self.cfg["n_items"]
        u = ops.repeat(ops.cast(users, "int32"), n_items)
        i = ops.tile(ops.arange(n_items, dtype="int32"), [ops.shape(users)[0]])
        return ops.reshape(ops.cast(self(ops.stack([u, i], axis=1), training=False), "float32"), (-1, n_items))


def _w(x):
    """A weight as float32 (mixed-precision models keep float32 weights; this makes it explicit)."""
    return ops.cast(x, "float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class MFNet(PairNet):
    """Biased MF: ``mu + b_u + b_i + p_u . q_i`` (Koren et al. 2009); ``nonneg`` keeps p, q >= 0 (NMF)."""

    def __init__(self, n_users: int, n_items: int, factors: int = 32, l2: float = 0.0, global_bias: float = 0.0,
                 use_bias: bool = True, nonneg: bool = False, init_std: float = 0.1, reg: float = 0.0, seed: int = 0,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(n_users=n_users, n_items=n_items, factors=factors, l2=l2, global_bias=global_bias,
                         use_bias=use_bias, nonneg=nonneg, init_std=init_std, reg=reg, seed=seed, **kwargs)  # fmt: skip
        self.reg = reg
        self.p = _emb(n_users, factors, l2, seed, "user_factors", init_std, nonneg)
        self.q = _emb(n_items, factors, l2, seed + 1, "item_factors", init_std, nonneg)
        self.use_bias, self.mu = use_bias, float(global_bias)
        if use_bias:
            self.bu = layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias",
                                       embeddings_regularizer=keras.regularizers.L2(l2) if l2 else None)  # fmt: skip
            self.bi = layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias",
                                       embeddings_regularizer=keras.regularizers.L2(l2) if l2 else None)  # fmt: skip

    def _user_vectors(self, u):
        """The user's factor vector and its per-rating penalty (SVD++ adds the implicit term)."""
        pu = self.p(u)
        return pu, ops.sum(ops.square(pu), -1)

    def call(self, pairs, training=None):
        u, i = pairs[:, 0], pairs[:, 1]
        (pu, penalty), qi = self._user_vectors(u), self.q(i)
        out = ops.sum(pu * qi, axis=-1) + self.mu
        penalty = penalty + ops.sum(ops.square(qi), -1)
        if self.use_bias:
            bu, bi = ops.squeeze(self.bu(u), -1), ops.squeeze(self.bi(i), -1)
            out = out + bu + bi
            penalty = penalty + ops.square(bu) + ops.square(bi)
        if training and self.reg:
            # Koren's per-rating penalty: lambda (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2) for each observed pair,
            # so frequent users and items are regularised in proportion to their data
            self.add_loss(self.reg * ops.mean(penalty))
        return out

    def _user_matrix(self, users: np.ndarray) -> np.ndarray:
        return _np(self.p.embeddings)[users]

    def full_scores(self, users: np.ndarray) -> np.ndarray:
        out = self._user_matrix(users) @ _np(self.q.embeddings).T + self.mu
        if self.use_bias:
            out += _np(self.bu.embeddings)[users] + _np(self.bi.embeddings)[:, 0][None, :]
        return out

    def device_scores(self, users):
        out = ops.matmul(_w(self._user_vectors(users)[0]), ops.transpose(_w(self.q.embeddings))) + self.mu
        if self.use_bias:
            out = out + ops.take(_w(self.bu.embeddings), users, axis=0) + ops.transpose(_w(self.bi.embeddings))
        return out


@keras.saving.register_keras_serializable(package=PACKAGE)
class SVDppNet(MFNet):
    """SVD++ (Koren, KDD 2008): biased MF whose user vector adds what the user chose to rate,

        r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^(-1/2) sum_{j in N(u)} y_j)

    ``implicit`` is the users x items matrix with ``|N(u)|^(-1/2)`` on each user's implicit items
    N(u) and 0 elsewhere, so the implicit term of a batch of users is one matrix product with the
    item table ``Y``. It is a (non-trainable) weight, saved with the others; the config keeps its
    shape only. Per-rating penalty as Surprise's SGD applies it: ``reg`` on ``|p_u|^2, |q_i|^2, b_u^2,
    b_i^2`` and ``implicit_reg`` (default: ``reg``) on every ``|y_j|^2`` with j in N(u).
    """

    def __init__(self, n_users: int, n_items: int, implicit: Any = None, factors: int = 32, init_std: float = 0.1,
                 seed: int = 0, implicit_reg: float | None = None, **kwargs: Any) -> None:  # fmt: skip
        implicit = np.zeros((n_users, n_items), "float32") if implicit is None else np.asarray(implicit, dtype="float32")
        if implicit.shape != (n_users, n_items):
            raise ValueError(f"implicit must be users x items ({n_users} x {n_items}), got {implicit.shape}.")
        super().__init__(n_users, n_items, factors=factors, init_std=init_std, seed=seed, implicit_reg=implicit_reg, **kwargs)
        self.implicit_reg = self.reg if implicit_reg is None else float(implicit_reg)
        # y starts at 0: the model starts as biased MF and adds the implicit term only as it helps
        self.y = _emb(n_items, factors, kwargs.get("l2", 0.0), seed + 2, "implicit_factors", 0.0)
        self.y.build((None,))  # used as a whole table (a matrix product), never called on ids
        self.implicit = self.add_weight(shape=implicit.shape, initializer=keras.initializers.Constant(implicit),
                                        trainable=False, name="implicit")  # fmt: skip

    def _user_vectors(self, u):
        # The implicit term of *every* user is one (users x items) @ (items x factors) product per
        # step; gathering rows per rating instead would repeat it for each rating of the batch.
        z = ops.matmul(self.implicit, self.y.embeddings)
        y_norms = ops.sum(ops.square(self.y.embeddings), -1)
        scale = self.implicit_reg / self.reg if self.reg else 0.0  # call() multiplies the penalty by reg
        y_penalty = ops.matmul(ops.cast(ops.greater(self.implicit, 0.0), y_norms.dtype), y_norms)
        pu = self.p(u)
        return pu + ops.take(z, u, axis=0), ops.sum(ops.square(pu), -1) + scale * ops.take(y_penalty, u, axis=0)

    def _user_matrix(self, users: np.ndarray) -> np.ndarray:
        return _np(self.p.embeddings)[users] + _np(self.implicit)[users] @ _np(self.y.embeddings)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GMFNet(PairNet):
    """Generalized MF (He et al. 2017): ``h . (p_u * q_i) + b``."""

    def __init__(self, n_users: int, n_items: int, factors: int = 8, l2: float = 0.0, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(n_users=n_users, n_items=n_items, factors=factors, l2=l2, seed=seed, **kwargs)
        self.p = _emb(n_users, factors, l2, seed, "gmf_user")
        self.q = _emb(n_items, factors, l2, seed + 1, "gmf_item")
        self.out = layers.Dense(1, kernel_initializer=keras.initializers.LecunUniform(seed=seed + 2), name="prediction")

    def hidden(self, u, i):
        return self.p(u) * self.q(i)

    def call(self, pairs, training=None):
        return ops.squeeze(self.out(self.hidden(pairs[:, 0], pairs[:, 1])), -1)

    def full_scores(self, users: np.ndarray) -> np.ndarray:
        w, b = (_np(x) for x in self.out.weights)
        return (_np(self.p.embeddings)[users] * w[:, 0]) @ _np(self.q.embeddings).T + b[0]

    def device_scores(self, users, w=None):
        """``w``: output weights to use instead of this tower's own (NeuMF passes its share; no bias then)."""
        own = w is None
        w = _w(self.out.kernel) if own else w
        out = ops.matmul(ops.take(_w(self.p.embeddings), users, axis=0) * w[:, 0], ops.transpose(_w(self.q.embeddings)))
        return out + _w(self.out.bias)[0] if own else out


@keras.saving.register_keras_serializable(package=PACKAGE)
class MLPNet(PairNet):
    """The NCF MLP tower: ``concat(p_u, q_i)`` through ReLU layers ``layers`` (first = 2 x embedding size)."""

    def __init__(self, n_users: int, n_items: int, layer_sizes: Sequence[int] = (64, 32, 16), l2: float = 0.0,
                 seed: int = 0, **kwargs: Any) -> None:  # fmt: skip
        layer_sizes = list(layer_sizes)
        super().__init__(n_users=n_users, n_items=n_items, layer_sizes=layer_sizes, l2=l2, seed=seed, **kwargs)
        d = layer_sizes[0] // 2
        self.p = _emb(n_users, d, l2, seed + 10, "mlp_user")
        self.q = _emb(n_items, d, l2, seed + 11, "mlp_item")
        self.tower = [layers.Dense(n, activation="relu", name=f"layer{k}", kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 12 + k),
                                   kernel_regularizer=keras.regularizers.L2(l2) if l2 else None)
                      for k, n in enumerate(layer_sizes[1:])]  # fmt: skip
        self.out = layers.Dense(1, kernel_initializer=keras.initializers.LecunUniform(seed=seed + 3), name="prediction")

    def hidden(self, u, i):
        h = ops.concatenate([self.p(u), self.q(i)], axis=-1)
        for dense in self.tower:
            h = dense(h)
        return h

    def call(self, pairs, training=None):
        return ops.squeeze(self.out(self.hidden(pairs[:, 0], pairs[:, 1])), -1)

    def hidden_full(self, users: np.ndarray, batch: int = 256) -> list[np.ndarray]:
        """Last hidden layer for users x all items, as a list of (batch x items x width) blocks."""
        p, q = _np(self.p.embeddings)[users], _np(self.q.embeddings)
        d = p.shape[1]
        w0, b0 = (_np(x) for x in self.tower[0].weights)
        rest = [tuple(_np(x) for x in t.weights) for t in self.tower[1:]]
        item_part = q @ w0[d:] + b0  # items x h1, once
        blocks = []
        for s in range(0, len(users), batch):
            h = np.maximum((p[s : s + batch] @ w0[:d])[:, None, :] + item_part[None], 0.0)
            for w, b in rest:
                h = np.maximum(h @ w + b, 0.0)
            blocks.append(h)
        return blocks

    def full_scores(self, users: np.ndarray) -> np.ndarray:
        w, b = (_np(x) for x in self.out.weights)
        return np.concatenate([(h @ w)[..., 0] + b[0] for h in self.hidden_full(users)])

    @property
    def pair_width(self) -> int:
        return int(self.cfg["layer_sizes"][1]) if len(self.cfg["layer_sizes"]) > 1 else 1

    def device_hidden(self, users):
        """Last hidden layer for users x all items (users x items x width), by the split first layer."""
        d = self.cfg["layer_sizes"][0] // 2
        h = ops.take(_w(self.p.embeddings), users, axis=0)
        if self.tower:
            w0, b0 = _w(self.tower[0].kernel), _w(self.tower[0].bias)
            item_part = ops.matmul(_w(self.q.embeddings), w0[d:]) + b0  # items x h1, once
            h = ops.relu(ops.matmul(h, w0[:d])[:, None, :] + item_part[None, :, :])
            for dense in self.tower[1:]:
                h = ops.relu(ops.matmul(h, _w(dense.kernel)) + _w(dense.bias))
        else:  # no hidden layer: the concatenation itself
            n = ops.shape(_w(self.q.embeddings))[0]
            h = ops.concatenate([ops.repeat(h[:, None, :], n, axis=1),
                                 ops.repeat(_w(self.q.embeddings)[None], ops.shape(h)[0], axis=0)], axis=-1)  # fmt: skip
        return h

    def device_scores(self, users):
        return ops.matmul(self.device_hidden(users), _w(self.out.kernel))[..., 0] + _w(self.out.bias)[0]


@keras.saving.register_keras_serializable(package=PACKAGE)
class NeuMFNet(PairNet):
    """NeuMF (He et al., WWW 2017): GMF and MLP towers side by side, one output on their concatenation."""

    def __init__(self, n_users: int, n_items: int, factors: int = 8, layer_sizes: Sequence[int] = (64, 32, 16),
                 l2: float = 0.0, seed: int = 0, **kwargs: Any) -> None:  # fmt: skip
        layer_sizes = list(layer_sizes)
        super().__init__(n_users=n_users, n_items=n_items, factors=factors, layer_sizes=layer_sizes, l2=l2, seed=seed, **kwargs)
        self.gmf = GMFNet(n_users, n_items, factors, l2, seed, name="gmf")
        self.mlp = MLPNet(n_users, n_items, layer_sizes, l2, seed, name="mlp")
        self.out = layers.Dense(1, kernel_initializer=keras.initializers.LecunUniform(seed=seed + 4), name="prediction")

    def call(self, pairs, training=None):
        u, i = pairs[:, 0], pairs[:, 1]
        h = ops.concatenate([self.gmf.hidden(u, i), self.mlp.hidden(u, i)], axis=-1)
        return ops.squeeze(self.out(h), -1)

    def full_scores(self, users: np.ndarray) -> np.ndarray:
        w, b = (_np(x) for x in self.out.weights)
        f = self.cfg["factors"]
        gmf = (_np(self.gmf.p.embeddings)[users] * w[:f, 0]) @ _np(self.gmf.q.embeddings).T
        mlp = np.concatenate([(h @ w[f:])[..., 0] for h in self.mlp.hidden_full(users)])
        return gmf + mlp + b[0]

    @property
    def pair_width(self) -> int:
        return self.mlp.pair_width

    def device_scores(self, users):
        w, f = _w(self.out.kernel), self.cfg["factors"]
        gmf = self.gmf.device_scores(users, w=w[:f])
        mlp = ops.matmul(self.mlp.device_hidden(users), w[f:])[..., 0]
        return gmf + mlp + _w(self.out.bias)[0]

    def load_pretrained(self, gmf: GMFNet, mlp: MLPNet, alpha: float = 0.5) -> None:
        """Initialise from trained GMF and MLP (the paper's pre-training): copy both towers and set the
        output to ``[alpha * h_gmf, (1 - alpha) * h_mlp]`` with bias ``alpha b_gmf + (1 - alpha) b_mlp``."""
        for dst, src in ((self.gmf.p, gmf.p), (self.gmf.q, gmf.q), (self.mlp.p, mlp.p), (self.mlp.q, mlp.q)):
            dst.set_weights(src.get_weights())
        for dst, src in zip(self.mlp.tower, mlp.tower):
            dst.set_weights(src.get_weights())
        (wg, bg), (wm, bm) = gmf.out.get_weights(), mlp.out.get_weights()
        self.out.set_weights([np.concatenate([alpha * wg, (1 - alpha) * wm]), alpha * bg + (1 - alpha) * bm])


@keras.saving.register_keras_serializable(package=PACKAGE)
class HybridNet(PairNet):
    """Ids plus content: ``score = b_u + b_i + p_u . (m_i q_i + W c_i + V t_i)``.

    ``c_i`` is the item's fixed content vector (text / picture embeddings, attributes) and ``t_i``
    the mean of trainable word embeddings over the item's text tokens -- a text encoder learned
    together with the recommender. ``m_i`` is 1 for items seen in training, 0 for new ones; during
    training the id term is also dropped at random (``id_dropout``), so the content path learns to
    carry an item on its own -- the idea of DropoutNet (Volkovs, Yu & Poutanen, NeurIPS 2017). New
    items are then scored from their content alone.
    """

    def __init__(self, n_users: int, n_items: int, content: Any = None, factors: int = 32, id_dropout: float = 0.5,
                 has_id: Any = None, l2: float = 0.0, seed: int = 0, content_dim: int | None = None, tokens: Any = None,
                 vocab_size: int = 0, text_dim: int = 32, sequence_length: int = 0, **kwargs: Any) -> None:  # fmt: skip
        # The config keeps only the shapes: the content values and token ids are weights, saved with the others.
        content = np.zeros((n_items, content_dim or 0), "float32") if content is None else np.asarray(content, dtype="float32")
        tokens = np.zeros((n_items, sequence_length), "int32") if tokens is None else np.asarray(tokens, dtype="int32")
        has_id = np.ones(n_items, "float32") if has_id is None else np.asarray(has_id, dtype="float32")
        super().__init__(n_users=n_users, n_items=n_items, factors=factors, id_dropout=id_dropout, l2=l2, seed=seed,
                         content_dim=int(content.shape[1]), vocab_size=int(vocab_size), text_dim=int(text_dim),
                         sequence_length=int(tokens.shape[1]), **kwargs)  # fmt: skip
        self.p = _emb(n_users, factors, l2, seed, "user_factors", 0.1)
        self.q = _emb(n_items, factors, l2, seed + 1, "item_factors", 0.1)
        self.bu = layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
        self.bi = layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
        self.has_content = content.shape[1] > 0
        if self.has_content:
            self.project = layers.Dense(factors, use_bias=False, name="content_projection",
                                        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))  # fmt: skip
            self.content = self.add_weight(shape=content.shape, initializer=keras.initializers.Constant(content),
                                           trainable=False, name="content")  # fmt: skip
        self.has_text = vocab_size > 0 and tokens.shape[1] > 0
        if self.has_text:
            self.words = _emb(vocab_size, text_dim, l2, seed + 4, "word_embeddings", 0.1)
            self.text_project = layers.Dense(factors, use_bias=False, name="text_projection",
                                             kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 5))  # fmt: skip
            self.tokens = self.add_weight(shape=tokens.shape, initializer=keras.initializers.Constant(tokens),
                                          dtype="int32", trainable=False, name="tokens")  # fmt: skip
        self.has_id = self.add_weight(shape=(n_items,), initializer=keras.initializers.Constant(has_id), trainable=False, name="has_id")
        self.id_dropout = float(id_dropout)
        self.seed_gen = keras.random.SeedGenerator(seed + 3)

    def _text_vectors(self, i):
        ids = ops.take(self.tokens, i, axis=0)  # (batch, length); 0 pads
        mask = ops.cast(ops.not_equal(ids, 0), self.compute_dtype)[..., None]
        mean = ops.sum(self.words(ids) * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        return self.text_project(mean)

    def item_vectors(self, i, training=None):
        keep = ops.take(self.has_id, i)
        if training and self.id_dropout:
            keep = keep * ops.cast(keras.random.uniform(ops.shape(keep), seed=self.seed_gen) >= self.id_dropout, keep.dtype)
        v = keep[:, None] * self.q(i)
        if self.has_content:
            v = v + self.project(ops.take(self.content, i, axis=0))
        if self.has_text:
            v = v + self._text_vectors(i)
        return v

    def call(self, pairs, training=None):
        u, i = pairs[:, 0], pairs[:, 1]
        dot = ops.sum(self.p(u) * self.item_vectors(i, training), axis=-1)
        return dot + ops.squeeze(self.bu(u), -1) + ops.squeeze(self.bi(i), -1)

    def all_item_vectors(self) -> np.ndarray:
        """Every item's vector as scored at inference: ids where known, plus content and text."""
        q = _np(self.has_id)[:, None] * _np(self.q.embeddings)
        if self.has_content:
            q = q + _np(self.content) @ _np(self.project.kernel)
        if self.has_text:
            ids = _np(self.tokens)
            mask = (ids != 0)[..., None]
            mean = (_np(self.words.embeddings)[ids] * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
            q = q + mean @ _np(self.text_project.kernel)
        return q

    def full_scores(self, users: np.ndarray) -> np.ndarray:
        q = self.all_item_vectors()
        return _np(self.p.embeddings)[users] @ q.T + _np(self.bu.embeddings)[users] + _np(self.bi.embeddings)[:, 0][None, :]

    def device_scores(self, users):
        q = ops.convert_to_tensor(self.all_item_vectors(), "float32")
        return (ops.matmul(ops.take(_w(self.p.embeddings), users, axis=0), ops.transpose(q))
                + ops.take(_w(self.bu.embeddings), users, axis=0) + ops.transpose(_w(self.bi.embeddings)))  # fmt: skip
