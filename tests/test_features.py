"""Item content features: shapes, determinism, and similar items nearer than dissimilar ones."""

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.shop_catalog import render_pictures
from recsys_tf.errors import DataError
from recsys_tf.features import TextEncoder, colour_histogram, image_features, shape_descriptors, texture_descriptors, tfidf_svd

TEXTS = [
    "red leather ankle boots with a rubber sole",
    "black leather chelsea boots, rubber sole",
    "ceramic coffee mug with a glossy glaze",
    "white ceramic travel mug, glossy",
    "wireless headphones with long battery life",
    "wireless earbuds with long battery life",
]


def test_tfidf_svd_puts_similar_texts_together():
    z = tfidf_svd(TEXTS, dim=4)
    assert z.shape == (6, 4) and np.allclose(np.linalg.norm(z, axis=1), 1)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 2] and sim[2, 3] > sim[2, 4] and sim[4, 5] > sim[4, 0]
    assert np.allclose(z, tfidf_svd(TEXTS, dim=4))


def test_text_encoder_shapes_and_determinism():
    enc = TextEncoder(dim=8, seed=1).adapt(TEXTS)
    z = enc.encode(TEXTS)
    assert z.shape == (6, 8) and np.allclose(z, TextEncoder(dim=8, seed=1).adapt(TEXTS).encode(TEXTS), atol=1e-6)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 4]  # shared words "leather boots rubber sole"


def test_text_input_is_checked():
    with pytest.raises(DataError, match="not strings"):
        tfidf_svd(["a", None, "b"])
    with pytest.raises(DataError, match="no texts"):
        tfidf_svd([])


def _catalog(rows):
    return pd.DataFrame(rows, columns=["category", "colour", "style"]).assign(item_id=range(len(rows)))


def test_picture_descriptors_separate_colour_shape_and_texture():
    cat = _catalog([("Mugs", "red", "classic"), ("Mugs", "red", "classic"), ("Mugs", "blue", "classic"),
                    ("Lamps", "red", "classic"), ("Mugs", "red", "retro")])  # fmt: skip
    pics = render_pictures(cat)
    colour, shape, texture = colour_histogram(pics), shape_descriptors(pics), texture_descriptors(pics)
    assert colour.shape == (5, 64) and np.allclose(colour.sum(axis=1), 1)
    assert shape.shape == (5, 20) and texture.shape == (5, 9)

    def d(a, i, j):
        return np.linalg.norm(a[i] - a[j])

    assert d(colour, 0, 1) == 0 and d(colour, 0, 2) > d(colour, 0, 3)  # colour sees red vs blue, not the shape
    assert d(shape, 0, 1) == 0 and d(shape, 0, 3) > d(shape, 0, 2)  # shape sees mug vs lamp, not the colour
    assert d(texture, 0, 4) > 10 * d(texture, 0, 2)  # checks vs solid matter, the hue hardly
    both = image_features(pics)
    assert both.shape == (5, 93) and np.allclose(both, image_features(pics))


def test_picture_input_is_checked():
    with pytest.raises(DataError, match="n x height x width x 3"):
        colour_histogram(np.zeros((2, 8, 8)))


def test_hybrid_model_ranks_new_items_from_their_content(tmp_path):
    from recsys_tf.errors import DataError as _DataError
    from recsys_tf.models import HybridRecommender, Recommender

    rng = np.random.default_rng(0)
    n_items = 40
    group = np.arange(n_items) % 2  # content: a one-hot of the item's group (+ noise)
    feats = pd.DataFrame(np.column_stack([group == 0, group == 1, rng.normal(0, 0.05, n_items)]).astype(float),
                         index=np.arange(n_items))  # fmt: skip
    new = np.array([36, 37, 38, 39])  # never seen in training
    users = np.repeat(np.arange(60), 10)
    items = np.array([rng.choice(np.flatnonzero((group == u % 2) & ~np.isin(np.arange(n_items), new)), 10, replace=False)
                      for u in range(60)]).ravel()  # fmt: skip
    train = pd.DataFrame({"user_id": users, "item_id": items, "label": 1.0})
    catalog = pd.DataFrame({"item_id": np.arange(n_items)})
    model = HybridRecommender(item_features=feats, factors=8, epochs=30, learning_rate=0.01, verbose=False, seed=0).fit(train, catalog)
    scores = model.score(np.repeat([0, 1], 4), np.tile(new, 2)).reshape(2, 4)
    # user 0 likes group 0 (items 36, 38), user 1 group 1 (37, 39)
    assert scores[0, [0, 2]].min() > scores[0, [1, 3]].max() and scores[1, [1, 3]].min() > scores[1, [0, 2]].max()
    model.save(tmp_path / "h")
    again = Recommender.load(tmp_path / "h")
    assert np.allclose(again.score(np.repeat([0, 1], 4), np.tile(new, 2)).reshape(2, 4), scores, atol=1e-5)
    with pytest.raises(_DataError, match="no \\(complete\\) content features"):
        HybridRecommender(item_features=feats.iloc[:-1], epochs=1, verbose=False).fit(train, catalog)


