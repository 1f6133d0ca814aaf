import os
import zipfile
from pathlib import Path

import pytest

from recsys_tf.data import download as dl
from recsys_tf.data.registry import DatasetSpec, FileSpec, get_spec, markdown_table, registry
from recsys_tf.errors import ChecksumError, DataNotFoundError

from conftest import ROOT, SHARED

CONTENT = b"1\t2\t3\t4\n5\t6\t7\t8\n"


def _spec(tmp_path: Path, content: bytes = CONTENT, archive: bool = False) -> DatasetSpec:
    src = tmp_path / "publisher"
    src.mkdir(exist_ok=True)
    (src / "data.txt").write_bytes(content)
    sha = dl.sha256sum(src / "data.txt")
    files = {"data.txt": FileSpec("data.txt", sha256=sha, size=len(content), lines=2)}
    if archive:
        with zipfile.ZipFile(src / "pack.zip", "w") as zf:
            zf.write(src / "data.txt", "pack/data.txt")
        return DatasetSpec("toy", "Toy", "https://example.org", files, "terms", "cite",
                           archive={"url": (src / "pack.zip").as_uri(), "prefix": "pack/"})  # fmt: skip
    return DatasetSpec("toy", "Toy", "https://example.org", files, "terms", "cite", urls={"data.txt": (src / "data.txt").as_uri()})


def _no_partials(folder: Path) -> None:
    leftovers = [p.name for p in folder.rglob("*") if p.suffix in (".part", ".download")]
    assert leftovers == []


def test_sha256sum_known_value(tmp_path):
    (tmp_path / "x").write_bytes(b"abc")
    assert dl.sha256sum(tmp_path / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_local_copy_is_verified_and_used(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    local = tmp_path / "local" / "toy"
    local.mkdir(parents=True)
    (local / "data.txt").write_bytes(CONTENT)
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path / "local"))
    assert dl.fetch(spec, "data.txt", download=False) == local / "data.txt"


def test_corrupt_local_copy_raises_with_the_fix(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    local = tmp_path / "local" / "toy"
    local.mkdir(parents=True)
    (local / "data.txt").write_bytes(CONTENT.replace(b"7", b"9"))  # same size, other bytes
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path / "local"))
    with pytest.raises(ChecksumError, match=r"sha256 .* expected .*Delete .* and fetch it again"):
        dl.fetch(spec, "data.txt", download=False)


def test_truncated_file_is_caught_by_size(tmp_path):
    spec = _spec(tmp_path)
    (tmp_path / "short").write_bytes(CONTENT[:-3])
    with pytest.raises(ChecksumError, match="bytes, expected"):
        dl.verify(tmp_path / "short", spec.files["data.txt"])


def test_line_count_is_checked_when_no_checksum_is_known(tmp_path):
    (tmp_path / "f").write_bytes(b"a\nb\nc\n")
    dl.verify(tmp_path / "f", FileSpec("f", lines=3))
    with pytest.raises(ChecksumError, match="3 lines, expected 4"):
        dl.verify(tmp_path / "f", FileSpec("f", lines=4))


def test_missing_offline_names_dataset_file_places_and_url(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError) as err:
        dl.fetch(spec, "data.txt", download=False)
    msg = str(err.value)
    for part in ("'toy'", "'data.txt'", str(tmp_path / "nowhere" / "toy" / "data.txt"), "cache", spec.urls["data.txt"], "RECSYS_TF_OFFLINE=1"):
        assert part in msg


def test_download_is_verified_and_atomic(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    monkeypatch.delenv("RECSYS_TF_DATA", raising=False)
    path = dl.fetch(spec, "data.txt", download=True)
    assert path.read_bytes() == CONTENT and path.parent == dl.cache_dir() / "toy"
    _no_partials(dl.cache_dir())
    assert dl.fetch(spec, "data.txt", download=False) == path  # now served from the cache


def test_corrupt_download_leaves_no_file(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    (tmp_path / "publisher" / "data.txt").write_bytes(CONTENT.replace(b"7", b"9"))  # publisher serves other bytes
    monkeypatch.delenv("RECSYS_TF_DATA", raising=False)
    with pytest.raises(ChecksumError):
        dl.fetch(spec, "data.txt", download=True)
    assert not (dl.cache_dir() / "toy" / "data.txt").exists()
    _no_partials(dl.cache_dir())


def test_failed_download_leaves_no_file_and_says_why(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    (tmp_path / "publisher" / "data.txt").unlink()
    monkeypatch.delenv("RECSYS_TF_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="the download failed"):
        dl.fetch(spec, "data.txt", download=True)
    assert not any(p.is_file() for p in dl.cache_dir().rglob("*"))


def test_archive_members_are_extracted_and_verified(tmp_path, monkeypatch):
    spec = _spec(tmp_path, archive=True)
    monkeypatch.delenv("RECSYS_TF_DATA", raising=False)
    path = dl.fetch(spec, "data.txt", download=True)
    assert path.read_bytes() == CONTENT
    _no_partials(dl.cache_dir())


def test_unknown_file_and_dataset_are_named():
    with pytest.raises(KeyError, match="u.data"):
        dl.fetch("movielens-100k", "nope.txt")
    with pytest.raises(KeyError, match="Known data sets"):
        get_spec("movielens-5m")


def test_registry_is_complete_and_matches_shared_sources():
    reg = registry()
    assert {"movielens-100k", "movielens-1m", "movielens-latest-small", "ncf-ml-1m", "sasrec-amazon-games",
            "s3rec-amazon-beauty", "s3rec-other"} <= set(reg)  # fmt: skip
    for spec in reg.values():
        assert spec.terms and spec.citation and spec.homepage
        assert not spec.redistributable or spec.name.startswith("movielens-latest")
        for f in spec.files.values():
            assert f.sha256 or f.size or f.lines, f"{spec.name}/{f.name} has nothing to verify it by"
            assert spec.url_for(f.name).startswith("https://")
    assert (ROOT / "datasets" / "registry.json").resolve() == (ROOT / "recsys_tf" / "data" / "registry.json").resolve()
    assert "movielens-100k" in markdown_table()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/datasets not present")
def test_every_shared_file_passes_its_registry_check():
    """Every real data file the kit knows and the shared copy has is verified (sha256 where known)."""
    checked = 0
    for spec in registry().values():
        for name, fspec in spec.files.items():
            path = SHARED / spec.name / name
            if path.exists():
                dl.verify(path, fspec)
                checked += 1
    assert checked >= 30


def test_no_real_data_is_committed():
    tracked = os.popen(f"git -C {ROOT} ls-files").read().split()
    forbidden = {"u.data", "ratings.dat", "ratings.csv", "ml-1m.test.negative", "Beauty.txt", "Video.txt"}
    assert not forbidden & {Path(t).name for t in tracked}


def test_datasets_readme_shows_the_current_registry():
    assert markdown_table() in (ROOT / "datasets" / "README.md").read_text()
