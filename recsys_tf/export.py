"""Export a trained Keras recommender for serving outside the kit: ``.keras``, TensorFlow SavedModel,
LiteRT (TFLite) and ONNX, each reloadable and checked against the model in memory.

What each export answers:

* **SavedModel** (``format="saved_model"``): raw ids in, top-``k`` raw item ids and scores out, the
  shopper's training items masked inside the graph. Signatures ``serving_default`` (``user_id`` ->
  ``item_ids``, ``scores``, ``known``), ``top_k_codes`` (``user_code`` -> ``item_codes``, ``scores``),
  ``all_scores`` (``user_code`` -> every item's score)
  and, for factor models, ``recommend_history`` (a session's ``item_id`` list -> top-``k``: the
  service's fold-in ``p = (Q_h' Q_h + reg s I)^-1 Q_h' (t - mu - b_h)`` computed in the graph, see
  :mod:`recsys_tf.serving.engine`).
* **LiteRT** and **ONNX** (``"litert"``, ``"onnx"``): the ``top_k_codes`` graph (int32 user codes in --
  a sequence model's padded sessions --, item codes and scores out, training items masked inside),
  both converted from Keras' ExportArchive of the network; the id maps are JSON beside it
  (``ids.json``) since neither runtime has string hash tables. LiteRT can be quantized: ``"dynamic"``
  (int8 weights), ``"float16"``, ``"int8"`` (int8 weights and activations calibrated on
  representative users; ops without an int8 kernel stay in float).
* ``.keras`` (``"keras"``): the Keras network itself (what :meth:`Recommender.save` stores too).

The seen-item mask is built from the training pairs in CSR form (one row of item codes per user):
``scatter_nd`` of the user's row into a users x (items + 1) zero matrix, the extra column catching
the padding, then ``where(mask, min(scores) - 1, scores)`` -- operations that LiteRT and ONNX both
run (a finite floor, since int8 calibration cannot scale -inf).
Export needs the TensorFlow backend (a model trained on JAX loads there: ``Recommender.load``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsys_tf.errors import DataError
from recsys_tf.models.base import Recommender, top_k
from recsys_tf.utils import atomic_write

Format = Literal["keras", "saved_model", "litert", "onnx"]
Quantize = Literal["dynamic", "float16", "int8"] | None


def _tf():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"exports are TensorFlow graphs: run with KERAS_BACKEND=tensorflow (now {keras.backend.backend()!r}); "
                           f"a model saved on another backend loads there with Recommender.load.")  # fmt: skip
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _quiet():
    """Keep TensorFlow's "Assets written to ..." lines and the converter's own deprecation warning (its
    calibration runs tf.lite.Interpreter internally; the kit runs exports with ai-edge-litert) out of notebooks."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _csr_seen(model: Recommender) -> tuple[np.ndarray, np.ndarray]:
    """Row offsets (n_users + 1) and item codes of every user's training items."""
    users, items = np.divmod(model.seen_, model.n_items)
    offsets = np.zeros(model.n_users + 1, np.int64)
    np.add.at(offsets, users + 1, 1)
    return np.cumsum(offsets).astype(np.int32), items.astype(np.int32)


