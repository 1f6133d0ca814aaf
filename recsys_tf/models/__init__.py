"""Recommenders with one API: ``fit``, ``score``, ``recommend``, ``evaluate``, ``save`` / ``load``."""

from recsys_tf.utils import import_keras_quietly

import_keras_quietly()  # before the model modules import Keras: keeps TensorFlow's start-up lines out of notebooks

from recsys_tf.models.als import SparkALS  # noqa: E402
from recsys_tf.models.base import Recommender, top_k  # noqa: E402
from recsys_tf.models.content import ContentKNN  # noqa: E402
from recsys_tf.models.hybrid import HybridRecommender  # noqa: E402
from recsys_tf.models.mf import NMF, MatrixFactorization, SVDpp  # noqa: E402
from recsys_tf.models.ncf import GMF, MLP, NeuMF  # noqa: E402
from recsys_tf.models.neighbors import EASE, ItemKNN  # noqa: E402
from recsys_tf.models.popularity import Popularity  # noqa: E402
from recsys_tf.models.sequential import BERT4Rec, GRU4Rec, SASRec, SequentialRecommender  # noqa: E402

__all__ = ["BERT4Rec", "GRU4Rec", "SASRec", "SequentialRecommender", "EASE", "ContentKNN", "GMF", "HybridRecommender", "ItemKNN", "MLP", "NMF", "MatrixFactorization", "NeuMF", "Popularity", "Recommender", "SVDpp", "SparkALS", "top_k"]
