"""Impressions, AUC / GAUC by hand, and DIN: no look-ahead, attention on the relevant clicks, save/load."""

import keras
import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.impressions import Behaviours, ctr_samples
from recsys_tf.errors import DataError
from recsys_tf.metrics import gauc, gauc_by_segment, grouped_auc, roc_auc
from recsys_tf.models.ctr import DIN


def test_auc_and_gauc_by_hand():
    # pairs (pos, neg): (0.9, 0.1) win, (0.9, 0.5) win, (0.5, 0.1) win, (0.5, 0.5) tie = 3.5 / 4
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.5, 0.5])) == pytest.approx(0.875)
    # user 1 ranks perfectly (AUC 1, 2 rows), user 2 backwards (AUC 0, 2 rows), user 3 has one class: left out
    assert gauc(np.array([1, 1, 2, 2, 3]), np.array([1, 0, 0, 1, 1]), np.array([0.9, 0.1, 0.8, 0.2, 0.5])) == pytest.approx(0.5)
    # by segment: users 1 and 2 in "a" (AUC 1 and 0, 2 rows each) -> 0.5; user 4 in "b" ranks 1 of its 2 pairs right
    seg = gauc_by_segment(np.array([1, 1, 2, 2, 4, 4, 4]), np.array([1, 0, 0, 1, 1, 0, 0]), np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.6, 0.1]),
                          {1: "a", 2: "a", 4: "b", 5: "c"})  # fmt: skip
    assert seg["a"] == pytest.approx(0.5) and seg["b"] == pytest.approx(0.5) and np.isnan(seg["c"])
    with pytest.raises(ValueError, match="no segment"):
        gauc_by_segment(np.array([1, 9]), np.array([1, 0]), np.array([0.2, 0.1]), {1: "a"})
    per = grouped_auc(np.array([1, 1, 1]), np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3]))
    assert np.isnan(per.auc.iloc[0])
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc(np.array([2, 0]), np.array([0.1, 0.2]))


def test_impressions_are_views_labelled_by_a_click_in_the_same_session():
    ev = pd.DataFrame({"user_id": [1, 1, 1, 1, 2], "item_id": [10, 10, 11, 10, 10], "event": ["view", "click", "view", "view", "view"],
                       "timestamp": [1, 2, 3, 9, 4], "session_id": [100, 100, 100, 101, 200]})  # fmt: skip
    s = ctr_samples(ev)
    assert s[["user_id", "item_id", "session_id", "label"]].values.tolist() == [[1, 10, 100, 1], [1, 11, 100, 0], [1, 10, 101, 0], [2, 10, 200, 0]]
    with pytest.raises(DataError, match="session_id"):
        ctr_samples(ev.drop(columns="session_id"))
    with pytest.raises(DataError, match="no 'view' events"):
        ctr_samples(ev[ev.event == "click"])


def test_behaviour_sequences_hold_only_clicks_strictly_before_the_impression():
    b = Behaviours.from_clicks(pd.DataFrame({"user_id": [5, 5, 5, 7], "item_id": [10, 11, 12, 13], "timestamp": [100, 200, 300, 150]}))
    items, valid = b.before(np.array([5, 5, 7, 9, 5]), np.array([250, 100, 151, 1000, 301]), 2)
    assert items.tolist() == [[10, 11], [0, 0], [0, 13], [0, 0], [11, 12]]  # t=100 sees nothing at t=100; last 2 only
    assert valid.tolist() == [[True, True], [False, False], [False, True], [False, False], [True, True]]


