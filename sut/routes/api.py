"""The HTTP API (see DESIGN.md, "Reference SUT protocol")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sut.auth import USER_RE, bearer, is_publisher, verify_user_token
from sut.db import DatabaseUnavailable
from sut.replica import Replica
from sut.routes.errors import ApiError

HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 1000
PG_INT_MAX = 2**31 - 1
PG_BIGINT_MAX = 2**63 - 1
UNAVAILABLE = {"Retry-After": "1"}


def _replica(request: Request) -> Replica:
    return request.app.state.replica


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "instance": _replica(request).config.instance})


async def ready(request: Request) -> JSONResponse:
    replica = _replica(request)
    failed = await replica.readiness()
    if failed:
        return JSONResponse({"status": "unready", "instance": replica.config.instance, "failed": failed},
                            status_code=503)
    return JSONResponse({"status": "ready", "instance": replica.config.instance})


async def metrics(request: Request) -> JSONResponse:
    return JSONResponse(_replica(request).metrics())


async def publish_notification(request: Request) -> JSONResponse:
    replica = _replica(request)
    _require_publisher(request, replica)
    body = await _json_body(request, replica.config.max_body_bytes)
    _only_fields(body, {"user", "data"})
    user = body.get("user")
    if user is None:
        raise ApiError(422, "user is required")
    if not isinstance(user, str) or not USER_RE.match(user):
        raise ApiError(422, "user must be a string of 1-64 letters, digits, '_', '-', ':' or '@'")
    return await _publish(replica, user, _data_field(body))


async def publish_broadcast(request: Request) -> JSONResponse:
    replica = _replica(request)
    _require_publisher(request, replica)
    body = await _json_body(request, replica.config.max_body_bytes)
    _only_fields(body, {"data"})
    return await _publish(replica, None, _data_field(body))


async def _publish(replica: Replica, user: str | None, data: dict[str, Any]) -> JSONResponse:
    try:
        notification = await replica.publisher.publish(user, data)
    except DatabaseUnavailable as exc:
        raise ApiError(503, f"database unavailable: {exc}", UNAVAILABLE) from None
    except asyncpg.DataError as exc:  # the client's data, not the server, is at fault
        raise ApiError(422, f"data cannot be stored: {exc}") from None
    return JSONResponse(
        {"id": notification.id, "user": notification.user, "instance": replica.config.instance},
        status_code=201,
    )


async def history(request: Request) -> JSONResponse:
    replica = _replica(request)
    token = bearer(request.headers.get("authorization")) or request.query_params.get("token")
    token_user = verify_user_token(replica.config.secret, token, replica.config.defects)
    if token_user is None:
        raise ApiError(401, "a valid user token is required (Authorization: Bearer <token> or ?token=)")
    user = request.query_params.get("user", token_user)
    if user != token_user:
        raise ApiError(403, "this token may only read its own user's notifications")
    after = _int_param(request, "after", 0, 0, PG_BIGINT_MAX)
    limit = _int_param(request, "limit", HISTORY_DEFAULT_LIMIT, 1, HISTORY_MAX_LIMIT)
    try:
        items = await replica.db.history(user, after, limit)
    except DatabaseUnavailable as exc:
        raise ApiError(503, f"database unavailable: {exc}", UNAVAILABLE) from None
    return JSONResponse({
        "user": user,
        "items": [n.frame() for n in items],
        "count": len(items),
        "next_after": items[-1].id if items else after,
    })


async def item(request: Request) -> JSONResponse:
    replica = _replica(request)
    raw = request.path_params["item_id"]
    try:
        item_id = int(raw)
    except ValueError:
        raise ApiError(422, f"item id must be an integer, got {raw!r}") from None
    if not 0 < item_id <= PG_INT_MAX:
        raise ApiError(404, f"item {item_id} not found")
    cached = await replica.cache.get(item_id)
    if cached is not None:
        return _item_response(cached, "cache")
    try:
        found = await replica.db.item(item_id)
    except DatabaseUnavailable as exc:
        raise ApiError(503, f"database unavailable: {exc}", UNAVAILABLE) from None
    if found is None:
        raise ApiError(404, f"item {item_id} not found")
    await replica.cache.put(found)
    return _item_response(found, "db")


SLOW_MAX_S = 30.0


async def slow(request: Request) -> JSONResponse:
    """`POST /api/slow {"delay": s}`: work that takes `s` seconds (at most 30) on the
    server, so that a shutdown finds requests in flight. POST, so that the load
    balancer never retries one a dying replica dropped on another replica."""
    replica = _replica(request)
    body = await _json_body(request, 1024)
    _only_fields(body, {"delay"})
    delay = body.get("delay", 1.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= SLOW_MAX_S:
        raise ApiError(422, f"delay must be a number of seconds between 0 and {SLOW_MAX_S:g}")
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(float(delay))
    return JSONResponse({"slept": round(asyncio.get_running_loop().time() - started, 3),
                         "instance": replica.config.instance})


def _item_response(found: dict[str, Any], source: str) -> JSONResponse:
    return JSONResponse({**found, "source": source}, headers={"X-Source": source})


def _require_publisher(request: Request, replica: Replica) -> None:
    if not is_publisher(replica.config.publisher_key, request.headers.get("authorization"), replica.config.defects):
        raise ApiError(401, "publishing needs the publisher key (Authorization: Bearer <key>)",
                       {"WWW-Authenticate": "Bearer"})


async def _json_body(request: Request, cap: int) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ApiError(413, f"body is larger than {cap} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ApiError(413, f"body is larger than {cap} bytes")
    try:
        parsed = json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ApiError(400, "body is not valid JSON") from None
    # A cheap byte test first: only a body with a \uDxxx escape can hold a surrogate.
    if (b"\\ud" in body or b"\\uD" in body) and not _utf8_clean(parsed):
        raise ApiError(422, "body contains a lone UTF-16 surrogate escape; data must be valid Unicode")
    if not isinstance(parsed, dict):
        raise ApiError(422, "body must be a JSON object")
    return parsed


def _no_constants(name: str) -> Any:
    # NaN and Infinity are Python extensions, not JSON; Postgres would refuse them.
    raise ValueError(f"{name} is not JSON")


def _utf8_clean(value: Any) -> bool:
    # Python's JSON parser accepts a lone surrogate escape, but such a string cannot be
    # encoded as UTF-8, so every later response containing it would fail.
    try:
        json.dumps(value, ensure_ascii=False).encode()
        return True
    except UnicodeEncodeError:
        return False


def _only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _data_field(body: dict[str, Any]) -> dict[str, Any]:
    if "data" not in body:
        raise ApiError(422, "data is required")
    if not isinstance(body["data"], dict):
        raise ApiError(422, "data must be a JSON object")
    return body["data"]


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(422, f"{name} must be between {low} and {high}, got {value}")
    return value


ROUTES = [
    Route("/api/health", health, methods=["GET"]),
    Route("/api/ready", ready, methods=["GET"]),
    Route("/api/metrics", metrics, methods=["GET"]),
    Route("/api/notifications", publish_notification, methods=["POST"]),
    Route("/api/notifications", history, methods=["GET"]),
    Route("/api/broadcast", publish_broadcast, methods=["POST"]),
    Route("/api/items/{item_id}", item, methods=["GET"]),
    Route("/api/slow", slow, methods=["POST"]),
]
