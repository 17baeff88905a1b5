"""An in-process S3 server (moto) for tests that need a real S3 endpoint over HTTP."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from moto.server import ThreadedMotoServer

_QUIET_LOGGERS = ("werkzeug", "moto")


class S3Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach a running S3 server."""

    url: str
    access_key: str
    secret_key: str
    region: str


@contextmanager
def running_s3_server() -> Iterator[S3Endpoint]:
    """Run a moto S3 server on 127.0.0.1 and a free port for the duration of the block.

    moto keeps its state in process memory, shared by every client of the server: tests stay
    isolated by using a bucket of their own.
    """
    previous_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # Port 0 lets the OS pick a free port at bind time, so there is no race for it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Endpoint(
            url=f"http://{host}:{port}",
            access_key="test-access-key",
            secret_key="test-secret-key",
            region="us-east-1",
        )
    finally:
        server.stop()
        for name, level in previous_levels.items():
            logging.getLogger(name).setLevel(level)
