"""Classified connector errors: the only way a failure leaves a plugin.

The host retries only `transient` errors, shows `config` errors next to the
check and `auth` errors as refused credentials; `system` means the monitored
system (or the plugin) failed. Raise `ConnectorError` anywhere in a connector;
the export guard (tributary.connector) turns it into the WIT `connector-error`,
and turns every other exception into a `system` error instead of a trap.
"""

from typing import Optional

from wit_world.imports import tributary_connector_types as wit

ErrorClass = wit.ErrorClass


class ConnectorError(Exception):
    """A failed call, classified so the host knows whether to retry."""

    def __init__(self, class_: ErrorClass, message: str, retry_after_ms: Optional[int] = None):
        super().__init__(message)
        self.class_ = class_
        self.message = message
        self.retry_after_ms = retry_after_ms

    @classmethod
    def config(cls, message: str) -> "ConnectorError":
        return cls(ErrorClass.CONFIG, message)

    @classmethod
    def auth(cls, message: str) -> "ConnectorError":
        return cls(ErrorClass.AUTH, message)

    @classmethod
    def transient(cls, message: str, retry_after_ms: Optional[int] = None) -> "ConnectorError":
        return cls(ErrorClass.TRANSIENT, message, retry_after_ms)

    @classmethod
    def system(cls, message: str) -> "ConnectorError":
        return cls(ErrorClass.SYSTEM, message)

    def context(self, what: str) -> "ConnectorError":
        """The same error, its message prefixed with what we were doing."""
        return ConnectorError(self.class_, f"{what}: {self.message}", self.retry_after_ms)

    def to_wit(self) -> wit.ConnectorError:
        return wit.ConnectorError(self.class_, self.message, self.retry_after_ms)

    def __repr__(self) -> str:
        return f"ConnectorError({self.class_.name.lower()}: {self.message})"
