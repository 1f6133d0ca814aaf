"""Issue 10: spreads over seeds, validation-only tuning, SVD++, full ranking with extra masks, the TF epoch loop."""

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest

from recsys_tf import reproduce
from recsys_tf.models import MatrixFactorization, Popularity, Recommender, SVDpp


def _ratings(n_users=40, n_items=30, n=700, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    r = np.clip(np.round(3 + (u % 2) - (i % 3 == 0) + rng.normal(0, 0.5, n)), 1, 5)
    return pd.DataFrame({"user_id": u, "item_id": i, "rating": r.astype("float32")}).drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)


def test_spread_and_the_published_interval_by_hand():
    s = reproduce.spread([0.60, 0.62, 0.64])
    assert s["mean"] == pytest.approx(0.62) and s["sd"] == pytest.approx(0.02)  # sample sd: sqrt((4+0+4)e-4 / 2)
    assert s["values"] == [0.60, 0.62, 0.64]
    assert reproduce.inside(0.659, s) and not reproduce.inside(0.661, s)  # mean ± 2 sd = 0.58 .. 0.66
    assert reproduce.spread([0.5])["sd"] == 0.0


def test_the_validation_carve_out_never_touches_the_test_and_loses_no_row():
    train = _ratings()
    fit_part, val = reproduce.carve_validation(train, fraction=0.2, seed=3)
    assert len(fit_part) + len(val) == len(train) and not set(fit_part.index) & set(val.index)
    assert val.user_id.isin(fit_part.user_id).all() and val.item_id.isin(fit_part.item_id).all()
    assert 0.1 < len(val) / len(train) < 0.3
    again = reproduce.carve_validation(train, fraction=0.2, seed=3)[1]
    assert again.index.equals(val.index)  # seeded


def test_tuning_picks_the_grid_point_with_the_lowest_validation_rmse_and_its_epoch():
    chosen, table = reproduce.tune_rating_model(MatrixFactorization, dict(factors=4, batch_size=256, learning_rate=0.01),
                                                {"reg": [0.0, 0.5]}, _ratings(), None, max_epochs=8)  # fmt: skip
    assert [r["reg"] for r in table] == [0.0, 0.5]
    assert chosen == min(table, key=lambda r: r["val_rmse"]) and 1 <= chosen["epochs"] <= 8


def test_rows_over_seeds_keep_every_value():
    runs = [{"A": {"hr": 0.5, "seconds": 1.0, "lambda": 100.0}}, {"A": {"hr": 0.7, "seconds": 3.0, "lambda": 500.0}}]
    rows = reproduce.over_seeds(runs)
    assert rows["A"]["hr"]["mean"] == pytest.approx(0.6) and rows["A"]["hr"]["values"] == [0.5, 0.7]
    assert rows["A"]["seconds"]["sd"] == pytest.approx(math.sqrt(2))


# --- SVD++ --------------------------------------------------------------------------------------------
def _svdpp_by_hand(m: SVDpp, u_raw, i_raw, train: pd.DataFrame) -> float:
    net = m.net_
    w = {v.path.split("/")[-2]: keras.ops.convert_to_numpy(v) for v in net.weights}
    u = int(m.encoder_.users.transform([u_raw])[0])
    i = int(m.encoder_.items.transform([i_raw])[0])
    rated = m.encoder_.items.transform(train.loc[train.user_id == u_raw, "item_id"].unique())
    implicit = w["implicit_factors"][rated].sum(0) / math.sqrt(len(rated))
    return net.mu + w["user_bias"][u, 0] + w["item_bias"][i, 0] + w["item_factors"][i] @ (w["user_factors"][u] + implicit)


def test_svdpp_scores_follow_kor08_formula_and_every_scoring_path_agrees(tmp_path):
    train = _ratings()
    m = SVDpp(factors=4, reg=0.02, epochs=4, batch_size=128, learning_rate=0.02, verbose=False).fit(train)
    u_raw, i_raw = train.user_id.iloc[0], train.item_id.iloc[5]
    assert m.score([u_raw], [i_raw])[0] == pytest.approx(_svdpp_by_hand(m, u_raw, i_raw, train), abs=1e-4)
    users = np.arange(m.n_users)
    full = m._score_codes(users)
    pairs = m._score_codes(np.repeat(users, m.n_items), np.tile(np.arange(m.n_items), len(users))).reshape(full.shape)
    assert np.allclose(full, pairs, atol=1e-4)
    host = Recommender._top_k_codes(m, users, 5, True, 1024)  # NumPy algebra, no device
    device = m._top_k_codes(users, 5, True)  # >= 32 users: keras.ops on the device
    assert np.array_equal(host[0], device[0])
    m.save(tmp_path / "svdpp")
    again = Recommender.load(tmp_path / "svdpp")
    assert type(again) is SVDpp and np.allclose(again._score_codes(users), full, atol=1e-5)


def test_svdpp_learns_which_items_a_user_rated_and_takes_more_implicit_pairs():
    train = _ratings()
    extra = pd.DataFrame({"user_id": [0, 0, 10**6], "item_id": [29, 28, 0]})  # an unknown user is ignored
    m = SVDpp(factors=4, epochs=1, verbose=False)
    m.fit(train, implicit=extra)
    w = keras.ops.convert_to_numpy(m.net_.implicit)
    row = w[int(m.encoder_.users.transform([0])[0])]
    n_u = len(set(train.loc[train.user_id == 0, "item_id"]) | {29, 28})
    assert np.count_nonzero(row) == n_u and np.allclose(row[row > 0], 1 / math.sqrt(n_u))
    assert not hasattr(m, "_implicit") and m._implicit_frame is None  # nothing of the fit lingers


