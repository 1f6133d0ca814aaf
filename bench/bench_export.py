"""Size on disk, latency and accuracy of each export and quantization -> bench/results/export.json.

    python bench/bench_export.py          # MF and NeuMF on MovieLens 100K (from $RECSYS_TF_DATA)

Accuracy: HR@10 / NDCG@10 on the NCF protocol (latest interaction per user held out, ranked against
99 sampled unseen items, seed 0), computed from each export's own scores. Latency: one top-10
request (all items scored, training items masked, top-k) at batch 1 and at batch 256, p50 and p99
over repeated calls, on this machine's CPU. Keras' own ``net.quantize("int8")`` is scored through
the layers (``net(pairs)``): after it, ``Embedding.embeddings`` holds raw int8 values, so the kit's
table-reading fast paths (``device_scores``) would be wrong -- the trap the issue names.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from recsys_tf.data import load_movielens
from recsys_tf.deployment import measure_exports
from recsys_tf.evaluation import ncf_split
from recsys_tf.models import MatrixFactorization, NeuMF
from recsys_tf.speed import device_name
from recsys_tf.utils import atomic_write

OUT = Path(__file__).parent / "results"
def main() -> None:
    df = load_movielens("100k").interactions.assign(label=1.0)
    cs = ncf_split(df, n_neg=99, seed=0)
    res = {"device": device_name(), "date": time.strftime("%Y-%m-%d"),
           "protocol": "MovieLens 100K, NCF protocol (latest interaction held out, 99 sampled negatives, seed 0); latency of "
                       "one top-10 request (all items scored, training items masked) at batch 1 / 256",
           "models": {}}  # fmt: skip
    models = {"MF": MatrixFactorization(factors=32, loss="bce", epochs=20, seed=0, verbose=False),
              "NeuMF": NeuMF(factors=8, layers=(64, 32, 16), epochs=10, seed=0, verbose=False)}  # fmt: skip
    for name, model in models.items():
        model.fit(cs.train)
        folder = Path(tempfile.mkdtemp(prefix=f"recsys-tf-export-{name}-"))
        try:
            res["models"][name] = measure_exports(model, cs, folder, name=name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    atomic_write(OUT / "export.json", json.dumps(res, indent=2))
    print(f"wrote {OUT / 'export.json'}")


if __name__ == "__main__":
    main()
