"""Re-ranking a candidate list for several objectives: relevance, diversity, novelty, calibration
and coverage of each shopper's several needs.

Every re-ranker takes ``candidates`` (users x C item codes), their relevance ``scores`` (users x C)
and returns the re-ranked top-``k`` item codes (users x k). All of them are greedy and vectorized
across users: each of the ``k`` steps is a handful of array operations on a users x C block.

Relevance is min-max normalised per user before it is mixed with other objectives, so that the
trade-off weight ``lam`` means the same for every model.
"""

from __future__ import annotations

import numpy as np

from recsys_tf.utils import unit_rows

_NEG = -np.inf


def _normalise(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    lo = s.min(axis=1, keepdims=True)
    span = s.max(axis=1, keepdims=True) - lo
    return np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)


def _check(candidates: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    candidates, scores = np.asarray(candidates), np.asarray(scores, dtype=np.float64)
    if candidates.shape != scores.shape or candidates.ndim != 2:
        raise ValueError(f"candidates {candidates.shape} and scores {scores.shape} must be equal 2-D shapes (users x C).")
    return candidates, scores, min(k, candidates.shape[1])


def _positions_by(values: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-np.asarray(values, dtype=np.float64), axis=1, kind="stable")[:, :k]


def relevance_order(candidates: np.ndarray, scores: np.ndarray, k: int = 10) -> np.ndarray:
    """The top-``k`` candidates by score (no re-ranking): the accuracy-only baseline."""
    candidates, scores, k = _check(candidates, scores, k)
    return np.take_along_axis(candidates, _positions_by(scores, k), axis=1)


def mmr(candidates: np.ndarray, scores: np.ndarray, item_vectors: np.ndarray, k: int = 10, lam: float = 0.5) -> np.ndarray:
    """Maximal Marginal Relevance (Carbonell & Goldstein, SIGIR 1998).

        next = argmax_{i not in S}  lam * rel(i) - (1 - lam) * max_{j in S} cos(v_i, v_j)

    ``item_vectors``: one row per item code (features or embeddings). ``lam = 1`` returns the
    relevance order. Similarities enter as they are: a negative cosine (MF and text embeddings have
    them) lowers the penalty below zero, exactly as the formula says; nothing is clipped at 0.
    """
    candidates, scores, k = _check(candidates, scores, k)
    rel = _normalise(scores)
    vec = unit_rows(np.asarray(item_vectors, dtype=np.float64))[candidates]  # users x C x d
    n_users, c = rel.shape
    rows = np.arange(n_users)
    max_sim = np.full((n_users, c), -np.inf)  # max over the empty set; negative cosines count as they are
    taken = np.zeros((n_users, c), dtype=bool)
    out = np.empty((n_users, k), dtype=np.int64)
    for step in range(k):
        objective = lam * rel - (1.0 - lam) * max_sim if step else rel.copy()
        objective[taken] = _NEG
        pick = objective.argmax(axis=1)
        out[:, step] = pick
        taken[rows, pick] = True
        sim = np.einsum("ucd,ud->uc", vec, vec[rows, pick])
        np.maximum(max_sim, sim, out=max_sim)
    return np.take_along_axis(candidates, out, axis=1)


def dpp(candidates: np.ndarray, scores: np.ndarray, item_vectors: np.ndarray, k: int = 10, theta: float = 0.7,
        eps: float = 1e-10) -> np.ndarray:  # fmt: skip
    """Determinantal point process, fast greedy MAP inference (Chen, Zhang & Zhou, NeurIPS 2018).

    Kernel ``L = diag(q) S diag(q)`` with ``S_ij = cos(v_i, v_j)`` and quality
    ``q_i = exp(alpha * rel_i)``, ``alpha = theta / (2 (1 - theta))`` (their relevance-diversity
    trade-off). Each step adds the item that most increases ``log det L_S``; the marginal gains
    ``d_i^2`` are kept up to date with incremental Cholesky factors ``c_i`` (their Algorithm 1), so a
    step costs O(C k) per user instead of a determinant. Stops early for a user when no item adds
    volume (``d_i^2 < eps``), filling the rest by relevance.
    """
    candidates, scores, k = _check(candidates, scores, k)
    if not 0 <= theta < 1:
        raise ValueError(f"theta must be in [0, 1), got {theta}.")
    rel = _normalise(scores)
    alpha = theta / (2 * (1 - theta))
    q = np.exp(alpha * (rel - 1.0))  # rel - 1: scale-free, avoids overflow
    vec = unit_rows(np.asarray(item_vectors, dtype=np.float64))[candidates]
    n_users, c = rel.shape
    rows = np.arange(n_users)
    d2 = q**2  # L_ii (S_ii = 1)
    cis = np.zeros((k, n_users, c))
    taken = np.zeros((n_users, c), dtype=bool)
    out = np.empty((n_users, k), dtype=np.int64)
    for step in range(k):
        gain = np.where(taken, _NEG, np.log(np.maximum(d2, eps)))
        stuck = d2.max(axis=1, where=~taken, initial=0) < eps
        gain[stuck] = np.where(taken[stuck], _NEG, rel[stuck])  # no volume left: fall back to relevance
        j = gain.argmax(axis=1)
        out[:, step] = j
        taken[rows, j] = True
        dj = np.sqrt(np.maximum(d2[rows, j], eps))
        l_ji = q[rows, j][:, None] * q * np.einsum("ucd,ud->uc", vec, vec[rows, j])
        e = (l_ji - np.einsum("tu,tuc->uc", cis[:step, rows, j], cis[:step])) / dj[:, None]
        cis[step] = e
        d2 = d2 - e**2
    return np.take_along_axis(candidates, out, axis=1)


def item_distribution(categories: np.ndarray, n_groups: int) -> np.ndarray:
    """Items x groups matrix p(g | i) from a list of group-index lists (uniform over an item's groups)."""
    out = np.zeros((len(categories), n_groups))
    for i, groups in enumerate(categories):  # once per item, not per interaction
        if len(groups):
            out[i, list(groups)] = 1.0 / len(groups)
    return out


def calibrated(candidates: np.ndarray, scores: np.ndarray, item_groups: np.ndarray, target: np.ndarray,
               k: int = 10, lam: float = 0.5, alpha: float = 0.01) -> np.ndarray:  # fmt: skip
    """Calibrated recommendations (Steck, RecSys 2018).

    Greedily maximise ``(1 - lam) * sum_{i in S} rel_i - lam * KL(p || q~)`` where ``p`` is the
    user's ``target`` distribution over groups (e.g. genres of their history), ``q(g) = mean over the
    list of p(g | i)`` and ``q~ = (1 - alpha) q + alpha p`` keeps the KL finite.
    ``item_groups``: items x groups ``p(g | i)`` (see :func:`item_distribution`); ``target``:
    users x groups, rows summing to 1.
    """
    candidates, scores, k = _check(candidates, scores, k)
    rel = _normalise(scores)
    p = np.asarray(target, dtype=np.float64)
    pg = np.asarray(item_groups, dtype=np.float64)[candidates]  # users x C x G
    n_users, c = rel.shape
    rows = np.arange(n_users)
    sum_q = np.zeros_like(p)
    sum_rel = np.zeros(n_users)
    taken = np.zeros((n_users, c), dtype=bool)
    out = np.empty((n_users, k), dtype=np.int64)
    log_p = np.log(np.where(p > 0, p, 1.0))
    for step in range(k):
        q_new = (sum_q[:, None, :] + pg) / (step + 1)  # the list's distribution if each candidate is added
        q_s = (1 - alpha) * q_new + alpha * p[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):  # q_s = 0 only where p = 0, which is masked
            kl = np.sum(np.where(p[:, None, :] > 0, p[:, None, :] * (log_p[:, None, :] - np.log(q_s)), 0.0), axis=2)
        objective = (1 - lam) * (sum_rel[:, None] + rel) - lam * kl
        objective[taken] = _NEG
        pick = objective.argmax(axis=1)
        out[:, step] = pick
        taken[rows, pick] = True
        sum_q += pg[rows, pick]
        sum_rel += rel[rows, pick]
    return np.take_along_axis(candidates, out, axis=1)


def novelty_penalty(candidates: np.ndarray, scores: np.ndarray, item_counts: np.ndarray, k: int = 10,
                    beta: float = 0.5) -> np.ndarray:  # fmt: skip
    """Rank by ``rel_i - beta * pop_i`` with ``pop_i = log(1 + count_i) / max log(1 + count)``: trades hits for less-known items."""
    candidates, scores, k = _check(candidates, scores, k)
    pop = np.log1p(np.asarray(item_counts, dtype=np.float64))
    pop = pop / max(pop.max(), 1e-12)
    return relevance_order(candidates, _normalise(scores) - beta * pop[candidates], k)


def multi_need(candidates: np.ndarray, scores: np.ndarray, item_needs: np.ndarray, need_weights: np.ndarray,
               k: int = 10, lam: float = 0.5) -> np.ndarray:  # fmt: skip
    """Cover each of the shopper's needs in proportion: xQuAD (Santos, Macdonald & Ounis, WWW 2010).

        next = argmax (1 - lam) rel(i) + lam * sum_n w_un * P(i | n) * prod_{j in S} (1 - P(j | n))

    ``item_needs``: items x needs ``P(i serves n)`` in [0, 1] (an item can serve several: its
    category, its style, its price band); ``need_weights``: users x needs, the share of each need
    in the shopper's interest (rows summing to 1). The product term shrinks as a need gets served,
    so the next pick moves to needs not yet covered, most important first.
    """
    candidates, scores, k = _check(candidates, scores, k)
    rel = _normalise(scores)
    serve = np.asarray(item_needs, dtype=np.float64)[candidates]  # users x C x N
    w = np.asarray(need_weights, dtype=np.float64)
    n_users, c = rel.shape
    rows = np.arange(n_users)
    not_covered = np.ones_like(w)  # prod_{j in S} (1 - P(j | n))
    taken = np.zeros((n_users, c), dtype=bool)
    out = np.empty((n_users, k), dtype=np.int64)
    for step in range(k):
        div = np.einsum("ucn,un->uc", serve, w * not_covered)
        objective = (1 - lam) * rel + lam * div
        objective[taken] = _NEG
        pick = objective.argmax(axis=1)
        out[:, step] = pick
        taken[rows, pick] = True
        not_covered *= 1.0 - serve[rows, pick]
    return np.take_along_axis(candidates, out, axis=1)


def weighted(candidates: np.ndarray, scores: np.ndarray, objectives: dict[str, np.ndarray], weights: dict[str, float],
             k: int = 10) -> np.ndarray:  # fmt: skip
    """Rank by ``w_rel * rel + sum_o w_o * o``, each per-candidate objective min-max normalised per user.

    ``objectives``: name -> users x C array (novelty, price fit, margin...); ``weights`` holds
    ``"relevance"`` and one weight per objective. Sweeping the weights traces the trade-off; see
    :func:`pareto_front`.
    """
    total = weights.get("relevance", 1.0) * _normalise(scores)
    for name, values in objectives.items():
        total = total + weights.get(name, 0.0) * _normalise(values)
    return relevance_order(candidates, total, k)


def pareto_front(points: np.ndarray, maximize: tuple[bool, ...] | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (one row per operating point, one column per objective).

    A point is dominated when another is at least as good on every objective and better on one.
    """
    p = np.asarray(points, dtype=np.float64)
    if maximize is not None:
        p = p * np.where(np.asarray(maximize), 1.0, -1.0)
    ge = (p[None, :, :] >= p[:, None, :]).all(axis=2)  # [a, b]: b at least as good as a everywhere
    gt = (p[None, :, :] > p[:, None, :]).any(axis=2)
    return ~(ge & gt).any(axis=1)


def candidates_from(model, users: np.ndarray, n_candidates: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n_candidates`` unseen items per user from a fitted recommender, as item *codes* and scores
    (the first stage; the re-rankers pick the final ``k`` from these)."""
    codes = model._user_codes(np.asarray(users))
    idx, scores = model._top_k_codes(codes, n_candidates, exclude_seen=True)
    short = (idx < 0).any(axis=1)
    if short.any():
        raise ValueError(f"{int(short.sum()):,} user(s) have fewer than n_candidates={n_candidates} unseen items; "
                         f"lower n_candidates.")  # fmt: skip
    return idx, scores


class ListEvaluator:
    """Accuracy and beyond-accuracy of re-ranked lists of item codes, all at once.

    ``test_items``: one held-out item code per user (``-1``: none); ``item_groups``: items x groups
    (bool: categories, genres); ``user_needs``: users x groups (bool, e.g. the true needs);
    ``vectors``: items x d for diversity; ``counts``: training interactions per item;
    ``utility``: optional users x items ground-truth utility (the simulated shop has it).
    """

    def __init__(self, test_items: np.ndarray, item_groups: np.ndarray, user_needs: np.ndarray, vectors: np.ndarray,
                 counts: np.ndarray, utility: np.ndarray | None = None, k: int = 10) -> None:  # fmt: skip
        from recsys_tf.metrics import Relevance

        test_items = np.asarray(test_items)
        rows = np.flatnonzero(test_items >= 0)
        self.relevant = Relevance.from_pairs(rows, test_items[rows], len(test_items), len(item_groups))
        self.item_groups, self.user_needs, self.vectors = item_groups, user_needs, vectors
        self.counts, self.utility, self.k = counts, utility, k

    def __call__(self, ranked: np.ndarray) -> dict[str, float]:
        from recsys_tf.metrics import catalog_coverage, interest_coverage, intra_list_diversity, novelty, ranking_metrics

        acc = ranking_metrics(ranked, self.relevant, k=self.k)
        out = {
            f"ndcg@{self.k}": acc[f"ndcg@{self.k}"], f"hit_rate@{self.k}": acc[f"hit_rate@{self.k}"],
            "interest coverage": interest_coverage(ranked, self.item_groups, self.user_needs),
            "diversity (ILD)": intra_list_diversity(ranked, self.vectors),
            "novelty (bits)": novelty(ranked, self.counts, len(ranked)),
            "catalog coverage": catalog_coverage(ranked, len(self.item_groups)),
        }  # fmt: skip
        if self.utility is not None:
            out["true utility"] = float(np.take_along_axis(self.utility, ranked, axis=1).mean())
        return out
