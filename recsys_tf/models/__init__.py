"""Recommenders with one API: ``fit``, ``score``, ``recommend``, ``evaluate``, ``save`` / ``load``."""

from recsys_tf.models.base import Recommender, top_k
from recsys_tf.models.mf import NMF, MatrixFactorization
from recsys_tf.models.ncf import GMF, MLP, NeuMF
from recsys_tf.models.neighbors import EASE, ItemKNN
from recsys_tf.models.popularity import Popularity

__all__ = ["EASE", "GMF", "ItemKNN", "MLP", "NMF", "MatrixFactorization", "NeuMF", "Popularity", "Recommender", "top_k"]
