"""Alternating least squares on Spark: ``pyspark.ml.recommendation.ALS`` behind the kit's API.

Explicit ratings (ALS-WR, Zhou et al., AAIM 2008), with Spark's regularisation weighted by each
user's and item's number of ratings:

    min_{P,Q}  sum_{(u,i) rated} (r_ui - p_u . q_i)^2 + reg * (sum_u n_u |p_u|^2 + sum_i n_i |q_i|^2)

Implicit feedback (Hu, Koren & Volinsky, ICDM 2008): every (user, item) cell is fitted, the
observed ones with confidence ``c_ui = 1 + alpha * r_ui``:

    min_{P,Q}  sum_{u,i} c_ui (x_ui - p_u . q_i)^2 + reg * (...),   x_ui = [r_ui > 0]

Training runs on Spark (``local[*]`` or the cluster of the session you pass); the factors are then
collected, so scoring, ``recommend``, evaluation and ``save``/``load`` need neither Spark nor Java.
With explicit ratings, an item without training ratings (in the catalog passed to ``fit``) is
predicted the mean training rating.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_tf.data.schema import RATING
from recsys_tf.errors import DataError
from recsys_tf.models.base import Recommender


class SparkALS(Recommender):
    """Spark ML's ALS. ``feedback="implicit"`` (default) weighs each pair by ``1 + alpha * value``,
    where the value is the ``confidence`` column if given (e.g. ``"strength"`` from ``to_implicit``)
    or 1; ``"explicit"`` regresses ``rating``. ``spark``: a SparkSession or master URL (default: the
    kit's ``local[*]`` session)."""

    name = "spark-als"

    def __init__(self, factors: int = 32, reg: float = 0.1, iterations: int = 15, feedback: Literal["implicit", "explicit"] = "implicit",
                 alpha: float = 1.0, confidence: str | None = None, nonnegative: bool = False, seed: int = 0,
                 spark: Any = None) -> None:  # fmt: skip
        super().__init__()
        if feedback not in ("implicit", "explicit"):
            raise ValueError(f"feedback must be 'implicit' or 'explicit', got {feedback!r}.")
        self.factors, self.reg, self.iterations, self.feedback = factors, reg, iterations, feedback
        self.alpha, self.confidence, self.nonnegative, self.seed, self.spark = alpha, confidence, nonnegative, seed, spark

    def _state(self) -> dict:
        return {"factors": self.factors, "reg": self.reg, "iterations": self.iterations, "feedback": self.feedback,
                "alpha": self.alpha, "confidence": self.confidence, "nonnegative": self.nonnegative, "seed": self.seed}  # fmt: skip

    def _fit(self, train: pd.DataFrame, **kwargs: Any) -> None:
        from pyspark.ml.recommendation import ALS

        from recsys_tf.spark.pipeline import from_pandas
        from recsys_tf.spark.session import checkpoint_dir, spark_session

        spark = spark_session(self.spark if self.spark is not None else "local[*]")
        checkpoint_dir(spark)  # bounds the lineage: many iterations would overflow the JVM stack
        if self.feedback == "explicit":
            value = train[RATING].to_numpy(np.float64)
        elif self.confidence is not None:
            if self.confidence not in train:
                raise DataError(f"confidence column {self.confidence!r} is not in train (columns: {list(train.columns)}).")
            value = train[self.confidence].to_numpy(np.float64)
        else:
            value = np.ones(len(train))
        frame = pd.DataFrame({"u": train["user_idx"].to_numpy(np.int32), "i": train["item_idx"].to_numpy(np.int32), "r": value})
        als = ALS(rank=self.factors, maxIter=self.iterations, regParam=self.reg, implicitPrefs=self.feedback == "implicit",
                  alpha=self.alpha, nonnegative=self.nonnegative, seed=self.seed, userCol="u", itemCol="i", ratingCol="r",
                  coldStartStrategy="nan", checkpointInterval=5)  # fmt: skip
        model = als.fit(from_pandas(spark, frame))
        self.user_factors_, self.user_known_ = self._collect(model.userFactors, self.n_users)
        self.item_factors_, self.item_known_ = self._collect(model.itemFactors, self.n_items)
        self.mean_ = np.float32(value.mean())

    def _collect(self, factors, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Spark's (id, features) rows as an ``n x factors`` array, and which ids it had (catalog
        items without training rows have none: zeros)."""
        from recsys_tf.spark.pipeline import to_pandas

        pdf = to_pandas(factors)
        out, known = np.zeros((n, self.factors), np.float32), np.zeros(n, bool)
        if len(pdf):
            out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
            known[pdf["id"].to_numpy()] = True
        return out, known

    def _score_codes(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        p = self.user_factors_[users]
        if items is None:
            scores = p @ self.item_factors_.T
            if self.feedback == "explicit":  # a rating for an item ALS never saw: the mean, not 0 stars
                scores[:, ~self.item_known_] = self.mean_
            return scores
        scores = np.einsum("nf,nf->n", p, self.item_factors_[items])
        if self.feedback == "explicit":
            scores[~self.item_known_[items]] = self.mean_
        return scores

    def _save_weights(self, folder: Path) -> None:
        np.save(folder / "user_factors.npy", self.user_factors_)
        np.save(folder / "item_factors.npy", self.item_factors_)
        np.save(folder / "item_known.npy", self.item_known_)
        np.save(folder / "mean.npy", np.array([self.mean_], np.float32))

    def _load_weights(self, folder: Path) -> None:
        self.user_factors_ = np.load(folder / "user_factors.npy", allow_pickle=False)
        self.item_factors_ = np.load(folder / "item_factors.npy", allow_pickle=False)
        self.item_known_ = np.load(folder / "item_known.npy", allow_pickle=False)
        self.mean_ = np.float32(np.load(folder / "mean.npy", allow_pickle=False)[0])
        if (self.user_factors_.shape != (self.n_users, self.factors) or self.item_factors_.shape != (self.n_items, self.factors)
                or self.item_known_.shape != (self.n_items,) or self.item_known_.dtype != bool):  # fmt: skip
            raise DataError(f"{folder}: the saved factors do not match the model's users, items and factors.")
