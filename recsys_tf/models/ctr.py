"""Click-through prediction with target attention: DIN and its sum-pooling base model, in ``keras.ops``.

Deep Interest Network (Zhou et al., KDD 2018). A shopper's behaviour is the items they clicked
before the impression, each described by its id and attributes (by default category, brand and
price level; ``attributes=``), one embedding each, concatenated: ``e_j``. The candidate item
``v`` gets the same description. The base model pools the behaviour by a sum, ``u = sum_j e_j``,
the same for every candidate. DIN weighs each past click by its relevance *to this candidate*,

    u(v) = sum_j a(e_j, v) e_j,    a(e_j, v) = MLP([e_j, v, e_j - v, e_j * v])

(no softmax, as in the paper: the weights keep the intensity of the interest; they start near 1,
that is from the base model). A tent as candidate lights up the shopper's past clicks on camping
gear, a lamp their home clicks. Then ``logit = MLP([u(v), v, u(v) * v])``.

``pooling=``: ``"attention"`` (the paper's text, above), ``"softmax"`` (the authors' released code,
zhougr1993/DeepInterestNetwork: ``a`` scaled by ``1/sqrt(dim of e_j)`` and normalised by a softmax
over the clicks), ``"sum"`` (the paper's base model) and ``"mean"`` (the base model of that code).
``activation="dice"`` uses the paper's Dice in the final MLP, ``f(s) = p(s) s + (1 - p(s)) alpha s`` with
``p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + eps))`` over the batch; ``"prelu"`` its predecessor.
``attention_activation=`` is the attention unit's own: ``"prelu"`` (default), ``"dice"`` (the paper's
Figure 2 draws PReLU/Dice there; its statistics are taken over the real clicks, not the padding) or
``"sigmoid"`` (the authors' code, which puts Dice only in the final MLP). Its PReLU and Dice have one slope
per unit, shared by every click position (``position_slopes=False``), so ``a`` depends on the click and
the candidate only, as in the paper. On the simulated shop that unit adds little to sum pooling (GAUC
0.6425 vs 0.6405 with Dice in the final MLP, 3 seeds), whichever activation it uses; with a slope per
click position (``position_slopes=True``, Keras' PReLU default) it learns the clicks' recency and gains
+0.017 (0.6551 vs 0.6382 with PReLU); see ``make reproduce``'s ``din_shop``. ``recency=True`` gives that
signal explicitly to every pooling: a learned weight per click position multiplies each click's weight
(+0.012 for sum pooling and for DIN, 3 seeds; the latest click ends near 1.5, clicks six or more back near 0.75).
Evaluation: AUC and the per-user GAUC.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_tf.data.impressions import ATTRIBUTES, Behaviours
from recsys_tf.data.schema import ITEM, USER
from recsys_tf.errors import DataError
from recsys_tf.metrics import gauc, roc_auc
from recsys_tf.utils import import_keras_quietly, progress

import_keras_quietly()  # its functions import Keras: keeps TensorFlow's start-up lines out of notebooks


def _build(n_codes: list[int], maxlen: int, dim: int, attention_units: tuple[int, ...], mlp: tuple[int, ...],
           activation: str, pooling: str, seed: int, attention_activation: str = "prelu", position_slopes: bool = False,
           recency: bool = False):  # fmt: skip
    import keras
    from keras import layers, ops

    class Dice(layers.Layer):
        def __init__(self, per_position: bool = False, **kw) -> None:
            super().__init__(**kw)
            self.supports_masking = True  # elementwise: the mask of the clicks passes through
            self.per_position = per_position
            self.norm = layers.BatchNormalization(center=False, scale=False, epsilon=1e-9)

        def build(self, shape) -> None:
            self.alpha = self.add_weight(shape=tuple(shape[1:]) if self.per_position else (shape[-1],), initializer="zeros", name="alpha")

        def call(self, s, training=None, mask=None):
            p = ops.sigmoid(self.norm(s, training=training, mask=mask))
            return p * s + (1 - p) * self.alpha * s

    def act(kind: str):
        return {"dice": Dice, "prelu": layers.PReLU, "sigmoid": lambda: layers.Activation("sigmoid")}[kind]()

    def attention_act(kind: str):
        # on the (batch, clicks, units) input Keras' PReLU learns a slope per click position unless told
        # to share it: a recency signal the paper's unit (a function of e_j and v only) does not have
        if kind == "prelu":
            return layers.PReLU(shared_axes=None if position_slopes else [1])
        return Dice(per_position=position_slopes) if kind == "dice" else act(kind)

    def dense(units: int, k: int):
        return layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + k))

    class CTRNet(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.tables = [layers.Embedding(n + 1, dim, embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed + t))
                           for t, n in enumerate(n_codes)]  # fmt: skip
            self.att = [(dense(u, 10 + i), attention_act(attention_activation)) for i, u in enumerate(attention_units)]
            # the paper's raw weights start near 1, i.e. from the sum-pooling base model: from 0 the pooled
            # interest starts empty, and on the small shop DIN ended at GAUC 0.621 +- 0.004 (3 seeds), from 1 at 0.641 +- 0.002
            # (both measured when its PReLU had a slope per click position)
            self.att_out = layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 20),
                                        bias_initializer="ones" if pooling == "attention" else "zeros")
            self.mlp = [(dense(u, 30 + i), act(activation)) for i, u in enumerate(mlp)]
            self.out = dense(1, 40)
            # r[l]: the weight of the click in slot l (slot maxlen - 1 is the latest); 1 everywhere is no recency
            self.recency = self.add_weight(shape=(maxlen,), initializer="ones", name="recency") if recency else None

        def build(self, input_shape=None) -> None:
            # the layers are created by running one batch (see _build); nothing is left to build
            self.built = True

        def describe(self, codes):
            """(..., F) codes (the id, then each attribute) -> (..., F dim) concatenated embeddings."""
            return ops.concatenate([t(codes[..., f]) for f, t in enumerate(self.tables)], axis=-1)

        def weights_of(self, e, v, keep, training=None):
            """Weight of every past click for the candidate: (B, L), 0 on padding."""
            w = self.unit_weights(e, v, keep, training)
            return w if self.recency is None else w * self.recency

        def unit_weights(self, e, v, keep, training=None):
            if pooling in ("sum", "mean"):
                return keep if pooling == "sum" else keep / ops.maximum(ops.sum(keep, axis=1, keepdims=True), 1.0)
            vv = ops.broadcast_to(ops.expand_dims(v, 1), ops.shape(e))
            h = ops.concatenate([e, vv, e - vv, e * vv], axis=-1)
            for layer, a in self.att:
                # Dice's batch statistics over the clicks only: padded slots are no behaviour
                h = a(layer(h), training=training, mask=keep > 0) if attention_activation == "dice" else a(layer(h))
            raw = ops.squeeze(self.att_out(h), -1)
            if pooling == "softmax":  # the authors' released code: scaled, then a softmax over the clicks
                raw = ops.softmax(ops.where(keep > 0, raw / math.sqrt(e.shape[-1]), -1e9), axis=-1)
            return raw * keep

        def call(self, packed, training=None):
            v = self.describe(packed[:, 0])
            e = self.describe(packed[:, 1:])
            keep = ops.cast(ops.not_equal(packed[:, 1:, 0], 0), v.dtype)
            w = self.weights_of(e, v, keep, training)
            u = ops.sum(e * ops.expand_dims(w, -1), axis=1)
            h = ops.concatenate([u, v, u * v], axis=-1)
            for layer, a in self.mlp:
                h = a(layer(h), training=training)
            return ops.squeeze(self.out(h), -1)

    net = CTRNet()
    net(np.zeros((2, maxlen + 1, len(n_codes)), "int32"), training=False)
    return net


POOLINGS = ("attention", "softmax", "sum", "mean")
ACTIVATIONS = ("prelu", "dice", "sigmoid")


def ctr_metrics(samples: pd.DataFrame, p: np.ndarray) -> dict[str, float]:
    """AUC, GAUC and log loss of click probabilities ``p`` for the impressions ``samples`` (``user_id``, ``label``)."""
    y = samples["label"].to_numpy(np.float64)
    eps = 1e-7
    logloss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    return {"auc": roc_auc(y, p), "gauc": gauc(samples[USER].to_numpy(), y, p), "logloss": logloss, "n": len(y)}


class DIN:
    """Deep Interest Network for click-through prediction on impressions (see the module docstring).

    ``fit(samples, clicks, items)``: ``samples`` from :func:`recsys_tf.data.impressions.ctr_samples`
    (``user_id, item_id, timestamp, label``); ``clicks``: the click log the behaviour sequences come
    from (only clicks strictly before each impression are used, so nothing leaks from the future);
    ``items``: the catalogue with the ``attributes`` columns (default ``category``, ``brand`` and
    ``price_tier``; the shop's catalogue also has ``style`` and ``colour``). ``pooling="sum"`` is the
    paper's base model; ``"softmax"`` and ``"mean"`` follow the authors' code (module docstring).
    ``position_slopes=True`` gives the attention unit's PReLU or Dice a slope per unit *and click position*
    (Keras' PReLU default on a ``(batch, clicks, units)`` input): the position of a click is its recency, a
    signal the paper's unit, a function of ``e_j`` and ``v`` only, does not have. Default ``False``.
    ``recency=True`` gives recency explicitly, to any pooling: a learned weight per click position ``r``
    (starting at 1) multiplies each click's weight, ``u(v) = sum_j r_pos(j) a(e_j, v) e_j`` (sum pooling:
    ``a = 1``); :meth:`recency_weights` reads it back, latest click first.
    """

    def __init__(self, maxlen: int = 20, dim: int = 12, attention_units: tuple[int, ...] = (36,), mlp: tuple[int, ...] = (80, 40),
                 activation: Literal["dice", "prelu"] = "dice", pooling: Literal["attention", "softmax", "sum", "mean"] = "attention",
                 epochs: int = 5, batch_size: int = 512, learning_rate: float = 1e-3, seed: int = 0, verbose: bool = True,
                 attributes: tuple[str, ...] = ATTRIBUTES, attention_activation: Literal["prelu", "dice", "sigmoid"] = "prelu",
                 position_slopes: bool = False, recency: bool = False) -> None:  # fmt: skip
        if activation not in ("dice", "prelu") or attention_activation not in ACTIVATIONS or pooling not in POOLINGS:
            raise ValueError(f"activation must be 'dice' or 'prelu', attention_activation one of {ACTIVATIONS} and pooling one of "
                             f"{POOLINGS}; got {activation!r}, {attention_activation!r}, {pooling!r}.")
        if position_slopes and (pooling in ("sum", "mean") or attention_activation == "sigmoid"):
            raise ValueError(f"position_slopes=True gives the attention unit's PReLU or Dice a slope per click position; "
                             f"pooling={pooling!r} with attention_activation={attention_activation!r} has no such slope. "
                             "Use pooling='attention' or 'softmax' with attention_activation='prelu' or 'dice'.")
        self.maxlen, self.dim, self.attention_units, self.mlp = maxlen, dim, tuple(attention_units), tuple(mlp)
        self.activation, self.pooling, self.epochs, self.batch_size = activation, pooling, epochs, batch_size
        self.learning_rate, self.seed, self.verbose, self.attributes = learning_rate, seed, verbose, tuple(attributes)
        self.attention_activation, self.position_slopes, self.recency = attention_activation, bool(position_slopes), bool(recency)
        self.net_ = None
        self.history_: list[dict[str, float]] = []

    def _params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("maxlen", "dim", "attention_units", "mlp", "activation", "pooling", "epochs",
                                              "batch_size", "learning_rate", "seed", "attributes", "attention_activation",
                                              "position_slopes", "recency")}  # fmt: skip

    # --- features -----------------------------------------------------------------------------
    def _set_items(self, items: pd.DataFrame) -> None:
        missing = {ITEM, *self.attributes} - set(items.columns)
        if missing:
            raise DataError(f"items lack column(s) {sorted(missing)}: this DIN describes items by {list(self.attributes)} "
                            "(choose others with attributes=).")
        self.item_ids_ = np.sort(items[ITEM].unique())
        cat = items.drop_duplicates(ITEM).set_index(ITEM).reindex(self.item_ids_)
        codes = [np.arange(1, len(self.item_ids_) + 1)]
        self.vocab_ = {}
        for col in self.attributes:
            # a missing attribute is a value of its own, "?" (astype(str) alone makes it "nan" on pandas 2)
            values = cat[col].where(cat[col].notna(), "?").astype(str)
            vocab = np.sort(values.unique())
            self.vocab_[col] = vocab.tolist()
            codes.append(np.searchsorted(vocab, values.to_numpy()) + 1)
        self.item_codes_ = np.stack(codes, 1).astype(np.int32)  # row = item position; 0 reserved for padding

    def _describe(self, raw_items: np.ndarray, where: str) -> np.ndarray:
        raw = np.asarray(raw_items)
        pos = np.clip(np.searchsorted(self.item_ids_, raw), 0, len(self.item_ids_) - 1)
        ok = self.item_ids_[pos] == raw
        if not ok.all():
            raise DataError(f"{where}: {int((~ok).sum())} item id(s) not in the catalogue, e.g. {raw[~ok][:5].tolist()}.")
        return self.item_codes_[pos]

    def _packed(self, samples: pd.DataFrame) -> np.ndarray:
        for col in (USER, ITEM, "timestamp"):
            if col not in samples:
                raise DataError(f"samples lack the column {col!r}; build them with ctr_samples(events).")
        past, valid = self.behaviours_.before(samples[USER].to_numpy(), samples["timestamp"].to_numpy(), self.maxlen)
        hist = np.zeros((len(samples), self.maxlen, 1 + len(self.attributes)), np.int32)
        if valid.any():
            hist[valid] = self._describe(past[valid], "clicks")
        cand = self._describe(samples[ITEM].to_numpy(), "samples")
        return np.concatenate([cand[:, None, :], hist], axis=1)

    # --- training and prediction --------------------------------------------------------------
    def fit(self, samples: pd.DataFrame, clicks: pd.DataFrame, items: pd.DataFrame, val: pd.DataFrame | None = None) -> "DIN":
        import keras

        from recsys_tf.models.fast_loop import trainer_for, xla_pays

        if not len(samples):
            raise DataError("samples is empty: nothing to learn click-through from.")
        y = samples["label"].to_numpy(np.float32)
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError("samples' label must be 0 (shown, not clicked) or 1 (clicked).")
        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self._set_items(items)
        self.behaviours_ = Behaviours.from_clicks(clicks)
        x = self._packed(samples)
        self.net_ = self._network()
        opt = keras.optimizers.Adam(self.learning_rate)
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        self.net_.compile(optimizer=opt, loss=loss)
        jit = xla_pays(len(x), self.batch_size, self.epochs)
        trainer = trainer_for(self.net_, opt, loss, self.batch_size, jit=jit) if len(x) >= self.batch_size else None
        for epoch in progress(range(self.epochs), desc=f"DIN ({self.pooling})", disable=not self.verbose or None):
            perm = rng.permutation(len(x))
            if trainer is not None:
                value = trainer.run_epoch(*trainer.device_batches(x[perm], y[perm]))
            else:
                value = float(self.net_.fit(x[perm], y[perm], batch_size=self.batch_size, verbose=0).history["loss"][-1])
            rec = {"epoch": epoch + 1, "loss": value}
            if val is not None:
                rec.update({f"val_{k}": v for k, v in self.evaluate(val).items() if k in ("auc", "gauc")})
            self.history_.append(rec)
        return self

    def _network(self):
        sizes = [len(self.item_ids_), *(len(self.vocab_[c]) for c in self.attributes)]
        return _build(sizes, self.maxlen, self.dim, self.attention_units, self.mlp, self.activation, self.pooling, self.seed,
                      self.attention_activation, self.position_slopes, self.recency)

    def _check_fitted(self) -> None:
        if self.net_ is None:
            raise RuntimeError("DIN is not fitted: call fit() first.")

    def predict(self, samples: pd.DataFrame, batch: int = 8192) -> np.ndarray:
        """Click probabilities of the impressions in ``samples``."""
        import keras

        self._check_fitted()
        x = self._packed(samples)
        out = [keras.ops.convert_to_numpy(keras.ops.sigmoid(self.net_(x[s : s + batch], training=False))) for s in range(0, len(x), batch)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def evaluate(self, samples: pd.DataFrame) -> dict[str, float]:
        """AUC, GAUC (per-user AUC weighted by impressions) and log loss on ``samples``."""
        return ctr_metrics(samples, self.predict(samples))

    def attention(self, user_id, candidates, at_time: int) -> tuple[np.ndarray, np.ndarray]:
        """The shopper's past clicks before ``at_time`` (raw ids, oldest first) and DIN's weight of
        each for every candidate item: ``(n_candidates, n_clicks)``."""
        import keras

        self._check_fitted()
        if self.pooling not in ("attention", "softmax"):
            raise ValueError(f"{self.pooling} pooling weighs every click alike; attention needs pooling='attention' or 'softmax'.")
        cand = np.asarray(list(candidates))
        frame = pd.DataFrame({USER: np.repeat(user_id, len(cand)), ITEM: cand, "timestamp": np.repeat(at_time, len(cand))})
        x = self._packed(frame)
        past, valid = self.behaviours_.before(np.array([user_id]), np.array([at_time]), self.maxlen)
        v = self.net_.describe(x[:, 0])
        e = self.net_.describe(x[:, 1:])
        keep = keras.ops.cast(keras.ops.not_equal(x[:, 1:, 0], 0), v.dtype)
        w = keras.ops.convert_to_numpy(self.net_.weights_of(e, v, keep, training=False))
        return past[0][valid[0]], w[:, valid[0]]

    def recency_weights(self) -> np.ndarray:
        """The learned weight of a click by its recency, ``[0]`` for the latest click (``recency=True``)."""
        self._check_fitted()
        if self.net_.recency is None:
            raise ValueError("this DIN has no recency weights: fit DIN(recency=True).")
        import keras

        return keras.ops.convert_to_numpy(self.net_.recency)[::-1].astype(np.float64)

    # --- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Atomic folder save (see :meth:`Recommender.save`): settings, vocabularies, click log, weights, manifest."""
        from recsys_tf.models.base import save_folder

        self._check_fitted()

        def write(folder: Path) -> None:
            (folder / "model.json").write_text(json.dumps({"class": "DIN", "params": self._params(), "vocab": self.vocab_}, indent=2))
            np.save(folder / "item_ids.npy", self.item_ids_)
            np.save(folder / "item_codes.npy", self.item_codes_)
            b = self.behaviours_
            for name in ("users", "offsets", "items", "times"):
                np.save(folder / f"clicks_{name}.npy", getattr(b, name))
            self.net_.save_weights(folder / "model.weights.h5")

        return save_folder(Path(path), write)

    @classmethod
    def load(cls, path: str | Path) -> "DIN":
        from recsys_tf.models.base import _read_json, verified_copy

        with verified_copy(Path(path)) as folder:
            meta = _read_json(folder / "model.json", path)
            if meta.get("class") != "DIN":
                raise DataError(f"{path}: not a saved DIN model (class {meta.get('class')!r}).")
            try:
                # saved before attention_activation existed: the attention unit used the MLP's activation;
                # before position_slopes existed, its PReLU had a slope per click position (Keras' default)
                params = {"attention_activation": meta["params"]["activation"], **meta["params"]}
                params.setdefault("position_slopes", params["attention_activation"] == "prelu" and params["pooling"] in ("attention", "softmax"))
                model = cls(**{**params, "attention_units": tuple(params["attention_units"]), "mlp": tuple(params["mlp"]),
                               "attributes": tuple(params.get("attributes", ATTRIBUTES))}, verbose=False)  # fmt: skip
                model.vocab_ = meta["vocab"]
                load = lambda n: np.load(folder / n, allow_pickle=False)  # noqa: E731
                model.item_ids_, model.item_codes_ = load("item_ids.npy"), load("item_codes.npy")
                model.behaviours_ = Behaviours(*(load(f"clicks_{n}.npy") for n in ("users", "offsets", "items", "times")))
                model.net_ = model._network()
                model.net_.load_weights(folder / "model.weights.h5")
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"{path}: damaged saved model ({type(exc).__name__}: {exc}); save it again.") from exc
            return model
