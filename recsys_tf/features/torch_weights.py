"""Read PyTorch weight files into NumPy arrays without PyTorch, and without running any code.

A ``.pth`` state dict is pickled: tensors are rebuilt by ``torch._utils._rebuild_tensor_v2`` from
"storages" whose bytes are stored beside the pickle. Two layouts exist: the legacy one (PyTorch
< 1.6: five pickles in a row -- magic number, protocol version, system info, the state dict, the
storage keys -- then each storage as ``int64 count`` + raw bytes) and the zip one
(``<name>/data.pkl`` plus ``<name>/data/<key>``).

A weight file is untrusted input. Every pickle in every layout is read by one restricted
unpickler whose allow-list holds exactly what a plain state dict needs (the tensor rebuild
function, the storage types, ``OrderedDict``); the header pickles may not name any class at all.
Every tensor view is checked against its storage before an array is built, so a crafted size,
stride or offset cannot read outside the file's bytes. Anything else is a :class:`DataError`
naming the file.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from recsys_tf.errors import DataError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}  # fmt: skip
_STATE_CLASSES = {("collections", "OrderedDict"): collections.OrderedDict,
                  **{("torch", name): dtype for name, dtype in _DTYPES.items()}}  # fmt: skip
_REBUILD = {("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2")}
_MAX_DIMS = 32


class _Storage:
    def __init__(self, dtype: type, key: str) -> None:
        self.dtype, self.key, self.data = np.dtype(dtype), key, np.empty(0, dtype)


class _Tensor:
    """What ``_rebuild_tensor_v2(storage, offset, size, stride, ...)`` would build, kept as plain values."""

    def __init__(self, storage: Any = None, offset: Any = 0, size: Any = (), stride: Any = (), *_: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _Refused(Exception):
    """A pickle asked for something a plain state dict never contains."""


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allowed globals; ``storage=None`` allows none at all."""

    def __init__(self, file: BinaryIO, storage: Any = None) -> None:
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if self._storage is not None:
            if (module, name) in _REBUILD:
                return _Tensor
            if (module, name) in _STATE_CLASSES:
                return _STATE_CLASSES[(module, name)]
        raise _Refused(f"it names {module}.{name}, which is not part of a plain state dict")

    def persistent_load(self, pid: Any) -> _Storage:
        if self._storage is None:
            raise _Refused("a storage reference appears outside the state dict")
        return self._storage(pid)


def _plain(f: BinaryIO) -> Any:
    """One header pickle (numbers, strings, lists, dicts): no class may be named."""
    return _RestrictedUnpickler(f).load()


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _Refused(f"{what} is a {type(value).__name__}, not an integer")
    return int(value)


def _array(name: str, t: _Tensor) -> np.ndarray:
    """The tensor's values, after checking that its view lies inside its storage."""
    if not isinstance(t.storage, _Storage):
        raise _Refused(f"tensor {name!r} has no storage")
    if not isinstance(t.size, (tuple, list)) or not isinstance(t.stride, (tuple, list)):
        raise _Refused(f"tensor {name!r} has a malformed size or stride")
    size = [_int(s, f"a size of {name!r}") for s in t.size]
    stride = [_int(s, f"a stride of {name!r}") for s in t.stride]
    offset = _int(t.offset, f"the offset of {name!r}")
    if len(size) != len(stride) or len(size) > _MAX_DIMS:
        raise _Refused(f"tensor {name!r} has {len(size)} sizes but {len(stride)} strides")
    if offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise _Refused(f"tensor {name!r} has a negative size, stride or offset ({size}, {stride}, {offset})")
    data, item = t.storage.data, t.storage.dtype.itemsize
    numel = int(np.prod(size, dtype=object)) if size else 1
    if numel == 0:
        return np.zeros(size, t.storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))  # Python ints: no overflow
    if last >= len(data):
        raise _Refused(f"tensor {name!r} reaches element {last:,} of a storage of {len(data):,}")
    if numel > max(len(data), 1) * 64:  # stride-0 (expanded) views are legal, but not absurdly so
        raise _Refused(f"tensor {name!r} claims {numel:,} elements from a storage of {len(data):,}")
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view)  # a copy: the storage may be shared by several tensors


