"""RecBole's SASRec (PyTorch): the peer timed beside the kit's sequence models.

Runs in its own environment (``make recbole-peer`` builds ``build/recbole-peer``: RecBole 1.2.1
needs numpy<2 and pandas<3, so it is never a dependency of the kit). ``bench/bench_sequences.py
--peer`` writes the data set as a RecBole atomic file and calls

    build/recbole-peer/bin/python bench/peers/recbole_sasrec.py --data-dir DIR --name beauty --runs '[...]' --epochs 2

and reads one JSON document from standard output. Each run: ``{"name": ..., "params": {...}}``,
RecBole settings laid over the common ones below (leave-one-out by time, maxlen 50). The answer
has, per run, the seconds of each training epoch (the first one also builds RecBole's data
loaders' caches), the number of training targets, and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

COMMON = {
    "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "MAX_ITEM_LIST_LENGTH": 50, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
    "use_gpu": False, "device": "cpu", "seed": 0, "reproducibility": True, "show_progress": False, "state": "ERROR",
    "save_dataset": False, "save_dataloaders": False,
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True, help="folder holding NAME/NAME.inter")
    ap.add_argument("--name", required=True)
    ap.add_argument("--runs", required=True, help="JSON list of runs")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    os.chdir(args.data_dir)  # RecBole writes its log/ and saved/ folders into the working directory
    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    out = {"recbole": recbole.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": []}
    for run in json.loads(args.runs):
        config = Config(model="SASRec", dataset=args.name, config_dict={**COMMON, "data_path": args.data_dir, **run["params"]})
        init_seed(config["seed"], config["reproducibility"])
        train, _, _ = data_preparation(config, create_dataset(config))
        model = SASRec(config, train.dataset).to(config["device"])
        trainer = Trainer(config, model)
        seconds = []
        for epoch in range(args.epochs):
            start = time.perf_counter()
            trainer._train_epoch(train, epoch, show_progress=False)
            seconds.append(round(time.perf_counter() - start, 2))
        out["runs"].append({"name": run["name"], "params": run["params"], "epoch_seconds": seconds,
                            "training_targets": len(train.dataset), "batch_size": config["train_batch_size"]})  # fmt: skip
        print(f"{run['name']}: {seconds} s per epoch", file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
