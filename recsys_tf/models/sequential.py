"""Sequence-aware recommenders: GRU4Rec, SASRec and BERT4Rec, written with ``keras.ops`` (any backend).

Each reads a user's items oldest first (:mod:`recsys_tf.data.sequences`) and turns the history
into a state ``h``; the score of item ``i`` is ``h . e_i`` with the same item embeddings ``e`` as
the input (shared input and output embeddings, as SASRec).

* **GRU4Rec** (Hidasi et al., ICLR 2016): a GRU over the item embeddings.
* **SASRec** (Kang & McAuley, ICDM 2018): causal self-attention -- position ``t`` attends to
  positions ``<= t`` only -- with learned position embeddings; trained to predict the next item at
  every position.
* **BERT4Rec** (Sun et al., CIKM 2019): the same blocks without the causal mask, trained to
  recover randomly masked items (the Cloze task); at prediction time a ``[MASK]`` is appended
  and its state scores the next item.

Losses (``loss=``), per position ``t`` with target ``i+`` and sampled negatives ``i-``:

* ``"bce"`` (SASRec's): ``-log sigma(s+) - log sigma(-s-)``, one negative.
* ``"gbce"`` (gSASRec, Petrov & Macdonald, RecSys 2023): ``-beta log sigma(s+) - sum_j log sigma(-s_j-)``
  with ``n_neg`` negatives, ``alpha = n_neg / (n_items - 1)`` and
  ``beta = alpha (t (1 - 1/alpha) + 1/alpha)``: the positive's probability is calibrated for
  the sampling (``t = gbce_t``; ``t = 0`` gives plain BCE with many negatives).
* ``"ce"`` (Klenitskiy & Vasilev, RecSys 2023): softmax cross-entropy over all items.

BERT4Rec always uses ``"ce"`` on the masked positions, as in its paper.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_tf.data.sampling import pair_keys, sample_negatives
from recsys_tf.data.sequences import PAD, Sequences, to_sequences
from recsys_tf.errors import DataError
from recsys_tf.models.base import Recommender, check_k, top_k
from recsys_tf.utils import import_keras_quietly, padded_width, progress

import_keras_quietly()  # its functions import Keras: keeps TensorFlow's start-up lines and retracing notes out of notebooks

Loss = Literal["bce", "gbce", "ce"]


def _compiled(fn, variables=()):
    """``fn`` compiled for repeated calls: a tf.function on TensorFlow, jax.jit on JAX.

    A tf.function reads TensorFlow variables when it runs. jax.jit would bake the values of the
    Keras ``variables`` that ``fn`` reads into the compiled code, so scores would stay those of the
    weights at the first call (further training, a restored best epoch, ``set_weights``); here they
    are passed in as arguments at every call instead (Keras' ``StatelessScope``).
    """
    keras = _keras()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        variables = list(variables)

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)
        return lambda *args: jitted([v.value for v in variables], *args)
    return fn


def _trim_padding(x: np.ndarray, multiple: int = 8) -> np.ndarray:
    """Left-padded inputs without the leading columns that are padding in every row; the width kept is
    rounded up to a multiple of ``multiple`` so that few input shapes are compiled."""
    return x[:, x.shape[1] - padded_width(x != PAD, multiple) :]


def _keras():
    import keras

    return keras


LAYOUTS = ("pre-norm", "authors", "post-norm")


def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}.")
    return layout


def build_sequence_net(kind: str, n_items: int, maxlen: int, dim: int, blocks: int, heads: int, dropout: float, seed: int,
                       layout: str = "pre-norm"):
    """The network of ``kind`` (``"gru4rec"``, ``"sasrec"``, ``"bert4rec"``): int sequences (B, L) -> states (B, L, dim).

    ``layout``: ``"pre-norm"``, the Transformer block of GPT-2 and later code (x + Attn(LN x), then
    x + FF(LN x)); ``"authors"``, the block of SASRec's own TensorFlow code (kang205/SASRec):
    h = LN x, x' = h + Attn(queries h, keys and values x) without an output projection, then
    h' = LN x', h' + FF(h'); its embeddings are Glorot-uniform (positions ~7x larger than here);
    ``"post-norm"``, BERT's block as the code of S3-Rec (Zhou et al., CIKM 2020; aHuiWang/CIKM2020-S3Rec)
    builds the SASRec whose numbers its tables report: e = LN(item + position) (no sqrt(dim) scale),
    x' = LN(x + Attn(x)), then LN(x' + W2 GELU(W1 x')) with W1 four times as wide, no final LN, every
    weight N(0, 0.02) and biases 0 (GELU in its tanh form, within 1e-3 of their erf form, as BERT4Rec's).
    """
    authors = _check_layout(layout) == "authors"
    post = layout == "post-norm"
    keras = _keras()
    from keras import layers, ops

    def glorot(s: int):  # the authors' tf.get_variable; the kit's dense layers
        return keras.initializers.GlorotUniform(seed=s)

    def normal(s: int):  # S3-Rec's (BERT's PyTorch port): every weight N(0, 0.02)
        return keras.initializers.RandomNormal(stddev=0.02, seed=s)

    def truncated(s: int):  # the kit's embeddings: N(0, 0.02) cut at 2 sd
        return keras.initializers.TruncatedNormal(stddev=0.02, seed=s)

    class Block(layers.Layer):
        """Pre-norm Transformer block: multi-head self-attention, then a position-wise feed-forward net."""

        def __init__(self, causal: bool, seed: int, **kw) -> None:
            super().__init__(**kw)
            init = normal if post else glorot
            self.causal, self.heads = causal, heads
            if authors:  # queries from the normalised input, keys and values from the input itself
                self.q = layers.Dense(dim, kernel_initializer=init(seed))
                self.kv = layers.Dense(2 * dim, kernel_initializer=init(seed + 1))
            else:
                self.qkv = layers.Dense(3 * dim, kernel_initializer=init(seed))
                self.proj = layers.Dense(dim, kernel_initializer=init(seed + 1))
            self.ff1 = layers.Dense(4 * dim if post else dim, kernel_initializer=init(seed + 2))
            self.ff2 = layers.Dense(dim, kernel_initializer=init(seed + 3))
            eps = 1e-12 if post else 1e-6  # S3-Rec's (BERT's) and SASRec's
            self.ln1, self.ln2 = layers.LayerNormalization(epsilon=eps), layers.LayerNormalization(epsilon=eps)
            self.drop = layers.Dropout(dropout, seed=seed + 4)

        def attend(self, qkv, keep, training=None):
            """Self-attention of (B, L, 3 dim) queries, keys and values -> (B, L, dim); padding keys masked."""
            length = ops.shape(qkv)[1]  # a tensor when a compiled function takes inputs of any width
            dh = dim // heads
            q, k, v = ops.split(qkv, 3, axis=-1)
            split = lambda t: ops.transpose(ops.reshape(t, (-1, length, heads, dh)), (0, 2, 1, 3))  # noqa: E731
            q, k, v = split(q), split(k), split(v)
            logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(dh)  # (B, H, L, L)
            allowed = ops.expand_dims(ops.expand_dims(keep, 1), 1)  # keys that are items, not padding
            if self.causal:
                steps = ops.arange(length)
                allowed = ops.logical_and(allowed, ops.expand_dims(steps, 1) >= ops.expand_dims(steps, 0))  # t sees <= t
            weights = ops.softmax(ops.where(allowed, logits, -1e9), axis=-1)
            self.last_attention = weights
            return ops.reshape(ops.transpose(ops.matmul(self.drop(weights, training=training), v), (0, 2, 1, 3)), (-1, length, dim))

        def feed_forward(self, x, training=None):
            normed = x if post else self.ln2(x)
            h = self.ff1(normed)
            # SASRec's feed-forward uses ReLU; BERT4Rec's, BERT's GELU in its tanh form (Google's BERT code, which
            # BERT4Rec builds on) -- also the form LiteRT and ONNX run exactly (the erf form has no ONNX operator)
            h = ops.relu(h) if self.causal and not post else keras.activations.gelu(h, approximate=True)
            if post:  # S3-Rec: no dropout inside the feed-forward net, the norm after the residual
                return self.ln2(x + self.drop(self.ff2(h), training=training))
            return (normed if authors else x) + self.drop(self.ff2(self.drop(h, training=training)), training=training)

        def project(self, x):
            """Queries, keys and values (..., 3 dim) of states ``x`` and the attention's residual input."""
            if post:
                return self.qkv(x), x
            normed = self.ln1(x)
            if authors:
                return ops.concatenate([self.q(normed), self.kv(x)], axis=-1), normed
            return self.qkv(normed), x

        def residual(self, skip, ctx, training=None):
            if authors:
                return skip + ctx
            out = skip + self.drop(self.proj(ctx), training=training)
            return self.ln1(out) if post else out

        def call(self, x, keep, training=None):
            qkv, skip = self.project(x)
            x = self.residual(skip, self.attend(qkv, keep, training), training)
            return self.feed_forward(x, training) * ops.cast(ops.expand_dims(keep, -1), x.dtype)

        def call_packed(self, x, rows, keep, training=None):
            """The same block on the items' states only, ``x`` (P, dim) at flat positions ``rows`` of the
            (B, L) input (B * L for an empty slot): only the attention needs the (B, L) layout."""
            b, length = ops.shape(keep)[0], keep.shape[1]  # b: a tensor when the batch size is not static
            qkv, skip = self.project(x)
            qkv = ops.scatter(ops.expand_dims(rows, -1), qkv, (b * length + 1, 3 * dim))[: b * length]
            ctx = ops.reshape(self.attend(ops.reshape(qkv, (b, length, 3 * dim)), keep, training), (b * length, dim))
            ctx = ops.take(ops.concatenate([ctx, ops.zeros((1, dim), ctx.dtype)]), rows, axis=0)
            return self.feed_forward(self.residual(skip, ctx, training), training)

    class SequenceNet(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.kind, self.n_items, self.maxlen = kind, n_items, maxlen
            # codes 1..n_items are items, 0 pads, n_items + 1 is BERT4Rec's [MASK]
            table = glorot if authors else normal if post else truncated
            self.items = layers.Embedding(n_items + 2, dim, embeddings_initializer=table(seed))
            self.drop = layers.Dropout(dropout, seed=seed + 1)
            if kind == "gru4rec":
                self.gru = layers.GRU(dim, return_sequences=True, seed=seed + 2)
            else:
                self.positions = layers.Embedding(maxlen, dim, embeddings_initializer=table(seed + 3))
                self.blocks = [Block(kind == "sasrec", seed + 10 * (b + 1)) for b in range(blocks)]
                # post-norm: the norm is on the embeddings, and each block ends with one
                self.norm = layers.LayerNormalization(epsilon=1e-12 if post else 1e-6)

        def embed(self, codes, at):
            """The input states of item ``codes`` at positions ``at`` (before dropout)."""
            if post:
                return self.norm(self.items(codes) + self.positions(at))
            return self.items(codes) * math.sqrt(dim) + self.positions(at)

        def out(self, x):
            return x if post else self.norm(x)

        def call(self, seq, training=None):
            keep = ops.not_equal(seq, PAD)
            if self.kind == "gru4rec":
                # left padding: the GRU reads zeros first, then the items; the last position sees them all
                x = self.items(seq) * math.sqrt(dim)
                return self.gru(self.drop(x * ops.cast(ops.expand_dims(keep, -1), x.dtype), training=training))
            # positions count from the right end (the latest item is at maxlen - 1), so an input without
            # its leading padding columns (see _trim_padding) gets the same positions and states
            x = self.drop(self.embed(seq, ops.arange(maxlen - ops.shape(seq)[1], maxlen)), training=training)
            x = x * ops.cast(ops.expand_dims(keep, -1), x.dtype)
            for block in self.blocks:
                x = block(x, keep, training=training)
            return self.out(x)

        def packed(self, seq, tokens: int, training=None):
            """States of the items of ``seq`` (B, L) only: (tokens, dim) and their flat positions (tokens,),
            ``B * L`` for the empty slots past the batch's items (``tokens`` bounds their number).

            The same function as :meth:`call` at those positions (the dense layers then run on the
            items, not on the padding: ~9x less work on the Amazon data, 6 items a user in 50 slots).
            """
            b, length = ops.shape(seq)[0], seq.shape[1]  # b: a tensor in TensorFlow's epoch loop (see fast_loop)
            flat = ops.reshape(seq, (-1,))
            rows = first_slots(ops.not_equal(flat, PAD), tokens, b * length)
            codes = ops.take(ops.concatenate([flat, ops.zeros((1,), flat.dtype)]), rows)
            position = ops.concatenate([ops.tile(ops.arange(maxlen - length, maxlen), (b,)), ops.zeros((1,), "int32")])
            x = self.drop(self.embed(codes, ops.take(position, rows)), training=training)
            keep = ops.not_equal(seq, PAD)
            for block in self.blocks:
                x = block.call_packed(x, rows, keep, training=training)
            return self.out(x), rows

        def item_table(self):
            """Embeddings of items 1..n_items (the output layer)."""
            return self.items.embeddings[1 : n_items + 1]

    net = SequenceNet()
    net(np.ones((1, maxlen), "int32"))
    return net


def _gbce_beta(n_neg: int, n_items: int, t: float) -> float:
    alpha = n_neg / max(n_items - 1, 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def first_slots(flag, size: int, fill: int):
    """Indices of the first ``size`` true entries of the 1-D ``flag`` in order, then ``fill`` for the
    slots past the last one (a cumulative sum and a scatter: top_k or a sort runs ~7x slower than
    a whole training step under XLA on a CPU). ``size`` must be at least the number of true entries."""
    from keras import ops

    flat = ops.cast(flag, "int32")
    slot = ops.where(flat > 0, ops.cumsum(flat) - 1, size)
    at = ops.scatter(ops.expand_dims(slot, -1), ops.arange(ops.shape(flat)[0], dtype="int32"), (size + 1,))[:size]
    return ops.where(ops.arange(size) < ops.sum(flat), at, fill)


def sequence_loss(net, packed, loss: str, beta: float = 1.0, positions: int | None = None, tokens: int | None = None,
                  batch_size: int | None = None):
    """Per-sample loss of a batch; their mean is the mean over all target positions of the batch.

    ``packed`` (B, 2 + n_neg, L): input sequences, target items (0 where there is none) and, for
    ``bce`` / ``gbce``, negative items per position. ``positions`` (``ce`` only): at least the
    number of target positions of the batch; the softmax over all items is then computed at those
    positions only -- the same loss, a fraction of the work when most of the batch is padding.
    ``tokens`` (SASRec, BERT4Rec): at least the number of items in the inputs of the batch; the
    network then runs on them only (:meth:`SequenceNet.packed`), the same loss again. ``batch_size``:
    the most rows a batch of unknown size can have (without it such a batch is not packed).
    """
    from keras import ops

    seq, target = packed[:, 0], packed[:, 1]
    # a batch of unknown size (TensorFlow's epoch loop slices batches of a dynamic size; Keras fit) has at
    # most ``batch_size`` rows: the bound decides whether packing saves work; None: unknown, no packing
    rows_at_most = seq.shape[0] if seq.shape[0] is not None else batch_size
    slots = None if rows_at_most is None or seq.shape[1] is None else rows_at_most * seq.shape[1]
    neg_axis = 1  # negatives (B, n_neg, L), or (n_neg, tokens) on packed states
    if tokens is not None and net.kind != "gru4rec" and slots is not None and tokens < slots:
        h, rows = net.packed(seq, tokens, training=True)  # (tokens, d)
        pick = lambda t: ops.take(ops.concatenate([ops.reshape(t, (-1,)), ops.zeros((1,), t.dtype)]), rows)  # noqa: E731
        target, slots, neg_axis = pick(target), tokens, 0
        negatives = ops.stack([pick(packed[:, 2 + j]) for j in range(packed.shape[1] - 2)]) if loss != "ce" else None
    else:
        h, rows = net(seq, training=True), None
        negatives = packed[:, 2:]
    valid = ops.cast(ops.not_equal(target, PAD), h.dtype)
    total = ops.maximum(ops.sum(valid), 1.0)
    if loss == "ce" and positions is not None and slots is not None and positions < slots:
        # the r-th target position goes to slot r; slots past the last target are dropped
        at = first_slots(ops.reshape(valid, (-1,)) > 0, positions, 0)
        h_at = ops.take(ops.reshape(h, (-1, ops.shape(h)[-1])), at, axis=0)
        target_at = ops.take(ops.reshape(target, (-1,)), at)
        logits = ops.matmul(h_at, ops.transpose(net.item_table()))  # (positions, n_items)
        ce = ops.sparse_categorical_crossentropy(ops.maximum(target_at - 1, 0), logits, from_logits=True)
        filled = ops.cast(ops.arange(positions) < ops.cast(ops.sum(valid), "int32"), h.dtype)  # not slots past the last target
        return ops.ones_like(seq[:, 0], dtype=h.dtype) * (ops.sum(ce * filled) / total)
    if loss == "ce":
        logits = ops.matmul(h, ops.transpose(net.item_table()))  # (B, L, n_items)
        per_pos = ops.sparse_categorical_crossentropy(ops.maximum(target - 1, 0), logits, from_logits=True)
    else:
        table = net.items.embeddings
        pos = ops.sum(h * ops.take(table, target, axis=0), -1)
        neg = ops.sum(ops.expand_dims(h, neg_axis) * ops.take(table, negatives, axis=0), -1)
        per_pos = -beta * ops.log_sigmoid(pos) - ops.sum(ops.log_sigmoid(-neg), axis=neg_axis)
    if rows is not None:
        return ops.ones_like(seq[:, 0], dtype=h.dtype) * (ops.sum(per_pos * valid) / total)
    return ops.sum(per_pos * valid, axis=-1) * ops.cast(ops.shape(seq)[0], h.dtype) / total


class SequentialRecommender(Recommender):
    """Base of the sequence models: the kit's ``fit`` / ``recommend`` / ``evaluate`` / ``save`` plus
    :meth:`recommend_next` for a history given as a list of item ids (a session never seen in training).

    ``fit(train)`` takes interactions with a ``timestamp`` (or a position) per row; each user's
    items in time order are their history. ``recommend(user, k)`` and ``evaluate(test)`` continue
    that history; ``evaluate(test, history=val)`` appends the validation items to it first (the
    leave-one-out test of SASRec). Histories longer than ``maxlen`` are truncated to their most
    recent ``maxlen`` items, in training and at prediction.

    Training is Adam at ``learning_rate`` with ``beta_2`` (Keras' and PyTorch's default 0.999; SASRec's
    code uses 0.98).

    ``fit(train, items, val=val, checkpoint="run.npz")`` writes the training state after every epoch
    and resumes from it when called again (hours-long fits survive a stop; see ``_fit``);
    ``fit_seconds_`` is the training time across resumed runs.
    """

    kind = ""
    _param_names = ("maxlen", "dim", "blocks", "heads", "dropout", "loss", "n_neg", "gbce_t", "epochs", "batch_size",
                    "learning_rate", "seed", "patience", "mask_prob", "beta_2")  # fmt: skip
    # settings added after checkpoints were first written: in a fit's fingerprint only when not at these
    # defaults, so that a checkpoint written before they existed still resumes. beta_2 is always in it: its
    # default was 0.9 by mistake from 2026-11-30 to 2026-12-01, so a checkpoint whose fingerprint lacks it
    # may have been trained under either value, and is refused
    _later_params: dict[str, Any] = {"layout": "pre-norm"}
    layout = "pre-norm"  # the Transformer block (see build_sequence_net); SASRec takes it as an argument

    def __init__(self, maxlen: int = 50, dim: int = 64, blocks: int = 2, heads: int = 1, dropout: float = 0.2,
                 loss: Loss = "bce", n_neg: int = 1, gbce_t: float = 0.75, epochs: int = 50, batch_size: int = 128,
                 learning_rate: float = 1e-3, seed: int = 0, patience: int | None = None, mask_prob: float = 0.2,
                 beta_2: float = 0.999, verbose: bool = True, epoch_callback=None) -> None:  # fmt: skip
        super().__init__()
        if loss not in ("bce", "gbce", "ce"):
            raise ValueError(f"loss must be 'bce', 'gbce' or 'ce', got {loss!r}.")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads}).")
        check_k(maxlen, "maxlen")
        self.maxlen, self.dim, self.blocks, self.heads, self.dropout = maxlen, dim, blocks, heads, dropout
        self.loss, self.n_neg, self.gbce_t, self.epochs, self.batch_size = loss, n_neg, gbce_t, epochs, batch_size
        self.learning_rate, self.seed, self.patience, self.mask_prob = learning_rate, seed, patience, mask_prob
        self.beta_2 = beta_2
        self.verbose, self.epoch_callback = verbose, epoch_callback
        self.history_: list[dict[str, float]] = []
        self.best_epoch_: int | None = None
        self.net_ = None
        self.sequences_: Sequences | None = None
        self._extra: Sequences | None = None

    def _state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}

    # --- training -----------------------------------------------------------------------------
    def _fit(self, train: pd.DataFrame, val: pd.DataFrame | None = None, checkpoint: str | Path | None = None) -> None:
        """Train (see :meth:`Recommender.fit`). ``checkpoint``: a file where the whole training state is
        written after every epoch (weights, Adam's moments, the random generators, the early-stopping
        state); a fit given the same file, settings and data resumes after the last finished epoch and
        ends with the same weights as an uninterrupted fit. A finished fit leaves the file behind: the
        same call then returns at once; delete the file to train again."""
        keras = _keras()
        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.sequences_ = self._code_sequences(train)
        self.net_ = self._build_net()
        beta = _gbce_beta(self.n_neg, self.n_items, self.gbce_t) if self.loss == "gbce" else 1.0
        loss_kind = "ce" if self.kind == "bert4rec" else self.loss
        trainer = _Trainer(self.net_, loss_kind, beta, self.learning_rate, self.batch_size, self.beta_2)
        self.history_, self.best_epoch_ = [], None
        best, best_weights, waited, first, t0, self.fit_seconds_ = None, None, 0, 0, time.perf_counter(), 0.0
        ckpt = None if checkpoint is None else _Checkpoint(Path(checkpoint), self._fingerprint(val))
        if ckpt is not None and ckpt.path.exists():
            state = ckpt.restore(self.net_, trainer, rng)
            self.history_, self.best_epoch_, self.fit_seconds_ = state["history"], state["best_epoch"], state["elapsed"]
            best, best_weights, waited, first = state["best"], state["best_weights"], state["waited"], state["epoch"]
            if state["finished"]:
                return
        elapsed = lambda: self.fit_seconds_ + time.perf_counter() - t0  # noqa: E731  (across resumed runs)
        bar = progress(range(first, self.epochs), desc=type(self).__name__, disable=not self.verbose or None,
                       initial=first, total=self.epochs)  # fmt: skip
        for epoch in bar:
            started = time.perf_counter()
            packed = self._epoch_samples(rng)
            loss = trainer.run_epoch(packed[rng.permutation(len(packed))])
            rec: dict[str, float] = {"epoch": epoch + 1, "loss": loss, "seconds": time.perf_counter() - started}
            if val is not None:
                rec["val_ndcg@10"] = self.evaluate(val, k=10)["ndcg@10"]
                if best is None or rec["val_ndcg@10"] > best:
                    best, best_weights, waited, self.best_epoch_ = rec["val_ndcg@10"], self.net_.get_weights(), 0, epoch + 1
                else:
                    waited += 1
            if self.epoch_callback is not None:
                rec.update(self.epoch_callback(self))
            self.history_.append(rec)
            bar.set_postfix(loss=f"{loss:.4f}", **({"val_ndcg@10": f"{rec['val_ndcg@10']:.4f}", "best": f"{best:.4f} at {self.best_epoch_}"}
                                                  if val is not None else {}), refresh=False)  # fmt: skip
            stop = self.patience is not None and val is not None and waited > self.patience
            if ckpt is not None and not stop and epoch + 1 < self.epochs:
                ckpt.write(self.net_, trainer, rng, epoch + 1, best, best_weights, waited, self.best_epoch_, self.history_, elapsed())
            if stop:
                break
        if best_weights is not None:
            self.net_.set_weights(best_weights)
        self.fit_seconds_ = elapsed()
        if ckpt is not None:  # the final weights: the same call returns them without training
            ckpt.write(self.net_, trainer, rng, len(self.history_), best, None, waited, self.best_epoch_, self.history_,
                       self.fit_seconds_, finished=True)  # fmt: skip

    def _fingerprint(self, val: pd.DataFrame | None) -> str:
        """What a checkpoint must share with this fit: the settings, the backend, the coded training
        sequences and the validation rows."""
        import hashlib

        state = {k: v for k, v in self._state().items() if k not in self._later_params or v != self._later_params[k]}
        h = hashlib.sha256(json.dumps({"class": type(self).__name__, **state, "backend": _keras().backend.backend(),
                                       "n_items": self.n_items}, sort_keys=True, default=str).encode())  # fmt: skip
        h.update(np.ascontiguousarray(self.sequences_.codes, np.int64).tobytes())
        h.update(np.ascontiguousarray(self.sequences_.lengths, np.int64).tobytes())
        if val is not None:
            h.update(pd.util.hash_pandas_object(val.reset_index(drop=True), index=False).to_numpy().tobytes())
        return h.hexdigest()

    def _code_sequences(self, codes: pd.DataFrame) -> Sequences:
        if "timestamp" not in codes:
            raise DataError("a sequence model needs the order of each user's items: add a 'timestamp' (or position) column.")
        frame = pd.DataFrame({"user_id": codes["user_idx"].to_numpy(), "item_id": codes["item_idx"].to_numpy(),
                              "timestamp": codes["timestamp"].to_numpy()})  # fmt: skip
        return to_sequences(frame, item_ids=np.arange(self.n_items))

    def _epoch_samples(self, rng: np.random.Generator) -> np.ndarray:
        """This epoch's packed training rows (users, 2 + negatives, maxlen), drawn afresh."""
        seqs = self.sequences_
        if self.kind == "bert4rec":
            x = seqs.padded(self.maxlen)
            real = x != PAD
            masked = real & (rng.random(x.shape) < self.mask_prob)
            last = np.where(real.any(1), self.maxlen - 1, 0)
            none = ~masked.any(1) & real.any(1)
            masked[np.flatnonzero(none), last[none]] = True  # every row predicts at least one item
            return np.stack([np.where(masked, self.n_items + 1, x), np.where(masked, x, PAD)], 1).astype(np.int32)
        window = seqs.padded(self.maxlen + 1)
        x, target = window[:, :-1], np.where(window[:, :-1] != PAD, window[:, 1:], PAD)
        parts = [x, target]
        if self.loss != "ce":
            rows = np.repeat(np.arange(len(seqs)), self.maxlen)
            neg = sample_negatives(rows, self._row_seen(), self.n_items, self.n_neg, seed=rng) + 1
            parts += list(np.moveaxis(neg.reshape(len(seqs), self.maxlen, self.n_neg), 2, 0))
        return np.stack(parts, 1).astype(np.int32)

    def _row_seen(self) -> np.ndarray:
        """Pair keys (row, item code - 1) of each training sequence: negatives avoid the user's items."""
        seqs = self.sequences_
        rows = np.repeat(np.arange(len(seqs)), seqs.lengths)
        return pair_keys(rows, seqs.codes.astype(np.int64) - 1, self.n_items)

    # --- scoring ------------------------------------------------------------------------------
    @property
    def _width(self) -> int:
        """History slots of the input: BERT4Rec's last slot holds the [MASK]."""
        return self.maxlen - 1 if self.kind == "bert4rec" else self.maxlen

    def _histories(self, user_codes: np.ndarray) -> np.ndarray:
        """Model inputs (users, maxlen) for user codes: training history (+ ``history=`` items)."""
        seqs = self.sequences_ if self._extra is None else self._extra
        return self._append_mask(seqs.padded(self._width, rows=np.asarray(user_codes)))

    def _session_input(self, codes: np.ndarray) -> np.ndarray:
        """One input row from item codes (0-based, oldest first): the most recent ones, left-padded."""
        x = np.zeros((1, self._width), np.int32)
        tail = codes[-self._width :] + 1
        x[0, self._width - len(tail) :] = tail
        return self._append_mask(x)

    def _append_mask(self, x: np.ndarray) -> np.ndarray:
        if self.kind != "bert4rec":
            return x
        return np.concatenate([x, np.full((len(x), 1), self.n_items + 1, np.int32)], 1)

    def states(self, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        """The last position's state of each input sequence (rows, dim)."""
        keras = _keras()
        out = [keras.ops.convert_to_numpy(self.net_(x[s : s + batch], training=False)[:, -1]) for s in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def _item_table(self) -> np.ndarray:
        return _keras().ops.convert_to_numpy(self.net_.item_table())

    def _top_k_codes(self, user_codes: np.ndarray, k: int, exclude_seen: bool, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item codes of many users on the device: states, scores, masking and selection in one
        compiled function per batch of histories (``keras_base.device_top_k``; the host path's lists up
        to float rounding: scores within ~2e-6, so an exact near-tie may swap). Full ranking of Beauty's
        22,363 users: 13.0 s on the host path, 3.2 s here (2-core CPU). SASRec and BERT4Rec skip the
        padding: the Games data's 31,013 users (9 items each on average, maxlen 50) in 12.9 s instead of
        23.6 s with full-width inputs (a slower 2-core CPU shared with a training run; 1 of 31,013 lists
        differed, by a near-tie)."""
        from recsys_tf.models.keras_base import KerasRecommender, _full_float32_matmuls, device_top_k

        if _keras().backend.backend() not in ("tensorflow", "jax") or len(user_codes) < KerasRecommender.device_min_users:
            return super()._top_k_codes(user_codes, k, exclude_seen, batch_size)
        fn, k = self._scores_fn(), min(check_k(k), self.n_items)
        if self.kind == "gru4rec":  # the GRU's state moves over the padding too: inputs keep their full width
            with _full_float32_matmuls():
                return device_top_k(self, user_codes, k, exclude_seen, batch_size, lambda users: fn(self._histories(users)))
        # Attention ignores padding, so each batch drops its all-padding columns; batches of users with
        # similar history lengths (sorted) leave little: 2-3x faster on the Amazon data (~9 items a user, maxlen 50).
        order = np.argsort(np.count_nonzero(self._histories(user_codes) != PAD, axis=1), kind="stable")
        with _full_float32_matmuls():
            idx, vals = device_top_k(self, np.asarray(user_codes)[order], k, exclude_seen, batch_size,
                                     lambda users: fn(_trim_padding(self._histories(users))))  # fmt: skip
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return idx[back], vals[back]

    def _score_codes(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        users = np.asarray(users)
        if items is None:
            return self.states(self._histories(users)) @ self._item_table().T
        uniq, inv = np.unique(users, return_inverse=True)
        h = self.states(self._histories(uniq))
        return np.einsum("nd,nd->n", h[inv], self._item_table()[np.asarray(items)])

    def evaluate(self, test: pd.DataFrame, k: int = 10, exclude_seen: bool = True, per_user: bool = False,
                 exclude: pd.DataFrame | None = None, history: pd.DataFrame | None = None):  # fmt: skip
        """Full-ranking metrics of the next item (see :meth:`Recommender.evaluate`); ``history``: interactions
        that happened after training and before ``test`` (the validation items), appended to each
        user's input and masked from the ranking."""
        with self.extended(history):
            masked = history if exclude is None else (exclude if history is None else pd.concat([exclude, history]))
            return super().evaluate(test, k, exclude_seen, per_user, exclude=masked)

    @contextmanager
    def extended(self, history: pd.DataFrame | None):
        """Context manager: inputs continue with ``history`` (user_id, item_id, timestamp) rows."""
        if history is None or not len(history):
            yield self
            return
        codes = self.encoder_.transform(history.sort_values("timestamp", kind="stable") if "timestamp" in history else history)
        old = self.sequences_
        users = np.repeat(np.arange(len(old)), old.lengths)
        both = pd.DataFrame({"user_idx": np.r_[users, codes["user_idx"].to_numpy()],
                             "item_idx": np.r_[old.codes - 1, codes["item_idx"].to_numpy()],
                             "timestamp": np.r_[np.zeros(len(users)), np.arange(1, len(codes) + 1)]})  # fmt: skip
        self._extra = self._code_sequences(both)
        try:
            yield self
        finally:
            self._extra = None

    def recommend_next(self, history, k: int = 10, exclude_seen: bool = True,
                       unknown: Literal["raise", "ignore"] = "raise") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Top-``k`` next items (raw ids) and scores for one session: ``history`` is a list of raw item ids,
        oldest first, from any shopper (a session never seen in training works the same way).

        Items already in the history are not recommended (``exclude_seen``). Unknown item ids raise a
        DataError naming them, or are skipped with ``unknown="ignore"``. A history longer than
        ``maxlen`` is truncated to its last ``maxlen`` items (``maxlen - 1`` for BERT4Rec, whose last
        slot is the ``[MASK]``).
        """
        self._check_fitted()
        k = check_k(k)
        raw = np.asarray(list(history))
        if not len(raw):
            raise DataError("empty history: a sequence model needs at least one item; for a new visitor "
                            "recommend popular items (Popularity) instead.")  # fmt: skip
        codes = self.encoder_.items.transform(raw, unknown="oov")
        if (codes < 0).any() and unknown == "raise":
            raise DataError(f"{int((codes < 0).sum())} item id(s) in the history are unknown to the model, e.g. "
                            f"{raw[codes < 0][:5].tolist()}; drop them or pass unknown='ignore'.")  # fmt: skip
        codes = codes[codes >= 0]
        if not len(codes):
            raise DataError("no item of the history is known to the model.")
        scores = self._predict_one(self._session_input(codes))
        if exclude_seen:
            scores[codes] = -np.inf
        idx, vals = top_k(scores[None, :], min(k, self.n_items))
        keep = vals[0] > -np.inf
        return self.encoder_.items.inverse_transform(idx[0][keep]), vals[0][keep]

    def _predict_one(self, x: np.ndarray) -> np.ndarray:
        """Scores of all items for one input row, through a compiled function (a few ms on a CPU)."""
        return np.asarray(_keras().ops.convert_to_numpy(self._scores_fn()(x)[0]), dtype=np.float64)

    def _scores_fn(self):
        """Input rows (B, width) -> scores of all items from the last position (B, n_items), compiled."""
        ops, net = _keras().ops, self.net_
        return self._compiled_for("scores", lambda seq: ops.matmul(net(seq, training=False)[:, -1], ops.transpose(net.item_table())))

    def session_state(self, codes: np.ndarray) -> np.ndarray:
        """The state of a session given as item codes (oldest first): scores are ``state @ item_vectors.T``.

        The serving layer retrieves candidates with it (inner-product search over :attr:`item_vectors`).
        """
        net = self.net_
        fn = self._compiled_for("state", lambda seq: net(seq, training=False)[0, -1])
        return np.asarray(_keras().ops.convert_to_numpy(fn(self._session_input(np.asarray(codes)))), dtype=np.float64)

    def _compiled_for(self, name: str, fn):
        """``fn`` compiled once per trained network (a refit or a load builds a new one)."""
        cache = self.__dict__.setdefault("_compiled_fns", {})
        if name not in cache or cache[name][0] is not self.net_:
            cache[name] = (self.net_, _compiled(fn, self.net_.variables))
        return cache[name][1]

    @property
    def item_vectors(self) -> np.ndarray:
        """Output embeddings of the items in code order (rows align with :attr:`item_ids`)."""
        self._check_fitted()
        return self._item_table()

    def attention_maps(self, history) -> list[np.ndarray]:
        """Each block's attention weights (heads, L, L) for one history of raw item ids (SASRec, BERT4Rec)."""
        if self.kind == "gru4rec":
            raise ValueError("GRU4Rec has no attention; use SASRec or BERT4Rec.")
        self.net_(self._session_input(self.encoder_.items.transform(np.asarray(list(history)))), training=False)
        return [_keras().ops.convert_to_numpy(b.last_attention)[0] for b in self.net_.blocks]

    # --- persistence --------------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> None:
        self.net_.save_weights(folder / "model.weights.h5")
        np.save(folder / "sequence_offsets.npy", self.sequences_.offsets)
        np.save(folder / "sequence_codes.npy", self.sequences_.codes)

    def _load_weights(self, folder: Path) -> None:
        offsets = np.load(folder / "sequence_offsets.npy", allow_pickle=False)
        codes = np.load(folder / "sequence_codes.npy", allow_pickle=False)
        if offsets.ndim != 1 or len(offsets) != self.n_users + 1 or offsets[-1] != len(codes) or (codes < 1).any() or (codes > self.n_items).any():
            raise DataError(f"{folder}: the saved sequences do not match the model's users and items.")
        self.sequences_ = Sequences(np.arange(self.n_users), offsets, codes, np.arange(self.n_items))
        self.net_ = self._build_net()
        self.net_.load_weights(folder / "model.weights.h5")

    def _build_net(self):
        return build_sequence_net(self.kind, self.n_items, self.maxlen, self.dim, self.blocks, self.heads, self.dropout,
                                  self.seed, self.layout)  # fmt: skip


class _Checkpoint:
    """A training state in one ``.npz`` file (no pickles: arrays and one JSON text), written atomically."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint

    def write(self, net, trainer: "_Trainer", rng: np.random.Generator, epoch: int, best, best_weights, waited: int,
              best_epoch, history, elapsed: float, finished: bool = False) -> None:  # fmt: skip
        import io

        from recsys_tf.utils import atomic_write

        keras = _keras()
        meta = {"format": 1, "fingerprint": self.fingerprint, "epoch": epoch, "best": best, "waited": waited, "best_epoch": best_epoch,
                "history": history, "rng": rng.bit_generator.state, "positions": trainer.positions, "tokens": trainer.tokens, "elapsed": elapsed,
                "finished": finished}  # fmt: skip
        arrays = {f"net_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(net.variables)}
        arrays |= {f"opt_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(trainer.optimizer.variables)}
        arrays |= {f"best_{i}": w for i, w in enumerate(best_weights or [])}
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta, default=float)), **arrays)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, buf.getvalue())

    def restore(self, net, trainer: "_Trainer", rng: np.random.Generator) -> dict[str, Any]:
        """Load the state into ``net``, the trainer's optimizer and ``rng``; return the loop's state."""
        try:
            with np.load(self.path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("fingerprint") != self.fingerprint:
                    raise DataError(f"{self.path}: a checkpoint of another fit (other settings, backend or data); delete it, or "
                                    "give this fit another checkpoint path.")  # fmt: skip
                arrays = {k: z[k] for k in z.files if k != "meta"}
            if not trainer.optimizer.built:  # Keras fit (no compiled loop for this backend) builds it lazily
                trainer.optimizer.build(net.trainable_variables)
            for prefix, variables in (("net", net.variables), ("opt", trainer.optimizer.variables)):
                if sum(k.startswith(prefix + "_") for k in arrays) != len(variables):
                    raise ValueError(f"{prefix}: {len(variables)} variables expected")
                for i, v in enumerate(variables):
                    v.assign(arrays[f"{prefix}_{i}"])
            rng.bit_generator.state = meta["rng"]
            trainer.resize(meta["positions"], meta.get("tokens"))  # checkpoints before 2026-11-30 have no "tokens"
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path}: damaged checkpoint ({type(exc).__name__}: {exc}); delete it to train from the start.") from exc
        n_best = sum(k.startswith("best_") for k in arrays)
        return {**{k: meta[k] for k in ("epoch", "best", "waited", "best_epoch", "history", "elapsed", "finished")},
                "best_weights": [arrays[f"best_{i}"] for i in range(n_best)] or None}  # fmt: skip


class _Trainer:
    """Adam over packed epochs, through the kit's compiled epoch loop where the backend has one."""

    def __init__(self, net, loss: str, beta: float, learning_rate: float, batch_size: int, beta_2: float = 0.999) -> None:
        keras = _keras()
        from recsys_tf.models import fast_loop

        self.batch_size, self.loss, self.kind = batch_size, loss, net.kind
        self.positions: int | None = None  # full softmax at this many positions per batch (see sequence_loss)
        self.tokens: int | None = None  # the network on this many input items per batch (see sequence_loss)
        self.rows_bound: int | None = None  # the most rows of a batch of dynamic size, when its sizes keep up
        trainer = self

        class Wrapped(keras.Model):
            def __init__(self) -> None:
                super().__init__()
                self.inner = net
                self.built = True  # its only weights are the (built) network's: JAX's stateless_call needs this

            def call(self, packed, training=None):
                return sequence_loss(self.inner, packed, loss, beta, trainer.positions, trainer.tokens, trainer.rows_bound)

        self.model = Wrapped()
        self.optimizer = keras.optimizers.Adam(learning_rate, beta_2=beta_2)
        self.mean = lambda y_true, y_pred: keras.ops.mean(y_pred)  # the model returns the loss itself
        self.model.compile(optimizer=self.optimizer, loss=self.mean)
        # XLA only where it pays: on a 2-core CPU an epoch of Beauty ran as fast or faster without it
        # (SASRec-BCE 9.5 s vs 12.6, SASRec-CE 21.5 vs 22.8) and its compile took 5-10 s per model
        self.jit = fast_loop.tf_sees_gpu()
        self.fast = fast_loop.trainer_for(self.model, self.optimizer, self.mean, batch_size, jit=self.jit)

    def _fit_sizes(self, packed: np.ndarray) -> None:
        """Size the softmax (``ce``) to the epoch's fullest batch in target positions and the network
        (SASRec, BERT4Rec) to its fullest batch in input items (+25%, in steps of 256, so that they
        are rarely recompiled); they only grow, and a batch never has more than they hold."""
        def need(row: int) -> int:
            counts = np.count_nonzero(packed[:, row], axis=1)
            return int(np.add.reduceat(counts, np.arange(0, len(counts), self.batch_size)).max())

        def grown(old: int | None, n: int) -> int:
            return old if old is not None and n <= old else -(-int(n * 1.25) // 256) * 256

        self.resize(grown(self.positions, need(1)) if self.loss == "ce" else self.positions,
                    grown(self.tokens, need(0)) if self.kind != "gru4rec" else None)  # fmt: skip

    def resize(self, positions: int | None, tokens: int | None = None) -> None:
        """Compute the softmax at ``positions`` target positions per batch and the network on ``tokens``
        input items per batch (``None``: all of them)."""
        from recsys_tf.models import fast_loop

        if (positions, tokens) == (self.positions, self.tokens):
            return
        self.positions, self.tokens = positions, tokens
        self.fast = fast_loop.trainer_for(self.model, self.optimizer, self.mean, self.batch_size, jit=self.jit)  # traced anew

    def run_epoch(self, packed: np.ndarray) -> float:
        """One pass over ``packed`` (already shuffled), returning the mean loss."""
        y = np.zeros(len(packed), np.float32)
        if self.fast is not None and len(packed) >= self.batch_size:
            self._fit_sizes(packed)
            self.rows_bound = self.batch_size  # its batches have a dynamic size (see fast_loop)
            return self.fast.run_epoch(*self.fast.device_batches(packed, y))
        # Keras fit keeps its trace while the sizes would grow: its batches (of unknown size) are not packed
        self.rows_bound = None
        hist = self.model.fit(packed, y, batch_size=self.batch_size, epochs=1, verbose=0, shuffle=False)
        return float(hist.history["loss"][-1])


class GRU4Rec(SequentialRecommender):
    """GRU4Rec (Hidasi et al., ICLR 2016): a GRU reads the session; trained on the next item at every
    position (with the loss of ``loss=``; ``"ce"`` as in later re-implementations)."""

    name = kind = "gru4rec"

    def __init__(self, loss: Loss = "ce", blocks: int = 1, **kwargs: Any) -> None:
        super().__init__(loss=loss, blocks=blocks, **kwargs)


class SASRec(SequentialRecommender):
    """SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the last ``maxlen`` items.

    ``loss="bce"`` with one negative is the paper's; ``"gbce"`` with ``n_neg`` negatives is gSASRec;
    ``"ce"`` is the full softmax of Klenitskiy & Vasilev (RecSys 2023).

    ``layout="authors"`` builds the block as the authors' TensorFlow code does (see
    :func:`build_sequence_net`); with ``beta_2=0.98`` (its Adam) and ``dim=50`` it is their model.
    ``layout="post-norm"`` builds BERT's block as S3-Rec's code does for the SASRec of its tables;
    with ``heads=2``, ``dropout=0.5`` and ``batch_size=256`` it is that model.
    """

    name = kind = "sasrec"
    _param_names = SequentialRecommender._param_names + ("layout",)

    def __init__(self, layout: str = "pre-norm", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout = _check_layout(layout)


class BERT4Rec(SequentialRecommender):
    """BERT4Rec (Sun et al., CIKM 2019): bidirectional self-attention trained to fill in masked items
    (a share ``mask_prob`` of each sequence, at least one); predicts from a ``[MASK]`` appended to the history."""

    name = kind = "bert4rec"

    def __init__(self, loss: Loss = "ce", **kwargs: Any) -> None:
        super().__init__(loss=loss, **kwargs)
