"""Recommenders with one API: ``fit``, ``score``, ``recommend``, ``evaluate``, ``save`` / ``load``."""

from recsys_tf.models.base import Recommender, top_k
from recsys_tf.models.mf import MatrixFactorization
from recsys_tf.models.popularity import Popularity

__all__ = ["MatrixFactorization", "Popularity", "Recommender", "top_k"]
