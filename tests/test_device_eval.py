"""Evaluation on the device: scores, the seen-item mask and the top-k in keras.ops give the same lists
as the NumPy host path, ties and NaN included, on TensorFlow and on JAX."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_tf.course import ROOT
from recsys_tf.models import GMF, MLP, HybridRecommender, MatrixFactorization, NeuMF, Recommender


def _log(n_users=60, n_items=40, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


def _models():
    feats = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 5)), index=range(40))
    return {
        "MF": MatrixFactorization(factors=8, epochs=2, verbose=False),
        "GMF": GMF(factors=8, epochs=2, verbose=False),
        "MLP": MLP(layers=(16, 8, 4), epochs=2, verbose=False),
        "NeuMF": NeuMF(factors=8, layers=(16, 8, 4), epochs=2, verbose=False),
        "hybrid": HybridRecommender(item_features=feats, factors=8, epochs=2, verbose=False),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_device_top_k_equals_the_host_path(name):
    model = _models()[name].fit(_log())
    users = np.arange(model.n_users)
    host_i, host_v = Recommender._top_k_codes(model, users, 10, True)
    dev_i, dev_v = model._top_k_codes(users, 10, True, batch_size=7)  # several batches, a short last one
    assert np.array_equal(host_i, dev_i)
    np.testing.assert_allclose(dev_v, host_v, rtol=1e-5, atol=1e-6)
    seen = set(zip(*np.divmod(model.seen_, model.n_items)))
    assert not any((u, i) in seen for u in users for i in dev_i[u])


def test_device_top_k_breaks_ties_by_the_lower_index_and_pads_short_lists():
    model = MatrixFactorization(factors=4, epochs=1, verbose=False).fit(_log(n_items=12, per_user=8))
    for w in model.net_.weights:  # every score equal: the order is the item codes'
        w.assign(np.zeros(w.shape, "float32"))
    users = np.arange(model.n_users)
    idx, vals = model._top_k_codes(users, 6, True)
    host_i, _ = Recommender._top_k_codes(model, users, 6, True)
    assert np.array_equal(idx, host_i)
    assert (idx[:, :4] >= 0).all() and (idx[:, 4:] == -1).all()  # 12 items - 8 seen = 4 left
    assert all(list(row[:4]) == sorted(row[:4]) for row in idx)


def test_device_top_k_ranks_nan_last_and_warns():
    model = MatrixFactorization(factors=4, epochs=1, verbose=False).fit(_log())
    q = model.net_.q.embeddings.numpy()
    q[3] = np.nan
    model.net_.q.embeddings.assign(q)
    users = np.arange(model.n_users)
    with pytest.warns(UserWarning, match="NaN scores"):
        idx, vals = model._top_k_codes(users, model.n_items, False)
    assert (idx[:, -1] == 3).all() and np.isnan(vals[:, -1]).all()


def test_device_top_k_checks_for_nan_exactly_when_scores_are_huge_or_infinite():
    """The NaN check is skipped when a batch's sum is finite; huge scores (their sum overflows) and
    +-inf (their sum is NaN) take the exact path: same order, no NaN warning, -inf stays unranked."""
    import warnings

    from keras import ops

    from recsys_tf.models.keras_base import device_top_k

    model = MatrixFactorization(factors=4, epochs=1, verbose=False).fit(_log())
    big = np.float32(3e38)
    scores = np.array([[1.0, big, 2.0, big / 2, 0.5],  # finite, but the batch's sum overflows to inf
                       [np.inf, 1.0, -np.inf, 3.0, 2.0],  # the sum is NaN though no score is
                       [0.1, 0.4, 0.3, 0.2, 0.0]], dtype=np.float32)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for batch in (1, 3):  # alone, each row's sum is finite or not on its own
            idx, vals = device_top_k(model, np.arange(3), 5, False, batch, lambda u: ops.convert_to_tensor(scores[u]))
            assert idx.tolist() == [[1, 3, 2, 0, 4], [0, 3, 4, 1, -1], [1, 2, 3, 0, 4]]
            assert vals[0, 0] == big and vals[1, 0] == np.inf and not np.isnan(vals).any()


def test_evaluate_and_recommend_use_the_device_and_agree_with_the_host():
    model = NeuMF(factors=8, layers=(16, 8, 4), epochs=2, verbose=False).fit(_log())
    test = _log(seed=5).drop_duplicates("user_id")
    test = test[~test.set_index(["user_id", "item_id"]).index.isin(_log().set_index(["user_id", "item_id"]).index)]
    on_device = model.evaluate(test)
    model.device_min_users = 10**9  # force the host path
    assert model.evaluate(test) == pytest.approx(on_device)
    assert np.array_equal(model.recommend(np.arange(40), 5)[0], NeuMF.recommend(model, np.arange(40), 5)[0])


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed (pip install -e '.[jax]')")
def test_device_top_k_on_jax_equals_the_host_path():
    script = """
import numpy as np, pandas as pd
from recsys_tf.models import NeuMF, Recommender
rng = np.random.default_rng(0)
df = pd.DataFrame([(u, i) for u in range(60) for i in rng.choice(40, 8, replace=False)], columns=["user_id", "item_id"])
m = NeuMF(factors=8, layers=(16, 8, 4), epochs=2, verbose=False).fit(df)
u = np.arange(m.n_users)
a, b = Recommender._top_k_codes(m, u, 10, True)[0], m._top_k_codes(u, 10, True, batch_size=7)[0]
print("same" if np.array_equal(a, b) else f"differ {a[:2]} {b[:2]}")
"""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=path)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("same"), out.stdout[-500:] + out.stderr[-2000:]


def test_the_xla_compiled_scoring_gives_the_same_lists_sees_further_training_and_saves(tmp_path):
    model = NeuMF(factors=8, layers=(16, 8, 4), epochs=1, verbose=False).fit(_log())
    model.xla_min_floats = 0  # compile even this small job
    users = np.arange(model.n_users)
    host_i, _ = Recommender._top_k_codes(model, users, 10, True)
    assert np.array_equal(model._top_k_codes(users, 10, True)[0], host_i)
    for w in model.net_.weights:  # change the weights: the compiled function must read the new values
        w.assign(np.asarray(w.numpy()) * 1.5 + 0.01)
    assert np.array_equal(model._top_k_codes(users, 10, True)[0], Recommender._top_k_codes(model, users, 10, True)[0])
    model.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    assert np.array_equal(back._top_k_codes(users, 10, True)[0], model._top_k_codes(users, 10, True)[0])
