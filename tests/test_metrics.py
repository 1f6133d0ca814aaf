import math

import numpy as np
import pytest

from recsys_tf.metrics import (Relevance, catalog_coverage, confidence_interval, intra_list_diversity, mae, novelty,
                               paired_comparison, per_user_metric, popularity_bias, ranking_metrics, rmse,
                               sampled_metrics, sampled_ranks)

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


# --- sampled protocol -------------------------------------------------------------------------------
def test_sampled_ranks_are_pessimistic_on_ties_and_dedup_the_positive():
    scores = np.array([[0.9, 0.1, 0.2, 0.95], [0.5, 0.5, 0.1, 0.1], [0.3, 0.9, 0.1, 0.1]])
    assert sampled_ranks(scores).tolist() == [2, 2, 2]
    cand = np.array([[5, 1, 2, 3], [6, 1, 2, 3], [7, 7, 2, 3]])  # user 2's positive repeats among its negatives
    assert sampled_ranks(scores, cand).tolist() == [2, 2, 1]


def test_sampled_metrics_hand_case():
    scores = np.array([[0.9, 0.1, 0.2, 0.95], [1.0, 0.5, 0.1, 0.2]])  # ranks 2 and 1 among 4
    m = sampled_metrics(scores, k=1)
    assert m["hit_rate@1"] == 0.5 and m["ndcg@1"] == 0.5 and m["mrr"] == pytest.approx(0.75)
    assert m["auc"] == pytest.approx((2 / 3 + 1) / 2)
    m = sampled_metrics(scores, k=2)
    assert m["ndcg@2"] == pytest.approx((1 / L2(3) + 1) / 2)


def test_beyond_accuracy_metrics():
    ranked = np.array([[0, 1], [0, 2]])
    assert catalog_coverage(ranked, 10) == pytest.approx(0.3)
    counts = np.array([8, 2, 4, 0])
    assert novelty(ranked, counts, n_users=8) == pytest.approx((0 + 2 + 0 + 1) / 4)
    assert popularity_bias(ranked, counts) == pytest.approx((8 + 2 + 8 + 4) / 4)
    vec = np.array([[1.0, 0], [0, 1.0], [1.0, 0]])
    assert intra_list_diversity(ranked, vec) == pytest.approx((1 + 0) / 2)


def test_paired_comparison_and_confidence_interval():
    rng = np.random.default_rng(0)
    b = rng.random(500)
    a = b + 0.05 + rng.normal(0, 0.01, 500)
    res = paired_comparison(a, b)
    assert res["ci_low"] < 0.05 < res["ci_high"] and res["t_test_p"] < 1e-10 and res["wilcoxon_p"] < 1e-10
    mean, lo, hi = confidence_interval(b)
    assert lo < mean < hi and hi - lo < 0.1
    assert paired_comparison(b, b)["wilcoxon_p"] == 1.0
