"""Cleaning an interaction log, step by step, with a report of what each step changed.

Each function returns a new frame and never drops rows silently: :class:`CleaningReport`
records rows before and after every step (and why), and :func:`clean_events` chains the usual
steps for the simulated shop's raw log. All steps are vectorized pandas/NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from recsys_tf.data.schema import ITEM, RATING, TIMESTAMP, USER, check_ids, require_columns
from recsys_tf.errors import DataError

EVENT_ALIASES: dict[str, str] = {
    "view": "view", "viewed": "view", "impression": "view",
    "click": "click", "clicked": "click",
    "cart": "cart", "add_to_cart": "cart", "addtocart": "cart",
    "purchase": "purchase", "purchse": "purchase", "buy": "purchase", "order": "purchase",
}  # fmt: skip
EVENT_ORDER = ("view", "click", "cart", "purchase")
EVENT_WEIGHTS: dict[str, float] = {"view": 0.1, "click": 1.0, "cart": 2.0, "purchase": 4.0}  # confidence of each event


@dataclass
class CleaningReport:
    """Rows before/after each cleaning step, with the reason."""

    steps: list[dict] = field(default_factory=list)

    def add(self, step: str, before: int, after: int, note: str = "") -> None:
        self.steps.append({"step": step, "rows_before": before, "rows_after": after,
                           "removed": before - after, "note": note})  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.steps, columns=["step", "rows_before", "rows_after", "removed", "note"])

    def _repr_html_(self) -> str:  # pragma: no cover - Jupyter display
        return self.to_frame()._repr_html_()


def typed_ids(df: pd.DataFrame) -> pd.DataFrame:
    """``user_id`` / ``item_id`` as int64 when they are numbers, as strings otherwise -- never a lossy cast.

    Float ids with a fraction, ids beyond int64 and columns mixing numbers and strings are refused
    (:func:`~recsys_tf.data.schema.check_ids`): casting them would merge or corrupt shoppers.
    """
    types = {}
    for col in (USER, ITEM):
        if col in df:
            check_ids(df, col, "events")
            numeric = pd.api.types.is_numeric_dtype(df[col].dtype) and not pd.api.types.is_bool_dtype(df[col].dtype)
            types[col] = "int64" if numeric else "string"
    return df.astype(types)


def _report(report: CleaningReport | None, step: str, before: int, after: int, note: str = "") -> None:
    if report is not None:
        report.add(step, before, after, note)


def normalize_event_types(events: pd.DataFrame, aliases: Mapping[str, str] = EVENT_ALIASES,
                          report: CleaningReport | None = None) -> pd.DataFrame:  # fmt: skip
    """Map event spellings (``" View"``, ``"add_to_cart"``, ``"purchse"``) to view/click/cart/purchase.

    Unknown spellings raise :class:`DataError` listing them: extend ``aliases`` rather than lose rows.
    """
    require_columns(events, ["event"], "events")
    key = events["event"].astype("string").str.strip().str.lower()
    mapped = key.map(dict(aliases))
    unknown = mapped.isna() & key.notna()
    if unknown.any():
        raise DataError(
            f"{int(unknown.sum()):,} event(s) with unknown type(s) {sorted(key[unknown].unique())[:10]}; "
            f"add them to the aliases (known: {sorted(set(aliases))})."
        )
    changed = int((mapped != events["event"].astype("string")).fillna(True).sum())
    out = events.assign(event=mapped.astype(object))
    _report(report, "normalize event types", len(events), len(out), f"{changed:,} spellings fixed")
    return out


def drop_missing(events: pd.DataFrame, columns: Iterable[str] = (USER, ITEM, TIMESTAMP),
                 report: CleaningReport | None = None) -> pd.DataFrame:  # fmt: skip
    """Drop rows where any of ``columns`` is missing (an event without a user, item or time is unusable)."""
    columns = list(columns)
    require_columns(events, columns, "events")
    keep = events[columns].notna().all(axis=1)
    out = events.loc[keep].reset_index(drop=True)
    detail = ", ".join(f"{c}: {int(events[c].isna().sum()):,}" for c in columns)
    _report(report, "drop rows with missing values", len(events), len(out), detail)
    return out


def fix_millisecond_timestamps(events: pd.DataFrame, report: CleaningReport | None = None) -> pd.DataFrame:
    """Divide by 1000 the timestamps that are in milliseconds (after the year 2286 in seconds)."""
    require_columns(events, [TIMESTAMP], "events")
    ts = events[TIMESTAMP].astype("Int64")
    millis = (ts > 10_000_000_000).fillna(False)
    ts = ts.where(~millis, ts // 1000)
    out = events.assign(timestamp=ts)
    _report(report, "fix millisecond timestamps", len(events), len(out), f"{int(millis.sum()):,} fixed")
    return out


def drop_duplicates(events: pd.DataFrame, subset: list[str] | None = None,
                    report: CleaningReport | None = None) -> pd.DataFrame:  # fmt: skip
    """Drop exact repeats (a tracker that fired twice). ``subset`` defaults to all columns."""
    out = events.drop_duplicates(subset=subset, keep="first").reset_index(drop=True)
    _report(report, "drop duplicate events", len(events), len(out), f"on {subset or 'all columns'}")
    return out


def invalidate_ratings(events: pd.DataFrame, low: float = 1.0, high: float = 5.0,
                       report: CleaningReport | None = None) -> pd.DataFrame:  # fmt: skip
    """Set ratings outside ``[low, high]`` to NaN (the event stays; only the bad rating goes)."""
    require_columns(events, [RATING], "events")
    r = pd.to_numeric(events[RATING], errors="coerce")
    bad = r.notna() & ((r < low) | (r > high))
    out = events.assign(rating=r.where(~bad))
    _report(report, "invalidate out-of-range ratings", len(events), len(out), f"{int(bad.sum()):,} ratings set to NaN")
    return out


def drop_unknown_items(events: pd.DataFrame, items: pd.DataFrame,
                       report: CleaningReport | None = None) -> pd.DataFrame:  # fmt: skip
    """Drop events whose item id is not in the catalog (deleted products, tracking bugs)."""
    require_columns(items, [ITEM], "items")
    known = events[ITEM].isin(items[ITEM])
    out = events.loc[known].reset_index(drop=True)
    _report(report, "drop events on unknown items", len(events), len(out),
            f"{events.loc[~known, ITEM].nunique():,} unknown item ids")  # fmt: skip
    return out


def detect_bots(events: pd.DataFrame, min_events: int = 200, max_median_gap_s: float = 5.0,
                max_purchase_rate: float = 0.01) -> pd.Index:  # fmt: skip
    """User ids that behave like crawlers: many events, seconds apart, (almost) never buying.

    A user is a bot when they have at least ``min_events`` events, the median time between
    consecutive events is under ``max_median_gap_s`` seconds, and purchases are at most
    ``max_purchase_rate`` of their events. Humans browse in bursts too, but buy and pause.
    """
    require_columns(events, [USER, TIMESTAMP, "event"], "events")
    ev = events[[USER, TIMESTAMP, "event"]].sort_values([USER, TIMESTAMP], kind="stable")
    gap = ev[TIMESTAMP].diff().where(ev[USER].eq(ev[USER].shift()))
    stats = pd.DataFrame({
        "n": ev.groupby(USER).size(),
        "gap": gap.groupby(ev[USER]).median(),
        "buy": ev["event"].eq("purchase").groupby(ev[USER]).mean(),
    })  # fmt: skip
    bots = stats[(stats["n"] >= min_events) & (stats["gap"] < max_median_gap_s) & (stats["buy"] <= max_purchase_rate)]
    return bots.index


def drop_users(events: pd.DataFrame, users: Iterable, reason: str, report: CleaningReport | None = None) -> pd.DataFrame:
    """Drop every event of ``users`` (for example the ids returned by :func:`detect_bots`)."""
    users = pd.Index(users)
    out = events.loc[~events[USER].isin(users)].reset_index(drop=True)
    _report(report, f"drop {reason}", len(events), len(out), f"{len(users):,} users")
    return out


def price_outliers(items: pd.DataFrame, by: str = "category", factor: float = 3.0) -> pd.Series:
    """Boolean mask of prices far outside their category's range (or missing, or not positive).

    Uses the log-price interquartile range per ``by`` group: outside ``[Q1 - f*IQR, Q3 + f*IQR]``
    (Tukey's fences on the log scale, since prices are roughly log-normal).
    """
    require_columns(items, ["price", by], "items")
    price = pd.to_numeric(items["price"], errors="coerce")
    logp = np.log(price.where(price > 0))
    grp = logp.groupby(items[by])
    q1, q3 = grp.transform(lambda s: s.quantile(0.25)), grp.transform(lambda s: s.quantile(0.75))
    iqr = q3 - q1
    return (logp < q1 - factor * iqr) | (logp > q3 + factor * iqr) | logp.isna()


def k_core(df: pd.DataFrame, k_user: int = 5, k_item: int = 5, report: CleaningReport | None = None,
           max_iter: int = 100) -> pd.DataFrame:  # fmt: skip
    """Keep the largest sub-log where every user has >= ``k_user`` and every item >= ``k_item`` rows.

    Removing sparse items can push users below the threshold (and back), so it iterates until
    nothing changes -- the usual "k-core" filtering of recommendation papers.
    """
    require_columns(df, [USER, ITEM], "interactions")
    out = df
    for _ in range(max_iter):
        u_cnt = out[USER].map(out[USER].value_counts())
        i_cnt = out[ITEM].map(out[ITEM].value_counts())
        keep = (u_cnt >= k_user) & (i_cnt >= k_item)
        if keep.all():
            break
        out = out.loc[keep]
    out = out.reset_index(drop=True)
    _report(report, f"{k_user}/{k_item}-core filter", len(df), len(out),
            f"{df[USER].nunique() - out[USER].nunique():,} users and {df[ITEM].nunique() - out[ITEM].nunique():,} items removed")  # fmt: skip
    return out


def to_implicit(events: pd.DataFrame, weights: Mapping[str, float] | None = None,
                min_event: str = "click") -> pd.DataFrame:  # fmt: skip
    """Collapse an event log to one row per (user, item): implicit feedback.

    ``label`` is 1.0 for every pair whose strongest event is at least ``min_event`` in the funnel
    (view < click < cart < purchase); ``strength`` sums ``weights`` (default view 0.1, click 1,
    cart 2, purchase 4) as a confidence; ``timestamp`` is the pair's last event; ``rating`` the last
    valid rating if any.
    """
    require_columns(events, [USER, ITEM, TIMESTAMP, "event"], "events")
    if min_event not in EVENT_ORDER:
        raise ValueError(f"min_event must be one of {EVENT_ORDER}, got {min_event!r}.")
    weights = dict(weights or EVENT_WEIGHTS)
    level = events["event"].map({e: i for i, e in enumerate(EVENT_ORDER)})
    if level.isna().any():
        raise DataError(f"unknown event types {sorted(events.loc[level.isna(), 'event'].astype(str).unique())[:5]}: "
                        f"run normalize_event_types() first.")  # fmt: skip
    ev = events.assign(_level=level, _w=events["event"].map(weights).fillna(0.0))
    agg = {"_level": "max", "_w": "sum", TIMESTAMP: "max"}
    if RATING in ev.columns:
        agg[RATING] = "last"
        ev = ev.sort_values(TIMESTAMP, kind="stable")
    pairs = ev.groupby([USER, ITEM], sort=True).agg(agg).reset_index()
    pairs = pairs.loc[pairs["_level"] >= EVENT_ORDER.index(min_event)]
    out = pairs.rename(columns={"_w": "strength"}).assign(label=np.float32(1.0))
    out["last_event"] = np.array(EVENT_ORDER, dtype=object)[out.pop("_level").to_numpy(int)]
    cols = [USER, ITEM, "label", "strength", TIMESTAMP, "last_event"] + ([RATING] if RATING in out else [])
    return typed_ids(out[cols]).astype({TIMESTAMP: "int64"}).reset_index(drop=True)


def clean_events(events: pd.DataFrame, items: pd.DataFrame | None = None,
                 report: CleaningReport | None = None) -> tuple[pd.DataFrame, CleaningReport]:  # fmt: skip
    """The full cleaning pipeline for a raw shop log; returns the clean events and the report.

    Order matters: fix spellings and units first so that true duplicates compare equal, then drop
    duplicates, missing values, unknown items and bots.
    """
    report = report if report is not None else CleaningReport()
    ev = normalize_event_types(events, report=report)
    ev = fix_millisecond_timestamps(ev, report=report)
    ev = drop_duplicates(ev, report=report)
    ev = drop_missing(ev, report=report)
    ev = typed_ids(ev).astype({TIMESTAMP: "int64"})
    if RATING in ev.columns:
        ev = invalidate_ratings(ev, report=report)
    if items is not None:
        ev = drop_unknown_items(ev, items, report=report)
    ev = drop_users(ev, detect_bots(ev), "bot-like users", report=report)
    ev = ev.sort_values([TIMESTAMP, USER], kind="stable", ignore_index=True)
    return ev, report
