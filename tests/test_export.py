"""Exports (.keras, SavedModel, LiteRT, ONNX) reload and answer as the model in memory does."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_tf.data.cleaning import clean_events, to_implicit
from recsys_tf.errors import DataError
from recsys_tf.export import ExportedTopK, compare, export
from recsys_tf.models import EASE, MatrixFactorization, NeuMF


@pytest.fixture(scope="module")
def clicks(shop_tiny):
    events, _ = clean_events(shop_tiny.events, shop_tiny.catalog)
    return to_implicit(events, min_event="click")


@pytest.fixture(scope="module")
def mf(clicks):
    return MatrixFactorization(factors=16, loss="bce", epochs=5, seed=0, verbose=False).fit(clicks)


def test_saved_model_answers_raw_ids_with_training_items_masked_inside(mf, tmp_path):
    import tensorflow as tf

    path = export(mf, tmp_path / "sm", "saved_model", k=10)
    loaded = tf.saved_model.load(str(path))
    users = mf.encoder_.users.classes_[:30]
    out = loaded.signatures["serving_default"](user_id=tf.constant(users.astype(np.int64)))
    ref_items, ref_scores = mf.recommend(users, k=10)
    assert np.array_equal(out["item_ids"].numpy(), ref_items.astype(np.int64)) and out["known"].numpy().all()
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, atol=1e-4)
    unknown = loaded.signatures["serving_default"](user_id=tf.constant([10**9], tf.int64))
    assert not unknown["known"].numpy()[0]  # said, not silently answered as user 0
    history = mf.item_ids[:3]
    session = loaded.signatures["recommend_history"](item_id=tf.constant(history.astype(np.int64)))
    from recsys_tf.serving import Engine

    expected = Engine(mf, retrieval="exact").recommend(history=list(history), k=10)["items"]
    assert session["item_ids"].numpy().tolist() == expected


@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
def test_every_export_reloads_and_matches_the_model_in_memory(mf, tmp_path, fmt):
    exported = ExportedTopK(export(mf, tmp_path / fmt, fmt, k=10))
    result = compare(mf, exported, k=10)
    assert result["max_score_diff"] < 1e-4 and result["top10_overlap"] > 0.99, result


def test_neumf_exports_too_and_keras_file_reloads(clicks, tmp_path):
    import keras

    model = NeuMF(factors=8, layers=(16, 8), epochs=2, seed=0, verbose=False).fit(clicks)
    result = compare(model, ExportedTopK(export(model, tmp_path / "onnx", "onnx")), k=10)
    assert result["max_score_diff"] < 1e-4 and result["top10_overlap"] > 0.99, result
    net = keras.models.load_model(export(model, tmp_path / "net", "keras"))
    pairs = np.array([[0, 1], [3, 7]], "int32")
    np.testing.assert_allclose(net(pairs), model.net_(pairs), atol=1e-6)


@pytest.mark.parametrize("quantize", ["dynamic", "float16", "int8"])
def test_quantized_litert_stays_close_and_is_smaller(mf, tmp_path, quantize):
    plain = export(mf, tmp_path / "f32", "litert")
    small = export(mf, tmp_path / quantize, "litert", quantize=quantize)
    result = compare(mf, ExportedTopK(small), k=10)
    assert small.stat().st_size < plain.stat().st_size
    assert result["top10_overlap"] > 0.8, result


def test_models_without_a_scoring_network_are_refused(clicks, tmp_path):
    with pytest.raises(DataError, match="no Keras scoring network"):
        export(EASE().fit(clicks), tmp_path / "x", "saved_model")
    with pytest.raises(ValueError, match="format must be"):
        export(MatrixFactorization(epochs=1, verbose=False).fit(clicks), tmp_path / "y", "pickle")


@pytest.mark.parametrize(("kind", "fmt"), [("SASRec", "litert"), ("BERT4Rec", "onnx"), ("SASRec, the authors' block", "onnx")])
def test_a_sequence_model_exports_and_answers_sessions_as_recommend_next(kind, fmt, tmp_path, tiny_sasrec, chain_sessions):
    import tensorflow as tf

    from recsys_tf.models import BERT4Rec, SASRec

    small = dict(maxlen=8, dim=16, blocks=1, epochs=1, batch_size=128, verbose=False)
    model = {"SASRec": lambda: tiny_sasrec, "BERT4Rec": lambda: BERT4Rec(**small).fit(chain_sessions),
             "SASRec, the authors' block": lambda: SASRec(layout="authors", **small).fit(chain_sessions)}[kind]()
    loaded = tf.saved_model.load(str(export(model, tmp_path / "sm", "saved_model", k=5)))
    session = [105, 106, 107]
    out = loaded.signatures["serving_default"](item_id=tf.constant(session, tf.int64))
    assert out["item_ids"].numpy().tolist() == model.recommend_next(session, k=5)[0].tolist()
    for exported in (ExportedTopK(tmp_path / "sm"), ExportedTopK(export(model, tmp_path / fmt, fmt, k=10))):
        result = compare(model, exported, k=5)  # the SavedModel's top_k_codes takes padded sessions too
        assert result["max_score_diff"] < 1e-4 and result["top5_overlap"] > 0.99, (exported.kind, result)
