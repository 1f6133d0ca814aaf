"""Baselines (item-kNN, EASE), NMF, the NCF family and the sampled-candidates protocol."""

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data import load_movielens
from recsys_tf.evaluation import evaluate_sampled, ncf_split
from recsys_tf.models import EASE, GMF, MLP, NMF, ItemKNN, MatrixFactorization, NeuMF, Popularity, Recommender

from conftest import needs_local


@pytest.fixture(scope="module")
def implicit_log():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(60), 8)
    # two taste groups: users < 30 like items < 20, the others items >= 20
    items = np.where(users < 30, rng.integers(0, 20, len(users)), rng.integers(20, 40, len(users)))
    df = pd.DataFrame({"user_id": users, "item_id": items, "label": 1.0, "timestamp": np.arange(len(users))})
    return df.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)


def test_itemknn_cosine_by_hand():
    df = pd.DataFrame({"user_id": [0, 0, 1, 1, 2], "item_id": [0, 1, 0, 1, 2]})
    m = ItemKNN(k=10, shrink=0.0).fit(df)
    # items 0 and 1 share both their users: cos = 2 / sqrt(2 * 2) = 1; item 2 shares none
    assert m.sim_[0, 1] == pytest.approx(1.0) and m.sim_[0, 2] == 0 and m.sim_[0, 0] == 0
    assert m.score([2, 2], [0, 2]).tolist() == [0.0, 0.0]
    items, _ = m.recommend(0, k=1, exclude_seen=False)
    assert items[0] in (0, 1)


def test_ease_solves_its_constrained_least_squares(implicit_log):
    m = EASE(l2=10.0).fit(implicit_log)
    x = m.x_.toarray().astype(float)
    b = m.b_.astype(float)
    assert np.allclose(np.diag(b), 0)
    # optimality: (X^T X + lambda I) B - X^T X is zero off the diagonal (the constraint's multipliers sit on it)
    resid = (x.T @ x + 10.0 * np.eye(len(b))) @ b - x.T @ x
    off = resid - np.diag(np.diag(resid))
    assert np.abs(off).max() < 1e-3
    assert np.allclose(m._score_codes(np.arange(3)), x[:3] @ b, atol=1e-4)


def test_baselines_learn_the_taste_groups(implicit_log):
    for model in (ItemKNN(k=20), EASE(l2=5.0)):
        items, _ = model.fit(implicit_log).recommend([0, 45], k=5)
        assert (items[0] < 20).all() and (items[1] >= 20).all()


@pytest.mark.parametrize("model", [GMF(factors=8, loss="bce", epochs=15, learning_rate=0.01, verbose=False),
                                   MLP(layers=(16, 8), loss="bce", epochs=40, learning_rate=0.01, verbose=False),
                                   NeuMF(factors=8, layers=(16, 8), loss="bce", epochs=15, learning_rate=0.01, verbose=False)],
                         ids=["gmf", "mlp", "neumf"])  # fmt: skip
def test_ncf_models_fit_score_and_round_trip(model, implicit_log, tmp_path):
    model.fit(implicit_log)
    u = np.array([0, 45])
    full = model._score_codes(u)
    pairs = model._score_codes(np.repeat(u, model.n_items), np.tile(np.arange(model.n_items), 2)).reshape(2, -1)
    assert np.allclose(full, pairs, atol=1e-4)  # fast algebraic scoring == the network
    items, _ = model.recommend(u, k=5)
    assert (items[0] < 20).mean() >= 0.8 and (items[1] >= 20).mean() >= 0.8
    model.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m")
    assert type(again) is type(model) and np.allclose(again.recommend(u, k=5)[1], model.recommend(u, k=5)[1], atol=1e-5)


def test_neumf_pretraining_starts_as_the_blend_of_gmf_and_mlp(implicit_log):
    gmf = GMF(factors=8, loss="bce", epochs=3, verbose=False).fit(implicit_log)
    mlp = MLP(layers=(16, 8), loss="bce", epochs=3, verbose=False).fit(implicit_log)
    neu = NeuMF(factors=8, layers=(16, 8), loss="bce", epochs=0, alpha=0.5, verbose=False).fit(implicit_log, pretrained=(gmf, mlp))
    u, i = np.repeat(np.arange(5), 3), np.tile(np.arange(3), 5)
    blend = 0.5 * gmf._score_codes(u, i) + 0.5 * mlp._score_codes(u, i)
    assert np.allclose(neu._score_codes(u, i), blend, atol=1e-5)
    with pytest.raises(ValueError, match="must match"):
        NeuMF(factors=16, layers=(16, 8), epochs=0, verbose=False).fit(implicit_log, pretrained=(gmf, mlp))


