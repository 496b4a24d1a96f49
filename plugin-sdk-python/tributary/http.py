"""An HTTP client over `wasi:http/outgoing-handler`, made for JSON APIs.

Python's `urllib`/`requests` cannot reach the network inside a component;
this client can, and classifies every failure like the Rust SDK's
`plugin_sdk::http` so the daemon knows whether to retry:

| what happened | class |
| --- | --- |
| 401, 403 | `auth` |
| 408, 429, 5xx | `transient`, with `Retry-After` as `retry_after_ms` |
| other 4xx (404, 400...) | `config` |
| the check does not grant the host | `config` |
| timeout, refused or reset connection, DNS failure | `transient` |
| body not JSON, too large, TLS failure | `system` |

    client = Client("https://api.example.com", bearer=cfg.token, timeout=20)
    stats = client.get_json("/v1/stats", query={"tenant": cfg.tenant})
    resp = client.get("/v1/stats", check_status=False)   # inspect resp.status
"""

import json
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping, Optional
from urllib.parse import quote, urlencode, urlsplit

from componentize_py_types import Err
from wit_world.imports import monotonic_clock, outgoing_handler, poll
from wit_world.imports import streams
from wit_world.imports import wasi_http_types as wh

from .errors import ConnectorError

#: Seconds a request may take, from sending it to the last byte of the answer.
DEFAULT_TIMEOUT = 30.0
#: The largest response body read (the host has its own limit too).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: How much of an error response's body goes into the error message.
ERROR_BODY_SNIPPET = 300

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 409: "Conflict", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def encode(segment: str) -> str:
    """Percent-encode one path segment (a tenant name with `/` or spaces)."""
    return quote(str(segment), safe="")


class Response:
    def __init__(self, what: str, status: int, headers: dict, body: bytes):
        self.what = what
        self.status = status
        #: Header names lowercase; the last value of each.
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; anything else is a `system` error."""
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise ConnectorError.system(f"{self.what}: the answer is not JSON: {e}") from None

    def raise_for_status(self) -> "Response":
        if not self.ok:
            raise status_error(self.what, self.status, self.headers, self.body)
        return self


def status_error(what: str, status: int, headers: Mapping[str, str], body: bytes) -> ConnectorError:
    """Classify an HTTP error status (see the module docs)."""
    message = f"{what}: HTTP {status}"
    if status in _REASONS:
        message += f" {_REASONS[status]}"
    snippet = " ".join(body[: ERROR_BODY_SNIPPET * 4].decode("utf-8", "replace").split())
    if len(snippet) > ERROR_BODY_SNIPPET:
        snippet = snippet[:ERROR_BODY_SNIPPET] + "…"
    if snippet:
        message += f": {snippet}"
    if status in (401, 403):
        return ConnectorError.auth(message)
    if status in (408, 429) or 500 <= status <= 599:
        return ConnectorError.transient(message, parse_retry_after(headers.get("retry-after")))
    if 400 <= status <= 499:
        return ConnectorError.config(message)
    return ConnectorError.system(message)


def parse_retry_after(value: Optional[str]) -> Optional[int]:
    """`Retry-After` (delta-seconds or an HTTP-date) in milliseconds."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int((at - datetime.now(timezone.utc)).total_seconds() * 1000))


