"""Describing users and items: long tail, activity, funnel, interests, needs, price sensitivity, sessions.

Every function takes frames in the kit's schema and returns a frame or series ready to plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_tf.data.cleaning import EVENT_ORDER
from recsys_tf.data.schema import ITEM, TIMESTAMP, USER, require_columns


def long_tail(interactions: pd.DataFrame) -> pd.DataFrame:
    """Items by popularity with the cumulative share of interactions they cover.

    Columns: ``rank`` (1 = most popular), ``count``, ``cum_share`` (share of all interactions
    covered by the top ``rank`` items), ``item_share`` (rank / n_items).
    """
    require_columns(interactions, [ITEM], "interactions")
    counts = interactions[ITEM].value_counts().to_numpy()
    return pd.DataFrame({
        "rank": np.arange(1, len(counts) + 1), "count": counts,
        "cum_share": np.cumsum(counts) / counts.sum(), "item_share": np.arange(1, len(counts) + 1) / len(counts),
    })  # fmt: skip


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of a popularity distribution: 0 = all items equally popular, -> 1 = one item takes all.

    G = sum_i (2i - n - 1) x_(i) / (n sum x), with x sorted ascending (i = 1..n).
    """
    x = np.sort(np.asarray(counts, dtype=float))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def funnel(events: pd.DataFrame) -> pd.DataFrame:
    """Events and users per funnel stage, with conversion from the previous stage and from views."""
    require_columns(events, [USER, "event"], "events")
    g = events.groupby("event")
    out = pd.DataFrame({"events": g.size(), "users": g[USER].nunique()}).reindex(list(EVENT_ORDER)).fillna(0).astype(int)
    out["from_previous"] = out["events"] / out["events"].shift(1)
    out["from_views"] = out["events"] / out["events"].iloc[0]
    out.index.name = "stage"
    return out


def interest_profile(events: pd.DataFrame, items: pd.DataFrame, by: str = "category",
                     min_event: str = "click") -> pd.DataFrame:  # fmt: skip
    """Users x ``by`` values: each user's share of (clicked or stronger) interactions per value."""
    require_columns(items, [ITEM, by], "items")
    ev = events[events["event"].isin(EVENT_ORDER[EVENT_ORDER.index(min_event) :])]
    ev = ev.merge(items[[ITEM, by]], on=ITEM, how="inner")
    table = pd.crosstab(ev[USER], ev[by])
    return table.div(table.sum(axis=1), axis=0)


def price_band(items: pd.DataFrame, by: str = "category", n_bands: int = 3) -> pd.Series:
    """Price band per item within its category (0 = cheapest third ... n_bands-1 = dearest)."""
    require_columns(items, ["price", by], "items")
    rank = items.groupby(by)["price"].rank(pct=True)
    return np.minimum((rank * n_bands).fillna(0).astype(int), n_bands - 1).rename("price_band")


def distinct_needs(events: pd.DataFrame, items: pd.DataFrame, min_share: float = 0.15,
                   min_events: int = 5) -> pd.DataFrame:  # fmt: skip
    """Per user with at least ``min_events`` clicks or more: how many distinct categories, styles
    and (category, price band) needs make up at least ``min_share`` of their interest."""
    items = items.assign(price_need=items["category"].astype(str) + "/" + price_band(items).astype(str))
    ev = events[events["event"].isin(EVENT_ORDER[1:])]
    active = ev[USER].value_counts()
    ev = ev[ev[USER].isin(active.index[active >= min_events])]
    out = {}
    for col in ("category", "style", "price_need"):
        prof = interest_profile(ev, items, by=col)
        out[{"category": "categories", "style": "styles", "price_need": "category_price_bands"}[col]] = (prof >= min_share).sum(axis=1)
    return pd.DataFrame(out)


def price_profile(events: pd.DataFrame, items: pd.DataFrame, event: str = "view", min_events: int = 8) -> pd.DataFrame:
    """Per user: where and how widely they browse on price, relative to each category's median.

    With ``x = log(price / median price of the item's category)`` over the user's ``event`` rows:
    ``price_level`` = mean x (above 0: browses dearer than typical, a higher budget) and
    ``price_spread`` = std x (small: a narrow price range, the mark of a price-sensitive shopper).
    Users with fewer than ``min_events`` such rows are left out.
    """
    require_columns(items, [ITEM, "price", "category"], "items")
    cat = items[items["price"] > 0]
    rel = np.log(cat["price"]) - np.log(cat.groupby("category")["price"].transform("median"))
    ev = events.loc[events["event"] == event, [USER, ITEM]].merge(cat[[ITEM]].assign(x=rel.to_numpy()), on=ITEM)
    stats = ev.groupby(USER)["x"].agg(["mean", "std", "size"])
    stats = stats[stats["size"] >= min_events]
    return stats.rename(columns={"mean": "price_level", "std": "price_spread", "size": "events"})


def session_stats(events: pd.DataFrame) -> pd.DataFrame:
    """One row per session: user, start, events, duration (s), purchased, start hour and weekday."""
    require_columns(events, [USER, TIMESTAMP, "session_id", "event"], "events")
    g = events.groupby("session_id")
    out = pd.DataFrame({
        USER: g[USER].first(), "start": g[TIMESTAMP].min(), "events": g.size(),
        "duration_s": g[TIMESTAMP].max() - g[TIMESTAMP].min(), "purchased": events["event"].eq("purchase").groupby(events["session_id"]).any(),
    })  # fmt: skip
    start = pd.to_datetime(out["start"], unit="s", utc=True)
    out["hour"], out["weekday"] = start.dt.hour, start.dt.day_name()
    return out


def activity(interactions: pd.DataFrame) -> pd.DataFrame:
    """Interactions per user and per item (two columns of describe()-style statistics)."""
    return pd.DataFrame({
        "per user": interactions.groupby(USER).size().describe(),
        "per item": interactions.groupby(ITEM).size().describe(),
    })  # fmt: skip
