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
from typing import Literal

import numpy as np
from recsys_tf.utils import first_occurrence, unit_rows


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


MapDenominator = Literal["min", "trec"]


def _per_user(ranked: np.ndarray, rel: Relevance, k: int, map_denominator: MapDenominator = "min"
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
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
        "map": (hits * np.cumsum(hits, axis=1) / ranks).sum(axis=1) / (np.minimum(safe, k) if map_denominator == "min" else safe),
        "mrr": 1.0 / first,
    }, n_rel  # fmt: skip


def ranking_metrics(ranked: np.ndarray, relevant, k: int | None = None, n_items: int | None = None,
                    map_denominator: MapDenominator = "min") -> dict[str, float]:  # fmt: skip
    """Precision, recall, F1, hit rate, NDCG, MAP and MRR at ``k``, averaged over users.

    With ``hit_r`` = 1 if the item at rank ``r`` (1-based) is relevant and ``R_u`` the user's
    relevant items:

    * precision@k = sum_r hit_r / k;  recall@k = sum_r hit_r / |R_u|;  F1 = harmonic mean of the two
      means (as reported by most papers);
    * hit rate@k = 1 if any hit_r;  MRR@k = 1 / (rank of the first hit);
    * NDCG@k = (sum_r hit_r / log2(r + 1)) / (sum_{r <= min(k, |R_u|)} 1 / log2(r + 1));
    * AP@k = sum_r hit_r * precision@r / min(k, |R_u|);  MAP = mean AP. Two conventions exist for the
      denominator: ``map_denominator="min"`` (default; min(k, |R_u|), so a perfect top-k scores 1 --
      RecBole, Microsoft Recommenders) and ``"trec"`` (|R_u|, as trec_eval's ``map_cut_k``; relevant items
      beyond rank k count as misses).

    ``k`` longer than the lists is allowed: missing ranks count as misses.
    """
    k = np.shape(ranked)[1] if k is None else k
    ranked = _pad(ranked, k)
    if map_denominator not in ("min", "trec"):
        raise ValueError(f"map_denominator must be 'min' or 'trec', got {map_denominator!r}.")
    per_user, n_rel = _per_user(ranked, _as_relevance(relevant, ranked.shape[0], n_items), k, map_denominator)
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


# --- the sampled-candidates protocol (NCF) ------------------------------------------------------
def _distinct_negatives(candidates: np.ndarray) -> np.ndarray:
    """Mask over a candidate row's negatives (columns 1:) keeping each item once and never the positive."""
    c = np.asarray(candidates)
    return (c[:, 1:] != c[:, :1]) & first_occurrence(c[:, 1:])


