import math

import numpy as np
import pytest

from recsys_tf.metrics import Relevance, mae, per_user_metric, ranking_metrics, rmse

L2 = math.log2


def test_hand_computed_case():
    # user 0: ranked [1, 2, 3], relevant {2, 5}: one hit at rank 2
    # user 1: ranked [4, 0, 7], relevant {4}: one hit at rank 1
    # user 2: no relevant item -> skipped, not scored 0
    m = ranking_metrics(np.array([[1, 2, 3], [4, 0, 7], [1, 2, 3]]), [[2, 5], [4], []], k=3, n_items=10)
    ndcg0 = (1 / L2(3)) / (1 + 1 / L2(3))
    assert m["ndcg@3"] == pytest.approx((ndcg0 + 1) / 2)
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["hit_rate@3"] == pytest.approx(1.0)
    assert m["mrr@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["map@3"] == pytest.approx(((1 / 2) / 2 + 1) / 2)
    p, r = 1 / 3, 0.75
    assert m["f1@3"] == pytest.approx(2 * p * r / (p + r))
    assert (m["n_users"], m["n_users_skipped"]) == (2, 1)


def test_perfect_and_empty_lists():
    m = ranking_metrics(np.array([[3, 1, 2]]), [[1, 2, 3]], k=3, n_items=5)
    assert m["ndcg@3"] == pytest.approx(1) and m["map@3"] == pytest.approx(1) and m["recall@3"] == 1
    m = ranking_metrics(np.array([[0, 4]]), [[1]], k=2, n_items=5)
    assert m["ndcg@2"] == 0 and m["mrr@2"] == 0 and m["hit_rate@2"] == 0


def test_k_longer_than_the_list_counts_missing_ranks_as_misses():
    m = ranking_metrics(np.array([[7]]), [[7]], k=5, n_items=10)
    assert m["precision@5"] == pytest.approx(1 / 5) and m["ndcg@5"] == pytest.approx(1.0) and m["recall@5"] == 1


def test_repeated_items_count_once():
    m = ranking_metrics(np.array([[2, 2, 2]]), [[2]], k=3, n_items=5)
    assert m["precision@3"] == pytest.approx(1 / 3)


def test_ndcg_ideal_is_capped_at_k():
    # 5 relevant items, k=2, both hits: NDCG = 1 (the ideal list has only 2 slots)
    assert ranking_metrics(np.array([[0, 1]]), [[0, 1, 2, 3, 4]], k=2, n_items=5)["ndcg@2"] == pytest.approx(1)


def test_relevance_and_per_user_metric_agree_with_the_mean():
    rng = np.random.default_rng(0)
    ranked = np.stack([rng.permutation(50)[:10] for _ in range(100)])
    rel = [rng.choice(50, size=rng.integers(0, 4), replace=False) for _ in range(100)]
    per_user = per_user_metric(ranked, rel, "ndcg", k=10, n_items=50)
    assert np.isnan(per_user[[len(r) == 0 for r in rel]]).all()
    assert np.nanmean(per_user) == pytest.approx(ranking_metrics(ranked, Relevance.from_lists(rel, 50), k=10)["ndcg@10"])


def test_rating_errors():
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
