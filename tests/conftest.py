"""Test set-up: no network, a private cache, local real data from ../shared/datasets when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"

os.environ["RECSYS_TF_OFFLINE"] = "1"  # nothing in the tests may download
os.environ.setdefault("RECSYS_TF_PROGRESS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Spark's JVM runs only short jobs on small frames here: HotSpot's quick C1 compiler alone starts a
# session ~6 s sooner on 2 cores and cleans or fits ALS on the tiny shop no slower (notebook kernels inherit it).
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--driver-java-options -XX:TieredStopAtLevel=1 pyspark-shell")
if "RECSYS_TF_DATA" not in os.environ and SHARED.is_dir():
    os.environ["RECSYS_TF_DATA"] = str(SHARED)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test sees an empty download cache, never the user's."""
    monkeypatch.setenv("RECSYS_TF_CACHE", str(tmp_path_factory.mktemp("cache")))


def has_local(dataset: str, filename: str) -> bool:
    root = os.environ.get("RECSYS_TF_DATA")
    return bool(root) and (Path(root) / dataset / filename).exists()


def needs_local(dataset: str, filename: str):
    """Skip (with the reason) when a real data file is not in $RECSYS_TF_DATA; CI always has them."""
    return pytest.mark.skipif(not has_local(dataset, filename),
                              reason=f"{dataset}/{filename} not in $RECSYS_TF_DATA")  # fmt: skip


@pytest.fixture(scope="session")
def shop_tiny():
    from recsys_tf.data.shop import make_shop

    return make_shop("tiny", seed=0)


@pytest.fixture(scope="session")
def shop_small():
    from recsys_tf.data.shop import make_shop

    return make_shop("small", seed=0)


@pytest.fixture(scope="session")
def shop_small_clean(shop_small):
    from recsys_tf.data.cleaning import clean_events

    return clean_events(shop_small.events, shop_small.catalog)


@pytest.fixture(scope="session")
def chain_sessions():
    """80 shoppers walking a 30-item catalogue in steps of +1 (the next item follows from the last one)."""
    import numpy as np
    import pandas as pd

    steps = np.arange(8)
    start = np.random.default_rng(0).integers(0, 30, 80)
    return pd.DataFrame({"user_id": np.repeat(np.arange(80), 8), "item_id": ((start[:, None] + steps) % 30).ravel() + 100,
                         "timestamp": np.tile(steps, 80)})  # fmt: skip


@pytest.fixture(scope="session")
def tiny_sasrec(chain_sessions):
    """A small SASRec trained for two epochs on ``chain_sessions`` (shared by the serving and export tests).

    One batch per epoch: Keras fit, not the XLA-compiled epoch loop, whose ~5 s compile is the whole cost here.
    """
    from recsys_tf.models import SASRec

    return SASRec(maxlen=8, dim=16, epochs=2, batch_size=128, verbose=False).fit(chain_sessions)
