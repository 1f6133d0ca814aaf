"""The pipeline on Spark gives the pandas pipeline's rows; negatives and ids keep their contracts.

One SparkSession (local[2]) for the whole run, on the tiny shop: the Spark tests stay well under
the 90 s the issue allows. They run in one pytest-xdist worker (the ``spark`` group).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data import cleaning, split
from recsys_tf.errors import DataError

pytestmark = pytest.mark.xdist_group("spark")
pytest.importorskip("pyspark")


def _one_worker_starts_spark(tmp_path_factory) -> None:
    """Under pytest-xdist, fail when a second worker starts a SparkSession: ``make test`` keeps this
    module on one worker (``--dist loadgroup``), as a second session costs ~55 s of the 2 cores. The
    grouping once stopped silently (pytest 9.2 with pytest-xdist 3.8, pytest-xdist#1386)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return
    claim = tmp_path_factory.getbasetemp().parent / "spark-session-worker"  # shared by this run's workers
    try:
        with open(claim, "x") as f:
            f.write(worker)
    except FileExistsError:
        first = claim.read_text()
        if first != worker:
            pytest.fail(f"the Spark tests run on two pytest-xdist workers ({first} and {worker}), each starting Spark: "
                        "run them with --dist loadgroup on a pytest that keeps xdist_group (pyproject pins pytest<9.2)")


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from recsys_tf.spark import java_home, spark_session

    if java_home() is None:
        pytest.skip("no Java runtime (Spark needs OpenJDK 17+)")
    _one_worker_starts_spark(tmp_path_factory)
    session = spark_session("local[2]", shuffle_partitions=4, driver_memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def both(spark, shop_tiny):
    """The tiny shop cleaned by pandas and by Spark."""
    from recsys_tf.spark import pipeline as P

    ev_pd, rep_pd = cleaning.clean_events(shop_tiny.events, shop_tiny.catalog)
    items = P.from_pandas(spark, shop_tiny.catalog[["item_id"]])
    ev_sp, rep_sp = P.clean_events(P.from_pandas(spark, shop_tiny.events), items)
    return ev_pd, rep_pd, ev_sp, rep_sp


def _same(pandas_frame: pd.DataFrame, spark_frame, keys: list[str] | None) -> None:
    """The same rows (sorted by ``keys``, default all columns); floats to 1e-12 (Spark sums in another order)."""
    from recsys_tf.spark.pipeline import to_pandas

    cols = list(pandas_frame.columns)
    keys = keys or cols
    want = pandas_frame.sort_values(keys, ignore_index=True)
    got = to_pandas(spark_frame.select(*cols), keys)
    text = {c: object for c in cols if not pd.api.types.is_numeric_dtype(want[c])}  # str vs object dtypes
    pd.testing.assert_frame_equal(want.astype(text), got.astype(text), check_dtype=False, check_exact=False, rtol=1e-12)


def test_cleaning_on_spark_keeps_exactly_the_rows_pandas_keeps(both):
    ev_pd, rep_pd, ev_sp, rep_sp = both
    assert rep_sp.to_frame()[["step", "rows_after"]].equals(rep_pd.to_frame()[["step", "rows_after"]])
    assert rep_pd.to_frame()["removed"].sum() > 0  # the tiny shop's dirt: duplicates, gaps, bots...
    _same(ev_pd, ev_sp, None)


def test_implicit_pairs_and_both_splits_are_the_same_as_with_pandas(both):
    from recsys_tf.spark import pipeline as P

    ev_pd, _, ev_sp, _ = both
    imp_pd, imp_sp = cleaning.to_implicit(ev_pd), P.to_implicit(ev_sp).cache()
    _same(imp_pd, imp_sp, ["user_id", "item_id"])
    for pandas_split, spark_split in ((split.leave_last_out(imp_pd), P.leave_last_out(imp_sp)),
                                      (split.temporal_split(imp_pd, 0.2, 0.1), P.temporal_split(imp_sp, 0.2, 0.1))):  # fmt: skip
        for part in ("train", "val", "test"):
            assert len(getattr(pandas_split, part)) > 0
            _same(getattr(pandas_split, part), getattr(spark_split, part), ["user_id", "item_id"])
    core_pd = cleaning.k_core(imp_pd, 3, 3)
    assert 0 < len(core_pd) < len(imp_pd)
    _same(core_pd, P.k_core(imp_sp, 3, 3), ["user_id", "item_id"])


def test_codes_follow_sorted_ids_and_negatives_are_unseen_and_uniform(spark):
    from recsys_tf.spark import pipeline as P

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 40, 600) * 7 + 3, "item_id": rng.integers(0, 50, 600) * 11})
    df = df.drop_duplicates(ignore_index=True)
    codes, users, items = P.encode(P.from_pandas(spark, df))
    got = P.to_pandas(codes, ["user_id", "item_id"])
    assert (got["user_idx"].to_numpy() == np.searchsorted(np.unique(df.user_id), got.user_id)).all()
    assert (got["item_idx"].to_numpy() == np.searchsorted(np.unique(df.item_id), got.item_id)).all()
    n_items = items.count()
    neg = P.to_pandas(P.sample_negatives(codes, n_items, n_neg=20, seed=1), ["user_idx", "item_idx"])
    assert len(neg) == 20 * len(df) and (neg["label"] == 0).all()
    seen = set(zip(got.user_idx, got.item_idx))
    assert not any(pair in seen for pair in zip(neg.user_idx, neg.item_idx))
    again = P.to_pandas(P.sample_negatives(codes.repartition(3), n_items, n_neg=20, seed=1), ["user_idx", "item_idx"])
    pd.testing.assert_frame_equal(neg, again)  # the same draws whatever the partitioning
    # uniform over a user's unseen items: each unseen item's share is near 1 / (number unseen)
    u0 = got.user_idx.min()
    unseen = n_items - (got.user_idx == u0).sum()
    counts = neg.loc[neg.user_idx == u0, "item_idx"].value_counts()
    assert len(counts) > 0.6 * unseen


