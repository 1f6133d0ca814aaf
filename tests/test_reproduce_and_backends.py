"""The reproduction runner, the NCF file's quirk, other Keras backends, TensorBoard and mixed precision."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_tf import reproduce
from recsys_tf.data import download, load_ncf
from recsys_tf.data.registry import FileSpec, get_spec
from recsys_tf.metrics import sampled_ranks
from recsys_tf.models import MatrixFactorization, Recommender

from conftest import ROOT, needs_local


def _write_ncf_files(folder, n_users=40, n_items=220, per_user=12, seed=0):
    rng = np.random.default_rng(seed)
    train, test, neg = [], [], []
    for u in range(n_users):
        items = rng.choice(n_items, per_user + 1, replace=False)
        for t, i in enumerate(items[:-1]):
            train.append(f"{u}\t{i}\t5\t{1000 + t}")
        test.append(f"{u}\t{items[-1]}\t4\t{2000}")
        negs = rng.choice(np.setdiff1d(np.arange(n_items), items), 99, replace=False)
        neg.append(f"({u},{items[-1]})\t" + "\t".join(map(str, negs)))
    folder.mkdir(parents=True)
    for name, lines in (("ml-1m.train.rating", train), ("ml-1m.test.rating", test), ("ml-1m.test.negative", neg)):
        (folder / name).write_text("\n".join(lines) + "\n")


def test_ncf_ml1m_experiment_runs_on_files_of_the_published_format(tmp_path, monkeypatch):
    _write_ncf_files(tmp_path / "ncf-ml-1m")
    spec = get_spec("ncf-ml-1m")
    files = {n: FileSpec(n, lines=sum(1 for _ in open(tmp_path / "ncf-ml-1m" / n))) for n in spec.files}
    monkeypatch.setattr(download, "get_spec", lambda name: type(spec)(**{**spec.__dict__, "files": files}))
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path))
    res = reproduce.ncf_ml1m(epochs=1, seeds=(0, 1))
    assert len(res["rows"]) == 9 and 0 <= res["rows"]["TopPopular"]["hr"]["mean"] <= 1
    assert len(res["rows"]["GMF (64 factors)"]["hr"]["values"]) == 2 and res["seeds"] == [0, 1]
    assert "NeuMF (64 factors, MLP 256-128-64), pre-trained from GMF + MLP" in res["rows"]
    page = reproduce.render({"ncf_ml1m": json.loads(json.dumps(res, default=float))}, "CPU")
    assert "0.730 / 0.447" in page and "| TopPopular |" in page


def test_render_says_why_an_experiment_did_not_run():
    page = reproduce.render({"ncf_ml1m": {"skipped": "ML-1M training data unavailable"}}, "CPU")
    assert "Not run: ML-1M training data unavailable" in page and "HR@10 0.730" in page


@needs_local("ncf-ml-1m", "ml-1m.test.negative")
def test_the_published_negatives_quirk_is_counted_once():
    ncf = load_ncf("ml-1m")
    cand = ncf.candidates()
    scores = np.ones(cand.shape)
    scores[:, 0] = 0.0  # every negative above the test item: rank = 1 + distinct negatives
    ranks = sampled_ranks(scores, cand)
    assert (ranks == 99).sum() == 156 and (ranks == 100).sum() == 6_040 - 156


def test_tensorboard_logs_and_mixed_precision(tmp_path):
    df = pd.DataFrame({"user_id": np.repeat(np.arange(20), 5), "item_id": np.tile(np.arange(5), 20), "label": 1.0,
                       "timestamp": np.arange(100)})  # fmt: skip
    df.loc[::3, "item_id"] += 5
    MatrixFactorization(factors=4, epochs=2, tensorboard_dir=str(tmp_path / "tb"), verbose=False).fit(df)
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))
    m = MatrixFactorization(factors=4, epochs=2, mixed_precision=True, verbose=False).fit(df)
    assert "float16" in str(m.net_.p.compute_dtype) and np.isfinite(m.recommend(0, k=3)[1]).all()


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed (pip install -e '.[jax]')")
def test_the_same_model_trains_on_jax_and_loads_on_tensorflow(tmp_path):
    """Backend-agnostic models (MF; the hybrid with content and learned text; SASRec): train on JAX (compiled
    on-device loop), save .keras, load on TensorFlow, same recommendations."""
    script = f"""
