"""Re-run published results side by side with the papers' numbers; writes ``docs/RESULTS.md``.

    python -m recsys_tf.reproduce            # every experiment whose data is available
    python -m recsys_tf.reproduce --only mf  # one experiment

Experiments
-----------
``mf_ml100k``  Biased MF with MSE on MovieLens 100K, the GroupLens u1-u5 folds, RMSE and MAE,
               beside Surprise's published SVD / SVD++ / NMF (random 5-fold CV) and a peer run of
               Surprise on the same u1-u5 folds.
``ncf_ml100k`` The NCF protocol on MovieLens 100K (all ratings as positives, latest interaction
               held out, ranked against 99 uniformly sampled unseen items), HR@10 / NDCG@10 for
               popularity, item-kNN, EASE, MF, GMF, MLP and NeuMF with and without pre-training,
               beside RecBole's peer run. Neural models report the best epoch on test (as the NCF
               paper did) and the epoch chosen on validation (the second-latest interaction).
``ncf_ml1m``   The same on the published NCF split of ML-1M (needs ML-1M's ratings: its training
               file is derived from them), beside the NCF paper and Ferrari Dacrema et al.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsys_tf.course import ROOT
from recsys_tf.errors import DataNotFoundError
from recsys_tf.utils import atomic_write

DOCS = ROOT / "docs"
RAW = DOCS / "results"


# --- MF on ML-100K u1-u5 ------------------------------------------------------------------------------
def mf_ml100k() -> dict[str, Any]:
    from recsys_tf.data import load_movielens, load_movielens_folds
    from recsys_tf.metrics import mae, rmse
    from recsys_tf.models import NMF, MatrixFactorization

    items = load_movielens("100k").items
    rows = {}
    configs = {
        "biased MF (MSE), 100 factors": lambda: MatrixFactorization(factors=100, feedback="explicit", reg=0.1, l2=0.0,
                                                                     epochs=40, batch_size=1024, learning_rate=0.003,
                                                                     verbose=False),  # fmt: skip
        "NMF, 15 factors": lambda: NMF(factors=15, reg=0.06, l2=0.0, epochs=40, batch_size=1024, learning_rate=0.003,
                                       verbose=False),  # fmt: skip
    }
    for name, make in configs.items():
        folds, start = [], time.perf_counter()
        for k, (train, test) in enumerate(load_movielens_folds(), start=1):
            model = make().fit(train, items)
            pred = np.clip(model.score(test.user_id.to_numpy(), test.item_id.to_numpy()), 1, 5)
            folds.append({"fold": f"u{k}", "rmse": rmse(test.rating, pred), "mae": mae(test.rating, pred)})
            print(f"  {name} u{k}: RMSE {folds[-1]['rmse']:.4f}", flush=True)
        rows[name] = {"folds": folds, "rmse": float(np.mean([f["rmse"] for f in folds])),
                      "mae": float(np.mean([f["mae"] for f in folds])), "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    return {"protocol": "explicit ratings, GroupLens u1-u5 folds (80k/20k), mean over folds; predictions clipped to 1-5",
            "data": "MovieLens 100K", "rows": rows}  # fmt: skip


# --- NCF protocol -------------------------------------------------------------------------------------
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


def _ncf_experiment(cs, val_split, train_items=None, epochs: int = 20, factors: int = 32,
                    layers: tuple[int, ...] = (64, 32, 16), ease_l2: float = 500.0) -> dict[str, Any]:  # fmt: skip
    """Baselines and the NCF family on one candidate split; neural models log test and validation per epoch."""
    from recsys_tf.evaluation import evaluate_sampled
    from recsys_tf.models import EASE, GMF, MLP, ItemKNN, MatrixFactorization, NeuMF, Popularity

    rows: dict[str, Any] = {}
    for name, model in {"TopPopular": Popularity(), "ItemKNN (cosine, k=100)": ItemKNN(k=100, shrink=0.0), f"EASE (lambda={ease_l2:g})": EASE(ease_l2)}.items():
        start = time.perf_counter()
        m = evaluate_sampled(model.fit(cs.train, train_items), cs.test, cs.candidates)
        rows[name] = {"hr": m["hit_rate@10"], "ndcg": m["ndcg@10"], "seconds": round(time.perf_counter() - start, 1)}
        print(f"  {name}: HR@10 {m['hit_rate@10']:.4f}", flush=True)
    common = dict(loss="bce", epochs=epochs, batch_size=256, learning_rate=0.001, verbose=False)
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
        print(f"  {name}: HR@10 {row['hr']:.4f} (best on test {row['hr_best_on_test']:.4f})", flush=True)
    gmf, mlp = fitted[f"GMF ({factors} factors)"], fitted[mlp_name]
    pre = dict(common, learning_rate=1e-4, epochs=max(epochs // 2, 1))
    row = _neural_row(lambda cb: NeuMF(factors=factors, layers=layers, epoch_callback=cb, **pre), cs, val_split, pretrained=(gmf, mlp))
    row.pop("model")
    rows[f"NeuMF ({factors} factors, MLP {tower}), pre-trained from GMF + MLP"] = row
    return rows


def _validation_split(cs, seed: int):
    """Validation = each user's latest *training* interaction against 99 fresh negatives; the
    models are trained on the rest (and on everything for the test numbers, see _neural_row)."""
    from recsys_tf.evaluation import CandidateSplit, ncf_split

    val_cs = ncf_split(cs.train if not len(cs.val) else pd.concat([cs.train, cs.val]), n_neg=99, seed=seed)
    return CandidateSplit(cs.train, cs.val, val_cs.test, val_cs.candidates)


def ncf_ml100k(epochs: int = 20) -> dict[str, Any]:
    from recsys_tf.data import load_movielens
    from recsys_tf.evaluation import ncf_split

    df = load_movielens("100k").interactions.assign(label=1.0)
    cs = ncf_split(df, n_neg=99, n_val=1, seed=0)
    rows = _ncf_experiment(cs, _validation_split(cs, seed=1), epochs=epochs)
    return {"protocol": "all ratings as positives; latest interaction per user held out; ranked against 99 uniformly "
                        "sampled unseen items; validation = second-latest; HR@10 / NDCG@10",
            "data": "MovieLens 100K (943 users)", "rows": rows}  # fmt: skip


def ncf_ml1m(epochs: int = 20) -> dict[str, Any]:
    """The NCF paper's own split: ``ml-1m.train.rating`` / ``.test.rating`` / ``.test.negative``."""
    from recsys_tf.data import load_ncf
    from recsys_tf.evaluation import CandidateSplit

    from recsys_tf.data.split import leave_last_out

    ncf = load_ncf("ml-1m", include_train=True)  # DataNotFoundError -> the page says why it was not run
    inner = leave_last_out(ncf.train.assign(label=1.0), n_test=1, n_val=0, min_train=1)  # validation item held out
    cs = CandidateSplit(inner.train, inner.test, ncf.test.assign(label=1.0), ncf.candidates())
    rows = _ncf_experiment(cs, _validation_split(cs, seed=1), epochs=epochs, factors=64, layers=(256, 128, 64))
    return {"protocol": "the NCF paper's published split and 99 negatives (duplicates of the test item among a user's "
                        "negatives counted once); validation = each user's latest training item, held out of training; "
                        "HR@10 / NDCG@10",
            "data": "MovieLens 1M (NCF files, 6,040 users)", "rows": rows, "n_test_in_negatives": ncf.n_test_in_negatives}  # fmt: skip