def _storage_reader(storages: dict[str, _Storage]):
    def storage(pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or len(pid) < 3 or pid[0] != "storage":
            raise _Refused(f"unknown persistent reference {type(pid).__name__}")
        dtype, key = pid[1], pid[2]
        if not any(dtype is d for d in _DTYPES.values()):
            raise _Refused(f"storage type {dtype!r} is not one of {sorted(_DTYPES)}")
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise _Refused("a storage key is not a string")
        if len(pid) >= 6 and pid[5] is not None:
            raise _Refused("it uses storage views (PyTorch < 0.4), which this reader does not support")
        found = storages.setdefault(str(key), _Storage(dtype, str(key)))
        if found.dtype != np.dtype(dtype):
            raise _Refused(f"storage {key} is used with two types")
        return found

    return storage


def _read_zip(path: Path, storage, storages: dict[str, _Storage]) -> Any:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl")), None)
        if pkl is None:
            raise DataError(f"{path} is a zip without data.pkl: not a PyTorch checkpoint.")
        root = pkl[: -len("data.pkl")]
        if root + "byteorder" in names and z.read(root + "byteorder").strip() not in (b"little", b""):
            raise _Refused("its tensors are big-endian")
        state = _RestrictedUnpickler(io.BytesIO(z.read(pkl)), storage).load()
        for s in storages.values():
            member = f"{root}data/{s.key}"
            if member not in names:
                raise _Refused(f"member {member} is missing")
            info = z.getinfo(member)
            if info.file_size % s.dtype.itemsize:
                raise _Refused(f"member {member} holds {info.file_size} bytes, not whole {s.dtype} values")
            s.data = np.frombuffer(z.read(member), s.dtype)
    return state


def _read_legacy(path: Path, storage, storages: dict[str, _Storage]) -> Any:
    size = path.stat().st_size
    with open(path, "rb") as f:
        try:
            magic = _plain(f)
        except Exception as e:
            raise DataError(f"{path} is not a PyTorch checkpoint ({e}); download it again.") from e
        if magic != _LEGACY_MAGIC:
            raise DataError(f"{path} is not a PyTorch checkpoint (bad magic number); download it again.")
        _plain(f)  # protocol version
        info = _plain(f)
        if isinstance(info, dict) and info.get("little_endian", True) is not True:
            raise _Refused("its tensors are big-endian")
        state = _RestrictedUnpickler(f, storage).load()
        keys = _plain(f)
        if not isinstance(keys, list):
            raise _Refused("the storage key list is missing")
        for key in keys:
            s = storages.get(str(key))
            if s is None:
                raise _Refused(f"storage {key} is listed but never used")
            head = f.read(8)
            if len(head) != 8:
                raise _Refused(f"the file ends before storage {key}: truncated")
            count = int(np.frombuffer(head, "<i8")[0])
            left = size - f.tell()
            if count < 0 or count * s.dtype.itemsize > left:
                raise _Refused(f"storage {key} claims {count:,} values but {left:,} bytes are left: truncated or corrupt")
            s.data = np.frombuffer(f.read(count * s.dtype.itemsize), s.dtype)
        missing = set(storages) - {str(k) for k in keys}
        if missing:
            raise _Refused(f"storage(s) {sorted(missing)[:3]} have no data")
    return state


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: array}`` of a PyTorch ``.pth`` state dict (legacy or zip layout), PyTorch not needed.

    Raises :class:`DataError` naming the file for anything but a plain state dict of tensors: a
    pickle that names any other class (no code is ever run), a truncated or damaged file, a
    missing storage, or a tensor view that does not fit inside its storage.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no weight file at {path}.")
    storages: dict[str, _Storage] = {}
    storage = _storage_reader(storages)
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path, storage, storages)
        else:
            state = _read_legacy(path, storage, storages)
        if not isinstance(state, dict):
            raise _Refused(f"it holds a {type(state).__name__}, not a state dict of tensors")
        return {str(k): _array(str(k), v) for k, v in state.items() if isinstance(v, _Tensor)}
    except DataError:
        raise
    except _Refused as e:
        raise DataError(f"{path} is not a plain PyTorch state dict: {e}; refusing to load it.") from e
    except (Exception, RecursionError) as e:  # truncated pickles, bad zips, absurd counts, ...
        raise DataError(f"{path} is damaged or not a PyTorch checkpoint ({type(e).__name__}: {e}); "
                        f"download it again.") from e  # fmt: skip
