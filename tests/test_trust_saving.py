"""Saving is atomic and loading checks what it loads (manifest with sha256, class, damage, concurrency)."""

from __future__ import annotations

import os
import stat
import threading

import numpy as np
import pandas as pd
import pytest

from recsys_tf.errors import DataError
from recsys_tf.models import EASE, MatrixFactorization, Popularity, Recommender


def _log(n_items: int) -> pd.DataFrame:
    half = n_items // 2  # users 2 and 3 leave half the catalog unseen
    return pd.DataFrame({"user_id": np.r_[np.ones(n_items), np.full(half, 2), np.full(half, 3)].astype(int),
                         "item_id": np.r_[np.arange(n_items), np.arange(half), np.arange(half) + half]})  # fmt: skip


def test_a_failing_save_keeps_the_previous_model_and_leaves_no_debris(tmp_path, monkeypatch):
    first = Popularity().fit(_log(10))
    first.save(tmp_path / "m")
    second = Popularity().fit(_log(20))

    def disk_full(folder):
        (folder / "counts.npy").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(second, "_save_weights", disk_full)
    with pytest.raises(OSError, match="No space left"):
        second.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    assert back.n_items == 10 and np.array_equal(back.counts_, first.counts_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folders left


def test_save_refuses_to_overwrite_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("years of work")
    with pytest.raises(DataError, match="is not a saved recsys_tf model"):
        Popularity().fit(_log(5)).save(tmp_path / "notes")
    assert (tmp_path / "notes" / "thesis.txt").read_text() == "years of work"


@pytest.mark.parametrize("damage", ["flip", "empty", "delete"])
@pytest.mark.parametrize("victim", ["seen.npy", "counts.npy", "encoder.json"])
def test_damaged_files_are_detected_at_load(tmp_path, damage, victim):
    Popularity().fit(_log(6)).save(tmp_path / "m")
    f = tmp_path / "m" / victim
    if damage == "flip":
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01
        f.write_bytes(bytes(data))
    elif damage == "empty":
        f.write_bytes(b"")
    else:
        f.unlink()
    with pytest.raises(DataError, match=f"damaged saved model.*{victim}"):
        Popularity.load(tmp_path / "m")


def test_a_truncated_keras_file_is_a_damaged_model_not_file_not_found(tmp_path):
    MatrixFactorization(factors=4, epochs=1, verbose=False).fit(_log(6), pd.DataFrame({"item_id": range(8)})).save(tmp_path / "mf")
    f = tmp_path / "mf" / "model.keras"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(DataError, match="damaged saved model.*model.keras"):
        Recommender.load(tmp_path / "mf")


def test_loading_with_the_wrong_class_raises(tmp_path):
    Popularity().fit(_log(6)).save(tmp_path / "pop")
    with pytest.raises(DataError, match="holds a Popularity, not a EASE"):
        EASE.load(tmp_path / "pop")
    assert type(Recommender.load(tmp_path / "pop")) is Popularity


def test_a_class_name_that_is_not_a_model_is_refused(tmp_path):
    import hashlib
    import json

    Popularity().fit(_log(6)).save(tmp_path / "m")
    meta = tmp_path / "m" / "model.json"
    meta.write_text(json.dumps({"class": "Path", "params": {}}))
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["files"]["model.json"] = hashlib.sha256(meta.read_bytes()).hexdigest()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a recsys_tf model"):
        Recommender.load(tmp_path / "m")


def test_concurrent_readers_see_the_old_or_the_new_model_never_a_mix(tmp_path):
    small, big = Popularity().fit(_log(10)), Popularity().fit(_log(40))
    small.save(tmp_path / "m")
    errors, seen = [], set()
    stop = threading.Event()

    def writer():
        for j in range(30):
            (big if j % 2 else small).save(tmp_path / "m")
        stop.set()

    def reader():
        while not stop.is_set():
            try:
                m = Recommender.load(tmp_path / "m")
            except Exception as exc:  # noqa: BLE001 - any failure is a test failure
                errors.append(repr(exc))
                return
            if len(m.counts_) != m.n_items or m.seen_.max() >= m.n_users * m.n_items:
                errors.append(f"mixed model: {len(m.counts_)} counts for {m.n_items} items")
            seen.add(m.n_items)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert seen <= {10, 40} and seen


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_writes_give_the_usual_modes_and_keep_a_replaced_files_mode(tmp_path):
    """Temporary files are born 0600 (mkstemp); what lands in place must look like any file the user writes."""
    from recsys_tf.utils import atomic_folder, atomic_write

    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)

    old = os.umask(0o022)
    try:
        assert mode(atomic_write(tmp_path / "new.json", "{}")) == 0o644
        assert mode(atomic_folder(tmp_path / "new_dir", lambda d: (d / "f").write_text("x"))) == 0o755
        (tmp_path / "shared.json").write_text("{}")
        os.chmod(tmp_path / "shared.json", 0o664)  # a user's group-writable file stays so after a rewrite
        assert mode(atomic_write(tmp_path / "shared.json", "[]")) == 0o664
        os.chmod(tmp_path / "new_dir", 0o750)
        assert mode(atomic_folder(tmp_path / "new_dir", lambda d: None)) == 0o750
        Popularity().fit(_log(10)).save(tmp_path / "m")
        assert {mode(p) for p in (tmp_path / "m").iterdir()} == {0o644}
        assert mode(tmp_path / "m") == 0o755
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").read_text() == "[]"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