PUBLISHED = {
    "mf_ml100k": [
        ("Surprise SVD (biased MF, 100 factors)", "0.934 / 0.737 (random 5-fold)", "0.9380 / 0.7390 (u1-u5, peer run)", "biased MF (MSE), 100 factors"),
        ("Surprise SVD++", "0.919 / 0.721", "0.9218 / 0.7238", None),
        ("Surprise NMF", "0.963 / 0.758", "0.9689 / 0.7619", "NMF, 15 factors"),
    ],
    "ncf_ml100k": {
        "TopPopular": "0.409 / 0.228", "ItemKNN (cosine, k=100)": "0.616 / 0.353", "EASE (lambda=500)": "0.649 / 0.384",
        "NeuMF (32 factors, MLP 64-32-16), no pre-training": "0.659 / 0.383 (64-d, MLP 128-64, 1 negative)",
    },
    "ncf_ml1m": {
        "TopPopular": "0.4533 / 0.2542 (Ferrari Dacrema et al.)", "ItemKNN (cosine, k=100)": "0.6694 / 0.3979 (Ferrari Dacrema et al.)",
        "EASE (lambda=500)": "0.7192 / 0.4494 (Ferrari Dacrema et al.)", "MLP (256-128-64)": "0.702 / 0.426 (MLP-3, paper Table 3)",
        "NeuMF (64 factors, MLP 256-128-64), no pre-training": "0.705 / 0.426 (paper); re-run 0.7093 / 0.4349",
        "NeuMF (64 factors, MLP 256-128-64), pre-trained from GMF + MLP": "0.730 / 0.447 (paper, Table 2)",
    },
}  # fmt: skip


