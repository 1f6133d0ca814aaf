"""Compiled whole-epoch training loops, with the epoch's data resident as backend tensors.

Keras ``fit`` feeds NumPy batches from the host one step at a time; for a model as small as
NeuMF (under a million parameters) that input pipeline, not the arithmetic, limits the speed on a
GPU. Here the epoch's samples are moved to the device once and every step runs inside one
``jax.lax.scan`` compiled with ``jax.jit``, using Keras' stateless API
(``model.stateless_call`` and ``optimizer.stateless_apply``) -- the model and optimizer stay
ordinary Keras objects and the weights are written back after the epoch.

On TensorFlow, :class:`TfEpochTrainer` does the same with one ``tf.function`` whose loop over the
epoch's batches runs as a graph ``while`` loop: no Python between steps (Keras ``fit`` returns to
Python every ``steps_per_execution`` batches and runs its callback machinery), compiled with XLA
where that repays its compile (:func:`xla_pays`). NeuMF on a 2-core CPU: ~1.2 M samples/s against
0.74 M with ``fit`` (``bench/bench_train.py``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def available() -> bool:
    """True when Keras runs on the JAX backend."""
    import keras

    return keras.backend.backend() == "jax"


# XLA compiles TensorFlow's epoch in 2-8 s on a 2-core CPU and then saves ~1.7 ms a step of NeuMF
# (0.39 -> 1.10 M samples/s at batch 1024, bench/bench_train.py): it pays from about this many steps
XLA_MIN_STEPS = 2000


def xla_pays(samples: int, batch_size: int, epochs: int) -> bool:
    """Is XLA's compile time (TensorFlow) repaid by ``epochs`` epochs of ``samples`` in batches of ``batch_size``?"""
    return epochs * -(-samples // batch_size) >= XLA_MIN_STEPS


def tf_sees_gpu() -> bool:
    """True when Keras runs on TensorFlow and TensorFlow has a GPU."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def trainer_for(net, optimizer, loss: Callable, batch_size: int, jit: bool = True):
    """The compiled epoch trainer for the current backend (JAX or TensorFlow), or None for others.

    ``jit=False``: TensorFlow runs the epoch as a plain graph, without XLA (no compile time; see
    :func:`xla_pays`). JAX always compiles: its loop is a ``jax.lax.scan`` under ``jax.jit``.
    """
    import keras

    from recsys_tf import distributed

    if distributed.active() is not None:  # data-parallel: Keras fit shards the batches across the devices
        return None
    backend = keras.backend.backend()
    if backend == "jax":
        return JaxEpochTrainer(net, optimizer, loss, batch_size)
    if backend == "tensorflow":
        return TfEpochTrainer(net, optimizer, loss, batch_size, jit=jit)
    return None


def _whole_batches(x: np.ndarray, batch_size: int) -> int:
    steps = len(x) // batch_size
    if steps == 0:
        raise ValueError(f"fewer samples ({len(x)}) than one batch ({batch_size}).")
    return steps


class TfEpochTrainer:
    """Train ``net`` with ``optimizer`` and ``loss`` one epoch per ``tf.function`` call (TensorFlow backend).

    Unlike the JAX loop, nothing is dropped: the last, partial batch is a step too. Without XLA the
    loop slices batches of a dynamic size from the epoch's samples, so one trace of the step serves
    the whole batches and the last one (tracing, not arithmetic, is most of a small fit's time).
    ``jit``: compile the graph with XLA (``jit_compile``); XLA needs static shapes, so there the whole
    batches are one tensor (steps, batch, ...) and the last partial batch runs through a second
    compiled step after the loop (one extra trace, repaid over the long fits XLA is used for).
    """

    def __init__(self, net, optimizer, loss: Callable, batch_size: int, jit: bool = True) -> None:
        import tensorflow as tf

        self.net, self.batch_size = net, batch_size
        optimizer.build(net.trainable_variables)
        variables = net.trainable_variables

        def step(x, y):
            with tf.GradientTape() as tape:
                value = loss(y, net(x, training=True))
                for extra in net.losses:  # regularisers and add_loss penalties
                    value = value + extra
            grads = tape.gradient(value, variables)
            # embedding gradients come as IndexedSlices; the optimizer's dense update is faster on a CPU
            optimizer.apply(grads, variables)
            return value

        def whole_batches(xs, ys):  # XLA: (steps, batch, ...) tensors, a static shape per step
            total = tf.constant(0.0)
            for s in tf.range(tf.shape(xs)[0]):
                total += tf.cast(step(xs[s], ys[s]), "float32")
            return total / tf.cast(tf.shape(xs)[0], "float32")

        def epoch(x, y):  # the epoch's samples in order; the last batch may be shorter
            n = tf.shape(x)[0]
            steps = (n + batch_size - 1) // batch_size
            total = tf.constant(0.0)
            for s in tf.range(steps):
                lo, hi = s * batch_size, (s + 1) * batch_size
                total += tf.cast(step(x[lo:hi], y[lo:hi]), "float32")
            return total / tf.cast(steps, "float32")

        self.jit = jit
        if jit:
            self._step, self._epoch = tf.function(step, jit_compile=True), tf.function(whole_batches, jit_compile=True)
        else:
            self._epoch = tf.function(epoch)

    def device_batches(self, x: np.ndarray, y: np.ndarray):
        """``x``, ``y`` as tensors for :meth:`run_epoch`: the samples as they are, or with XLA the whole
        batches (steps, batch, ...) plus the remaining samples."""
        import tensorflow as tf

        steps = _whole_batches(x, self.batch_size)
        if not self.jit:
            return tf.constant(x), tf.constant(y)
        n = steps * self.batch_size
        rest = (tf.constant(x[n:]), tf.constant(y[n:])) if n < len(x) else None
        return (tf.constant(x[:n].reshape(steps, self.batch_size, *x.shape[1:])),
                tf.constant(y[:n].reshape(steps, self.batch_size, *y.shape[1:])), rest)  # fmt: skip

    def run_epoch(self, xs, ys, rest=None) -> float:
        """One epoch over :meth:`device_batches`; returns the mean loss over its steps."""
        if not self.jit:
            return float(self._epoch(xs, ys))
        loss, steps = float(self._epoch(xs, ys)) * int(xs.shape[0]), int(xs.shape[0])
        if rest is not None:
            loss, steps = loss + float(self._step(*rest)), steps + 1
        return loss / steps


class JaxEpochTrainer:
    """Train ``net`` (a built Keras model) with ``optimizer`` and ``loss`` one epoch at a time."""

    def __init__(self, net, optimizer, loss: Callable, batch_size: int) -> None:
        import jax

        self.net, self.optimizer, self.loss, self.batch_size = net, optimizer, loss, batch_size
        optimizer.build(net.trainable_variables)

        def compute_loss(tv, ntv, x, y):
            y_pred, ntv, losses = net.stateless_call(tv, ntv, x, training=True, return_losses=True)
            value = loss(y, y_pred)
            for extra in losses:  # regularisers and add_loss penalties
                value = value + extra
            return value, ntv

        grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

        def step(state, batch):
            tv, ntv, ov = state
            (value, ntv), grads = grad_fn(tv, ntv, *batch)
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), value

        self._epoch = jax.jit(lambda state, xs, ys: jax.lax.scan(step, state, (xs, ys)))

    def _state(self):
        return ([v.value for v in self.net.trainable_variables], [v.value for v in self.net.non_trainable_variables],
                [v.value for v in self.optimizer.variables])  # fmt: skip

    def _write_back(self, state) -> None:
        for group, values in zip((self.net.trainable_variables, self.net.non_trainable_variables, self.optimizer.variables), state):
            for var, value in zip(group, values):
                var.assign(value)

    def device_batches(self, x: np.ndarray, y: np.ndarray):
        """Whole batches of ``x``, ``y`` reshaped to (steps, batch, ...) and moved to the device
        (a last partial batch is dropped: every step must have the same shape to compile once)."""
        import jax

        n = _whole_batches(x, self.batch_size) * self.batch_size
        steps = n // self.batch_size
        return (jax.device_put(x[:n].reshape(steps, self.batch_size, *x.shape[1:])),
                jax.device_put(y[:n].reshape(steps, self.batch_size, *y.shape[1:])))  # fmt: skip

    def run_epoch(self, xs, ys) -> float:
        """One epoch over device batches from :meth:`device_batches`; returns the mean loss."""
        state, losses = self._epoch(self._state(), xs, ys)
        self._write_back(state)
        return float(np.asarray(losses).mean())


class JaxImplicitSampler:
    """Draw each epoch's negatives on the device, so an implicit-feedback epoch never leaves the
    accelerator: positives and the sorted seen-pair keys are uploaded once.

    Each batch holds ``batch_size / (1 + n_neg)`` positives (shuffled every epoch) with their own
    ``n_neg`` negatives -- the same samples as the host path, in a different order within the
    epoch. Negatives are uniform over items, seen pairs rejected and redrawn for ``rounds`` rounds
    (the share still seen afterwards is ``density^(rounds + 1)``: about 1e-12 on ML-1M).
    Used on GPUs; on a CPU the host sampler is as fast.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, seen: np.ndarray, n_items: int, n_neg: int,
                 batch_size: int, rounds: int = 8) -> None:  # fmt: skip
        import jax
        import jax.numpy as jnp

        if (len(seen) and int(seen.max()) >= 2**31 - 1) or batch_size % (1 + n_neg) or batch_size < 1 + n_neg:
            raise ValueError("JaxImplicitSampler needs int32 pair keys and a batch of whole (1 + n_neg) groups.")
        self.users, self.items = jax.device_put(users.astype(np.int32)), jax.device_put(items.astype(np.int32))
        self.seen = jax.device_put(seen.astype(np.int32))
        per_batch = batch_size // (1 + n_neg)
        steps = len(users) // per_batch
        if steps == 0:
            raise ValueError(f"fewer positives ({len(users)}) than one batch needs ({per_batch}).")

        def is_seen(u, i):
            q = u * n_items + i
            pos = jnp.clip(jnp.searchsorted(self.seen, q), 0, self.seen.shape[0] - 1)
            return self.seen[pos] == q

        def epoch_data(key):
            k_perm, k_draw = jax.random.split(key)
            order = jax.random.permutation(k_perm, self.users.shape[0])[: steps * per_batch]
            pu, pi = self.users[order], self.items[order]
            nu = jnp.repeat(pu, n_neg)
            draws = jax.random.randint(k_draw, (rounds + 1, nu.shape[0]), 0, n_items, dtype=jnp.int32)
            neg = draws[0]
            for r in range(1, rounds + 1):
                neg = jnp.where(is_seen(nu, neg), draws[r], neg)
            pos_x = jnp.stack([pu, pi], 1).reshape(steps, per_batch, 2)
            neg_x = jnp.stack([nu, neg], 1).reshape(steps, per_batch * n_neg, 2)
            x = jnp.concatenate([pos_x, neg_x], axis=1)
            y = jnp.concatenate([jnp.ones((steps, per_batch), jnp.float32), jnp.zeros((steps, per_batch * n_neg), jnp.float32)], 1)
            return x, y

        self._epoch_data = jax.jit(epoch_data)
        self._key = jax.random.PRNGKey(0)

    @staticmethod
    def usable(max_key: int, batch_size: int, n_neg: int) -> bool:
        """Keys must fit int32 (JAX's default integers) and batches split into positive groups."""
        import jax

        on_accelerator = jax.devices()[0].platform != "cpu"
        return on_accelerator and max_key < 2**31 - 1 and batch_size % (1 + n_neg) == 0 and batch_size >= 1 + n_neg

    def seed(self, seed: int) -> None:
        import jax

        self._key = jax.random.PRNGKey(seed)

    def next_epoch(self):
        import jax

        self._key, sub = jax.random.split(self._key)
        return self._epoch_data(sub)