def test_svdpp_beats_the_global_mean_on_held_out_ratings():
    from recsys_tf.metrics import rmse

    df = _ratings(n=1200)
    test = df.sample(frac=0.2, random_state=0)
    train = df.drop(test.index)
    test = test[test.user_id.isin(train.user_id) & test.item_id.isin(train.item_id)]
    m = SVDpp(factors=8, reg=0.05, epochs=15, batch_size=128, learning_rate=0.01, verbose=False).fit(train)
    ours = rmse(test.rating, m.score(test.user_id.to_numpy(), test.item_id.to_numpy()))
    assert ours < rmse(test.rating, np.full(len(test), train.rating.mean())) - 0.05


# --- full ranking: more pairs to mask -----------------------------------------------------------------
def test_evaluate_can_mask_the_validation_items_too():
    train = pd.DataFrame({"user_id": [0, 1, 1, 2, 2, 3], "item_id": [10, 10, 11, 10, 11, 12]})
    val = pd.DataFrame({"user_id": [0], "item_id": [11]})
    test = pd.DataFrame({"user_id": [0], "item_id": [12]})
    m = Popularity().fit(train)
    assert m.evaluate(test, k=1)["hit_rate@1"] == 0.0  # 11 is the most popular unseen item
    assert m.evaluate(test, k=1, exclude=val)["hit_rate@1"] == 1.0  # with 11 masked, 12 comes first
    assert m.evaluate(test, k=1)["hit_rate@1"] == 0.0  # the mask was for that call only
    with pytest.raises(Exception, match="user_id|item_id"):
        m.evaluate(test, exclude=pd.DataFrame({"user": [0]}))


# --- the TensorFlow epoch loop ------------------------------------------------------------------------
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's compiled epoch loop")
def test_tensorflow_epoch_loop_trains_every_sample_including_the_last_partial_batch(monkeypatch):
    from recsys_tf.models import fast_loop

    train = _ratings()
    m = MatrixFactorization(feedback="explicit", factors=4, epochs=2, batch_size=128, verbose=False).fit(train)
    assert int(m.net_.optimizer.iterations.numpy()) == 2 * math.ceil(len(train) / 128)
    slow = MatrixFactorization(feedback="explicit", factors=4, epochs=2, batch_size=128, verbose=False, fast=False).fit(train)
    # the same samples in the same order: Keras fit and the compiled loop end at (nearly) the same weights
    assert np.allclose(m.user_factors, slow.user_factors, atol=1e-4)
    assert not fast_loop.xla_pays(len(train), 128, 2)  # so far a plain graph; now the same run through XLA
    monkeypatch.setattr(fast_loop, "XLA_MIN_STEPS", 1)
    xla = MatrixFactorization(feedback="explicit", factors=4, epochs=2, batch_size=128, verbose=False).fit(train)
    assert np.allclose(m.user_factors, xla.user_factors, atol=1e-4)


def test_render_states_spreads_validation_choices_and_the_fair_peer():
    s = lambda m, sd=0.001: {"mean": m, "sd": sd, "values": [m]}  # noqa: E731
    mf = {"protocol": "u1-u5", "seeds": [0, 1], "peers": {"version": "1.1.5", "rows": {
              "SVD, our settings (100 factors, 30 epochs, reg 0.1, lr 0.005)": {"rmse": s(0.9214), "mae": s(0.72), "seconds_per_5_folds": s(4.0)}}},
          "rows": {"biased MF (MSE), 100 factors": {"rmse": s(0.9142), "mae": s(0.7217), "seconds_per_5_folds": s(15.0),
                                                    "settings": {"reg": 0.1, "epochs": 30, "factors": 100}, "grid": {"reg": [0.05, 0.1]}}}}  # fmt: skip
    full = {"protocol": "full", "data": "ML-100K", "seeds": [0, 1],
            "rows": {"NeuMF (64 factors, MLP 128-64)": {"hr": s(0.125), "ndcg": s(0.066), "seconds": s(9.0), "seconds_per_epoch": s(0.3)}}}
    page = reproduce.render(json.loads(json.dumps({"mf_ml100k": mf, "full_ranking_ml100k": full})), "CPU")
    assert "0.9142 ± 0.0010" in page and "reg 0.1, epochs 30" in page and "no, ours lower (better)" in page
    assert "Surprise's SVD measures 0.9214 at best against our 0.9142" in page
    assert "0.121 / 0.065 (RecBole NeuMF, 1.1 s per epoch)" in page and "0.30 ± 0.00" in page and "ours higher" in page


