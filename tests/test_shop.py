import time

import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.shop import SIZES, ShopConfig, make_shop
from recsys_tf.data.shop_catalog import CATEGORY_TREE, render_pictures


def test_same_seed_same_shop_other_seed_other_shop(shop_tiny):
    again = make_shop("tiny", seed=0)
    pd.testing.assert_frame_equal(shop_tiny.events, again.events)
    pd.testing.assert_frame_equal(shop_tiny.catalog, again.catalog)
    assert not make_shop("tiny", seed=1).events.equals(shop_tiny.events)


def test_tiny_is_fast_enough_for_tests():
    start = time.perf_counter()
    make_shop("tiny", seed=3)
    assert time.perf_counter() - start < 2.0


def test_small_preset_sizes(shop_small):
    cfg = SIZES["small"]
    assert 1_000 <= cfg.n_items <= 2_000 and 2_000 <= cfg.n_users <= 9_999
    assert len(shop_small.events) >= 100_000
    assert SIZES["large"].n_users >= 100_000


def test_catalog_attributes_and_texts(shop_small):
    cat = shop_small.catalog
    assert {"item_id", "department", "category", "brand", "price", "colour", "style", "title", "description", "picture"} <= set(cat.columns)
    assert set(cat.department) == set(CATEGORY_TREE)
    row = cat.dropna(subset=["brand"]).iloc[0]
    assert row.brand in row.title and row.colour in row.title.lower()
    assert cat.title.nunique() > 0.8 * len(cat)  # varied wording
    # price distributions differ by category: jackets cost more than mugs
    med = cat.groupby("category").price.median()
    assert med["Jackets"] > 3 * med["Mugs"]


def test_pictures_carry_category_colour_and_style(shop_tiny):
    pics = shop_tiny.pictures()
    assert pics.shape == (len(shop_tiny.catalog), 64, 64, 3) and pics.dtype == np.uint8
    cat = shop_tiny.catalog.copy()
    base = cat.iloc[[0]].copy()
    first = base.iloc[0]
    variants = pd.concat([base, base.assign(category="Mugs" if first["category"] != "Mugs" else "Lamps", item_id=1),
                          base.assign(colour="red" if first["colour"] != "red" else "blue", item_id=2),
                          base.assign(style="retro" if first["style"] != "retro" else "sporty", item_id=3)])  # fmt: skip
    imgs = render_pictures(variants.reset_index(drop=True))
    for k in (1, 2, 3):  # changing any one attribute changes the picture
        assert (imgs[0] != imgs[k]).any()
    assert (render_pictures(variants.iloc[[0]]) == imgs[:1]).all()


def test_users_have_several_needs_and_truth_is_kept(shop_small):
    users, needs = shop_small.users, shop_small.needs
    assert users.n_needs.between(1, 4).all() and (users.n_needs >= 2).mean() > 0.5
    assert needs.groupby("user_id").size().equals(users.set_index("user_id").n_needs.rename(None).rename_axis("user_id")) or \
        (needs.groupby("user_id").size().to_numpy() == users.n_needs.to_numpy()).all()
    assert np.allclose(needs.groupby("user_id").weight.sum(), 1.0, atol=1e-5)
    util = shop_small.true_utility([0, 1, 2])
    assert util.shape == (3, len(shop_small.catalog))
    ideal = shop_small.ideal_ranking([0, 1, 2], k=5)
    top_util = shop_small.true_utility([0], ideal[0])[0]
    assert (np.diff(top_util) <= 1e-6).all() and top_util[0] == pytest.approx(util[0].max())
    # per (user, item) pair, in the pairs' order, repeats included
    items = shop_small.catalog["item_id"].to_numpy()
    pairs = shop_small.pair_utility([2, 0, 2], [items[5], items[7], items[5]])
    assert np.allclose(pairs, [util[2, 5], util[0, 7], util[2, 5]])


def test_true_utility_rewards_a_users_need(shop_small):
    need = shop_small.needs.iloc[0]
    in_need = shop_small.catalog["category"].eq(need["category"]).to_numpy()
    util = shop_small.true_utility([need["user_id"]])[0]
    assert util[in_need].mean() > util[~in_need].mean() + 1.0


