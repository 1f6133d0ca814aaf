import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.encoding import IdEncoder, InteractionEncoder
from recsys_tf.data.sampling import pair_keys, sample_candidates, sample_negatives
from recsys_tf.data.split import future_leakage, leave_last_out, random_split, temporal_split
from recsys_tf.errors import DataError


@pytest.fixture()
def log():
    rng = np.random.default_rng(0)
    n = 5_000
    return pd.DataFrame({"user_id": rng.integers(0, 200, n), "item_id": rng.integers(0, 300, n),
                         "rating": rng.integers(1, 6, n).astype("float32"), "timestamp": rng.permutation(n) + 1_000})  # fmt: skip


# --- encoding -----------------------------------------------------------------------------------
def test_encoder_round_trip_and_sorted_codes():
    enc = IdEncoder("item_id").fit(["b", "a", "c", "a"])
    assert enc.transform(["a", "c"]).tolist() == [0, 2]
    assert enc.inverse_transform([2, 0]).tolist() == ["c", "a"]


def test_unknown_ids_raise_or_map_to_oov_on_request():
    enc = IdEncoder("user_id").fit([10, 20])
    with pytest.raises(DataError, match=r"unknown to the model, e.g. \[30\].*unknown='oov'"):
        enc.transform([10, 30])
    assert enc.transform([10, 30], unknown="oov").tolist() == [0, -1]
    with pytest.raises(DataError, match="outside"):
        enc.inverse_transform([-1])


def test_encoder_refuses_nan_and_empty():
    with pytest.raises(DataError, match="missing"):
        IdEncoder().fit([1, np.nan])
    with pytest.raises(DataError, match="empty"):
        IdEncoder().fit([])
    with pytest.raises(RuntimeError, match="not fitted"):
        IdEncoder().transform([1])


def test_interaction_encoder_save_load_and_catalog_items(tmp_path, log):
    catalog = pd.DataFrame({"item_id": np.arange(400)})
    enc = InteractionEncoder().fit(log, catalog)
    assert enc.items.n == 400 and enc.users.n == log.user_id.nunique()
    enc.save(tmp_path / "enc.json")
    again = InteractionEncoder.load(tmp_path / "enc.json")
    pd.testing.assert_frame_equal(enc.transform(log), again.transform(log))


# --- splits -------------------------------------------------------------------------------------
def _pairs(df):
    return set(map(tuple, df[["user_id", "item_id", "timestamp"]].to_numpy()))


def test_random_split_is_a_seeded_partition(log):
    s = random_split(log, test_size=0.2, val_size=0.1, seed=1)
    assert (len(s.train), len(s.val), len(s.test)) == (3_500, 500, 1_000)
    assert _pairs(s.train) | _pairs(s.val) | _pairs(s.test) == _pairs(log)
    pd.testing.assert_frame_equal(s.test, random_split(log, 0.2, 0.1, seed=1).test)


def test_temporal_split_orders_parts_in_time(log):
    s = temporal_split(log, test_size=0.2, val_size=0.1)
    assert s.train.timestamp.max() < s.val.timestamp.min() <= s.val.timestamp.max() < s.test.timestamp.min()
    assert len(s.train) + len(s.val) + len(s.test) == len(log)
    assert future_leakage(s) == 0.0


def test_leave_last_out_holds_out_each_users_latest(log):
    s = leave_last_out(log, n_test=1, n_val=1, min_train=1)
    last = log.sort_values("timestamp").groupby("user_id").tail(1)
    assert _pairs(s.test) == _pairs(last)
    assert s.test.user_id.is_unique and s.val.user_id.is_unique
    joined = s.train.groupby("user_id").timestamp.max()
    assert (joined.reindex(s.val.user_id).to_numpy() < s.val.timestamp.to_numpy()).all()
    assert future_leakage(s) == 0.0


def test_leave_last_out_keeps_short_histories_in_train():
    df = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [1, 2, 3, 4], "timestamp": [1, 2, 3, 1]})
    s = leave_last_out(df, n_test=1, n_val=1, min_train=1)
    assert s.test.item_id.tolist() == [3] and s.val.item_id.tolist() == [2]
    assert sorted(s.train.item_id) == [1, 4] and s.train.attrs["users_train_only"] == 1


def test_random_split_leaks_the_future(log):
    assert future_leakage(random_split(log, 0.2, 0.0, seed=0)) > 0.3


def test_splits_reject_bad_input(log):
    with pytest.raises(ValueError, match="sum below 1"):
        random_split(log, 0.6, 0.5)
    with pytest.raises(DataError, match="timestamp"):
        temporal_split(log.drop(columns="timestamp"))
    with pytest.raises(DataError, match="empty"):
        leave_last_out(log.iloc[:0])


# --- sampling -----------------------------------------------------------------------------------
def test_negatives_are_never_seen_items(log):
    keys = pair_keys(log.user_id, log.item_id, 300)
    neg = sample_negatives(log.user_id.to_numpy(), keys, 300, n_neg=4, seed=0)
    assert neg.shape == (len(log), 4)
    assert not np.isin(log.user_id.to_numpy()[:, None] * 300 + neg, keys).any()
    assert (neg == sample_negatives(log.user_id.to_numpy(), keys, 300, n_neg=4, seed=0)).all()


def test_popularity_sampling_prefers_popular_items():
    counts = np.r_[np.full(10, 1_000.0), np.ones(990)]
    neg = sample_negatives(np.zeros(10_000, int), np.zeros(0, np.int64), 1_000, 1, "popularity", counts, seed=0)
    assert (neg < 10).mean() > 0.8


def test_candidates_hold_the_positive_then_distinct_unseen_negatives(log):
    users = np.arange(200)
    pos = np.full(200, 299)
    keys = pair_keys(log.user_id, log.item_id, 300)
    cand = sample_candidates(users, pos, keys, 300, n_neg=99, seed=0)
    assert cand.shape == (200, 100) and (cand[:, 0] == 299).all()
    assert all(len(set(row)) == 100 for row in cand)
    assert not np.isin(users[:, None] * 300 + cand[:, 1:], keys).any()


def test_a_user_who_saw_everything_gets_a_clear_error():
    keys = pair_keys(np.zeros(10, int), np.arange(10), 10)
    with pytest.raises(DataError, match=r"user\(s\) \[0\]"):
        sample_negatives(np.array([0]), keys, 10, n_neg=1)
    with pytest.raises(DataError, match="fewer than 5 unseen"):
        sample_candidates(np.array([0]), np.array([0]), keys, 10, n_neg=5)
