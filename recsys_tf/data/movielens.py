"""MovieLens 100K, 1M and latest-small (GroupLens), in the kit's schema.

GroupLens' terms forbid redistribution: the kit never ships these files, it downloads them from
GroupLens (or reads your local copy, see :mod:`recsys_tf.data.download`).

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context.
ACM TiiS 5(4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys_tf.data.download import fetch
from recsys_tf.data.readers import read_table
from recsys_tf.data.schema import ITEM, RATING, TIMESTAMP, USER, Dataset
from recsys_tf.errors import DataError

Variant = Literal["100k", "1m", "latest-small"]
GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]  # fmt: skip
_RATING_COLS = [USER, ITEM, RATING, TIMESTAMP]
WHOLE_STARS = np.arange(1.0, 6.0)
HALF_STARS = np.arange(0.5, 5.5, 0.5)
LATEST_HEADER = ["userId", "movieId", "rating", "timestamp"]


_ID_COLS = [USER, ITEM, TIMESTAMP]


def _typed_ratings(df: pd.DataFrame, path: str | Path, stars: np.ndarray, first_line: int = 1) -> pd.DataFrame:
    """Ratings as float32, each one of the data set's ``stars`` (a rating of 0 or 7 is a corrupt line)."""
    df = df.astype({USER: "int64", ITEM: "int64", RATING: "float32", TIMESTAMP: "int64"})
    bad = ~np.isin(df[RATING].to_numpy(), stars)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"{path}: line(s) {', '.join(str(r + first_line) for r in rows[:5])} have rating "
                        f"{df[RATING].iloc[rows[0]]:g}, not one of {stars.tolist()}.")  # fmt: skip
    return df


def read_ml100k_ratings(path: str | Path) -> pd.DataFrame:
    """``u.data`` / ``u1.base`` ...: ``user \\t item \\t rating \\t timestamp``, ratings 1-5."""
    df = read_table(path, "\t", _RATING_COLS, numeric=_RATING_COLS, integer=_ID_COLS)
    return _typed_ratings(df, path, WHOLE_STARS)


def read_ml1m_ratings(path: str | Path) -> pd.DataFrame:
    """``ratings.dat`` of ML-1M: ``UserID::MovieID::Rating::Timestamp``, ratings 1-5."""
    df = read_table(path, "::", _RATING_COLS, numeric=_RATING_COLS, integer=_ID_COLS)
    return _typed_ratings(df, path, WHOLE_STARS)


def read_ml_latest_ratings(path: str | Path) -> pd.DataFrame:
    """``ratings.csv`` of ml-latest(-small): header ``userId,movieId,rating,timestamp``, ratings 0.5-5."""
    df = read_table(path, ",", _RATING_COLS, numeric=_RATING_COLS, integer=_ID_COLS, header=LATEST_HEADER)
    return _typed_ratings(df, path, HALF_STARS, first_line=2)


def _split_genres(genres: pd.Series) -> pd.Series:
    return genres.fillna("").str.split("|").map(lambda g: [x for x in g if x and x != "(no genres listed)"])


def _load_100k() -> Dataset:
    ratings = read_ml100k_ratings(fetch("movielens-100k", "u.data"))
    cols = [ITEM, "title", "release_date", "video_release_date", "imdb_url", *GENRES_100K]
    raw = read_table(fetch("movielens-100k", "u.item"), "|", cols, numeric=[ITEM, *GENRES_100K],
                     integer=[ITEM], required=[ITEM, "title"], encoding="latin-1")  # fmt: skip
    flags = raw[GENRES_100K].to_numpy(dtype=bool)
    names = np.array(GENRES_100K, dtype=object)
    items = pd.DataFrame({
        ITEM: raw[ITEM].astype("int64"),
        "title": raw["title"],
        "categories": [list(names[row]) for row in flags],  # one list per movie (1,682), not per rating
        "release_date": pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce"),
    })  # fmt: skip
    users = read_table(fetch("movielens-100k", "u.user"), "|", [USER, "age", "gender", "occupation", "zip"],
                       numeric=[USER, "age"], integer=[USER, "age"])  # fmt: skip
    users = users.astype({USER: "int64", "age": "int64"})
    return Dataset("movielens-100k", ratings, items, users)


