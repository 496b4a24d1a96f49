"""Log lines that reach the daemon's log, tagged with the check and plugin.

`fields` values are turned into text with `str()`. Never log secrets: the
host redacts the check's known secrets, but only those it knows.
"""

from typing import Any, Iterable, Mapping, Tuple, Union

from wit_world.imports import host
from wit_world.imports import tributary_connector_types as wit

Fields = Union[Mapping[str, Any], Iterable[Tuple[str, Any]]]


def _fields(fields: Fields) -> list:
    items = fields.items() if isinstance(fields, Mapping) else fields
    return [(str(k), str(v)) for k, v in items]


def log(level: wit.LogLevel, message: str, fields: Fields = ()) -> None:
    host.log(level, message, _fields(fields))


def trace(message: str, fields: Fields = ()) -> None:
    log(wit.LogLevel.TRACE, message, fields)


def debug(message: str, fields: Fields = ()) -> None:
    log(wit.LogLevel.DEBUG, message, fields)


def info(message: str, fields: Fields = ()) -> None:
    log(wit.LogLevel.INFO, message, fields)


def warn(message: str, fields: Fields = ()) -> None:
    log(wit.LogLevel.WARN, message, fields)


def error(message: str, fields: Fields = ()) -> None:
    log(wit.LogLevel.ERROR, message, fields)
