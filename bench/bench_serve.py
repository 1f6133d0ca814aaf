"""Load test of the recommendation service on the loopback interface -> bench/results/serve.json.

    python bench/bench_serve.py            # two catalog sizes, 1 / 8 / 32 clients, and an events + recommend mix
    python bench/bench_serve.py --quick    # fewer requests

For each catalog (ML-1M's 6,040 shoppers x 3,706 items, and the large shop's 100,000 x 20,000), an
implicit MF (32 factors) is trained for one epoch on a synthetic log of that shape (Zipf-like item
popularity; serving cost depends on the sizes, not on the model's accuracy), saved, and served by
``recsys-tf serve`` in a subprocess (HNSW retrieval, SQLite event log). The client is an asyncio
HTTP/1.1 keep-alive loop in this process, on the same 2 cores as the service. Also measured: the
HNSW recall@10 against exact search over 2,000 shoppers, and whether an event is reflected in the
very next /recommend of that shopper (100 tries). Goals (issue 12): p99 <= 50 ms at 8 clients,
>= 500 requests/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys_tf.models import MatrixFactorization
from recsys_tf.serving import Engine, Retriever, launch
from recsys_tf.serving.loadtest import load_test
from recsys_tf.speed import device_name, ml1m_shaped_log
from recsys_tf.utils import atomic_write

OUT = Path(__file__).parent / "results"
CATALOGS = {"ml-1m size (3,706 items)": (6_040, 3_706, 1_000_000), "large shop size (20,000 items)": (100_000, 20_000, 2_000_000)}


def _recall(model: MatrixFactorization, n: int = 2000) -> dict[str, float]:
    engine = Engine(model, retrieval="hnsw")
    users = np.random.default_rng(0).choice(model.n_users, min(n, model.n_users), replace=False)
    queries = np.stack([engine.view.query(int(u), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))[0] for u in users])
    recall = engine.retriever.recall(queries, k=10)
    out = {"hnsw_recall@10": round(recall, 4)}
    for kind, index in (("exact", Retriever(engine.view.items, kind="exact")), ("hnsw", engine.retriever)):
        t0 = time.perf_counter()
        for q in queries[:500]:
            index.search(q, 10)
        out[f"{kind}_search_ms"] = round((time.perf_counter() - t0) / 500 * 1000, 3)
    return out


def _reflected(service, users: np.ndarray, items: np.ndarray, tries: int = 100) -> int:
    """How often a posted event shows in the very next recommendation (event count up, the item masked)."""
    ok = 0
    for t in range(tries):
        user, item = int(users[t]), int(items[t])
        before = service.get("/recommend", user=user, k=10)[1]["n_events"]
        service.post("/events", {"events": [{"user": user, "item": item, "event": "purchase"}]})
        after = service.get("/recommend", user=user, k=10)[1]
        ok += after["n_events"] == before + 1 and item not in after["items"] and after["strategy"] == "model+events"
    return ok


def _serve(model: MatrixFactorization, path: Path, tmp: Path, n_req: int) -> dict:
    rng = np.random.default_rng(1)
    users = model.encoder_.users.classes_[rng.integers(0, model.n_users, 100_000)]
    items = model.item_ids[rng.integers(0, model.n_items, 100_000)]

    def rec(i: int) -> tuple[str, str, None]:
        return "GET", f"/recommend?user={users[i % len(users)]}&k=10", None

    def mix(i: int) -> tuple:
        if i % 5 == 0:  # one request in five posts an event
            return "POST", "/events", {"events": [{"user": int(users[i % len(users)]), "item": int(items[i % len(items)]), "event": "click"}]}
        return rec(i)

    row: dict = {}
    with launch(path, f"sqlite:{tmp / (path.name + '-events.db')}") as service:
        row["recommend"] = {str(c): load_test(service.url, rec, clients=c, n_requests=n_req, max_seconds=60) for c in (1, 8, 32)}
        row["events_and_recommend_8_clients"] = load_test(service.url, mix, clients=8, n_requests=n_req, max_seconds=60)
        row["event_reflected_in_next_request"] = f"{_reflected(service, users, items)}/100"
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_req = 1000 if args.quick else 5000
    res = {"device": device_name(), "date": time.strftime("%Y-%m-%d"), "client": "asyncio HTTP/1.1 keep-alive, same machine",
           "server": "recsys-tf serve: uvicorn, 1 worker, HNSW retrieval (faiss), SQLite WAL event log (fsync per request)",
           "catalogs": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, (n_users, n_items, n) in CATALOGS.items():
            log = ml1m_shaped_log(n_users, n_items, n)
            t0 = time.perf_counter()
            model = MatrixFactorization(factors=32, loss="bce", epochs=1, batch_size=16384, verbose=False).fit(log)
            row: dict = {"train_seconds": round(time.perf_counter() - t0, 1), "n_users": model.n_users, "n_items": model.n_items, **_recall(model)}
            path = Path(tmp) / name.split()[0]
            model.save(path)
            row.update(_serve(model, path, Path(tmp), n_req))
            res["catalogs"][name] = row
            print(name, {c: (r["requests_per_s"], r["p99_ms"]) for c, r in row["recommend"].items()}, row["event_reflected_in_next_request"], flush=True)
    path = OUT / "serve.json"
    atomic_write(path, json.dumps(res, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
