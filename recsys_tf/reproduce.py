"""Re-run published results side by side with the papers' numbers; writes ``docs/RESULTS.md``.

    python -m recsys_tf.reproduce            # every experiment whose data is available
    python -m recsys_tf.reproduce --only mf  # one experiment

Experiments
-----------
``mf_ml100k``  Biased MF with MSE, SVD++ and NMF on MovieLens 100K, the GroupLens u1-u5 folds,
               RMSE and MAE, beside Surprise's published SVD / SVD++ / NMF (random 5-fold CV)
               and Surprise run on the same folds, with its defaults and with our settings.
``ncf_ml100k`` The NCF protocol on MovieLens 100K (all ratings as positives, latest interaction
               held out, ranked against 99 uniformly sampled unseen items), HR@10 / NDCG@10 for
               popularity, item-kNN, EASE, MF, GMF, MLP and NeuMF with and without pre-training,
               beside RecBole's peer run. Neural models report the best epoch on test (as the NCF
               paper did) and the epoch chosen on validation (the second-latest interaction).
``full_ranking_ml100k`` RecBole's protocol on ML-100K (leave-one-out by time, every unseen item
               ranked) for Pop, item-kNN, EASE, MF and NeuMF beside RecBole 1.2.1's numbers.
``ncf_ml1m``   The same on the published NCF split of ML-1M (needs ML-1M's ratings: its training
               file is derived from them), beside the NCF paper and Ferrari Dacrema et al.
``din_shop``   DIN (Zhou et al. 2018) against its sum-pooling base on the simulated shop's
               impressions: the paper's raw attention weights and the authors' code's softmax
               (with its mean-pooling base), with and without the items' style and colour;
               AUC and GAUC, the epoch chosen on the latest training impressions, beside the
               GAUC of the shop's true utility (the ceiling).

Every row is mean ± sd over seeds (``--seeds``, default 5), every setting is chosen on validation
data carved from training, and the per-seed numbers go to ``docs/results/<experiment>.json``.
Surprise runs on the same folds when its own environment exists (``make peers``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsys_tf.course import ROOT
from recsys_tf.errors import DataNotFoundError
from recsys_tf.utils import atomic_write

DOCS = ROOT / "docs"
RAW = DOCS / "results"


SEEDS = (0, 1, 2, 3, 4)


def spread(values) -> dict[str, Any]:
    """Mean, sample standard deviation and the per-seed values."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": [float(x) for x in v]}


def _pm(s: dict[str, Any], digits: int = 4) -> str:
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def inside(published: float, s: dict[str, Any]) -> bool:
    """Is a published number within our per-seed spread, mean ± 2 sd?"""
    return abs(published - s["mean"]) <= 2 * s["sd"]


