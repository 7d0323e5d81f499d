"""The service's ASGI middlewares and request models, on a tiny ASGI app (the same middlewares wrap the
real BentoML app in tests/integration/test_serving.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from aisle.core.schemas import EVENT_SCHEMA, EVENT_TYPES
from serving.http import AdminAuth, BodyLimit, JsonApi
from serving.schemas import FeedbackEvent, FeedbackRequest, RecommendRequest


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, answers 400 for body b"bad", a BentoML-style list error for b"404", else 200."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, payload = 200, {"ok": True, "bytes": len(body)}
    if body == b"bad":
        status, payload = 400, {"error": "1 validation error", "detail": [{"loc": ["k"]}]}
    elif body == b"404":
        status, payload = 404, [{"error": "no such item"}]
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _call(
    app: Any, path: str, body: bytes, headers: dict[str, str] | None = None, chunks: int = 1
) -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    size = max(1, len(body) // chunks)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    queue = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(raw)


def test_body_limit_by_header_and_by_chunks() -> None:
    app = BodyLimit(_echo, max_bytes=lambda: 10)
    assert _call(app, "/recommend", b"12345", {"content-length": "5"})[0] == 200
    status, body = _call(app, "/recommend", b"x" * 11, {"content-length": "11"})
    assert status == 413 and "10 bytes" in body["error"]
    assert _call(app, "/recommend", b"x" * 30, chunks=5)[0] == 413  # no Content-Length: counted


def test_admin_routes_need_the_token() -> None:
    app = AdminAuth(_echo, token=lambda: "s3cret")
    assert _call(app, "/admin/reload", b"")[0] == 401
    assert _call(app, "/admin/reload", b"", {"authorization": "Bearer nope"})[0] == 403
    assert _call(app, "/admin/reload", b"", {"authorization": "Bearer s3cret"})[0] == 200
    assert _call(app, "/recommend", b"")[0] == 200  # other routes are not guarded
    off = AdminAuth(_echo, token=lambda: None)
    status, body = _call(off, "/admin/status", b"", {"authorization": "Bearer anything"})
    assert status == 403 and "AISLE_ADMIN_TOKEN" in body["error"]


def test_json_api_statuses_and_bodies() -> None:
    app = JsonApi(_echo, paths=["/recommend"])
    assert _call(app, "/recommend", b"{}", {"content-type": "application/json"})[0] == 200
    assert _call(app, "/recommend", b"x", {"content-type": "multipart/form-data"})[0] == 415
    status, body = _call(app, "/recommend", b"bad", {"content-type": "application/json"})
    assert status == 422 and body["detail"][0]["loc"] == ["k"]
    status, body = _call(app, "/recommend", b"404", {"content-type": "application/json"})
    assert status == 404 and body == {"error": "no such item"}  # BentoML's one-item list unwrapped


def test_openapi_document_describes_what_is_sent() -> None:
    from serving.http import document

    spec = {"paths": {"/recommend": {"post": {"responses": {"200": {}, "400": {"description": "x"}}}}}}
    out = document(spec, ["/recommend"])
    responses = out["paths"]["/recommend"]["post"]["responses"]
    assert "400" not in responses and {"200", "413", "415", "422"} <= set(responses)


def test_request_models_are_strict_and_name_the_field() -> None:
    for body, field in (
        ({"user_id": "u", "k": "5"}, "k"),
        ({"user_id": "u", "k": 0}, "k"),
        ({"user_id": "", "k": 3}, "user_id"),
        ({"user_id": "u", "filters": {"price_max": False}}, "price_max"),
        ({"user_id": "u", "filters": {"size": 3}}, "size"),
    ):
        with pytest.raises(ValidationError) as info:
            RecommendRequest.model_validate(body)
        assert field in str(info.value.errors()[0]["loc"]), body
    assert RecommendRequest.model_validate({"user_id": "u"}).k == 10


def test_feedback_events_follow_the_event_contract() -> None:
    fields = FeedbackEvent.model_json_schema()["properties"]
    assert set(fields) == set(EVENT_SCHEMA.names)
    assert set(fields["event_type"]["enum"]) == set(EVENT_TYPES)
    good = {"event_id": "e", "event_type": "purchase", "user_id": "u", "item_id": "i", "ts": 1767225600}
    assert FeedbackRequest.model_validate({"events": [good, {**good, "ts": "2026-01-01T00:00:00Z"}]})
    for change, words in (
        ({"ts": "soon"}, "ts: cannot parse"),
        ({"ts": ""}, "ts: missing"),
        ({"value": "high"}, "value"),
        ({"event_type": "stare"}, "event_type"),
        ({"quantity": 2.5}, "quantity"),
    ):
        with pytest.raises(ValidationError, match=words):
            FeedbackRequest.model_validate({"events": [{**good, **change}]})
    with pytest.raises(ValidationError, match="events"):
        FeedbackRequest.model_validate({"events": []})
