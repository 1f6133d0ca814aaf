"""Spark ALS beside the kit's models: the experiments ``make reproduce`` runs (``--only als``).

* ``als_ml100k``: MovieLens 100K under the three protocols of ``docs/RESULTS.md`` -- explicit ratings
  on the u1-u5 folds (RMSE), the NCF protocol (99 sampled negatives) and full ranking (RecBole's
  leave-one-out) -- each setting chosen on validation, mean ± sd over seeds (ALS's initialisation).
* ``als_large_shop``: the large shop (100k shoppers, 20k products), ALS against the kit's MF, full
  ranking, with the time of every stage.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

IMPLICIT_GRID = {"alpha": [0.25, 1.0, 4.0, 16.0], "reg": [0.01, 0.1, 1.0, 10.0]}
EXPLICIT_GRID = {"factors": [10, 50], "reg": [0.05, 0.1, 0.2]}
ITERATIONS = 15


def _als(spark, seed: int = 0, **kw):
    from recsys_tf.models import SparkALS

    return SparkALS(iterations=ITERATIONS, seed=seed, spark=spark, **kw)


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and its wall time in seconds."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 2)


def als_ml100k(seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    from recsys_tf.data import load_movielens, load_movielens_folds
    from recsys_tf.data.split import leave_last_out
    from recsys_tf.evaluation import ncf_split
    from recsys_tf.metrics import mae, rmse
    from recsys_tf.reproduce import (
        _grid,
        _sampled,
        _validation_split,
        carve_validation,
        over_seeds,
        spread,
    )
    from recsys_tf.spark import spark_session

    spark = spark_session()
    out: dict[str, Any] = {"data": "MovieLens 100K", "seeds": list(seeds), "iterations": ITERATIONS,
                           "spark": spark.version, "master": spark.sparkContext.master}  # fmt: skip

    # 1. explicit ratings, u1-u5
    folds, items = load_movielens_folds(), load_movielens("100k").items
    fit_part, val = carve_validation(folds[0][0])
    table = []
    for point in _grid(EXPLICIT_GRID):
        pred = _als(spark, feedback="explicit", **point).fit(fit_part, items).score(val.user_id.to_numpy(), val.item_id.to_numpy())
        table.append({**point, "val_rmse": rmse(val.rating, np.clip(pred, 1, 5))})
        print(f"    explicit {point}: validation RMSE {table[-1]['val_rmse']:.4f}", flush=True)
    chosen = min(table, key=lambda r: r["val_rmse"])
    settings = {k: chosen[k] for k in EXPLICIT_GRID}
    per_rmse, per_mae, secs = [], [], []
    for seed in seeds:
        r, m, s = [], [], 0.0
        for train, test in folds:
            model, t = _timed(_als(spark, seed, feedback="explicit", **settings).fit, train, items)
            pred = np.clip(model.score(test.user_id.to_numpy(), test.item_id.to_numpy()), 1, 5)
            r.append(rmse(test.rating, pred))
            m.append(mae(test.rating, pred))
            s += t
        per_rmse.append(float(np.mean(r)))
        per_mae.append(float(np.mean(m)))
        secs.append(s)
        print(f"  explicit ALS seed {seed}: RMSE {per_rmse[-1]:.4f}", flush=True)
    out["explicit"] = {"protocol": "GroupLens u1-u5 folds, predictions clipped to 1-5; factors and reg chosen on a 10% "
                                   "validation carve-out of u1.base", "settings": settings, "validation": table,
                       "rmse": spread(per_rmse), "mae": spread(per_mae), "seconds_per_5_folds": spread(secs)}  # fmt: skip

    # 2. the NCF protocol (99 sampled negatives) and 3. full ranking: implicit ALS, alpha and reg on validation
    df = load_movielens("100k").interactions.assign(label=1.0)
    runs, choices = [], []
    for seed in seeds:
        cs = ncf_split(df, n_neg=99, n_val=1, seed=seed)
        vs = _validation_split(cs, seed=seed + 100)
        on_val = {tuple(p.values()): _sampled(_als(spark, seed, factors=32, **p).fit(vs.train), vs)["ndcg"] for p in _grid(IMPLICIT_GRID)}
        alpha, reg = max(on_val, key=on_val.get)
        model, t = _timed(_als(spark, seed, factors=32, alpha=alpha, reg=reg).fit, cs.train)
        runs.append({"iALS on Spark (32 factors)": {**_sampled(model, cs), "alpha": alpha, "reg": reg, "seconds": t}})
        choices.append({f"{a:g},{r:g}": v for (a, r), v in on_val.items()})
        print(f"  NCF protocol ALS seed {seed}: HR@10 {runs[-1]['iALS on Spark (32 factors)']['hr']:.4f} (alpha {alpha:g}, reg {reg:g})", flush=True)
    out["ncf"] = {"protocol": "as the NCF section (99 negatives; validation = each user's latest training item)",
                  "rows": over_seeds(runs), "validation_ndcg": choices}  # fmt: skip

    split = leave_last_out(df, n_test=1, n_val=1, min_train=1)
    on_val = {tuple(p.values()): _als(spark, 0, factors=64, **p).fit(split.train).evaluate(split.val, k=10)["ndcg@10"]
              for p in _grid(IMPLICIT_GRID)}  # fmt: skip
    alpha, reg = max(on_val, key=on_val.get)
    runs = []
    for seed in seeds:
        model, t = _timed(_als(spark, seed, factors=64, alpha=alpha, reg=reg).fit, split.train)
        m = model.evaluate(split.test, k=10, exclude=split.val)
        runs.append({"iALS on Spark (64 factors)": {"hr": m["hit_rate@10"], "ndcg": m["ndcg@10"], "seconds": t}})
    out["full_ranking"] = {"protocol": "as the full-ranking section (RecBole's leave-one-out, every unseen item ranked); alpha "
                                       "and reg chosen on validation NDCG@10", "alpha": alpha, "reg": reg,
                           "validation_ndcg": {f"{a:g},{r:g}": v for (a, r), v in on_val.items()}, "rows": over_seeds(runs)}  # fmt: skip
    return out


def als_large_shop(seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """The large shop: clean, implicit pairs, leave-last-out; ALS on Spark against the kit's MF (log
    loss, the compiled TensorFlow loop), full ranking of all 20,000 products for every shopper."""
    import gc

    from recsys_tf.data.cleaning import clean_events, to_implicit
    from recsys_tf.data.shop import make_shop
    from recsys_tf.data.split import leave_last_out
    from recsys_tf.models import MatrixFactorization, Popularity
    from recsys_tf.spark import spark_session

    stages: dict[str, float] = {}
    shop, stages["generate_s"] = _timed(make_shop, "large", seed=0)
    (events, _), stages["clean_pandas_s"] = _timed(clean_events, shop.events, shop.catalog)
    del shop
    gc.collect()
    pairs, stages["implicit_pandas_s"] = _timed(to_implicit, events)
    del events
    split, stages["split_pandas_s"] = _timed(leave_last_out, pairs, n_test=1, n_val=1)
    del pairs
    spark = spark_session()
    rows: dict[str, Any] = {}
    for name, make, kw in (("Popularity", lambda s: Popularity(), {}),
                           ("MF, log loss, 32 factors, 10 epochs (kit, TensorFlow)",
                            lambda s: MatrixFactorization(factors=32, epochs=10, batch_size=16384, learning_rate=0.005, seed=s, verbose=False), {}),
                           ("iALS on Spark, 32 factors (alpha 10, reg 1)", lambda s: _als(spark, s, factors=32, alpha=10.0, reg=1.0), {})):  # fmt: skip
        for seed in seeds:
            model, fit_s = _timed(make(seed).fit, split.train, **kw)
            m, eval_s = _timed(model.evaluate, split.test, k=10, exclude=split.val)
            rows.setdefault(name, []).append({"hr": m["hit_rate@10"], "ndcg": m["ndcg@10"], "fit_s": fit_s, "eval_s": eval_s})
            print(f"  {name} seed {seed}: HR@10 {m['hit_rate@10']:.4f} fit {fit_s:.0f} s, evaluation {eval_s:.0f} s", flush=True)
            del model
            gc.collect()
    return {"data": "the large shop (seed 0): 100,000 shoppers, 20,000 products",
            "protocol": "clicks and stronger as positives; per shopper the latest pair is test, the second-latest validation; "
                        "all 20,000 products ranked (training and validation items excluded); settings fixed, not tuned",
            "train_pairs": len(split.train), "test_users": len(split.test), "stages": stages, "seeds": list(seeds),
            "spark": spark.version, "rows": rows}  # fmt: skip
