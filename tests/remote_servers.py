"""Real servers on loopback for the URL-store tests: HTTP with Range requests, and S3 (moto).

The HTTP server serves a directory (with the directory listings fsspec reads) and counts every
request and every byte of file content it sends, so a test can show what a read fetched. The S3
server is moto's, run as ``ThreadedMotoServer`` runs it, behind a layer that counts the same.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Traffic:
    """What the server sent: one entry per request, and the file bytes of each."""

    requests: List[str] = field(default_factory=list)
    sent: Dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, path: str, nbytes: int) -> None:
        with self.lock:
            self.requests.append(path)
            self.sent[path] = self.sent.get(path, 0) + nbytes

    def record_bytes(self, path: str, nbytes: int) -> None:
        """More bytes sent for a request already recorded."""
        with self.lock:
            self.sent[path] = self.sent.get(path, 0) + nbytes

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.sent.clear()

    @property
    def total_bytes(self) -> int:
        return sum(self.sent.values())


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus ``Range: bytes=a-b`` (206 Partial Content), quietly."""

    traffic: Traffic

    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def do_HEAD(self) -> None:
        self.traffic.record(self.path, 0)
        super().do_HEAD()

    def do_GET(self) -> None:
        path = self.translate_path(self.path)
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if not match or not os.path.isfile(path):  # a whole file, a listing, or a 404
            self.traffic.record(self.path, os.path.getsize(path) if os.path.isfile(path) else 0)
            return super().do_GET()
        size = os.path.getsize(path)
        start_text, end_text = match.groups()
        if start_text:
            start, end = int(start_text), min(int(end_text) if end_text else size - 1, size - 1)
        else:  # the last N bytes
            start, end = max(0, size - int(end_text)), size - 1
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return
        length = end - start + 1
        self.traffic.record(self.path, length)  # before the answer: a client never sees it unrecorded
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            self.wfile.write(f.read(length))


class Server(ThreadingHTTPServer):
    """Threads per request, and a listen queue deep enough for a client's concurrent requests."""

    request_queue_size = 256
    daemon_threads = True


def gop_bytes(video_path: str) -> List[int]:
    """Per frame of a video file (presentation order), the bytes of the packets from the keyframe
    before it to the next keyframe: what a reader fetching whole GOPs needs for it."""
    import av

    with av.open(video_path) as container:
        packets = [(p.pts, p.is_keyframe, p.size) for p in container.demux(video=0) if p.size]
    keys = [i for i, (_, key, _) in enumerate(packets) if key] + [len(packets)]
    needs = {}
    for start, end in zip(keys, keys[1:]):
        for pts, _, _ in packets[start:end]:
            needs[pts] = sum(size for _, _, size in packets[start:end])
    return [needs[pts] for pts in sorted(needs)]


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """``(root directory, base URL, traffic)`` of a Range-capable HTTP server on loopback."""
    root = tmp_path_factory.mktemp("www")
    traffic = Traffic()
    handler = type("Handler", (RangeRequestHandler,), {"traffic": traffic})
    server = Server(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", traffic
    finally:
        server.shutdown()
        server.server_close()


class CountingS3Server:
    """moto's S3 server on loopback (as ``moto.server.ThreadedMotoServer`` runs it), counting in
    ``traffic`` every request (``METHOD /bucket/key``) and the body bytes of every object read
    (listings and other answers count as requests of 0 bytes)."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> Dict[str, Any]:
        """Start it; the storage options (s3fs) that reach it."""
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = self._counting(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        return {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._thread.join()

    def _counting(self, app: Callable[..., Any]) -> Callable[..., Any]:
        traffic = self.traffic

        def counted(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            query = environ.get("QUERY_STRING", "")
            label = f"{method} {path}" + (f"?{query}" if query else "")
            is_object = method == "GET" and path.strip("/").count("/") >= 1 and not query
            traffic.record(label, 0)
            for block in app(environ, start_response):
                if is_object:
                    traffic.record_bytes(label, len(block))
                yield block

        return counted


class S3Options(dict):
    """Storage options (s3fs) of a test S3 server, and its ``traffic``."""

    traffic: Traffic


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Options]:
    """Storage options for an S3-compatible server (moto) on loopback, with bucket ``recordings``;
    ``.traffic`` counts its requests and the object bytes it sends."""
    pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    traffic = Traffic()
    server = CountingS3Server(traffic)
    options = S3Options(server.start())
    options.traffic = traffic
    fs = s3fs.S3FileSystem(**options)
    try:
        fs.mkdir("recordings")
    except FileExistsError:  # moto's state is the process's: another module's server made it
        pass
    try:
        yield options
    finally:
        server.stop()


def put_tree(local: Path, bucket: str, prefix: str) -> None:
    """Put every file under ``local`` into ``bucket`` of the in-process moto server, under
    ``prefix``, straight into moto's store (no requests: thousands of files in a fraction of a
    second, and nothing counted)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        backend.put_object(bucket, f"{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())


@pytest.fixture(scope="module")
def plain_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """``(root directory, base URL)`` of Python's own file server, which ignores Range headers."""
    root = tmp_path_factory.mktemp("plain-www")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = Server(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