def test_unknown_event_spellings_are_named_not_dropped(spark):
    from recsys_tf.spark import pipeline as P

    df = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "event": [" View", "wishlist"], "timestamp": [1, 2]})
    with pytest.raises(DataError, match="wishlist"):
        P.normalize_event_types(P.from_pandas(spark, df))


def test_without_java_or_pyspark_the_message_says_what_to_install(monkeypatch):
    from recsys_tf.spark import session

    monkeypatch.setattr(session, "java_home", lambda: None)
    with pytest.raises(session.SparkUnavailable, match="openjdk-17-jre-headless"):
        session.spark_session()
    monkeypatch.setitem(__import__("sys").modules, "pyspark", None)
    with pytest.raises(session.SparkUnavailable, match=r"recsys-tf\[spark\]"):
        session.require_pyspark()


def test_spark_als_beats_popularity_and_loads_without_spark(spark, shop_tiny, tmp_path):
    from recsys_tf.data.split import leave_last_out
    from recsys_tf.models import Popularity, Recommender, SparkALS

    implicit = cleaning.to_implicit(cleaning.clean_events(shop_tiny.events, shop_tiny.catalog)[0])
    sp = leave_last_out(implicit)
    als = SparkALS(factors=16, reg=1.0, alpha=10.0, iterations=10, spark=spark).fit(sp.train)
    hr_als = als.evaluate(sp.test, k=10)["hit_rate@10"]
    hr_pop = Popularity().fit(sp.train).evaluate(sp.test, k=10)["hit_rate@10"]
    assert hr_als > hr_pop + 0.03, (hr_als, hr_pop)
    loaded = Recommender.load(als.save(tmp_path / "als"))
    users = implicit.user_id.unique()[:20]
    assert np.array_equal(loaded.recommend(users, k=5)[0], als.recommend(users, k=5)[0])


def test_explicit_spark_als_recovers_a_low_rank_rating_matrix(spark):
    from recsys_tf.models import SparkALS

    rng = np.random.default_rng(0)
    p, q = rng.normal(0, 1, (60, 3)), rng.normal(0, 1, (40, 3))
    cells = rng.random((60, 40)) < 0.5
    u, i = np.nonzero(cells)
    df = pd.DataFrame({"user_id": u, "item_id": i, "rating": (p @ q.T)[u, i] + 3.0})
    held = rng.random(len(df)) < 0.1
    # 20 iterations: without checkpoints the lineage grows until serialising a task overflows the JVM stack
    model = SparkALS(factors=4, reg=0.01, iterations=20, feedback="explicit", spark=spark).fit(df[~held])
    pred = model.score(df[held].user_id.to_numpy(), df[held].item_id.to_numpy())
    rmse = np.sqrt(np.mean((pred - df[held].rating) ** 2))
    assert rmse < 0.5 * df[held].rating.std(), rmse  # far below guessing the mean (ALS has no bias terms: the +3 is a factor)


def test_the_spark_job_writes_shards_that_stream_back_the_same_pairs(spark, both, tmp_path):
    from recsys_tf.data.shards import TrainingShards
    from recsys_tf.spark import pipeline as P

    _, _, ev_sp, _ = both
    codes, users, items = P.encode(P.to_implicit(ev_sp))
    shards = TrainingShards(P.write_shards(codes, users, items, tmp_path / "shards", n_shards=3))
    assert len(shards.files) == 3 and shards.n_rows == codes.count()
    want = P.to_pandas(codes, ["user_id", "item_id"])
    enc = shards.encoder()
    assert np.array_equal(enc.users.transform(want.user_id), want.user_idx)
    keys = np.concatenate([u.astype(np.int64) * shards.n_items + i for u, i in shards.batches(500, np.random.default_rng(0))])
    assert np.array_equal(np.sort(keys), np.sort(want.user_idx.to_numpy(np.int64) * shards.n_items + want.item_idx))