class Client:
    """Base URL, default headers and timeout for a connector's requests."""

    def __init__(self, base_url: str = "", bearer: Optional[str] = None,
                 headers: Optional[Mapping[str, str]] = None, timeout: float = DEFAULT_TIMEOUT,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES):
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        if bearer is not None:
            self.headers["authorization"] = f"Bearer {bearer}"
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    def get(self, path: str, query: Optional[Mapping[str, Any]] = None, **kw) -> Response:
        return self.request("GET", path, query=query, **kw)

    def post(self, path: str, json_body: Any = None, query: Optional[Mapping[str, Any]] = None, **kw) -> Response:
        return self.request("POST", path, query=query, json_body=json_body, **kw)

    def get_json(self, path: str, query: Optional[Mapping[str, Any]] = None, **kw) -> Any:
        return self.get(path, query=query, **kw).json()

    def post_json(self, path: str, json_body: Any = None, **kw) -> Any:
        return self.post(path, json_body=json_body, **kw).json()

    def request(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
                json_body: Any = None, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
                check_status: bool = True) -> Response:
        """Send one request. With `check_status` (the default) a non-2xx
        status raises the classified ConnectorError; without it, the caller
        reads `Response.status` (e.g. to say which tenant a 404 is about)."""
        url = path if "://" in path else self.base_url + path
        if query:
            url += ("&" if "?" in url else "?") + urlencode(
                [(k, _query_value(v)) for k, v in query.items() if v is not None])
        what = f"{method} {_without_query(url)}"
        all_headers = {**self.headers, **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        all_headers.setdefault("accept", "application/json")
        timeout = self.timeout if timeout is None else timeout
        status, resp_headers, resp_body = _send(what, method, url, all_headers, body, timeout,
                                                self.max_response_bytes)
        response = Response(what, status, resp_headers, resp_body)
        return response.raise_for_status() if check_status else response


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


_METHODS = {"GET": wh.Method_Get(), "HEAD": wh.Method_Head(), "POST": wh.Method_Post(),
            "PUT": wh.Method_Put(), "DELETE": wh.Method_Delete(), "PATCH": wh.Method_Patch(),
            "OPTIONS": wh.Method_Options()}


def _send(what, method, url, headers, body, timeout, max_bytes):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConnectorError.config(f"{what}: not an http(s) URL: {_without_query(url)!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    deadline = monotonic_clock.now() + int(timeout * 1e9)
    try:
        fields = wh.Fields.from_list([(k.lower(), str(v).encode()) for k, v in headers.items()])
    except Err as e:
        raise ConnectorError.config(f"{what}: invalid header ({type(e.value).__name__})") from None
    request = wh.OutgoingRequest(fields)
    request.set_method(_METHODS.get(method.upper()) or wh.Method_Other(method))
    request.set_scheme(wh.Scheme_Https() if parts.scheme == "https" else wh.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    outgoing = request.body()
    options = wh.RequestOptions()
    ns = int(timeout * 1e9)
    for setter in (options.set_connect_timeout, options.set_first_byte_timeout,
                   options.set_between_bytes_timeout):
        try:
            setter(ns)
        except Err:
            pass  # the host does not support this timeout; the deadline still holds
    try:
        future = outgoing_handler.handle(request, options)
    except Err as e:
        raise _error_code(what, origin, e.value) from None
    with outgoing.write() as out:
        data = body or b""
        for i in range(0, len(data), 4096):
            try:
                out.blocking_write_and_flush(data[i:i + 4096])
            except Err:
                break  # the request failed; the response future says why
    wh.OutgoingBody.finish(outgoing, None)
    with future:
        while (result := future.get()) is None:
            _wait(what, future.subscribe(), deadline)
    inner = result.value
    if isinstance(inner, Err):
        raise _error_code(what, origin, inner.value)
    with inner.value as response:
        status = response.status()
        with response.headers() as h:
            resp_headers = {k.lower(): v.decode("latin-1") for k, v in h.entries()}
        data = bytearray()
        with response.consume() as incoming, incoming.stream() as stream:
            while True:
                try:
                    chunk = stream.read(65536)
                except Err as e:
                    if isinstance(e.value, streams.StreamError_Closed):
                        break
                    raise ConnectorError.transient(f"{what}: the connection failed while reading the answer") from None
                if chunk:
                    data += chunk
                    if len(data) > max_bytes:
                        raise ConnectorError.system(f"{what}: the answer exceeds {max_bytes} bytes")
                else:
                    _wait(what, stream.subscribe(), deadline)
    return status, resp_headers, bytes(data)


def _wait(what, pollable, deadline):
    """Block until `pollable` is ready or the deadline passes."""
    with pollable, monotonic_clock.subscribe_instant(deadline) as timer:
        poll.poll([pollable, timer])
    if monotonic_clock.now() >= deadline:
        raise ConnectorError.transient(f"{what}: timed out")


def _error_code(what: str, origin: str, code) -> ConnectorError:
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return ConnectorError.config(
            f"{what}: the sandbox denied the request: host {origin} is not granted to this check "
            "(add it to the check's allowed_hosts; the daemon's log names the grant)")
    if name == "DestinationIpProhibited":
        return ConnectorError.config(f"{what}: the sandbox denied the request: the address of {origin} is prohibited")
    if name in ("HttpRequestUriInvalid", "HttpRequestMethodInvalid", "HttpRequestUriTooLong"):
        return ConnectorError.config(f"{what}: invalid request: {name}")
    if name in ("DnsTimeout", "ConnectionTimeout", "ConnectionReadTimeout", "ConnectionWriteTimeout",
                "HttpResponseTimeout"):
        return ConnectorError.transient(f"{what}: timed out ({name})")
    if name == "DnsError":
        return ConnectorError.transient(f"{what}: cannot resolve the host of {origin}: "
                                        f"{code.value.rcode or 'DNS error'}")
    if name in ("DestinationNotFound", "DestinationUnavailable", "DestinationIpUnroutable",
                "ConnectionRefused", "ConnectionTerminated", "ConnectionLimitReached",
                "HttpResponseIncomplete"):
        return ConnectorError.transient(f"{what}: connection failed ({name})")
    if name.startswith("Tls"):
        return ConnectorError.system(f"{what}: TLS failed ({name})")
    if name == "HttpResponseBodySize":
        return ConnectorError.system(f"{what}: the response body exceeds the host's limit")
    if name == "InternalError" and code.value:
        return ConnectorError.system(f"{what}: {code.value}")
    return ConnectorError.system(f"{what}: {name}")
