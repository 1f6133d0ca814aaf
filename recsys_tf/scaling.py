"""Where one process stops being enough: time and peak memory of the pipeline and of training,
measured in fresh subprocesses (so each number is that step's own peak, not the notebook's).

* :func:`measure` runs a snippet in a subprocess and samples the resident memory of its whole process
  tree (Spark's JVM included) every 50 ms.
* :func:`pipeline_scale` times cleaning + implicit pairs + leave-last-out on pandas and on Spark, and
  MF training + full-ranking evaluation, for shops of growing size.
* :func:`device_scaling` trains the same MF on 1..n devices (forced CPU devices on a CPU) with
  :func:`recsys_tf.distributed.data_parallel` and reports samples/s and HR@10 per device count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from recsys_tf.course import ROOT


def measure(code: str, env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``code`` in a fresh Python; its last stdout line, if JSON, is returned under ``result``,
    with ``seconds`` (wall) and ``peak_rss_mb`` (the process tree's largest resident total)."""
    import psutil

    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                "TF_CPP_MIN_LOG_LEVEL": "3", "RECSYS_TF_PROGRESS": "0", **(env or {})}  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"the measured step failed (exit {proc.returncode}):\n{err[-3000:]}")
    last = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        result = json.loads(last)
    except json.JSONDecodeError:
        result = last
    return {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak[0] / 2**20), "result": result}


_SHOP = """
import json, time
from dataclasses import replace
from recsys_tf.data.shop import SIZES, make_shop
cfg = replace(SIZES["large"], n_users={users})
shop = make_shop(cfg, seed=0)
shop.events.to_parquet("{folder}/events.parquet"); shop.catalog[["item_id"]].to_parquet("{folder}/items.parquet")
print(json.dumps(len(shop.events)))
"""
_PANDAS = """
import json, pandas as pd
from recsys_tf.data.cleaning import clean_events, to_implicit
from recsys_tf.data.split import leave_last_out
ev, items = pd.read_parquet("{folder}/events.parquet"), pd.read_parquet("{folder}/items.parquet")
split = leave_last_out(to_implicit(clean_events(ev, items)[0]))
split.train.to_parquet("{folder}/train.parquet"); split.test.to_parquet("{folder}/test.parquet"); split.val.to_parquet("{folder}/val.parquet")
print(json.dumps(len(split.train)))
"""
_SPARK = """
import json
from recsys_tf.spark import spark_session
from recsys_tf.spark import pipeline as P
spark = spark_session("{master}", driver_memory="{driver_memory}")
ev, items = spark.read.parquet("{folder}/events.parquet"), spark.read.parquet("{folder}/items.parquet")
clean, _ = P.clean_events(ev, items)
split = P.leave_last_out(P.to_implicit(clean))
print(json.dumps(split.train.count()))
"""
_TRAIN = """
import json, time, pandas as pd
from recsys_tf.models import MatrixFactorization
train, test, val = (pd.read_parquet(f"{folder}/{{p}}.parquet") for p in ("train", "test", "val"))
t = time.perf_counter()
m = MatrixFactorization(factors=32, epochs={epochs}, batch_size=16384, learning_rate=0.005, seed=0, verbose=False).fit(train)
fit_s = time.perf_counter() - t
t = time.perf_counter()
hr = m.evaluate(test, k=10, exclude=val)["hit_rate@10"]
print(json.dumps({{"fit_s": fit_s, "eval_s": time.perf_counter() - t, "hr@10": hr}}))
"""


def pipeline_scale(users: list[int], folder: str, master: str = "local[*]", epochs: int = 2,
                   driver_memory: str = "6g") -> list[dict[str, Any]]:  # fmt: skip
    """For each shop size (shoppers of the large preset's catalog): raw events, then time and peak
    memory of cleaning + implicit pairs + leave-last-out on pandas and on Spark, and of MF training
    (``epochs``) + full-ranking evaluation of every test shopper."""
    from pathlib import Path

    rows = []
    for n in users:
        sub = Path(folder) / f"users-{n}"
        sub.mkdir(parents=True, exist_ok=True)
        events = measure(_SHOP.format(users=n, folder=sub))["result"]
        pandas = measure(_PANDAS.format(folder=sub))
        spark = measure(_SPARK.format(folder=sub, master=master, driver_memory=driver_memory))
        if spark["result"] != pandas["result"]:
            raise RuntimeError(f"Spark and pandas disagree on the training rows: {spark['result']} vs {pandas['result']}")
        train = measure(_TRAIN.format(folder=sub, epochs=epochs))
        rows.append({"users": n, "raw_events": events, "train_pairs": pandas["result"],
                     "pandas_s": pandas["seconds"], "pandas_peak_mb": pandas["peak_rss_mb"],
                     "spark_s": spark["seconds"], "spark_peak_mb": spark["peak_rss_mb"],
                     "train_eval_s": train["seconds"], "train_eval_peak_mb": train["peak_rss_mb"], **train["result"]})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


_DEVICES = """
import json, os, time
os.environ["KERAS_BACKEND"] = "{backend}"
if "{backend}" == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count={n}"
else:
    from recsys_tf.distributed import split_cpu
    split_cpu({n})
import pandas as pd
from recsys_tf.distributed import data_parallel, devices
from recsys_tf.models import MatrixFactorization
train, test = pd.read_parquet("{folder}/train.parquet"), pd.read_parquet("{folder}/test.parquet")
with data_parallel(devices()[:{n}]):
    m = MatrixFactorization(factors=32, epochs={epochs}, batch_size={batch}, seed=0, verbose=False).fit(train)
steady = [h["seconds"] for h in m.history_[1:]] or [m.history_[0]["seconds"]]
samples = len(train) * (1 + m.n_neg)
print(json.dumps({{"devices": {n}, "samples_per_s": samples / min(steady), "hr@10": m.evaluate(test, k=10)["hit_rate@10"]}}))
"""


def device_scaling(folder: str, backend: str = "jax", counts: tuple[int, ...] = (1, 2), epochs: int = 10,
                   batch: int = 1024) -> list[dict[str, Any]]:  # fmt: skip
    """MF trained data-parallel on each device count in ``counts`` (forced CPU devices on a CPU, the
    real ones on a GPU machine), from ``folder``'s train/test parquet files: samples/s of the fastest
    epoch after the first (compilation), and HR@10 (full ranking)."""
    return [measure(_DEVICES.format(backend=backend, n=n, folder=folder, epochs=epochs, batch=batch))["result"] for n in counts]
