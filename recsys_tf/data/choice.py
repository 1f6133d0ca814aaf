"""Which data a notebook runs on: a named real data set when it is available, else the simulated shop.

Notebooks take a ``DATASET`` knob; :func:`implicit_data` turns it into interactions, items and a
description, validates it against the names it knows (an unknown one is an error that lists them),
and records a fallback (:func:`recsys_tf.results.record_fallback`) when a real data set is missing,
so the course summary says so instead of "ok".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsys_tf.errors import DataError, DataNotFoundError

IMPLICIT_DATASETS = ("movielens-100k", "movielens-latest-small", "movielens-1m", "shop")


@dataclass
class CourseData:
    """Interactions (``label`` 1.0 per pair), the item table, and where they came from."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    source: str
    dataset: str  # what was used: the requested name, or "shop" after a fallback
    fallback: str | None = None


def check_dataset(name: str, allowed: tuple[str, ...] = IMPLICIT_DATASETS) -> str:
    """``name`` if it is one of ``allowed``, else a :class:`DataError` that lists them."""
    if name not in allowed:
        raise DataError(f"DATASET = {name!r} is not one this notebook knows; use one of {list(allowed)}.")
    return name


def implicit_data(dataset: str, size: str = "small", seed: int = 0) -> CourseData:
    """Implicit-feedback interactions for ``dataset`` (see :data:`IMPLICIT_DATASETS`).

    MovieLens ratings become positives (every rating counts as an interaction, as in the NCF
    protocol); items carry ``categories`` (genres). When the MovieLens files are not available the
    simulated shop's clicks are used and the fallback is recorded and printed with the reason.
    """
    check_dataset(dataset)
    fallback = None
    if dataset != "shop":
        from recsys_tf.data.movielens import load_movielens

        try:
            ds = load_movielens(dataset.split("-", 1)[1])
            return CourseData(ds.interactions.assign(label=1.0), ds.items, ds.name, dataset)
        except DataNotFoundError as exc:
            fallback = f"{dataset} is not available here, so the simulated shop is used instead ({str(exc)[:160]}...)"
            from recsys_tf.results import record_fallback

            record_fallback(fallback)
    from recsys_tf.data.cleaning import clean_events, to_implicit
    from recsys_tf.data.shop import make_shop

    shop = make_shop(size, seed=seed)
    events, _ = clean_events(shop.events, shop.catalog)
    items = shop.catalog.assign(categories=shop.catalog["category"].map(lambda c: [c]))
    return CourseData(to_implicit(events, min_event="click"), items, f"the simulated shop ({size})", "shop", fallback)
