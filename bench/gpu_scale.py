"""Data-parallel MF on the lent GPU machine (JAX) -> bench/results/scale-jax-gpu.json.

    bash bench/gpu_scale.sh        # through the device tool, with .whl carried (see bench/gpu_check.sh)

Trains MF (32 factors) on the large shop's training pairs with ``data_parallel()`` over 1..n of the
machine's GPUs (one chip lent: n = 1) and, for comparison, with the kit's single-device compiled loop;
samples/s of the fastest epoch after the first, and HR@10 on a 5,000-shopper sample (full ranking).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from recsys_tf.data.cleaning import clean_events, to_implicit
from recsys_tf.data.shop import make_shop
from recsys_tf.data.split import leave_last_out
from recsys_tf.distributed import data_parallel, devices
from recsys_tf.models import MatrixFactorization
from recsys_tf.speed import device_name

OUT = Path(__file__).parent / "results" / "scale-jax-gpu.json"


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="large", help="shop preset (tiny for a dry run)")
    args = ap.parse_args()
    t = time.perf_counter()
    shop = make_shop(args.size, seed=0)
    split = leave_last_out(to_implicit(clean_events(shop.events, shop.catalog)[0]))
    prep_s = time.perf_counter() - t
    test = split.test[split.test.user_id.isin(np.random.default_rng(0).choice(split.test.user_id.unique(), min(5000, split.test.user_id.nunique()), replace=False))]
    res = {"device": device_name(), "devices": devices(), "train_pairs": len(split.train), "prepare_s": round(prep_s, 1), "rows": []}

    def run(label: str, n: int | None) -> None:
        kw = dict(factors=32, epochs=4, batch_size=65536 if args.size == "large" else 512, learning_rate=0.005, seed=0, verbose=False)
        if n is None:
            m = MatrixFactorization(**kw).fit(split.train)
        else:
            with data_parallel(devices()[:n]):
                m = MatrixFactorization(**kw).fit(split.train)
        steady = min(h["seconds"] for h in m.history_[1:])
        row = {"how": label, "devices": n or 1, "samples_per_s": len(split.train) * (1 + m.n_neg) / steady,
               "hr@10_5000_users": m.evaluate(test, k=10, exclude=split.val)["hit_rate@10"]}  # fmt: skip
        res["rows"].append(row)
        print(row, flush=True)

    run("compiled single-device loop (fit)", None)
    for n in range(1, len(devices()) + 1):
        run("data_parallel (Keras fit over the devices)", n)
    if args.size == "large":
        OUT.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
