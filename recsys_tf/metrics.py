"""Evaluation metrics, vectorized over users.

Conventions: ``ranked`` is a ``users x k`` array of item indices, best first (``-1`` pads a
shorter list); ``relevant`` is the matching users' held-out items, given as a list of arrays or
as a :class:`Relevance` (sorted ``user * n_items + item`` keys). A user with no relevant item is
left out of the mean (and counted in ``n_users_skipped``) rather than scored 0.

References: Järvelin & Kekäläinen (2002) for NDCG; Manning, Raghavan & Schütze,
*Introduction to Information Retrieval* (2008), ch. 8, for precision, recall, MAP and MRR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from recsys_tf.utils import first_occurrence


@dataclass
class Relevance:
    """Held-out relevant items of each evaluated user (row ``r`` of ``ranked`` <-> ``users[r]``)."""

    keys: np.ndarray  # sorted unique row * n_items + item
    counts: np.ndarray  # relevant items per row
    n_items: int

    @classmethod
    def from_lists(cls, lists: list[np.ndarray] | list[list[int]], n_items: int) -> "Relevance":
        rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
        items = np.concatenate([np.asarray(x, np.int64) for x in lists]) if len(lists) else np.zeros(0, np.int64)
        return cls.from_pairs(rows, items, len(lists), n_items)

    @classmethod
    def from_pairs(cls, rows: np.ndarray, items: np.ndarray, n_rows: int, n_items: int) -> "Relevance":
        keys = np.unique(np.asarray(rows, np.int64) * n_items + np.asarray(items, np.int64))
        return cls(keys, np.bincount(keys // n_items, minlength=n_rows), n_items)

    def hits(self, ranked: np.ndarray) -> np.ndarray:
        """Boolean ``users x k``: is the item at each rank relevant? Repeated items count once."""
        ranked = np.asarray(ranked, np.int64)
        rows = np.arange(ranked.shape[0])[:, None]
        q = rows * self.n_items + ranked
        pos = np.minimum(np.searchsorted(self.keys, q), max(len(self.keys) - 1, 0))
        hit = (self.keys[pos] == q) & (ranked >= 0) if len(self.keys) else np.zeros(ranked.shape, bool)
        return hit & first_occurrence(ranked)


def _as_relevance(relevant, n_rows: int, n_items: int | None) -> Relevance:
    if isinstance(relevant, Relevance):
        return relevant
    n_items = n_items or int(max((max(x, default=-1) for x in relevant), default=-1)) + 1
    return Relevance.from_lists(list(relevant), max(n_items, 1))


def _pad(ranked: np.ndarray, k: int) -> np.ndarray:
    ranked = np.asarray(ranked)
    if ranked.shape[1] < k:
        ranked = np.pad(ranked, ((0, 0), (0, k - ranked.shape[1])), constant_values=-1)
    return ranked[:, :k]


def _per_user(ranked: np.ndarray, rel: Relevance, k: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-user precision, recall, hit rate, NDCG, AP and reciprocal rank at ``k`` (NaN-free where |R_u| > 0)."""
    hits = rel.hits(ranked).astype(np.float64)
    n_rel = rel.counts.astype(np.float64)
    safe = np.maximum(n_rel, 1)  # users without relevant items are masked out by the callers
    ranks = np.arange(1, k + 1)
    discount = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(discount)[np.clip(np.minimum(safe, k).astype(int) - 1, 0, k - 1)]
    n_hits = hits.sum(axis=1)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    return {
        "precision": n_hits / k, "recall": n_hits / safe, "hit_rate": (n_hits > 0).astype(float),
        "ndcg": (hits * discount).sum(axis=1) / ideal,
        "map": (hits * np.cumsum(hits, axis=1) / ranks).sum(axis=1) / np.minimum(safe, k),
        "mrr": 1.0 / first,
    }, n_rel  # fmt: skip


def ranking_metrics(ranked: np.ndarray, relevant, k: int | None = None, n_items: int | None = None) -> dict[str, float]:
    """Precision, recall, F1, hit rate, NDCG, MAP and MRR at ``k``, averaged over users.

    With ``hit_r`` = 1 if the item at rank ``r`` (1-based) is relevant and ``R_u`` the user's
    relevant items:

    * precision@k = sum_r hit_r / k;  recall@k = sum_r hit_r / |R_u|;  F1 = harmonic mean of the two
      means (as reported by most papers);
    * hit rate@k = 1 if any hit_r;  MRR@k = 1 / (rank of the first hit);
    * NDCG@k = (sum_r hit_r / log2(r + 1)) / (sum_{r <= min(k, |R_u|)} 1 / log2(r + 1));
    * AP@k = sum_r hit_r * precision@r / min(k, |R_u|);  MAP = mean AP.

    ``k`` longer than the lists is allowed: missing ranks count as misses.
    """
    k = np.shape(ranked)[1] if k is None else k
    ranked = _pad(ranked, k)
    per_user, n_rel = _per_user(ranked, _as_relevance(relevant, ranked.shape[0], n_items), k)
    keep = n_rel > 0
    means = {f"{name}@{k}": float(v[keep].mean()) if keep.any() else float("nan") for name, v in per_user.items()}
    p, r = means[f"precision@{k}"], means[f"recall@{k}"]
    means[f"f1@{k}"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    means["n_users"] = int(keep.sum())
    means["n_users_skipped"] = int((~keep).sum())
    return means


def per_user_metric(ranked: np.ndarray, relevant, metric: str = "ndcg", k: int = 10,
                    n_items: int | None = None) -> np.ndarray:  # fmt: skip
    """One metric per user (NaN for users without relevant items): the input of paired tests.

    ``metric``: precision, recall, hit_rate, ndcg, map or mrr (definitions in :func:`ranking_metrics`).
    """
    ranked = _pad(ranked, k)
    per_user, n_rel = _per_user(ranked, _as_relevance(relevant, ranked.shape[0], n_items), k)
    if metric not in per_user:
        raise ValueError(f"metric must be one of {sorted(per_user)}; got {metric!r}.")
    return np.where(n_rel > 0, per_user[metric], np.nan)


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error: sqrt(mean((y - y_hat)^2))."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error: mean(|y - y_hat|)."""
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))
