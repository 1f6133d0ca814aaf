import numpy as np
import pandas as pd
import pytest

from recsys_tf.data.cleaning import (CleaningReport, detect_bots, drop_duplicates, drop_missing,
                                     fix_millisecond_timestamps, invalidate_ratings, k_core, normalize_event_types,
                                     price_outliers, to_implicit)  # fmt: skip
from recsys_tf.errors import DataError


def _log(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp", "rating"])


def test_each_step_counts_what_it_changed():
    raw = _log([
        (1, 10, "view", 1_700_000_000, np.nan),
        (1, 10, "view", 1_700_000_000, np.nan),  # duplicate
        (1, 11, " Click", 1_700_000_050_000, np.nan),  # spelling + milliseconds
        (2, None, "view", 1_700_000_100, np.nan),  # missing item
        (2, 12, "purchse", 1_700_000_200, 7.0),  # typo + bad rating
        (3, 12, "purchase", 1_700_000_300, 4.0),
    ])  # fmt: skip
    rep = CleaningReport()
    ev = normalize_event_types(raw, report=rep)
    assert ev.event.tolist() == ["view", "view", "click", "view", "purchase", "purchase"]
    ev = fix_millisecond_timestamps(ev, report=rep)
    assert ev.timestamp.iloc[2] == 1_700_000_050
    ev = drop_duplicates(ev, report=rep)
    ev = drop_missing(ev, report=rep)
    ev = invalidate_ratings(ev, report=rep)
    table = rep.to_frame().set_index("step")
    assert table.loc["drop duplicate events", "removed"] == 1
    assert table.loc["drop rows with missing values", "removed"] == 1
    assert "1 fixed" in table.loc["fix millisecond timestamps", "note"]
    assert "1 ratings set to NaN" in table.loc["invalidate out-of-range ratings", "note"]
    assert len(ev) == 4 and ev.rating.notna().sum() == 1


def test_unknown_event_types_are_not_dropped_silently():
    with pytest.raises(DataError, match=r"unknown type\(s\) \['wishlist'\]"):
        normalize_event_types(_log([(1, 1, "wishlist", 1, np.nan)]))


def test_k_core_iterates_to_a_fixed_point():
    # item 3 has one user; removing it leaves user 2 with one item, so user 2 goes too
    df = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "item_id": [1, 2, 1, 3, 1, 2]})
    core = k_core(df, 2, 2)
    assert sorted(zip(core.user_id, core.item_id)) == [(1, 1), (1, 2), (3, 1), (3, 2)]
    assert (core.groupby("user_id").size() >= 2).all() and (core.groupby("item_id").size() >= 2).all()


def test_to_implicit_collapses_pairs_by_their_strongest_event():
    ev = _log([
        (1, 10, "view", 1, np.nan), (1, 10, "click", 2, np.nan), (1, 10, "purchase", 5, 4.0),
        (1, 11, "view", 3, np.nan), (2, 10, "click", 4, np.nan),
    ])  # fmt: skip
    imp = to_implicit(ev, min_event="click")
    assert list(zip(imp.user_id, imp.item_id)) == [(1, 10), (2, 10)]
    assert imp.set_index(["user_id", "item_id"]).loc[(1, 10), "strength"] == pytest.approx(0.1 + 1 + 4)
    assert imp.last_event.tolist() == ["purchase", "click"] and imp.timestamp.tolist() == [5, 4]
    assert imp.rating.iloc[0] == 4.0
    assert len(to_implicit(ev, min_event="view")) == 3
    with pytest.raises(DataError, match="normalize_event_types"):
        to_implicit(_log([(1, 1, "View", 1, np.nan)]))


def test_detect_bots_finds_crawlers_not_busy_humans():
    rng = np.random.default_rng(0)
    bot = _log([(99, int(i), "view", 1_000 + 2 * k, np.nan) for k, i in enumerate(rng.integers(0, 500, 400))])
    human_t = np.cumsum(rng.integers(30, 900, 400))  # busy but human pace, and buys
    human = _log([(1, int(i), "purchase" if k % 20 == 0 else "view", int(t), np.nan)
                  for k, (i, t) in enumerate(zip(rng.integers(0, 500, 400), human_t))])  # fmt: skip
    assert detect_bots(pd.concat([bot, human])).tolist() == [99]


def test_price_outliers_flags_cents_and_missing():
    items = pd.DataFrame({"category": ["a"] * 6 + ["b"] * 4,
                          "price": [10, 11, 9, 12, 1_000, 10.5, 100, 90, 110, np.nan]})  # fmt: skip
    assert price_outliers(items).tolist() == [False] * 4 + [True, False] + [False] * 3 + [True]


def test_clean_events_on_the_shop(shop_small, shop_small_clean):
    ev, report = shop_small_clean
    assert ev[["user_id", "item_id", "timestamp"]].notna().all().all()
    assert set(ev.event) == {"view", "click", "cart", "purchase"}
    assert ev.duplicated().sum() == 0
    assert ev.item_id.isin(shop_small.catalog.item_id).all()
    assert (ev.timestamp < 10_000_000_000).all()
    bots = shop_small.users.user_id[shop_small.users.is_bot]
    assert not ev.user_id.isin(bots).any()  # every simulated bot found...
    raw = shop_small.events
    usable = raw.item_id.notna() & raw.timestamp.notna() & raw.item_id.isin(shop_small.catalog.item_id)
    humans_lost = set(raw.user_id[usable]) - set(ev.user_id) - set(bots)
    assert not humans_lost  # ...and no human with a usable event removed
    rep = report.to_frame()
    assert rep.rows_before.iloc[0] == len(shop_small.events) and rep.rows_after.iloc[-1] == len(ev)
    assert (rep.rows_before.iloc[1:].to_numpy() == rep.rows_after.iloc[:-1].to_numpy()).all()