def test_the_sequence_section_compares_with_s3rec_and_states_the_protocol_flip(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RAW", tmp_path)  # no stopped run of the repository's own results joins in
    s = lambda m: {"mean": m, "sd": 0.001, "values": [m]}  # noqa: E731
    rows = {"SASRec (BCE, 1 negative: the paper's loss)": {"hr_full": s(0.070), "ndcg_full": s(0.040), "hr_sampled": s(0.40),
                                                         "ndcg_sampled": s(0.20), "epoch": s(30.0), "seconds_per_epoch": s(1.0)},
            "BERT4Rec (masked items, cross-entropy)": {"hr_full": s(0.050), "ndcg_full": s(0.030), "hr_sampled": s(0.45),
                                                       "ndcg_sampled": s(0.25), "epoch": s(20.0), "seconds_per_epoch": s(2.0)}}  # fmt: skip
    res = {"protocol": "loo", "data": "LastFM", "dataset": "lastfm", "seeds": [0, 1, 2], "rows": rows}
    page = reproduce.render({"seq_lastfm": res}, "CPU")
    assert "0.0688 / 0.039" in page and "0.4706 / 0.2755" in page
    assert "2 of 4 (hr_full: yes, ndcg_full: yes, hr_sampled: no, ndcg_sampled: no)" in page
    assert ("ours: with 99 negatives BERT4Rec ahead of SASRec on HR@10 (0.4500 vs 0.4000), with full ranking SASRec ahead of BERT4Rec "
            "on HR@10 (0.0700 vs 0.0500)") in page  # fmt: skip
    assert "Not run: too long for the 2-core CPU budget" in page  # Beauty, Sports, Games say why and how
    assert "How far the test set alone" not in page  # no count of test users: nothing claimed
    page = "\n".join(reproduce._sequence_section({**res, "test_users": 1090}))
    # by hand: sqrt(0.0688 * 0.9312 / 1090) = 0.00767, and 0.05 * 0.0688 / 0.00767 = 0.45 standard errors
    assert "1,090 test users" in page and "full ranking: 0.0077 at the published 0.0688 (11.1% of it; the 5% margin is 0.4" in page
    assert "sampled negatives: 0.0151 at the published 0.4706" in page  # sqrt(0.4706 * 0.5294 / 1090) = 0.01512
    # the gap against its standard error, by hand: sqrt((0.45 * 0.55 + 0.40 * 0.60) / 1090) = 0.02115, 0.05 / 0.02115 = 2.36;
    # sqrt((0.05 * 0.95 + 0.07 * 0.93) / 1090) = 0.01016, 0.02 / 0.01016 = 1.97: under two, so not told apart by this test set
    assert "(0.4500 vs 0.4000, 2.36 unpaired standard errors of the gap)" in page
    assert "(0.0700 vs 0.0500, 1.97 unpaired standard errors of the gap: not shown apart by this test set)" in page
    games = "\n".join(reproduce._sequence_section({**res, "protocol": "loo, ranking against 100 negatives (uniform)"}))
    assert "with 100 negatives BERT4Rec ahead" in games
    games = "\n".join(reproduce._protocol_flip({**res, "dataset": "games"}))  # S3-Rec has no Games numbers to weigh
    assert "S3-Rec's tables (other data): BERT4Rec ahead with negatives on four of five" in games and "this data" not in games
    # S3-Rec's own LastFM flip, same bound: sqrt((0.4991 * 0.5009 + 0.4706 * 0.5294) / 1090) = 0.02141, 0.0285 / 0.02141 = 1.33
    assert "S3-Rec's on this data: with 99 negatives BERT4Rec ahead of SASRec on HR@10 (0.4991 vs 0.4706, 1.33 unpaired" in page
    variant = "SASRec, the authors' block (BCE, 1 negative; Adam beta_2 0.98)"  # a variant of SASRec meets SASRec's numbers
    page = "\n".join(reproduce._sequence_section({**res, "rows": {variant: rows["SASRec (BCE, 1 negative: the paper's loss)"]}}))
    assert f"| {variant} | 0.0688 / 0.039 |" in page and "2 of 4 (hr_full: yes" in page


def test_every_pair_of_our_models_the_protocols_order_differently_is_weighed_against_the_test_set():
    s = lambda m: {"mean": m, "sd": 0.0, "values": [m]}  # noqa: E731
    row = lambda full, sampled: {"hr_full": s(full), "ndcg_full": s(full / 2), "hr_sampled": s(sampled), "ndcg_sampled": s(sampled / 2)}  # noqa: E731
    sas, gru, bert = "SASRec (BCE, 1 negative: the paper's loss)", "GRU4Rec (cross-entropy)", "BERT4Rec (masked items, cross-entropy)"
    rows = {"PopRec": row(0.0115, 0.2851), sas: row(0.0618, 0.4740), gru: row(0.0729, 0.4372), bert: row(0.0629, 0.4913),
            # the leaky PopRec saw the test items: it would flip against GRU4Rec, and takes no part
            reproduce.POPREC_S3REC: row(0.0152, 0.5000)}
    res = {"protocol": "loo, ranking against 99 negatives", "dataset": "beauty", "test_users": 22363, "rows": rows}
    text = "\n".join(reproduce._flipped_pairs(res))
    # by hand, n = 22363: GRU4Rec vs SASRec, full ranking sqrt((0.0729 * 0.9271 + 0.0618 * 0.9382) / n) = 0.002370, 0.0111 / 0.002370
    # = 4.7; 99 negatives sqrt((0.4372 * 0.5628 + 0.4740 * 0.5260) / n) = 0.004707, 0.0368 / 0.004707 = 7.8; against BERT4Rec
    # 0.0100 / 0.002379 = 4.2 and 0.0541 / 0.004709 = 11.5; SASRec and BERT4Rec keep their order (BERT4Rec ahead both ways)
    assert (f"{gru} ahead of {sas} with full ranking (0.0729 vs 0.0618, 4.7 standard errors), behind it with 99 negatives "
            "(0.4372 vs 0.4740, 7.8)") in text  # fmt: skip
    assert f"{gru} ahead of {bert} with full ranking (0.0729 vs 0.0629, 4.2 standard errors), behind it with 99 negatives (0.4372 vs 0.4913, 11.5)" in text
    assert "only within the noise" not in text and text.count(" ahead of ") == 2
    # on 1,090 test users the same GRU4Rec-SASRec gaps are 1.0 and 1.7 standard errors: a flip inside the noise
    small = "\n".join(reproduce._flipped_pairs({**res, "test_users": 1090, "rows": {sas: rows[sas], gru: rows[gru]}}))
    assert small.strip() == ("No pair of our models flips by more than the test set's noise (two unpaired standard errors each way); "
                             "1 pair flips within it.")  # fmt: skip
    same = "\n".join(reproduce._flipped_pairs({**res, "rows": {sas: rows[sas], bert: rows[bert]}}))
    assert same.strip() == "The two protocols put every pair of our models in the same order on HR@10."
    assert reproduce._flipped_pairs({**res, "test_users": None}) == []  # no count of test users: nothing claimed


def test_a_run_of_some_sequence_models_adds_its_rows_to_the_earlier_table():
    s = lambda m: {"mean": m, "sd": 0.0, "values": [m]}  # noqa: E731
    row = lambda m, dev: {"hr_full": s(m), "ndcg_full": s(m / 2), "hr_sampled": s(0.5), "ndcg_sampled": s(0.3), "device": [dev]}  # noqa: E731
    base = {"protocol": "loo", "data": "Beauty", "dataset": "beauty", "seeds": [0, 1, 2], "seconds": 60.0}
    old = {**base, "rows": {"PopRec": row(0.01, "CPU"), "GRU4Rec (cross-entropy)": row(0.02, "CPU")}}
    new = {**base, "seconds": 600.0, "rows": {"PopRec": row(0.01, "GPU"), "SASRec (BCE, 1 negative: the paper's loss)": row(0.06, "GPU")}}
    merged = reproduce.merge_rows(old, new)
    assert list(merged["rows"]) == ["PopRec", "GRU4Rec (cross-entropy)", "SASRec (BCE, 1 negative: the paper's loss)"]
    assert merged["rows"]["PopRec"]["device"] == ["GPU"] and merged["seconds"] == 660.0
    assert reproduce.merge_rows({**old, "seeds": [0]}, new) == new  # another protocol or seeds: not one table
    page = "\n".join(reproduce._sequence_section(merged))
    assert ("Not run yet on this data: SASRec (full cross-entropy); SASRec, the authors' block (BCE, 1 negative; Adam beta_2 "
            "0.98); SASRec, S3-Rec's encoder (BCE, 1 negative; post-norm block, 2 heads); BERT4Rec (masked items, cross-entropy) "
            "(hours each") in page  # fmt: skip
    assert "--only seq_beauty --models TEXT" in page and "Models trained on: CPU; GPU." in page
    assert list(reproduce.seq_models("sasrec (bce")) == ["SASRec (BCE, 1 negative: the paper's loss)"]
    with pytest.raises(ValueError, match="matches none"):
        reproduce.seq_beauty(models="SASRec-XL")  # checked before any data is read or model trained


def test_a_stopped_sequence_run_shows_its_finished_seeds_and_how_to_resume(tmp_path, monkeypatch):
    seed_rows = {"PopRec": {"hr_full": 0.015, "ndcg_full": 0.007, "hr_sampled": 0.34, "ndcg_sampled": 0.18},
                 "SASRec (BCE, 1 negative: the paper's loss)": {"hr_full": 0.060, "ndcg_full": 0.031, "hr_sampled": 0.47,
                                                                "ndcg_sampled": 0.31, "device": "CPU"}}  # fmt: skip
    key = reproduce._seq_key("beauty", "SASRec (BCE")
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    (tmp_path / "seq_beauty.partial.json").write_text(json.dumps({"key": key, "runs": {"0": seed_rows}}))
    page = reproduce.render({}, "CPU")
    section = page.split("## Sequential recommendation on Amazon Beauty")[1].split("## ")[0]
    assert "**Partly run**: seeds [0] of 3" in section and "--only seq_beauty --models 'SASRec (BCE'" in section
    assert "0.0600 ± 0.0000 / 0.0310 ± 0.0000" in section and "yes, all 4" in section  # 0.060 >= 0.95 * 0.0605


def test_the_din_section_gives_every_pooling_the_ceiling_and_the_per_seed_gaps():
    def row(g0, g1):  # two seeds; only GAUC differs between the rows
        return {"auc": 0.7, "gauc": g0, "logloss": 0.6, "gauc_mixed_styles": g0 + 0.01, "gauc_one_style": g1, "epoch": 3, "seconds": 10.0}

    gaucs = dict(zip(reproduce.DIN_POOLINGS, [(0.65, 0.64), (0.66, 0.64), (0.63, 0.63), (0.635, 0.64)]))
    runs = [{f"{p} | {f} | {a}": row(gaucs[p][s] + (0.001 if a == "PReLU" else 0.0), 0.6) for f in reproduce.DIN_FEATURES
             for a in reproduce.DIN_ACTIVATIONS for p in reproduce.DIN_POOLINGS
             if a not in reproduce.DIN_SAME_BASE or "pooling" not in p} for s in (0, 1)]  # fmt: skip
    rows = reproduce.over_seeds(runs)
    rows = dict(reversed(rows.items()))  # as a later --models run appends its rows: the table keeps its own order
    res = {"data": "a shop", "protocol": "latest 20%", "seeds": [0, 1], "rows": rows,
           "true_utility": {"auc": 0.73, "gauc": 0.70, "gauc_mixed_styles": 0.69, "gauc_one_style": 0.71}}  # fmt: skip
    page = reproduce.render({"din_shop": res}, "CPU")
    assert "## DIN against sum pooling" in page and "| the shop's true utility (ceiling) | | | 0.7300 | 0.7000 |" in page
    first = page.split("|---|---|---|---|---|---|---|---|---|\n")[1].split("\n")[0]
    assert first.startswith("| sum pooling (the paper's base) | id, category, brand, price level | Dice |")
    assert page.count("| DIN, softmax (the authors' code) |") == 10 and "**0.6450 ± 0.0071**" in page  # sum pooling: 0.65, 0.64
    assert page.count("| sum pooling (the paper's base) |") == 6 and "in the attention unit too | 0.7000" not in page.split("DIN, raw")[0]
    # the recency rows have their own sum-pooling base, and face the PReLU rows (+0.001) in their own line
    gained = page.split("GAUC gained per seed by the recency weights (over the same pooling with PReLU), + style, colour: ")[1].split("\n")[0]
    assert gained.startswith("sum pooling: -0.0010 (-0.0010, -0.0010); DIN, raw weights: -0.0010")
    assert "| sum pooling (the paper's base) | + style, colour | PReLU | 0.7000 ± 0.0000 |" in page
    # Dice in the attention unit too faces the sum-pooling row with Dice (the same final MLP), not PReLU's (+0.001)
    gaps = page.split("GAUC gaps per seed, + style, colour, Dice, in the attention unit too: ")[1].split("\n")[0]
    assert gaps.startswith("DIN, raw weights minus sum pooling, all: +0.0050 (+0.0100, +0.0000)")
    # DIN (raw) minus sum: +0.01 then 0.00; softmax minus mean: +0.005 then +0.01
    assert "DIN, raw weights minus sum pooling, all: +0.0050 (+0.0100, +0.0000)" in page
    assert "DIN, softmax minus mean pooling, all: +0.0075 (+0.0050, +0.0100)" in page
    # the slopes per click position change the attention unit only: they face the PReLU base rows (+0.001), not Dice's
    gaps = page.split("GAUC gaps per seed, id, category, brand, price level, PReLU, a slope per click position: ")[1].split("\n")[0]
    assert gaps.startswith("DIN, raw weights minus sum pooling, all: +0.0040 (+0.0090, -0.0010)")
    with pytest.raises(ValueError, match="matches no DIN row"):
        reproduce.din_shop(models=["| Swish |"])  # before any data is read or model trained


def test_stopped_runs_of_different_models_keep_their_seeds_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    ce, pop, every = (reproduce._partial_path("beauty", w) for w in ("SASRec (full", "PopRec", None))
    assert len({ce, pop, every}) == 3 and ce.name == "seq_beauty.sasrec-full.partial.json" and every.name == "seq_beauty.partial.json"
    rows = {"SASRec (full cross-entropy)": {"hr_full": 0.06, "ndcg_full": 0.03, "hr_sampled": 0.5, "ndcg_sampled": 0.3}}
    ce.write_text(json.dumps({"key": {"dataset": "beauty", "which": "SASRec (full"}, "runs": {"0": rows}}))
    (found,) = reproduce._partial_runs("seq_beauty")
    assert found["partial"] and found["which"] == "SASRec (full" and found["seeds"] == [0]
    assert reproduce._partial_runs("seq_games") == []


def test_a_stopped_run_of_other_models_joins_the_finished_table_marked(tmp_path, monkeypatch):
    def row(hr):
        return {"hr_full": hr, "ndcg_full": hr / 2, "hr_sampled": 0.5, "ndcg_sampled": 0.34, "device": "CPU"}

    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    done = {"protocol": "loo", "data": "beauty", "dataset": "beauty", "seeds": [0, 1, 2],
            "rows": reproduce.over_seeds([{"PopRec": row(0.01), "SASRec (BCE, 1 negative: the paper's loss)": row(0.057)}] * 3)}  # fmt: skip
    ce = {"PopRec": row(0.01), "SASRec (full cross-entropy)": row(0.0872)}
    reproduce._partial_path("beauty", "SASRec (full").write_text(json.dumps(
        {"key": reproduce._seq_key("beauty", "SASRec (full"), "runs": {"0": ce}, "result": {**done, "seeds": [0], "rows": reproduce.over_seeds([ce])}}))  # fmt: skip
    section = reproduce.render({"seq_beauty": done}, "CPU").split("## Sequential recommendation on Amazon Beauty")[1].split("## ")[0]
    assert "| SASRec (full cross-entropy) (partly run: seeds [0]) | 0.0605 / 0.0318 | **0.0872 ± 0.0000" in section
    assert "beats it: yes, all 4" in section and section.count("| PopRec |") == 1  # 0.0872 > 0.0605, 0.0436 > 0.0318, ...
    assert "--models 'SASRec (full'` resumes" in section and "SASRec (full cross-entropy);" not in section.split("Not run yet")[1]
    # two runs of other models stopped at once (one file each): both join the table, each with its own resume line
    authors = {"PopRec": row(0.01), "SASRec, the authors' block (BCE, 1 negative; Adam beta_2 0.98)": row(0.0640)}
    reproduce._partial_path("beauty", "authors").write_text(json.dumps(
        {"key": reproduce._seq_key("beauty", "authors"), "runs": {"0": authors, "1": authors},
         "result": {**done, "seeds": [0, 1], "rows": reproduce.over_seeds([authors] * 2)}}))  # fmt: skip
    section = reproduce.render({"seq_beauty": done}, "CPU").split("## Sequential recommendation on Amazon Beauty")[1].split("## ")[0]
    assert "| SASRec (full cross-entropy) (partly run: seeds [0]) |" in section and "--models 'SASRec (full'` resumes" in section
    assert "| SASRec, the authors' block (BCE, 1 negative; Adam beta_2 0.98) (partly run: seeds [0, 1]) |" in section
    assert "**Partly run**: 'authors', seeds [0, 1] of 3" in section and section.count("**Partly run**") == 2


def test_fits_of_a_seed_not_yet_finished_are_named_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    ce = "SASRec (full cross-entropy)"
    fit = {"row": {"hr_full": 0.09, "epoch": 31, "seconds": 1830.0}, "val_ndcg@10": 0.06125, "eval_seconds": 20.0}
    reproduce._partial_path("games", "full cross").write_text(json.dumps(
        {"key": reproduce._seq_key("games", "full cross"), "runs": {}, "fits": {f"{ce} | seed 0 | dropout 0.2": fit}}))  # fmt: skip
    assert reproduce._partial_runs("seq_games") == []  # no seed finished: no row in the table
    page = reproduce.render({}, "CPU").split("## SASRec on Amazon Games (the SASRec paper's data, 100 negatives)\n")[1].split("## ")[0]
    assert page.startswith("\nNot run: ") and page.endswith("resumes at the first fit it had not finished "
        "(inside it, after the last epoch the stopped fit finished, when its checkpoint in $RECSYS_TF_CACHE/checkpoints is still there).\n\n")  # fmt: skip
    assert ("**Fits done in a seed not yet finished** (seq_games.full-cross.partial.json): SASRec (full cross-entropy), seed 0, "
            "dropout 0.2: best validation NDCG@10 0.0612 at epoch 31, 30 min. Their test numbers join the table when the seed's "
            "other fits end; `python -m recsys_tf.reproduce --only seq_games --models 'full cross'` resumes") in page
    assert "0.09" not in page  # the test numbers wait for the seed: its dropout is still to be chosen on validation
    # beside a finished table, and from an earlier recipe: the line says that the run starts again
    done = {"protocol": "loo", "data": "games", "dataset": "games", "seeds": [0, 1, 2], "rows": reproduce.over_seeds(
        [{"PopRec": {"hr_full": 0.02, "ndcg_full": 0.01, "hr_sampled": 0.47, "ndcg_sampled": 0.27}}] * 3)}  # fmt: skip
    stale = {**reproduce._seq_key("games", "full cross"), "max_epochs": 100}
    reproduce._partial_path("games", "full cross").write_text(json.dumps({"key": stale, "fits": {f"{ce} | seed 0 | dropout 0.2": fit}}))
    page = reproduce.render({"seq_games": done}, "CPU").split("## SASRec on Amazon Games (the SASRec paper's data, 100 negatives)\n")[1].split("## ")[0]
    assert page.index("**Fits done in a seed") < page.index("Not run yet on this data") and page.count("**Fits done") == 1
    not_run = page.split("Not run yet on this data: ")[1].split(" (hours each")[0]
    assert ce not in not_run and "GRU4Rec (cross-entropy)" in not_run  # a model with a kept fit is under way, not "not run yet"
    assert "--models 'full cross'` runs it again from the first seed with the current recipe" in page


def test_a_long_run_renders_the_other_experiments_as_they_are_on_disk_when_it_ends(tmp_path, monkeypatch):
    raw = tmp_path / "results"
    raw.mkdir()
    (raw / "first.json").write_text(json.dumps({"rows": {"old": 1}}))

    def second(seeds):  # meanwhile another run re-runs `first`
        (raw / "first.json").write_text(json.dumps({"rows": {"new": 2}}))
        return {"rows": {"mine": 3}}

    rendered = {}
    monkeypatch.setattr(reproduce, "RAW", raw)
    monkeypatch.setattr(reproduce, "DOCS", tmp_path)
    monkeypatch.setattr(reproduce, "EXPERIMENTS", {"first": lambda seeds: {}, "second": second})
    monkeypatch.setattr(reproduce, "render", lambda results, dev: rendered.update(results) or "page")
    assert reproduce.main(["--only", "second", "--seeds", "1"]) == 0
    assert rendered["first"]["rows"] == {"new": 2} and rendered["second"]["rows"] == {"mine": 3}


def test_models_texts_reach_din_shop_as_a_list_and_a_sequence_experiment_as_one_text(tmp_path, monkeypatch):
    got = {}
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    monkeypatch.setattr(reproduce, "DOCS", tmp_path)
    monkeypatch.setattr(reproduce, "EXPERIMENTS", {"din_shop": lambda seeds, models: got.update(din=models) or {"rows": {}},
                                                   "seq_beauty": lambda seeds, models: got.update(seq=models) or {"rows": {}}})  # fmt: skip
    monkeypatch.setattr(reproduce, "render", lambda results, dev: "page")
    assert reproduce.main(["--only", "din_shop", "--models", "| Dice |", "--models", "| PReLU |"]) == 0
    assert reproduce.main(["--only", "seq_beauty", "--models", "SASRec (full"]) == 0
    assert got == {"din": ["| Dice |", "| PReLU |"], "seq": "SASRec (full"}
    with pytest.raises(SystemExit):  # a sequence experiment takes one text
        reproduce.main(["--only", "seq_beauty", "--models", "GRU4Rec", "--models", "BERT4Rec"])


def _tiny_sequences(n_users=48, n_items=120, seed=0) -> pd.DataFrame:
    """Each shopper walks item i, i+1, i+2 ... (mod n_items): the next item is learnable."""
    rng = np.random.default_rng(seed)
    starts, lengths = rng.integers(0, n_items, n_users), rng.integers(6, 10, n_users)
    users = np.repeat(np.arange(n_users), lengths)
    pos = np.arange(len(users)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = (np.repeat(starts, lengths) + pos) % n_items + 1
    return pd.DataFrame({"user_id": users + 1, "item_id": items, "label": 1.0, "timestamp": pos})


def _tiny_s3rec():
    """:func:`_tiny_sequences` as the Dataset an S3-Rec loader returns (to stand in for ``load_s3rec``)."""
    from recsys_tf.data.schema import Dataset

    inter = _tiny_sequences()
    return Dataset("s3rec-sports", inter, pd.DataFrame({"item_id": np.sort(inter.item_id.unique())}),
                   pd.DataFrame({"user_id": np.sort(inter.user_id.unique())}), time_unit="sequence")  # fmt: skip


@pytest.mark.parametrize("label", list(reproduce.SEQ_MODELS))
def test_every_sequence_row_trains_with_the_recipe_and_only_its_own_departures(label, tmp_path, monkeypatch):
    """The settings a row's model is built with: the recipe's (Adam's beta_2 included: from 2026-11-30 to
    2026-12-01 the models' default was 0.9 while the recipe assumed 0.999), overridden only by the row's."""
    from recsys_tf import data, models

    ds = _tiny_s3rec()
    built: list = []

    class Stop(Exception):
        pass

    def record(cls):
        class Recorded(cls):
            def fit(self, *args, **kwargs):
                built.append(self)
                raise Stop

        return Recorded

    for name in ("GRU4Rec", "SASRec", "BERT4Rec"):
        monkeypatch.setattr(models, name, record(getattr(models, name)))
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    monkeypatch.setattr(data, "load_s3rec", lambda name: ds)
    with pytest.raises(Stop):
        reproduce.sequential_s3rec("sports", seeds=(0,), max_epochs=3, which=label)
    model, (_, own) = built[0], reproduce.SEQ_MODELS[label]
    for key, value in {**reproduce.SEQ_RECIPE, **own}.items():
        assert getattr(model, key) == value, key
    assert model.beta_2 == (0.98 if "beta_2" in own else 0.999) and model.dropout in reproduce.SEQ_DROPOUTS


def test_a_sequence_run_chooses_the_dropout_on_validation_once_and_resumes_with_it(tmp_path, monkeypatch):
    from recsys_tf import data, models

    ds = _tiny_s3rec()
    fits: list[tuple[int, float]] = []

    class Counted(models.SASRec):
        def fit(self, *args, **kwargs):
            if len(fits) == stop_at[0]:
                raise KeyboardInterrupt  # the run is stopped part-way
            fits.append((self.seed, self.dropout))
            return super().fit(*args, **kwargs)

    stop_at = [1]
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    monkeypatch.setattr(reproduce, "SEQ_RECIPE", dict(maxlen=8, dim=8, blocks=1, heads=1, batch_size=16, learning_rate=1e-2))
    monkeypatch.setattr(data, "load_s3rec", lambda name: ds)
    monkeypatch.setattr(models, "SASRec", Counted)
    monkeypatch.setenv("RECSYS_TF_CACHE", str(tmp_path / "cache"))
    run = lambda: reproduce.sequential_s3rec("sports", seeds=(0, 1), max_epochs=3, which="SASRec (BCE")  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        run()  # stopped between seed 0's two dropout trials
    saved = json.loads(reproduce._partial_path("sports", "SASRec (BCE").read_text())
    (first,) = saved["fits"].values()
    assert fits == [(0, 0.2)] and saved["runs"] == {} and first["row"]["dropout"] == 0.2 and first["val_ndcg@10"] > 0
    assert not list((tmp_path / "cache").rglob("*.npz"))  # the finished trial needs no checkpoint: its numbers are kept
    stop_at[0] = 2
    with pytest.raises(KeyboardInterrupt):
        run()
    assert fits == [(0, 0.2), (0, 0.5)]  # the 0.2 trial was read back, not trained again; seed 1 was stopped before it trained
    saved = json.loads(reproduce._partial_path("sports", "SASRec (BCE").read_text())
    assert saved["fits"] == {} and saved["runs"]["0"]["SASRec (BCE, 1 negative: the paper's loss)"]["dropout"] in (0.2, 0.5)
    tune = saved["tuning"]["SASRec (BCE, 1 negative: the paper's loss)"]
    assert set(tune["val_ndcg@10"]) == {"0.2", "0.5"} and tune["seed"] == 0
    chosen = max((0.2, 0.5), key=lambda d: tune["val_ndcg@10"][str(d)])
    assert tune["dropout"] == chosen and saved["runs"]["0"]["SASRec (BCE, 1 negative: the paper's loss)"]["dropout"] == chosen

    stop_at[0] = -1
    res = run()  # resumes: seed 0 is read back, seed 1 trains once, with the chosen dropout
    assert fits[2:] == [(1, chosen)] and res["tuning"]["SASRec (BCE, 1 negative: the paper's loss)"] == tune
    row = res["rows"]["SASRec (BCE, 1 negative: the paper's loss)"]
    assert row["dropout"]["values"] == [chosen, chosen] and not reproduce._partial_path("sports", "SASRec (BCE").exists()
    assert "the dropout too (each model's first seed is trained with each of 0.2, 0.5" in res["protocol"]
    line = next(x for x in reproduce._sequence_section(res) if x.startswith("| SASRec (BCE"))
    assert f"| {chosen:g} (0.2: {tune['val_ndcg@10']['0.2']:.4f}, 0.5: {tune['val_ndcg@10']['0.5']:.4f}) |" in line


def test_rows_of_another_recipe_stay_in_the_table_marked_with_their_recipe(tmp_path, monkeypatch):
    s = lambda m: {"mean": m, "sd": 0.0, "values": [m]}  # noqa: E731
    row = lambda m: {"hr_full": s(m), "ndcg_full": s(m / 2), "hr_sampled": s(0.5), "ndcg_sampled": s(0.3)}  # noqa: E731
    base = {"data": "Beauty", "dataset": "beauty", "seeds": [0, 1, 2], "seconds": 60.0}
    old = {**base, "protocol": "dropout 0.2, at most 100 epochs", "rows": {"PopRec": row(0.01), "SASRec (full cross-entropy)": row(0.087)}}
    bce = "SASRec (BCE, 1 negative: the paper's loss)"
    tune = {bce: {"dropout": 0.5, "val_ndcg@10": {"0.2": 0.031, "0.5": 0.039}, "seed": 0}}
    new = {**base, "protocol": "dropout chosen on validation", "rows": {"PopRec": row(0.01), bce: row(0.062)}, "tuning": tune}
    merged = reproduce.merge_rows(old, new)
    assert merged["rows"]["SASRec (full cross-entropy)"]["protocol"] == "dropout 0.2, at most 100 epochs"
    assert "protocol" not in merged["rows"]["PopRec"] and merged["tuning"] == tune
    again = reproduce.merge_rows(merged, {**new, "rows": {bce: row(0.063)}})  # a third run keeps the row's own recipe
    assert again["rows"]["SASRec (full cross-entropy)"]["protocol"] == "dropout 0.2, at most 100 epochs"
    # a run under a newer recipe keeps the BCE row under its own, with how its dropout was chosen
    later = reproduce.merge_rows(merged, {**new, "protocol": "beta_2 0.999", "rows": {"PopRec": row(0.01)}, "tuning": {}})
    assert later["rows"][bce]["protocol"] == "dropout chosen on validation" and later["tuning"] == tune
    assert "| 0.5 (0.2: 0.0310, 0.5: 0.0390) |" in next(x for x in reproduce._sequence_section(later) if x.startswith(f"| {bce}"))
    page = "\n".join(reproduce._sequence_section(merged))
    assert "| SASRec (full cross-entropy) [other recipe] |" in page and "| 0.5 (0.2: 0.0310, 0.5: 0.0390) |" in page
    assert "Rows marked [other recipe] were trained with another recipe than the one above (they stand until re-run with it); " \
           "it differs in: dropout 0.2; at most 100 epochs. The whole recipe: dropout 0.2, at most 100 epochs." in page
    # a stopped run of the earlier recipe is not resumed by the current one, and the page says so
    monkeypatch.setattr(reproduce, "RAW", tmp_path)
    stale = {**reproduce._seq_key("beauty", "SASRec (BCE"), "max_epochs": 100}
    reproduce._partial_path("beauty", "SASRec (BCE").write_text(json.dumps({"key": stale, "runs": {"0": {"PopRec": {
        "hr_full": 0.01, "ndcg_full": 0.005, "hr_sampled": 0.3, "ndcg_sampled": 0.15}}}}))  # fmt: skip
    assert reproduce._partial_runs("seq_beauty")[0]["stale"]
    assert "runs it again from the first seed with the current recipe" in reproduce.render({}, "CPU")


def test_a_stopped_sequence_run_resumes_inside_a_seed_to_the_same_numbers(tmp_path, monkeypatch):
    from recsys_tf import models
    from recsys_tf.data import schema

    rng = np.random.default_rng(0)
    start = rng.integers(0, 150, 80)  # 150 items: room for 99 sampled negatives
    items = (start[:, None] + np.arange(9)[None, :]) % 150 + 100
    inter = pd.DataFrame({"user_id": np.repeat(np.arange(80), 9), "item_id": items.ravel(), "timestamp": np.tile(np.arange(9), 80)})
    ds = schema.Dataset("toy", inter, pd.DataFrame({"item_id": np.arange(100, 250)}), pd.DataFrame({"user_id": np.arange(80)}))
    monkeypatch.setattr("recsys_tf.data.load_s3rec", lambda name: ds)
    monkeypatch.setattr(reproduce, "RAW", tmp_path / "results")
    monkeypatch.setenv("RECSYS_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(reproduce, "SEQ_RECIPE", dict(maxlen=8, dim=8, blocks=1, heads=1, batch_size=32, learning_rate=5e-3))
    run = lambda: reproduce.sequential_s3rec("beauty", seeds=(0, 1), max_epochs=3, patience=5, which="SASRec (BCE")  # noqa: E731
    straight = run()
    checkpoints = tmp_path / "cache" / "checkpoints"
    assert not list(checkpoints.rglob("*.npz")) and not list((tmp_path / "results").glob("*.partial.json"))  # all cleaned up

    real = models.SASRec._epoch_samples

    def killed_in_seed_1_epoch_3(self, rng):
        if self.seed == 1 and len(self.history_) == 2:
            raise KeyboardInterrupt  # as a stopped process: seed 0 and two epochs of seed 1 are on disk
        return real(self, rng)

    monkeypatch.setattr(models.SASRec, "_epoch_samples", killed_in_seed_1_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        run()
    assert len(list(checkpoints.rglob("*-seed1-*.npz"))) == 1 and not list(checkpoints.rglob("*-seed0-*.npz"))
    (kept,) = (tmp_path / "results").glob("*.partial.json")
    seed0 = json.loads(kept.read_text())["seed_seconds"]["0"]  # seed 0's wall time, its dropout trials included
    monkeypatch.setattr(models.SASRec, "_epoch_samples", real)
    resumed = run()
    # the run time counts the stopped run's part: seed 0 and the checkpoint's two epochs of seed 1
    assert straight["seconds_in_earlier_runs"] == 0 and resumed["seconds_in_earlier_runs"] > seed0 > 0
    label = "SASRec (BCE, 1 negative: the paper's loss)"
    for metric in ("hr_full", "ndcg_full", "hr_sampled", "ndcg_sampled", "epoch"):
        assert resumed["rows"][label][metric]["values"] == straight["rows"][label][metric]["values"], metric
    assert resumed["tuning"] == {**straight["tuning"], label: {**straight["tuning"][label], "seconds": resumed["tuning"][label]["seconds"]}}
    assert not list(checkpoints.rglob("*.npz"))
