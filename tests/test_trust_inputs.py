"""Bad input never gives a silent wrong answer: values, readers, ids, splits, and the recommend contract.

One test (or one parametrised row) per kind of bad input; docs/robustness.md lists them all.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.amazon import read_attributes
from recsys_tf.data.cleaning import clean_events, to_implicit
from recsys_tf.data.movielens import read_ml100k_ratings, read_ml_latest_ratings
from recsys_tf.data.ncf import read_ncf_negatives
from recsys_tf.data.readers import read_sequences, read_table
from recsys_tf.data.split import leave_last_out, temporal_split
from recsys_tf.errors import DataError
from recsys_tf.models import EASE, ContentKNN, ItemKNN, MatrixFactorization, Popularity, top_k


def _log(n_users=6, n_items=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(n_users) for i in rng.choice(n_items, 4, replace=False)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"])
    return df.assign(rating=rng.integers(1, 6, len(df)).astype(float), timestamp=np.arange(len(df)))


# --- 2. values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_explicit_fit_refuses_non_finite_ratings(bad):
    df = _log()
    df.loc[3, "rating"] = bad
    with pytest.raises(DataError, match=r"column 'rating' has 1 missing \(NaN\) or infinite value\(s\) \(row 3"):
        MatrixFactorization(feedback="explicit", epochs=1, verbose=False).fit(df)


def test_implicit_fit_refuses_a_non_finite_label():
    df = _log().assign(label=1.0)
    df.loc[0, "label"] = np.inf
    with pytest.raises(DataError, match="column 'label'"):
        Popularity().fit(df)


def test_ratings_that_are_words_name_the_column():
    df = _log().astype({"rating": object})
    df.loc[2, "rating"] = "five"
    with pytest.raises(DataError, match=r"column 'rating' must hold numbers.*'five'"):
        MatrixFactorization(feedback="explicit", epochs=1, verbose=False).fit(df)


def test_out_of_scale_ratings_are_refused_when_the_scale_is_known(tmp_path):
    df = _log()
    df.loc[1, "rating"] = 7
    with pytest.raises(DataError, match="outside the scale 1..5"):
        MatrixFactorization(feedback="explicit", rating_scale=(1, 5), epochs=1, verbose=False).fit(df)
    (tmp_path / "u.data").write_text("1\t2\t5\t100\n1\t3\t0\t101\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 have rating 0"):
        read_ml100k_ratings(tmp_path / "u.data")


def test_implicit_training_warns_that_negative_rows_count_as_positives():
    df = _log().assign(label=1.0)
    df.loc[:2, "label"] = 0.0
    with pytest.warns(UserWarning, match=r"3 row\(s\) have label <= 0 and are counted as positives"):
        model = Popularity().fit(df)
    assert model.counts_.sum() == len(df)  # what the warning says: every row, negatives included, is a positive
    df = _log()
    df.loc[0, "rating"] = -1.0
    with pytest.warns(UserWarning, match="rating < 0") as caught:
        ItemKNN().fit(df)
    assert len(caught) == 1


def test_infinite_content_features_are_refused():
    df = _log()
    feats = pd.DataFrame(np.ones((8, 3)), index=range(8))
    feats.iloc[2, 1] = np.inf
    with pytest.raises(DataError, match=r"content features: 1 infinite.*\[2\]"):
        ContentKNN(item_features=feats).fit(df)


# --- 3. readers ----------------------------------------------------------------------------------
def test_five_fields_per_line_is_not_read_as_an_index(tmp_path):
    (tmp_path / "u.data").write_text("0\t1\t2\t5\t100\n1\t1\t3\t4\t101\n")
    with pytest.raises(DataError, match=r"line\(s\) 1, 2 have more than 4 fields"):
        read_ml100k_ratings(tmp_path / "u.data")


@pytest.mark.parametrize("first, why", [
    ("1,1,4.0,964982703\n", "without a header"),
    ("movieId,userId,rating,timestamp\n", "swapped"),
    ("user,item,rating,timestamp\n", "renamed"),
])  # fmt: skip
def test_ratings_csv_header_must_be_the_real_one(tmp_path, first, why):
    (tmp_path / "ratings.csv").write_text(first + "1,2,4.0,964982704\n")
    with pytest.raises(DataError, match="the header must be 'userId,movieId,rating,timestamp'"):
        read_ml_latest_ratings(tmp_path / "ratings.csv")


def test_blank_lines_are_named(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t5\t100\n\n1\t3\t4\t101\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 are blank"):
        read_ml100k_ratings(tmp_path / "u.data")
    (tmp_path / "seq.txt").write_text("1 2 3\n\n2 4 5\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 are blank"):
        read_sequences(tmp_path / "seq.txt")


def test_sequences_with_another_separator_are_refused(tmp_path):
    (tmp_path / "Beauty.txt").write_text("1,2,3\n2,4,5\n")
    with pytest.raises(DataError, match="no line has an item after its user.*another separator"):
        read_sequences(tmp_path / "Beauty.txt")


@pytest.mark.parametrize("value", ["1.5", str(2**70), "1e30", "abc"])
def test_ids_a_cast_would_change_are_refused(tmp_path, value):
    (tmp_path / "u.data").write_text(f"1\t2\t5\t100\n{value}\t3\t4\t101\n")
    with pytest.raises(DataError, match=r"line\(s\) 2 have a (non-numeric )?user_id"):
        read_ml100k_ratings(tmp_path / "u.data")


def test_binary_and_non_utf8_files_name_the_file(tmp_path):
    (tmp_path / "seq.txt").write_bytes(b"1 2 \xff\xfe 3\n")
    with pytest.raises(DataError, match="seq.txt: not utf-8 text"):
        read_sequences(tmp_path / "seq.txt")
    (tmp_path / "neg").write_bytes(b"(0,1)\t\xff\xfe\n")
    with pytest.raises(DataError, match="neg: not UTF-8 text"):
        read_ncf_negatives(tmp_path / "neg", n_negatives=1)
    (tmp_path / "r").write_bytes(b"1\t2\t\xff\t9\n")
    with pytest.raises(DataError, match="r: not utf-8 text"):
        read_table(tmp_path / "r", "\t", ["a", "b", "c", "d"])


def test_bad_attribute_json_names_the_file(tmp_path):
    (tmp_path / "a.json").write_text('{"1": [2, 3],')
    with pytest.raises(DataError, match=r"a.json: not valid JSON"):
        read_attributes(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps([1, 2]))
    with pytest.raises(DataError, match="b.json: expected a JSON object"):
        read_attributes(tmp_path / "b.json")
    (tmp_path / "c.json").write_bytes(b"\x00\xff")
    with pytest.raises(DataError, match="c.json: not UTF-8"):
        read_attributes(tmp_path / "c.json")


# --- 4. ids, cleaning and splits -------------------------------------------------------------------
def test_float_ids_that_would_merge_are_refused():
    df = pd.DataFrame({"user_id": [1.7, 1.2], "item_id": [1, 2], "timestamp": [1, 2]})
    with pytest.raises(DataError, match="not whole numbers within int64.*1.7"):
        Popularity().fit(df)


def test_uint64_ids_beyond_int64_are_refused():
    df = pd.DataFrame({"user_id": np.array([2**64 - 1, 1], np.uint64), "item_id": [1, 2]})
    with pytest.raises(DataError, match="above 2\\*\\*63 - 1"):
        Popularity().fit(df)


def test_string_ids_work_end_to_end(shop_tiny):
    ev = shop_tiny.events.dropna(subset=["user_id", "item_id"]).copy()
    ev["user_id"] = "u" + ev["user_id"].astype("int64").astype(str)
    ev["item_id"] = "p" + ev["item_id"].astype("int64").astype(str)
    catalog = shop_tiny.catalog.assign(item_id="p" + shop_tiny.catalog["item_id"].astype(str))
    events, _ = clean_events(ev, catalog)
    split = leave_last_out(to_implicit(events), n_test=1, n_val=1, min_train=2)
    model = Popularity().fit(split.train, catalog)
    items, _ = model.recommend(split.test["user_id"].iloc[0], k=5)
    assert len(items) == 5 and all(str(i).startswith("p") for i in items)
    assert 0 <= model.evaluate(split.test)["ndcg@10"] <= 1


def test_mixed_string_and_number_ids_are_refused():
    df = pd.DataFrame({"user_id": [1, "1"], "item_id": [1, 2]})
    with pytest.raises(DataError, match="mixes strings and numbers"):
        Popularity().fit(df)


def test_leave_last_out_sorts_text_timestamps_as_numbers():
    df = pd.DataFrame({"user_id": [1, 1, 1, 1], "item_id": [10, 9, 2, 7], "timestamp": ["10", "9", "2", "100"]})
    split = leave_last_out(df, n_test=1, n_val=1, min_train=1)
    assert split.test["item_id"].tolist() == [7] and split.val["item_id"].tolist() == [10]
    with pytest.raises(DataError, match="timestamp"):
        leave_last_out(df.assign(timestamp=["a", "b", "c", "d"]))


def test_temporal_split_with_identical_timestamps_refuses_an_empty_train():
    df = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [1, 2, 3, 4], "timestamp": [5, 5, 5, 5]})
    with pytest.raises(DataError, match="left no training rows: 4 of 4 events share"):
        temporal_split(df)


def test_datetime_timestamps_sort_in_time():
    df = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3],
                       "timestamp": pd.to_datetime(["2024-03-01", "2024-01-01", "2024-02-01"])})  # fmt: skip
    split = leave_last_out(df, n_test=1, n_val=0, min_train=1)
    assert split.test["item_id"].tolist() == [1]


# --- 5. the recommend / evaluate contract ---------------------------------------------------------
@pytest.mark.parametrize("model", [Popularity(), ItemKNN(), EASE(l2=1.0),
                                   MatrixFactorization(epochs=1, verbose=False)])  # fmt: skip
def test_seen_items_are_never_returned(model):
    df = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [1, 2, 3, 1]})
    model.fit(df, pd.DataFrame({"item_id": [1, 2, 3, 4]}))  # item 4: in the catalog, never bought
    items, scores = model.recommend(1, k=5)
    assert items.tolist() == [4] and len(scores) == 1  # user 1 has one unseen item left: one, not five
    items, scores = model.recommend(2, k=5)
    assert sorted(items.tolist()) == [2, 3, 4] and np.isfinite(scores).all()
    ids, scores = model.recommend([1, 2], k=3)
    assert ids.shape == (2, 3) and ids[0].tolist() == [4, None, None] and None not in ids[1].tolist()
    assert np.isnan(scores[0, 1:]).all() and np.isfinite(scores[1]).all()


def test_popularity_fitted_on_one_row_recommends_nothing_seen():
    model = Popularity().fit(pd.DataFrame({"user_id": [1], "item_id": [9]}))
    assert len(model.recommend(1, k=10)[0]) == 0


@pytest.mark.parametrize("k", [-3, 0, 2.5, True, "10"])
def test_k_must_be_a_whole_number_of_at_least_one(k):
    model = Popularity().fit(_log())
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        model.recommend(0, k=k)
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        model.evaluate(_log(), k=k)


def test_an_empty_user_list_gives_empty_arrays():
    ids, scores = Popularity().fit(_log()).recommend([], k=4)
    assert ids.shape == (0, 4) and scores.shape == (0, 4)


def test_unknown_user_message_gives_a_fix_recommend_accepts_and_a_type_hint():
    model = Popularity().fit(_log())
    with pytest.raises(DataError, match="unknown to the model.*cold-start model") as err:
        model.recommend(99)
    assert "unknown='oov'" not in str(err.value)
    with pytest.raises(DataError, match=r"are numbers \(e.g. 0\) but '1' is a string: convert it, e.g. int\('1'\)"):
        model.recommend("1")


# --- 8. ranking details ---------------------------------------------------------------------------
def test_top_k_takes_the_lowest_index_among_ties_at_the_boundary():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, (200, 50)).astype(float)  # many ties
    idx, vals = top_k(scores, 7)
    brute = np.array([sorted(range(50), key=lambda j, r=r: (-scores[r, j], j))[:7] for r in range(200)])
    assert np.array_equal(idx, brute)


def test_top_k_ranks_nan_below_minus_infinity():
    idx, _ = top_k(np.array([[np.nan, -np.inf, 0.0, np.nan]]), 4)
    assert idx.tolist() == [[2, 1, 0, 3]]


def test_a_diverged_model_is_not_rewarded():
    from recsys_tf.metrics import sampled_metrics, sampled_ranks

    scores = np.full((3, 100), np.nan)
    assert (sampled_ranks(scores) == 100).all()
    with pytest.warns(UserWarning, match="3 held-out item"):
        m = sampled_metrics(scores, k=10)
    assert m["hit_rate@10"] == 0.0 and m["n_nan_positives"] == 3


def test_sampled_auc_gives_ties_half_credit_like_scikit_learn():
    from sklearn.metrics import roc_auc_score

    from recsys_tf.metrics import sampled_metrics

    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (50, 21)).astype(float)
    ours = sampled_metrics(scores)["auc"]
    theirs = np.mean([roc_auc_score(np.r_[1, np.zeros(20)], row) for row in scores])
    assert ours == pytest.approx(theirs)


def test_map_offers_the_trec_denominator():
    from recsys_tf.metrics import ranking_metrics

    ranked = np.array([[0, 9, 1]])
    relevant = [[0, 1, 2, 3]]  # 4 relevant, 2 found at ranks 1 and 3: AP sum = 1 + 2/3
    assert ranking_metrics(ranked, relevant, k=3)["map@3"] == pytest.approx((1 + 2 / 3) / 3)
    assert ranking_metrics(ranked, relevant, k=3, map_denominator="trec")["map@3"] == pytest.approx((1 + 2 / 3) / 4)


def test_mmr_does_not_clip_negative_similarities():
    from recsys_tf.rerank import mmr

    # item 0 is picked first; item 1 is opposite to it (cos -1), item 2 orthogonal (cos 0).
    vectors = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    scores = np.array([[1.0, 0.5, 0.55]])
    picked = mmr(np.array([[0, 1, 2]]), scores, vectors, k=2, lam=0.5)
    # rel normalised to [0, 1]: 1, 0, 0.1. Formula: item 1 -> 0.5*0 - 0.5*(-1) = 0.5; item 2 -> 0.05 - 0 = 0.05
    assert picked.tolist() == [[0, 1]]


def test_no_warning_on_clean_data():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Popularity().fit(_log().assign(label=1.0))
    assert [str(w.message) for w in caught] == []
