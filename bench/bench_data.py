"""Speed of the data layer: shop generation, cleaning, splits, encoding and sampling.

    python bench/bench_data.py [--skip-large]   ->  bench/results/data.json

ML-1M-sized steps run on a synthetic log of ML-1M's shape (1,000,209 rows, 6,040 users,
3,706 items), so the benchmark needs no download. Each step is timed once after a warm-up of
the code path on small data; the numbers are wall-clock seconds on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_tf.data.cleaning import clean_events, k_core, to_implicit
from recsys_tf.data.encoding import InteractionEncoder
from recsys_tf.utils import atomic_write
from recsys_tf.data.sampling import pair_keys, sample_candidates, sample_negatives
from recsys_tf.data.shop import make_shop
from recsys_tf.data.split import leave_last_out, random_split, temporal_split

OUT = Path(__file__).parent / "results" / "data.json"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 3)


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__, "pandas": pd.__version__,
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def ml1m_like(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 1_000_209
    item_p = rng.zipf(1.3, 3_706).astype(float)
    item_p /= item_p.sum()
    return pd.DataFrame({
        "user_id": rng.integers(1, 6_041, n), "item_id": rng.choice(3_706, n, p=item_p) + 1,
        "rating": rng.integers(1, 6, n).astype("float32"), "timestamp": rng.integers(956_703_932, 1_046_454_590, n),
    })  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-large", action="store_true", help="skip the large shop (>= 100k users, >= 10M events)")
    args = ap.parse_args()
    res: dict = {"machine": machine(), "shop": {}, "ml1m_sized": {}}
    sizes = ["tiny", "small"] + ([] if args.skip_large else ["large"])
    for size in sizes:
        shop, t = timed(make_shop, size, seed=0)
        (ev, _), t_clean = timed(clean_events, shop.events, shop.catalog)
        res["shop"][size] = {"users": len(shop.users), "items": len(shop.catalog), "raw_events": len(shop.events),
                             "generate_s": t, "clean_s": t_clean, "clean_events": len(ev)}  # fmt: skip
        print(size, res["shop"][size], flush=True)
        del shop, ev
    df = ml1m_like()
    r = res["ml1m_sized"]
    r["rows"] = len(df)
    _, r["random_split_s"] = timed(random_split, df, 0.2, 0.1)
    _, r["temporal_split_s"] = timed(temporal_split, df, 0.2, 0.1)
    split, r["leave_last_out_s"] = timed(leave_last_out, df, 1, 1)
    _, r["k_core_5_s"] = timed(k_core, df, 5, 5)
    enc, r["encode_fit_transform_s"] = timed(lambda: InteractionEncoder().fit(df).transform(df))
    u, i = enc["user_idx"].to_numpy(), enc["item_idx"].to_numpy()
    keys, r["seen_keys_s"] = timed(pair_keys, u, i, 3_706)
    _, r["negatives_4_per_positive_s"] = timed(sample_negatives, u, keys, 3_706, 4, seed=0)
    _, r["candidates_99_per_user_s"] = timed(sample_candidates, np.arange(6_040), np.zeros(6_040, int), keys, 3_706, 99, seed=0)
    events = df.assign(event=np.where(df.rating >= 4, "purchase", "click"))
    _, r["to_implicit_s"] = timed(to_implicit, events)
    print(r)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, json.dumps(res, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