def _two_need_shop(n_users=300, seed=0):
    """Shoppers click in two categories (A: items 0-9, B: items 10-19); a shown item is clicked
    exactly when its category is one the shopper clicked before."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": np.arange(30), "category": ["A"] * 10 + ["B"] * 10 + ["C"] * 10,
                          "brand": "x", "price_tier": "mid"})  # fmt: skip
    clicks, views = [], []
    for_cat = {"A": np.arange(10), "B": np.arange(10, 20), "C": np.arange(20, 30)}
    likes = rng.choice(["A", "B", "C"], size=(n_users, 2))
    for u in range(n_users):
        for t in range(4):
            clicks.append((u, int(rng.choice(for_cat[likes[u, t % 2]])), t))
        for t in range(4, 10):
            cat = rng.choice(["A", "B", "C"])
            views.append((u, int(rng.choice(for_cat[cat])), 100 + t, float(cat in likes[u])))
    clicks = pd.DataFrame(clicks, columns=["user_id", "item_id", "timestamp"])
    samples = pd.DataFrame(views, columns=["user_id", "item_id", "timestamp", "label"])
    return items, clicks, samples, likes


@pytest.fixture(scope="module")
def din_fit():
    items, clicks, samples, likes = _two_need_shop()
    train, test = samples[samples.user_id < 240], samples[samples.user_id >= 240]
    model = DIN(maxlen=4, dim=8, epochs=12, batch_size=64, learning_rate=5e-3, verbose=False).fit(train, clicks, items)
    return model, items, clicks, test, likes


def test_din_learns_the_shoppers_needs_and_its_weights_depend_on_the_candidate(din_fit):
    model, items, clicks, test, likes = din_fit
    m = model.evaluate(test)
    assert m["auc"] > 0.9 and m["gauc"] > 0.9
    u = 250
    cat_of = items.set_index("item_id").category
    cands = [int(items.item_id[items.category == likes[u, 0]].iloc[0]), int(items.item_id[items.category == likes[u, 1]].iloc[0])]
    if likes[u, 0] == likes[u, 1]:
        pytest.skip("this shopper has one need")
    past, w = model.attention(u, cands, at_time=100)
    assert len(past) == 4 and w.shape == (2, 4)
    # target attention: the same past clicks get other weights for another candidate (sum pooling
    # gives every click 1), and clicks of one category share a weight for a given candidate
    assert np.abs(w[0] - w[1]).max() > 0.1 * np.abs(w).max()
    cats = cat_of[past].to_numpy()
    for row in w:
        for c in set(cats):
            assert np.ptp(row[cats == c]) < 0.05 * np.abs(row).max() + 1e-6


def test_din_save_and_load_round_trip(din_fit, tmp_path):
    model, _, _, test, _ = din_fit
    model.save(tmp_path / "din")
    again = DIN.load(tmp_path / "din")
    assert np.allclose(again.predict(test), model.predict(test), atol=1e-6)
    (tmp_path / "din" / "clicks_items.npy").write_bytes(b"broken")
    with pytest.raises(DataError, match="damaged|manifest|changed"):
        DIN.load(tmp_path / "din")


def test_sum_pooling_base_and_bad_input():
    items, clicks, samples, _ = _two_need_shop(n_users=40)
    # what is checked here needs no training (epochs=0): the errors and the structure
    base = DIN(pooling="sum", maxlen=4, dim=4, epochs=0, verbose=False).fit(samples, clicks, items)
    with pytest.raises(ValueError, match="attention"):
        base.attention(0, [1], 100)
    with pytest.raises(ValueError, match="attention"):
        DIN(pooling="mean", maxlen=4, dim=4, epochs=0, verbose=False).fit(samples, clicks, items).attention(0, [1], 100)
    with pytest.raises(DataError, match="not in the catalogue"):
        base.predict(samples.assign(item_id=999))
    with pytest.raises(DataError, match="label"):
        DIN(epochs=1, verbose=False).fit(samples.assign(label=2.0), clicks, items)
    with pytest.raises(DataError, match="price_tier"):
        DIN(epochs=1, verbose=False).fit(samples, clicks, items.drop(columns="price_tier"))
    with pytest.raises(ValueError, match="pooling"):
        DIN(pooling="max")
    with pytest.raises(ValueError, match="attention_activation one of"):
        DIN(attention_activation="relu")


def test_dice_follows_its_formula():
    from recsys_tf.models.ctr import _build

    net = _build([3, 1, 1, 1], maxlen=2, dim=2, attention_units=(4,), mlp=(3,), activation="dice", pooling="attention", seed=0)
    dice = net.mlp[0][1]
    dice.alpha.assign(np.full(3, 0.25, "float32"))
    s = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]], "float32")
    mean, var = s.mean(0), s.var(0)
    p = 1 / (1 + np.exp(-(s - mean) / np.sqrt(var + 1e-9)))
    want = p * s + (1 - p) * 0.25 * s
    assert np.allclose(keras.ops.convert_to_numpy(dice(s, training=True)), want, atol=1e-5)


def test_dice_in_the_attention_unit_takes_its_batch_statistics_over_clicks_not_padding():
    from recsys_tf.models.ctr import _build

    net = _build([5, 2, 2, 2], maxlen=4, dim=2, attention_units=(4,), mlp=(3,), activation="dice", pooling="attention", seed=0,
                 attention_activation="dice")
    # two impressions: 2 and 3 past clicks, left-padded with code 0
    x = np.zeros((2, 5, 4), "int32")
    x[:, 0] = [[1, 1, 1, 1], [2, 2, 1, 2]]
    x[0, 3:] = [[3, 1, 2, 1], [4, 2, 2, 2]]
    x[1, 2:] = [[5, 2, 1, 1], [1, 1, 1, 1], [2, 2, 1, 2]]

    def weights():
        e, v = net.describe(x[:, 1:]), net.describe(x[:, 0])
        keep = keras.ops.cast(keras.ops.not_equal(x[:, 1:, 0], 0), "float32")
        return keras.ops.convert_to_numpy(net.weights_of(e, v, keep, training=True))

    before = weights()
    for table in net.tables:  # move the padding's embeddings far away: the clicks' weights must not notice
        emb = keras.ops.convert_to_numpy(table.embeddings).copy()
        emb[0] += 50.0
        table.embeddings.assign(emb)
    after = weights()
    real = x[:, 1:, 0] != 0
    assert np.allclose(before[real], after[real], atol=1e-5) and np.all(after[~real] == 0)


def test_din_keeps_its_attributes_and_attention_activation_through_save(tmp_path):
    items, clicks, samples, _ = _two_need_shop(n_users=40)
    items = items.assign(style=np.where(items.item_id % 2 == 0, "classic", "sporty"))
    model = DIN(maxlen=4, dim=4, epochs=1, verbose=False, attributes=("category", "style"), attention_activation="sigmoid")
    model.fit(samples, clicks, items)
    assert model.item_codes_.shape == (30, 3) and model.vocab_["style"] == ["classic", "sporty"]
    assert len(model.net_.tables) == 3  # id, category, style: one embedding table each
    model.save(tmp_path / "din")
    again = DIN.load(tmp_path / "din")
    assert again.attributes == ("category", "style") and again.attention_activation == "sigmoid"
    assert np.allclose(again.predict(samples), model.predict(samples), atol=1e-6)
    with pytest.raises(DataError, match=r"\['style'\].*attributes="):
        DIN(epochs=1, verbose=False, attributes=("category", "style")).fit(samples, clicks, items.drop(columns="style"))
    items.loc[items.item_id < 3, "style"] = None  # missing: a value of its own, not dropped, not "nan"
    model = DIN(maxlen=4, dim=4, epochs=0, verbose=False, attributes=("category", "style")).fit(samples, clicks, items)
    assert model.vocab_["style"] == ["?", "classic", "sporty"] and (model.item_codes_[:3, 2] == 1).all()


def test_pooling_weights_sum_mean_and_the_authors_softmax():
    items, clicks, samples, _ = _two_need_shop(n_users=40)
    # the weights are the pooling's structure, not learned: the networks need no training (epochs=0)
    # user 0 has 4 clicks before t=100: sum weighs each 1, mean 1/4, the softmax variant sums to 1
    soft = DIN(pooling="softmax", maxlen=6, dim=4, epochs=0, verbose=False).fit(samples, clicks, items)
    past, w = soft.attention(0, [0, 10, 20], at_time=100)
    assert len(past) == 4 and w.shape == (3, 4)
    assert np.allclose(w.sum(1), 1.0, atol=1e-5) and (w > 0).all()
    for pooling, want in (("sum", 1.0), ("mean", 0.25)):
        model = DIN(pooling=pooling, maxlen=6, dim=4, epochs=0, verbose=False).fit(samples, clicks, items)
        x = model._packed(pd.DataFrame({"user_id": [0, 0], "item_id": [0, 10], "timestamp": [100, 100]}))
        e, v = model.net_.describe(x[:, 1:]), model.net_.describe(x[:, 0])
        keep = keras.ops.cast(keras.ops.not_equal(x[:, 1:, 0], 0), "float32")
        weights = keras.ops.convert_to_numpy(model.net_.weights_of(e, v, keep))
        assert np.allclose(weights[:, -4:], want) and np.allclose(weights[:, :-4], 0.0)  # left padding weighs 0


@pytest.mark.parametrize("kind", ["prelu", "dice"])
def test_the_attention_unit_sees_what_was_clicked_not_where_unless_given_slopes_per_position(kind):
    """The paper's a(e_j, v) is a function of the click and the candidate only; Keras' PReLU on a
    (batch, clicks, units) input would learn a slope per position, a recency signal it does not have."""
    from recsys_tf.models.ctr import _build

    x = np.zeros((2, 5, 4), "int32")
    x[:, 0] = [[1, 1, 1, 1], [2, 2, 1, 2]]
    x[:, 1:] = [[3, 1, 2, 1], [4, 2, 2, 2], [5, 2, 1, 1], [6, 1, 1, 2]]
    flipped = x.copy()
    flipped[:, 1:] = x[:, :0:-1]  # the same clicks in the opposite order
    rng = np.random.default_rng(0)
    for per_position, shape in ((False, (1, 4) if kind == "prelu" else (4,)), (True, (4, 4))):
        net = _build([7, 2, 2, 2], maxlen=4, dim=2, attention_units=(4,), mlp=(3,), activation="prelu", pooling="attention", seed=0,
                     attention_activation=kind, position_slopes=per_position)  # fmt: skip
        slope = net.att[0][1].alpha
        assert tuple(slope.shape) == shape
        slope.assign(rng.uniform(-1.0, 1.0, shape).astype("float32"))

        def weights(codes):
            keep = keras.ops.ones(codes[:, 1:, 0].shape)
            w = net.weights_of(net.describe(codes[:, 1:]), net.describe(codes[:, 0]), keep, training=False)
            return keras.ops.convert_to_numpy(w)

        same = np.allclose(weights(flipped)[:, ::-1], weights(x), atol=1e-6)  # each click keeps its weight
        assert same != per_position


def test_din_saved_before_position_slopes_existed_loads_with_keras_default_slopes(tmp_path):
    import hashlib
    import json

    items, clicks, samples, _ = _two_need_shop(n_users=40)
    model = DIN(maxlen=4, dim=4, epochs=1, verbose=False, position_slopes=True).fit(samples, clicks, items)
    model.save(tmp_path / "din")
    meta_file = tmp_path / "din" / "model.json"
    meta = json.loads(meta_file.read_text())
    del meta["params"]["position_slopes"]  # as the kit wrote it before the option
    meta_file.write_text(json.dumps(meta))
    manifest = json.loads((tmp_path / "din" / "manifest.json").read_text())
    manifest["files"]["model.json"] = hashlib.sha256(meta_file.read_bytes()).hexdigest()
    (tmp_path / "din" / "manifest.json").write_text(json.dumps(manifest))
    again = DIN.load(tmp_path / "din")
    assert again.position_slopes and np.allclose(again.predict(samples), model.predict(samples), atol=1e-6)
    assert not DIN().position_slopes  # new models: the paper's unit
    with pytest.raises(ValueError, match="position_slopes"):
        DIN(pooling="sum", position_slopes=True)
    with pytest.raises(ValueError, match="position_slopes"):
        DIN(attention_activation="sigmoid", position_slopes=True)


def _latest_need_shop(n_users=400, seed=0):
    """Each shopper's four clicks are in random categories; a shown item is clicked exactly when its
    category is that of the *latest* click: only recency tells the clicks apart."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": np.arange(30), "category": np.repeat(["A", "B", "C"], 10), "brand": "x", "price_tier": "mid"})
    cats = rng.integers(0, 3, size=(n_users, 4))
    clicks = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), 4), "item_id": (cats * 10 + rng.integers(0, 10, cats.shape)).ravel(),
                           "timestamp": np.tile(np.arange(4), n_users)})  # fmt: skip
    shown = rng.integers(0, 3, size=(n_users, 6))
    samples = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), 6), "item_id": (shown * 10 + rng.integers(0, 10, shown.shape)).ravel(),
                            "timestamp": np.tile(np.arange(100, 106), n_users),
                            "label": (shown == cats[:, -1:]).astype(float).ravel()})  # fmt: skip
    return items, clicks, samples