import json
import numpy as np
from recsys_tf.data.shop import make_shop
from recsys_tf.data.cleaning import clean_events, to_implicit
from recsys_tf.data.split import leave_last_out
from recsys_tf.models import MatrixFactorization, Popularity
shop = make_shop("small", seed=0)
ev, _ = clean_events(shop.events, shop.catalog)
split = leave_last_out(to_implicit(ev), 1, 1, min_train=2)
mf = MatrixFactorization(factors=32, epochs=8, seed=0, verbose=False).fit(split.train, shop.catalog)
mf.save(r"{tmp_path / 'mf'}")
from recsys_tf.features import attribute_features, feature_table
from recsys_tf.models import HybridRecommender
cat = shop.catalog
feats = feature_table(cat.item_id, {{"attributes": attribute_features(cat, numeric=[])}})
hy = HybridRecommender(feats, item_texts=cat.set_index("item_id").text, factors=8, epochs=2, seed=0, verbose=False).fit(split.train, cat)
hy.save(r"{tmp_path / 'hybrid'}")
from recsys_tf.models import SASRec  # the sequence models' compiled JAX loop (it once refused an unbuilt wrapper)
seq = SASRec(maxlen=10, dim=16, epochs=2, batch_size=64, seed=0, verbose=False).fit(split.train)
seq.save(r"{tmp_path / 'sasrec'}")
user = int(split.test.user_id.iloc[0])
sasrec_items = seq.recommend(user, 10)[0].tolist()
# compiled scoring must read the weights as they are now: jax.jit once baked in those of its first call
session = seq._session_input(np.array([0, 1, 2]))
before = seq._predict_one(session)
seq.net_.set_weights([w * 2 for w in seq.net_.get_weights()])
print(json.dumps({{"mf": mf.evaluate(split.test)["ndcg@10"], "pop": Popularity().fit(split.train, shop.catalog).evaluate(split.test)["ndcg@10"],
                  "user": user, "items": mf.recommend(user, 10)[0].tolist(), "hybrid": hy.recommend(user, 10)[0].tolist(),
                  "sasrec": sasrec_items, "sasrec_epochs": len(seq.history_),
                  "scores_follow_weights": not np.allclose(before, seq._predict_one(session))}}))
"""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["mf"] > 2 * res["pop"]
    loaded = Recommender.load(tmp_path / "mf")  # this process runs TensorFlow
    assert loaded.recommend(res["user"], 10)[0].tolist() == res["items"]
    assert Recommender.load(tmp_path / "hybrid").recommend(res["user"], 10)[0].tolist() == res["hybrid"]
    assert res["sasrec_epochs"] == 2 and Recommender.load(tmp_path / "sasrec").recommend(res["user"], 10)[0].tolist() == res["sasrec"]
    assert res["scores_follow_weights"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed (pip install -e '.[jax]')")
def test_the_device_negative_sampler():
    """JAX's on-device sampler (used on GPUs): positives kept, negatives unseen, fresh every epoch."""
    script = """
import json, numpy as np
from recsys_tf.models.fast_loop import JaxImplicitSampler
from recsys_tf.data.sampling import pair_keys
rng = np.random.default_rng(0)
keys = pair_keys(rng.integers(0, 400, 2000), rng.integers(0, 300, 2000), 300)
s = JaxImplicitSampler(keys // 300, keys % 300, keys, 300, 4, 500)
s.seed(1)
x, y = (np.asarray(a) for a in s.next_epoch())
x2, _ = s.next_epoch()
neg, pos = x[y == 0], x[y == 1]
print(json.dumps({"shape": list(x.shape), "pos_rate": float(y.mean()), "neg_seen": float(np.isin(neg[:, 0] * 300 + neg[:, 1], keys).mean()),
                  "pos_seen": bool(np.isin(pos[:, 0] * 300 + pos[:, 1], keys).all()), "differs": bool((np.asarray(x2) != x).any())}))
"""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shape"][1:] == [500, 2] and res["pos_rate"] == pytest.approx(0.2)
    assert res["pos_seen"] and res["neg_seen"] == 0.0 and res["differs"]
