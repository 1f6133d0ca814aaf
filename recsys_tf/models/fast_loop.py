"""A compiled whole-epoch training loop for the JAX backend, with the data on the device.

Keras ``fit`` feeds NumPy batches from the host one step at a time; for a model as small as
NeuMF (under a million parameters) that input pipeline, not the arithmetic, limits the speed on a
GPU. Here the epoch's samples are moved to the device once and every step runs inside one
``jax.lax.scan`` compiled with ``jax.jit``, using Keras' stateless API
(``model.stateless_call`` and ``optimizer.stateless_apply``) -- the model and optimizer stay
ordinary Keras objects and the weights are written back after the epoch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def available() -> bool:
    """True when Keras runs on the JAX backend."""
    import keras

    return keras.backend.backend() == "jax"


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

        steps = len(x) // self.batch_size
        if steps == 0:
            raise ValueError(f"fewer samples ({len(x)}) than one batch ({self.batch_size}).")
        n = steps * self.batch_size
        return (jax.device_put(x[:n].reshape(steps, self.batch_size, *x.shape[1:])),
                jax.device_put(y[:n].reshape(steps, self.batch_size, *y.shape[1:])))  # fmt: skip

    def run_epoch(self, xs, ys) -> float:
        """One epoch over device batches from :meth:`device_batches`; returns the mean loss."""
        state, losses = self._epoch(self._state(), xs, ys)
        self._write_back(state)
        return float(np.asarray(losses).mean())
