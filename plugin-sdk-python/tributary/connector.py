"""The `Connector` base class and the glue to the component's exports.

A connector subclasses `Connector`, declares its config as a dataclass in
`Config`, overrides what it implements, and exports itself once from its
app module:

    Plugin = tributary.export(MyConnector)

What the glue does, so connectors stay short:
- parses the check's JSON config into `Config`: a missing field, an unknown
  field (a typo) or a wrong type is a `config` error naming the field;
- calls the connector's method with the parsed config;
- guards every export: a raised `ConnectorError` becomes the WIT error, and
  any other exception a `system` error naming it, never a trap (a trap
  would end the run with an opaque "unexpected exception"); so does a
  result of the wrong type, which would trap when the host reads it;
- calls `describe` once, when the component is built (componentize-py runs
  the app module then and snapshots it): `describe` has no error in the
  contract, so an exception there fails the build with its traceback, and
  the daemon gets the snapshot's descriptor without running any of the
  connector's code.
"""

import dataclasses
import json
import traceback
import typing
from typing import Any, List, Type

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import tributary_connector_types as wit

from . import log
from .errors import ConnectorError
from .report import Capabilities, action_outcome, descriptor


class Connector:
    """Defaults: an empty config, a connection test that succeeds, no assets,
    an empty report; `resync`/`delete` refuse (the daemon only calls them
    when `describe` lists the capability)."""

    #: A dataclass describing the config, or None to get the JSON as a dict.
    Config: Any = None

    def describe(self) -> wit.Descriptor:
        return descriptor(type(self).__name__, "0.0.0", "")

    def test_connection(self, cfg) -> None:
        return None

    def discover(self, cfg) -> List[wit.AssetDescriptor]:
        return []

    def collect(self, cfg, ctx: wit.RunContext) -> wit.Report:
        return wit.Report([])

    def resync(self, cfg, asset: str, ids: List[str]) -> wit.ActionOutcome:
        raise ConnectorError.config("this connector does not support resync")

    def delete(self, cfg, asset: str, scope: wit.DeleteScope) -> wit.ActionOutcome:
        raise ConnectorError.config("this connector does not support delete")


def parse_config(config_type: Any, text: str) -> Any:
    """The check's config JSON as `config_type` (a dataclass), or a `config`
    ConnectorError naming the field."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConnectorError.config(f"invalid config: not JSON: {e}") from None
    if config_type is None:
        return value
    return _to_dataclass(config_type, value, "")


def _to_dataclass(cls: Any, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _bad(where, "an object", value)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            raise ConnectorError.config(
                f"invalid config: unknown field `{where}{key}`, expected one of "
                + ", ".join(f"`{n}`" for n in fields))
    args = {}
    for name, field in fields.items():
        path = f"{where}{name}"
        if name in value:
            args[name] = _convert(hints.get(name, Any), value[name], path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            if _is_optional(hints.get(name, Any)):
                args[name] = None
            else:
                raise ConnectorError.config(f"invalid config: missing field `{path}`")
    return cls(**args)


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Union and type(None) in typing.get_args(tp)


def _convert(tp: Any, value: Any, path: str) -> Any:
    if tp is Any:
        return value
    if _is_optional(tp):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0] if len(inner) == 1 else Any, value, path)
    if dataclasses.is_dataclass(tp):
        return _to_dataclass(tp, value, path + ".")
    origin = typing.get_origin(tp)
    if origin in (list, List):
        if not isinstance(value, list):
            raise _bad(path, "a list", value)
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(path, "an object", value)
        return value
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(tp, type):
        ok = isinstance(value, tp)
    else:
        ok = True
    if not ok:
        raise _bad(path, _TYPE_NAMES.get(tp, f"a {getattr(tp, '__name__', tp)}"), value)
    return value


_JSON_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "an object"}
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _bad(path: str, expected: str, value: Any) -> ConnectorError:
    got = "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)
    return ConnectorError.config(f"invalid config: field `{path or '.'}` must be {expected}, got {got}")


def _guard(call):
    """Run one export; every failure leaves as a classified WIT error."""
    try:
        return call()
    except ConnectorError as e:
        raise Err(e.to_wit()) from None
    except Err:
        raise
    # BaseException: `sys.exit()` (SystemExit) or a stray KeyboardInterrupt
    # would trap as surely as any other exception.
    except BaseException as e:  # noqa: BLE001 - the point: nothing may trap
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        try:
            log.error("the connector raised an unexpected exception",
                      {"exception": detail, "traceback": traceback.format_exc(limit=8)})
        except BaseException:  # noqa: BLE001 - logging must not hide the error
            pass
        raise Err(wit.ConnectorError(wit.ErrorClass.SYSTEM,
                                     f"the connector failed: {detail}", None)) from None


def export(connector: Type[Connector]) -> type:
    """The component's `plugin` export class for `connector`; assign it to
    `Plugin` in the app module (componentize-py looks for that name)."""
    instance = connector()
    config_type = connector.Config
    described = _describe(instance)

    def cfg(text: str) -> Any:
        return parse_config(config_type, text)

    class Plugin(exports.Plugin):
        def describe(self) -> wit.Descriptor:
            return described

        def test_connection(self, config: str) -> None:
            _guard(lambda: instance.test_connection(cfg(config)))

        def discover(self, config: str) -> List[wit.AssetDescriptor]:
            return _guard(lambda: _assets(instance.discover(cfg(config))))

        def collect(self, config: str, context: wit.RunContext) -> wit.Report:
            return _guard(lambda: _typed("collect", instance.collect(cfg(config), context),
                                         wit.Report, "tributary.report(...)"))

        def resync(self, config: str, asset: str, ids: List[str]) -> wit.ActionOutcome:
            return _guard(lambda: _outcome("resync", instance.resync(cfg(config), asset, list(ids))))

        def delete(self, config: str, asset: str, scope: wit.DeleteScope) -> wit.ActionOutcome:
            return _guard(lambda: _outcome("delete", instance.delete(cfg(config), asset, scope)))

    return Plugin


def _describe(instance: Connector) -> wit.Descriptor:
    """`describe`, called at build time; any failure fails the build."""
    name = type(instance).__name__
    try:
        value = instance.describe()
    except Exception as e:
        raise RuntimeError(
            f"{name}.describe() raised {type(e).__name__}: {e}. It runs once, when the component "
            "is built, and must return tributary.descriptor(...) without calling log or HTTP") from e
    if not isinstance(value, wit.Descriptor):
        raise TypeError(f"{name}.describe() returned {type(value).__name__}, "
                        "expected tributary.descriptor(...)")
    return value


def _typed(export: str, value: Any, expected: type, builder: str) -> Any:
    """`value` when it is an `expected`; otherwise a `system` error, since the
    host could not read it (a trap)."""
    if not isinstance(value, expected):
        raise ConnectorError.system(
            f"the connector's {export} returned {type(value).__name__}, expected {builder}")
    return value


def _assets(values: Any) -> List[wit.AssetDescriptor]:
    try:
        assets = list(values)
    except TypeError:
        raise ConnectorError.system(
            f"the connector's discover returned {type(values).__name__}, "
            "expected a list of tributary.asset_descriptor(...)") from None
    for asset in assets:
        _typed("discover", asset, wit.AssetDescriptor, "a list of tributary.asset_descriptor(...)")
    return assets


def _outcome(export: str, value: Any) -> wit.ActionOutcome:
    if value is None:
        return action_outcome()
    return _typed(export, value, wit.ActionOutcome, "tributary.action_outcome(...) or None")


__all__ = ["Connector", "export", "parse_config"]
