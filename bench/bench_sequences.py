"""Training speed of the sequence models on S3-Rec's Beauty, and recommend_next latency.

    python bench/bench_sequences.py                  # -> bench/results/sequences-<backend>-<cpu|gpu>.json
    KERAS_BACKEND=jax python bench/bench_sequences.py
    python bench/bench_sequences.py --data lastfm    # a smaller data set for a quick look

Per model (GRU4Rec, SASRec with BCE and with full cross-entropy, BERT4Rec; maxlen 50, 64
dimensions, 2 blocks, batch 128): seconds per epoch and sequences per second, from the second
epoch (the first one also compiles), and the median time of ``recommend_next`` for one session of
10 items (goal: <= 10 ms on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np

from recsys_tf.data import load_s3rec
from recsys_tf.data.sequences import leave_one_out, to_sequences
from recsys_tf.models import BERT4Rec, GRU4Rec, SASRec
from recsys_tf.speed import device_name, write_bench

OUT = Path(__file__).parent / "results"
RECIPE = dict(maxlen=50, dim=64, blocks=2, heads=1, dropout=0.2, batch_size=128, learning_rate=1e-3, verbose=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="beauty")
    ap.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec-bce", "SASRec-ce", "BERT4Rec"])
    args = ap.parse_args()
    ds = load_s3rec(args.data)
    split = leave_one_out(to_sequences(ds.interactions))
    train = split.train_frame
    makers = {"GRU4Rec": lambda: GRU4Rec(**RECIPE), "SASRec-bce": lambda: SASRec(loss="bce", **RECIPE),
              "SASRec-ce": lambda: SASRec(loss="ce", **RECIPE), "BERT4Rec": lambda: BERT4Rec(**RECIPE)}  # fmt: skip
    res = {"device": device_name(), "backend": keras.backend.backend(), "keras": keras.__version__, "date": time.strftime("%Y-%m-%d"),
           "data": f"S3-Rec {args.data}: {len(split.train):,} training sequences, {split.full.n_items:,} items",
           "recipe": {k: v for k, v in RECIPE.items() if k != "verbose"}, "models": {}}  # fmt: skip
    session = train.item_id.to_numpy()[:10].tolist()
    for name in args.models:
        model = makers[name]()
        model.epochs = 2
        model.fit(train, ds.items)
        secs = model.history_[1]["seconds"]
        model.recommend_next(session, k=10)  # compile
        lat = []
        for _ in range(50):
            start = time.perf_counter()
            model.recommend_next(session, k=10)
            lat.append(time.perf_counter() - start)
        res["models"][name] = {"seconds_per_epoch": round(secs, 2), "sequences_per_s": round(len(split.train) / secs),
                               "first_epoch_s": round(model.history_[0]["seconds"], 2),
                               "recommend_next_ms": round(1000 * float(np.median(lat)), 2)}  # fmt: skip
        print(f"{res['device']}: {name}: {secs:.1f} s per epoch ({len(split.train) / secs:,.0f} sequences/s), "
              f"recommend_next {1000 * np.median(lat):.1f} ms", flush=True)
    write_bench(res, f"sequences-{args.data}", OUT)


if __name__ == "__main__":
    main()
