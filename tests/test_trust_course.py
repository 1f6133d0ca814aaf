"""Data is found the same way everywhere, a fallback is never reported as "ok", failures name their cell."""

from __future__ import annotations

import ast
import os

import nbformat
import pytest

from recsys_tf.course import ROOT, describe_failure, list_notebooks, run_course, status_of
from recsys_tf.data import download as dl
from recsys_tf.data.choice import check_dataset, implicit_data
from recsys_tf.errors import DataError
from recsys_tf.lab import lab_command


def test_a_relative_data_dir_is_found_from_the_notebooks_folder_too(monkeypatch):
    monkeypatch.setenv("RECSYS_TF_DATA", "datasets")  # relative to the repository root
    monkeypatch.chdir(ROOT / "notebooks")  # where Jupyter kernels run
    assert dl.data_dir() == ROOT / "datasets"
    monkeypatch.chdir(ROOT)
    assert dl.data_dir() == ROOT / "datasets"
    assert dl.export_data_dir() == ROOT / "datasets" and os.environ["RECSYS_TF_DATA"] == str(ROOT / "datasets")


def test_a_relative_data_dir_that_exists_here_wins(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_TF_DATA", "mine")
    assert dl.data_dir() == tmp_path / "mine"


@pytest.mark.skipif(not (ROOT.parent / "shared" / "datasets").is_dir(), reason="no ../shared/datasets here")
def test_unset_data_dir_defaults_to_shared_datasets_for_every_entry_point(monkeypatch):
    monkeypatch.delenv("RECSYS_TF_DATA")
    assert dl.data_dir() == ROOT.parent / "shared" / "datasets"


def test_unknown_dataset_names_the_allowed_ones():
    with pytest.raises(DataError, match=r"DATASET = 'movielens-5m'.*\['movielens-100k', 'movielens-latest-small'"):
        implicit_data("movielens-5m")
    assert check_dataset("shop") == "shop"


def test_a_missing_real_data_set_falls_back_and_says_so(monkeypatch, tmp_path, capsys):
    from recsys_tf import results

    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path))  # nothing there, and downloads are off
    monkeypatch.setattr(results, "RECORDED", {})
    got = implicit_data("movielens-100k", size="tiny")
    assert got.dataset == "shop" and "movielens-100k is not available" in got.fallback
    assert "NOTE: movielens-100k is not available" in capsys.readouterr().out
    assert status_of(results.RECORDED).startswith("fallback: movielens-100k is not available")
    assert status_of({"x": 1}) == "ok"


def test_a_failure_names_the_cell_and_the_error():
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(cell_index=4, exec_count=3, source="x = 1\nload(DATASET)", ename="DataError",
                                  evalue="DATASET = 'x' is not one this notebook knows", traceback=[])  # fmt: skip
    text = describe_failure(exc)
    assert "cell 4 (execution count 3) failed with DataError: DATASET = 'x'" in text and "load(DATASET)" in text


