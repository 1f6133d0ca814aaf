"""Recommenders with one API: ``fit``, ``score``, ``recommend``, ``evaluate``, ``save`` / ``load``.

Each class is imported when first asked for (PEP 562): ``from recsys_tf.models import Popularity``
or ``EASE`` costs no TensorFlow start-up (about 5 s), only the Keras models import Keras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# class -> the module that defines it (those of the Keras models import Keras quietly: models/nets.py, sequential.py, ctr.py)
_WHERE = {
    "SparkALS": "als", "Recommender": "base", "top_k": "base", "ContentKNN": "content", "EASE": "neighbors", "ItemKNN": "neighbors",
    "Popularity": "popularity", "HybridRecommender": "hybrid", "NMF": "mf", "MatrixFactorization": "mf", "SVDpp": "mf",
    "GMF": "ncf", "MLP": "ncf", "NeuMF": "ncf", "BERT4Rec": "sequential", "GRU4Rec": "sequential", "SASRec": "sequential",
    "SequentialRecommender": "sequential",
}  # fmt: skip
__all__ = sorted(_WHERE)

if TYPE_CHECKING:  # what type checkers and IDEs see
    from recsys_tf.models.als import SparkALS
    from recsys_tf.models.base import Recommender, top_k
    from recsys_tf.models.content import ContentKNN
    from recsys_tf.models.hybrid import HybridRecommender
    from recsys_tf.models.mf import NMF, MatrixFactorization, SVDpp
    from recsys_tf.models.ncf import GMF, MLP, NeuMF
    from recsys_tf.models.neighbors import EASE, ItemKNN
    from recsys_tf.models.popularity import Popularity
    from recsys_tf.models.sequential import BERT4Rec, GRU4Rec, SASRec, SequentialRecommender


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'recsys_tf.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"recsys_tf.models.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
