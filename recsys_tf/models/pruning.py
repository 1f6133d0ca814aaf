"""Magnitude pruning for Keras 3 models, with the gradual schedule of Zhu & Gupta (2017).

"To prune, or not to prune: exploring the efficacy of pruning for model compression" (ICLR workshop
2018, arXiv:1710.01878): the sparsity of each prunable weight grows from ``s_i`` to ``s_f`` as

    s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (t_end - t_0))^3        for t_0 <= t <= t_end

fast at first, while there are many redundant weights, then slower; the weights of smallest
magnitude are set to zero. Here ``t`` counts epochs. Keras 3 has no pruning API (and
tensorflow-model-optimization needs Keras 2), so the mask is a non-trainable variable per weight,
applied as the variable's *constraint*: Keras applies constraints after every optimizer step, in
``fit`` and in the kit's compiled epoch loops alike, so a pruned weight stays exactly zero even when
Adam's momentum would move it. Prunable: embedding tables and dense kernels (not biases, nor the
one-column bias tables). ``fit`` strips the constraints at the end: the saved and exported model is
an ordinary one whose zeros compress.
"""

from __future__ import annotations

import numpy as np


def polynomial_sparsity(epoch: int, begin: int, end: int, final: float, initial: float = 0.0, power: int = 3) -> float:
    """Zhu & Gupta's schedule: ``initial`` before ``begin``, ``final`` from ``end`` on, a cubic in between."""
    if epoch <= begin:
        return initial
    if epoch >= end:
        return final
    return final + (initial - final) * (1.0 - (epoch - begin) / (end - begin)) ** power


class _MaskConstraint:
    """``w * mask``: keeps pruned weights at zero after every optimizer step."""

    def __init__(self, mask) -> None:
        self.mask = mask

    def __call__(self, w):
        import keras

        return w * keras.ops.cast(self.mask, w.dtype)


class MagnitudePruning:
    """Gradual magnitude pruning of a Keras recommender: ``MatrixFactorization(..., pruning=MagnitudePruning(0.9))``.

    ``final_sparsity``: the share of each prunable weight set to zero by the end; ``begin_epoch``:
    epochs trained dense first (default 1); ``end_epoch``: when the final sparsity is reached
    (default: two epochs before the end, which fine-tune at it). ``sparsity_`` holds the share
    of zeros reached after each epoch.
    """

    def __init__(self, final_sparsity: float, begin_epoch: int = 1, end_epoch: int | None = None, initial_sparsity: float = 0.0) -> None:
        if not 0.0 <= initial_sparsity <= final_sparsity < 1.0:
            raise ValueError(f"sparsities must satisfy 0 <= initial ({initial_sparsity}) <= final ({final_sparsity}) < 1.")
        self.final_sparsity, self.initial_sparsity = float(final_sparsity), float(initial_sparsity)
        self.begin_epoch, self.end_epoch = begin_epoch, end_epoch
        self.sparsity_: list[float] = []
        self._masks: list[tuple] = []

    def attach(self, net, epochs: int) -> None:
        """Give every prunable weight of ``net`` a mask (all ones) and the constraint that applies it."""
        import keras

        self.sparsity_ = []
        self._end = self.end_epoch if self.end_epoch is not None else max(self.begin_epoch + 1, epochs - 2)
        self._masks = []
        for w in _prunable(net):
            mask = keras.Variable(np.ones(w.shape, np.float32), trainable=False, name=f"{w.name}_prune_mask")
            w.constraint = _MaskConstraint(mask)
            self._masks.append((w, mask))
        if not self._masks:
            raise ValueError("the network has no embedding table or dense kernel to prune.")

    def update(self, epoch: int) -> float:
        """Set each mask to keep the largest-magnitude share ``1 - s_epoch`` of its weight; returns the overall sparsity."""
        import keras

        target = polynomial_sparsity(epoch, self.begin_epoch, self._end, self.final_sparsity, self.initial_sparsity)
        zeros = total = 0
        for w, mask in self._masks:
            values = np.abs(keras.ops.convert_to_numpy(w))
            n_prune = int(round(target * values.size))
            keep = np.ones(values.size, np.float32)
            if n_prune:
                keep[np.argpartition(values.ravel(), n_prune - 1)[:n_prune]] = 0.0  # the n_prune smallest magnitudes
            keep = keep.reshape(values.shape) * keras.ops.convert_to_numpy(mask)  # once pruned, stays pruned
            mask.assign(keep)
            w.assign(keras.ops.convert_to_numpy(w) * keep)
            zeros, total = zeros + int((keep == 0).sum()), total + keep.size
        self.sparsity_.append(zeros / total)
        return self.sparsity_[-1]

    def strip(self) -> None:
        """Remove the constraints (the zeros stay): the network is an ordinary one again, for saving and export."""
        for w, _ in self._masks:
            w.constraint = None
        self._masks = []


def sparsity(net) -> float:
    """Share of exact zeros among the embedding tables and dense kernels of ``net``."""
    import keras

    zeros = total = 0
    for w in _prunable(net):
        v = keras.ops.convert_to_numpy(w)
        zeros, total = zeros + int((v == 0).sum()), total + v.size
    return zeros / max(total, 1)


def _prunable(net):
    """The embedding tables and dense kernels of ``net``'s leaf layers (not biases, nor one-column bias tables)."""
    for layer in net._flatten_layers(include_self=False):
        if layer._layers:
            continue
        for name in ("embeddings", "kernel"):
            w = getattr(layer, name, None)
            if w is not None and hasattr(w, "constraint") and len(w.shape) == 2 and min(w.shape) > 1:
                yield w
