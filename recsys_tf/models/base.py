"""The API every recommender shares: ``fit``, ``score``, ``recommend``, ``evaluate``, ``save``/``load``.

Subclasses implement ``_fit(train_codes)`` and ``_score_codes(user_codes, item_codes=None)``
on contiguous indices; the base class does the id encoding, masking of seen items, top-k
selection in user batches, evaluation and persistence.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from recsys_tf.data.encoding import InteractionEncoder
from recsys_tf.data.sampling import pair_keys
from recsys_tf.data.schema import ITEM, LABEL, RATING, USER, numeric_values, validate_interactions
from recsys_tf.errors import DataError
from recsys_tf.metrics import Relevance, per_user_metric, ranking_metrics
from recsys_tf.utils import atomic_folder


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as an int >= 1, or a clear error (k=-3 would silently return all items but three)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {k!r}.")
    return int(k)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest scores per row, best first.

    Ties are broken by the lower index, both in the order and in *which* tied items enter the
    list at the boundary (a plain ``argpartition`` picks those arbitrarily). NaN ranks below every
    number, -inf included.
    """
    k = check_k(k)
    scores = np.asarray(scores)
    n, m = scores.shape
    k = min(k, m)
    if n == 0 or m == 0:
        return np.zeros((n, k), np.int64), np.zeros((n, k), scores.dtype if scores.dtype.kind == "f" else np.float64)
    key = np.where(np.isnan(scores), -np.inf, scores) if scores.dtype.kind == "f" else scores
    nan = np.isnan(scores) if scores.dtype.kind == "f" else np.zeros(scores.shape, bool)
    if k < m:
        kth = -np.partition(-key, k - 1, axis=1)[:, k - 1 : k]  # the k-th largest value of each row
        above = key > kth
        tied = (key == kth) & ~nan
        # fill up to k with the lowest-index ties, then (below even -inf) with the lowest-index NaNs
        take = above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(axis=1, keepdims=True)))
        take |= nan & (np.cumsum(nan, axis=1) <= k - take.sum(axis=1, keepdims=True))
        part = np.nonzero(take)[1].reshape(n, k)  # row-major: indices ascend within a row
    else:
        part = np.tile(np.arange(m), (n, 1))
    vals = np.take_along_axis(key, part, axis=1)
    nan_part = np.take_along_axis(nan, part, axis=1)
    order = np.lexsort((part, nan_part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1)


class Recommender(ABC):
    """Base class. ``fit(train)`` takes an interactions frame in the kit's schema."""

    name = "recommender"
    feedback = "implicit"  # every row is a positive; explicit models regress the rating column

    def __init__(self) -> None:
        self.encoder_: InteractionEncoder | None = None
        self.seen_: np.ndarray | None = None  # sorted user_code * n_items + item_code keys

    # --- fitting -------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None, **kwargs: Any) -> "Recommender":
        """Learn from ``train`` (``user_id``, ``item_id`` [, ``rating``/``label``]).

        ``items``: the full catalog, so that items without training events still get a code
        (scored from whatever the model knows: popularity 0, content features...).
        """
        validate_interactions(train, "train")
        self._check_values(train)
        self.encoder_ = InteractionEncoder().fit(train, items)
        codes = self.encoder_.transform(train)
        self.seen_ = pair_keys(codes["user_idx"].to_numpy(), codes["item_idx"].to_numpy(), self.n_items)
        self._fit(codes, **kwargs)
        return self

    def _check_values(self, train: pd.DataFrame) -> None:
        """Refuse values a model would silently mislearn from; say what implicit training does with the rest.

        Explicit feedback: ``rating`` must be numeric and finite. Implicit feedback uses every row as a
        positive, whatever its ``rating`` or ``label``: rows marked negative (label <= 0, rating < 0)
        would be learnt as liked, so they trigger a warning that names the filter to apply.
        """
        if self.feedback == "explicit":
            if RATING not in train:
                raise DataError(f"{type(self).__name__} with explicit feedback needs a 'rating' column in train; "
                                f"it has {list(train.columns)}.")  # fmt: skip
            numeric_values(train, RATING, "train")
            return
        for col, negative in ((LABEL, lambda v: v <= 0), (RATING, lambda v: v < 0)):
            if col in train:
                vals = numeric_values(train, col, "train", allow_nan=True)
                n_neg = int(np.sum(negative(vals[~np.isnan(vals)])))
                if n_neg:
                    warnings.warn(
                        f"{type(self).__name__} learns from implicit feedback: every training row is a positive. "
                        f"{n_neg:,} row(s) have {col} {'<= 0' if col == LABEL else '< 0'} and are counted as positives too; "
                        f"drop them first (train[train.{col} > 0]) if they mean 'not liked'.", stacklevel=3)  # fmt: skip

    @abstractmethod
    def _fit(self, train: pd.DataFrame, **kwargs: Any) -> None:
        """Learn from ``train`` with ``user_idx`` / ``item_idx`` code columns added."""

    @abstractmethod
    def _score_codes(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for user codes: users x all items when ``items`` is None, else one per (user, item) pair."""

    # --- encoding helpers ----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.encoder_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first.")

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return self.encoder_.users.n

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.encoder_.items.n

    @property
    def item_ids(self) -> np.ndarray:
        """Raw item ids in code order (column ``j`` of a full score matrix is ``item_ids[j]``)."""
        self._check_fitted()
        return self.encoder_.items.classes_

    # --- predicting ----------------------------------------------------------------------
    def score(self, users, items) -> np.ndarray:
        """Scores of (user, item) pairs given as two equally long arrays of raw ids."""
        self._check_fitted()
        u = self.encoder_.users.transform(np.atleast_1d(users))
        i = self.encoder_.items.transform(np.atleast_1d(items))
        if len(u) != len(i):
            raise ValueError(f"users and items must have the same length ({len(u)} != {len(i)}).")
        return self._score_codes(u, i)

    def recommend(self, users, k: int = 10, exclude_seen: bool = True, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` raw item ids and their scores for each user.

        ``users``: one raw user id (1-D results) or an array (``n x k`` results; an empty array gives
        ``0 x k``). Items the user interacted with in training are never returned unless
        ``exclude_seen=False``: a user with fewer than ``k`` unseen items gets fewer -- the 1-D
        result is shorter, and the ``n x k`` one is padded with ``None`` ids and NaN scores. Unknown
        users raise: route cold-start users to a content or popularity model explicitly.
        """
        self._check_fitted()
        k = check_k(k)
        scalar = np.ndim(users) == 0
        codes = self._user_codes(np.atleast_1d(users))
        idx, vals = self._top_k_codes(codes, k, exclude_seen, batch_size)
        missing = idx < 0
        if scalar:
            keep = ~missing[0]
            return self.item_ids[idx[0][keep]], vals[0][keep]
        ids = self.item_ids[np.maximum(idx, 0)] if self.n_items else np.empty(idx.shape, self.item_ids.dtype)
        if missing.any():
            ids = ids.astype(object)
            ids[missing], vals = None, np.where(missing, np.nan, vals)
        return ids, vals

    def _user_codes(self, users: np.ndarray) -> np.ndarray:
        """Codes of known users; an unknown one raises with what to do (and a type hint when the id's type is off)."""
        return self.encoder_.users.transform(
            users, advice="Route users the model never saw to a cold-start model (Popularity, or a content "
                          "model's recommend_for_history)")  # fmt: skip

    def _top_k_codes(self, user_codes: np.ndarray, k: int, exclude_seen: bool, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Item codes (``-1`` where a user has fewer than ``k`` items left after masking) and scores."""
        k = min(check_k(k), self.n_items)
        out_i, out_v = [np.zeros((0, k), np.int64)], [np.zeros((0, k))]
        n_nan = 0
        for start in range(0, len(user_codes), batch_size):
            batch = user_codes[start : start + batch_size]
            scores = np.asarray(self._score_codes(batch), dtype=np.float64)
            nan = np.isnan(scores)
            if nan.any():  # a diverged model: NaN ranks below every real score, never above
                n_nan += int(nan.sum())
                scores[nan] = -np.finfo(np.float64).max
            if exclude_seen:
                self._mask_seen(scores, batch)
            i, v = top_k(scores, k)
            i[v == -np.inf] = -1  # masked (seen) items are never returned
            v[v == -np.finfo(np.float64).max] = np.nan
            out_i.append(i)
            out_v.append(v)
        self._warn_nan(n_nan)
        return np.concatenate(out_i), np.concatenate(out_v)

    def _warn_nan(self, n_nan: int) -> None:
        """Say that a diverged model's NaN scores were ranked last (by both top-k paths)."""
        if n_nan:
            warnings.warn(f"{type(self).__name__} produced {n_nan:,} NaN scores (did training diverge? lower the "
                          f"learning rate); they rank last.", stacklevel=4)  # fmt: skip

    def _history_codes(self, histories) -> tuple[np.ndarray, np.ndarray]:
        """Item codes of several shoppers' histories (raw ids), flat, and each history's length."""
        self._check_fitted()
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        if not len(lengths) or (lengths == 0).any():
            raise DataError("every history needs at least one item; route shoppers with none to popularity.")
        return self.encoder_.items.transform(np.concatenate([np.asarray(h) for h in histories])), lengths

    def _per_item(self, values: pd.DataFrame | pd.Series, what: str):
        """``values`` (indexed by item id) in code order: a float32 matrix for a frame, the series otherwise.

        Every known item needs a complete row, and numbers must be finite: one inf feature would
        turn every score it touches into NaN.
        """
        got = values.reindex(self.item_ids)
        missing = got.isna().any(axis=1) if got.ndim == 2 else got.isna()
        if missing.any():
            raise DataError(f"{int(missing.sum())} item(s) have no (complete) {what}, e.g. "
                            f"{self.item_ids[missing.to_numpy()][:5].tolist()}; give every catalog item a row.")  # fmt: skip
        if got.ndim == 1:
            return got
        try:
            matrix = got.to_numpy(np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what} must be numbers; columns {list(got.columns[got.dtypes == object])[:5]} are not ({exc}).") from exc
        bad = ~np.isfinite(matrix)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            raise DataError(f"{what}: {int(bad.sum()):,} infinite or too large value(s) in {len(rows):,} item(s), e.g. "
                            f"{self.item_ids[rows][:5].tolist()}, column(s) {list(got.columns[bad.any(axis=0)])[:5]}.")  # fmt: skip
        return matrix

    def _seen_cells(self, user_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row in ``user_codes``, item code) of every training interaction of those users, vectorized."""
        lo = np.searchsorted(self.seen_, user_codes * self.n_items)
        hi = np.searchsorted(self.seen_, (user_codes + 1) * self.n_items)
        counts = hi - lo
        rows = np.repeat(np.arange(len(user_codes)), counts)
        # positions lo[r] .. hi[r]-1 of every row r, as one flat index
        flat = self.seen_[np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
        return rows, flat % self.n_items

    def _mask_seen(self, scores: np.ndarray, user_codes: np.ndarray) -> None:
        rows, items = self._seen_cells(user_codes)
        scores[rows, items] = -np.inf

    # --- evaluating ----------------------------------------------------------------------
    def evaluate(self, test: pd.DataFrame, k: int = 10, exclude_seen: bool = True,
                 per_user: bool = False, exclude: pd.DataFrame | None = None) -> dict[str, float] | pd.DataFrame:  # fmt: skip
        """Full-ranking top-``k`` metrics on ``test`` (all items ranked, training items masked).

        Test rows of users or items unknown to the model are counted in ``n_unknown_rows`` and
        left out (they need a cold-start model), never silently scored. ``per_user=True`` returns
        one row per evaluated user (indexed by raw user id) instead of the means: the input of
        confidence intervals and paired tests (:mod:`recsys_tf.metrics`). ``exclude``: more
        (user, item) pairs to mask besides the training ones -- the validation interactions, when
        a test ranks "all items the user has not interacted with" (RecBole's full ranking).
        """
        self._check_fitted()
        k = check_k(k)
        validate_interactions(test, "test")
        u = self.encoder_.users.transform(test[USER], unknown="oov")
        i = self.encoder_.items.transform(test[ITEM], unknown="oov")
        known = (u >= 0) & (i >= 0)
        users = np.unique(u[known])
        if not len(users):
            raise DataError("no test row has a user and item known to the model: nothing to evaluate.")
        rows = np.searchsorted(users, u[known])
        rel = Relevance.from_pairs(rows, i[known], len(users), self.n_items)
        seen = self.seen_
        if exclude is not None and exclude_seen:
            validate_interactions(exclude, "exclude")
            codes = self.encoder_.transform(exclude, unknown="oov")
            ok = (codes["user_idx"].to_numpy() >= 0) & (codes["item_idx"].to_numpy() >= 0)
            extra = pair_keys(codes["user_idx"].to_numpy()[ok], codes["item_idx"].to_numpy()[ok], self.n_items)
            self.seen_ = np.union1d(seen, extra)  # sorted, as _seen_cells needs
        try:
            idx, _ = self._top_k_codes(users, k, exclude_seen)
        finally:
            self.seen_ = seen
        if per_user:
            names = ("precision", "recall", "hit_rate", "ndcg", "map", "mrr")
            return pd.DataFrame({f"{m}@{k}": per_user_metric(idx, rel, m, k) for m in names},
                                index=pd.Index(self.encoder_.users.inverse_transform(users), name=USER))  # fmt: skip
        metrics = ranking_metrics(idx, rel, k=k)
        metrics["n_unknown_rows"] = int((~known).sum())
        return metrics

    # --- persistence ---------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """Hyper-parameters to store (JSON)."""
        return {}

    def _save_weights(self, folder: Path) -> None:
        pass

    def _load_weights(self, folder: Path) -> None:
        pass

    def save(self, path: str | Path) -> Path:
        """Save to a folder, atomically: ``model.json`` (class, hyper-parameters), ``encoder.json``,
        ``seen.npy``, the weights (a ``.keras`` file for Keras models) and ``manifest.json`` (each
        file's sha256).

        Everything is written into a temporary sibling folder first and renamed into place only
        once complete, so a failing save (full disk, read-only file) leaves the previous model at
        ``path`` untouched and loadable, and a reader never sees half of each.
        """
        self._check_fitted()
        return save_folder(Path(path), self._write_files)

    def _write_files(self, folder: Path) -> None:
        (folder / "model.json").write_text(json.dumps({"class": type(self).__name__, "params": self._state()}, indent=2))
        self.encoder_.save(folder / "encoder.json")
        np.save(folder / "seen.npy", self.seen_)
        self._save_weights(folder)

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Load a model saved with :meth:`save` (the class is read from ``model.json``).

        Every file is checked against the manifest's sha256 before it is parsed, so a flipped
        byte, a truncated weights file or an emptied ``seen.npy`` is reported as a damaged model.
        ``EASE.load`` refuses a folder holding another class; ``Recommender.load`` takes any.
        Nothing in the folder can run code (no pickles; Keras' safe mode stays on).
        """
        with verified_copy(Path(path)) as folder:
            from recsys_tf import models

            meta = _read_json(folder / "model.json", path)
            klass = getattr(models, str(meta.get("class")), None)
            if not (isinstance(klass, type) and issubclass(klass, Recommender)):
                raise DataError(f"{path}: model.json names class {meta.get('class')!r}, which is not a recsys_tf model.")
            if not issubclass(klass, cls):
                raise DataError(f"{path} holds a {klass.__name__}, not a {cls.__name__}: use {klass.__name__}.load "
                                f"or Recommender.load.")  # fmt: skip
            try:
                model = klass(**meta.get("params", {}))
                model.encoder_ = InteractionEncoder.load(folder / "encoder.json")
                model.seen_ = np.load(folder / "seen.npy", allow_pickle=False)
                model._load_weights(folder)
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"{path}: damaged saved model ({type(exc).__name__}: {exc}); save it again.") from exc
            return model


MANIFEST = "manifest.json"


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _save_in_progress(folder: Path) -> bool:
    """A save's temporary or old sibling (``.<name>.*``) exists: the folder may be mid-swap."""
    return any(folder.parent.glob(f".{folder.name}.*"))


def _read_json(file: Path, shown: str | Path) -> dict:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{shown}: damaged saved model ({file.name} is not valid JSON: {exc}).") from exc
    if not isinstance(value, dict):
        raise DataError(f"{shown}: damaged saved model ({file.name} is not a JSON object).")
    return value


def save_folder(folder: Path, write: Any) -> Path:
    """Run ``write(tmp)`` in a temporary sibling of ``folder``, add a manifest, then swap it into place
    (:func:`~recsys_tf.utils.atomic_folder`: on any failure the previous folder stays as it was)."""
    folder = folder.absolute()
    if folder.exists() and not (folder.is_dir() and (not any(folder.iterdir()) or (folder / "model.json").exists())):
        raise DataError(f"{folder} exists and is not a saved recsys_tf model: choose another path, so nothing "
                        f"else is overwritten.")  # fmt: skip

    def write_with_manifest(tmp: Path) -> None:
        write(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {"format": 1, "files": {str(p.relative_to(tmp)): _sha256_bytes(p.read_bytes()) for p in files}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))

    return atomic_folder(folder, write_with_manifest, suffix=".saving")


class _Torn(Exception):
    """The folder changed while it was read (a save in progress): read it again.

    ``final``: if it persists, the message is the whole story (not "damaged saved model (...)").
    """

    def __init__(self, message: str = "", final: bool = False) -> None:
        super().__init__(message)
        self.final = final


def _copy_verified(folder: Path, into: Path) -> None:
    manifest_file = folder / MANIFEST
    if not manifest_file.exists():
        if (folder / "model.json").exists():
            raise _Torn(f"{folder} has no manifest.json (saved by an older recsys_tf, or damaged): its files "
                        f"cannot be checked. Load it with that version and save it again.", final=True)  # fmt: skip
        if _save_in_progress(folder):
            raise _Torn("the folder is being replaced by a save")
        raise FileNotFoundError(f"{folder} is not a saved recsys_tf model (no model.json).")
    try:
        manifest = json.loads(manifest_file.read_bytes())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _Torn(f"manifest.json unreadable ({exc})") from exc
    for name, digest in files.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"{folder}: manifest.json names a file outside the folder ({name!r}).")
        try:
            data = (folder / name).read_bytes()
        except FileNotFoundError as exc:
            raise _Torn(f"{name} is missing") from exc
        if _sha256_bytes(data) != digest:
            raise _Torn(f"{name} does not match its sha256 in manifest.json")
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@contextmanager
def verified_copy(folder: Path, tries: int = 40) -> Iterator[Path]:
    """A private copy of a saved folder whose every file matched the manifest, removed afterwards.

    A save swapping the folder meanwhile shows up as a mismatch; the read is then retried for up
    to two seconds, and a mismatch that persists with no save in progress is a damaged model.
    """
    last: _Torn | None = None
    for attempt in range(tries):
        tmp = Path(tempfile.mkdtemp(prefix="recsys_tf_load_"))
        try:
            _copy_verified(folder, tmp)
        except _Torn as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            last = exc
            if attempt >= 2 and not _save_in_progress(folder):
                break
            time.sleep(0.05)
            continue
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if last is not None and last.final:
        raise DataError(str(last))
    raise DataError(f"{folder}: damaged saved model ({last}); restore it or save it again.")
