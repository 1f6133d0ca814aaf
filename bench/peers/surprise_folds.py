"""Surprise (scikit-surprise) on the GroupLens u1-u5 folds: the peer run beside the kit's MF and SVD++.

Runs in its own environment (``make peers`` builds ``build/peers``; Surprise is never a dependency
of the kit). ``recsys_tf.reproduce`` calls it with the fold files and a JSON list of runs and
reads one JSON document from standard output:

    build/peers/bin/python bench/peers/surprise_folds.py --folds u1.base u1.test ... --runs '[...]'

Each run: ``{"name": ..., "algo": "SVD" | "SVDpp" | "NMF", "params": {...}, "seeds": [0, 1, ...]}``;
the answer has, per run and seed, the RMSE / MAE of every fold and the seconds for all five.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", nargs="+", required=True, help="u1.base u1.test u2.base u2.test ...")
    ap.add_argument("--runs", required=True, help="JSON list of runs")
    args = ap.parse_args()
    import surprise
    from surprise import NMF, SVD, Dataset, Reader, SVDpp, accuracy

    algos = {"SVD": SVD, "SVDpp": SVDpp, "NMF": NMF}
    reader = Reader(line_format="user item rating timestamp", sep="\t", rating_scale=(1, 5))
    pairs = list(zip(args.folds[0::2], args.folds[1::2]))
    data = Dataset.load_from_folds(pairs, reader=reader)
    from surprise.model_selection import PredefinedKFold

    splits = list(PredefinedKFold().split(data))
    out = {"surprise": surprise.__version__, "runs": []}
    for run in json.loads(args.runs):
        res = {"name": run["name"], "algo": run["algo"], "params": run["params"], "seeds": []}
        for seed in run["seeds"]:
            start, folds = time.perf_counter(), []
            for train, test in splits:
                algo = algos[run["algo"]](random_state=seed, **run["params"])
                pred = algo.fit(train).test(test)
                folds.append({"rmse": accuracy.rmse(pred, verbose=False), "mae": accuracy.mae(pred, verbose=False)})
            res["seeds"].append({"seed": seed, "folds": folds, "seconds": round(time.perf_counter() - start, 2)})
            print(f"  {run['name']} seed {seed}: {sum(f['rmse'] for f in folds) / len(folds):.4f}", file=sys.stderr, flush=True)
        out["runs"].append(res)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
