"""Record results in a notebook so that tests and the course summary can read them back.

``record("ndcg@10", 0.23)`` displays the value and stores it in the cell's output under the
MIME type ``application/vnd.recsys-tf.result+json``; :func:`read_results` collects them from an
executed ``.ipynb`` (the role scrapbook used to play, in twenty lines).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

MIME = "application/vnd.recsys-tf.result+json"
RECORDED: dict[str, Any] = {}  # also kept in-process, for scripts


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def record(name: str, value: Any) -> Any:
    """Record ``value`` (JSON-able: numbers, strings, lists, dicts) under ``name``; returns it."""
    value = _jsonable(value)
    RECORDED[name] = value
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            text = f"recorded {name} = {value!r}"
            display({MIME: {"name": name, "value": value}, "text/plain": text}, raw=True)
            return value
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks extra
        pass
    print(f"recorded {name} = {value!r}")
    return value


FALLBACKS = "fallbacks"


def record_fallback(message: str) -> None:
    """Say that this run used a substitute (the simulated shop for missing MovieLens) or skipped a part.

    The message is printed for the reader and recorded under ``fallbacks``; the course summary
    then reports the notebook's status as a fallback, never as a plain "ok".
    """
    done = list(RECORDED.get(FALLBACKS, []))
    record(FALLBACKS, done + [str(message)])
    print(f"NOTE: {message}")


def read_results(notebook: str | Path | dict) -> dict[str, Any]:
    """All values recorded in an executed notebook (file path or nbformat dict), later ones winning."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if not isinstance(notebook, dict) else notebook
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {})
            if MIME in data:
                payload = data[MIME]
                if payload["name"] == FALLBACKS:  # every fallback of the run, not only the last list
                    out[FALLBACKS] = list(dict.fromkeys(out.get(FALLBACKS, []) + list(payload["value"])))
                else:
                    out[payload["name"]] = payload["value"]
    return out
