"""A model to serve out of the box: trained on the simulated shop's clicks and saved (``recsys-tf demo-model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from recsys_tf.models.base import Recommender


def train_demo_model(out: str | Path, kind: Literal["mf", "sasrec"] = "mf", size: str = "small", seed: int = 0,
                     epochs: int | None = None) -> Recommender:  # fmt: skip
    """Train on every click of the shop ``size`` (``tiny`` / ``small`` / ``large``) and save to ``out``.

    ``mf``: implicit matrix factorization (log loss, 4 sampled negatives per click, 32 factors);
    ``sasrec``: SASRec with full cross-entropy over the click sequences. The whole log is used: the
    event log of the service starts where this model ends (cursor ``0``).
    """
    from recsys_tf.data.cleaning import clean_events, to_implicit
    from recsys_tf.data.shop import make_shop
    from recsys_tf.models import MatrixFactorization, SASRec

    shop = make_shop(size, seed=seed)
    events, _ = clean_events(shop.events, shop.catalog)
    clicks = to_implicit(events, min_event="click")
    if kind == "mf":
        model = MatrixFactorization(factors=32, loss="bce", epochs=epochs or 10, seed=seed, verbose=False)
    elif kind == "sasrec":
        model = SASRec(loss="ce", maxlen=30, dim=64, batch_size=64, learning_rate=2e-3, epochs=epochs or 20, seed=seed, verbose=False)
    else:
        raise ValueError(f"kind must be 'mf' or 'sasrec', got {kind!r}.")
    model.fit(clicks, shop.catalog[["item_id"]].dropna())
    model.save(out)
    return model
