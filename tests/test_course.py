"""The notebook conventions and the course runner's helpers."""

import json
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from recsys_tf.course import list_notebooks, parameters_cell
from recsys_tf.results import MIME, read_results, record

BOOKS = list_notebooks()


def test_there_are_ordered_notebooks():
    names = [p.name for p in BOOKS]
    assert names[:3] == ["00_quickstart.ipynb", "01_data_cleaning.ipynb", "02_user_behavior_analysis.ipynb"]
    assert names == sorted(names)


@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_notebook_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    first = [line for line in code[0].source.splitlines() if line.strip()]
    assert all(line.startswith(("import ", "from ", " ", ")")) for line in first), "imports come first"
    params = parameters_cell(nb)
    assert params and all(k.isupper() for k in params), "one parameters cell with UPPER_CASE knobs"
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    test_params = nb.metadata["recsys_tf"]["test_parameters"]
    assert set(test_params) <= set(params), "test parameters must be knobs of the parameters cell"
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")]
    assert [h.split()[1] for h in headings[:3]] == ["1.", "2.", "3."], "numbered sections"
    assert any("record(" in c.source for c in code[-2:]), "results recorded at the end"
    assert all(not c.get("outputs") for c in code), "notebooks are committed without outputs"


def test_record_outside_jupyter_prints_and_keeps(capsys):
    assert record("x", 1.5) == 1.5
    assert "recorded x = 1.5" in capsys.readouterr().out


def test_read_results_from_an_executed_notebook():
    nb = {"cells": [
        {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {MIME: {"name": "a", "value": 1}}}]},
        {"cell_type": "code", "outputs": [{"output_type": "stream", "text": "hi"}]},
        {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {MIME: {"name": "a", "value": 2}}},
                                          {"output_type": "display_data", "data": {MIME: {"name": "b", "value": [1, 2]}}}]},
    ]}  # fmt: skip
    assert read_results(nb) == {"a": 2, "b": [1, 2]}
    assert json.dumps(read_results(nb))


@pytest.mark.parametrize("long_runtime_dir", [False, True], ids=["unix-sockets", "tcp-fallback"])
def test_notebooks_run_over_private_sockets_or_tcp_when_the_path_is_too_long(tmp_path, monkeypatch, capfd, request, long_runtime_dir):
    """The course runner's kernels talk over Unix sockets in Jupyter's runtime folder (no "TCP without
    encryption" warning from ipykernel); a folder whose socket paths would pass 107 bytes falls back to TCP."""
    from recsys_tf.course import execute, kernel_manager_class

    short = Path(tempfile.mkdtemp(prefix="rt"))  # the system's temporary folder: pytest's own paths are too long
    runtime = short / ("r" * 90) if long_runtime_dir else short
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    transport = kernel_manager_class()(kernel_name="python3").transport
    assert transport == ("tcp" if long_runtime_dir else "ipc")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from recsys_tf.results import record\nrecord('answer', 6 * 7)")])
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    run = execute(tmp_path / "tiny.ipynb", tmp_path / "out", kernel="python3", timeout=120)
    assert run["results"] == {"answer": 42}
    assert ("without encryption" in capfd.readouterr().err) == long_runtime_dir
    assert not any(runtime.glob("*ipc*")), "the kernel's socket files are removed when it stops"
