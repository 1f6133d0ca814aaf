"""A bounded load test over HTTP/1.1 keep-alive connections (asyncio, no dependency).

``clients`` connections send requests back to back (a closed loop: each waits for its answer) until
``n_requests`` are answered or ``max_seconds`` pass, whichever comes first -- the run always stops
by itself. Only loopback addresses are accepted: this is a test of the kit's own service, not a
tool to load someone else's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import numpy as np

Request = tuple[str, str, Any]  # method, path with query, JSON body or None


async def _one_client(host: str, port: int, make: Callable[[int], Request], counter: list[int], limit: int,
                      warmup: int, ready: list, clock: dict, lat: list[float], statuses: list[int]) -> None:  # fmt: skip
    """One keep-alive connection: ``warmup`` untimed requests, wait for every client, then the timed loop."""
    reader, writer = await asyncio.open_connection(host, port)

    async def send(n: int) -> int:
        method, path, body = make(n)
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        writer.write(head.encode() + data)
        status, length = await _read_head(reader)
        await reader.readexactly(length)
        return status

    try:
        for n in range(warmup):
            await send(limit + n)  # not counted: the first requests of a connection pay for its set-up
        ready[0] -= 1  # asyncio.Barrier is Python >= 3.11 only
        if ready[0] == 0:
            ready[1].set()
        await ready[1].wait()
        clock.setdefault("start", time.perf_counter())
        while time.perf_counter() < clock["start"] + clock["seconds"] and counter[0] < limit:
            n = counter[0]
            counter[0] += 1
            t0 = time.perf_counter()
            status = await send(n)
            lat.append(time.perf_counter() - t0)
            statuses.append(status)
    finally:
        writer.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0)
    return status, length


def load_test(url: str, make: Callable[[int], Request], clients: int = 8, n_requests: int = 2000,
              max_seconds: float = 20.0, warmup: int = 5) -> dict[str, Any]:  # fmt: skip
    """Throughput (requests/s) and latency percentiles (ms) of ``make(i)`` requests against ``url``.

    ``make(i)`` returns the ``i``-th request as ``(method, path, body)``. Every client first opens
    its connection and sends ``warmup`` requests that are not counted (``make(n_requests + j)``);
    the clock starts when all are connected. Non-2xx answers are counted in ``errors``.
    """
    parts = require_loopback(url)

    async def run() -> tuple[list[float], list[int], float]:
        lat: list[float] = []
        statuses: list[int] = []
        counter, clock = [0], {"seconds": max_seconds}
        ready = [clients, asyncio.Event()]
        await asyncio.gather(*(_one_client(parts.hostname, parts.port, make, counter, n_requests, warmup, ready, clock, lat, statuses)
                               for _ in range(clients)))  # fmt: skip
        return lat, statuses, time.perf_counter() - clock["start"]

    lat, statuses, wall = _run(run())
    ms = np.asarray(lat) * 1000
    ok = np.asarray(statuses) < 300
    return {"clients": clients, "requests": len(ms), "seconds": round(wall, 2), "requests_per_s": round(len(ms) / wall, 1),
            "p50_ms": _pct(ms, 50), "p95_ms": _pct(ms, 95), "p99_ms": _pct(ms, 99), "max_ms": _pct(ms, 100),
            "errors": int((~ok).sum())}  # fmt: skip


def require_loopback(url: str):
    """``url`` split into its parts, or a ValueError when its host is not a loopback address."""
    parts = urlsplit(url)
    try:
        loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = False  # a host name: not resolved, not trusted
    if not loopback:
        raise ValueError(f"load tests target the loopback interface only (127.0.0.1), not {parts.hostname}.")
    return parts


def _run(coro):
    """``asyncio.run`` that also works where a loop is already running (Jupyter): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _pct(ms: np.ndarray, q: float) -> float:
    return round(float(np.percentile(ms, q)), 2) if len(ms) else float("nan")
