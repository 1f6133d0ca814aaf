"""Run the whole course headless: every notebook through papermill, then HTML pages and a summary.

    python -m recsys_tf.course                       # all notebooks at their default parameters
    python -m recsys_tf.course --only 00 -p EPOCHS=2 # one notebook, one knob changed

Writes ``build/executed/*.ipynb``, ``build/html/*.html`` (with ``index.html``),
``build/results.json`` and ``build/results.md`` (every value each notebook recorded, and its time).
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from recsys_tf.results import read_results
from recsys_tf.utils import atomic_write

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def list_notebooks(folder: Path = NOTEBOOKS, only: str | None = None) -> list[Path]:
    """Course notebooks in order (``NN_name.ipynb``), optionally those whose name contains ``only``."""
    books = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in books if only is None or only in p.name]


def parameters_cell(nb: dict) -> dict[str, Any]:
    """The UPPER_CASE knobs assigned in the cell tagged ``parameters`` (literal values only)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"])
            out = {}
            for node in ast.parse(src).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    raise ValueError("no code cell is tagged 'parameters'")


def default_kernel() -> str:
    """The ``recsys-tf`` kernel that ``make install`` registers (the notebooks name it), else ``python3``.

    Using it (rather than whatever ``python3`` kernel a user has registered) guarantees the
    notebooks run with the kit's own environment; without it (a plain ``pip install``) the
    notebooks still run on the default Python kernel.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return "recsys-tf" if "recsys-tf" in KernelSpecManager().find_kernel_specs() else "python3"
    except Exception:  # pragma: no cover - jupyter_client missing or broken: papermill will say so
        return "python3"


SOCKET_FOLDER_PREFIX = "recsys-tf-kernel-"  # each kernel's socket folder: mkdtemp(prefix=...) in the temporary folder


def unix_sockets_fit() -> bool:
    """Whether a kernel's Unix socket paths fit here: not on Windows, not past the 107-byte limit."""
    import tempfile

    longest = f"{tempfile.gettempdir()}/{SOCKET_FOLDER_PREFIX}{'x' * 8}/kernel-99"  # mkdtemp adds 8 characters
    return os.name != "nt" and len(longest.encode()) <= 107


class PrivateSockets:
    """Mixin for a Jupyter kernel manager: the kernel talks over Unix sockets in a folder of its own.

    Over TCP on 127.0.0.1 any local user can reach the kernel's ports (ipykernel 7 warns so at every
    start). The folder is made when the kernel first starts, only its owner can open it (mode 0700,
    from ``mkdtemp``), it survives restarts and is removed with the kernel: jupyter_client's default
    puts the sockets in the working directory, under the same names for every kernel.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        import tempfile

        if not getattr(self, "_socket_dir", None):  # a manager never started leaves nothing behind
            self._socket_dir = tempfile.mkdtemp(prefix=SOCKET_FOLDER_PREFIX)
            self.ip = os.path.join(self._socket_dir, "kernel")
        return await super()._async_pre_start_kernel(**kw)  # type: ignore[misc]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        import shutil

        await super()._async_cleanup_resources(restart=restart)  # type: ignore[misc]
        if not restart and getattr(self, "_socket_dir", None):
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def kernel_manager_class(base: type | None = None) -> type:
    """``base`` (jupyter_client's ``AsyncKernelManager``, nbclient's default) with :class:`PrivateSockets`,
    or ``base`` itself, over TCP, where Unix sockets do not exist (Windows) or their path would not fit."""
    if base is None:
        from jupyter_client.manager import AsyncKernelManager as base
    if not unix_sockets_fit():
        return base
    return type(f"PrivateSockets{base.__name__}", (PrivateSockets, base), {"__module__": __name__})


def execute(notebook: Path, out_dir: Path, parameters: dict[str, Any] | None = None,
            kernel: str | None = None, timeout: int = 1800) -> dict[str, Any]:  # fmt: skip
    """Execute one notebook with papermill into ``out_dir``; returns its recorded results and timing."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    env_before = os.environ.get("RECSYS_TF_PROGRESS")
    os.environ["RECSYS_TF_PROGRESS"] = "0"  # keep executed notebooks small: no progress bars
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the kernel's C++ log lines only clutter the terminal
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(notebook), str(target), parameters=parameters or {}, kernel_name=kernel or default_kernel(),
            cwd=str(notebook.parent), progress_bar=False, execution_timeout=timeout, log_output=False,
            kernel_manager_class=kernel_manager_class(),
        )  # fmt: skip
    finally:
        if env_before is None:
            os.environ.pop("RECSYS_TF_PROGRESS", None)
        else:
            os.environ["RECSYS_TF_PROGRESS"] = env_before
    seconds = time.perf_counter() - start
    return {"notebook": notebook.name, "seconds": round(seconds, 1), "results": read_results(target), "path": str(target)}