def _sampled_parts(scores: np.ndarray, candidates: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per user: negatives strictly above the positive, tied with it, the distinct negatives, and NaN positives."""
    scores = np.asarray(scores, dtype=np.float64)
    counted = _distinct_negatives(candidates) if candidates is not None else np.ones(scores[:, 1:].shape, bool)
    pos, neg = scores[:, :1], scores[:, 1:]
    # NaN ranks last: a NaN positive is below every negative, a NaN negative below the positive
    pos_nan = np.isnan(pos[:, 0])
    above = ((neg > pos) | (pos_nan[:, None] & ~np.isnan(neg))) & counted
    tied = ((neg == pos) | (pos_nan[:, None] & np.isnan(neg))) & counted
    return above.sum(axis=1), tied.sum(axis=1), counted.sum(axis=1), pos_nan


def sampled_ranks(scores: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of the held-out item (column 0) among its candidates, per user.

    ``scores``: users x (1 + n_neg), the positive's score in column 0. ``candidates`` (the item ids
    of the same shape), when given, removes negatives equal to the positive -- in the published
    ML-1M negatives file 156 users have their test item among their own negatives, and NCF's
    ``evaluate.py`` counts it once because it keeps scores in a dict. Ties are pessimistic
    (a negative scoring equal to the positive ranks above it), as ``heapq.nlargest`` does in NCF
    with the test item inserted last. A NaN score ranks last: a diverged model whose scores are
    all NaN gets the worst rank, never the best.
    """
    above, tied, _, _ = _sampled_parts(scores, candidates)
    return 1 + above + tied


def sampled_metrics(scores: np.ndarray, candidates: np.ndarray | None = None, k: int = 10) -> dict[str, float]:
    """HR@k, NDCG@k, MRR and AUC of the held-out item among sampled candidates (He et al., WWW 2017).

    With ``rank`` from :func:`sampled_ranks` and ``n`` distinct negatives:
    HR@k = [rank <= k]; NDCG@k = [rank <= k] / log2(rank + 1); MRR = 1 / rank;
    AUC = (negatives below the positive + 0.5 * negatives tied with it) / n -- ties get half
    credit, as in scikit-learn's ``roc_auc_score`` (the rank metrics keep NCF's pessimistic ties).
    ``n_nan_positives`` counts users whose held-out item scored NaN (ranked last).
    """
    above, tied, n_neg, pos_nan = _sampled_parts(scores, candidates)
    rank = 1 + above + tied
    hit = rank <= k
    auc = (n_neg - above - tied + 0.5 * tied) / np.maximum(n_neg, 1)
    if pos_nan.any():
        import warnings

        warnings.warn(f"{int(pos_nan.sum()):,} held-out item(s) scored NaN (did training diverge?); they rank last.",
                      stacklevel=2)  # fmt: skip
    return {
        f"hit_rate@{k}": float(hit.mean()), f"ndcg@{k}": float(np.where(hit, 1 / np.log2(rank + 1), 0).mean()),
        "mrr": float((1 / rank).mean()), "auc": float(auc.mean()),
        "n_users": int(len(rank)), "n_nan_positives": int(pos_nan.sum()),
    }  # fmt: skip


# --- beyond accuracy ----------------------------------------------------------------------------
def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative
    (ties count one half), from average ranks (Mann-Whitney U). NaN when one class is absent."""
    return float(grouped_auc(np.zeros(len(labels), np.int64), labels, scores)["auc"].iloc[0]) if len(labels) else float("nan")


def grouped_auc(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray):
    """Per-group AUC (vectorized with ranks within each group): a frame with ``auc``, ``n`` (rows)
    and ``n_pos`` per group; groups with a single class get NaN."""
    import pandas as pd

    labels = np.asarray(labels, dtype=float)
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1.")
    frame = pd.DataFrame({"g": np.asarray(groups), "y": labels, "s": np.asarray(scores, dtype=float)})
    frame["r"] = frame.groupby("g")["s"].rank(method="average")
    agg = frame.assign(rp=frame.r * frame.y).groupby("g").agg(n=("y", "size"), n_pos=("y", "sum"), rank_pos=("rp", "sum"))
    n_neg = agg.n - agg.n_pos
    u = agg.rank_pos - agg.n_pos * (agg.n_pos + 1) / 2
    agg["auc"] = np.where((agg.n_pos > 0) & (n_neg > 0), u / np.maximum(agg.n_pos * n_neg, 1), np.nan)
    return agg[["auc", "n", "n_pos"]]


def gauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Group AUC (Zhou et al., DIN, KDD 2018): each user's AUC weighted by their impressions,
    over users with both clicks and non-clicks -- it compares items *within* a user, as ranking does."""
    per = grouped_auc(users, labels, scores).dropna(subset=["auc"])
    return float((per.auc * per.n).sum() / per.n.sum()) if len(per) else float("nan")


def gauc_by_segment(users: np.ndarray, labels: np.ndarray, scores: np.ndarray, segment_of) -> dict[str, float]:
    """GAUC within each segment of users (``segment_of``: a Series or dict from user id to segment),
    e.g. shoppers with one need vs several: where does a model gain? NaN for a segment without
    users that have both clicks and non-clicks. Every user must have a segment."""
    import pandas as pd

    segments = pd.Series(segment_of)
    users = np.asarray(users)
    unknown = ~pd.Index(np.unique(users)).isin(segments.index)
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} user(s) have no segment, e.g. {np.unique(users)[unknown][:5].tolist()}.")
    per = grouped_auc(users, labels, scores).dropna(subset=["auc"])
    seg = segments.reindex(per.index)
    weighted = (per.auc * per.n).groupby(seg).sum() / per.n.groupby(seg).sum()
    return {str(name): float(weighted.get(name, np.nan)) for name in pd.unique(segments)}