def test_nmf_factors_stay_non_negative():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 30, 400), "item_id": rng.integers(0, 20, 400),
                       "rating": rng.integers(1, 6, 400).astype("float32")}).drop_duplicates(["user_id", "item_id"])  # fmt: skip
    m = NMF(factors=4, epochs=5, verbose=False).fit(df)
    assert (m.item_factors >= 0).all() and (m.user_factors >= 0).all()


def test_early_stopping_keeps_the_best_validation_epoch(implicit_log):
    split_at = implicit_log.groupby("user_id").cumcount(ascending=False) == 0
    train, val = implicit_log[~split_at], implicit_log[split_at]
    m = MatrixFactorization(factors=8, epochs=6, patience=1, verbose=False).fit(train, val=val)
    scores = [h["val_ndcg@10"] for h in m.history_]
    assert m.best_epoch_ == int(np.argmax(scores)) + 1
    assert m.evaluate(val)["ndcg@10"] == pytest.approx(max(scores))


def test_sampled_protocol_on_a_toy_log(implicit_log):
    cs = ncf_split(implicit_log, n_neg=10, seed=0)
    assert cs.candidates.shape == (60, 11)
    assert (cs.candidates[:, 0] == cs.test.item_id.to_numpy()).all()
    seen = set(zip(implicit_log.user_id, implicit_log.item_id))
    assert not any((u, i) in seen for u, row in zip(cs.test.user_id, cs.candidates[:, 1:]) for i in row)
    m = evaluate_sampled(EASE(l2=5.0).fit(cs.train), cs.test, cs.candidates, k=5)
    assert m["hit_rate@5"] > 0.5 and 0 <= m["ndcg@5"] <= m["hit_rate@5"]


@needs_local("movielens-100k", "u.data")
def test_neumf_beats_popularity_and_itemknn_on_ml100k_ncf_protocol():
    """Issue 3's CI check: the NCF protocol (leave-latest-out, 99 sampled negatives) on ML-100K."""
    df = load_movielens("100k").interactions.assign(label=1.0)
    cs = ncf_split(df, n_neg=99, seed=0)
    pop = evaluate_sampled(Popularity().fit(cs.train), cs.test, cs.candidates)
    knn = evaluate_sampled(ItemKNN(k=100).fit(cs.train), cs.test, cs.candidates)
    neumf = NeuMF(factors=32, layers=(64, 32, 16), loss="bce", epochs=8, batch_size=512, learning_rate=0.002,
                  seed=0, verbose=False).fit(cs.train)  # fmt: skip
    res = evaluate_sampled(neumf, cs.test, cs.candidates)
    assert 0.35 < pop["hit_rate@10"] < 0.45  # RecBole's peer run: 0.409
    assert res["hit_rate@10"] > knn["hit_rate@10"] > pop["hit_rate@10"]
    assert res["ndcg@10"] > knn["ndcg@10"] > pop["ndcg@10"]


def test_the_generic_full_scores_agree_with_the_fast_algebra(implicit_log):
    from recsys_tf.models.nets import PairNet

    model = NeuMF(factors=4, layers=(8, 4), epochs=1, verbose=False).fit(implicit_log)
    users = np.arange(3)
    assert np.allclose(PairNet.full_scores(model.net_, users), model.net_.full_scores(users), atol=1e-5)


def test_itemknn_keeps_the_target_items_neighbours_by_default_and_offers_the_history_convention():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"user_id": rng.integers(0, 40, 400), "item_id": rng.integers(0, 25, 400)}).drop_duplicates()
    target, history = ItemKNN(k=3, shrink=0.0).fit(df), ItemKNN(k=3, shrink=0.0, neighbours="history").fit(df)
    x = target.x_.toarray().astype(float)
    norms = np.sqrt(x.sum(axis=0))
    full = (x.T @ x) / (np.outer(norms, norms) + 1e-12)
    np.fill_diagonal(full, 0.0)
    t, h = target.sim_.toarray(), history.sim_.toarray()
    top3 = lambda v: np.sort(v)[::-1][:3]  # noqa: E731 - the 3 largest similarities, ties included
    for j in range(full.shape[0]):  # column j of the target model: j's 3 most similar items; row j of the history one
        assert np.allclose(top3(t[:, j]), top3(full[:, j]), atol=1e-6) and (t[:, j] > 0).sum() <= 3
        assert np.allclose(top3(h[j]), top3(full[j]), atol=1e-6) and (h[j] > 0).sum() <= 3
    assert np.allclose(target._score_codes(np.arange(5)), x[:5] @ t, atol=1e-5)
    assert not np.allclose(t, h)
    with pytest.raises(ValueError, match="'target' or 'history'"):
        ItemKNN(neighbours="user")