def to_html(executed: Path, html_dir: Path) -> Path:
    """Render an executed notebook as a standalone HTML page."""
    import nbformat
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    page = html_dir / (executed.stem + ".html")
    atomic_write(page, body)
    return page


def status_of(results: dict[str, Any]) -> str:
    """``ok``, or ``fallback: ...`` when the notebook recorded that it used a substitute or skipped a part."""
    fallbacks = results.get("fallbacks") or []
    return "ok" if not fallbacks else "fallback: " + "; ".join(fallbacks)


def describe_failure(exc: BaseException) -> str:
    """Which cell failed and with what error (papermill's own message says only "PapermillExecutionError")."""
    cell = getattr(exc, "cell_index", None)
    if cell is None:
        return f"{type(exc).__name__}: {str(exc)[-1500:]}"
    source = (getattr(exc, "source", "") or "").strip().splitlines()
    excerpt = "\n    ".join(source[:6]) + ("\n    ..." if len(source) > 6 else "")
    return (f"cell {cell} (execution count {getattr(exc, 'exec_count', '?')}) failed with "
            f"{getattr(exc, 'ename', '?')}: {getattr(exc, 'evalue', '')}\n    {excerpt}")  # fmt: skip


def _summary_markdown(runs: list[dict[str, Any]]) -> str:
    lines = ["# recsys-tf course run", "", f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    lines += ["| notebook | status | seconds | recorded results |", "|---|---|---|---|"]
    for r in runs:
        res = "; ".join(f"{k} = {_fmt(v)}" for k, v in r.get("results", {}).items() if not isinstance(v, (list, dict)))
        status = r["status"] if "error" not in r else f"{r['status']}: {r['error'].splitlines()[0]}"
        lines.append(f"| {r['notebook']} | {status.replace('|', '/')} | {r.get('seconds', '')} | {res} |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_course(out: Path, only: str | None = None, parameters: dict[str, Any] | None = None,
               kernel: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Execute, render and summarise; failures are reported and the others still run."""
    from recsys_tf.data.download import export_data_dir

    export_data_dir()  # kernels run in notebooks/: give them the absolute local-data directory
    runs = []
    books = list_notebooks(only=only)
    if not books:
        raise SystemExit(f"no notebook in {NOTEBOOKS} matches {only!r}")
    for nb in books:
        print(f"[course] {nb.name} ...", flush=True)
        started = time.perf_counter()
        try:
            run = execute(nb, out / "executed", parameters, kernel)
            run["status"] = status_of(run["results"])
        except Exception as exc:  # report and continue with the next notebook
            run = {"notebook": nb.name, "status": f"FAILED: {type(exc).__name__}", "error": describe_failure(exc),
                   "path": str(out / "executed" / nb.name), "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        if Path(run["path"]).exists():
            to_html(Path(run["path"]), out / "html")
        print(f"[course] {nb.name}: {run['status']} in {run.get('seconds', '?')} s", flush=True)
        if "error" in run:
            print(f"[course] {run['error']}\n[course] the executed notebook, with the failing cell: {run['path']}", flush=True)
        runs.append(run)
    atomic_write(out / "results.json", json.dumps(runs, indent=2))
    atomic_write(out / "results.md", _summary_markdown(runs))
    links = "".join(f'<li><a href="{r["notebook"][:-6]}.html">{r["notebook"]}</a> ({html.escape(r["status"])})</li>' for r in runs)
    (out / "html").mkdir(parents=True, exist_ok=True)
    atomic_write(out / "html" / "index.html", f"<h1>recsys-tf course</h1><ol>{links}</ol>")
    return runs


def _parse_param(text: str) -> tuple[str, Any]:
    key, _, raw = text.partition("=")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build", help="output folder (default: build/)")
    ap.add_argument("--only", help="run only notebooks whose file name contains this text")
    ap.add_argument("-p", "--param", action="append", default=[], help="KEY=VALUE parameter for every notebook")
    ap.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    args = ap.parse_args(argv)
    runs = run_course(args.out, args.only, dict(_parse_param(p) for p in args.param), args.kernel)
    print((args.out / "results.md").read_text())
    return 1 if any(r["status"].startswith("FAILED") for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