def test_hybrid_learns_word_embeddings_that_carry_new_items(tmp_path):
    from recsys_tf.models import HybridRecommender, Recommender

    rng = np.random.default_rng(0)
    n_items = 40
    group = np.arange(n_items) % 2
    words = np.array(["leather boots sole", "ceramic mug glaze"])
    texts = pd.Series([f"{words[g]} model {i}" for i, g in enumerate(group)], index=np.arange(n_items))
    new = np.array([36, 37, 38, 39])
    users = np.repeat(np.arange(60), 10)
    items = np.array([rng.choice(np.flatnonzero((group == u % 2) & ~np.isin(np.arange(n_items), new)), 10, replace=False)
                      for u in range(60)]).ravel()  # fmt: skip
    train = pd.DataFrame({"user_id": users, "item_id": items})
    catalog = pd.DataFrame({"item_id": np.arange(n_items)})
    model = HybridRecommender(item_texts=texts, factors=8, text_dim=8, epochs=30, learning_rate=0.01, verbose=False, seed=0)
    model.fit(train, catalog)
    scores = model.score(np.repeat([0, 1], 4), np.tile(new, 2)).reshape(2, 4)
    assert scores[0, [0, 2]].min() > scores[0, [1, 3]].max() and scores[1, [1, 3]].min() > scores[1, [0, 2]].max()
    assert model.item_factors.shape == (n_items, 8)
    model.save(tmp_path / "h")
    again = Recommender.load(tmp_path / "h")
    assert np.allclose(again.score(np.repeat([0, 1], 4), np.tile(new, 2)).reshape(2, 4), scores, atol=1e-5)
    with pytest.raises(DataError, match="item_features .* and/or item_texts"):
        HybridRecommender(epochs=1, verbose=False).fit(train, catalog)
    with pytest.raises(DataError, match="no \\(complete\\) text"):
        HybridRecommender(item_texts=texts.iloc[:-1], epochs=1, verbose=False).fit(train, catalog)


def test_picture_files_round_trip_and_bad_files_are_named(tmp_path):
    from recsys_tf.features.image import load_pictures, save_pictures

    pics = render_pictures(_catalog([("Mugs", "red", "classic"), ("Lamps", "blue", "retro")]), size=64)
    paths = save_pictures(tmp_path, pics, ["a", "b"])
    assert np.array_equal(load_pictures(paths, size=64), pics)  # PNG is lossless
    assert load_pictures(paths, size=32).shape == (2, 32, 32, 3)
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(DataError, match="bad.png is not a readable picture"):
        load_pictures([paths[0], tmp_path / "bad.png"])
    with pytest.raises(DataError, match="do not exist"):
        load_pictures([tmp_path / "nope.jpg"])


def test_hybrid_folds_in_shoppers_it_never_trained_on():
    from recsys_tf.models import HybridRecommender

    rng = np.random.default_rng(0)
    n_items = 40
    group = np.arange(n_items) % 2
    feats = pd.DataFrame(np.column_stack([group == 0, group == 1]).astype(float), index=np.arange(n_items))
    new = np.array([36, 37, 38, 39])
    users = np.repeat(np.arange(60), 10)
    items = np.array([rng.choice(np.flatnonzero((group == u % 2) & ~np.isin(np.arange(n_items), new)), 10, replace=False)
                      for u in range(60)]).ravel()  # fmt: skip
    model = HybridRecommender(item_features=feats, factors=8, epochs=30, learning_rate=0.01, verbose=False, seed=0)
    model.fit(pd.DataFrame({"user_id": users, "item_id": items}), pd.DataFrame({"item_id": np.arange(n_items)}))
    # two newcomers: three group-0 items, and one group-1 item plus a new group-1 item
    scores = model.fold_in_scores([[0, 2, 4], [1, 37]])
    assert scores.shape == (2, n_items)
    assert scores[0, group == 0].mean() > scores[0, group == 1].mean() and scores[1, group == 1].mean() > scores[1, group == 0].mean()
    ids, vals = model.recommend_for_history([0, 2, 4], k=5)
    assert (group[ids] == 0).all() and not np.isin(ids, [0, 2, 4]).any() and (np.diff(vals) <= 0).all()
    with pytest.raises(DataError, match="at least one item"):
        model.fold_in([[0], []])
    with pytest.raises(DataError, match="unknown"):
        model.fold_in([[999]])
