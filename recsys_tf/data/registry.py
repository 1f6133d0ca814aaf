"""The data set registry: name, URL, sha256, size, terms and citation of every real data set.

The registry itself is ``registry.json`` next to this module (``datasets/registry.json`` at
the top of the repository points to it); ``python -m recsys_tf.data.registry`` prints it as
the Markdown table of ``datasets/README.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set and what it must be: sha256 when known, else size and/or lines."""

    name: str
    sha256: str | None = None
    size: int | None = None
    lines: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Where a data set comes from, what its files are and under which terms."""

    name: str
    title: str
    homepage: str
    files: dict[str, FileSpec]
    terms: str
    citation: str
    redistributable: bool = False
    archive: dict[str, str] | None = None  # {"url": ..., "prefix": "ml-100k/"}
    urls: dict[str, str] = field(default_factory=dict)

    def url_for(self, filename: str) -> str:
        """The publisher's URL that provides ``filename`` (an archive or the file itself)."""
        if self.archive:
            return self.archive["url"]
        return self.urls[filename]


def _spec(name: str, raw: dict[str, Any]) -> DatasetSpec:
    files = {fn: FileSpec(name=fn, **meta) for fn, meta in raw["files"].items()}
    return DatasetSpec(
        name=name,
        title=raw["title"],
        homepage=raw["homepage"],
        files=files,
        terms=raw["terms"],
        citation=raw["citation"],
        redistributable=raw.get("redistributable", False),
        archive=raw.get("archive"),
        urls=raw.get("urls", {}),
    )


@lru_cache(maxsize=1)
def registry() -> dict[str, DatasetSpec]:
    """All registered data sets by name."""
    text = resources.files("recsys_tf.data").joinpath("registry.json").read_text(encoding="utf-8")
    return {name: _spec(name, raw) for name, raw in json.loads(text).items()}


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``; a clear error lists the known names otherwise."""
    reg = registry()
    if name not in reg:
        raise KeyError(f"Unknown data set {name!r}. Known data sets: {sorted(reg)}.")
    return reg[name]


def markdown_table() -> str:
    """The registry as a Markdown table (what ``datasets/README.md`` shows)."""
    rows = ["| data set | files | source | terms | citation |", "|---|---|---|---|---|"]
    for spec in registry().values():
        files = ", ".join(f"`{f}`" for f in spec.files)
        src = spec.archive["url"] if spec.archive else spec.homepage
        rows.append(f"| **{spec.name}**: {spec.title} | {files} | {src} | {spec.terms} | {spec.citation} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
