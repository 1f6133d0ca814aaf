"""The data pipeline as Spark DataFrame jobs, with the semantics of the pandas versions.

Each function mirrors one of :mod:`recsys_tf.data.cleaning`, :mod:`recsys_tf.data.split` and
:mod:`recsys_tf.data.sampling` and takes and returns Spark DataFrames in the kit's schema
(``user_id``, ``item_id``, ``event``, ``timestamp``, ``rating``...). The tests run both on the shop
and compare rows. Where Spark cannot know an order pandas keeps (rows have no position in Spark),
the function says which column breaks ties instead.

    spark = spark_session()                        # local[*]; or a master URL, or your session
    raw = from_pandas(spark, shop.events)
    events, report = clean_events(raw, from_pandas(spark, shop.catalog[["item_id"]]))
    implicit = to_implicit(events)
    split = leave_last_out(implicit)               # .train / .val / .test, Spark DataFrames
"""

from __future__ import annotations

import math
import shutil
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_tf.data.cleaning import EVENT_ALIASES, EVENT_ORDER, EVENT_WEIGHTS, CleaningReport
from recsys_tf.data.schema import ITEM, RATING, TIMESTAMP, USER
from recsys_tf.errors import DataError
from recsys_tf.spark.session import quiet_pandas_3, require_pyspark
from recsys_tf.utils import atomic_folder

DataFrame = Any  # pyspark.sql.DataFrame; pyspark is optional, so not imported at module level


def _F():
    require_pyspark()
    from pyspark.sql import functions as F

    return F


def _Window():
    from pyspark.sql import Window

    return Window


def from_pandas(spark, df: pd.DataFrame) -> DataFrame:
    """A pandas frame as a Spark DataFrame: nullable integers stay integers with nulls, NaN becomes null."""
    out = df.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if pd.api.types.is_float_dtype(dtype):
            out[col] = out[col].astype("Float64")  # NaN -> <NA> -> null in Spark
        elif pd.api.types.is_string_dtype(dtype) or dtype == object:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    with quiet_pandas_3():
        return spark.createDataFrame(out)