def _module(model: Recommender, k: int, reg: float = 1.0, ids: bool = True):
    """A tf.Module holding the network and the seen items, with the serving functions; ``ids``: also
    the raw-id maps (hash tables: SavedModel only, LiteRT and ONNX have no kernels for them)."""
    tf = _tf()
    net = getattr(model, "net_", None)
    if net is None or not hasattr(net, "device_scores"):
        raise DataError(f"{type(model).__name__} has no Keras scoring network to export; export MF, NMF, SVD++, GMF, MLP, "
                        f"NeuMF, the hybrid, or a sequence model (SASRec, BERT4Rec, GRU4Rec).")  # fmt: skip
    n_items = model.n_items
    k = min(k, n_items)
    offsets, values = _csr_seen(model)
    max_seen = int(np.diff(offsets).max(initial=0))
    key_dtype = tf.int64 if np.issubdtype(model.encoder_.users.classes_.dtype, np.integer) else tf.string
    item_dtype = tf.int64 if np.issubdtype(model.item_ids.dtype, np.integer) else tf.string

    def as_keys(ids: np.ndarray, dtype):
        return tf.constant(ids.astype(np.int64) if dtype == tf.int64 else ids.astype(str), dtype)

    class Core(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.offsets, self.values = tf.constant(offsets), tf.constant(values if len(values) else np.zeros(1, np.int32))

        def _masked_top_k(self, codes, scores):
            if max_seen:
                start, end = tf.gather(self.offsets, codes), tf.gather(self.offsets, codes + 1)
                pos = start[:, None] + tf.range(max_seen, dtype=tf.int32)[None, :]
                cols = tf.where(pos < end[:, None], tf.gather(self.values, tf.minimum(pos, len(values) - 1)), n_items)
                rows = tf.broadcast_to(tf.range(tf.shape(codes)[0], dtype=tf.int32)[:, None], tf.shape(cols))
                index = tf.reshape(tf.stack([rows, cols], -1), (-1, 2))
                # an int32 mask: int8 calibration leaves integer tensors alone (a float mask was quantized to garbage)
                mask = tf.scatter_nd(index, tf.ones(tf.shape(index)[:1], tf.int32), tf.stack([tf.shape(codes)[0], n_items + 1]))
                # below every real score, but finite: int8 calibration cannot give -inf a scale
                low = tf.reduce_min(scores, axis=1, keepdims=True) - 1.0
                scores = tf.where(mask[:, :n_items] > 0, low, scores)
            return tf.math.top_k(scores, k)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="user_code")])
        def all_scores(self, user_code):
            return {"scores": tf.cast(self.net.device_scores(user_code), tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="user_code")])
        def top_k_codes(self, user_code):
            scores = tf.cast(self.net.device_scores(user_code), tf.float32)
            vals, idx = self._masked_top_k(user_code, scores)
            return {"item_codes": idx, "scores": vals}

    if not ids:
        return Core()

    class Exported(Core):
        def __init__(self) -> None:
            super().__init__()
            self.item_ids = as_keys(model.item_ids, item_dtype)
            init = tf.lookup.KeyValueTensorInitializer(as_keys(model.encoder_.users.classes_, key_dtype), tf.range(model.n_users, dtype=tf.int32))
            self.users = tf.lookup.StaticHashTable(init, default_value=-1)
            init = tf.lookup.KeyValueTensorInitializer(self.item_ids, tf.range(n_items, dtype=tf.int32))
            self.items = tf.lookup.StaticHashTable(init, default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], key_dtype, name="user_id")])
        def recommend(self, user_id):
            codes = self.users.lookup(user_id)
            out = self.top_k_codes(tf.maximum(codes, 0))
            return {"item_ids": tf.gather(self.item_ids, out["item_codes"]), "scores": out["scores"], "known": codes >= 0}

    module = Exported()
    if hasattr(net, "q") and hasattr(net, "bi") and not hasattr(net, "content"):
        from recsys_tf.serving.engine import view_of

        view = view_of(model, reg)  # the service's fold-in: its positive target and its ridge, in items
        target, ridge = view.target, reg * view.scale

        @tf.function(input_signature=[tf.TensorSpec([None], item_dtype, name="item_id")])
        def recommend_history(item_id):
            codes = module.items.lookup(item_id)
            codes = tf.boolean_mask(codes, codes >= 0)  # unknown items are left out (the model cannot use them)
            q = tf.cast(net.q.embeddings, tf.float32)
            bias = tf.cast(net.bi.embeddings[:, 0], tf.float32) + float(getattr(net, "mu", 0.0))
            qh = tf.gather(q, codes)
            a = tf.matmul(qh, qh, transpose_a=True) + ridge * tf.eye(q.shape[1])
            p = tf.linalg.solve(a, tf.matmul(qh, (target - tf.gather(bias, codes))[:, None], transpose_a=True))
            scores = tf.matmul(q, p)[:, 0] + bias
            scores = tf.tensor_scatter_nd_update(scores, codes[:, None], tf.fill(tf.shape(codes), -np.inf))
            vals, idx = tf.math.top_k(scores[None, :], k)
            return {"item_ids": tf.gather(module.item_ids, idx[0]), "scores": vals[0]}

        module.recommend_history = recommend_history
    return module