def test_event_log_funnel_and_dirt(shop_small):
    ev = shop_small.events
    counts = ev.event.value_counts()
    assert counts["view"] > counts["click"] > counts["cart"] > counts["purchase"] > 0
    assert ev.duplicated().mean() > 0.01
    assert ev.item_id.isna().sum() > 0 and ev.timestamp.isna().sum() > 0
    assert ev.event.isin(["purchse", "add_to_cart", " click"]).any()
    assert (ev.timestamp > 10_000_000_000).any()  # milliseconds
    assert ((ev.rating < 1) | (ev.rating > 5)).any()
    assert shop_small.users.is_bot.sum() >= 2
    span_days = (ev.timestamp.where(ev.timestamp < 1e10).max() - ev.timestamp.min()) / 86_400
    assert span_days > 7 * SIZES["small"].weeks - 3


def test_no_event_before_a_product_launch(shop_small):
    ev = shop_small.events.dropna(subset=["item_id", "timestamp"])
    ev = ev[(ev.timestamp < 1e10) & ev.item_id.isin(shop_small.catalog.item_id)]
    launch = shop_small.catalog.set_index("item_id").launch_time
    rel = ev.timestamp - 1_767_571_200
    assert (rel.to_numpy() >= launch.reindex(ev.item_id.astype(int)).to_numpy()).all()


def test_clean_shop_option():
    shop = make_shop("tiny", seed=0, dirty=False)
    assert shop.events.duplicated().mean() < 0.001 and not shop.users.is_bot.any()
    assert shop.events.event.isin(["view", "click", "cart", "purchase"]).all()


def test_bad_size_and_unknown_ids(shop_tiny):
    with pytest.raises(ValueError, match="tiny"):
        make_shop("medium")
    with pytest.raises(KeyError, match="unknown item"):
        shop_tiny.true_utility([0], np.array([10**6]))
    with pytest.raises(KeyError, match="unknown user"):
        shop_tiny.true_utility([10**6])


def test_custom_config():
    shop = make_shop(ShopConfig(n_users=50, n_items=40, weeks=2), seed=1)
    assert len(shop.users) == 50 and len(shop.catalog) == 40


def test_the_two_step_item_draw_is_exactly_one_binary_search_over_the_stacked_cdfs():
    from recsys_tf.data import shop

    rng = np.random.default_rng(0)
    rows_, n_items = 7, 50  # 50 is not a multiple of the block: the last block is short
    w = rng.exponential(1.0, (rows_, n_items)) * (rng.random((rows_, n_items)) < 0.7)  # zeros: flat CDF steps
    cdf = np.cumsum(w, axis=1)
    cdf = cdf / cdf[:, -1:] + np.arange(rows_)[:, None]
    ends = np.minimum(np.arange(1, -(-n_items // shop._BLOCK) + 1) * shop._BLOCK, n_items) - 1
    tables = shop._Tables(None, cdf.ravel(), np.ascontiguousarray(cdf[:, ends]).ravel())
    row = rng.integers(0, rows_, 5_000)
    got = shop._sample_items(tables, n_items, row, np.random.default_rng(1))
    keys = row + np.random.default_rng(1).random(len(row))
    want = np.minimum(np.searchsorted(cdf.ravel(), keys, side="right") - row * n_items, n_items - 1)
    assert np.array_equal(got, want) and (w[row, got] > 0).all()  # never an item of weight zero


def test_generation_in_threads_gives_the_same_numbers_as_one_pass():
    from recsys_tf.data import shop

    s = make_shop("tiny", seed=1)
    na, it = s._need_arrays, shop._item_arrays(s._clean_catalog)
    rows = shop._need_rows(na, np.arange(40, 90))
    pop32 = np.random.default_rng(0).normal(0, 1, len(s.catalog)).astype(np.float32)
    maker = shop._TableMaker(s.config, na, it, pop32, len(rows))
    try:
        t = maker.make(rows, 0)
    finally:
        maker.close()
    u = shop._need_rows_utility(na, it, rows, np.arange(len(s.catalog)))
    logits = np.float32(s.config.beta) * u + pop32
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(e, axis=1, dtype=np.float64)
    assert np.array_equal(t.util, u)
    assert np.array_equal(t.cdf, (cdf / cdf[:, -1:] + np.arange(len(rows))[:, None]).ravel())