def to_pandas(sdf: DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Collect to pandas (nulls in float columns as NaN), sorted by ``order`` if given (nulls last, as pandas)."""
    if order:
        F = _F()
        sdf = sdf.orderBy(*[F.asc_nulls_last(c) for c in order])
    with quiet_pandas_3():
        out = sdf.toPandas()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col].dtype):
            out[col] = out[col].astype(np.float64)
    return out


_ROWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # DataFrame -> its row count, once counted


def _rows(sdf: DataFrame) -> int:
    """``sdf.count()``, remembered: in a chain of steps one step's result is the next one's input."""
    if sdf not in _ROWS:
        _ROWS[sdf] = sdf.count()
    return _ROWS[sdf]


def _count(report: CleaningReport | None, step: str, before: DataFrame, after: DataFrame, note: str = "") -> None:
    if report is not None:
        report.add(step, _rows(before), _rows(after), note)


def normalize_event_types(sdf: DataFrame, aliases: Mapping[str, str] = EVENT_ALIASES,
                          report: CleaningReport | None = None) -> DataFrame:  # fmt: skip
    """Map event spellings to view/click/cart/purchase; unknown spellings raise :class:`DataError`."""
    F = _F()
    key = F.lower(F.regexp_replace(F.col("event"), r"^\s+|\s+$", ""))  # str.strip(): all surrounding whitespace
    table = F.create_map(*[F.lit(x) for pair in dict(aliases).items() for x in pair])
    out = sdf.withColumn("_key", key).withColumn("_mapped", table[F.col("_key")])
    unknown = [r["_key"] for r in out.where(F.col("_mapped").isNull() & F.col("_key").isNotNull())
               .select("_key").distinct().orderBy("_key").limit(10).collect()]  # fmt: skip
    if unknown:
        raise DataError(f"events with unknown type(s) {unknown}; add them to the aliases (known: {sorted(set(aliases))}).")
    out = out.withColumn("event", F.col("_mapped")).drop("_key", "_mapped")
    _count(report, "normalize event types", sdf, out)
    return out


def fix_millisecond_timestamps(sdf: DataFrame, report: CleaningReport | None = None) -> DataFrame:
    """Divide by 1000 (integer division) the timestamps in milliseconds (after the year 2286 in seconds)."""
    F = _F()
    ts = F.col(TIMESTAMP).cast("long")
    out = sdf.withColumn(TIMESTAMP, F.when(ts > 10_000_000_000, F.floor(ts / 1000).cast("long")).otherwise(ts))
    _count(report, "fix millisecond timestamps", sdf, out)
    return out


def drop_duplicates(sdf: DataFrame, subset: list[str] | None = None, report: CleaningReport | None = None) -> DataFrame:
    """Drop exact repeats (nulls compare equal, as in pandas)."""
    out = sdf.dropDuplicates(subset) if subset else sdf.dropDuplicates()
    _count(report, "drop duplicate events", sdf, out, f"on {subset or 'all columns'}")
    return out


def drop_missing(sdf: DataFrame, columns: tuple[str, ...] = (USER, ITEM, TIMESTAMP),
                 report: CleaningReport | None = None) -> DataFrame:  # fmt: skip
    """Drop rows where any of ``columns`` is null."""
    out = sdf.dropna(subset=list(columns))
    _count(report, "drop rows with missing values", sdf, out)
    return out


def invalidate_ratings(sdf: DataFrame, low: float = 1.0, high: float = 5.0, report: CleaningReport | None = None) -> DataFrame:
    """Ratings outside ``[low, high]`` become null; the event stays."""
    F = _F()
    r = F.col(RATING).cast("double")
    out = sdf.withColumn(RATING, F.when((r < low) | (r > high), F.lit(None).cast("double")).otherwise(r))
    _count(report, "invalidate out-of-range ratings", sdf, out)
    return out


def drop_unknown_items(sdf: DataFrame, items: DataFrame, report: CleaningReport | None = None) -> DataFrame:
    """Drop events whose item is not in ``items`` (a frame with ``item_id``)."""
    out = sdf.join(items.select(ITEM).distinct(), on=ITEM, how="left_semi")
    _count(report, "drop events on unknown items", sdf, out)
    return out


def detect_bots(sdf: DataFrame, min_events: int = 200, max_median_gap_s: float = 5.0,
                max_purchase_rate: float = 0.01) -> DataFrame:  # fmt: skip
    """The ``user_id`` of crawlers: at least ``min_events`` events, a median gap between consecutive
    events under ``max_median_gap_s`` seconds (the exact median, as pandas), purchases at most
    ``max_purchase_rate`` of their events."""
    F, W = _F(), _Window()
    gap = F.col(TIMESTAMP) - F.lag(TIMESTAMP).over(W.partitionBy(USER).orderBy(TIMESTAMP))
    stats = (sdf.select(USER, TIMESTAMP, "event").withColumn("_gap", gap.cast("double")).groupBy(USER)
             .agg(F.count("*").alias("n"), F.percentile("_gap", 0.5).alias("gap"),
                  F.avg((F.col("event") == "purchase").cast("double")).alias("buy")))  # fmt: skip
    return stats.where((F.col("n") >= min_events) & (F.col("gap") < max_median_gap_s) & (F.col("buy") <= max_purchase_rate)).select(USER)


def drop_users(sdf: DataFrame, users: DataFrame, reason: str, report: CleaningReport | None = None) -> DataFrame:
    """Drop every event of the users in ``users`` (a frame with ``user_id``)."""
    out = sdf.join(users.select(USER), on=USER, how="left_anti")
    _count(report, f"drop {reason}", sdf, out)
    return out


def clean_events(events: DataFrame, items: DataFrame | None = None,
                 report: CleaningReport | None = None) -> tuple[DataFrame, CleaningReport]:  # fmt: skip
    """:func:`recsys_tf.data.cleaning.clean_events` on Spark: the same steps, the same rows.

    The result is cached (every step's count is a Spark job). Rows are not sorted: order them with
    ``orderBy`` where it matters (pandas returns them by time, then shopper).
    """
    report = report if report is not None else CleaningReport()
    ev = normalize_event_types(events, report=report)
    ev = fix_millisecond_timestamps(ev, report=report)
    ev = drop_duplicates(ev, report=report).cache()
    ev = drop_missing(ev, report=report)
    if RATING in ev.columns:
        ev = invalidate_ratings(ev, report=report)
    if items is not None:
        ev = drop_unknown_items(ev, items, report=report)
    ev = ev.cache()
    ev = drop_users(ev, detect_bots(ev), "bot-like users", report=report)
    return ev.cache(), report


def k_core(sdf: DataFrame, k_user: int = 5, k_item: int = 5, max_iter: int = 100) -> DataFrame:
    """Rows of users with >= ``k_user`` rows and items with >= ``k_item`` rows, repeated until stable."""
    F, W = _F(), _Window()
    out, n = sdf, sdf.count()
    for _ in range(max_iter):
        counted = (out.withColumn("_u", F.count("*").over(W.partitionBy(USER)))
                   .withColumn("_i", F.count("*").over(W.partitionBy(ITEM))))  # fmt: skip
        kept = counted.where((F.col("_u") >= k_user) & (F.col("_i") >= k_item)).drop("_u", "_i").localCheckpoint()
        n_kept = kept.count()
        if n_kept == n:
            return kept
        out, n = kept, n_kept
    return out


def to_implicit(events: DataFrame, weights: Mapping[str, float] | None = None, min_event: str = "click") -> DataFrame:
    """One row per (user, item): ``label`` 1.0 where the strongest event reaches ``min_event``,
    ``strength`` the summed event weights, ``timestamp`` the last event, ``last_event`` the strongest,
    ``rating`` the latest valid one (between equal times pandas takes the later row of its input,
    Spark either: rated purchases of one item in the same second do not occur in the shop)."""
    if min_event not in EVENT_ORDER:
        raise ValueError(f"min_event must be one of {EVENT_ORDER}, got {min_event!r}.")
    F = _F()
    weights = dict(weights or EVENT_WEIGHTS)
    level = F.create_map(*[F.lit(x) for i, e in enumerate(EVENT_ORDER) for x in (e, i)])[F.col("event")]
    weight = F.create_map(*[F.lit(x) for e, w in weights.items() for x in (e, float(w))])[F.col("event")]
    aggs = [F.max("_level").alias("_level"), F.sum(F.coalesce(weight, F.lit(0.0))).alias("strength"),
            F.max(TIMESTAMP).alias(TIMESTAMP)]  # fmt: skip
    if RATING in events.columns:
        rated = F.col(RATING).isNotNull()
        aggs.append(F.max_by(F.when(rated, F.col(RATING)), F.when(rated, F.col(TIMESTAMP))).alias(RATING))
    pairs = events.withColumn("_level", level).groupBy(USER, ITEM).agg(*aggs)
    pairs = pairs.where(F.col("_level") >= EVENT_ORDER.index(min_event))
    names = F.create_map(*[F.lit(x) for i, e in enumerate(EVENT_ORDER) for x in (i, e)])
    cols = [USER, ITEM, F.lit(1.0).cast("float").alias("label"), "strength", F.col(TIMESTAMP).cast("long").alias(TIMESTAMP),
            names[F.col("_level")].alias("last_event")] + ([RATING] if RATING in events.columns else [])  # fmt: skip
    return pairs.select(*cols)


@dataclass
class SparkSplit:
    """Train / validation / test Spark DataFrames (see :class:`recsys_tf.data.split.Split`)."""

    train: DataFrame
    val: DataFrame
    test: DataFrame
    strategy: str

    def to_pandas(self, order: list[str] | None = None):
        from recsys_tf.data.split import Split

        return Split(*(to_pandas(p, order) for p in (self.train, self.val, self.test)), strategy=self.strategy)


def leave_last_out(sdf: DataFrame, n_test: int = 1, n_val: int = 1, min_train: int = 1, tie: str = ITEM) -> SparkSplit:
    """Per user, the last ``n_test`` rows by time are test and the ``n_val`` before them validation;
    users with fewer than ``n_test + n_val + min_train`` rows stay in training.

    Equal times are ordered by ``tie`` (pandas keeps its input order; on :func:`to_implicit`'s
    output, sorted by user and item, that is the item order, so the default gives the same split).
    """
    F, W = _F(), _Window()
    by_user = W.partitionBy(USER)
    d = (sdf.withColumn("_pos", F.row_number().over(by_user.orderBy(F.col(TIMESTAMP).desc(), F.col(tie).desc())) - 1)
         .withColumn("_size", F.count("*").over(by_user)))  # fmt: skip
    eligible = F.col("_size") >= n_test + n_val + min_train
    test_m = eligible & (F.col("_pos") < n_test)
    val_m = eligible & (F.col("_pos") >= n_test) & (F.col("_pos") < n_test + n_val)
    d = d.withColumn("_part", F.when(test_m, 2).when(val_m, 1).otherwise(0)).drop("_pos", "_size").cache()
    parts = [d.where(F.col("_part") == p).drop("_part") for p in (0, 1, 2)]
    return SparkSplit(*parts, strategy="leave-last-out")


def _higher_quantile(sdf: DataFrame, q: float) -> int:
    """``np.quantile(timestamps, q, method="higher")``: the value at rank ceil(q * (n - 1)), exactly."""
    F, W = _F(), _Window()
    n = sdf.count()
    rank = math.ceil(q * (n - 1))
    counts = sdf.groupBy(TIMESTAMP).count()  # distinct times: far fewer rows than events
    cum = counts.withColumn("_cum", F.sum("count").over(W.orderBy(TIMESTAMP).rowsBetween(W.unboundedPreceding, 0)))
    return int(cum.where(F.col("_cum") > rank).agg(F.min(TIMESTAMP)).first()[0])


def temporal_split(sdf: DataFrame, test_size: float = 0.2, val_size: float = 0.1) -> SparkSplit:
    """Global time cuts at the ``1 - test_size`` and ``1 - test_size - val_size`` quantiles of time
    ("higher" rank, as the pandas version); ties at a cut stay together."""
    F = _F()
    if not (0 <= test_size < 1 and 0 <= val_size < 1 and test_size + val_size < 1):
        raise ValueError(f"test_size and val_size must be in [0, 1) and sum below 1; got {test_size}, {val_size}.")
    t_test = _higher_quantile(sdf, 1 - test_size) if test_size else None
    t_val = _higher_quantile(sdf, 1 - test_size - val_size) if val_size else t_test
    ts = F.col(TIMESTAMP)
    before_test = ts < t_test if t_test is not None else F.lit(True)
    train = sdf.where(ts < t_val) if t_val is not None else sdf
    val = sdf.where((ts >= t_val) & before_test) if t_val is not None else sdf.limit(0)
    test = sdf.where(ts >= t_test) if t_test is not None else sdf.limit(0)
    return SparkSplit(train, val, test, strategy="temporal")


def encode(sdf: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Add ``user_idx`` / ``item_idx`` (0..n-1 in sorted id order, as :class:`~recsys_tf.data.encoding.IdEncoder`);
    returns the coded frame and the two id tables (``user_id, user_idx`` and ``item_id, item_idx``)."""
    F, W = _F(), _Window()
    tables = []
    for col in (USER, ITEM):
        ids = sdf.select(col).distinct()
        tables.append(ids.withColumn(col.replace("_id", "_idx"), (F.row_number().over(W.orderBy(col)) - 1).cast("int")).cache())
    users, items = tables
    return sdf.join(F.broadcast(users), USER).join(F.broadcast(items), ITEM), users, items


def sample_negatives(codes: DataFrame, n_items: int, n_neg: int = 4, seed: int = 0) -> DataFrame:
    """``n_neg`` negatives per positive row of ``codes`` (``user_idx``, ``item_idx``): items drawn
    uniformly among those the user has no row with, repeats allowed (NCF training, as
    :func:`recsys_tf.data.sampling.sample_negatives`). One task per user group; each user's draws come
    from a generator seeded by ``(seed, user)``, so the result does not depend on the partitioning."""

    def draw(pdf: pd.DataFrame) -> pd.DataFrame:
        user = int(pdf["user_idx"].iloc[0])
        seen = np.unique(pdf["item_idx"].to_numpy(np.int64))
        if n_items - len(seen) < 1:
            raise DataError(f"user code {user} has interacted with every item: no negative to draw.")
        rng = np.random.default_rng([seed, user])
        # uniform over the unseen items, exactly: draw a rank among them and skip over the seen ones
        rank = rng.integers(0, n_items - len(seen), len(pdf) * n_neg)
        items = rank + np.searchsorted(seen - np.arange(len(seen)), rank, side="right")
        return pd.DataFrame({"user_idx": np.full(len(items), user, np.int32), "item_idx": items.astype(np.int32),
                             "label": np.zeros(len(items), np.float32)})  # fmt: skip

    schema = "user_idx int, item_idx int, label float"
    return codes.select("user_idx", "item_idx").groupBy("user_idx").applyInPandas(draw, schema=schema)


def write_shards(codes: DataFrame, users: DataFrame, items: DataFrame, folder, n_shards: int = 8):
    """Write coded training pairs (``user_idx``, ``item_idx``) as ``n_shards`` Parquet files plus the id
    tables of :func:`encode`: the folder :class:`recsys_tf.data.shards.TrainingShards` streams from.

    Built in a temporary sibling folder and renamed into place. On a cluster, ``folder`` must be on
    storage the driver sees (the rename and the id tables are the driver's work).
    """
    from recsys_tf.data.shards import write_id_tables

    F = _F()

    def fill(tmp: Path) -> None:
        out = tmp / "_spark"
        (codes.select(F.col("user_idx").cast("int"), F.col("item_idx").cast("int")).repartition(n_shards)
         .write.parquet(str(out)))  # fmt: skip
        for k, part in enumerate(sorted(out.glob("part-*.parquet"))):
            part.rename(tmp / f"part-{k:05d}.parquet")
        shutil.rmtree(out)  # Spark's _SUCCESS and checksum files
        write_id_tables(tmp, to_pandas(users, ["user_idx"])[USER].to_numpy(), to_pandas(items, ["item_idx"])[ITEM].to_numpy())

    return atomic_folder(folder, fill)