def _sequence_module(model, k: int, ids: bool = True):
    """The same serving functions for a sequence model (SASRec, BERT4Rec, GRU4Rec): a session in, its next items out.

    ``top_k_codes`` takes padded sessions (``batch x maxlen`` int32: item code + 1, 0 for padding,
    BERT4Rec's ``[MASK]`` in the last slot, as ``SequentialRecommender._session_input`` builds them);
    ``serving_default`` takes one session's raw item ids, oldest first, and pads it in the graph.
    The session's own items are masked, as in ``recommend_next``.
    """
    tf = _tf()
    net, n_items, width, maxlen = model.net_, model.n_items, model._width, model.maxlen
    bert = model.kind == "bert4rec"
    k = min(k, n_items)
    item_dtype = tf.int64 if np.issubdtype(model.item_ids.dtype, np.integer) else tf.string

    class Core(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def _scores(self, session):
            h = tf.cast(self.net(session, training=False)[:, -1], tf.float32)
            return tf.matmul(h, tf.cast(self.net.item_table(), tf.float32), transpose_b=True)

        @tf.function(input_signature=[tf.TensorSpec([None, maxlen], tf.int32, name="session")])
        def all_scores(self, session):
            return {"scores": self._scores(session)}

        @tf.function(input_signature=[tf.TensorSpec([None, maxlen], tf.int32, name="session")])
        def top_k_codes(self, session):
            scores = self._scores(session)
            rows = tf.broadcast_to(tf.range(tf.shape(session)[0], dtype=tf.int32)[:, None], tf.shape(session))
            cols = tf.where((session > 0) & (session <= n_items), session - 1, n_items)  # padding, [MASK] -> spare column
            index = tf.reshape(tf.stack([rows, cols], -1), (-1, 2))
            mask = tf.scatter_nd(index, tf.ones(tf.shape(index)[:1], tf.int32), tf.stack([tf.shape(session)[0], n_items + 1]))
            scores = tf.where(mask[:, :n_items] > 0, tf.reduce_min(scores, axis=1, keepdims=True) - 1.0, scores)
            vals, idx = tf.math.top_k(scores, k)
            return {"item_codes": idx, "scores": vals}

    if not ids:
        return Core()

    def as_keys(values: np.ndarray):
        return tf.constant(values.astype(np.int64) if item_dtype == tf.int64 else values.astype(str), item_dtype)

    class Exported(Core):
        def __init__(self) -> None:
            super().__init__()
            self.item_ids = as_keys(model.item_ids)
            init = tf.lookup.KeyValueTensorInitializer(self.item_ids, tf.range(n_items, dtype=tf.int32))
            self.items = tf.lookup.StaticHashTable(init, default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], item_dtype, name="item_id")])
        def recommend(self, item_id):
            codes = self.items.lookup(item_id)
            tail = (tf.boolean_mask(codes, codes >= 0) + 1)[-width:]  # unknown ids left out; the most recent kept
            x = tf.pad(tail, [[width - tf.shape(tail)[0], 0]])[None, :]
            if bert:
                x = tf.concat([x, tf.fill([1, 1], n_items + 1)], 1)
            out = self.top_k_codes(tf.ensure_shape(x, [1, maxlen]))
            return {"item_ids": tf.gather(self.item_ids, out["item_codes"][0]), "scores": out["scores"][0]}

    return Exported()


def export(model: Recommender, path: str | Path, format: Format = "saved_model", k: int = 10,
           quantize: Quantize = None, representative_users: np.ndarray | None = None,
           outputs: Literal["top_k", "scores"] = "top_k") -> Path:  # fmt: skip
    """Write ``model`` to ``path`` in ``format`` (see the module docstring); returns the path written.

    ``quantize`` applies to LiteRT only. ``"int8"`` calibrates activations on
    ``representative_users`` (user codes; default: 256 users drawn with a fixed seed).
    ``outputs="scores"`` (LiteRT, ONNX): the graph returns every item's score instead of the top-``k``
    (to evaluate an export on sampled candidates, as :func:`recsys_tf.deployment.measure_exports` does).
    """
    with _quiet():
        return _export(model, path, format, k, quantize, representative_users, outputs)


def _export(model: Recommender, path: str | Path, format: Format = "saved_model", k: int = 10,
           quantize: Quantize = None, representative_users: np.ndarray | None = None,
           outputs: Literal["top_k", "scores"] = "top_k") -> Path:  # fmt: skip
    if format not in ("keras", "saved_model", "litert", "onnx"):
        raise ValueError(f"format must be one of 'keras', 'saved_model', 'litert', 'onnx'; got {format!r}.")
    if quantize not in (None, "dynamic", "float16", "int8"):
        raise ValueError(f"quantize must be None, 'dynamic', 'float16' or 'int8', got {quantize!r}.")
    model._check_fitted()
    path = Path(path)
    tf = _tf()
    if format == "keras":
        path = path.with_suffix(".keras")
        model.net_.save(path)
        return path
    sequential = hasattr(model, "recommend_next")
    module = (_sequence_module if sequential else _module)(model, k, ids=format == "saved_model")
    if format == "saved_model":
        signatures = {"serving_default": module.recommend, "top_k_codes": module.top_k_codes, "all_scores": module.all_scores}
        if hasattr(module, "recommend_history"):
            signatures["recommend_history"] = module.recommend_history
        tf.saved_model.save(module, str(path), signatures=signatures)
        return path
    path.mkdir(parents=True, exist_ok=True)
    (path / "ids.json").write_text(json.dumps({"users": model.encoder_.users.classes_.tolist(), "items": model.item_ids.tolist(), "k": min(k, model.n_items)}))
    fn = module.top_k_codes if outputs == "top_k" else module.all_scores
    if format == "litert":
        out = path / "model.tflite"
        atomic_write(out, _tflite_bytes(model, module, fn, quantize, representative_users))
        return out
    import tf2onnx
    from tf2onnx import tf_loader

    # ONNX from the same Keras ExportArchive, frozen by tf2onnx's SavedModel loader (its from_function left
    # Keras 3's variables as unfed graph inputs)
    out = path / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        _archive(model, fn).write_out(tmp, verbose=False)
        graph_def, inputs, outputs = tf_loader.from_saved_model(tmp, None, None, signatures=["serving_default"])[:3]
    tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=17, output_path=str(out))
    return out


