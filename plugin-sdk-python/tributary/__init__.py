"""Tributary's Python plugin SDK: write a connector as a Python class, build
it into a WebAssembly component with `plugin-sdk-python/build.sh`.

    import tributary as t

    class Example(t.Connector):
        Config = MyConfig          # a dataclass
        def describe(self): return t.descriptor("example", "1.0.0", "...")
        def collect(self, cfg, ctx): return t.report(t.Observation("a", "table").received(7))

    Plugin = t.export(Example)

See docs/plugins-python.md and plugins-python/example/app.py.
"""

from wit_world.imports.tributary_connector_types import DeleteScope_Asset, DeleteScope_Ids, DeleteScope_Tenant, RunContext

from . import http, log
from .connector import Connector, export, parse_config
from .errors import ConnectorError, ErrorClass
from .http import Client
from .ids import IdStream, emit_ids
from .report import (Capabilities, Observation, StatusLevel, Timestamp, action_outcome, asset_descriptor,
                     asset_error, descriptor, report, timestamp)

__all__ = [
    "Capabilities", "Client", "Connector", "ConnectorError", "DeleteScope_Asset", "DeleteScope_Ids",
    "DeleteScope_Tenant", "ErrorClass", "IdStream", "Observation", "RunContext", "StatusLevel", "Timestamp",
    "action_outcome", "asset_descriptor", "asset_error", "descriptor", "emit_ids", "export", "http", "log",
    "parse_config", "report", "timestamp",
]
