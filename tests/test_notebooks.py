"""Every course notebook runs through papermill with its small test parameters; results are checked.

New notebooks are picked up automatically (``notebooks/NN_*.ipynb``); their shrunken parameters
live in the notebook's metadata (``recsys_tf.test_parameters``). Executed copies are kept in
``build/test-notebooks/``; those with cells marked ``NBVAL_CHECK_OUTPUT`` also go, cut after the
last such cell, to ``build/nbval-notebooks/`` for nbval's determinism check (``make test`` runs it next).
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from recsys_tf.course import ROOT, execute, list_notebooks
from recsys_tf.utils import atomic_write

OUT = ROOT / "build" / "test-notebooks"
NBVAL = ROOT / "build" / "nbval-notebooks"  # a sibling of OUT: relative paths in the notebooks resolve alike
# The notebooks' kernels share one cache (pretrained embeddings), as a learner's notebooks do, and so does
# nbval's re-run (conftest.py); `make test` empties it first
NOTEBOOK_CACHE = ROOT / "build" / "test-cache"
BOOKS = list_notebooks()


def _between(lo, hi):
    return lambda v: lo <= v <= hi


CHECKS = {
    "00_quickstart": {
        "n_pairs": _between(100, 10**6), "popularity_ndcg@10": _between(0, 1), "mf_ndcg@10": _between(0, 1),
        "mf_hit_rate@10": _between(0, 1), "recommended_for_user": lambda v: len(v) == 10 and len(set(v)) == 10,
    },
    "01_data_cleaning": {
        "raw_events": _between(1_000, 10**8), "clean_events": _between(1_000, 10**8),
        "duplicates_removed": _between(1, 10**6), "bots_found": _between(1, 100),
        "leakage_random": _between(0.05, 1), "leakage_temporal": lambda v: v == 0,
        "explicit_rmse_model": _between(0, 3), "explicit_rmse_mean": _between(0, 3),
    },
    "03_baselines_and_evaluation": {
        "popularity_full_ndcg@10": _between(0, 1), "EASE_full_ndcg@10": _between(0, 1),
        "EASE_sampled_hr@10": _between(0, 1), "ease_vs_itemknn_p": _between(0, 1),
    },
    "04_matrix_factorization_mse": {
        "rmse_mean": _between(0.5, 1.6), "mae_mean": _between(0.4, 1.3), "rmse_per_fold": lambda v: len(v) >= 1,
    },
    "05_neural_collaborative_filtering": {
        "NeuMF HR@10": _between(0, 1), "MF (dot product) HR@10": _between(0, 1), "popularity HR@10": _between(0, 1),
        "NeuMF, pre-trained NDCG@10": _between(0, 1),
    },
    "06_training_on_gpu": {
        "best_samples_per_s": _between(1_000, 10**9), "backends_measured": lambda v: "tensorflow" in v,
        "eval_same_lists": _between(0.999, 1), "eval_seconds": lambda v: set(v) == {"host (NumPy)", "device (keras.ops)"},
    },
    "07_text_features": {
        "tfidf_category_agreement": _between(0.2, 1), "pretrained_text_used": lambda v: isinstance(v, bool),
        "text_items_per_s": lambda v: all(x > 0 for x in v.values()),
        "text_neighbour_agreement": lambda v: all(0 <= x <= 1 for enc in v.values() for x in enc.values()),
    },
    "08_image_features": {
        "descriptor_colour_agreement": _between(0.5, 1), "pictures_per_s": lambda v: all(x > 0 for x in v.values()),
        "autoencoder_final_loss": _between(0, 0.2), "pretrained_cnn_used": lambda v: isinstance(v, bool),
    },
    "09_hybrid_cold_start": {
        "new_items_hybrid_over_popularity": _between(0, 10**6), "warm_hybrid_vs_neumf": _between(-1, 10),
        "cold_users_fold_in_ndcg": _between(0, 1),
        "cold_start_table": lambda v: {"popularity", "hybrid", "NeuMF", "content k-NN"} <= set(v),
        "ablation": lambda v: "all content" in v and "learned text only" in v,
    },
    "10_reranking": {
        "baseline_ndcg@10": _between(0, 1), "baseline_interest_coverage": _between(0, 1),
        "front": lambda v: len(v) >= 5 and all(0 <= p["interest coverage"] <= 1 for p in v),
        "max_coverage_gain": _between(0, 10),
    },
    "11_sequential_recommendation": {
        "sequence_table": lambda v: {"popularity", "GRU4Rec", "SASRec (full cross-entropy)", "BERT4Rec"} <= set(v)
        and all(0 <= r["HR@10 full"] <= r["HR@10 sampled"] + 1e-9 <= 1 + 1e-9 for r in v.values()),
        "next_items_same_category": _between(0, 1), "attention_rows_sum_to_one": lambda v: v is True,
    },
    "12_attention_ranking_din": {
        "ctr_table": lambda v: {"sum pooling (base)", "DIN, Dice", "DIN, PReLU", "DIN, PReLU, a slope per click position", "DIN, softmax (authors' code)"} <= set(v)
        and all(0 <= r["auc"] <= 1 for r in v.values()),
        "gauc_by_style": lambda v: len(v) == 9 and all(set(r) == {"needs of one style", "needs of several styles"} for r in v.values()),
        "recency_weights": lambda v: len(v) == 2 and all(len(r) > 1 and np.isfinite(r).all() for r in v.values()),
        "din_gauc_minus_sum": _between(-1, 1), "same_category_weight_lift": lambda v: len(v) == 2,
    },
    "13_deployment": {
        "export_checks": lambda v: set(v) == {"saved_model", "litert", "onnx"} and all(r["top10_overlap"] > 0.99 for r in v.values()),
        "quantization_table": lambda v: len(v) >= 8 and all(r["size kB"] > 0 and 0 <= r["HR@10"] <= 1 for r in v.values()),
        "int8_hr_change_mf": _between(-0.2, 0.2),
        "pruning_curve": lambda v: all(abs(r["sparsity"] - float(s)) < 0.02 for s, r in v.items()),
        "compression_curve": lambda v: any(r["method"] == "low-rank factors" for r in v),
    },
    "14_serving_realtime": {
        "strategies": lambda v: v == ["model", "model+events", "session", "popularity"],
        "bad_request_statuses": lambda v: all(400 <= s < 500 for s in v.values()),
        "events_replayed_after_kill": lambda v: v == 4,
        "load": lambda v: all(r["errors"] == 0 and r["requests"] > 0 for r in v.values()),
    },
    "15_scaling_out": {
        "spark_identical_rows": lambda v: len(v) == 5 and all(n > 0 for n in v.values()), "cleaning_reports_equal": lambda v: v is True,
        "als_vs_mf": lambda v: len(v) == 3 and all(0 <= r["HR@10"] <= 1 for r in v.values()),
        "streamed_vs_in_memory": lambda v: abs(v["in memory (fit)"]["HR@10"] - v["streamed from shards (fit_shards)"]["HR@10"]) < 0.15,
        "device_scaling": lambda v: len(v) >= 1 and all(r["samples_per_s"] > 0 and 0 <= r["hr@10"] <= 1 for r in v.values()),
    },
    "02_user_behavior_analysis": {
        "view_to_click": _between(0.05, 0.8), "cart_to_purchase": _between(0.1, 1),
        "share_two_or_more_needs_true": _between(0.3, 1), "needs_seen_vs_true_spearman": _between(0.1, 1),
        "price_level_vs_budget_spearman": _between(0.2, 1),
    },
}


# Warnings a notebook shows on purpose: 01's "what is wrong with this code" cell uses Keras 2's input_length.
MEANT_WARNINGS = {"01_data_cleaning": ["`input_length` is deprecated"]}


def unexpected_warnings(executed, name: str) -> list[str]:
    """stderr lines of the executed notebook that warn, but for those the notebook means to show."""
    nb = nbformat.read(executed, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")  # fmt: skip
    return [line for line in text.splitlines() if "Warning" in line and not any(m in line for m in MEANT_WARNINGS.get(name, []))]


def keep_for_nbval(executed) -> None:
    """Write the executed notebook, cut after its last ``NBVAL_CHECK_OUTPUT`` cell, for nbval to run again.

    Later cells cannot change the outputs nbval compares, so running them a second time checks
    nothing (on 2 cores nbval took 166 s instead of 293 s: notebook 15's ALS and streaming, 07's
    real-data sections, 09's ablation no longer run twice). A notebook without checked cells gets no copy.
    """
    nb = nbformat.read(executed, as_version=4)
    checked = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    target = NBVAL / executed.name
    if not checked:
        target.unlink(missing_ok=True)
        return
    nb.cells = nb.cells[: checked[-1] + 1]
    NBVAL.mkdir(parents=True, exist_ok=True)
    atomic_write(target, nbformat.writes(nb))


@pytest.mark.notebook
@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_notebook_runs_and_records_results(path, monkeypatch):
    monkeypatch.setenv("RECSYS_TF_CACHE", str(NOTEBOOK_CACHE))
    params = nbformat.read(path, as_version=4).metadata.get("recsys_tf", {}).get("test_parameters", {})
    run = execute(path, OUT, parameters=params, timeout=600)
    keep_for_nbval(OUT / path.name)
    warned = unexpected_warnings(OUT / path.name, path.stem)
    assert not warned, f"{path.name} shows a learner these warnings: {warned}"
    results = run["results"]
    assert results, f"{path.name} recorded no results"
    for name, ok in CHECKS.get(path.stem, {}).items():
        assert name in results, f"{path.name} did not record {name}"
        assert ok(results[name]), f"{path.name}: {name} = {results[name]!r} is out of range"
