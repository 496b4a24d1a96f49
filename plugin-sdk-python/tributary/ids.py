"""Streaming record ids to the host (`emit-ids`), outside the report.

An `IdStream` buffers ids and hands them to the host in batches, so
millions of ids never sit in one list or in the report. Call `finish()` at
the end: it flushes the last batch and returns how many ids were sent.
"""

from typing import Iterable, List

from componentize_py_types import Err
from wit_world.imports import host

from .errors import ConnectorError

#: Ids per `emit-ids` call (the Rust SDK uses the same batch).
BATCH = 10_000


def emit_ids(asset: str, ids: List[str]) -> None:
    """One `emit-ids` call; fails (e.g. the run's id limit) as a ConnectorError."""
    try:
        host.emit_ids(asset, ids)
    except Err as e:
        err = e.value
        raise ConnectorError(err.class_, err.message, err.retry_after_ms) from None


class IdStream:
    def __init__(self, asset: str, batch: int = BATCH):
        self.asset = asset
        self.batch = batch
        self.sent = 0
        self._buffer: List[str] = []

    def extend(self, ids: Iterable[str]) -> None:
        for i in ids:
            self.push(i)

    def push(self, record_id: str) -> None:
        self._buffer.append(str(record_id))
        if len(self._buffer) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            emit_ids(self.asset, batch)
            self.sent += len(batch)

    def finish(self) -> int:
        self._flush()
        return self.sent
