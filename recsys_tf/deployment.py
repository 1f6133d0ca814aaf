"""Measuring exports: size on disk, latency per request and accuracy of every format and quantization."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from recsys_tf.export import ExportedTopK, export
from recsys_tf.metrics import sampled_metrics
from recsys_tf.models.base import Recommender, top_k
from recsys_tf.models.nets import _np as keras_np

VARIANTS = {"LiteRT float32": None, "LiteRT dynamic-range int8": "dynamic", "LiteRT float16": "float16", "LiteRT int8 (full integer)": "int8"}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def _latency(fn, n_users: int, batch: int, reps: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    fn(rng.integers(0, n_users, batch))  # warm-up
    times = []
    for _ in range(reps):
        users = rng.integers(0, n_users, batch)
        t0 = time.perf_counter()
        fn(users)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3)}


def _accuracy(model: Recommender, scores_fn, cs) -> dict[str, float]:
    users = model.encoder_.users.transform(cs.test.user_id.to_numpy())
    codes = model.encoder_.items.transform(cs.candidates.ravel(), unknown="oov").reshape(cs.candidates.shape)
    all_scores = np.concatenate([scores_fn(users[s : s + 256]) for s in range(0, len(users), 256)])
    cand = np.where(codes >= 0, np.take_along_axis(all_scores, np.maximum(codes, 0), axis=1), -np.inf)
    m = sampled_metrics(cand, cs.candidates, k=10)
    return {"hr@10": round(m["hit_rate@10"], 4), "ndcg@10": round(m["ndcg@10"], 4)}


def _keras_int8(model: Recommender, folder: Path):
    """The network quantized by Keras (``quantize("int8")``), scored through its layers."""
    import keras

    from recsys_tf.models import nets  # noqa: F401 - registers the network classes

    net = keras.models.load_model(folder / "keras.keras")  # a copy: the model in memory stays float32
    net(np.zeros((1, 2), np.int32), training=False)  # builds every sub-layer (quantize needs them built)
    net.quantize("int8", filters=lambda layer: layer.built)  # NeuMF's GMF tower keeps an output layer it never calls
    path = folder / "keras-int8.keras"
    net.save(path)
    items = np.arange(model.n_items, dtype=np.int32)

    def scores(users):
        pairs = np.stack([np.repeat(users, len(items)), np.tile(items, len(users))], 1).astype(np.int32)
        return keras.ops.convert_to_numpy(net(pairs, training=False)).reshape(len(users), len(items))

    def top_k(users):
        s = scores(users)
        s[model._seen_cells(np.asarray(users))] = -np.inf
        return np.argpartition(-s, 10, axis=1)[:, :10]

    return path, scores, top_k


def measure_exports(model: Recommender, cs, folder: str | Path, reps: int = 200, name: str = "") -> dict[str, dict]:
    """Size on disk, top-10 latency (batch 1 and 256, p50 / p99) and NCF-protocol HR@10 / NDCG@10 of every
    export and quantization of ``model``; ``cs``: a :class:`~recsys_tf.evaluation.CandidateSplit`.

    Each variant's accuracy comes from its own scores (an ``outputs="scores"`` export of the same kind).
    Keras' ``quantize("int8")`` is scored through the layers (``net(pairs)``): after it,
    ``Embedding.embeddings`` holds raw int8 values, so reading the table directly would be wrong.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    n = model.n_users
    model.net_.save(folder / "keras.keras")
    rows["Keras float32 (in memory)"] = {"size_bytes": _size(folder / "keras.keras"), "batch1": _latency(lambda u: model._top_k_codes(u, 10, True), n, 1, reps),
                                         "batch256": _latency(lambda u: model._top_k_codes(u, 10, True), n, 256, max(reps // 10, 3)),
                                         **_accuracy(model, model._score_codes, cs)}  # fmt: skip
    saved = export(model, folder / "saved_model", "saved_model")
    runner = ExportedTopK(saved)
    rows["SavedModel"] = {"size_bytes": _size(saved), "batch1": _latency(runner.top_k, n, 1, reps), "batch256": _latency(runner.top_k, n, 256, max(reps // 10, 3)),
                          **_accuracy(model, runner.scores, cs)}  # fmt: skip
    for label, quantize in VARIANTS.items():
        top = ExportedTopK(export(model, folder / f"top-{quantize}", "litert", quantize=quantize))
        sc = ExportedTopK(export(model, folder / f"scores-{quantize}", "litert", quantize=quantize, outputs="scores"))
        rows[label] = {"size_bytes": _size(top.path), "batch1": _latency(top.top_k, n, 1, reps), "batch256": _latency(top.top_k, n, 256, max(reps // 10, 3)),
                       **_accuracy(model, sc.scores, cs)}  # fmt: skip
    top = ExportedTopK(export(model, folder / "onnx-top", "onnx"))
    sc = ExportedTopK(export(model, folder / "onnx-scores", "onnx", outputs="scores"))
    rows["ONNX float32"] = {"size_bytes": _size(top.path), "batch1": _latency(top.top_k, n, 1, reps), "batch256": _latency(top.top_k, n, 256, max(reps // 10, 3)),
                            **_accuracy(model, sc.scores, cs)}  # fmt: skip
    path, scores, top_k = _keras_int8(model, folder)
    rows["Keras quantize('int8')"] = {"size_bytes": _size(path), "batch1": _latency(top_k, n, 1, reps), "batch256": _latency(top_k, n, 256, max(reps // 10, 3)),
                                      **_accuracy(model, scores, cs)}  # fmt: skip
    for label, row in rows.items() if name else ():
        print(f"{name:6s} {label:28s} {row['size_bytes'] / 1e3:9.1f} kB  b1 p50 {row['batch1']['p50_ms']:7.3f} ms  "
              f"b256 p50 {row['batch256']['p50_ms']:8.2f} ms  HR@10 {row['hr@10']:.4f}  NDCG@10 {row['ndcg@10']:.4f}", flush=True)
    return rows


# --- pruning and embedding compression --------------------------------------------------------------
def _gzip_size(path: Path) -> int:
    """Bytes of ``path`` gzip-compressed: how much the zeros of a pruned model save in transfer and storage."""
    import gzip

    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6))


def pruning_curve(make_model, cs, sparsities=(0.0, 0.5, 0.8, 0.9, 0.95), folder: str | Path | None = None) -> dict[float, dict]:
    """Train ``make_model(pruning)`` at each final sparsity (Zhu & Gupta's schedule) and measure it.

    Per sparsity: the share of zeros reached, NCF-protocol HR@10 / NDCG@10 (sampled candidates of
    ``cs``), and the size of its float32 LiteRT export, raw and gzip-compressed (zeros compress;
    a sparse format would do the same on device).
    """
    import tempfile

    from recsys_tf.evaluation import evaluate_sampled
    from recsys_tf.models.pruning import MagnitudePruning, sparsity

    folder = Path(folder or tempfile.mkdtemp(prefix="recsys-tf-pruning-"))
    out = {}
    for target in sparsities:
        model = make_model(MagnitudePruning(target) if target > 0 else None).fit(cs.train)
        m = evaluate_sampled(model, cs.test, cs.candidates)
        path = export(model, folder / f"s{int(round(target * 100)):02d}", "litert")
        out[float(target)] = {"sparsity": round(sparsity(model.net_), 4), "hr@10": round(m["hit_rate@10"], 4), "ndcg@10": round(m["ndcg@10"], 4),
                              "litert_bytes": path.stat().st_size, "litert_gzip_bytes": _gzip_size(path)}  # fmt: skip
    return out


def low_rank_factors(model, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """MF's user and item tables projected on the top ``rank`` right singular vectors of the item table.

    With ``Q = U S V'``, ``P' = P V_r`` and ``Q' = Q V_r`` score ``P' Q'' = P V_r V_r' Q'``: the best rank-``r``
    approximation of the item table in the factor space, both tables stored with ``rank`` columns.
    """
    q, p = np.asarray(model.item_factors, np.float64), np.asarray(model.user_factors, np.float64)
    v = np.linalg.svd(q, full_matrices=False)[2][:rank].T
    return p @ v, q @ v


def shared_rare_rows(model, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Items with fewer than ``min_count`` training interactions share one row (their mean vector):
    the table keeps one row per frequent item plus one. Returns the item table and each item's row."""
    q = np.asarray(model.item_factors, np.float64)
    counts = np.bincount(model.seen_ % model.n_items, minlength=model.n_items)
    rare = counts < min_count
    rows = np.where(rare, int((~rare).sum()), np.cumsum(~rare) - 1)
    table = np.vstack([q[~rare], q[rare].mean(0, keepdims=True) if rare.any() else np.zeros((1, q.shape[1]))])
    return table, rows


def compression_curve(model, cs, ranks=(32, 16, 8, 4, 2), min_counts=(2, 5, 10, 20, 50)) -> list[dict]:
    """Accuracy (NCF protocol) against the float32 bytes of MF's embedding tables, for low-rank factors
    and for shared rare-item rows; the biases are kept as they are."""
    net = model.net_
    bi = keras_np(net.bi.embeddings)[:, 0] if getattr(net, "use_bias", False) else np.zeros(model.n_items)
    bu = keras_np(net.bu.embeddings)[:, 0] if getattr(net, "use_bias", False) else np.zeros(model.n_users)
    mu = float(getattr(net, "mu", 0.0))
    users = model.encoder_.users.transform(cs.test.user_id.to_numpy())
    codes = model.encoder_.items.transform(cs.candidates.ravel(), unknown="oov").reshape(cs.candidates.shape)

    def accuracy(p, q_rows) -> dict[str, float]:
        cand = np.maximum(codes, 0)
        scores = np.einsum("uf,ucf->uc", p[users], q_rows[cand]) + bi[cand] + bu[users][:, None] + mu
        m = sampled_metrics(np.where(codes >= 0, scores, -np.inf), cs.candidates, k=10)
        return {"hr@10": round(m["hit_rate@10"], 4), "ndcg@10": round(m["ndcg@10"], 4)}

    p, q = np.asarray(model.user_factors, np.float64), np.asarray(model.item_factors, np.float64)
    out = [{"method": "full tables", "level": q.shape[1], "bytes": 4 * (p.size + q.size), **accuracy(p, q)}]
    for r in ranks:
        if r < q.shape[1]:
            pr, qr = low_rank_factors(model, r)
            out.append({"method": "low-rank factors", "level": r, "bytes": 4 * (pr.size + qr.size), **accuracy(pr, qr)})
    for c in min_counts:
        table, rows = shared_rare_rows(model, c)
        out.append({"method": "shared rare-item rows", "level": c, "bytes": 4 * (p.size + table.size) + 4 * len(rows), **accuracy(p, table[rows])})
    return out


def measure_sequence_exports(model, test, history, folder: str | Path, reps: int = 200, k: int = 10) -> dict[str, dict]:
    """The quantization table for a sequence model: size, latency and full-ranking HR@k / NDCG@k of each export.

    ``test``: one next item per user; ``history``: what came between training and it (the validation
    items), appended to each input. Every variant ranks all items for the padded session (its last
    ``maxlen`` items masked, as the exported graph does) and the held-out item's rank gives the metrics.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    users = model.encoder_.users.transform(test.user_id.to_numpy())
    with model.extended(history):
        x = model._histories(users).astype(np.int32)
    target = model.encoder_.items.transform(test.item_id.to_numpy())
    rng = np.random.default_rng(0)

    def metrics(ranker) -> dict[str, float]:
        idx = np.concatenate([ranker(x[s : s + 256])[0] for s in range(0, len(x), 256)])[:, :k]
        hit = idx == target[:, None]
        rank = np.where(hit.any(1), hit.argmax(1) + 1, 0)
        return {"hr@10": round(float((rank > 0).mean()), 4), "ndcg@10": round(float(np.where(rank > 0, 1 / np.log2(rank + 1), 0).mean()), 4)}

    def timing(ranker, batch: int, n: int) -> dict[str, float]:
        return _latency(lambda rows: ranker(x[rows]), len(x), batch, n) if len(x) else {}

    def in_memory(rows_x):
        scores = model.states(rows_x).astype(np.float64) @ model.item_vectors.T
        r, c = np.nonzero((rows_x > 0) & (rows_x <= model.n_items))
        scores[r, rows_x[r, c] - 1] = -np.inf
        return top_k(scores, k)

    model.net_.save_weights(folder / "weights.weights.h5")
    rows = {"Keras float32 (in memory)": {"size_bytes": _size(folder / "weights.weights.h5"), "batch1": timing(in_memory, 1, reps),
                                          "batch256": timing(in_memory, 256, max(reps // 10, 3)), **metrics(in_memory)}}  # fmt: skip
    runners = {"SavedModel": ExportedTopK(export(model, folder / "saved_model", "saved_model", k=k))}
    for label, quantize in VARIANTS.items():
        runners[label] = ExportedTopK(export(model, folder / f"top-{quantize}", "litert", k=k, quantize=quantize,
                                             representative_users=rng.choice(model.n_users, min(256, model.n_users), replace=False)))  # fmt: skip
    runners["ONNX float32"] = ExportedTopK(export(model, folder / "onnx", "onnx", k=k))
    for label, runner in runners.items():
        rows[label] = {"size_bytes": _size(runner.path), "batch1": timing(runner.top_k, 1, reps),
                       "batch256": timing(runner.top_k, 256, max(reps // 10, 3)), **metrics(runner.top_k)}  # fmt: skip
    return rows
