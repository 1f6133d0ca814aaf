"""Training speed of the sequence models on S3-Rec's Beauty, and recommend_next latency.

    python bench/bench_sequences.py                  # -> bench/results/sequences-<backend>-<cpu|gpu>.json
    KERAS_BACKEND=jax python bench/bench_sequences.py
    python bench/bench_sequences.py --data lastfm    # a smaller data set for a quick look
    python bench/bench_sequences.py --peer           # and RecBole's SASRec (PyTorch) in the same run

The peer (``make recbole-peer`` builds its environment, never the kit's) runs SASRec with its own
defaults and with the kit's settings (dim 64, feed-forward 64, 2 blocks, 1 head, dropout 0.2,
the same training targets per step): its epoch, as ours, predicts every next item of every training
sequence once.

Per model (GRU4Rec, SASRec with BCE and with full cross-entropy, BERT4Rec; maxlen 50, 64
dimensions, 2 blocks, batch 128): seconds per epoch and sequences per second, from the second
epoch (the first one also compiles), the time of a full-ranking evaluation of every user (what
validation costs each epoch during ``fit``) and the median time of ``recommend_next`` for one
session of 10 items (goal: <= 10 ms on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np

from recsys_tf.data import load_s3rec
from recsys_tf.data.sequences import leave_one_out, to_sequences
from recsys_tf.models import BERT4Rec, GRU4Rec, SASRec
from recsys_tf.speed import device_name, write_bench

OUT = Path(__file__).parent / "results"
PEER = Path(__file__).parents[1] / "build" / "recbole-peer" / "bin" / "python"
RECIPE = dict(maxlen=50, dim=64, blocks=2, heads=1, dropout=0.2, batch_size=128, learning_rate=1e-3, verbose=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="beauty")
    ap.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec-bce", "SASRec-ce", "BERT4Rec"])
    ap.add_argument("--peer", nargs="?", const=str(PEER), help=f"also time RecBole's SASRec with this Python (default {PEER})")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of the JSON (default bench/results)")
    args = ap.parse_args()
    ds = load_s3rec(args.data)
    split = leave_one_out(to_sequences(ds.interactions))
    train = split.train_frame
    makers = {"GRU4Rec": lambda: GRU4Rec(**RECIPE), "SASRec-bce": lambda: SASRec(loss="bce", **RECIPE),
              "SASRec-ce": lambda: SASRec(loss="ce", **RECIPE), "BERT4Rec": lambda: BERT4Rec(**RECIPE)}  # fmt: skip
    res = {"device": device_name(), "backend": keras.backend.backend(), "keras": keras.__version__, "date": time.strftime("%Y-%m-%d"),
           "data": f"S3-Rec {args.data}: {len(split.train):,} training sequences, {split.full.n_items:,} items",
           "recipe": {k: v for k, v in RECIPE.items() if k != "verbose"}, "models": {}}  # fmt: skip
    session = train.item_id.to_numpy()[:10].tolist()
    for name in args.models:
        model = makers[name]()
        model.epochs = 2
        model.fit(train, ds.items)
        secs = model.history_[1]["seconds"]
        start = time.perf_counter()
        model.evaluate(split.test_frame, k=10, history=split.val_frame)
        ranking = time.perf_counter() - start
        model.recommend_next(session, k=10)  # compile
        lat = []
        for _ in range(50):
            start = time.perf_counter()
            model.recommend_next(session, k=10)
            lat.append(time.perf_counter() - start)
        res["models"][name] = {"seconds_per_epoch": round(secs, 2), "sequences_per_s": round(len(split.train) / secs),
                               "first_epoch_s": round(model.history_[0]["seconds"], 2), "full_ranking_s": round(ranking, 2),
                               "recommend_next_ms": round(1000 * float(np.median(lat)), 2)}  # fmt: skip
        print(f"{res['device']}: {name}: {secs:.1f} s per epoch ({len(split.train) / secs:,.0f} sequences/s), "
              f"full ranking of {len(split.train):,} users {ranking:.1f} s, recommend_next {1000 * np.median(lat):.1f} ms", flush=True)
    if args.peer:
        res["peer"] = recbole_peer(Path(args.peer), args.data, ds.interactions, split)
    write_bench(res, f"sequences-{args.data}", args.out)


def recbole_peer(python: Path, name: str, inter, split) -> dict:
    """RecBole's SASRec on the same data (see the module docstring): seconds of one epoch (PyTorch runs
    eagerly: its first epoch compiles nothing; on LastFM its two epochs took 72.2 and 71.2 s)."""
    import json
    import subprocess
    import tempfile

    if not python.exists():
        raise SystemExit(f"no peer environment at {python}: run `make recbole-peer` first.")
    targets = int(np.maximum(split.train.lengths - 1, 0).sum())  # ours: every next item of every training sequence
    per_step = round(RECIPE["batch_size"] * targets / len(split.train))
    kit = {"hidden_size": RECIPE["dim"], "inner_size": RECIPE["dim"], "n_layers": RECIPE["blocks"], "n_heads": RECIPE["heads"],
           "hidden_dropout_prob": RECIPE["dropout"], "attn_dropout_prob": RECIPE["dropout"], "learning_rate": RECIPE["learning_rate"],
           "train_batch_size": per_step}  # fmt: skip
    runs = [{"name": "RecBole SASRec, CE, its defaults", "params": {"loss_type": "CE", "train_neg_sample_args": None}},
            {"name": "RecBole SASRec, CE, the kit's settings", "params": {**kit, "loss_type": "CE", "train_neg_sample_args": None}},
            {"name": "RecBole SASRec, BPR with 1 negative, the kit's settings",
             "params": {**kit, "loss_type": "BPR", "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}}]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        with open(folder / f"{name}.inter", "w") as fh:
            fh.write("user_id:token\titem_id:token\ttimestamp:float\n")
            inter[["user_id", "item_id", "timestamp"]].to_csv(fh, sep="\t", header=False, index=False)
        cmd = [str(python), str(Path(__file__).parent / "peers" / "recbole_sasrec.py"), "--data-dir", tmp, "--name", name,
               "--runs", json.dumps(runs), "--epochs", "1"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the RecBole peer failed:\n{done.stderr[-3000:]}")
    peer = json.loads(done.stdout.strip().splitlines()[-1])
    for run in peer["runs"]:
        secs = run["epoch_seconds"][-1]
        run.update(seconds_per_epoch=secs, targets_per_s=round(run["training_targets"] / secs))
        print(f"{run['name']}: {secs:.1f} s per epoch ({run['training_targets']:,} targets)", flush=True)
    return peer


if __name__ == "__main__":
    main()