def catalog_coverage(ranked: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one list: |union of lists| / n_items."""
    r = np.asarray(ranked)
    return float(len(np.unique(r[r >= 0])) / n_items)


def novelty(ranked: np.ndarray, item_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information of recommended items, -log2(p_i) with p_i = users who interacted with i / n_users.

    Higher = less popular, more novel items (Zhou et al., PNAS 2010). Items never seen count as p = 1 / n_users.
    """
    r = np.asarray(ranked)
    p = np.maximum(np.asarray(item_counts, float), 1.0) / n_users
    return float(-np.log2(p[r[r >= 0]]).mean())


def popularity_bias(ranked: np.ndarray, item_counts: np.ndarray) -> float:
    """Average recommendation popularity (ARP, Abdollahpouri et al. 2019): mean training count of recommended items."""
    r = np.asarray(ranked)
    return float(np.asarray(item_counts, float)[r[r >= 0]].mean())


def intra_list_diversity(ranked: np.ndarray, item_vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cos) between the items of each list, averaged over lists.

    ILD (Ziegler et al., WWW 2005). ``item_vectors``: one row per item code (features or embeddings).
    """
    r = np.asarray(ranked)
    v = unit_rows(np.asarray(item_vectors, dtype=np.float64))
    lists = v[np.maximum(r, 0)]  # users x k x d
    sim = np.einsum("ukd,ujd->ukj", lists, lists)
    valid = (r >= 0)[:, :, None] & (r >= 0)[:, None, :]
    k = r.shape[1]
    off = valid & ~np.eye(k, dtype=bool)[None]
    pairs = off.sum(axis=(1, 2))
    dist = ((1 - sim) * off).sum(axis=(1, 2)) / np.maximum(pairs, 1)
    return float(dist[pairs > 0].mean())


# --- comparing two models -----------------------------------------------------------------------
def confidence_interval(values: np.ndarray, level: float = 0.95, n_boot: int = 2_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval of a per-user metric (NaN users dropped)."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(v.mean()), float(lo), float(hi)


def paired_comparison(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Is model A better than model B on the same users? Paired t-test and Wilcoxon signed-rank test.

    ``a``, ``b``: per-user metric of each model (same users, same order; NaN pairs dropped).
    Returns the mean difference A - B with its t confidence interval and both p-values.
    """
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    n = len(d)
    se = d.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se if n > 1 else np.nan
    t_p = float(stats.ttest_rel(a[keep], b[keep]).pvalue) if n > 1 and se > 0 else float("nan")
    w_p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return {"mean_difference": float(d.mean()), "ci_low": float(d.mean() - half), "ci_high": float(d.mean() + half),
            "t_test_p": t_p, "wilcoxon_p": w_p, "n_users": n}  # fmt: skip


# --- re-ranking objectives ----------------------------------------------------------------------
def miscalibration(ranked: np.ndarray, item_groups: np.ndarray, target: np.ndarray, alpha: float = 0.01) -> float:
    """Mean KL(p || q~) between each user's target group distribution ``p`` and their list's ``q``
    (Steck, RecSys 2018); ``q~ = (1 - alpha) q + alpha p``. 0 = perfectly calibrated."""
    r = np.asarray(ranked)
    q = np.asarray(item_groups, float)[r].mean(axis=1)
    p = np.asarray(target, float)
    q = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(axis=1)
    return float(kl.mean())


def interest_coverage(ranked: np.ndarray, item_needs: np.ndarray, user_needs: np.ndarray) -> float:
    """Share of each user's needs served by at least one item of their list, averaged over users.

    ``item_needs``: items x needs (bool: the item serves the need); ``user_needs``: users x needs (bool).
    Users without needs are left out.
    """
    served = np.asarray(item_needs, bool)[np.asarray(ranked)].any(axis=1)  # users x needs
    want = np.asarray(user_needs, bool)
    n = want.sum(axis=1)
    keep = n > 0
    return float(((served & want).sum(axis=1)[keep] / n[keep]).mean())


def serendipity(ranked: np.ndarray, relevant, popular: np.ndarray, n_items: int | None = None) -> float:
    """Share of recommended items that are relevant *and* not in the popularity list ``popular``
    (the obvious recommendations), averaged over users (Ge, Delgado-Battenfeld & Jannach, RecSys 2010)."""
    r = np.asarray(ranked)
    rel = _as_relevance(relevant, r.shape[0], n_items)
    hits = rel.hits(r) & ~np.isin(r, np.asarray(popular))
    return float(hits.mean(axis=1).mean())