def _load_1m() -> Dataset:
    ratings = read_ml1m_ratings(fetch("movielens-1m", "ratings.dat"))
    items = read_table(fetch("movielens-1m", "movies.dat"), "::", [ITEM, "title", "genres"], numeric=[ITEM],
                       integer=[ITEM], encoding="latin-1")  # fmt: skip
    items = pd.DataFrame({ITEM: items[ITEM].astype("int64"), "title": items["title"],
                          "categories": _split_genres(items["genres"])})  # fmt: skip
    users = read_table(fetch("movielens-1m", "users.dat"), "::", [USER, "gender", "age", "occupation", "zip"],
                       numeric=[USER, "age", "occupation"], integer=[USER, "age", "occupation"])  # fmt: skip
    users = users.astype({USER: "int64", "age": "int64", "occupation": "int64"})
    return Dataset("movielens-1m", ratings, items, users)


def _load_latest_small() -> Dataset:
    ratings = read_ml_latest_ratings(fetch("movielens-latest-small", "ratings.csv"))
    movies = read_table(fetch("movielens-latest-small", "movies.csv"), ",", [ITEM, "title", "genres"],
                        numeric=[ITEM], integer=[ITEM], header=["movieId", "title", "genres"])  # fmt: skip
    tags = read_table(fetch("movielens-latest-small", "tags.csv"), ",", [USER, ITEM, "tag", TIMESTAMP],
                      numeric=[USER, ITEM, TIMESTAMP], integer=[USER, ITEM, TIMESTAMP],
                      header=["userId", "movieId", "tag", "timestamp"])  # fmt: skip
    tag_text = tags.astype({ITEM: "int64"}).groupby(ITEM)["tag"].agg(lambda t: ", ".join(sorted(set(t))))
    items = pd.DataFrame({ITEM: movies[ITEM].astype("int64"), "title": movies["title"],
                          "categories": _split_genres(movies["genres"])})  # fmt: skip
    items["text"] = items[ITEM].map(tag_text).fillna("")
    users = pd.DataFrame({USER: np.sort(ratings[USER].unique())})
    return Dataset("movielens-latest-small", ratings, items, users, extras={"tags": tags})


def load_movielens(variant: Variant = "100k") -> Dataset:
    """Load MovieLens ratings, movies (title, genres as ``categories``) and users.

    ``variant``: ``"100k"`` (943 users, 1,682 movies, 100,000 ratings), ``"1m"`` (6,040 users,
    3,706 rated movies, 1,000,209 ratings) or ``"latest-small"`` (610 users, 9,724 rated movies,
    100,836 half-star ratings, with tags as item ``text``).
    """
    loaders = {"100k": _load_100k, "1m": _load_1m, "latest-small": _load_latest_small}
    if variant not in loaders:
        raise ValueError(f"Unknown MovieLens variant {variant!r}; choose one of {list(loaders)}.")
    return loaders[variant]()


def load_movielens_folds(folds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The GroupLens 5-fold cross-validation splits of ML-100K (``u1.base``/``u1.test`` ... ``u5``).

    These disjoint 80/20 splits are the standard protocol for rating prediction (RMSE, MAE).
    """
    out = []
    for k in folds:
        if k not in range(1, 6):
            raise ValueError(f"ML-100K has folds 1..5, not {k}.")
        out.append((read_ml100k_ratings(fetch("movielens-100k", f"u{k}.base")),
                    read_ml100k_ratings(fetch("movielens-100k", f"u{k}.test"))))  # fmt: skip
    return out
