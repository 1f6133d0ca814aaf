"""Read PyTorch weight files into NumPy arrays without PyTorch.

A ``.pth`` state dict is pickled: tensors are rebuilt by ``torch._utils._rebuild_tensor_v2`` from
"storages" whose bytes are stored beside the pickle. Two layouts exist: the legacy one (PyTorch
< 1.6: a run of pickles, then each storage as ``int64 count`` + raw bytes) and the zip one
(``<name>/data.pkl`` plus ``<name>/data/<key>``). Only the classes a state dict needs are
allowed to load, so a file cannot run code while being read.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from recsys_tf.errors import DataError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}  # fmt: skip


class _Storage:
    def __init__(self, dtype: type, key: str) -> None:
        self.dtype, self.key, self.data = np.dtype(dtype), key, np.empty(0, dtype)


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        item = self.storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(self.storage.data[self.offset :], shape=self.size,
                                               strides=[s * item for s in self.stride])  # fmt: skip
        return np.array(view)  # a copy: the storage may be shared by several tensors


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storage: Callable[[tuple], _Storage]) -> None:
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a plain state dict; refusing to load it.")

    def persistent_load(self, pid: tuple) -> _Storage:
        return self._storage(pid)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: array}`` of a PyTorch ``.pth`` state dict (legacy or zip layout), PyTorch not needed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no weight file at {path}.")
    storages: dict[str, _Storage] = {}

    def storage(pid: tuple) -> _Storage:
        _, dtype, key = pid[:3]
        return storages.setdefault(str(key), _Storage(dtype, str(key)))

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            if pkl is None:
                raise DataError(f"{path} is a zip without data.pkl: not a PyTorch checkpoint.")
            state = _Unpickler(z.open(pkl), storage).load()
            root = pkl[: -len("data.pkl")]
            for s in storages.values():
                s.data = np.frombuffer(z.read(f"{root}data/{s.key}"), s.dtype)
    else:
        with open(path, "rb") as f:
            try:
                magic = pickle.load(f)
            except Exception as e:
                raise DataError(f"{path} is not a PyTorch checkpoint ({e}); download it again.") from e
            if magic != _LEGACY_MAGIC:
                raise DataError(f"{path} is not a PyTorch checkpoint (bad magic number); download it again.")
            pickle.load(f), pickle.load(f)  # protocol version, sys info
            state = _Unpickler(f, storage).load()
            for key in pickle.load(f):
                s = storages[str(key)]
                count = int(np.frombuffer(f.read(8), "<i8")[0])
                raw = f.read(count * s.dtype.itemsize)
                if len(raw) != count * s.dtype.itemsize:
                    raise DataError(f"{path} is truncated (storage {key}); download it again.")
                s.data = np.frombuffer(raw, s.dtype)
    if not isinstance(state, dict):
        raise DataError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
    return {k: v.numpy() for k, v in state.items() if isinstance(v, _Tensor)}
