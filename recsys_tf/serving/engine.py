"""The serving engine: a loaded model plus the shoppers' events since its snapshot.

Every servable model is seen as an inner-product model ``s(u, i) = <x_u, y_i>``:

* factor models (:class:`~recsys_tf.models.MatrixFactorization`, NMF, SVD++,
  :class:`~recsys_tf.models.HybridRecommender`): ``y_i = [q_i, mu + b_i]``, ``x_u = [p_u, 1]`` (plus the
  constant ``b_u``), the model's own score;
* sequence models (SASRec, BERT4Rec, GRU4Rec): ``y_i`` the output item embedding, ``x_u`` the state of
  the shopper's session (training sequence + new events).

New events move ``x_u`` at once. For factor models the user vector is re-folded: with the events'
items ``E`` and their confidences ``w`` (view 0.1, click 1, cart 2, purchase 4, as
:func:`~recsys_tf.data.cleaning.to_implicit`),

    p = argmin_p  sum_{i in E} w_i (t - mu - b_u - b_i - <p, q_i>)^2          the new events
                + sum_{j in H} (<p_u, q_j> - <p, q_j>)^2                       the training items keep their scores
                + reg s |p - p_u|^2
      = (sum_E w_i q_i q_i' + sum_H q_j q_j' + reg s I)^-1 (sum_E w_i q_i (t - mu - b_u - b_i) + sum_H q_j q_j' p_u + reg s p_u)

-- the implicit-feedback fold-in of Hu, Koren & Volinsky (ICDM 2008), anchored at the trained vector
``p_u`` with the precision of the shopper's own training items ``H`` (each counts as a click), so
four events move a shopper with three clicks far more than one with three hundred. ``t`` is the
positive target: for implicit models the 90th percentile of the model's scores of its training pairs
(an event is a strong positive; with the logit 1 as target, a popular item's large bias would push
the shopper *away* from it), for explicit ones the top of the rating scale; ``s`` a
typical item's ``|q|^2`` (``reg`` is counted in items); a new shopper has ``p_u = 0`` and no ``H``.
A shopper with no events gets exactly the trained model's scores.
For sequence models the events extend the session, whose state is recomputed.

Candidates come from :class:`~recsys_tf.serving.retrieval.Retriever` (HNSW or exact), are scored
exactly, seen items removed, and optionally re-ranked by MMR (:func:`recsys_tf.rerank.mmr`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys_tf.data.cleaning import EVENT_WEIGHTS
from recsys_tf.errors import DataError
from recsys_tf.models.base import Recommender, check_k
from recsys_tf.serving.eventlog import START, Event
from recsys_tf.serving.retrieval import Kind, Retriever


def _np(weights) -> np.ndarray:
    from recsys_tf.models.nets import _np as to_numpy  # imports Keras: only once a model is served

    return to_numpy(weights)


class _FactorView:
    """``items`` (n x f+1) and a user's query vector for MF-like models (MF, NMF, SVD++, hybrid)."""

    def __init__(self, model, reg: float) -> None:
        net = model.net_
        self.reg = reg
        q = np.asarray(model.item_factors, dtype=np.float64)
        self.p = np.asarray(net._user_matrix(np.arange(model.n_users)) if hasattr(net, "_user_matrix") else _np(net.p.embeddings), dtype=np.float64)
        self.mu = float(getattr(net, "mu", 0.0))
        has_bias = getattr(net, "use_bias", True) and hasattr(net, "bi")
        self.bi = _np(net.bi.embeddings)[:, 0].astype(np.float64) if has_bias else np.zeros(len(q))
        self.bu = _np(net.bu.embeddings)[:, 0].astype(np.float64) if has_bias else np.zeros(len(self.p))
        self.q = q
        self.items = np.hstack([q, (self.mu + self.bi)[:, None]])
        self.scale = float(np.mean(np.sum(q**2, axis=1))) or 1.0  # a typical item's |q|^2: reg is counted in items
        explicit = getattr(model, "feedback", "implicit") == "explicit"
        scale = getattr(model, "rating_scale", None)
        if explicit:
            self.target = scale[1] if scale else 5.0
        else:  # an event is a strong positive: what the model scores its top tenth of training pairs
            keys = model.seen_[np.random.default_rng(0).permutation(len(model.seen_))[:100_000]]
            users, items = np.divmod(keys, model.n_items)
            scores = np.einsum("nf,nf->n", self.p[users], q[items]) + self.mu + self.bi[items] + self.bu[users]
            self.target = float(np.percentile(scores, 90)) if len(scores) else 1.0

    def query(self, user: int | None, codes: np.ndarray, weights: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, float]:
        """``(x, c)``: scores are ``items @ x + c``; ``history``: the shopper's training items (codes)."""
        p0 = self.p[user] if user is not None else np.zeros(self.q.shape[1])
        bu = float(self.bu[user]) if user is not None else 0.0
        if not len(codes):
            return np.append(p0, 1.0), bu
        # several events on one item add their confidences (one row of the fold-in per item)
        uniq, inv = np.unique(codes, return_inverse=True)
        w = np.bincount(inv, weights=weights)
        qe, qh = self.q[uniq], self.q[np.asarray(history, np.int64)]
        ridge = self.reg * self.scale
        a = (qe * w[:, None]).T @ qe + qh.T @ qh + ridge * np.eye(qe.shape[1])
        rhs = qe.T @ (w * (self.target - self.mu - bu - self.bi[uniq])) + qh.T @ (qh @ p0) + ridge * p0
        return np.append(np.linalg.solve(a, rhs), 1.0), bu


