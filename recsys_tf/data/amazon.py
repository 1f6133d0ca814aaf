"""Amazon review data sets as preprocessed by SASRec (Games) and S3Rec (Beauty, Sports, Toys...).

Both formats keep each user's items in chronological order without timestamps, so
``timestamp`` holds the position in the sequence (``Dataset.time_unit == "sequence"``).
Derived from the Amazon review data of McAuley et al.: research use only, never redistributed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys_tf.data.download import fetch
from recsys_tf.data.readers import read_sequences, read_table, to_integers
from recsys_tf.data.schema import ITEM, LABEL, TIMESTAMP, USER, Dataset
from recsys_tf.errors import DataError

S3RecName = Literal["beauty", "sports", "toys", "yelp", "lastfm"]
_S3REC_FILES = {
    "beauty": ("s3rec-amazon-beauty", "Beauty"),
    "sports": ("s3rec-other", "Sports_and_Outdoors"),
    "toys": ("s3rec-other", "Toys_and_Games"),
    "yelp": ("s3rec-other", "Yelp"),
    "lastfm": ("s3rec-other", "LastFM"),
}


def _implicit(users: np.ndarray, items: np.ndarray, positions: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        USER: users.astype(np.int64),
        ITEM: items.astype(np.int64),
        LABEL: np.ones(len(users), dtype=np.float32),
        TIMESTAMP: positions.astype(np.int64),
    })  # fmt: skip


def load_sasrec_games() -> Dataset:
    """Amazon Video Games as in SASRec (Kang & McAuley, ICDM 2018): 31,013 users, 23,715 items, 287,107 actions."""
    raw = read_table(fetch("sasrec-amazon-games", "Video.txt"), " ", [USER, ITEM], numeric=[USER, ITEM], integer=[USER, ITEM])
    users, items = raw[USER].to_numpy(np.int64), raw[ITEM].to_numpy(np.int64)
    # Lines are grouped by user in chronological order: position = rank within the user's block.
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    positions = np.empty_like(users)
    positions[order] = np.arange(len(users)) - starts
    inter = _implicit(users, items, positions)
    item_frame = pd.DataFrame({ITEM: np.unique(items)})
    return Dataset("sasrec-amazon-games", inter, item_frame, pd.DataFrame({USER: np.unique(users)}), time_unit="sequence")


def read_attributes(path: str | Path) -> dict[str, list]:
    """An S3Rec ``*_item2attributes.json``: ``{"item id": [attribute ids]}``; anything else is a DataError."""
    try:
        with open(path, encoding="utf-8") as fh:
            attrs = json.load(fh)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); is the file corrupt or binary?") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from exc
    if not isinstance(attrs, dict) or not all(isinstance(v, list) for v in attrs.values()):
        raise DataError(f"{path}: expected a JSON object mapping item ids to lists of attribute ids, "
                        f"got {type(attrs).__name__}.")  # fmt: skip
    return attrs


def load_s3rec(name: S3RecName = "beauty") -> Dataset:
    """An S3Rec data set (Zhou et al., CIKM 2020): sequences plus item attribute ids.

    Items carry ``attributes`` (list of attribute ids: brand and categories for Amazon); Beauty
    also carries each item's Amazon ``asin`` and each user's ``asin`` (from GRAM's aligned file),
    the join keys for Amazon's metadata.
    """
    if name not in _S3REC_FILES:
        raise ValueError(f"Unknown S3Rec data set {name!r}; choose one of {list(_S3REC_FILES)}.")
    dataset, stem = _S3REC_FILES[name]
    path = fetch(dataset, f"{stem}.txt")
    seq = read_sequences(path)
    for col in ("user", "item"):
        # errors name the file's lines: index each token by its line (1-based) minus one
        tokens = pd.Series(seq[col].to_numpy(), index=seq["line"].to_numpy() - 1)
        seq[col] = to_integers(tokens, path, f"{col} id", "'user item item ...' with integer ids")
    inter = _implicit(seq["user"].to_numpy(), seq["item"].to_numpy(), seq["position"].to_numpy())
    attrs = read_attributes(fetch(dataset, f"{stem}_item2attributes.json"))
    items = pd.DataFrame({ITEM: np.unique(inter[ITEM].to_numpy())})
    items["attributes"] = items[ITEM].astype(str).map(attrs).map(lambda a: a if isinstance(a, list) else [])
    users = pd.DataFrame({USER: np.unique(inter[USER].to_numpy())})
    if name == "beauty":
        asin = read_sequences(fetch(dataset, "Beauty_user_sequence_asin.txt"))
        if len(asin) != len(seq):
            raise DataError("Beauty_user_sequence_asin.txt does not align with Beauty.txt (different lengths).")
        item_asin = pd.Series(asin["item"].to_numpy(), index=inter[ITEM].to_numpy())
        items["asin"] = items[ITEM].map(item_asin[~item_asin.index.duplicated()])
        user_asin = pd.Series(asin["user"].to_numpy(), index=inter[USER].to_numpy())
        users["asin"] = users[USER].map(user_asin[~user_asin.index.duplicated()])
    return Dataset(f"s3rec-{name}", inter, items, users, time_unit="sequence")
