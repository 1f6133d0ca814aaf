"""Data: real data sets (downloaded and verified), the simulated shop, cleaning, splits and sampling."""

from recsys_tf.data.amazon import load_s3rec, load_sasrec_games
from recsys_tf.data.download import fetch
from recsys_tf.data.movielens import load_movielens, load_movielens_folds
from recsys_tf.data.ncf import NCFData, load_ncf
from recsys_tf.data.reviews import clothing_items, load_clothing_reviews
from recsys_tf.data.schema import Dataset, validate_interactions

__all__ = [
    "Dataset", "NCFData", "clothing_items", "fetch", "load_clothing_reviews", "load_movielens", "load_movielens_folds", "load_ncf",
    "load_s3rec", "load_sasrec_games", "validate_interactions",
]  # fmt: skip