class _SequenceView:
    """``items`` = output embeddings; a user's query = the state of their session."""

    def __init__(self, model) -> None:
        self.model = model
        self.items = np.asarray(model.item_vectors, dtype=np.float64)
        seqs = model.sequences_
        self._offsets, self._codes = seqs.offsets, seqs.codes.astype(np.int64) - 1

    def query(self, user: int | None, codes: np.ndarray, weights: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, float]:
        trained = self._codes[self._offsets[user] : self._offsets[user + 1]] if user is not None else np.zeros(0, np.int64)
        session = np.concatenate([trained, np.asarray(codes, dtype=np.int64)])
        return self.model.session_state(session), 0.0


def view_of(model: Recommender, reg: float = 1.0):
    """The inner-product view of a model, or a clear error for models the service cannot fold events into."""
    from recsys_tf.models import HybridRecommender, MatrixFactorization, SequentialRecommender

    if isinstance(model, SequentialRecommender):
        return _SequenceView(model)
    if isinstance(model, (MatrixFactorization, HybridRecommender)):
        return _FactorView(model, reg)
    raise DataError(f"the service serves factor models (MatrixFactorization, NMF, SVDpp, HybridRecommender) and sequence "
                    f"models (SASRec, BERT4Rec, GRU4Rec); {type(model).__name__} has no user vector to update with "
                    f"events. Train one of those.")  # fmt: skip


@dataclass
class _Shopper:
    codes: list[int] = field(default_factory=list)  # item codes of the events since the snapshot, in order
    weights: list[float] = field(default_factory=list)
    query: tuple[np.ndarray, float] | None = None  # cached until the next event


