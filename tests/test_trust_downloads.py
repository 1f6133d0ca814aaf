"""Downloads recover: deadlines, damaged archives removed from the cache, no partial files, clear fixes.

The servers here are real HTTP servers on 127.0.0.1 started by the tests, each bounded in time.
"""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recsys_tf.data import download as dl
from recsys_tf.data.registry import DatasetSpec, FileSpec
from recsys_tf.errors import ChecksumError, DataNotFoundError

CONTENT = b"1\t2\t3\t4\n5\t6\t7\t8\n"


def _zip(content: bytes = CONTENT) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pack/data.txt", content)
    return buf.getvalue()


class _Server:
    """Serves ``body`` at every path; ``mode`` trickle: one byte every 0.5 s; silent: never answers."""

    def __init__(self, body: bytes, mode: str = "normal") -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if outer.mode == "silent":
                    outer.stop.wait(10)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.mode == "trickle":
                    for b in body:
                        if outer.stop.wait(0.5):
                            return
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                else:
                    self.wfile.write(body)

        self.mode, self.stop = mode, threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/pack.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def start(body: bytes, mode: str = "normal") -> _Server:
        made.append(_Server(body, mode))
        return made[-1]

    yield start
    for s in made:
        s.close()


def _spec(url: str, archive: bool = True) -> DatasetSpec:
    files = {"data.txt": FileSpec("data.txt", sha256=dl.hashlib.sha256(CONTENT).hexdigest(), size=len(CONTENT))}
    if archive:
        return DatasetSpec("toy", "Toy", "https://example.org", files, "terms", "cite", archive={"url": url, "prefix": "pack/"})
    return DatasetSpec("toy", "Toy", "https://example.org", files, "terms", "cite", urls={"data.txt": url})


def _debris() -> list[str]:
    return [p.name for p in dl.cache_dir().rglob("*") if p.is_file()]


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.delenv("RECSYS_TF_DATA", raising=False)
    monkeypatch.setenv("RECSYS_TF_OFFLINE", "0")


def test_a_trickling_server_hits_the_total_deadline(server, monkeypatch):
    srv = server(CONTENT, "trickle")
    monkeypatch.setenv(dl.DEADLINE_ENV, "1.5")
    started = time.monotonic()
    with pytest.raises(DataNotFoundError, match="took more than 1.5 s"):
        dl.fetch(_spec(srv.url, archive=False), "data.txt")
    assert time.monotonic() - started < 6
    assert _debris() == []


def test_a_silent_server_fails_after_the_connection_timeout(server, monkeypatch):
    srv = server(CONTENT, "silent")
    monkeypatch.setenv(dl.TIMEOUT_ENV, "1")
    started = time.monotonic()
    with pytest.raises(DataNotFoundError, match="the download failed.*timed out"):
        dl.fetch(_spec(srv.url, archive=False), "data.txt")
    assert time.monotonic() - started < 6
    assert _debris() == []


def test_an_html_error_page_instead_of_the_archive_is_removed_and_the_next_fetch_recovers(server):
    bad = server(b"<html><body>503 Service Unavailable</body></html>")
    with pytest.raises(ChecksumError, match="looks like a web page.*removed from the cache; run again"):
        dl.fetch(_spec(bad.url), "data.txt")
    assert _debris() == []
    good = server(_zip())
    assert dl.fetch(_spec(good.url), "data.txt").read_bytes() == CONTENT


def test_a_truncated_archive_is_removed(server):
    srv = server(_zip()[:-30])
    with pytest.raises(ChecksumError, match="archive downloaded from .* is damaged") as err:
        dl.fetch(_spec(srv.url), "data.txt")
    assert "web page" not in str(err.value)  # a cut zip is not mistaken for an HTML error page
    assert _debris() == []


def test_a_member_with_a_crc_error_leaves_no_part_file(server):
    data = bytearray(_zip(CONTENT * 50))
    # flip one byte inside the compressed member data (after the 30-byte local header + name)
    data[30 + len("pack/data.txt") + 5] ^= 0xFF
    spec = _spec(server(bytes(data)).url)
    spec.files["data.txt"] = FileSpec("data.txt", size=len(CONTENT) * 50)
    with pytest.raises(ChecksumError, match="damaged"):
        dl.fetch(spec, "data.txt")
    assert _debris() == []


def test_an_archive_whose_member_fails_its_checksum_is_removed(server):
    srv = server(_zip(CONTENT.replace(b"7", b"9")))
    with pytest.raises(ChecksumError, match="sha256.*removed from the cache"):
        dl.fetch(_spec(srv.url), "data.txt")
    assert _debris() == []


def test_a_damaged_cache_entry_is_replaced_online_and_named_offline(server, monkeypatch):
    srv = server(_zip())
    spec = _spec(srv.url)
    path = dl.fetch(spec, "data.txt")
    path.write_bytes(CONTENT[:-1])
    assert dl.fetch(spec, "data.txt").read_bytes() == CONTENT  # online: removed and fetched again
    path.write_bytes(CONTENT[:-1])
    monkeypatch.setenv("RECSYS_TF_OFFLINE", "1")
    (path.parent / "pack.zip").unlink()
    with pytest.raises(ChecksumError, match="was removed; run again with downloads allowed"):
        dl.fetch(spec, "data.txt")
    assert not path.exists()


@pytest.mark.parametrize("value, off", [("1", True), ("true", True), ("YES", True), ("on", True),
                                        ("0", False), ("", False), ("false", False)])  # fmt: skip
def test_offline_accepts_the_usual_spellings(monkeypatch, value, off):
    monkeypatch.setenv("RECSYS_TF_OFFLINE", value)
    assert dl.offline() is off


def test_a_dropped_connection_is_not_taken_for_the_whole_file(monkeypatch):
    """The server promises 1,000 bytes and closes after 10: the file must not be installed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]

    def serve():
        conn, _ = sock.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with pytest.raises(DataNotFoundError, match="the download failed"):
        dl.fetch(_spec(f"http://127.0.0.1:{port}/data.txt", archive=False), "data.txt")
    t.join(5)
    sock.close()
    assert _debris() == []


def test_local_copies_are_never_deleted(tmp_path, monkeypatch):
    local = tmp_path / "local" / "toy"
    local.mkdir(parents=True)
    (local / "data.txt").write_bytes(CONTENT[:-1])
    monkeypatch.setenv("RECSYS_TF_DATA", str(tmp_path / "local"))
    with pytest.raises(ChecksumError, match=f"Delete {local / 'data.txt'}"):
        dl.fetch(_spec("https://example.org/x.zip"), "data.txt")
    assert Path(local / "data.txt").exists()
