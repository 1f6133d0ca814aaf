"""Training data that does not fit in memory: Parquet shards of coded pairs, streamed in batches.

A shard folder holds ``part-*.parquet`` files with ``user_idx`` and ``item_idx`` (int32), and the id
tables ``users.parquet`` (``user_id``, ``user_idx``) and ``items.parquet`` (``item_id``, ``item_idx``),
codes in sorted id order as :class:`~recsys_tf.data.encoding.IdEncoder` gives them. The Spark job
:func:`recsys_tf.spark.pipeline.write_shards` writes one from a cluster; :func:`write_shards` writes
one from pandas. :class:`TrainingShards` reads them back a record batch at a time: memory holds one
shuffle buffer and the seen-pair keys (8 bytes per training pair, for rejecting negatives), never the
whole log. ``MatrixFactorization(...).fit_shards(TrainingShards(path))`` trains from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_tf.data.encoding import IdEncoder, InteractionEncoder
from recsys_tf.data.schema import ITEM, USER
from recsys_tf.errors import DataError
from recsys_tf.utils import atomic_folder

PAIR_COLUMNS = ("user_idx", "item_idx")


def write_shards(codes: pd.DataFrame, folder: str | Path, encoder: InteractionEncoder, rows_per_shard: int = 1_000_000) -> Path:
    """Write coded pairs (``user_idx``, ``item_idx``) and the encoder's id tables as a shard folder,
    atomically (a temporary sibling renamed into place)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)

    def fill(tmp: Path) -> None:
        for n, start in enumerate(range(0, max(len(codes), 1), rows_per_shard)):
            part = codes.iloc[start : start + rows_per_shard]
            table = pa.table({c: part[c].to_numpy(np.int32) for c in PAIR_COLUMNS})
            pq.write_table(table, tmp / f"part-{n:05d}.parquet", row_group_size=65_536)
        write_id_tables(tmp, encoder.users.classes_, encoder.items.classes_)

    return atomic_folder(folder, fill)


def write_id_tables(folder: Path, users: np.ndarray, items: np.ndarray) -> None:
    """``users.parquet`` and ``items.parquet``: each id with its code, 0..n-1 in the order given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, col, ids in (("users", USER, users), ("items", ITEM, items)):
        pq.write_table(pa.table({col: ids, col.replace("_id", "_idx"): np.arange(len(ids), dtype=np.int32)}), folder / f"{name}.parquet")


class TrainingShards:
    """A shard folder, read lazily. ``batches`` streams shuffled pairs; ``encoder`` and ``seen_keys``
    give what a recommender needs besides the pairs."""

    def __init__(self, folder: str | Path) -> None:
        import pyarrow.parquet as pq

        self.folder = Path(folder)
        self.files = sorted(self.folder.glob("part-*.parquet"))
        missing = [n for n in ("users.parquet", "items.parquet") if not (self.folder / n).exists()]
        if not self.files or missing:
            raise DataError(f"{self.folder} is not a shard folder: it needs part-*.parquet files and users.parquet, "
                            f"items.parquet (missing: {missing or 'part-*.parquet'}); write one with write_shards().")  # fmt: skip
        for f in self.files:
            names = pq.ParquetFile(f).schema_arrow.names
            if not set(PAIR_COLUMNS) <= set(names):
                raise DataError(f"{f}: a shard needs columns {list(PAIR_COLUMNS)}; it has {names}.")
        self.n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
        self.n_users, self.n_items = (pq.ParquetFile(self.folder / f"{n}.parquet").metadata.num_rows for n in ("users", "items"))

    def encoder(self) -> InteractionEncoder:
        """The id encoder the codes were made with (read from the id tables, checked to be 0..n-1 in id order)."""
        import pyarrow.parquet as pq

        enc = InteractionEncoder()
        for name, col, target in (("users", USER, "users"), ("items", ITEM, "items")):
            table = pq.read_table(self.folder / f"{name}.parquet").to_pandas().sort_values(col.replace("_id", "_idx"))
            ids = table[col].to_numpy()
            if not (np.array_equal(table[col.replace("_id", "_idx")].to_numpy(), np.arange(len(ids))) and (ids[1:] > ids[:-1]).all()):
                raise DataError(f"{self.folder / (name + '.parquet')}: codes must be 0..n-1 in increasing id order.")
            setattr(enc, target, IdEncoder(col).fit(ids))
        return enc

    def seen_keys(self, n_items: int) -> np.ndarray:
        """Sorted unique ``user * n_items + item`` keys of every pair, read shard by shard."""
        parts = [np.unique(u.astype(np.int64) * n_items + i) for f in self.files for u, i in self._pairs_of(f)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def batches(self, batch_rows: int, rng: np.random.Generator, buffer_rows: int = 1_000_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pairs in batches of ``batch_rows``: shards in a random order, rows shuffled within a buffer of
        ``buffer_rows`` (the memory bound; a larger buffer mixes shards better)."""
        order = rng.permutation(len(self.files))
        buf_u, buf_i, size = [], [], 0
        for k in order:
            for u, i in self._pairs_of(self.files[k]):
                buf_u.append(u)
                buf_i.append(i)
                size += len(u)
                if size >= buffer_rows:
                    yield from self._drain(buf_u, buf_i, batch_rows, rng, keep_tail=True)
                    size = sum(len(x) for x in buf_u)
        yield from self._drain(buf_u, buf_i, batch_rows, rng, keep_tail=False)

    def _pairs_of(self, path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=262_144, columns=list(PAIR_COLUMNS)):
            u, i = (batch.column(k).to_numpy(zero_copy_only=False) for k in (0, 1))
            if len(u) and (u.min() < 0 or u.max() >= self.n_users or i.min() < 0 or i.max() >= self.n_items):
                raise DataError(f"{path}: codes outside 0..{self.n_users - 1} (users) or 0..{self.n_items - 1} (items) of the "
                                f"id tables; the shard does not belong to this folder's ids.")  # fmt: skip
            yield u.astype(np.int32), i.astype(np.int32)

    @staticmethod
    def _drain(buf_u: list, buf_i: list, batch_rows: int, rng: np.random.Generator, keep_tail: bool):
        u, i = np.concatenate(buf_u), np.concatenate(buf_i)
        perm = rng.permutation(len(u))
        u, i = u[perm], i[perm]
        full = len(u) - len(u) % batch_rows if keep_tail else len(u)
        buf_u.clear()
        buf_i.clear()
        if keep_tail and full < len(u):
            buf_u.append(u[full:])
            buf_i.append(i[full:])
        for s in range(0, full, batch_rows):
            yield u[s : s + batch_rows], i[s : s + batch_rows]
