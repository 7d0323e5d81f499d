"""ASGI middlewares around the BentoML app: body size limit (413), admin bearer auth (401/403), JSON
only on the API routes (415), validation errors as 422, and an OpenAPI document that says so.

Why they exist (measured on BentoML 1.4.39): BentoML answers every pydantic error, malformed JSON
included, with 400 and has no switch for it; it picks a multipart or form parser from the
Content-Type header, and a multipart header without a boundary ends in a 500; and an exception raised
while the body is read also becomes a 500, so a body limit must answer for itself. All of these wrap
the mounted admin app and BentoML's own routes too.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for a body over ``max_bytes()`` (asked on first use), whether announced by Content-Length or
    streamed in chunks."""

    def __init__(self, app: App, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self._limit_source = max_bytes
        self._limit: int | None = None

    @property
    def max_bytes(self) -> int:
        if self._limit is None:
            self._limit = int(self._limit_source())
        return self._limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        message_body = {"error": f"request body larger than {limit} bytes"}
        length = _header(scope, b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            return await send_json(send, 413, message_body)
        seen = 0
        over = False
        answered = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if over:  # BentoML turned our exception into its own 500: answer 413 instead
                if not answered:
                    answered = True
                    await send_json(send, 413, message_body)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not answered:
                await send_json(send, 413, message_body)


class AdminAuth:
    """``/admin/*`` needs ``Authorization: Bearer <token>``: 401 without one, 403 with a wrong one, and
    403 for everyone when no token is configured (the admin API is then off). ``token()`` is asked on
    first use, so importing the service reads no settings."""

    def __init__(self, app: App, token: Callable[[], str | None], prefix: str = "/admin") -> None:
        self.app = app
        self._token_source = token
        self._token: bytes | None = None
        self._resolved = False
        self.prefix = prefix

    def _expected(self) -> bytes | None:
        if not self._resolved:
            value = self._token_source()
            self._token = value.encode() if value else None
            self._resolved = True
        return self._token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            auth = _header(scope, b"authorization") or b""
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not given.strip():
                return await send_json(
                    send,
                    401,
                    {"error": "admin routes need a bearer token"},
                    [(b"www-authenticate", b"Bearer")],
                )
            expected = self._expected()
            if expected is None:
                return await send_json(
                    send, 403, {"error": "the admin API is off: AISLE_ADMIN_TOKEN is not set"}
                )
            if not hmac.compare_digest(given.strip(), expected):
                return await send_json(send, 403, {"error": "wrong admin token"})
        return await self.app(scope, receive, send)


class JsonApi:
    """On the API routes: JSON bodies only (415 otherwise) and validation errors as 422. On
    ``/docs.json``: the document describes those 422s instead of BentoML's 400s."""

    def __init__(self, app: App, paths: Iterable[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path == "/docs.json":
            return await self._document(scope, receive, send)
        if path not in self.paths or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        ctype = (_header(scope, b"content-type") or b"application/json").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            return await send_json(send, 415, {"error": "Content-Type must be application/json"})

        held: Message | None = None
        chunks: list[bytes] = []

        async def errors_fixed(message: Message) -> None:
            """400 → 422; BentoML's ``[{"error": ...}]`` error bodies (a tuple by mistake) → the object."""
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    return await send(message)
                held = {**message, "status": 422 if message["status"] == 400 else message["status"]}
                return None
            if held is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return None
            body = b"".join(chunks)
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
                body = json.dumps(data[0]).encode()
            headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
            await send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return None

        await self.app(scope, receive, errors_fixed)

    async def _document(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        assert start is not None
        if start["status"] == 200:
            body = json.dumps(document(json.loads(body), self.paths)).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {}},
    "description": "What was wrong; `detail` lists each invalid field with its location (`loc`).",
}


def document(spec: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """BentoML documents 400 as ``{"detail": string}`` but sends pydantic's error list, and we send 422:
    describe what actually comes back, plus 413 and 415 that the middlewares answer."""
    spec.setdefault("components", {}).setdefault("schemas", {})["InvalidArgument"] = ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for path in paths:
        for operation in spec.get("paths", {}).get(path, {}).values():
            responses = operation.setdefault("responses", {})
            responses.pop("400", None)
            responses["422"] = {**error, "description": "Invalid request: the message names the field"}
            responses["413"] = {**error, "description": "Request body over the configured limit"}
            responses["415"] = {**error, "description": "Body is not JSON"}
    return spec
