"""Cold start: split off new items and nearly new users, and evaluate rankings on candidate sets.

Protocol (the item cold-start setting of DropoutNet, Volkovs et al., NeurIPS 2017, and of the
CiteULike / RecSys 2017 benchmarks): a random share of the catalog is "launched after training":
every interaction with those items leaves the training data. For those **new items** each test
user's held-out interactions with them are ranked among *all new items* -- the question a shop
asks on launch day is "which of this week's new products should this shopper see?". Warm items
are ranked among warm items (new ones masked) so both tasks keep their own candidate sets.
**Cold users** keep only their first ``max_events`` interactions in training; the rest of their
history is ranked against the warm catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys_tf.data.schema import ITEM, TIMESTAMP, USER, validate_interactions
from recsys_tf.data.split import leave_last_out
from recsys_tf.errors import DataError
from recsys_tf.metrics import Relevance, ranking_metrics
from recsys_tf.models.base import top_k


@dataclass
class ColdStartSplit:
    """Training data plus three test sets: warm items, new items, cold users."""

    train: pd.DataFrame
    val: pd.DataFrame
    test_warm: pd.DataFrame
    test_new_items: pd.DataFrame
    test_cold_users: pd.DataFrame
    new_items: np.ndarray
    cold_users: np.ndarray
    warm_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def summary(self) -> pd.DataFrame:
        parts = {"train": self.train, "val": self.val, "test: warm items": self.test_warm,
                 "test: new items": self.test_new_items, "test: cold users": self.test_cold_users}  # fmt: skip
        return pd.DataFrame({"rows": {k: len(v) for k, v in parts.items()},
                             "users": {k: v[USER].nunique() for k, v in parts.items()},
                             "items": {k: v[ITEM].nunique() for k, v in parts.items()}})  # fmt: skip


def cold_start_split(df: pd.DataFrame, new_item_share: float = 0.1, cold_user_share: float = 0.1,
                     max_events: int = 3, seed: int = 0) -> ColdStartSplit:  # fmt: skip
    """Split ``df`` (user_id, item_id, timestamp) for the cold-start protocol above.

    Of the remaining (warm) data, every warm user's last interaction is the warm test and the
    one before it validation (leave-last-out). New-item test rows are kept only for users who
    are in training, so a model knows who is asking.
    """
    validate_interactions(df, require_timestamp=True)
    if not (0 < new_item_share < 1 and 0 <= cold_user_share < 1):
        raise ValueError(f"new_item_share must be in (0, 1) and cold_user_share in [0, 1); got {new_item_share}, {cold_user_share}.")
    rng = np.random.default_rng(seed)
    items = np.unique(df[ITEM].to_numpy())
    new_items = np.sort(rng.choice(items, max(1, int(round(new_item_share * len(items)))), replace=False))
    is_new = df[ITEM].isin(new_items).to_numpy()
    warm, new_rows = df[~is_new], df[is_new]
    # cold users: among users with at least max_events + 3 warm interactions (so at least 3 are left to test),
    # keep the first max_events
    size = warm.groupby(USER)[USER].transform("size").to_numpy()
    eligible = np.unique(warm[USER].to_numpy()[size > max_events + 2])
    cold_users = np.sort(rng.choice(eligible, int(round(cold_user_share * len(eligible))), replace=False))
    in_cold = warm[USER].isin(cold_users).to_numpy()
    cold = warm[in_cold].sort_values([USER, TIMESTAMP], kind="stable")
    rank = cold.groupby(USER).cumcount().to_numpy()
    split = leave_last_out(warm[~in_cold], n_test=1, n_val=1, min_train=1)
    train = pd.concat([split.train, cold[rank < max_events]], ignore_index=True)
    known = new_rows[USER].isin(train[USER].unique())
    return ColdStartSplit(train=train, val=split.val, test_warm=split.test,
                          test_new_items=new_rows[known].reset_index(drop=True),
                          test_cold_users=cold[rank >= max_events].reset_index(drop=True),
                          new_items=new_items, cold_users=cold_users, warm_items=np.setdiff1d(items, new_items))  # fmt: skip


def _candidate_columns(test: pd.DataFrame, candidates: np.ndarray) -> pd.Series:
    """Column of each candidate item id; test rows outside the candidates raise (they would count as misses)."""
    col = pd.Series(np.arange(len(candidates)), index=np.asarray(candidates))
    outside = ~test[ITEM].isin(col.index)
    if outside.any():
        raise DataError(f"{int(outside.sum())} test row(s) have items outside the candidate set, e.g. {test.loc[outside, ITEM].head(3).tolist()}.")
    return col


def evaluate_on_candidates(model, test: pd.DataFrame, candidates: np.ndarray, k: int = 10,
                           exclude_seen: bool = True, per_user: bool = False):  # fmt: skip
    """Top-``k`` metrics when each test user's items are ranked among ``candidates`` (raw item ids) only.

    Works for every :class:`~recsys_tf.models.base.Recommender` fitted with a catalog that
    contains the candidates (so new items have codes). Test rows outside the candidates or of
    unknown users raise: they would silently count as misses.
    """
    validate_interactions(test, "test")
    if not len(test):
        raise DataError("the test frame is empty: nothing to evaluate.")
    cand_codes = model.encoder_.items.transform(np.asarray(candidates), unknown="oov")
    if (cand_codes < 0).any():
        raise DataError(f"{int((cand_codes < 0).sum())} candidate item(s) are unknown to the model; fit it with the full catalog (fit(train, items)).")
    col = _candidate_columns(test, candidates)
    u = model.encoder_.users.transform(test[USER], unknown="oov")
    if (u < 0).any():
        raise DataError(f"{int((u < 0).sum())} test row(s) have users unknown to the model; give them a cold-start route first.")
    users = np.unique(u)
    rows = np.searchsorted(users, u)
    rel = Relevance.from_pairs(rows, col[test[ITEM].to_numpy()].to_numpy(), len(users), len(candidates))
    ranked = []
    for start in range(0, len(users), 1024):
        batch = users[start : start + 1024]
        full = np.asarray(model._score_codes(batch), dtype=np.float64)
        if exclude_seen:
            model._mask_seen(full, batch)
        ranked.append(top_k(full[:, cand_codes], k)[0])
    ranked_all = np.concatenate(ranked)
    if per_user:
        from recsys_tf.metrics import per_user_metric

        return per_user_metric(ranked_all, rel, "ndcg", k)
    out = ranking_metrics(ranked_all, rel, k=k)
    out["n_users"] = len(users)
    return out


def evaluate_cold_start(model, split: ColdStartSplit, k: int = 10) -> dict[str, float]:
    """NDCG@k and recall@k on the three test sets of ``split`` (see the module's protocol)."""
    out: dict[str, float] = {}
    for name, test, cand in (("warm", split.test_warm, split.warm_items), ("new items", split.test_new_items, split.new_items),
                             ("cold users", split.test_cold_users, split.warm_items)):  # fmt: skip
        if len(test):
            m = evaluate_on_candidates(model, test, cand, k)
            out[f"{name} ndcg@{k}"], out[f"{name} recall@{k}"] = m[f"ndcg@{k}"], m[f"recall@{k}"]
    return out


def evaluate_fold_in(model, history: pd.DataFrame, test: pd.DataFrame, candidates: np.ndarray, k: int = 10) -> dict[str, float]:
    """Top-``k`` metrics for shoppers the model never trained on: each is known only by the items of
    ``history`` (user_id, item_id); the model folds them in (``model.fold_in_scores``) and ranks
    ``candidates`` for them, their history items excluded. ``test``: their held-out items."""
    validate_interactions(history, "history")
    validate_interactions(test, "test")
    users = np.unique(test[USER].to_numpy())
    hist = history[history[USER].isin(users)]
    missing = np.setdiff1d(users, hist[USER].unique())
    if len(missing):
        raise DataError(f"{len(missing)} test user(s) have no history to fold in, e.g. {missing[:3].tolist()}.")
    hist = hist.sort_values(USER, kind="stable")
    bounds = np.searchsorted(hist[USER].to_numpy(), users)
    histories = np.split(hist[ITEM].to_numpy(), bounds[1:])
    col = _candidate_columns(test, candidates)
    scores = model.fold_in_scores(histories)[:, model.encoder_.items.transform(col.index.to_numpy())]
    seen = hist[hist[ITEM].isin(col.index)]
    scores[np.searchsorted(users, seen[USER].to_numpy()), col[seen[ITEM].to_numpy()].to_numpy()] = -np.inf
    rel = Relevance.from_pairs(np.searchsorted(users, test[USER].to_numpy()), col[test[ITEM].to_numpy()].to_numpy(), len(users), len(col))
    out = ranking_metrics(top_k(scores, k)[0], rel, k=k)
    out["n_users"] = len(users)
    return out