# --- rating prediction on ML-100K u1-u5 ---------------------------------------------------------------
def carve_validation(train: pd.DataFrame, fraction: float = 0.1, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random ``fraction`` of ``train``'s ratings as validation, keeping only rows whose user and
    item stay in the rest (a validation rating needs both known)."""
    rng = np.random.default_rng(seed)
    held = rng.random(len(train)) < fraction
    rest, val = train[~held], train[held]
    val = val[val.user_id.isin(rest.user_id) & val.item_id.isin(rest.item_id)]
    return train.drop(val.index), val


RATING_MODELS = {
    # name: (class name, fixed settings, grid searched on validation)
    "biased MF (MSE), 100 factors": ("MatrixFactorization", dict(factors=100, batch_size=1024, learning_rate=0.003),
                                     {"reg": [0.05, 0.1, 0.2]}),
    "SVD++ (Koren 2008), 100 factors": ("SVDpp", dict(factors=100, batch_size=4096, learning_rate=0.01),
                                        {"reg": [0.05, 0.1], "implicit_reg": [0.1, 1.0]}),
    "NMF, 15 factors": ("NMF", dict(factors=15, batch_size=1024, learning_rate=0.003), {"reg": [0.03, 0.06, 0.1]}),
}  # fmt: skip


def _grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    import itertools

    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def tune_rating_model(cls, fixed: dict, grid: dict, train: pd.DataFrame, items: pd.DataFrame, max_epochs: int = 60):
    """Every grid point trained on ``train`` minus a 10% validation carve-out, early-stopped on the
    validation RMSE (patience 6); returns the best point with its epoch count, and the whole table."""
    fit_part, val = carve_validation(train)
    table = []
    for point in _grid(grid):
        model = cls(feedback="explicit", l2=0.0, epochs=max_epochs, patience=6, verbose=False, **fixed, **point)
        model.fit(fit_part, items, val=val)
        best = min(h["val_rmse"] for h in model.history_)
        table.append({**point, "epochs": model.best_epoch_, "val_rmse": float(best)})
        print(f"    validation {point}: RMSE {best:.4f} at epoch {model.best_epoch_}", flush=True)
    chosen = min(table, key=lambda r: r["val_rmse"])
    return chosen, table


def _fold_paths() -> list[str]:
    from recsys_tf.data.download import fetch

    return [str(fetch("movielens-100k", f"u{k}.{part}")) for k in range(1, 6) for part in ("base", "test")]


def peer_python() -> str | None:
    """The Python of the peers' environment (``make peers``), or ``$RECSYS_TF_PEER_PYTHON``."""
    import os

    env = os.environ.get("RECSYS_TF_PEER_PYTHON")
    if env:
        return env
    path = ROOT / "build" / "peers" / "bin" / "python"
    return str(path) if path.exists() else None


def surprise_peers(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Run Surprise on the same folds in its own environment; None when there is none."""
    import subprocess

    py = peer_python()
    if py is None:
        return None
    cmd = [py, str(ROOT / "bench" / "peers" / "surprise_folds.py"), "--folds", *_fold_paths(), "--runs", json.dumps(runs)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        print(f"  Surprise peer run failed: {done.stderr.strip()[-500:]}", flush=True)
        return None
    out = json.loads(done.stdout)
    rows = {}
    for run in out["runs"]:
        per_seed = [np.mean([f["rmse"] for f in s["folds"]]) for s in run["seeds"]]
        mae_seed = [np.mean([f["mae"] for f in s["folds"]]) for s in run["seeds"]]
        rows[run["name"]] = {"rmse": spread(per_seed), "mae": spread(mae_seed), "params": run["params"],
                             "seconds_per_5_folds": spread([s["seconds"] for s in run["seeds"]])}  # fmt: skip
        print(f"  Surprise {run['name']}: RMSE {_pm(rows[run['name']]['rmse'])}", flush=True)
    return {"version": out["surprise"], "rows": rows}


def mf_ml100k(seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    from recsys_tf import models
    from recsys_tf.data import load_movielens, load_movielens_folds
    from recsys_tf.metrics import mae, rmse

    items = load_movielens("100k").items
    folds = load_movielens_folds()
    rows: dict[str, Any] = {}
    for name, (cls_name, fixed, grid) in RATING_MODELS.items():
        cls = getattr(models, cls_name)
        print(f"  {name}: grid {grid} on a 10% validation carve-out of u1.base", flush=True)
        chosen, table = tune_rating_model(cls, fixed, grid, folds[0][0], items)
        settings = {**fixed, **{k: chosen[k] for k in grid}, "epochs": chosen["epochs"]}
        per_seed, per_seed_mae, seconds, detail = [], [], [], []
        for seed in seeds:
            start, fold_rows = time.perf_counter(), []
            for k, (train, test) in enumerate(folds, start=1):
                model = cls(feedback="explicit", l2=0.0, seed=seed, verbose=False, **settings).fit(train, items)
                pred = np.clip(model.score(test.user_id.to_numpy(), test.item_id.to_numpy()), 1, 5)
                fold_rows.append({"fold": f"u{k}", "rmse": rmse(test.rating, pred), "mae": mae(test.rating, pred)})
            seconds.append(time.perf_counter() - start)
            per_seed.append(np.mean([f["rmse"] for f in fold_rows]))
            per_seed_mae.append(np.mean([f["mae"] for f in fold_rows]))
            detail.append({"seed": seed, "folds": fold_rows})
            print(f"  {name} seed {seed}: RMSE {per_seed[-1]:.4f} ({seconds[-1]:.1f} s)", flush=True)
        rows[name] = {"rmse": spread(per_seed), "mae": spread(per_seed_mae), "seconds_per_5_folds": spread(seconds),
                      "settings": settings, "grid": grid, "validation": table, "per_seed": detail}  # fmt: skip
    mf = rows["biased MF (MSE), 100 factors"]["settings"]
    peer_runs = [
        {"name": "SVD, defaults (100 factors, 20 epochs, lr 0.005, reg 0.02)", "algo": "SVD", "params": {}},
        {"name": f"SVD, our settings (100 factors, {mf['epochs']} epochs, reg {mf['reg']:g}, lr 0.005)", "algo": "SVD",
         "params": {"n_factors": 100, "n_epochs": mf["epochs"], "reg_all": mf["reg"]}},
        {"name": f"SVD, our settings with lr 0.01 (100 factors, {mf['epochs']} epochs, reg {mf['reg']:g})", "algo": "SVD",
         "params": {"n_factors": 100, "n_epochs": mf["epochs"], "reg_all": mf["reg"], "lr_all": 0.01}},
        {"name": "SVD++, defaults (20 factors, 20 epochs)", "algo": "SVDpp", "params": {}},
        {"name": "NMF, defaults (15 factors, 50 epochs)", "algo": "NMF", "params": {}},
    ]  # fmt: skip
    peers = surprise_peers([dict(r, seeds=list(seeds)) for r in peer_runs])
    return {"protocol": "explicit ratings, GroupLens u1-u5 folds (80k/20k); per seed the mean over the 5 folds, then mean ± sd "
                        "over seeds (model initialisation); predictions clipped to 1-5; settings chosen on a 10% validation "
                        "carve-out of u1.base (early stopping on its RMSE gives the epochs), never on a test fold",
            "data": "MovieLens 100K", "seeds": list(seeds), "rows": rows, "peers": peers}  # fmt: skip


# --- NCF protocol (sampled candidates) ----------------------------------------------------------------
def _neural_row(make: Callable, cs, val_split, k: int = 10, **fit_kw) -> dict[str, Any]:
    from recsys_tf.evaluation import evaluate_sampled

    def log_both(model):
        t = evaluate_sampled(model, cs.test, cs.candidates, k)
        v = evaluate_sampled(model, val_split.test, val_split.candidates, k)
        return {"test_hr": t[f"hit_rate@{k}"], "test_ndcg": t[f"ndcg@{k}"], "val_hr": v[f"hit_rate@{k}"], "val_ndcg": v[f"ndcg@{k}"]}

    start = time.perf_counter()
    model = make(log_both)
    model.fit(cs.train, **fit_kw)
    hist = pd.DataFrame(model.history_)
    best_test = hist.loc[hist.test_ndcg.idxmax()]
    chosen = hist.loc[hist.val_ndcg.idxmax()]
    return {"hr": float(chosen.test_hr), "ndcg": float(chosen.test_ndcg), "epoch": int(chosen.epoch),
            "hr_best_on_test": float(best_test.test_hr), "ndcg_best_on_test": float(best_test.test_ndcg),
            "best_test_epoch": int(best_test.epoch), "seconds": round(time.perf_counter() - start, 1), "model": model}  # fmt: skip


EASE_GRID = (100.0, 250.0, 500.0, 1000.0)


def _sampled(model, split) -> dict[str, float]:
    from recsys_tf.evaluation import evaluate_sampled

    m = evaluate_sampled(model, split.test, split.candidates)
    return {"hr": m["hit_rate@10"], "ndcg": m["ndcg@10"]}


def _ncf_experiment(cs, val_split, train_items=None, epochs: int = 20, factors: int = 32,
                    layers: tuple[int, ...] = (64, 32, 16), seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Baselines and the NCF family on one candidate split; neural models log test and validation per
    epoch (the epoch is chosen on validation), EASE's lambda is chosen on validation."""
    from recsys_tf.models import EASE, GMF, MLP, ItemKNN, MatrixFactorization, NeuMF, Popularity

    rows: dict[str, Any] = {}
    for name, model in {"TopPopular": Popularity(), "ItemKNN (cosine, k=100, target neighbours)": ItemKNN(k=100, shrink=0.0),
                        "ItemKNN (cosine, k=100, history neighbours)": ItemKNN(k=100, shrink=0.0, neighbours="history")}.items():  # fmt: skip
        start = time.perf_counter()
        rows[name] = {**_sampled(model.fit(cs.train, train_items), cs), "seconds": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    on_val = {lam: _sampled(EASE(lam).fit(val_split.train, train_items), val_split)["ndcg"] for lam in EASE_GRID}
    lam = max(on_val, key=on_val.get)
    rows["EASE (lambda on validation)"] = {**_sampled(EASE(lam).fit(cs.train, train_items), cs), "lambda": lam,
                                           "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    common = dict(loss="bce", epochs=epochs, batch_size=256, learning_rate=0.001, verbose=False, seed=seed)
    tower = "-".join(map(str, layers))
    mlp_name = f"MLP ({tower})"
    neural = {
        f"MF (dot product, {2 * factors} factors, log loss)": lambda cb: MatrixFactorization(factors=2 * factors, init_std=0.01, l2=0.0, epoch_callback=cb, **common),
        f"GMF ({factors} factors)": lambda cb: GMF(factors=factors, epoch_callback=cb, **common),
        mlp_name: lambda cb: MLP(layers=layers, epoch_callback=cb, **common),
        f"NeuMF ({factors} factors, MLP {tower}), no pre-training": lambda cb: NeuMF(factors=factors, layers=layers, epoch_callback=cb, **common),
    }  # fmt: skip
    fitted = {}
    for name, make in neural.items():
        row = _neural_row(make, cs, val_split)
        fitted[name] = row.pop("model")
        rows[name] = row
    gmf, mlp = fitted[f"GMF ({factors} factors)"], fitted[mlp_name]
    pre = dict(common, learning_rate=1e-4, epochs=max(epochs // 2, 1))
    row = _neural_row(lambda cb: NeuMF(factors=factors, layers=layers, epoch_callback=cb, **pre), cs, val_split, pretrained=(gmf, mlp))
    row.pop("model")
    rows[f"NeuMF ({factors} factors, MLP {tower}), pre-trained from GMF + MLP"] = row
    print("  seed " + str(seed) + ": " + ", ".join(f"{n.split(' (')[0]} {r['hr']:.3f}" for n, r in rows.items()), flush=True)
    return rows


def _validation_split(cs, seed: int):
    """Validation = each user's latest *training* interaction against 99 fresh negatives; the
    models are trained on the rest (and on everything for the test numbers, see _neural_row)."""
    from recsys_tf.evaluation import CandidateSplit, ncf_split

    val_cs = ncf_split(cs.train if not len(cs.val) else pd.concat([cs.train, cs.val]), n_neg=99, seed=seed)
    return CandidateSplit(cs.train, cs.val, val_cs.test, val_cs.candidates)


def over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of several seeds -> one row per model: mean ± sd of every number, per-seed values kept."""
    rows: dict[str, Any] = {}
    for name in runs[0]:
        per = [r[name] for r in runs]
        row: dict[str, Any] = {}
        for key in per[0]:
            vals = [p[key] for p in per]
            row[key] = spread(vals) if all(isinstance(v, (int, float)) for v in vals) else vals
        rows[name] = row
    return rows


def ncf_ml100k(epochs: int = 20, seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    from recsys_tf.data import load_movielens
    from recsys_tf.evaluation import ncf_split

    df = load_movielens("100k").interactions.assign(label=1.0)
    runs = []
    for seed in seeds:
        cs = ncf_split(df, n_neg=99, n_val=1, seed=seed)
        runs.append(_ncf_experiment(cs, _validation_split(cs, seed=seed + 100), epochs=epochs, seed=seed))
    return {"protocol": "all ratings as positives; latest interaction per user held out; ranked against 99 uniformly "
                        "sampled unseen items; validation = second-latest (held out of training); HR@10 / NDCG@10; "
                        "each seed draws new negatives and a new initialisation",
            "data": "MovieLens 100K (943 users)", "seeds": list(seeds), "rows": over_seeds(runs)}  # fmt: skip


def ncf_ml1m(epochs: int = 20, seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    """The NCF paper's own split: ``ml-1m.train.rating`` / ``.test.rating`` / ``.test.negative``."""
    from recsys_tf.data import load_ncf
    from recsys_tf.data.split import leave_last_out
    from recsys_tf.evaluation import CandidateSplit

    ncf = load_ncf("ml-1m", include_train=True)  # DataNotFoundError -> the page says why it was not run
    inner = leave_last_out(ncf.train.assign(label=1.0), n_test=1, n_val=0, min_train=1)  # validation item held out
    cs = CandidateSplit(inner.train, inner.test, ncf.test.assign(label=1.0), ncf.candidates())
    runs = [_ncf_experiment(cs, _validation_split(cs, seed=seed + 100), epochs=epochs, factors=64, layers=(256, 128, 64), seed=seed)
            for seed in seeds]  # fmt: skip
    return {"protocol": "the NCF paper's published split and 99 negatives (duplicates of the test item among a user's "
                        "negatives counted once); validation = each user's latest training item, held out of training; "
                        "HR@10 / NDCG@10; seeds vary the initialisation and the validation negatives",
            "data": "MovieLens 1M (NCF files, 6,040 users)", "seeds": list(seeds), "rows": over_seeds(runs),
            "n_test_in_negatives": ncf.n_test_in_negatives}  # fmt: skip


# --- RecBole's full-ranking protocol ------------------------------------------------------------------
def _full_row(model, split, fit_kw=None) -> dict[str, Any]:
    start = time.perf_counter()
    model.fit(split.train, **(fit_kw or {}))
    seconds = time.perf_counter() - start
    m = model.evaluate(split.test, k=10, exclude=split.val)
    row = {"hr": m["hit_rate@10"], "ndcg": m["ndcg@10"], "seconds": round(seconds, 2)}
    hist = getattr(model, "history_", None)
    if hist:
        row["epoch"] = model.best_epoch_
        row["seconds_per_epoch"] = float(np.median([h["seconds"] for h in hist]))
    return row


def full_ranking_ml100k(seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    """RecBole's protocol: all ratings positive, leave-one-out by time, every unseen item ranked."""
    from recsys_tf.data import load_movielens
    from recsys_tf.data.split import leave_last_out
    from recsys_tf.models import EASE, ItemKNN, MatrixFactorization, NeuMF, Popularity

    df = load_movielens("100k").interactions.assign(label=1.0)
    split = leave_last_out(df, n_test=1, n_val=1, min_train=1)
    on_val = {lam: EASE(lam).fit(split.train).evaluate(split.val, k=10)["ndcg@10"] for lam in EASE_GRID}
    lam = max(on_val, key=on_val.get)
    runs = []
    for seed in seeds:
        common = dict(loss="bce", epochs=60, patience=5, verbose=False, seed=seed, batch_size=2048, learning_rate=0.001)
        rows = {
            "Pop": _full_row(Popularity(), split),
            "ItemKNN (cosine, k=100, shrink 0)": _full_row(ItemKNN(k=100, shrink=0.0), split),
            f"EASE (lambda {lam:g}, on validation)": _full_row(EASE(lam), split),
            "MF, log loss, 64 factors (BPR's model; RecBole's BPR uses the pairwise loss)":
                _full_row(MatrixFactorization(factors=64, init_std=0.01, l2=0.0, **common), split, {"val": split.val}),
            "NeuMF (64 factors, MLP 128-64)":
                _full_row(NeuMF(factors=64, layers=(128, 64), **common), split, {"val": split.val}),
        }  # fmt: skip
        print(f"  seed {seed}: " + ", ".join(f"{n.split(' (')[0].split(',')[0]} {r['hr']:.3f}" for n, r in rows.items()), flush=True)
        runs.append(rows)
    return {"protocol": "all ratings as positives; per user the latest interaction is test, the second-latest validation; "
                        "every item the user has not interacted with (train or validation) is ranked; HR@10 / NDCG@10; "
                        "neural models early-stopped on validation NDCG@10 (patience 5, at most 60 epochs), EASE's lambda "
                        f"chosen on validation from {list(EASE_GRID)}; seeds vary the initialisation (Pop, ItemKNN and EASE "
                        "are deterministic)", "data": "MovieLens 100K (943 users)", "seeds": list(seeds), "rows": over_seeds(runs),
            "ease_validation": {str(k): v for k, v in on_val.items()}}  # fmt: skip


# --- sequential recommendation (S3-Rec's data and protocols) -----------------------------------------
# beta_2: Adam's (Keras' and PyTorch's default; S3-Rec's code); named so that the protocol states it
SEQ_RECIPE = dict(maxlen=50, dim=64, blocks=2, heads=1, batch_size=128, learning_rate=1e-3, beta_2=0.999)
# the two dropouts of the SASRec paper (0.2 on dense MovieLens, 0.5 on the sparse Amazon sets; S3-Rec's code uses 0.5):
# each model takes the one with the higher validation NDCG@10 on its data set's first seed, then keeps it
SEQ_DROPOUTS = (0.2, 0.5)
SEQ_MAX_EPOCHS = 200  # S3-Rec's budget; at 100 the BCE runs on Beauty and Games stopped at the cap
SEQ_MODELS = {
    "GRU4Rec (cross-entropy)": ("GRU4Rec", {}),
    "SASRec (BCE, 1 negative: the paper's loss)": ("SASRec", {"loss": "bce"}),
    "SASRec (full cross-entropy)": ("SASRec", {"loss": "ce"}),
    # the authors' TensorFlow code (kang205/SASRec): its block layout and Adam beta_2; the recipe's other settings
    "SASRec, the authors' block (BCE, 1 negative; Adam beta_2 0.98)": ("SASRec", {"loss": "bce", "layout": "authors", "beta_2": 0.98}),
    # S3-Rec's code (aHuiWang/CIKM2020-S3Rec), whose SASRec rows its tables report: BERT's post-norm block, 2 heads
    "SASRec, S3-Rec's encoder (BCE, 1 negative; post-norm block, 2 heads)": ("SASRec", {"loss": "bce", "layout": "post-norm", "heads": 2}),
    "BERT4Rec (masked items, cross-entropy)": ("BERT4Rec", {"mask_prob": 0.2}),
}  # fmt: skip
# S3-Rec's tables (HR@10, NDCG@10): full ranking, then 99 negatives
S3REC = {
    "lastfm": {"PopRec": ((0.0440, 0.0203), (0.3037, 0.1687)), "GRU4Rec": ((0.0367, 0.0187), (0.2817, 0.1550)),
               "SASRec": ((0.0688, 0.0390), (0.4706, 0.2755)), "BERT4Rec": ((0.0633, 0.0337), (0.4991, 0.2871))},
    "beauty": {"PopRec": ((0.0152, 0.0068), (0.3386, 0.1803)), "GRU4Rec": ((0.0283, 0.0137), (0.4106, 0.2584)),
               "SASRec": ((0.0605, 0.0318), (0.4696, 0.3156)), "BERT4Rec": ((0.0347, 0.0170), (0.4739, 0.2975))},
    "games": {"SASRec": ((float("nan"), float("nan")), (0.7410, 0.5360))},  # the SASRec paper, 100 negatives
    "sports": {"PopRec": ((0.0094, 0.0053), (0.3423, 0.1902)), "GRU4Rec": ((0.0204, 0.0110), (0.4299, 0.2527)),
               "SASRec": ((0.0350, 0.0192), (0.4622, 0.2869)), "BERT4Rec": ((0.0191, 0.0099), (0.4722, 0.2775))},
}  # fmt: skip


# S3-Rec's PopRec numbers come out exactly (Beauty 0.0152 / 0.0068, Sports 0.0094 / 0.0053, LastFM HR 0.0440) only when
# popularity is counted over every interaction, the test items included: a leak. The row shows it beside the honest PopRec.
POPREC_S3REC = "PopRec (counts include the validation and test items, as S3-Rec's numbers imply)"


def seq_models(only: str | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """The rows of :data:`SEQ_MODELS` whose label contains ``only`` (any case); all when None.
    ``"PopRec"``: none of them, only the popularity rows (seconds instead of hours)."""
    if only is None:
        return dict(SEQ_MODELS)
    if only.lower() == "poprec":
        return {}
    chosen = {k: v for k, v in SEQ_MODELS.items() if only.lower() in k.lower()}
    if not chosen:
        raise ValueError(f"--models {only!r} matches none of {list(SEQ_MODELS)}.")
    return chosen


def sequential_s3rec(name: str = "lastfm", seeds: tuple[int, ...] = (0, 1, 2), max_epochs: int = SEQ_MAX_EPOCHS,
                     patience: int = 15, which: str | None = None) -> dict[str, Any]:  # fmt: skip
    """GRU4Rec, SASRec (BCE and full cross-entropy) and BERT4Rec on an S3-Rec data set, both protocols.
    ``which``: only the rows whose label contains this text (PopRec always runs); see :func:`merge_rows`.

    Leave-one-out by time; the epoch is chosen on the validation item (early stopping on its
    full-ranking NDCG@10), and so is the dropout (:data:`SEQ_DROPOUTS`, on the first seed: one model
    per value, the best kept; ``tuning`` in the result holds each value's validation NDCG@10); the
    test input is the whole history before the test item (validation item included) and those items
    are masked. Sampled protocol: LastFM with the authors' own 99
    negatives per user, the others with 99 uniform negatives drawn per seed.
    """
    chosen = seq_models(which)  # a wrong name fails before any data is read
    from recsys_tf import models
    from recsys_tf.data import load_s3rec
    from recsys_tf.data.download import fetch
    from recsys_tf.data.sequences import leave_one_out, read_candidates, to_sequences
    from recsys_tf.evaluation import evaluate_sampled
    from recsys_tf.speed import device_name

    if name == "games":
        from recsys_tf.data import load_sasrec_games

        ds = load_sasrec_games()  # the SASRec paper's own cut; its protocol ranks against 100 negatives
    else:
        ds = load_s3rec(name)  # DataNotFoundError -> "not run" with the reason
    n_neg = 100 if name == "games" else 99
    inter = ds.interactions
    split = leave_one_out(to_sequences(inter))
    train, val, test = split.train_frame, split.val_frame, split.test_frame
    published_negatives = name == "lastfm"

    def candidates(seed: int) -> np.ndarray:
        if published_negatives:
            return np.column_stack([test.item_id.to_numpy(), read_candidates(fetch("s3rec-other", "LastFM_sample.txt"), test.user_id.to_numpy())])
        from recsys_tf.data.sampling import pair_keys, sample_candidates

        items = np.sort(inter.item_id.unique())
        users = np.sort(inter.user_id.unique())
        seen = pair_keys(np.searchsorted(users, inter.user_id), np.searchsorted(items, inter.item_id), len(items))
        cand = sample_candidates(np.searchsorted(users, test.user_id), np.searchsorted(items, test.item_id), seen, len(items), n_neg, seed=seed)
        return np.column_stack([test.item_id.to_numpy(), items[cand]])

    def both(model, cand) -> dict[str, float]:
        full = model.evaluate(test, k=10, history=val) if isinstance(model, models.SequentialRecommender) else model.evaluate(test, k=10, exclude=val)
        ctx = model.extended(val) if isinstance(model, models.SequentialRecommender) else nullcontext()
        with ctx:
            sampled = evaluate_sampled(model, test, cand)
        return {"hr_full": full["hit_rate@10"], "ndcg_full": full["ndcg@10"], "hr_sampled": sampled["hit_rate@10"], "ndcg_sampled": sampled["ndcg@10"]}

    def summary(seeds_run: list[int], runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"protocol": "leave-one-out by time (last item = test, second-to-last = validation); full ranking of every item "
                        f"the user has not interacted with, and ranking against {n_neg} negatives ("
                        + ("the authors' own LastFM_sample.txt" if published_negatives else "uniform, drawn per seed") + "); "
                        f"one recipe for every data set ({', '.join(f'{k} {v:g}' for k, v in SEQ_RECIPE.items())}, at most "
                        f"{max_epochs} epochs), the epoch chosen on validation NDCG@10 (patience {patience}), the dropout too "
                        f"(each model's first seed is trained with each of {', '.join(map(str, SEQ_DROPOUTS))}; the value with "
                        "the higher validation NDCG@10 is kept for every seed); seeds vary the initialisation, the training "
                        "negatives and masks",
            "data": f"{'SASRec paper' if name == 'games' else 'S3-Rec'} {name} ({inter.user_id.nunique():,} users, {inter.item_id.nunique():,} items, {len(inter):,} interactions)",
            "dataset": name, "test_users": len(test), "seeds": seeds_run, "rows": over_seeds(runs), "tuning": tuning}  # fmt: skip

    # a fit's numbers are kept as soon as it ends, and a seed's rows too: a run stopped part-way (hours on a
    # CPU) resumes at the next fit, and inside a fit after its last finished epoch (a checkpoint per fit)
    partial = _partial_path(name, which)
    key = _seq_key(name, which, max_epochs, patience)
    checkpoints = _checkpoint_dir(partial, key)

    # time spent in earlier runs of this experiment (seeds read back, epochs of resumed fits): the
    # experiment's run time in RESULTS.md is this run's plus that, not this run's alone
    earlier = 0.0

    def fit_checkpoint(label: str, seed: int, dropout: float) -> Path:
        return checkpoints / f"{_slug(label)}-seed{seed}-dropout{dropout}.npz"

    def fit(label: str, seed: int, dropout: float):
        nonlocal earlier
        cls_name, extra = chosen[label]
        # a fit takes minutes to hours: a line as it starts and ends (logs), an epoch bar on a terminal
        print(f"  seed {seed}: {label}, dropout {dropout:g} ...", flush=True)
        model = getattr(models, cls_name)(epochs=max_epochs, patience=patience, seed=seed, verbose=True, dropout=dropout, **{**SEQ_RECIPE, **extra})
        start = time.perf_counter()
        model.fit(train, ds.items, val=val, checkpoint=fit_checkpoint(label, seed, dropout))
        earlier += max(0.0, model.fit_seconds_ - (time.perf_counter() - start))  # the checkpoint's epochs
        print(f"  seed {seed}: {label}, dropout {dropout:g}: best validation NDCG@10 "
              f"{max(h['val_ndcg@10'] for h in model.history_):.4f} at epoch {model.best_epoch_} of {len(model.history_)}, "
              f"{model.fit_seconds_ / 60:.1f} min", flush=True)  # fmt: skip
        return model

    def fitted_row(label: str, seed: int, dropout: float, cand: np.ndarray) -> tuple[dict[str, Any], float]:
        """One fit's test row and its best validation NDCG@10, kept in the partial file as soon as the fit ends: a
        run stopped between the first seed's dropout trials (an hour each on Games) trains neither trial again,
        even where the checkpoints are gone."""
        nonlocal earlier
        tag = f"{label} | seed {seed} | dropout {dropout:g}"
        if tag in fits:
            print(f"  seed {seed}: {label}, dropout {dropout:g}: finished earlier, read from {partial.name}", flush=True)
            earlier += fits[tag]["row"]["seconds"] + fits[tag]["eval_seconds"]
            return fits[tag]["row"], fits[tag]["val_ndcg@10"]
        model = fit(label, seed, dropout)
        start = time.perf_counter()
        row = {**both(model, cand), "dropout": model.dropout, "epoch": model.best_epoch_, "seconds": round(model.fit_seconds_, 1),
               "seconds_per_epoch": float(np.median([h["seconds"] for h in model.history_])),
               "device": device_name(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip
        best = float(max(h["val_ndcg@10"] for h in model.history_))
        fits[tag] = {"row": row, "val_ndcg@10": best, "eval_seconds": round(time.perf_counter() - start, 1)}
        save()
        fit_checkpoint(label, seed, dropout).unlink(missing_ok=True)  # the fit's numbers are safe: not needed again
        return row, best

    def save() -> None:
        RAW.mkdir(parents=True, exist_ok=True)
        so_far = {"result": {**summary([int(x) for x in done], list(done.values())), "of_seeds": list(seeds)}} if done else {}
        atomic_write(partial, json.dumps({"key": key, "runs": done, "tuning": tuning, "seed_seconds": seed_seconds,
                                          "fits": fits, **so_far}, indent=1, default=float))  # fmt: skip

    def fits_seconds(rows: dict[str, Any], seed: int) -> float:
        """A seed's fits: every row's, plus the dropout trials the first seed did not keep."""
        trials = sum(t["seconds"] - rows[n]["seconds"] for n, t in tuning.items() if t.get("seed") == seed and n in rows)
        return sum(r.get("seconds", 0) for r in rows.values()) + trials

    saved = json.loads(partial.read_text()) if partial.exists() else {}
    saved = saved if saved.get("key") == key else {}
    done, tuning, seed_seconds = saved.get("runs", {}), saved.get("tuning", {}), saved.get("seed_seconds", {})
    fits: dict[str, Any] = saved.get("fits", {})
    runs = []
    for seed in seeds:
        if str(seed) in done:
            print(f"  seed {seed}: finished earlier, read from {partial.name}", flush=True)
            runs.append(done[str(seed)])
            earlier += seed_seconds.get(str(seed)) or fits_seconds(done[str(seed)], seed)  # older partial files: its fits
            continue
        cand = candidates(seed)
        start, before = time.perf_counter(), earlier
        rows = {"PopRec": {**both(models.Popularity().fit(train, ds.items), cand), "seconds": round(time.perf_counter() - start, 2)}}
        if name in S3REC and "PopRec" in S3REC[name]:
            leaky = models.Popularity().fit(train, ds.items)  # the users' histories and masks as usual; only the counts differ
            leaky.counts_ = np.bincount(leaky.encoder_.items.transform(inter.item_id), minlength=leaky.n_items).astype(np.float32)
            rows[POPREC_S3REC] = both(leaky, cand)
        for label in chosen:
            if label in tuning:
                rows[label], _ = fitted_row(label, seed, tuning[label]["dropout"], cand)
            else:  # the first seed: one model per dropout; the best on validation is this seed's model
                tried = {d: fitted_row(label, seed, d, cand) for d in SEQ_DROPOUTS}
                scores = {str(d): score for d, (_, score) in tried.items()}
                best = max(SEQ_DROPOUTS, key=lambda d: scores[str(d)])
                tuning[label] = {"dropout": best, "val_ndcg@10": scores, "seed": seed,
                                 "seconds": round(sum(row["seconds"] for row, _ in tried.values()), 1)}  # fmt: skip
                rows[label] = tried[best][0]
        print(f"  seed {seed}: " + ", ".join(f"{n.split(' (')[0]} {r['hr_full']:.4f}/{r['hr_sampled']:.3f}" for n, r in rows.items()), flush=True)
        runs.append(rows)
        done[str(seed)] = rows
        seed_seconds[str(seed)] = round(time.perf_counter() - start + earlier - before, 1)
        fits = {tag: f for tag, f in fits.items() if f" | seed {seed} | " not in tag}  # the seed's rows hold them now
        save()
    partial.unlink(missing_ok=True)
    return {**summary(list(seeds), runs), "seconds_in_earlier_runs": round(earlier, 1)}


def seq_lastfm(seeds: tuple[int, ...] = SEEDS, models: str | None = None) -> dict[str, Any]:
    return sequential_s3rec("lastfm", seeds=seeds[:3], which=models)


def seq_beauty(seeds: tuple[int, ...] = SEEDS, models: str | None = None) -> dict[str, Any]:
    return sequential_s3rec("beauty", seeds=seeds[:3], which=models)


def seq_sports(seeds: tuple[int, ...] = SEEDS, models: str | None = None) -> dict[str, Any]:
    return sequential_s3rec("sports", seeds=seeds[:3], which=models)


def seq_games(seeds: tuple[int, ...] = SEEDS, models: str | None = None) -> dict[str, Any]:
    return sequential_s3rec("games", seeds=seeds[:3], which=models)


# --- click-through prediction on the simulated shop -------------------------------------------------
DIN_POOLINGS = {"sum pooling (the paper's base)": "sum", "DIN, raw weights (the paper)": "attention",
                "mean pooling (the authors' code's base)": "mean", "DIN, softmax (the authors' code)": "softmax"}  # fmt: skip
DIN_FEATURES = {"id, category, brand, price level": None, "+ style, colour": ("category", "brand", "price_tier", "style", "colour")}
# the final MLP's activation, the attention unit's, whether the attention unit's slopes differ by click
# position (DIN(position_slopes=)) and whether a learned weight per click position multiplies each click's
# weight (DIN(recency=)); the attention unit is the one DIN adds to its base, so the variants that change
# only it run for the attention poolings only
POSITION_SLOPES = "PReLU, a slope per click position"
RECENCY = "PReLU, + a learned weight per click position"
DIN_ACTIVATIONS = {"Dice": ("dice", "prelu", False, False), "Dice, in the attention unit too": ("dice", "dice", False, False),
                   "PReLU": ("prelu", "prelu", False, False), POSITION_SLOPES: ("prelu", "prelu", True, False),
                   RECENCY: ("prelu", "prelu", False, True)}
DIN_SAME_BASE = {"Dice, in the attention unit too": "Dice", POSITION_SLOPES: "PReLU"}  # sum and mean pooling: the same model


def _din_base_activation(act: str) -> str:
    """The activation of the sum- and mean-pooling rows that a DIN row with activation ``act`` faces."""
    return DIN_SAME_BASE.get(act, act)


def _din_rows() -> list[str]:
    """The rows of the DIN table, "pooling | item features | activation", in the table's order."""
    return [f"{label} | {feat} | {act}" for feat, act, label in itertools.product(DIN_FEATURES, DIN_ACTIVATIONS, DIN_POOLINGS)
            if not (DIN_POOLINGS[label] in ("sum", "mean") and act in DIN_SAME_BASE)]  # no attention unit: the base row's model


def din_shop(seeds: tuple[int, ...] = SEEDS, max_epochs: int = 6, models: list[str] | None = None) -> dict[str, Any]:
    """Every pooling of :data:`DIN_POOLINGS` with each feature set of :data:`DIN_FEATURES` and each activation of
    :data:`DIN_ACTIVATIONS` on the small shop; ``models``: only the rows whose ``"pooling | item features |
    activation |"`` contains one of these texts (see :func:`merge_rows`).

    The latest 20% of impressions are the test set; the latest 12.5% of the rest choose the number of
    epochs (validation GAUC), after which the model is trained again on all training impressions.
    GAUC is also split by shoppers whose needs differ in style (where target attention should pay).
    """
    from recsys_tf.data.cleaning import clean_events
    from recsys_tf.data.impressions import ATTRIBUTES, ctr_samples
    from recsys_tf.data.shop import make_shop
    from recsys_tf.metrics import gauc, gauc_by_segment, roc_auc
    from recsys_tf.models.ctr import DIN, ctr_metrics

    seeds = seeds[:3]  # 32 models, each trained twice: three seeds keep it to ~45 min on 2 cores
    names = _din_rows()
    chosen = [n for n in names if models is None or any(text in f"{n} |" for text in models)]
    if not chosen:  # a wrong name fails before any data is read
        raise ValueError(f"--models {models} matches no DIN row; the rows ('pooling | item features | activation'): {names}")
    shop = make_shop("small", seed=0)
    events, _ = clean_events(shop.events, shop.catalog)
    samples, clicks = ctr_samples(events), events[events.event == "click"]
    cut = samples.timestamp.quantile(0.8)
    train, test = samples[samples.timestamp < cut], samples[samples.timestamp >= cut]
    cut = train.timestamp.quantile(0.875)
    inner, val = train[train.timestamp < cut], train[train.timestamp >= cut]
    mixed = shop.needs.groupby("user_id")["style"].nunique() > 1
    users, y = test.user_id.to_numpy(), test.label.to_numpy()

    def split_gauc(scores: np.ndarray) -> dict[str, float]:
        seg = gauc_by_segment(users, y, scores, mixed.map({True: "gauc_mixed_styles", False: "gauc_one_style"}))
        return {k: seg[k] for k in ("gauc_mixed_styles", "gauc_one_style")}

    runs = []
    for seed in seeds:
        rows = {}
        for name in chosen:
            label, feat, act = name.split(" | ")
            activation, attention_activation, position_slopes, recency = DIN_ACTIVATIONS[act]
            pooling = DIN_POOLINGS[label]
            kw = dict(pooling=pooling, activation=activation, attention_activation=attention_activation, seed=seed, verbose=False,
                      attributes=DIN_FEATURES[feat] or ATTRIBUTES, position_slopes=position_slopes, recency=recency)  # fmt: skip
            start = time.perf_counter()
            probe = DIN(epochs=max_epochs, **kw).fit(inner, clicks, shop.catalog, val=val)
            best = int(np.argmax([h["val_gauc"] for h in probe.history_])) + 1
            model = DIN(epochs=best, **kw).fit(train, clicks, shop.catalog)
            scores = model.predict(test)  # once, for the metrics and the per-segment GAUC
            m = ctr_metrics(test, scores)
            rows[name] = {"auc": m["auc"], "gauc": m["gauc"], "logloss": m["logloss"], **split_gauc(scores),
                          "epoch": best, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        print(f"  seed {seed}: " + ", ".join(f"{n.split(' (')[0]} [{n.split(' | ', 1)[1]}] {r['gauc']:.4f}" for n, r in rows.items()), flush=True)
        runs.append(rows)
    truth = shop.pair_utility(users, test.item_id.to_numpy())
    return {"data": f"simulated shop 'small', seed 0: {len(samples):,} impressions ({len(train):,} training, {len(test):,} test), "
                    f"click-through rate {samples.label.mean():.1%}; {mixed.mean():.0%} of shoppers have needs of different styles",
            "protocol": "the latest 20% of impressions are the test set; the number of epochs (at most "
                        f"{max_epochs}) is chosen on the latest 12.5% of the training impressions (validation GAUC), then "
                        "the model is trained again on all training impressions; seeds vary the initialisation and order",
            "seeds": list(seeds), "rows": over_seeds(runs),
            "true_utility": {"auc": roc_auc(y, truth), "gauc": gauc(users, y, truth), **split_gauc(truth)}}  # fmt: skip


def _din_section(res: dict[str, Any]) -> list[str]:
    lines = ["## DIN against sum pooling (simulated shop, click-through)", "",
             f"Data: {res['data']}. Protocol: {res['protocol']}; seeds {res['seeds']}. Same embeddings (dim 12), attention "
             "MLP (36) and final MLP (80-40) for every row; only the pooling, the item features and the activation differ. "
             "The activation is the final MLP's; the attention unit uses PReLU, but for the rows 'Dice, in the attention unit too' "
             "(the paper's Figure 2 draws PReLU/Dice there; the authors' code uses a sigmoid there and Dice in the final MLP only). "
             "The attention unit's PReLU and Dice have one slope per unit: the paper's unit is a function of the click and the "
             "candidate only. The rows 'PReLU, a slope per click position' give it a slope per unit and position (Keras' PReLU "
             "does so by default on a (batch, clicks, units) input; the kit's DIN did until 2026-11-30): a click's position is "
             "its recency, which sum pooling never sees. The rows 'PReLU, + a learned weight per click position' give every "
             "pooling that recency explicitly (DIN(recency=True)): a weight per click position, learned, multiplies each click's "
             "weight; their sum and mean pooling rows are their own base. "
             "Sum and mean pooling have no attention unit: their Dice row is the base for both 'Dice' rows, their PReLU row for "
             "both PReLU rows without recency weights.", "",
             "| pooling | item features | activation | AUC | GAUC | GAUC, shoppers with needs of several styles | GAUC, one style | epochs | s / fit |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    order = {n: i for i, n in enumerate(_din_rows())}  # rows added by a later --models run take their place
    for name, r in sorted(res["rows"].items(), key=lambda kv: order.get(kv[0], len(order))):
        pooling, feat, act = name.split(" | ")
        lines.append(f"| {pooling} | {feat} | {act} | {_pm(r['auc'])} | **{_pm(r['gauc'])}** | {_pm(r['gauc_mixed_styles'])} | "
                     f"{_pm(r['gauc_one_style'])} | {_pm(r['epoch'], 1)} | {_pm(r['seconds'], 1)} |")  # fmt: skip
    t = res["true_utility"]
    lines += [f"| the shop's true utility (ceiling) | | | {t['auc']:.4f} | {t['gauc']:.4f} | {t['gauc_mixed_styles']:.4f} | "
              f"{t['gauc_one_style']:.4f} | | |", ""]  # fmt: skip
    # seeds pair up (same data, same seed): the per-seed gaps are what the comparison rests on
    sum_, raw, mean, soft = DIN_POOLINGS
    for feat, act in itertools.product(DIN_FEATURES, DIN_ACTIVATIONS):
        if f"{raw} | {feat} | {act}" not in res["rows"]:
            continue  # results from before this activation was run
        gaps = []
        for a, b in ((raw, sum_), (soft, mean)):
            for key, who in (("gauc", "all"), ("gauc_mixed_styles", "needs of several styles")):
                d = np.subtract(res["rows"][f"{a} | {feat} | {act}"][key]["values"],
                                res["rows"][f"{b} | {feat} | {_din_base_activation(act)}"][key]["values"])
                gaps.append(f"{a.split(' (')[0]} minus {b.split(' (')[0]}, {who}: {d.mean():+.4f} ({', '.join(f'{x:+.4f}' for x in d)})")
        lines += [f"GAUC gaps per seed, {feat}, {act}: " + "; ".join(gaps) + ".", ""]
    for feat in DIN_FEATURES:  # what the explicit recency weights add to each pooling
        pairs = [(label, f"{label} | {feat} | {RECENCY}", f"{label} | {feat} | PReLU") for label in DIN_POOLINGS]
        gaps = [f"{label.split(' (')[0]}: {d.mean():+.4f} ({', '.join(f'{x:+.4f}' for x in d)})"
                for label, a, b in pairs if a in res["rows"] and b in res["rows"]
                for d in [np.subtract(res["rows"][a]["gauc"]["values"], res["rows"][b]["gauc"]["values"])]]  # fmt: skip
        if gaps:
            lines += [f"GAUC gained per seed by the recency weights (over the same pooling with PReLU), {feat}: " + "; ".join(gaps) + ".", ""]
    return lines


# published / peer numbers: (HR@10, NDCG@10) or (RMSE, MAE), the source, and our row they face
PUBLISHED = {
    "mf_ml100k": [
        ("Surprise SVD (biased MF, 100 factors)", (0.934, 0.737), "Surprise README, random 5-fold", "biased MF (MSE), 100 factors"),
        ("Surprise SVD++", (0.919, 0.721), "Surprise README, random 5-fold", "SVD++ (Koren 2008), 100 factors"),
        ("Surprise NMF", (0.963, 0.758), "Surprise README, random 5-fold", "NMF, 15 factors"),
    ],
    "ncf_ml100k": {
        "TopPopular": ((0.409, 0.228), "RecBole 1.2.1 peer run"),
        "ItemKNN (cosine, k=100, target neighbours)": ((0.616, 0.353), "RecBole 1.2.1 peer run"),
        "EASE (lambda on validation)": ((0.649, 0.384), "RecBole 1.2.1 peer run"),
        "NeuMF (32 factors, MLP 64-32-16), no pre-training": ((0.659, 0.383), "RecBole 1.2.1, 64-d, MLP 128-64, 1 negative; 0.649 ± 0.007 over 20 draws"),
    },
    "ncf_ml1m": {
        "TopPopular": ((0.4533, 0.2542), "Ferrari Dacrema et al."), "ItemKNN (cosine, k=100, target neighbours)": ((0.6694, 0.3979), "Ferrari Dacrema et al."),
        "EASE (lambda on validation)": ((0.7192, 0.4494), "Ferrari Dacrema et al."), "MLP (256-128-64)": ((0.702, 0.426), "NCF paper, Table 3"),
        "NeuMF (64 factors, MLP 256-128-64), no pre-training": ((0.705, 0.426), "NCF paper; re-run 0.7093 / 0.4349"),
        "NeuMF (64 factors, MLP 256-128-64), pre-trained from GMF + MLP": ((0.730, 0.447), "NCF paper, Table 2"),
    },
    "full_ranking_ml100k": {  # RecBole 1.2.1 peer run, and its seconds per training epoch where measured
        "Pop": ((0.072, 0.040), "RecBole Pop"), "ItemKNN": ((0.115, 0.063), "RecBole ItemKNN"),
        "EASE": ((0.135, 0.071), "RecBole EASE"), "MF": ((0.117, 0.063), "RecBole BPR"),
        "NeuMF": ((0.121, 0.065), "RecBole NeuMF, 1.1 s per epoch"),
    },
}  # fmt: skip
RECBOLE_NEUMF_EPOCH_S = 1.1


def _num(v: float) -> str:
    """A published number as printed in its source: at least 3 decimals, no trailing zeros beyond."""
    text = f"{v:.4f}".rstrip("0")
    return text + "0" * max(0, 3 - len(text.split(".")[1]))


def _verdict(pub: tuple[float, float], hr: dict[str, Any], higher_better: bool = True) -> str:
    """Where the published number lies against our mean ± 2 sd."""
    if inside(pub[0], hr):
        return "within"
    return "ours higher" if hr["mean"] > pub[0] else "ours lower"


def _rating_section(mf: dict[str, Any]) -> list[str]:
    lines = ["## Rating prediction on MovieLens 100K (u1-u5)", "", f"Protocol: {mf['protocol']}.", "",
             "| model | published RMSE / MAE | ours RMSE / MAE, mean ± sd over seeds | published within ours ± 2 sd? | settings chosen on validation | time, 5 folds |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label, pub, source, key in PUBLISHED["mf_ml100k"]:
        r = mf["rows"].get(key)
        if r is None:
            continue
        settings = ", ".join(f"{k} {v:g}" for k, v in r["settings"].items() if k in (*r["grid"], "epochs"))
        verdict = "yes" if inside(pub[0], r["rmse"]) else ("no, ours lower (better)" if r["rmse"]["mean"] < pub[0] else "no, ours higher (worse)")
        lines.append(f"| {key} vs {label} | {_num(pub[0])} / {_num(pub[1])} ({source}) | **{_pm(r['rmse'])} / {_pm(r['mae'])}** | {verdict} "
                     f"| {settings} | {_pm(r['seconds_per_5_folds'], 1)} s |")  # fmt: skip
    peers = mf.get("peers")
    lines += ["", "Grids: " + "; ".join(f"{k}: {r['grid']}" for k, r in mf["rows"].items()) + ". Validation RMSE of every grid "
              "point is in `docs/results/mf_ml100k.json`.", ""]  # fmt: skip
    if peers:
        lines += [f"### The peer on the same folds: Surprise {peers['version']} (SGD), {len(mf['seeds'])} seeds", "",
                  "| Surprise model | RMSE / MAE, mean ± sd | time, 5 folds |", "|---|---|---|"]  # fmt: skip
        for name, r in peers["rows"].items():
            lines.append(f"| {name} | {_pm(r['rmse'])} / {_pm(r['mae'])} | {_pm(r['seconds_per_5_folds'], 1)} s |")
        ours = mf["rows"]["biased MF (MSE), 100 factors"]["rmse"]["mean"]
        equal = [r["rmse"]["mean"] for n, r in peers["rows"].items() if "our settings" in n]
        lines += ["", f"Plainly: most of our MF's lead over Surprise's default SVD is the settings. With the same factors, "
                      f"epochs and regularisation, Surprise's SVD measures {min(equal):.4f} at best against our {ours:.4f}."
                      if equal else "", ""]  # fmt: skip
    else:
        lines += ["Surprise was not run here (no peers environment: `make peers` builds it); its recorded numbers on these "
                  "folds are in `../shared/reference/published-results.md`.", ""]  # fmt: skip
    return lines


def _ranking_section(key: str, res: dict[str, Any]) -> list[str]:
    epochs_col = key != "full_ranking_ml100k"
    head = ("| model | published / peer HR@10 / NDCG@10 | ours HR@10, mean ± sd | ours NDCG@10, mean ± sd | published within ours ± 2 sd? | "
            + ("best epoch on test (the paper's practice), HR@10 | time |" if epochs_col else "s / epoch (RecBole NeuMF 1.1) | time |"))  # fmt: skip
    lines = [f"Protocol: {res['protocol']}. Data: {res['data']}; seeds {res['seeds']}.", "", head, "|---|---|---|---|---|---|---|"]
    pubs = PUBLISHED.get(key, {})
    for name, r in res["rows"].items():
        match = pubs.get(name) or next((v for k, v in pubs.items() if not epochs_col and name.startswith(k)), None)
        pub = f"{_num(match[0][0])} / {_num(match[0][1])} ({match[1]})" if match else ""
        verdict = _verdict(match[0], r["hr"]) if match else ""
        extra = ""
        if epochs_col and "hr_best_on_test" in r:
            extra = f"{_pm(r['hr_best_on_test'])} (epoch chosen on validation: {_pm(r['epoch'], 1)})"
        elif not epochs_col and "seconds_per_epoch" in r:
            extra = f"{_pm(r['seconds_per_epoch'], 2)}"
        lines.append(f"| {name} | {pub} | **{_pm(r['hr'])}** | **{_pm(r['ndcg'])}** | {verdict} | {extra} | {_pm(r['seconds'], 1)} s |")
    return lines + [""]


def _seq_key(name: str, which: str | None, max_epochs: int = SEQ_MAX_EPOCHS, patience: int = 15) -> dict[str, Any]:
    """What a stopped sequence run must share with a new one to be resumed (as JSON reads it back)."""
    return json.loads(json.dumps({"dataset": name, "which": which, "recipe": SEQ_RECIPE, "dropouts": SEQ_DROPOUTS,
                                  "max_epochs": max_epochs, "patience": patience}))  # fmt: skip


def _slug(text: str) -> str:
    """``text`` as a file-name part: lower case, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _partial_path(name: str, which: str | None) -> Path:
    """Where a sequence run on data set ``name`` keeps its finished seeds: one file per ``--models`` choice,
    so a run of other models neither resumes from nor overwrites a stopped run's seeds."""
    slug = "" if which is None else "." + (_slug(which) or "x")
    return RAW / f"seq_{name}{slug}.partial.json"


def _checkpoint_dir(partial: Path, key: dict[str, Any]) -> Path:
    """Where the fits of a sequence run keep their training state between epochs: the kit's cache
    (``$RECSYS_TF_CACHE``), one folder per partial file and recipe, so another recipe starts afresh."""
    from recsys_tf.data.download import cache_dir

    tag = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir() / "checkpoints" / f"{partial.name.removesuffix('.partial.json')}-{tag}"


def _partial_runs(key: str) -> list[dict[str, Any]]:
    """The seeds each stopped sequence run finished (``docs/results/<key>[.<models>].partial.json``: one file per
    ``--models`` choice, so several runs of other models can be stopped at once), each marked partial."""
    found = (_partial_result(key, json.loads(path.read_text())) for path in sorted(RAW.glob(f"{key}.*partial.json")))
    return [part for part in found if part is not None]


def _partial_result(key: str, saved: dict[str, Any]) -> dict[str, Any] | None:
    runs = saved.get("runs") or {}
    if not runs:
        return None
    name = key.split("_", 1)[1]
    res = saved.get("result") or {"protocol": "as in the LastFM section, with negatives drawn uniformly per seed",
                                  "data": f"{'the SASRec paper' if name == 'games' else 'S3-Rec'}'s {name}", "dataset": name,
                                  "seeds": sorted(int(x) for x in runs), "rows": over_seeds(list(runs.values()))}  # fmt: skip
    key = saved.get("key") or {}
    return {**res, "partial": True, "which": key.get("which"), "stale": key != _seq_key(name, key.get("which"))}


def _fit_files(key: str) -> list[tuple[Path, dict[str, Any]]]:
    """The partial files of experiment ``key`` that keep fits of a seed not yet finished, with their contents."""
    saved = [(path, json.loads(path.read_text())) for path in sorted(RAW.glob(f"{key}.*partial.json"))]
    return [(path, s) for path, s in saved if s.get("fits")]


def _started_models(key: str) -> set[str]:
    """The model labels (as in SEQ_MODELS) with a fit kept in a partial file of ``key``: under way, not "not run yet"."""
    return {tag.split(" | ")[0] for _, saved in _fit_files(key) for tag in saved["fits"]}


def _kept_fits(key: str) -> list[str]:
    """The fits a stopped sequence run finished inside a seed it did not finish (each kept in its partial file as
    it ended): the table shows a seed only once all its fits are done, so the page names these, or an hour-long
    fit would stay invisible until its seed's last fit ends. Validation numbers only: the first seed's dropout
    is still to be chosen on them."""
    name, lines = key.split("_", 1)[1], []
    for path, saved in _fit_files(key):
        which = (saved.get("key") or {}).get("which")
        fits = "; ".join(f"{tag.replace(' | ', ', ')}: best validation NDCG@10 {f['val_ndcg@10']:.4f} at epoch "
                         f"{f['row']['epoch']}, {f['row']['seconds'] / 60:.0f} min" for tag, f in sorted(saved["fits"].items()))  # fmt: skip
        lines += ["", f"**Fits done in a seed not yet finished** ({path.name}): {fits}. Their test numbers join the table "
                      f"when the seed's other fits end; {_resume(key, which, saved.get('key') != _seq_key(name, which))}."]  # fmt: skip
    return lines


def _resume(key: str, which: str | None, stale: bool) -> str:
    """The command that goes on with a stopped sequence run of ``--models which`` on experiment ``key``, and what it does."""
    models = f" --models '{which}'" if which else ""
    return ("`python -m recsys_tf.reproduce --only " + key + models + "` "
            + ("runs it again from the first seed with the current recipe (the stopped run used an earlier one)" if stale
            else "resumes at the first fit it had not finished (inside it, after the last epoch the stopped fit finished, "
                 "when its checkpoint in $RECSYS_TF_CACHE/checkpoints is still there)"))  # fmt: skip


def _other_mark(others: list[str], protocol: str) -> str:
    return f"[other recipe {others.index(protocol) + 1}]" if len(others) > 1 else "[other recipe]"


def _recipe_difference(protocol: str, table_protocol: str) -> str:
    """The clauses of ``protocol`` (split at ``,``, ``;`` and parentheses) that ``table_protocol`` lacks:
    where a row's recipe departs from its table's, without reading two long recipes side by side."""
    def clauses(text: str) -> list[str]:
        return [c.strip() for c in re.split(r"[;,()]", text) if c.strip()]

    ours = set(clauses(table_protocol))
    return "; ".join(c for c in clauses(protocol) if c not in ours) or "only the wording"


def _hit_rate_se(p: float, n: int) -> float:
    """The binomial standard error of a hit rate ``p`` over ``n`` test users, each one hit or miss: sqrt(p (1 - p) / n)."""
    return float(np.sqrt(p * (1 - p) / n))


def _gap_se(p1: float, p2: float, n: int) -> float:
    """The standard error of the gap between two hit rates on the same ``n`` test users, at most
    sqrt((p1 (1 - p1) + p2 (1 - p2)) / n): the unpaired bound, as hits the two models share only make it smaller."""
    return float(np.hypot(_hit_rate_se(p1, n), _hit_rate_se(p2, n)))


SHOWN_APART = 2.0  # a gap of at least this many standard errors (:func:`_gap_se`) is one the test set tells apart


def _gap_in_se(p1: float, p2: float, n: int) -> float:
    """The gap between two hit rates on the same ``n`` test users in (unpaired) standard errors of it."""
    return abs(p1 - p2) / _gap_se(p1, p2, n)


def _negatives(res: dict[str, Any]) -> str:
    """The number of sampled negatives the protocol text names (S3-Rec's 99 unless it says otherwise)."""
    found = re.search(r"against (\d+) negatives", res.get("protocol", ""))
    return found[1] if found else "99"


def _test_set_error(n: int | None, published: tuple | None) -> list[str]:
    """How far the test set alone moves an HR@10 near the published SASRec number: each of the ``n`` test
    users is one hit or miss, so the binomial standard error is sqrt(p (1 - p) / n)."""
    if not n or not published:
        return []
    parts = []
    for what, p in (("full ranking", published[0][0]), ("sampled negatives", published[1][0])):
        if not np.isnan(p):
            se = _hit_rate_se(p, n)
            parts.append(f"{what}: {se:.4f} at the published {_num(p)} ({se / p:.1%} of it; the 5% margin is {0.05 * p / se:.1f} "
                         "standard errors)")  # fmt: skip
    return ["", f"How far the test set alone can move HR@10: each of the {n:,} test users is one hit or miss, so the sampling "
                f"standard error is sqrt(p (1 - p) / n); {'; '.join(parts)}. The ± after our numbers is the spread over seeds on "
                "this one test set and does not include it."]  # fmt: skip


def _protocol_flip(res: dict[str, Any]) -> list[str]:
    """Which of SASRec and BERT4Rec leads on HR@10 under each protocol, ours and S3-Rec's, and whether the lead is larger
    than the test set's own noise: with n test users scored by both models, the standard error of the gap is at most
    sqrt((p1 (1 - p1) + p2 (1 - p2)) / n) (the unpaired bound; hits the two models share only make it smaller)."""
    sas = res["rows"].get("SASRec (BCE, 1 negative: the paper's loss)")
    bert = res["rows"].get("BERT4Rec (masked items, cross-entropy)")
    if not (sas and bert):
        return []
    n = res.get("test_users")

    def lead(b: float, s: float) -> str:
        text = f"{'BERT4Rec ahead of SASRec' if b > s else 'SASRec ahead of BERT4Rec'} on HR@10 ({max(b, s):.4f} vs {min(b, s):.4f}"
        if n:
            z = _gap_in_se(b, s, n)
            text += f", {z:.2f} unpaired standard errors of the gap" + ("" if z >= SHOWN_APART else ": not shown apart by this test set")
        return text + ")"

    where = {"hr_sampled": f"with {_negatives(res)} negatives", "hr_full": "with full ranking"}
    ours = [f"{where[key]} {lead(bert[key]['mean'], sas[key]['mean'])}" for key in where]
    pub = S3REC.get(res.get("dataset", ""), {})
    theirs = "S3-Rec's tables (other data): BERT4Rec ahead with negatives on four of five data sets, behind on all five with full ranking"
    if "BERT4Rec" in pub:  # (full, sampled) pairs of (HR@10, NDCG@10)
        theirs = "S3-Rec's on this data: " + ", ".join(f"{where[key]} {lead(pub['BERT4Rec'][i][0], pub['SASRec'][i][0])}"
                                                     for key, i in (("hr_sampled", 1), ("hr_full", 0)))  # fmt: skip
    return ["", f"The protocol flip (Krichene & Rendle, KDD 2020), ours: {', '.join(ours)}. {theirs}."]


def _flipped_pairs(res: dict[str, Any]) -> list[str]:
    """Every pair of our models that the two protocols put in opposite order on HR@10, and whether the test set
    tells the pair apart both ways (each gap at least two unpaired standard errors, :func:`_gap_se`): the flip of
    Krichene & Rendle among any of the models, not only SASRec and BERT4Rec. The leaky PopRec row takes no part."""
    n = res.get("test_users")
    rows = [name for name in res["rows"] if name != POPREC_S3REC]
    if not n or len(rows) < 2:
        return []
    full = {name: res["rows"][name]["hr_full"]["mean"] for name in rows}
    sampled = {name: res["rows"][name]["hr_sampled"]["mean"] for name in rows}
    negatives, shown, within = _negatives(res), [], 0
    for a, b in itertools.combinations(rows, 2):
        if (full[a] - full[b]) * (sampled[a] - sampled[b]) >= 0:
            continue
        first, second = (a, b) if full[a] > full[b] else (b, a)
        fz, sz = _gap_in_se(full[first], full[second], n), _gap_in_se(sampled[first], sampled[second], n)
        if min(fz, sz) < SHOWN_APART:
            within += 1
            continue
        shown.append(f"{first} ahead of {second} with full ranking ({full[first]:.4f} vs {full[second]:.4f}, {fz:.1f} standard "
                     f"errors), behind it with {negatives} negatives ({sampled[first]:.4f} vs {sampled[second]:.4f}, {sz:.1f})")  # fmt: skip
    flips = f"{within} pair{'s' if within != 1 else ''} flip{'' if within != 1 else 's'}"
    if shown:
        text = ("Our own models flip by more than the test set's noise (at least two unpaired standard errors each way): "
                + "; ".join(shown) + (f"; {flips} only within the noise" if within else "") + ".")  # fmt: skip
    elif within:
        text = f"No pair of our models flips by more than the test set's noise (two unpaired standard errors each way); {flips} within it."
    else:
        text = "The two protocols put every pair of our models in the same order on HR@10."
    return ["", text]


def _sequence_section(res: dict[str, Any]) -> list[str]:
    pubs = S3REC.get(res["dataset"], {})
    lines = [f"Protocol: {res['protocol']}. Data: {res['data']}; seeds {res['seeds']}.", "",
             "| model | published, full ranking | ours, full ranking | published, sampled negatives | ours, sampled negatives | SASRec vs the published: within 5% or better (BCE), beats it (cross-entropy)? | dropout (validation NDCG@10 of each) | epoch | s / epoch |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    others = list(dict.fromkeys(r["protocol"] for r in res["rows"].values() if "protocol" in r))
    for name, r in res["rows"].items():
        match = pubs.get(re.match(r"\w+", name).group())  # the model family: "SASRec" of "SASRec, the authors' block (...)"
        full_pub = f"{_num(match[0][0])} / {_num(match[0][1])}" if match and not np.isnan(match[0][0]) else ""
        samp_pub = f"{_num(match[1][0])} / {_num(match[1][1])}" if match else ""
        verdict = ""
        if match and name.startswith("SASRec"):
            pairs = [(k, p) for k, p in (("hr_full", match[0][0]), ("ndcg_full", match[0][1]), ("hr_sampled", match[1][0]),
                                          ("ndcg_sampled", match[1][1])) if not np.isnan(p)]  # fmt: skip
            beat = name.startswith("SASRec (full cross-entropy)")  # the goal there: beat the published SASRec
            ok = {k: r[k]["mean"] > p if beat else r[k]["mean"] >= 0.95 * p for k, p in pairs}
            verdict = ("beats it: " if beat else "") + (f"yes, all {len(ok)}" if all(ok.values()) else
                       f"{sum(ok.values())} of {len(ok)} ({', '.join(f'{k}: ' + ('yes' if o else 'no') for k, o in ok.items())})")  # fmt: skip
        epoch = _pm(r["epoch"], 1) if "epoch" in r else ""
        per_epoch = _pm(r["seconds_per_epoch"], 2) if "seconds_per_epoch" in r else ""
        tune = res.get("tuning", {}).get(name)
        dropout = (f"{tune['dropout']:g} ({', '.join(f'{d}: {v:.4f}' for d, v in tune['val_ndcg@10'].items())})" if tune
                   else f"{r['dropout']['mean']:g}" if "dropout" in r else "")  # fmt: skip
        if "protocol" in r:
            name += f" {_other_mark(others, r['protocol'])}"
        lines.append(f"| {name} | {full_pub} | **{_pm(r['hr_full'])} / {_pm(r['ndcg_full'])}** | {samp_pub} "
                     f"| **{_pm(r['hr_sampled'])} / {_pm(r['ndcg_sampled'])}** | {verdict} | {dropout} | {epoch} | {per_epoch} |")  # fmt: skip
    for protocol in others:
        lines += ["", f"Rows marked {_other_mark(others, protocol)} were trained with another recipe than the one above "
                      f"(they stand until re-run with it); it differs in: {_recipe_difference(protocol, res['protocol'])}. "
                      f"The whole recipe: {protocol}."]  # fmt: skip
    if POPREC_S3REC in res["rows"]:
        lines += ["", "PopRec counts training interactions only. S3-Rec's full-ranking PopRec numbers come out when the counts "
                      "also take in the validation and test items (the second PopRec row; exactly on Beauty and Sports, HR@10 "
                      "exactly on LastFM): the published baseline saw the test set."]  # fmt: skip
    lines += _test_set_error(res.get("test_users"), pubs.get("SASRec"))
    lines += _protocol_flip(res)
    lines += _flipped_pairs(res)
    key = f"seq_{res['dataset']}"
    if res.get("partial"):
        lines += ["", f"**Partly run**: seeds {res['seeds']} of 3 have finished (the run stopped; the table is over those seeds). "
                      f"{_resume(key, res.get('which'), res.get('stale', False))}."]  # fmt: skip
    for part in res.get("partly", []):
        lines += ["", f"**Partly run**: {part['which']!r}, seeds {part['seeds']} of 3 (rows marked \"partly run\"); "
                      f"{_resume(key, part['which'], part.get('stale', False))}."]  # fmt: skip
    lines += res.get("kept_fits", [])
    missing = [label for label in SEQ_MODELS
               if not any(n.startswith(label) for n in res["rows"]) and label not in res.get("started", set())]
    if missing:
        lines += ["", f"Not run yet on this data: {'; '.join(missing)} (hours each on the 2-core CPU); "
                      f"`python -m recsys_tf.reproduce --only seq_{res['dataset']} --models TEXT` adds the rows whose "
                      "label contains TEXT to this table."]  # fmt: skip
    devices = sorted({d for r in res["rows"].values() for d in r.get("device", [])})
    if devices:
        lines += ["", f"Models trained on: {'; '.join(devices)}."]
    return lines + [""]


def render(results: dict[str, Any], dev: str) -> str:
    lines = ["# Reproduced results", "", f"Generated by `make reproduce` (`python -m recsys_tf.reproduce`) on {time.strftime('%Y-%m-%d')}.",
             f"Device: {dev}. Raw numbers, per seed: `docs/results/*.json`. Published and peer numbers: "
             "`../shared/reference/published-results.md`. Every setting is chosen on validation data carved from training; "
             "test data is used once, for the numbers below. \"within\" means the published number lies inside our "
             "mean ± 2 sd over seeds.", ""]  # fmt: skip
    totals = [f"{k} {r['seconds'] / 60:.1f} min" for k, r in results.items() if "seconds" in r]
    if totals:
        lines += [f"Run time on {dev}: " + ", ".join(totals) + f"; total {sum(r.get('seconds', 0) for r in results.values()) / 60:.1f} min.", ""]
    if "rows" in results.get("mf_ml100k", {}):
        lines += _rating_section(results["mf_ml100k"])
    for key, title in (("ncf_ml100k", "Top-k with the NCF protocol on MovieLens 100K (99 sampled negatives)"),
                       ("full_ranking_ml100k", "Full ranking on MovieLens 100K, beside RecBole"),
                       ("ncf_ml1m", "The NCF protocol on MovieLens 1M (the paper's split)")):  # fmt: skip
        res = results.get(key) or {"skipped": "not run"}
        lines += [f"## {title}", ""]
        if "rows" not in res:
            lines += [f"Not run: {res.get('skipped', 'not run')}."]
            if key == "ncf_ml1m":
                lines += ["", "Published targets: NeuMF with pre-training, 64 factors, HR@10 0.730 / NDCG@10 0.447 (He et al. 2017); "
                          "Ferrari Dacrema et al.'s re-runs: TopPopular 0.4533 / 0.2542, iALS 0.7109 / 0.4382, EASE 0.7192 / 0.4494, "
                          "NeuMF 0.7093 / 0.4349. The test file and negatives load here (`load_ncf('ml-1m')`; the 156 users whose "
                          "test item is among their own negatives are counted once); the training file comes from the NCF "
                          "repository (`load_ncf('ml-1m', include_train=True)`), which this machine cannot reach. Wherever it can, "
                          "`make reproduce` runs this experiment with the same code as the ML-100K one."]  # fmt: skip
            lines.append("")
            continue
        lines += _ranking_section(key, res)
        if key == "ncf_ml100k":
            knn = [r for n, r in res["rows"].items() if n.startswith("ItemKNN")]
            if len(knn) == 2:
                lines += [f"Item-kNN: keeping each *target* item's 100 neighbours (RecBole, Ferrari Dacrema et al.) gives "
                          f"{_pm(knn[0]['hr'], 3)} HR@10, keeping each *history* item's gives {_pm(knn[1]['hr'], 3)}.", ""]  # fmt: skip
    if "explicit" in results.get("als_ml100k", {}):
        lines += _als_section(results["als_ml100k"], results)
    if "rows" in results.get("als_large_shop", {}):
        lines += _large_shop_section(results["als_large_shop"])
    if "rows" in results.get("din_shop", {}):
        lines += _din_section(results["din_shop"])
    for key, title in (("seq_lastfm", "Sequential recommendation on LastFM (S3-Rec's data)"),
                       ("seq_beauty", "Sequential recommendation on Amazon Beauty (S3-Rec's data)"),
                       ("seq_sports", "Sequential recommendation on Amazon Sports (S3-Rec's data)"),
                       ("seq_games", "SASRec on Amazon Games (the SASRec paper's data, 100 negatives)")):  # fmt: skip
        res, parts = results.get(key), _partial_runs(key)
        if not res and parts:
            res, parts = parts[0], parts[1:]
        for part in parts:
            if not (res and part.get("which") and part.get("data") == res.get("data")):
                continue
            # a stopped run of other models: its finished seeds join the table, marked (hours of work on a CPU)
            extra = {f"{n} (partly run: seeds {part['seeds']})": _with_protocol(r, part["protocol"], res["protocol"])
                     for n, r in part["rows"].items() if not n.startswith("PopRec")}  # fmt: skip
            tuning = {f"{n} (partly run: seeds {part['seeds']})": t for n, t in part.get("tuning", {}).items()}
            res = {**res, "rows": {**res["rows"], **extra}, "tuning": {**res.get("tuning", {}), **tuning},
                   "partly": [*res.get("partly", []), part]}  # fmt: skip
        res = res or {"skipped": HEAVY.get(key, "not run")}
        lines += [f"## {title}", ""]
        res = {**res, "kept_fits": _kept_fits(key), "started": _started_models(key)}
        lines += _sequence_section(res) if "rows" in res else [f"Not run: {res.get('skipped', 'not run')}.", *res["kept_fits"], ""]
    lines += _speed_section()
    return "\n".join(lines)


def _speed_section() -> list[str]:
    """The benchmark numbers of ``bench/results/train-*.json`` (``make bench`` and the GPU script)."""
    rows = []
    for path in sorted((ROOT / "bench" / "results").glob("train-*.json")):
        res = json.loads(path.read_text())
        for key, label in (("throughput_samples_per_s", "Keras fit"), ("throughput_samples_per_s_device_loop", "compiled whole-epoch loop"),
                           ("neumf_fit_samples_per_s", "NeuMF.fit, steady epochs (negatives re-drawn each epoch)")):  # fmt: skip
            for bs, v in res.get(key, {}).items():
                rows.append(f"| {res['device']} | {label} | {bs} | {v / 1e6:.2f} |")
        for key, v in res.items():
            if key.startswith("full_ranking_eval_s"):
                rows.append(f"| {res['device']} | full-ranking evaluation, {key.split(' ', 1)[1]}: {v} s | | |")
    if not rows:
        return []
    return ["## Speed (NeuMF 32 factors, MLP 64-32-16, ML-1M-sized ids)", "",
            "Targets: >= 1 M samples/s on a 2-core CPU, >= 20 M on an H100/H200; full-ranking evaluation of "
            "6,040 x 3,706 scores <= 1 s for MF and <= 10 s for NeuMF on the CPU.", "",
            "| device | what | batch | M samples/s |", "|---|---|---|---|", *rows, ""]  # fmt: skip


def als_ml100k(seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    from recsys_tf.spark.experiments import als_ml100k as run

    return run(seeds[:3])  # every fit starts Spark jobs: 3 seeds keep it to minutes


def als_large_shop(seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    from recsys_tf.spark.experiments import als_large_shop as run

    return run(seeds[:1])


def _als_section(res: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Spark ALS beside the kit's rows of the same protocols (read from their own experiments)."""
    lines = ["## Spark ALS beside the kit's models (MovieLens 100K)", "",
             f"`pyspark.ml.recommendation.ALS` (Spark {res['spark']}, `{res['master']}`, {res['iterations']} iterations) through "
             f"`recsys_tf.models.SparkALS`; seeds {res['seeds']}. Every setting chosen on validation; the kit's rows are those of "
             "the sections above.", "", "| protocol | model | quality, mean ± sd | settings | time |", "|---|---|---|---|---|"]  # fmt: skip
    e = res["explicit"]
    lines.append(f"| u1-u5 RMSE / MAE | **iALS-WR on Spark (explicit)** | **{_pm(e['rmse'])} / {_pm(e['mae'])}** | "
                 f"{', '.join(f'{k} {v:g}' for k, v in e['settings'].items())} | {_pm(e['seconds_per_5_folds'], 1)} s / 5 folds |")  # fmt: skip
    mf = results.get("mf_ml100k", {}).get("rows", {}).get("biased MF (MSE), 100 factors")
    if mf:
        lines.append(f"| u1-u5 RMSE / MAE | biased MF (MSE), 100 factors (kit) | {_pm(mf['rmse'])} / {_pm(mf['mae'])} | | "
                     f"{_pm(mf['seconds_per_5_folds'], 1)} s / 5 folds |")  # fmt: skip
    for key, label, kit_key in (("ncf", "NCF protocol HR@10 / NDCG@10", "ncf_ml100k"), ("full_ranking", "full ranking HR@10 / NDCG@10", "full_ranking_ml100k")):
        for name, r in res[key]["rows"].items():
            chosen = f"alpha {res[key].get('alpha', '')}, reg {res[key].get('reg', '')}" if "alpha" in res[key] else \
                "alpha, reg per seed: " + "; ".join(f"{a:g}, {g:g}" for a, g in zip(r["alpha"]["values"], r["reg"]["values"]))
            lines.append(f"| {label} | **{name}** | **{_pm(r['hr'])} / {_pm(r['ndcg'])}** | {chosen} | {_pm(r['seconds'], 1)} s |")
        for name, r in results.get(kit_key, {}).get("rows", {}).items():
            if name.startswith(("TopPopular", "Pop", "EASE", "MF", "NeuMF")) and "pre-trained" not in name:
                lines.append(f"| {label} | {name} (kit) | {_pm(r['hr'])} / {_pm(r['ndcg'])} | | {_pm(r['seconds'], 1)} s |")
    lines += ["", "Published iALS on ML-1M with the NCF files (Ferrari Dacrema et al.): 0.7109 / 0.4382; that split is not "
              "on this machine (see the ML-1M section).", ""]  # fmt: skip
    return lines


def _large_shop_section(res: dict[str, Any]) -> list[str]:
    st = res["stages"]
    lines = ["## ALS and MF on the large shop", "", f"{res['data']}. Protocol: {res['protocol']}. {res['train_pairs']:,} training pairs, "
             f"{res['test_users']:,} test shoppers. Stages on pandas: generate {st['generate_s']:.0f} s, clean {st['clean_pandas_s']:.0f} s, "
             f"implicit pairs {st['implicit_pandas_s']:.0f} s, split {st['split_pandas_s']:.0f} s.", "",
             "| model | HR@10 | NDCG@10 | fit | full-ranking evaluation |", "|---|---|---|---|---|"]  # fmt: skip
    for name, runs in res["rows"].items():
        hr, nd = spread([r["hr"] for r in runs]), spread([r["ndcg"] for r in runs])
        lines.append(f"| {name} | {_pm(hr)} | {_pm(nd)} | {np.mean([r['fit_s'] for r in runs]):.0f} s | {np.mean([r['eval_s'] for r in runs]):.0f} s |")
    return lines + ["", "Read with care: neither model is tuned here. The kit's MF learns from 4 uniformly drawn negatives per pair; "
                    "among 20,000 products those are easy to tell apart, and it ends near popularity (its loss flat from the "
                    "4th epoch; the compiled loop and Keras fit give the same model). ALS weighs every unobserved pair, which "
                    "is what full ranking of a large catalog asks for. Measured once on the 35,000-shopper shop's validation "
                    "split: MF 0.037 (4 negatives), 0.047 (16 negatives), 0.032 (40 epochs); ALS 0.298. Popularity is scored "
                    "on the host and ALS from NumPy factors, MF on the device: hence their evaluation times.", ""]


EXPERIMENTS = {"mf_ml100k": mf_ml100k, "ncf_ml100k": ncf_ml100k, "full_ranking_ml100k": full_ranking_ml100k, "ncf_ml1m": ncf_ml1m,
               "als_ml100k": als_ml100k, "als_large_shop": als_large_shop,
               "din_shop": din_shop, "seq_lastfm": seq_lastfm, "seq_beauty": seq_beauty, "seq_sports": seq_sports, "seq_games": seq_games}  # fmt: skip
MODEL_FILTERS = {"din_shop", "seq_lastfm", "seq_beauty", "seq_sports", "seq_games"}  # the experiments that take --models
# run only when named (--only) or with --heavy: hours on a 2-core CPU, minutes on a GPU
HEAVY = {
    "als_large_shop": "about 20 minutes on the 2-core CPU (the large shop generated, cleaned, ALS and MF trained, 100,000 "
                      "shoppers ranked); run `python -m recsys_tf.reproduce --only als_large_shop`",
    "seq_beauty": "hours on the 2-core CPU (22,363 users, 12,101 items; an epoch of SASRec-BCE with its validation ~12 s, "
                  "until validation stops improving: 20-40 min per seed, the first seed twice over for the two dropouts, the "
                  "cross-entropy models about twice that); run `python -m "
                  "recsys_tf.reproduce --only seq_beauty` (`--models TEXT` for some models, finished seeds are kept; on a GPU: "
                  "`KERAS_BACKEND=jax`)",
    "seq_sports": "too long for the 2-core CPU budget (35,598 users, 18,357 items); run `python -m recsys_tf.reproduce --only seq_sports`",
    "seq_games": "hours on the 2-core CPU (31,013 users, 23,715 items; an epoch of SASRec-BCE with its validation ~28 s, "
                 "70-80 min a seed, the first seed twice over for the two dropouts, the cross-entropy models longer); run "
                 "`python -m recsys_tf.reproduce --only seq_games` "
                 "(`--models TEXT` for some models, finished seeds are kept)",
}  # fmt: skip


def merge_rows(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A run of some models (``--models``) added to an earlier run: the new rows replace the old
    ones of the same label, the old rows of other models stay -- only when both runs share data and
    seeds (otherwise their numbers could not stand in one table, and the new run stands alone). Old
    rows trained with another recipe keep it (``protocol`` in the row) and their ``tuning``, and the
    table says so."""
    same = all(old.get(k) == new.get(k) for k in ("data", "seeds")) and "rows" in old and "rows" in new
    if not same:
        print("[reproduce] the earlier run used other data or seeds: its rows are not kept", flush=True)
        return new
    seconds = old.get("seconds", 0) + new.get("seconds", 0)
    rows = {n: _with_protocol(r, old["protocol"], new["protocol"]) for n, r in old["rows"].items()}
    # a row kept under its own recipe keeps how its dropout was chosen: that is part of its recipe
    tuning = {n: t for n, t in old.get("tuning", {}).items() if n in rows}
    return {**new, "rows": {**rows, **new["rows"]}, "tuning": {**tuning, **new.get("tuning", {})}, "seconds": round(seconds, 1)}


def _with_protocol(row: dict[str, Any], protocol: str, table_protocol: str) -> dict[str, Any]:
    """``row`` (trained under ``protocol``) in a table of ``table_protocol``: it carries its own when they differ."""
    own = row.get("protocol", protocol)
    return {k: v for k, v in row.items() if k != "protocol"} if own == table_protocol else {**row, "protocol": own}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="run only experiments whose name contains this text")
    ap.add_argument("--heavy", action="store_true", help="also run the experiments too long for a 2-core CPU")
    ap.add_argument("--seeds", type=int, default=len(SEEDS), help=f"seeds per row (default {len(SEEDS)}; fewer for a quick look)")
    ap.add_argument("--models", action="append",
                    help="sequence experiments: run only the models whose label contains this text (e.g. 'SASRec (BCE'; 'PopRec': the popularity rows "
                         "only); din_shop: the rows whose 'pooling | item features | activation |' contains it (may be given again: any of them); "
                         "their rows replace those of an earlier run on the same data and seeds; the others stay (marked when trained with another recipe)")
    args = ap.parse_args(argv)
    RAW.mkdir(parents=True, exist_ok=True)
    from recsys_tf.speed import device_name

    dev = device_name()
    for name, fn in EXPERIMENTS.items():
        path = RAW / f"{name}.json"
        chosen = args.only in name if args.only is not None else (args.heavy or name not in HEAVY)
        if chosen:
            print(f"[reproduce] {name} on {dev}", flush=True)
            start = time.perf_counter()
            partial = args.models is not None and name in MODEL_FILTERS
            if partial and name.startswith("seq_") and len(args.models) > 1:
                ap.error(f"{name} takes one --models text (the models whose label contains it)")
            try:
                res = fn(seeds=tuple(range(args.seeds)), **({"models": args.models if name == "din_shop" else args.models[0]} if partial else {}))
            except DataNotFoundError as exc:
                res = {"skipped": str(exc).split(". Looked in")[0]}
            seconds = time.perf_counter() - start + res.pop("seconds_in_earlier_runs", 0.0)  # a resumed run counts its earlier part
            res.update({"device": dev, "seconds": round(seconds, 1), "date": time.strftime("%Y-%m-%d")})
            if partial and path.exists():
                res = merge_rows(json.loads(path.read_text()), res)
            atomic_write(path, json.dumps(res, indent=2, default=float))
    # read back at the end, not as the loop passes: a run of hours must not put back the rows of an
    # experiment that another run re-ran meanwhile
    results = {name: json.loads(p.read_text()) for name in EXPERIMENTS if (p := RAW / f"{name}.json").exists()}
    atomic_write(DOCS / "RESULTS.md", render(results, dev))
    print((DOCS / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
