"""Full-ranking evaluation on the device against the host path, and one shopper's ``recommend``.

    python bench/bench_eval.py                       # -> bench/results/eval-<backend>-<cpu|gpu>.json
    KERAS_BACKEND=jax python bench/bench_eval.py     # (on a GPU: through bench/gpu_check.sh)

MF (32 factors) and NeuMF (32 factors, MLP 64-32-16), trained one epoch on an ML-1M-shaped synthetic
log (6,040 users x 3,706 items). "evaluate": every user scored against every item, training items
masked, top-10 selected and the metrics computed (``model.evaluate``) -- on the device by default,
and through the NumPy host path for comparison. "recommend": one user's top-10. Medians of repeats
after a warm-up. Targets (issue 10): H200 NeuMF <= 0.3 s, MF <= 0.05 s; 2-core CPU NeuMF <= 1.5 s,
MF <= 0.3 s; one user's top-10 <= 5 ms on the CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np

from recsys_tf.models import MatrixFactorization, NeuMF, Recommender
from recsys_tf.speed import device_name, ml1m_shaped_log, write_bench

OUT = Path(__file__).parent / "results"


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: traces and compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dev = device_name()
    res = {"device": dev, "backend": keras.backend.backend(), "keras": keras.__version__, "date": time.strftime("%Y-%m-%d"),
           "data": "ML-1M-shaped synthetic log, 6,040 users x 3,706 items, top-10, training items masked"}  # fmt: skip
    log = ml1m_shaped_log()
    last = log.groupby("user_id").tail(1)
    train = log.drop(last.index)
    models = {"MF (32 factors)": MatrixFactorization(factors=32, epochs=1, batch_size=16384, verbose=False),
              "NeuMF": NeuMF(factors=32, layers=(64, 32, 16), epochs=1, batch_size=16384, verbose=False)}  # fmt: skip
    one = last["user_id"].iloc[0]
    for name, model in models.items():
        model.fit(train)
        users = model.encoder_.users.transform(last["user_id"].to_numpy())
        device_i, _ = model._top_k_codes(users, 10, True)
        host_i, _ = Recommender._top_k_codes(model, users, 10, True)
        res[f"{name}: evaluate_s (device)"] = round(_median_seconds(lambda m=model: m.evaluate(last, k=10), args.repeats), 4)
        res[f"{name}: evaluate_s (host NumPy)"] = round(_median_seconds(
            lambda m=model, u=users: Recommender._top_k_codes(m, u, 10, True), args.repeats), 4)  # fmt: skip
        res[f"{name}: recommend_one_user_ms"] = round(1000 * _median_seconds(lambda m=model: m.recommend(one, 10), 50), 3)
        res[f"{name}: same lists on device and host"] = float((device_i == host_i).mean())
        print(name, {k.split(": ")[1]: v for k, v in res.items() if k.startswith(name)}, flush=True)
    write_bench(res, "eval", OUT)


if __name__ == "__main__":
    main()
