"""Start the service in a subprocess on a free loopback port, talk to it, stop (or kill) it.

The parent binds the listening socket (port 0: the kernel picks a free one) and hands it to the
child, so there is no race between choosing a port and binding it. Used by the tests, notebook 14
and ``bench/bench_serve.py``.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from recsys_tf.serving.eventlog import START


class ServiceProcess:
    """``recsys-tf serve`` in a subprocess on ``127.0.0.1``; a context manager that stops it on exit.

    ``get`` / ``post`` return ``(status, json)`` and never raise on a 4xx/5xx, so callers can check
    error answers. ``stop()`` asks it to shut down (SIGTERM); ``kill()`` is ``kill -9``.
    """

    def __init__(self, model: str | Path, events: str | Path, since: str = START, retrieval: str = "hnsw",
                 host: str = "127.0.0.1", port: int = 0, timeout: float = 120.0, log_file: str | Path | None = None,
                 extra_args: list[str] | None = None) -> None:  # fmt: skip
        self.model, self.events, self.since, self.retrieval = str(model), str(events), since, retrieval
        self.host, self.port, self.timeout = host, port, timeout
        self.log_file = Path(log_file) if log_file else None
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServiceProcess:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "recsys_tf.cli", "serve", "--model", self.model, "--events", self.events,
               "--since", self.since, "--retrieval", self.retrieval, "--fd", str(sock.fileno()), *self.extra_args]  # fmt: skip
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=(sock.fileno(),), stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
            # a notebook kernel that is shut down or restarted exits without running the cell that
            # stops the service: stop it then, or it keeps its port and event log past the kernel
            atexit.register(_terminate, self.proc, 10.0)
        finally:
            sock.close()  # the child holds its own copy
            if out is not subprocess.DEVNULL:
                out.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_file.read_text()[-2000:] if self.log_file and self.log_file.exists() else "(no log file)"
                raise RuntimeError(f"the service exited with code {self.proc.returncode} before it was ready:\n{tail}")
            try:
                if self.get("/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"the service did not answer /health within {self.timeout:.0f} s.")

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None, timeout: float = 30.0) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.decode(errors="replace")

    def get(self, path: str, timeout: float = 30.0, **params: Any) -> tuple[int, Any]:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        return self.request("GET", path + query, timeout=timeout)

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        return self.request("POST", path, body, raw)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc:
            _terminate(self.proc, timeout)

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs (the crash the event log must survive)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServiceProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (the service shuts down cleanly), then ``kill -9`` if it has not exited within ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch(model: str | Path, events: str | Path, **kwargs: Any) -> ServiceProcess:
    """Start the service for ``model`` with event log ``events``; returns when ``/health`` answers."""
    return ServiceProcess(model, events, **kwargs).start()
