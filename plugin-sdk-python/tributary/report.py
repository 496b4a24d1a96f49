"""Typed builders for what a connector returns: descriptors, observations,
reports, action outcomes.

They produce the WIT records of `tributary:connector/types`, so a wrong
field type fails at build time in the builder rather than as a trap when the
host reads the result. Timestamps accept what a JSON API hands back:
RFC 3339 text (`2026-11-20T10:00:00Z`), a `datetime`, Unix seconds, or None.
"""

import json
from datetime import datetime, timezone
from typing import Any, Iterable, List, Optional, Union

from wit_world.imports import tributary_connector_types as wit

from .errors import ConnectorError

Capabilities = wit.Capabilities
StatusLevel = wit.StatusLevel
Timestamp = wit.Timestamp
TimestampLike = Union[None, str, int, float, datetime, wit.Timestamp]

#: The largest error sample an observation keeps; totals count every error.
MAX_ERROR_SAMPLE = 100


def timestamp(value: TimestampLike) -> Optional[wit.Timestamp]:
    """A WIT timestamp from RFC 3339 text, a datetime or Unix seconds.

    Unparsable text is a `system` error: the monitored system answered
    something unusable.
    """
    if value is None or isinstance(value, wit.Timestamp):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ConnectorError.system(f"not an RFC 3339 timestamp: {value!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
        seconds = delta.days * 86_400 + delta.seconds
        return wit.Timestamp(seconds, delta.microseconds * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a timestamp: {value!r}")
    seconds = int(value // 1)
    return wit.Timestamp(seconds, int(round((value - seconds) * 1e9)) % 1_000_000_000)


def descriptor(
    name: str,
    version: str,
    description: str,
    config_schema: Any = None,
    capabilities: Capabilities = Capabilities(0),
    suggested_hosts: Iterable[str] = (),
) -> wit.Descriptor:
    """What `describe` returns. `config_schema` is a JSON Schema as a dict
    (or text); secret fields carry `"x-secret": True`."""
    if config_schema is None:
        config_schema = {"type": "object"}
    if not isinstance(config_schema, str):
        config_schema = json.dumps(config_schema)
    return wit.Descriptor(name, version, description, config_schema, capabilities, list(suggested_hosts))


def asset_descriptor(asset: str, kind: str, description: Optional[str] = None) -> wit.AssetDescriptor:
    return wit.AssetDescriptor(asset, kind, description)


def action_outcome(affected: Optional[int] = None, message: Optional[str] = None) -> wit.ActionOutcome:
    return wit.ActionOutcome(affected, message)


def asset_error(
    kind: str,
    message: str,
    document_id: Optional[str] = None,
    log_link: Optional[str] = None,
    at: TimestampLike = None,
) -> wit.AssetError:
    return wit.AssetError(kind, message, document_id, log_link, timestamp(at))


class Observation:
    """What one run says of one asset; chain the setters, then hand it to
    `report()`. Errors: at most MAX_ERROR_SAMPLE are kept as a sample, every
    one is counted in the totals by kind (unless totals are set explicitly)."""

    def __init__(self, asset: str, kind: str):
        self.asset = asset
        self.kind = kind
        self._expected: Optional[int] = None
        self._received: Optional[int] = None
        self._errored: Optional[int] = None
        self._extras: List[wit.NamedCount] = []
        self._freshness: Optional[wit.Timestamp] = None
        self._last_received: Optional[wit.LastReceived] = None
        self._native_status: Optional[wit.NativeStatus] = None
        self._errors: List[wit.AssetError] = []
        self._totals: dict = {}
        self._explicit_totals = False
        self._metadata: List[wit.MetadataEntry] = []

    def expected(self, n: Optional[int]) -> "Observation":
        self._expected = _count("expected", n)
        return self

    def received(self, n: Optional[int]) -> "Observation":
        self._received = _count("received", n)
        return self

    def errored(self, n: Optional[int]) -> "Observation":
        self._errored = _count("errored", n)
        return self

    def extra(self, name: str, value: int) -> "Observation":
        self._extras.append(wit.NamedCount(name, _count(name, value)))
        return self

    def freshness(self, at: TimestampLike) -> "Observation":
        self._freshness = timestamp(at)
        return self

    def last_received(self, record_id: str, at: TimestampLike = None) -> "Observation":
        self._last_received = wit.LastReceived(str(record_id), timestamp(at))
        return self

    def native_status(self, level: StatusLevel, label: str, message: Optional[str] = None) -> "Observation":
        self._native_status = wit.NativeStatus(level, label, message)
        return self

    def error(self, error: wit.AssetError) -> "Observation":
        if len(self._errors) < MAX_ERROR_SAMPLE:
            self._errors.append(error)
        if not self._explicit_totals:
            self._totals[error.kind] = self._totals.get(error.kind, 0) + 1
        return self

    def errors(self, errors: Iterable[wit.AssetError]) -> "Observation":
        for e in errors:
            self.error(e)
        return self

    def error_total(self, kind: str, count: int) -> "Observation":
        """Set the total for `kind` (when the system counts more errors than it
        lists); from then on, totals are only what is set here."""
        if not self._explicit_totals:
            self._explicit_totals = True
            self._totals = {}
        self._totals[kind] = _count(kind, count)
        return self

    def metadata(self, key: str, value: Any) -> "Observation":
        self._metadata.append(wit.MetadataEntry(key, str(value)))
        return self

    def build(self) -> wit.Observation:
        return wit.Observation(
            asset=self.asset,
            kind=self.kind,
            counts=wit.Counts(self._expected, self._received, self._errored, list(self._extras)),
            freshness=self._freshness,
            last_received=self._last_received,
            native_status=self._native_status,
            errors=list(self._errors),
            error_totals=[wit.ErrorTotal(k, v) for k, v in self._totals.items()],
            metadata=list(self._metadata),
        )


def report(*observations: Union[Observation, wit.Observation]) -> wit.Report:
    return wit.Report([o.build() if isinstance(o, Observation) else o for o in observations])


def _count(name: str, n: Optional[int]) -> Optional[int]:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConnectorError.system(f"count {name} must be a non-negative integer, got {n!r}")
    return n
