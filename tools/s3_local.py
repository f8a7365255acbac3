"""A real S3-compatible server on 127.0.0.1 (moto's server, in a thread) with injectable network faults.

Used by the object-storage tests and ``bench/remote.py``; also runnable to try ``--out s3://…`` by hand:

    python -m tools.s3_local --port 9000 --bucket shards     # then, in another shell:
    AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
        python -m pipelines.build --dataset mimic --raw data/raw/mimic --out s3://shards/demo

Faults (:meth:`LocalS3.inject`) are served by a WSGI layer in front of moto, so every client library meets them the
same way it would meet them from AWS:

* ``"503"``: the request is answered ``503 Service Unavailable`` with S3's ``SlowDown`` error body;
* ``"drop"``: the request reaches moto, the response headers (with the full ``Content-Length``) and half of the body
  are sent, then the connection is shut down (a dropped connection mid-read);
* ``"reset"``: the connection is closed before any response byte.

A missing object needs no injection: ask for a key that is not there.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

FAULT_KINDS = ("503", "drop", "reset")

_SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


@dataclass
class _Fault:
    kind: str
    method: str
    contains: str
    remaining: int


class _FaultyApp:
    """WSGI middleware: counts requests, serves armed faults, passes everything else to moto."""

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.faults: list[_Fault] = []
        self.requests: Counter[str] = Counter()  # "GET", "PUT", "HEAD", "GET-range" ...
        self.served: Counter[str] = Counter()  # faults served, by kind
        self.range_bytes = 0  # bytes asked for by ranged GETs
        self.full_gets: list[str] = []  # paths fetched by a GET without a Range header

    def _take(self, method: str, path: str) -> str | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining and fault.method == method and fault.contains in path:
                    fault.remaining -= 1
                    self.served[fault.kind] += 1
                    return fault.kind
        return None

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        ranged = environ.get("HTTP_RANGE", "")
        with self.lock:
            self.requests[method] += 1
            if method == "GET" and ranged:
                self.requests["GET-range"] += 1
                lo, _, hi = ranged.removeprefix("bytes=").partition("-")
                if lo and hi:
                    self.range_bytes += int(hi) - int(lo) + 1
            elif method == "GET" and path.count("/") >= 2 and not query:
                self.full_gets.append(path)
        kind = self._take(method, path)
        if kind == "503":
            start_response("503 Service Unavailable", [("Content-Type", "application/xml"),
                                                       ("Content-Length", str(len(_SLOWDOWN)))])
            return [_SLOWDOWN]
        if kind == "reset":
            _shutdown(environ)
            raise ConnectionAbortedError("injected connection reset")
        if kind != "drop":
            return self.app(environ, start_response)
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], headers + [("Content-Length", str(len(body)))])

        def half_then_drop():
            yield body[: len(body) // 2]
            _shutdown(environ)
            raise ConnectionAbortedError("injected drop mid-body")

        return half_then_drop()


def _shutdown(environ) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LocalS3:
    """moto's S3 server on ``127.0.0.1:<port>`` (0: a free port) in a daemon thread, behind :class:`_FaultyApp`.

    ``with LocalS3() as s3: s3.create_bucket("b"); os.environ.update(s3.env())``."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._server = None
        self._thread: threading.Thread | None = None
        self.app: _FaultyApp | None = None

    # -- life cycle
    def start(self) -> LocalS3:
        import logging

        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.app = _FaultyApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-s3", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- clients
    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment a client (ours, boto3, s3fs, pyarrow, a Ray worker) needs to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self):
        import boto3

        env = self.env()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=env["AWS_REGION"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """``{key: size}`` of every object under ``prefix``."""
        out: dict[str, int] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return out

    # -- faults
    def inject(self, kind: str, count: int = 1, method: str = "GET", contains: str = "") -> None:
        """Serve ``kind`` (see the module docstring) to the next ``count`` ``method`` requests whose path contains
        ``contains``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        assert self.app is not None, "start() first"
        with self.app.lock:
            self.app.faults.append(_Fault(kind, method, contains, count))

    def clear_faults(self) -> None:
        assert self.app is not None
        with self.app.lock:
            self.app.faults.clear()

    def reset_counters(self) -> None:
        assert self.app is not None
        with self.app.lock:
            self.app.requests.clear()
            self.app.served.clear()
            self.app.range_bytes = 0
            self.app.full_gets.clear()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.s3_local", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    args = p.parse_args(argv)
    with LocalS3(args.port) as s3:
        for bucket in args.bucket:
            s3.create_bucket(bucket)
        print(f"S3 server at {s3.endpoint} (buckets: {', '.join(args.bucket) or 'none'}); client environment:")
        for k, v in s3.env().items():
            print(f"  export {k}={v}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    raise SystemExit(main())
