"""Evaluation protocols: full ranking (``Recommender.evaluate``) and sampled candidates (NCF).

The NCF protocol (He et al., WWW 2017): per user the latest interaction is held out and ranked
against 99 items the user never interacted with; HR@10 and NDCG@10 are averaged over users.
Sampled metrics are far higher than full-ranking ones and can even order models differently
(Krichene & Rendle, KDD 2020): report which protocol a number comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_tf.data.sampling import Strategy, pair_keys, sample_candidates
from recsys_tf.data.schema import ITEM, USER, validate_interactions
from recsys_tf.data.split import leave_last_out
from recsys_tf.errors import DataError
from recsys_tf.metrics import sampled_metrics, sampled_ranks


@dataclass
class CandidateSplit:
    """Leave-one-out split with sampled candidates: ``candidates[r]`` ranks ``test`` row ``r``'s item (column 0)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    candidates: np.ndarray  # raw item ids, users x (1 + n_neg)


def ncf_split(df: pd.DataFrame, n_neg: int = 99, n_val: int = 0, strategy: Strategy = "uniform",
              seed: int = 0) -> CandidateSplit:  # fmt: skip
    """Leave the latest interaction of each user out and draw ``n_neg`` candidates it is ranked against.

    Negatives are items the user never interacted with (in any part), drawn uniformly or by
    popularity (BERT4Rec's variant), distinct within a user.
    """
    validate_interactions(df, require_timestamp=True)
    split = leave_last_out(df, n_test=1, n_val=n_val, min_train=1)
    items = np.sort(df[ITEM].unique())
    users = np.sort(df[USER].unique())
    u = np.searchsorted(users, df[USER].to_numpy())
    i = np.searchsorted(items, df[ITEM].to_numpy())
    seen = pair_keys(u, i, len(items))
    tu = np.searchsorted(users, split.test[USER].to_numpy())
    ti = np.searchsorted(items, split.test[ITEM].to_numpy())
    counts = np.bincount(i, minlength=len(items)) if strategy == "popularity" else None
    cand = sample_candidates(tu, ti, seen, len(items), n_neg, strategy, counts, seed)
    return CandidateSplit(split.train, split.val, split.test, items[cand])


def evaluate_sampled(model, test: pd.DataFrame, candidates: np.ndarray, k: int = 10,
                     per_user: bool = False) -> dict[str, float] | pd.DataFrame:  # fmt: skip
    """HR@k, NDCG@k, MRR and AUC of ``model`` on sampled candidates (see :func:`recsys_tf.metrics.sampled_metrics`).

    ``test``: one row per user (``user_id``); ``candidates``: raw item ids, the held-out item in
    column 0. Candidates the model does not know (items absent from its training data) get the
    lowest score and are counted in ``n_unknown_candidates``. ``per_user=True``: one row per
    test user (``rank``, ``hit_rate@k``, ``ndcg@k``) for paired tests between models.
    """
    validate_interactions(test, "test")
    if len(test) != len(candidates):
        raise DataError(f"test has {len(test)} rows but candidates has {len(candidates)}.")
    u = model.encoder_.users.transform(np.repeat(test[USER].to_numpy(), candidates.shape[1]))
    i = model.encoder_.items.transform(candidates.ravel(), unknown="oov")
    known = i >= 0
    scores = np.full(len(i), -np.inf)
    scores[known] = model._score_codes(u[known], i[known])
    if per_user:
        rank = sampled_ranks(scores.reshape(candidates.shape), candidates)
        hit = rank <= k
        return pd.DataFrame({"rank": rank, f"hit_rate@{k}": hit.astype(float),
                             f"ndcg@{k}": np.where(hit, 1 / np.log2(rank + 1), 0.0)}, index=test[USER].to_numpy())  # fmt: skip
    out = sampled_metrics(scores.reshape(candidates.shape), candidates, k=k)
    out["n_unknown_candidates"] = int((~known).sum())
    return out
