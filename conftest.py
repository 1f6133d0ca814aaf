"""Settings for every pytest run of the repository: the tests (tests/) and nbval's re-run of the
executed notebooks (build/nbval-notebooks/), whose kernels inherit them."""

from __future__ import annotations

import os

# As many pytest workers as cores (make test: 2 on 2): each worker, and the notebook kernels and
# subprocesses it starts, computes on one thread (measured: 186 s instead of 204-221 s for the sequence,
# DIN and NCF tests and three notebooks on 2 workers). TensorFlow's and OpenBLAS' pools otherwise take every
# core in every worker, and their threads spin while they wait for a core the other worker holds.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) >= max(2, os.cpu_count() or 1):
    for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")  # one would let an op that waits on another stall

# nbval's re-run reads the pretrained embeddings the first run's notebooks stored (tests/test_notebooks.py,
# NOTEBOOK_CACHE), never the user's cache: set, not defaulted, so that a RECSYS_TF_CACHE in the environment cannot split them
os.environ["RECSYS_TF_CACHE"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", "test-cache")
