"""Training throughput and full-ranking evaluation time of the Keras models.

    python bench/bench_train.py            # -> bench/results/train-<backend>-<cpu|gpu>.json
    KERAS_BACKEND=jax python bench/bench_train.py --samples 20000000 --batches 65536 262144

It also measures the compiled whole-epoch loop with the data resident as tensors
(``recsys_tf.models.fast_loop``: ``jax.lax.scan`` on JAX, one XLA-compiled ``tf.function`` on
TensorFlow), which the kit's models use by default on both.

Throughput: NeuMF with 32 factors and an MLP of 64-32-16 on ML-1M-sized ids (6,040 users, 3,706
items), one Keras ``fit`` epoch on random pairs (4 negatives per positive make ~5M samples per
ML-1M epoch). Evaluation: all 6,040 x 3,706 user-item scores with training items masked, top-10
and metrics, for MF and NeuMF trained one epoch on an ML-1M-shaped synthetic log.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np

from recsys_tf.models import MatrixFactorization, NeuMF
from recsys_tf.speed import device_name, full_ranking_seconds, ml1m_shaped_log, neumf_net, training_throughput, write_bench

OUT = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--batches", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--fit-only", action="store_true", help="only the models' own fit path and evaluation")
    args = ap.parse_args()
    dev = device_name()
    res = {"device": dev, "backend": keras.backend.backend(), "keras": keras.__version__, "date": time.strftime("%Y-%m-%d"),
           "model": "NeuMF, 32 factors, MLP 64-32-16, log loss, Adam", "throughput_samples_per_s": {}}  # fmt: skip
    loops = [] if args.fit_only else ["fit", "device"]
    for loop in loops:
        key = "throughput_samples_per_s" if loop == "fit" else "throughput_samples_per_s_device_loop"
        res.setdefault(key, {})
        for bs in args.batches:
            sps = training_throughput(neumf_net, 6_040, 3_706, bs, n_samples=args.samples, loop=loop)
            res[key][str(bs)] = round(sps)
            print(f"{dev}: {loop} loop, batch {bs}: {sps / 1e6:.2f} M samples/s", flush=True)
    if not args.skip_eval:
        log = ml1m_shaped_log()
        last = log.groupby("user_id").tail(1)
        train = log.drop(last.index)
        # the model's own fit path (negatives re-drawn every epoch): steady epochs, from the
        # per-epoch wall time the model records (the first epoch also sets up and compiles)
        for bs in args.batches:
            model = NeuMF(factors=32, layers=(64, 32, 16), loss="bce", epochs=6, batch_size=bs, verbose=False).fit(train)
            secs = [h["seconds"] for h in model.history_]
            sps = len(train) * 5 / float(np.median(secs[1:]))  # positives + 4 negatives each
            res.setdefault("neumf_fit_samples_per_s", {})[str(bs)] = round(sps)
            res.setdefault("neumf_fit_first_epoch_s", {})[str(bs)] = round(secs[0], 2)
            print(f"NeuMF.fit, ML-1M-sized, batch {bs}: first epoch (set-up, compile) {secs[0]:.1f} s, then "
                  f"{sps / 1e6:.2f} M samples/s", flush=True)
        for name, model in {"MF (32 factors)": MatrixFactorization(factors=32, epochs=1, batch_size=16384, verbose=False),
                            "NeuMF": NeuMF(factors=32, layers=(64, 32, 16), epochs=1, batch_size=16384, verbose=False)}.items():  # fmt: skip
            model.fit(train)
            full_ranking_seconds(model, last.iloc[:50])  # warm-up
            secs, m = full_ranking_seconds(model, last)
            res[f"full_ranking_eval_s {name}"] = round(secs, 3)
            print(f"{name}: full-ranking evaluation of {m['n_users']:,} users x {model.n_items:,} items in {secs:.2f} s", flush=True)
    write_bench(res, "train", OUT)


if __name__ == "__main__":
    main()
