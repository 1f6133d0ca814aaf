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
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--sequence", nargs="*", default=["beauty"], help="also the SASRec rows on S3-Rec Beauty (none: skip)")
    ap.add_argument("--sasrec-epochs", type=int, default=20)
    args = ap.parse_args()
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
    if "beauty" in args.sequence:
        from recsys_tf.data import load_s3rec
        from recsys_tf.data.sequences import leave_one_out, to_sequences
        from recsys_tf.deployment import measure_sequence_exports
        from recsys_tf.models import SASRec

        ds = load_s3rec("beauty")
        split = leave_one_out(to_sequences(ds.interactions))
        t0 = time.perf_counter()
        model = SASRec(loss="bce", maxlen=50, dim=64, blocks=2, heads=1, dropout=0.2, batch_size=128, learning_rate=1e-3,
                       epochs=args.sasrec_epochs, seed=0, verbose=False).fit(split.train_frame, ds.items)  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix="recsys-tf-export-sasrec-"))
        try:
            rows = measure_sequence_exports(model, split.test_frame, split.val_frame, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        res["sequence"] = {"data": f"S3-Rec Beauty, {len(split.test_frame):,} test users, full ranking (the session's last 50 items masked)",
                           "model": f"SASRec, paper's BCE, {args.sasrec_epochs} epochs ({time.perf_counter() - t0:.0f} s with the exports)",
                           "rows": rows}  # fmt: skip
        for label, row in rows.items():
            print(f"SASRec {label:28s} {row['size_bytes'] / 1e3:9.1f} kB  b1 p50 {row['batch1']['p50_ms']:7.3f} ms  "
                  f"b256 p50 {row['batch256']['p50_ms']:8.2f} ms  HR@10 {row['hr@10']:.4f}  NDCG@10 {row['ndcg@10']:.4f}", flush=True)
    atomic_write(OUT / "export.json", json.dumps(res, indent=2))
    print(f"wrote {OUT / 'export.json'}")


if __name__ == "__main__":
    main()