def test_lab_starts_as_root_where_jupyter_would_refuse(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "--allow-root" in lab_command(["notebooks/"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab_command(["notebooks/"])


def test_lab_kernels_use_private_sockets_unless_told_otherwise(monkeypatch):
    from importlib import import_module

    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

    from recsys_tf import lab
    from recsys_tf.course import PrivateSockets

    flag = f"--MultiKernelManager.kernel_manager_class={lab.KERNEL_MANAGER}"
    monkeypatch.setattr(lab, "unix_sockets_fit", lambda: True)
    assert flag in lab_command(["notebooks/"])
    module, name = lab.KERNEL_MANAGER.rsplit(".", 1)  # resolved by name, as Lab does (traitlets' import_item)
    cls = getattr(import_module(module), name)
    assert issubclass(cls, PrivateSockets) and issubclass(cls, ServerKernelManager)  # Lab's own features stay
    own = "--MultiKernelManager.kernel_manager_class=my.Manager"
    assert [a for a in lab_command(["notebooks/", own]) if "kernel_manager_class" in a] == [own]
    monkeypatch.setattr(lab, "unix_sockets_fit", lambda: False)  # Windows, or a temporary folder too long
    assert not any("kernel_manager_class" in a for a in lab_command(["notebooks/"]))


def test_notebooks_name_the_kernel_the_readme_names():
    readme = (ROOT / "README.md").read_text()
    for path in list_notebooks():
        spec = nbformat.read(path, as_version=4).metadata["kernelspec"]
        assert spec["name"] == "recsys-tf" and spec["display_name"] in readme


@pytest.mark.notebook
def test_the_course_runner_reports_fallbacks_and_failing_cells(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path / "empty"))
    params = {"SIZE": "tiny", "N_NEG": 20}
    runs = run_course(tmp_path / "build", only="03_", parameters={**params, "DATASET": "movielens-100k"})
    assert runs[0]["status"].startswith("fallback: movielens-100k is not available")
    summary = (tmp_path / "build" / "results.md").read_text()
    assert "| 03_baselines_and_evaluation.ipynb | fallback: movielens-100k is not available" in summary
    assert "fallback: movielens-100k" in (tmp_path / "build" / "html" / "index.html").read_text()
    runs = run_course(tmp_path / "build2", only="03_", parameters={**params, "DATASET": "movielens-latest"})
    assert runs[0]["status"] == "FAILED: PapermillExecutionError"
    out = capsys.readouterr().out
    assert "failed with DataError: DATASET = 'movielens-latest' is not one this notebook knows" in out
    assert str(tmp_path / "build2" / "executed" / "03_baselines_and_evaluation.ipynb") in out


# --- what the notebooks and README say matches what they measure -----------------------------------
def _text(stem: str) -> tuple[str, str]:
    nb = nbformat.read(next(p for p in list_notebooks() if p.stem.startswith(stem)), as_version=4)
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return md, code


@pytest.mark.parametrize("stem, stale", [
    ("03", "~37×"), ("07", "~100×"), ("07", "10,000-odd"), ("05", "within noise of the neural ones here too"),
    ("02", "the sequence models of a later notebook"), ("04", "../shared/reference"),
])  # fmt: skip
def test_fixed_numbers_in_the_text_are_gone(stem, stale):
    md, code = _text(stem)
    assert stale not in md + code


def test_texts_that_state_numbers_compute_them():
    assert "x fewer" in _text("03")[1]  # the sampled-vs-full cost ratio is printed from the data
    assert "x the time of TF-IDF" in _text("07")[1]
    assert "paired_comparison(at_chosen_epoch" in _text("05")[1]
    md, code = _text("01")
    assert "confidence_interval" in code and "beyond noise" in code and "test sets differ" in code


def test_regularisation_is_chosen_on_validation_not_test():
    md, code = _text("04")
    assert 'sweep["validation RMSE"].idxmin()' in code and "test RMSE" not in code.split("## 4.")[0]
    assert "reg=best_reg" in code and "never used to choose" in md


def test_the_speed_table_shows_every_measured_path():
    code = _text("06")[1]
    for key in ("throughput_samples_per_s_device_loop", "neumf_fit_samples_per_s", "neumf_fit_first_epoch_s"):
        assert key in code


@pytest.mark.skipif(not (dl.data_dir() and (dl.data_dir() / "movielens-100k" / "u.data").exists()),
                    reason="MovieLens 100K not in the local-data folder")  # fmt: skip
def test_the_readme_movielens_example_runs_and_prints_what_it_says():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("**MovieLens in three lines**", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert len([line for line in block.strip().splitlines() if line.strip()]) == 3
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own README, the point of the test
    metrics = ast.literal_eval(out.getvalue().strip())
    said = float(block.split("NDCG@10 ")[1].split()[0])
    assert round(metrics["ndcg@10"], 3) == said and metrics["n_users"] == int(block.split("over ")[1].split()[0])
    assert "## Your first hour" in readme and "--allow-root" in readme


def test_the_robustness_table_has_40_rows_and_every_test_it_names_exists():
    import re

    doc = (ROOT / "docs" / "robustness.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and not line.startswith("| input")]
    assert len(rows) >= 40
    defined = set(re.findall(r"def (test_\w+)", "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))))
    named = set(re.findall(r"::(test_\w+)", doc))
    assert named and named <= defined, sorted(named - defined)
    assert all("test_" in row for row in rows), "every row names its test"
