"""Measuring speed: training samples per second and full-ranking evaluation time, with the device.

Used by ``bench/bench_train.py`` and notebook 06. Numbers are wall-clock on the current machine;
always report them with :func:`device_name`.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd


def device_name() -> str:
    """The accelerator Keras computes on (GPU model) or the CPU, with the backend."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
                return f"{name} (TensorFlow)"
        elif backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "cpu":
                return f"{dev.device_kind} (JAX)"
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"{torch.cuda.get_device_name(0)} (PyTorch)"
    except Exception:  # noqa: BLE001 - a device line must never break a measurement
        pass
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores ({backend})"


def ml1m_shaped_log(n_users: int = 6_040, n_items: int = 3_706, n: int = 994_169, seed: int = 0) -> pd.DataFrame:
    """A synthetic implicit log with ML-1M's shape (and a Zipf-like item popularity), for speed tests."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    p /= p.sum()
    df = pd.DataFrame({"user_id": rng.integers(0, n_users, n), "item_id": rng.choice(n_items, n, p=p), "label": 1.0})
    df = df.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    df["timestamp"] = np.arange(len(df))
    return df


def training_throughput(make_net: Callable, n_users: int, n_items: int, batch_size: int, n_samples: int = 2_000_000,
                        steps_per_execution: int = 8, seed: int = 0, loop: str = "fit") -> float:  # fmt: skip
    """Samples per second of one training epoch on ``n_samples`` random (user, item, label) rows.

    ``make_net(n_users, n_items)`` builds the network; one short warm-up epoch compiles the step
    first, so the figure is the steady state. ``loop="fit"``: Keras ``fit`` on NumPy arrays;
    ``loop="device"`` (JAX or TensorFlow): the compiled whole-epoch loop of
    :mod:`recsys_tf.models.fast_loop` on data already on the device (transfer not timed; JAX
    drops the last partial batch, TensorFlow runs it).
    """
    import keras

    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, n_users, n_samples), rng.integers(0, n_items, n_samples)]).astype("int32")
    y = (rng.random(n_samples) < 0.2).astype("float32")
    net = make_net(n_users, n_items)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                steps_per_execution=steps_per_execution)  # fmt: skip
    if loop == "device":
        from recsys_tf.models.fast_loop import trainer_for

        trainer = trainer_for(net, net.optimizer, net.loss, batch_size)
        data = trainer.device_batches(x, y)
        trainer.run_epoch(*data)  # compile
        start = time.perf_counter()
        trainer.run_epoch(*data)  # returns after the device finished (the loss is read back)
        return len(x) / (time.perf_counter() - start)
    warm = batch_size * steps_per_execution * 2
    net.fit(x[:warm], y[:warm], batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    net.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    return n_samples / (time.perf_counter() - start)


def full_ranking_seconds(model, test: pd.DataFrame, k: int = 10) -> tuple[float, dict]:
    """Seconds to score every test user against every item, mask training items, take the top-k
    and compute the metrics (``model.evaluate``), and the metrics themselves."""
    start = time.perf_counter()
    metrics = model.evaluate(test, k=k)
    return time.perf_counter() - start, metrics


def write_bench(res: dict, stem: str, folder: Path) -> Path:
    """Write a benchmark's JSON as ``<stem>-<backend>-<cpu|gpu>.json`` in ``folder`` (atomically), named by its device."""
    import json

    import keras

    from recsys_tf.utils import atomic_write

    kind = "gpu" if "CPU" not in res["device"] else "cpu"
    path = Path(folder) / f"{stem}-{keras.backend.backend()}-{kind}.json"
    atomic_write(path, json.dumps(res, indent=2))
    print(f"wrote {path}")
    return path


def neumf_net(n_users: int, n_items: int):
    """The benchmark network of issue 3: NeuMF, 32 factors, MLP 64-32-16."""
    from recsys_tf.models.nets import NeuMFNet

    return NeuMFNet(n_users, n_items, factors=32, layer_sizes=[64, 32, 16]).build_now()


def main(argv: list[str] | None = None) -> None:
    """``python -m recsys_tf.speed --batches 4096 16384``: NeuMF training throughput as JSON on stdout.

    Run it with ``KERAS_BACKEND=jax`` (or ``torch``) to measure another backend: Keras fixes its
    backend at import, so each backend needs its own process.
    """
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--loop", choices=["fit", "device"], default="fit")
    args = ap.parse_args(argv)
    import keras

    out = {"backend": keras.backend.backend(), "device": device_name(), "loop": args.loop,
           "samples_per_s": {str(b): round(training_throughput(neumf_net, 6_040, 3_706, b, args.samples, loop=args.loop))
                             for b in args.batches}}  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