def test_recency_weights_multiply_each_clicks_weight_by_its_position():
    from recsys_tf.models.ctr import _build

    rng = np.random.default_rng(0)
    x = rng.integers(1, 3, size=(3, 5, 4)).astype("int32")
    x[0, 1:3] = 0  # two padded slots
    keep = keras.ops.cast(keras.ops.not_equal(x[:, 1:, 0], 0), "float32")
    r = np.array([0.5, -1.0, 2.0, 3.0], "float32")
    for pooling in ("sum", "attention"):
        net = _build([7, 2, 2, 2], maxlen=4, dim=2, attention_units=(4,), mlp=(3,), activation="prelu", pooling=pooling, seed=0, recency=True)
        e, v = net.describe(x[:, 1:]), net.describe(x[:, 0])
        plain = keras.ops.convert_to_numpy(net.unit_weights(e, v, keep))
        assert np.allclose(keras.ops.convert_to_numpy(net.weights_of(e, v, keep)), plain)  # starts at 1: no recency yet
        net.recency.assign(r)
        assert np.allclose(keras.ops.convert_to_numpy(net.weights_of(e, v, keep)), plain * r, atol=1e-6)
        if pooling == "sum":
            assert np.allclose(plain * r, keras.ops.convert_to_numpy(keep) * r)  # u = sum_j r_j e_j


def test_recency_is_learned_where_only_the_latest_click_matters(tmp_path):
    items, clicks, samples = _latest_need_shop()
    train, test = samples[samples.user_id < 320], samples[samples.user_id >= 320]
    kw = dict(pooling="sum", maxlen=4, dim=8, epochs=10, batch_size=64, learning_rate=5e-3, verbose=False)
    plain = DIN(**kw).fit(train, clicks, items)
    timed = DIN(recency=True, **kw).fit(train, clicks, items)
    auc_plain, auc_timed = plain.evaluate(test)["auc"], timed.evaluate(test)["auc"]
    r = timed.recency_weights()
    assert auc_timed > 0.9 and auc_timed > auc_plain + 0.1, (auc_plain, auc_timed)
    assert r.shape == (4,) and abs(r[0]) > 2 * np.abs(r[1:]).max(), r  # the latest click carries the weight
    timed.save(tmp_path / "din")
    again = DIN.load(tmp_path / "din")
    assert again.recency and np.allclose(again.recency_weights(), r) and np.allclose(again.predict(test), timed.predict(test), atol=1e-6)
    with pytest.raises(ValueError, match="recency=True"):
        plain.recency_weights()
