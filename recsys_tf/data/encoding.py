"""Contiguous id encoding (raw ids -> 0..n-1, for embedding tables) with reverse maps.

Policy for unknown ids (ids not seen when the encoder was fitted), chosen per call:

* ``unknown="raise"`` (default): :class:`DataError` listing the unknown ids -- nothing is
  silently dropped or mapped to a wrong row;
* ``unknown="oov"``: map them to ``-1``, the "out of vocabulary" index, so the caller can route
  them to a cold-start path (popularity, content features) explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys_tf.data.schema import ITEM, USER, validate_interactions
from recsys_tf.errors import DataError
from recsys_tf.utils import atomic_write

OOV = -1


class IdEncoder:
    """Map raw ids to ``0..n-1`` in sorted order (deterministic) and back."""

    def __init__(self, name: str = "id") -> None:
        self.name = name
        self.classes_: np.ndarray | None = None
        self._index: pd.Index | None = None

    def fit(self, ids: np.ndarray | pd.Series | list) -> "IdEncoder":
        values = pd.Series(np.asarray(ids))
        if values.isna().any():
            raise DataError(f"cannot fit {self.name} encoder: {int(values.isna().sum()):,} missing (NaN) ids.")
        if len(values) == 0:
            raise DataError(f"cannot fit {self.name} encoder on an empty list of ids.")
        self.classes_ = np.sort(values.unique())
        self._index = pd.Index(self.classes_)
        return self

    @property
    def n(self) -> int:
        """Number of known ids (the embedding table's size)."""
        self._check_fitted()
        return len(self.classes_)

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise RuntimeError(f"the {self.name} encoder is not fitted: call fit() first.")

    def transform(self, ids: np.ndarray | pd.Series | list, unknown: Literal["raise", "oov"] = "raise",
                  advice: str | None = None) -> np.ndarray:  # fmt: skip
        """Raw ids -> contiguous int64 codes; see the module docstring for ``unknown``.

        ``advice`` replaces the default fix in the unknown-id message (callers that take no
        ``unknown`` argument say what their user should do instead).
        """
        self._check_fitted()
        if unknown not in ("raise", "oov"):
            raise ValueError(f"unknown must be 'raise' or 'oov', got {unknown!r}.")
        arr = np.asarray(ids)
        codes = self._index.get_indexer(arr) if len(arr) else np.zeros(0, np.int64)
        missing = codes < 0
        if missing.any() and unknown == "raise":
            bad = pd.unique(arr[missing])
            fix = advice or (f"Pass unknown='oov' to map them to {OOV} and handle them as cold start, or filter "
                             f"them out explicitly")  # fmt: skip
            raise DataError(
                f"{int(missing.sum()):,} {self.name}(s) unknown to the model, e.g. {bad[:5].tolist()}: they were not "
                f"in the training data. {fix}.{self._type_hint(bad)}"
            )
        return codes.astype(np.int64)

    def _type_hint(self, bad: np.ndarray) -> str:
        """' The ids are numbers but '42' is a string.' when the unknown ids are of another kind than the known ones."""

        def kind(v) -> str:
            return "string" if isinstance(v, str) else "number" if isinstance(v, (int, float, np.number)) else type(v).__name__

        known, given = self.classes_[0], bad[0]
        known = known.item() if isinstance(known, np.generic) else known
        given = given.item() if isinstance(given, np.generic) else given
        if kind(known) == kind(given):
            return ""
        cast = "int" if isinstance(known, int) else "float" if kind(known) == "number" else "str"
        return (f" The model's {self.name}s are {kind(known)}s (e.g. {known!r}) but {given!r} is a {kind(given)}: "
                f"convert it, e.g. {cast}({given!r}).")  # fmt: skip

    def inverse_transform(self, codes: np.ndarray | list) -> np.ndarray:
        """Contiguous codes -> raw ids; ``-1`` or out-of-range codes raise."""
        self._check_fitted()
        codes = np.asarray(codes, dtype=np.int64)
        bad = (codes < 0) | (codes >= self.n)
        if bad.any():
            raise DataError(f"{int(bad.sum()):,} code(s) outside 0..{self.n - 1}, e.g. {codes[bad][:5].tolist()}.")
        return self.classes_[codes]

    def to_dict(self) -> dict:
        self._check_fitted()
        return {"name": self.name, "classes": self.classes_.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> "IdEncoder":
        return cls(state["name"]).fit(state["classes"])


class InteractionEncoder:
    """User and item :class:`IdEncoder` fitted together on an interactions frame."""

    def __init__(self) -> None:
        self.users = IdEncoder(USER)
        self.items = IdEncoder(ITEM)

    def fit(self, df: pd.DataFrame, items: pd.DataFrame | None = None) -> "InteractionEncoder":
        """Fit on ``df``; if an item catalog is given, every catalog item gets a code (cold items too)."""
        validate_interactions(df)
        self.users.fit(df[USER])
        all_items = df[ITEM] if items is None else pd.concat([df[ITEM], items[ITEM]])
        self.items.fit(all_items)
        return self

    def transform(self, df: pd.DataFrame, unknown: Literal["raise", "oov"] = "raise") -> pd.DataFrame:
        """A copy of ``df`` with ``user_idx`` and ``item_idx`` columns added."""
        validate_interactions(df)
        return df.assign(user_idx=self.users.transform(df[USER], unknown),
                         item_idx=self.items.transform(df[ITEM], unknown))  # fmt: skip

    def fit_transform(self, df: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
        return self.fit(df, items).transform(df)

    def save(self, path: str | Path) -> None:
        atomic_write(path, json.dumps({"users": self.users.to_dict(), "items": self.items.to_dict()}, default=_jsonable))

    @classmethod
    def load(cls, path: str | Path) -> "InteractionEncoder":
        state = json.loads(Path(path).read_text())
        enc = cls()
        enc.users, enc.items = IdEncoder.from_dict(state["users"]), IdEncoder.from_dict(state["items"])
        return enc


def _jsonable(value):  # numpy scalars in class lists
    return value.item() if hasattr(value, "item") else str(value)