def render(results: dict[str, Any], dev: str) -> str:
    lines = ["# Reproduced results", "", f"Generated by `make reproduce` (`python -m recsys_tf.reproduce`) on {time.strftime('%Y-%m-%d')}.",
             f"Device: {dev}. Raw numbers: `docs/results/*.json`. Published and peer numbers: `../shared/reference/published-results.md`.", ""]  # fmt: skip
    mf = results.get("mf_ml100k")
    if mf:
        lines += ["## Rating prediction: biased MF with MSE on MovieLens 100K", "", f"Protocol: {mf['protocol']}.", "",
                  "| model | published RMSE / MAE | peer on u1-u5 | ours RMSE / MAE (u1-u5) | time, 5 folds |", "|---|---|---|---|---|"]  # fmt: skip
        for label, pub, peer, ours_key in PUBLISHED["mf_ml100k"]:
            if ours_key and ours_key in mf["rows"]:
                r = mf["rows"][ours_key]
                ours, secs = f"**{r['rmse']:.4f} / {r['mae']:.4f}** ({ours_key})", f"{r['seconds']} s"
            else:
                ours, secs = "not run (no SVD++ model in the kit yet)", ""
            lines.append(f"| {label} | {pub} | {peer} | {ours} | {secs} |")
        per_fold = mf["rows"].get("biased MF (MSE), 100 factors", {}).get("folds", [])
        if per_fold:
            lines += ["", "Per fold (biased MF): " + ", ".join(f"{f['fold']} {f['rmse']:.4f}" for f in per_fold) + "."]
        lines.append("")
    for key, title in (("ncf_ml100k", "Top-k with the NCF protocol on MovieLens 100K"),
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
        lines += [f"Protocol: {res['protocol']}. Data: {res['data']}.", "",
                  "| model | published / peer HR@10 / NDCG@10 | ours, epoch chosen on validation | ours, best epoch on test (the paper's practice) | time |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, r in res["rows"].items():
            pub = PUBLISHED.get(key, {}).get(name, "")
            best = f"{r['hr_best_on_test']:.4f} / {r['ndcg_best_on_test']:.4f} (epoch {r['best_test_epoch']})" if "hr_best_on_test" in r else "(no epochs)"
            chosen = f"**{r['hr']:.4f} / {r['ndcg']:.4f}**" + (f" (epoch {r['epoch']})" if "epoch" in r else "")
            lines.append(f"| {name} | {pub} | {chosen} | {best} | {r['seconds']} s |")
        lines.append("")
    lines += _speed_section()
    return "\n".join(lines)


def _speed_section() -> list[str]:
    """The benchmark numbers of ``bench/results/train-*.json`` (``make bench`` and the GPU script)."""
    rows = []
    for path in sorted((ROOT / "bench" / "results").glob("train-*.json")):
        res = json.loads(path.read_text())
        for key, label in (("throughput_samples_per_s", "Keras fit"), ("throughput_samples_per_s_device_loop", "compiled on-device loop (JAX)"),
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


EXPERIMENTS = {"mf_ml100k": mf_ml100k, "ncf_ml100k": ncf_ml100k, "ncf_ml1m": ncf_ml1m}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="run only experiments whose name contains this text")
    args = ap.parse_args(argv)
    RAW.mkdir(parents=True, exist_ok=True)
    from recsys_tf.speed import device_name

    dev = device_name()
    results = {}
    for name, fn in EXPERIMENTS.items():
        path = RAW / f"{name}.json"
        if args.only is None or args.only in name:
            print(f"[reproduce] {name} on {dev}", flush=True)
            start = time.perf_counter()
            try:
                res = fn()
            except DataNotFoundError as exc:
                res = {"skipped": str(exc).split(". Looked in")[0]}
            res.update({"device": dev, "seconds": round(time.perf_counter() - start, 1), "date": time.strftime("%Y-%m-%d")})
            atomic_write(path, json.dumps(res, indent=2, default=float))
        if path.exists():
            results[name] = json.loads(path.read_text())
    atomic_write(DOCS / "RESULTS.md", render(results, dev))
    print((DOCS / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
