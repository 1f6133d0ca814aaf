"""Scale-out measurements (issue 13) -> bench/results/scale.json.

    python bench/bench_scale.py                      # 10k, 35k and 100k shoppers (about 1.4M, 5M and 14M raw events)
    python bench/bench_scale.py --users 3000 10000   # a quick look

Every step runs in a fresh subprocess and its process tree's peak resident memory is sampled
(Spark's JVM included), see ``recsys_tf.scaling``:

* **scale**: cleaning + implicit pairs + leave-last-out on pandas and on Spark (``local[*]``), then MF
  (32 factors, 2 epochs) + full-ranking evaluation of every test shopper, per shop size;
* **stream**: on the largest shop, MF for one epoch in memory (``fit``) against streamed from the
  Parquet shards the Spark job writes (``fit_shards``): peak memory and time (goal: <= 2 GB streamed);
* **devices**: MF data-parallel on 1 and 2 forced CPU devices, JAX and TensorFlow, on the small shop
  (2 cores: the curve shows the mechanics, not a speed-up a GPU machine would show).

``--parts devices`` (or ``scale``, ``stream``) re-runs one part and keeps the others' last numbers.
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


def _small_split(folder: Path) -> Path:
    """The small shop's split as parquet files, for the device curve."""
    from recsys_tf.data.cleaning import clean_events, to_implicit
    from recsys_tf.data.shop import make_shop
    from recsys_tf.data.split import leave_last_out

    folder.mkdir(parents=True, exist_ok=True)
    shop = make_shop("small", seed=0)
    split = leave_last_out(to_implicit(clean_events(shop.events, shop.catalog)[0]))
    split.train.to_parquet(folder / "train.parquet")
    split.test.to_parquet(folder / "test.parquet")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, nargs="+", default=[10_000, 35_000, 100_000])
    ap.add_argument("--parts", nargs="+", default=["scale", "stream", "devices"], help="run these parts, keep the others' last numbers")
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    res.update({"device": device_name(), "date": time.strftime("%Y-%m-%d"), "note": "2-core CPU; seconds are wall time of a "
                "fresh subprocess (imports and, for Spark, the JVM's start included); peak_mb is the process tree's resident peak"})  # fmt: skip
    largest = WORK / f"users-{max(args.users)}"
    if "scale" in args.parts:
        res["scale"] = pipeline_scale(args.users, str(WORK))
        atomic_write(OUT, json.dumps(res, indent=2))
    if "stream" in args.parts:
        shards = measure(_SHARDS.format(folder=largest))
        res["stream"] = {"shop_users": max(args.users), "spark_writes_shards": shards,
                         "in_memory_fit": measure(_IN_MEMORY.format(folder=largest)),
                         "streamed_fit_shards": measure(_STREAMED.format(folder=largest))}  # fmt: skip
        atomic_write(OUT, json.dumps(res, indent=2))
        print(res["stream"], flush=True)
    if "devices" in args.parts:
        # the small shop: on 2 cores, two forced JAX devices with large epochs stalled in XLA's all-reduce
        # rendezvous (one device thread starved past its 40 s timeout); the curve shows the mechanics here
        folder = _small_split(WORK / "devices")
        res["devices"] = {"data": "the small shop (seed 0), MF 32 factors, batch 1024, 10 epochs",
                          **{backend: device_scaling(str(folder), backend) for backend in ("jax", "tensorflow")}}  # fmt: skip
        atomic_write(OUT, json.dumps(res, indent=2))
        print(res["devices"], flush=True)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
