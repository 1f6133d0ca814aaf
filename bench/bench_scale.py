"""Scale-out measurements (issue 13) -> bench/results/scale.json.

    python bench/bench_scale.py                      # 10k, 35k and 100k shoppers (about 1.4M, 5M and 14M raw events)
    python bench/bench_scale.py --users 3000 10000   # a quick look

Every step runs in a fresh subprocess and its process tree's peak resident memory is sampled
(Spark's JVM included), see ``recsys_tf.scaling``:

* **scale**: cleaning + implicit pairs + leave-last-out on pandas and on Spark (``local[*]``), then MF
  (32 factors, 2 epochs) + full-ranking evaluation of every test shopper, per shop size;
* **stream**: on the largest shop, MF for one epoch in memory (``fit``) against streamed from the
  Parquet shards the Spark job writes (``fit_shards``): peak memory and time (goal: <= 2 GB streamed);
* **devices**: MF data-parallel on 1 and 2 forced CPU devices, JAX and TensorFlow, on the 35k shop
  (2 cores: the curve shows the mechanics, not a speed-up a GPU machine would show).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recsys_tf.scaling import device_scaling, measure, pipeline_scale
from recsys_tf.speed import device_name
from recsys_tf.utils import atomic_write

OUT = Path(__file__).parent / "results" / "scale.json"
WORK = Path(__file__).resolve().parent.parent / "build" / "scale"

_SHARDS = """
import json
from recsys_tf.spark import spark_session
from recsys_tf.spark import pipeline as P
spark = spark_session(driver_memory="6g")
train = spark.read.parquet("{folder}/train.parquet").select("user_id", "item_id")
codes, users, items = P.encode(train)
P.write_shards(codes, users, items, "{folder}/shards", n_shards=16)
print(json.dumps(codes.count()))
"""
_IN_MEMORY = """
import json, pandas as pd
from recsys_tf.models import MatrixFactorization
train = pd.read_parquet("{folder}/train.parquet")
m = MatrixFactorization(factors=32, epochs=1, batch_size=16384, learning_rate=0.005, seed=0, verbose=False).fit(train)
print(json.dumps({{"epoch_s": m.history_[0]["seconds"], "pairs": len(train)}}))
"""
_STREAMED = """
import json
from recsys_tf.data.shards import TrainingShards
from recsys_tf.models import MatrixFactorization
sh = TrainingShards("{folder}/shards")
m = MatrixFactorization(factors=32, epochs=1, batch_size=16384, learning_rate=0.005, seed=0, verbose=False).fit_shards(sh, buffer_rows=1_000_000)
print(json.dumps({{"epoch_s": m.history_[0]["seconds"], "pairs": sh.n_rows}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, nargs="+", default=[10_000, 35_000, 100_000])
    args = ap.parse_args()
    started = time.perf_counter()
    res = {"device": device_name(), "date": time.strftime("%Y-%m-%d"), "note": "2-core CPU; seconds are wall time of a fresh "
           "subprocess (imports and, for Spark, the JVM's start included); peak_mb is the process tree's resident peak"}  # fmt: skip
    res["scale"] = pipeline_scale(args.users, str(WORK))
    largest, middle = WORK / f"users-{max(args.users)}", WORK / f"users-{sorted(args.users)[len(args.users) // 2]}"
    shards = measure(_SHARDS.format(folder=largest))
    res["stream"] = {"shop_users": max(args.users), "spark_writes_shards": shards,
                     "in_memory_fit": measure(_IN_MEMORY.format(folder=largest)),
                     "streamed_fit_shards": measure(_STREAMED.format(folder=largest))}  # fmt: skip
    print(res["stream"], flush=True)
    res["devices"] = {backend: device_scaling(str(middle), backend) for backend in ("jax", "tensorflow")}
    print(res["devices"], flush=True)
    res["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write(OUT, json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
