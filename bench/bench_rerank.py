"""Speed of the re-rankers: top-10 out of 200 candidates for every user of an ML-1M-sized set.

    python bench/bench_rerank.py   ->  bench/results/rerank.json

Target (issue 5): at most 2 s for MMR and for DPP on 6,040 users, on 2 CPU cores. Item vectors
are 32-dimensional (an MF embedding's size); groups and needs are 18 genres.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from recsys_tf import rerank
from recsys_tf.speed import device_name
from recsys_tf.utils import atomic_write

OUT = Path(__file__).parent / "results" / "rerank.json"


def main() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, c, k, d, g = 6_040, 3_706, 200, 10, 32, 18
    vectors = rng.normal(size=(n_items, d)).astype(np.float32)
    cand = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :c]
    scores = rng.random((n_users, c))
    groups = rerank.item_distribution([rng.choice(g, rng.integers(1, 4), replace=False) for _ in range(n_items)], g)
    target = rng.dirichlet(np.ones(g), n_users)
    needs = (groups > 0).astype(float)
    runs = {
        "mmr": lambda: rerank.mmr(cand, scores, vectors, k=k, lam=0.7),
        "dpp": lambda: rerank.dpp(cand, scores, vectors, k=k, theta=0.7),
        "calibrated": lambda: rerank.calibrated(cand, scores, groups, target, k=k, lam=0.5),
        "multi_need": lambda: rerank.multi_need(cand, scores, needs, target, k=k, lam=0.5),
    }
    res = {"device": device_name().replace("(tensorflow)", "(NumPy)"), "users": n_users, "candidates": c, "k": k, "seconds": {}}
    for name, fn in runs.items():
        fn()  # warm-up
        start = time.perf_counter()
        fn()
        res["seconds"][name] = round(time.perf_counter() - start, 3)
        print(f"{name}: {res['seconds'][name]} s for {n_users:,} users x {c} candidates -> top-{k}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