class Engine:
    """A model ready to serve, plus the events applied since its snapshot (cursor ``cursor``).

    ``retrieval``: ``"hnsw"`` (approximate, faiss) or ``"exact"``; ``reg``: the fold-in's pull towards
    the trained user vector; ``event_weights``: confidence of each event type.
    """

    def __init__(self, model: Recommender, retrieval: Kind = "hnsw", reg: float = 1.0, max_k: int = 100,
                 event_weights: dict[str, float] | None = None, version: int = 1, source: str = "") -> None:  # fmt: skip
        model._check_fitted()
        self.model, self.version, self.source, self.max_k = model, version, source, max_k
        self.view = view_of(model, reg)
        self.retriever = Retriever(self.view.items, kind=retrieval)
        self.event_weights = dict(event_weights or EVENT_WEIGHTS)
        seen = model.seen_
        counts = np.bincount(seen % model.n_items, minlength=model.n_items).astype(np.float64)
        self.popular = np.argsort(-counts, kind="stable")
        self.popular_counts = counts[self.popular]
        self.shoppers: dict[Any, _Shopper] = {}
        self.cursor = self.snapshot = START  # applied up to / the model was trained up to
        self.n_events = self.skipped_events = 0
        user_ids = model.encoder_.users.classes_
        self._int_users = np.issubdtype(user_ids.dtype, np.integer)
        self._int_items = np.issubdtype(model.item_ids.dtype, np.integer)

    # --- ids ---------------------------------------------------------------------------------
    def user_key(self, user: Any) -> Any:
        """The id as the model's encoder stores it (``"42"`` becomes 42 when the model's user ids are numbers)."""
        return _typed(user, self._int_users, "user")

    def _user_code(self, key: Any) -> int | None:
        code = self.model.encoder_.users.transform([key], unknown="oov")[0]
        return int(code) if code >= 0 else None

    def item_codes(self, items: Sequence[Any]) -> np.ndarray:
        """Codes of raw item ids; unknown ids raise a :class:`DataError` that names them."""
        typed = [_typed(i, self._int_items, "item") for i in items]
        if not typed:
            return np.zeros(0, np.int64)
        codes = self.model.encoder_.items.transform(np.asarray(typed, dtype=np.int64 if self._int_items else object), unknown="oov")
        if (codes < 0).any():
            bad = [typed[j] for j in np.flatnonzero(codes < 0)[:5]]
            raise DataError(f"{int((codes < 0).sum())} unknown item id(s), e.g. {bad}: the model's catalog has "
                            f"{self.model.n_items:,} items (ids like {self.model.item_ids[:3].tolist()}).")  # fmt: skip
        return codes

    # --- events ------------------------------------------------------------------------------
    def check(self, events: Iterable[Event]) -> list[Event]:
        """Events with typed ids, every item known; raises a :class:`DataError` before anything is logged."""
        events = [Event(self.user_key(e.user), _typed(e.item, self._int_items, "item"), e.event, e.ts) for e in events]
        self.item_codes([e.item for e in events])
        return events

    def apply(self, events: Iterable[tuple[str, Event]]) -> int:
        """Apply logged ``(cursor, event)`` pairs; returns how many were applied.

        Events whose item this model does not know (logged for another model version) are counted
        in ``skipped_events`` and left out: the log keeps them.
        """
        n = 0
        for batch in _batches(events, 10_000):
            items = [_typed(e.item, self._int_items, "item") for _, e in batch]
            codes = self.model.encoder_.items.transform(np.asarray(items, dtype=np.int64 if self._int_items else object), unknown="oov")
            for (cursor, e), code in zip(batch, codes.tolist()):
                self.cursor = cursor
                if code < 0:
                    self.skipped_events += 1
                    continue
                shopper = self.shoppers.setdefault(self.user_key(e.user), _Shopper())
                shopper.codes.append(code)
                shopper.weights.append(self.event_weights.get(e.event, 1.0))
                shopper.query = None
                n += 1
        self.n_events += n
        return n

    def events_of(self, user: Any) -> list[Any]:
        """Item ids of the events applied for ``user`` since the snapshot, oldest first."""
        shopper = self.shoppers.get(self.user_key(user))
        return self.model.item_ids[shopper.codes].tolist() if shopper else []

    # --- recommending --------------------------------------------------------------------------
    def recommend(self, user: Any = None, k: int = 10, history: Sequence[Any] | None = None,
                  rerank: str | None = None, lam: float = 0.5) -> dict[str, Any]:  # fmt: skip
        """Top-``k`` for a shopper id (their training data + events) or an anonymous ``history`` of item ids.

        Returns ``items``, ``scores`` and ``strategy``: ``model`` (known shopper, no new events),
        ``model+events``, ``session`` (a shopper known only by events or a history), ``popularity``
        (nothing known: the most bought items).
        """
        k = check_k(k)
        if k > self.max_k:
            raise DataError(f"k={k} is above this service's limit of {self.max_k}.")
        if rerank not in (None, "none", "mmr"):
            raise DataError(f"rerank must be 'mmr' or 'none', got {rerank!r}.")
        if history is not None:
            codes = self.item_codes(list(history))
            if not len(codes):
                return self._popular(k)
            x, c = self.view.query(None, codes, np.ones(len(codes)), np.zeros(0, np.int64))
            return self._answer(x, c, codes, k, "session", rerank, lam)
        key = self.user_key(user)
        code = self._user_code(key)
        shopper = self.shoppers.get(key)
        if code is None and shopper is None:
            return self._popular(k)
        if shopper is None:
            shopper = _Shopper()
        trained = self._trained_items(code) if code is not None else np.zeros(0, np.int64)
        if shopper.query is None:
            shopper.query = self.view.query(code, np.asarray(shopper.codes, np.int64), np.asarray(shopper.weights), trained)
            if shopper.codes:  # cache only shoppers with events: the trained ones are cheap to recompute
                self.shoppers[key] = shopper
        seen = np.union1d(np.asarray(shopper.codes, np.int64), trained)
        strategy = "model" if not shopper.codes else ("model+events" if code is not None else "session")
        x, c = shopper.query
        return self._answer(x, c, seen, k, strategy, rerank, lam)

    def _trained_items(self, code: int) -> np.ndarray:
        return self.model._seen_cells(np.array([code]))[1]

    def _answer(self, x: np.ndarray, c: float, seen: np.ndarray, k: int, strategy: str, rerank: str | None, lam: float) -> dict[str, Any]:
        n = max(5 * k, 50) if rerank == "mmr" else k
        codes, scores = self.retriever.search(x, n, exclude=seen)
        scores = scores + c
        if rerank == "mmr" and len(codes):
            from recsys_tf.rerank import mmr

            vectors = self.view.items[:, :-1] if isinstance(self.view, _FactorView) else self.view.items
            pos = mmr(np.arange(len(codes))[None, :], scores[None, :], vectors[codes], k=k, lam=lam)[0]
            codes, scores = codes[pos], scores[pos]
        codes, scores = codes[:k], scores[:k]
        return {"items": self.model.item_ids[codes].tolist(), "scores": [round(float(s), 6) for s in scores], "strategy": strategy}

    def _popular(self, k: int) -> dict[str, Any]:
        """The most bought items; ``scores`` are their training counts."""
        return {"items": self.model.item_ids[self.popular[:k]].tolist(), "scores": self.popular_counts[:k].tolist(), "strategy": "popularity"}


def _batches(pairs: Iterable, size: int):
    """Lists of up to ``size`` items from ``pairs`` (the log is replayed a batch at a time)."""
    batch = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _typed(value: Any, integer: bool, what: str) -> Any:
    """A JSON or query-string id as the model stores it: a number for numeric ids, else a string."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict, float)):
        raise DataError(f"{what} id {value!r} must be a string or a whole number.")
    if integer:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise DataError(f"{what} id {value!r} is not a number, but this model's {what} ids are numbers.") from None
    return str(value)
