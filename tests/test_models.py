import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.cleaning import to_implicit
from recsys_tf.data.split import leave_last_out
from recsys_tf.errors import DataError
from recsys_tf.models import MatrixFactorization, Popularity, Recommender, top_k


@pytest.fixture()
def tiny_log():
    return pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 3], "item_id": [10, 11, 10, 12, 10, 11, 13],
                         "label": 1.0, "timestamp": range(7)})  # fmt: skip


def test_top_k_orders_and_breaks_ties_by_index():
    idx, val = top_k(np.array([[0.1, 0.5, 0.5, 0.2], [3.0, 1.0, 2.0, 4.0]]), 3)
    assert idx.tolist() == [[1, 2, 3], [3, 0, 2]]
    assert val.tolist() == [[0.5, 0.5, 0.2], [4.0, 3.0, 2.0]]
    assert top_k(np.array([[1.0, 2.0]]), 5)[0].tolist() == [[1, 0]]


def test_popularity_counts_and_excludes_seen(tiny_log):
    catalog = pd.DataFrame({"item_id": [10, 11, 12, 13, 14]})
    pop = Popularity().fit(tiny_log, catalog)
    items, scores = pop.recommend(1, k=3)
    assert items.tolist() == [12, 13, 14] and scores.tolist() == [1, 1, 0]
    items, _ = pop.recommend(1, k=2, exclude_seen=False)
    assert items.tolist() == [10, 11]
    assert pop.score([2, 2], [10, 14]).tolist() == [3, 0]
    many, _ = pop.recommend([1, 2], k=2)
    assert many.shape == (2, 2)


def test_unknown_users_are_refused_and_unfitted_models_say_so(tiny_log):
    with pytest.raises(RuntimeError, match="not fitted"):
        Popularity().recommend(1)
    pop = Popularity().fit(tiny_log)
    with pytest.raises(DataError, match="unknown to the model"):
        pop.recommend(99)
    with pytest.raises(DataError, match="missing item_id"):
        Popularity().fit(tiny_log.assign(item_id=[10, None, 1, 2, 3, 4, 5]))


def test_evaluate_counts_unknown_rows(tiny_log):
    pop = Popularity().fit(tiny_log)
    test = pd.DataFrame({"user_id": [1, 2, 42], "item_id": [12, 13, 10]})
    m = pop.evaluate(test, k=2)
    assert m["n_unknown_rows"] == 1 and m["n_users"] == 2
    # user 1 sees [12, 13] (10, 11 masked): hit at rank 1; user 2 sees [11, 13]: hit at rank 2
    assert m["hit_rate@2"] == 1.0 and m["mrr@2"] == pytest.approx(0.75)


def test_explicit_mf_learns_a_low_rank_rating_matrix():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    full = 3 + p @ q.T * 0.7
    u, i = np.nonzero(rng.random((60, 40)) < 0.5)
    df = pd.DataFrame({"user_id": u, "item_id": i, "rating": full[u, i].astype("float32")})
    train, test = df.iloc[::2].reset_index(drop=True), df.iloc[1::2].reset_index(drop=True)
    mf = MatrixFactorization(factors=3, feedback="explicit", epochs=60, batch_size=64, learning_rate=0.02,
                             l2=1e-5, verbose=False).fit(train)  # fmt: skip
    pred = mf.score(test.user_id.to_numpy(), test.item_id.to_numpy())
    rmse_model = np.sqrt(np.mean((pred - test.rating) ** 2))
    rmse_mean = np.sqrt(np.mean((train.rating.mean() - test.rating) ** 2))
    assert rmse_model < 0.5 * rmse_mean


def test_implicit_mf_beats_popularity_on_the_shop(shop_small, shop_small_clean):
    ev, _ = shop_small_clean
    split = leave_last_out(to_implicit(ev, min_event="click"), n_test=1, n_val=1, min_train=2)
    pop = Popularity().fit(split.train, shop_small.catalog).evaluate(split.test)
    mf = MatrixFactorization(factors=32, epochs=8, seed=0, verbose=False).fit(split.train, shop_small.catalog)
    m = mf.evaluate(split.test)
    assert m["ndcg@10"] > 2 * pop["ndcg@10"] and m["hit_rate@10"] > pop["hit_rate@10"] + 0.1
    items, scores = mf.recommend(split.test.user_id.iloc[0], k=10)
    seen = set(split.train[split.train.user_id == split.test.user_id.iloc[0]].item_id)
    assert not seen & set(items) and (np.diff(scores) <= 1e-6).all()


def test_mf_is_deterministic_and_round_trips_through_save(tmp_path, tiny_log):
    a = MatrixFactorization(factors=4, epochs=3, verbose=False, seed=3).fit(tiny_log)
    b = MatrixFactorization(factors=4, epochs=3, verbose=False, seed=3).fit(tiny_log)
    assert np.allclose(a.item_factors, b.item_factors)
    a.save(tmp_path / "mf")
    assert (tmp_path / "mf" / "model.keras").exists()
    c = Recommender.load(tmp_path / "mf")
    assert isinstance(c, MatrixFactorization)
    assert np.allclose(c.recommend([1, 2], k=2)[1], a.recommend([1, 2], k=2)[1])
    pop = Popularity().fit(tiny_log)
    pop.save(tmp_path / "pop")
    assert Recommender.load(tmp_path / "pop").recommend(1, k=2)[0].tolist() == pop.recommend(1, k=2)[0].tolist()


def test_mf_rejects_bad_settings(tiny_log):
    with pytest.raises(ValueError, match="bce"):
        MatrixFactorization(feedback="explicit", loss="bce")
    with pytest.raises(DataError, match="rating"):
        MatrixFactorization(feedback="explicit", epochs=1, verbose=False).fit(tiny_log)


def test_the_classic_models_import_without_tensorflow_and_keras_models_on_demand():
    """``recsys_tf.models`` imports each class when asked: popularity, neighbours, content k-NN and ALS
    start no TensorFlow (a fresh process); the Keras models come from their modules; a name it does
    not have is an AttributeError."""
    code = """
import json, sys
from recsys_tf.models import EASE, ContentKNN, ItemKNN, Popularity, Recommender, SparkALS, top_k
print(json.dumps(sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    from recsys_tf import models
    from recsys_tf.models import mf, sequential

    assert models.MatrixFactorization is mf.MatrixFactorization and models.SASRec is sequential.SASRec
    assert set(models.__all__) <= set(dir(models))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchModel'"):
        models.NoSuchModel


def test_a_sequence_model_silences_retracing_notes_even_when_keras_came_first():
    """TensorFlow's "triggered tf.function retracing" warning names a memory address, so it changes
    from run to run (it broke nbval on notebook 11 once ``recsys_tf.models`` became lazy). Importing a
    Keras model drops it even when Keras was imported first by another path; other warnings stay.
    The same process shows the warning before the import, so the test can fail."""
    code = """
import logging
import keras, tensorflow as tf

def retrace(step, tag):  # a new tf.function of the same code each call, as each fit builds its step
    for n in range(8):
        tf.function(step)(tf.constant(n))
    logging.getLogger("tensorflow").warning("still shown: %s", tag)

retrace(lambda x: x + 1, "before")  # TensorFlow warns about a code object only a few times: one each
from recsys_tf.models import SASRec
retrace(lambda x: x * 2, "after")
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    before, _, after = out.stderr.partition("still shown: before")
    assert "triggered tf.function retracing" in before, out.stderr[-2000:]
    assert "still shown: after" in after and "triggered tf.function retracing" not in after, out.stderr[-2000:]
