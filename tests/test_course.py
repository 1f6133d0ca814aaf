"""The notebook conventions and the course runner's helpers."""

import json
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


@pytest.mark.parametrize("long_tmp", [False, True], ids=["unix-sockets", "tcp-fallback"])
def test_notebooks_run_over_private_sockets_or_tcp_when_the_path_is_too_long(tmp_path, monkeypatch, capfd, long_tmp):
    """The course runner's kernels talk over Unix sockets in a folder of their own (mode 0700, removed
    with the kernel; not the working directory, where every kernel's sockets had the same names), so
    ipykernel does not warn of "TCP without encryption"; a temporary folder too long for socket paths
    falls back to TCP."""
    from recsys_tf.course import execute, kernel_manager_class

    if long_tmp:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("t" * 90)))
        Path(tempfile.tempdir).mkdir()
    tmp = Path(tempfile.gettempdir())
    transport = kernel_manager_class()(kernel_name="python3").transport
    if not long_tmp and transport != "ipc":  # pytest's own folders are too long for sockets
        pytest.skip(f"the temporary folder {tmp} is too long for Unix socket paths")
    assert transport == ("tcp" if long_tmp else "ipc")
    work = tmp_path / "work"
    work.mkdir()
    cell = ("import os, stat\nfrom ipykernel import get_connection_info\nfrom recsys_tf.results import record\n"
            "info = get_connection_info(unpack=True)\nfolder = os.path.dirname(info['ip'])\n"
            "record('transport', info['transport'])\n"
            "record('folder', [folder, stat.S_IMODE(os.stat(folder).st_mode)] if info['transport'] == 'ipc' else None)")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), work / "tiny.ipynb")
    run = execute(work / "tiny.ipynb", tmp_path / "out", kernel="python3", timeout=120)
    assert run["results"]["transport"] == ("tcp" if long_tmp else "ipc")
    assert ("without encryption" in capfd.readouterr().err) == long_tmp
    if not long_tmp:
        folder, mode = run["results"]["folder"]
        assert Path(folder).parent == tmp and mode == 0o700
        assert not Path(folder).exists(), "the kernel's socket folder is removed when it stops"
    assert sorted(p.name for p in work.iterdir()) == ["tiny.ipynb"], "nothing is left in the working directory"
