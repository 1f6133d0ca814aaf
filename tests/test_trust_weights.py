"""Reading a weight file never runs code, and a crafted file never reads outside its bytes.

Every hostile file here is built by the test itself: a ``__reduce__`` payload in each pickle slot of
each layout (it would create a marker file if it ran), views larger than their storage, absurd
counts, truncations and missing members. Each must raise DataError naming the file; the marker
must never appear.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest

from recsys_tf.errors import DataError
from recsys_tf.features.torch_weights import read_state_dict
from test_pretrained import _fake_torch, _write_pth

MAGIC = 0x1950A86A20F9469CFC6C


class Payload:
    """Pickles to ``open(marker, 'w')``: if the reader ever ran it, the marker file would exist."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _legacy(path, slots):
    with open(path, "wb") as f:
        for obj in slots:
            f.write(obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2))


@pytest.mark.parametrize("slot", ["magic", "protocol", "sys_info", "state", "keys"])
def test_legacy_layout_runs_no_code_from_any_slot(tmp_path, slot):
    marker = tmp_path / "owned"
    slots = {"magic": MAGIC, "protocol": 1001, "sys_info": {"little_endian": True},
             "state": collections.OrderedDict(), "keys": []}  # fmt: skip
    slots[slot] = Payload(marker) if slot != "sys_info" else {"little_endian": True, "x": Payload(marker)}
    _legacy(tmp_path / "evil.pth", slots.values())
    with pytest.raises(DataError, match="evil.pth"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists(), "the weight file ran code"


def test_truncated_zip_is_read_by_the_restricted_reader(tmp_path):
    marker = tmp_path / "owned"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Payload(marker), protocol=2))
    (tmp_path / "cut.pth").write_bytes(pickle.dumps(Payload(marker), protocol=2) + buf.getvalue()[:40])
    with pytest.raises(DataError, match="cut.pth"):
        read_state_dict(tmp_path / "cut.pth")
    assert not marker.exists()


def test_zip_layout_runs_no_code(tmp_path):
    marker = tmp_path / "owned"
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Payload(marker)}, protocol=2))
    with pytest.raises(DataError, match="refusing"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def _zip_with_view(tmp_path, monkeypatch, size, stride, offset, n_values=6):
    """A zip checkpoint whose one tensor claims (size, stride, offset) over a storage of ``n_values``."""
    _write_pth(tmp_path / "ok.pth", {"w": np.arange(n_values, dtype=np.float32)}, monkeypatch, "zip")
    with zipfile.ZipFile(tmp_path / "ok.pth") as z:
        data = z.read("archive/data/0")
    storage_cls, rebuild_fn = _fake_torch(monkeypatch)

    class Ref:
        pass

    class T:
        def __reduce__(self):
            return rebuild_fn, (Ref(), offset, size, stride, False, collections.OrderedDict())

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", storage_cls, "0", "cpu", n_values) if isinstance(obj, Ref) else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(collections.OrderedDict(w=T()))
    evil = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "view.pth", "w") as z:
        z.writestr("archive/data.pkl", evil)
        z.writestr("archive/data/0", data)
    monkeypatch.delitem(sys.modules, "torch")
    return tmp_path / "view.pth"


@pytest.mark.parametrize("size, stride, offset", [
    ((7,), (1,), 0),            # longer than its storage
    ((3,), (1,), 4),            # offset pushes it past the end
    ((2, 3), (4, 1), 0),        # a stride that jumps over the end
    ((3,), (-1,), 5),           # negative stride
    ((3,), (1,), -1),           # negative offset
    ((2**62, 2**62), (1, 1), 0),  # sizes whose product overflows int64
    ((10**9,), (0,), 0),        # an absurd expanded view of one value
])  # fmt: skip
def test_views_outside_their_storage_are_refused(tmp_path, monkeypatch, size, stride, offset):
    path = _zip_with_view(tmp_path, monkeypatch, size, stride, offset)
    with pytest.raises(DataError, match="view.pth"):
        read_state_dict(path)


def test_a_view_inside_its_storage_still_reads(tmp_path, monkeypatch):
    path = _zip_with_view(tmp_path, monkeypatch, (2, 2), (1, 2), 1)  # a transposed window
    assert np.array_equal(read_state_dict(path)["w"], np.array([[1, 3], [2, 4]], np.float32))


def test_legacy_truncations_and_absurd_counts_name_the_file(tmp_path, monkeypatch):
    _write_pth(tmp_path / "ok.pth", {"w": np.arange(4, dtype=np.float32)}, monkeypatch, "legacy")
    raw = (tmp_path / "ok.pth").read_bytes()
    header = len(raw) - 4 * 4 - 8
    cases = {
        "cut_payload.pth": raw[:-3],
        "cut_count.pth": raw[: header + 3],
        "cut_pickle.pth": raw[: header // 2],
        "huge_count.pth": raw[:header] + np.int64(2**60).tobytes() + raw[header + 8 :],
        "negative_count.pth": raw[:header] + np.int64(-5).tobytes() + raw[header + 8 :],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=name):
            read_state_dict(tmp_path / name)


def test_zip_missing_member_and_odd_bytes_name_the_file(tmp_path, monkeypatch):
    _write_pth(tmp_path / "ok.pth", {"w": np.arange(4, dtype=np.float32)}, monkeypatch, "zip")
    with zipfile.ZipFile(tmp_path / "ok.pth") as z:
        pkl = z.read("archive/data.pkl")
    with zipfile.ZipFile(tmp_path / "nomember.pth", "w") as z:
        z.writestr("archive/data.pkl", pkl)
    with zipfile.ZipFile(tmp_path / "odd.pth", "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", b"\0" * 15)
    for name in ("nomember.pth", "odd.pth"):
        with pytest.raises(DataError, match=name):
            read_state_dict(tmp_path / name)
    assert not os.path.exists(tmp_path / "owned")