def _archive(model: Recommender, fn):
    """``fn`` with the model's network, as Keras' ExportArchive writes them (variables handled the Keras 3 way)."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model.net_)
    archive.add_endpoint("serving_default", fn)
    return archive


def _tflite_bytes(model: Recommender, module, fn, quantize: Quantize, representative_users: np.ndarray | None) -> bytes:
    """The ``top_k_codes`` graph as a LiteRT flatbuffer, through Keras' ExportArchive (converting the
    concrete function directly, or a plain tf.saved_model of it, froze Keras 3's variables as garbage)."""
    tf = _tf()
    with tempfile.TemporaryDirectory() as tmp:
        _archive(model, fn).write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            users = representative_users if representative_users is not None else np.random.default_rng(0).integers(0, model.n_users, 256)
            inputs = model_inputs(model, np.asarray(users))
            converter.representative_dataset = lambda: ([row[None]] for row in inputs)
        return converter.convert()


class ExportedTopK:
    """Run an exported graph (LiteRT, ONNX or SavedModel): ``top_k(user_codes)``, or ``scores(user_codes)``
    for one exported with ``outputs="scores"``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix == ".tflite":
            from ai_edge_litert.interpreter import Interpreter

            self.kind, self._rt = "litert", Interpreter(model_path=str(self.path))
        elif self.path.suffix == ".onnx":
            import onnxruntime

            self.kind, self._rt = "onnx", onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        else:
            self.kind, self._rt = "saved_model", _tf().saved_model.load(str(self.path)).signatures

    def scores(self, user_codes: np.ndarray) -> np.ndarray:
        """Every item's score (users x items): a SavedModel, or a LiteRT / ONNX export with ``outputs="scores"``."""
        return self._run(user_codes, "all_scores")[-1]

    def top_k(self, user_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx, vals = self._run(user_codes)
        return idx, vals

    def _run(self, user_codes: np.ndarray, signature: str = "top_k_codes") -> tuple[np.ndarray, ...]:
        """``(item_codes, scores)`` of a top-k graph, ``(scores,)`` of a scores graph."""
        codes = np.asarray(user_codes, np.int32)
        if self.kind == "onnx":
            out = self._rt.run(None, {self._rt.get_inputs()[0].name: codes})
        elif self.kind == "litert":
            runner = self._rt.get_signature_runner()
            out = list(runner(**{next(iter(runner.get_input_details())): codes}).values())
        else:
            fn = self._rt[signature]
            out = [v.numpy() for v in fn(**{next(iter(fn.structured_input_signature[1])): codes}).values()]  # user_code or session
        # output names differ between runtimes (ONNX takes LiteRT's): the item codes are the integer output
        ints = [v for v in out if np.issubdtype(v.dtype, np.integer)]
        floats = [v for v in out if np.issubdtype(v.dtype, np.floating)]
        return (*ints, *floats)


def model_inputs(model: Recommender, user_codes: np.ndarray) -> np.ndarray:
    """What an exported graph takes for these users: their codes, or for a sequence model their padded histories."""
    codes = np.asarray(user_codes)
    return model._histories(codes).astype(np.int32) if hasattr(model, "recommend_next") else codes.astype(np.int32)


def compare(model: Recommender, exported: ExportedTopK, users: np.ndarray | None = None, k: int = 10) -> dict[str, Any]:
    """Max absolute score difference and mean top-``k`` overlap of an export against the model in memory."""
    users = np.arange(min(model.n_users, 200)) if users is None else np.asarray(users)
    x = model_inputs(model, users)
    if hasattr(model, "recommend_next"):  # the graph masks the session items it reads (the last maxlen)
        scores = model.states(x).astype(np.float64) @ model.item_vectors.T
        rows, cols = np.nonzero((x > 0) & (x <= model.n_items))
        scores[rows, x[rows, cols] - 1] = -np.inf
        ref_idx, ref_val = top_k(scores, k)
    else:
        ref_idx, ref_val = model._top_k_codes(users, k, exclude_seen=True)
    idx, val = exported.top_k(x)
    overlap = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(ref_idx, idx[:, :k])])
    return {"max_score_diff": float(np.nanmax(np.abs(ref_val - val[:, :k]))), f"top{k}_overlap": float(overlap)}
