"""The venue's HTTP server: one aiohttp app for ``/api/v3``, ``/data``, login and admin routes.

Request pipeline (one middleware, in this order): injected REST faults, authentication (with
the body FYERS uses for that route family), the rate limiter, the handler. Every reply is JSON
with ``Content-Type: application/json`` -- errors included -- because the SDK's async mode raises
on any other content type (protocol §1.2).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .context import VenueContext
from .faults import UNCONFIRMED_CODES, RestFault
from .ratelimit import RateLimiter
from .tokens import TokenProblem

__all__ = ["CTX", "ORDER_ACTIONS", "build_rest_app", "json_response", "error_response", "read_json", "BadRequest"]

CTX = web.AppKey("ctx", VenueContext)
_log = logging.getLogger(__name__)
_LATE_TASKS: set[asyncio.Task] = set()  # strong references to requests carried out late
# Faults acted out after authentication and the rate limiter (the request is, or will be, carried
# out): FYERS's gateway counts a request when it arrives, however long the backend then takes.
_AFTER_AUTH = ("delay", "lose_response", "unconfirmed", "late", "static_ip")

# Route families and the body FYERS sends when their token is missing/bad/expired (protocol §1.4,
# real bodies captured by the Go SDK's tests). All with HTTP 401 (INFERRED from the docs' table).
_AUTH_FAILED = {"s": "error", "code": -16, "message": "Could not authenticate the user"}
_DATA_TOKEN = {"s": "error", "code": -15, "message": "Please provide valid token"}
_LOGOUT_FAILED = {"s": "error", "code": -16, "message": "Token is Invalid or Expired"}

_PUBLIC_PREFIXES = ("/vagator/", "/sym_details/", "/admin/")
_PUBLIC_PATHS = frozenset({"/api/v3/generate-authcode", "/api/v3/validate-authcode", "/api/v3/token"})
_DATA_MINUS_16 = frozenset({"/data/history"})
#: Requests that count against FYERS's separate order limit (10/s for sync place/modify/cancel,
#: fyers_2026.md §1); the venue serves only these order routes.
ORDER_ACTIONS = frozenset({("POST", "/api/v3/orders/sync"), ("PATCH", "/api/v3/orders/sync"),
                           ("DELETE", "/api/v3/orders/sync")})


class BadRequest(Exception):
    """Raised by handlers for malformed input; becomes a -50 error reply."""

    def __init__(self, message: str, code: int = -50, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def json_response(body: object, status: int = 200, headers: dict | None = None) -> web.Response:
    """A JSON reply with ``Content-Length`` (the sync SDK keeps its HTTP session alive)."""
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", headers=headers)


def error_response(code: int, message: str, status: int = 400, headers: dict | None = None) -> web.Response:
    """FYERS's error envelope."""
    return json_response({"s": "error", "code": code, "message": message}, status, headers)


async def read_json(request: web.Request, *, allow_list: bool = False) -> dict | list:
    """The request's JSON body (an object, or a list when ``allow_list``); BadRequest otherwise."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Invalid input: the request body is not JSON") from None
    if isinstance(body, dict) or (allow_list and isinstance(body, list)):
        return body
    raise BadRequest("Invalid input: expected a JSON object in the request body")


def _auth_family(path: str) -> dict | None:
    """The error body for failed auth on ``path``; None for routes that take no token."""
    if path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES):
        return None
    if path == "/api/v3/logout":
        return _LOGOUT_FAILED
    if path.startswith("/data/") and path not in _DATA_MINUS_16:
        return _DATA_TOKEN
    return _AUTH_FAILED


async def _fault_reply(ctx: VenueContext, rule: RestFault, request: web.Request) -> web.StreamResponse | None:
    """Act out a pre-handler fault; None means "go on and handle the request"."""
    if rule.kind == "error":
        if rule.html:
            return web.Response(text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                                status=rule.status, content_type="text/html")
        return error_response(-rule.status if rule.status >= 500 else -50,
                              "Internal server error" if rule.status >= 500 else "Bad request", rule.status)
    if rule.kind == "rate_limit":
        return error_response(-429, "request limit reached", 429, RateLimiter.headers(rule.retry_after))
    if rule.kind == "malformed":
        return web.Response(text="upstream temporarily unavailable", status=200, content_type="text/plain")
    if rule.kind == "hang":
        assert ctx.stopping is not None
        await ctx.stopping.wait()
        _lose_connection(request)  # the venue is stopping: end the hung request without a reply
        return web.Response()  # never written: the transport is already gone
    return None


def _unconfirmed_reply(code: int, status: int = 200) -> web.Response:
    """FYERS's "the request was made, its outcome is not confirmed" reply: code 201 comes with
    ``s`` ok and no order id, the connection-error codes with ``s`` error."""
    return json_response({"s": "ok" if code > 0 else "error", "code": code, "message": UNCONFIRMED_CODES[code]},
                         status)


async def _late(ctx: VenueContext, rule: RestFault, request: web.Request, handler) -> web.StreamResponse:
    """A "late" fault: take the body in, carry the request out after the rule's delay (at the venue
    time then), and answer the client now per ``rule.reply``."""
    await request.read()  # kept by aiohttp: the handler reads it again later
    delay = ctx.faults.late_delay(rule)
    ctx.faults.late_started(request.method, request.path, delay)
    done = asyncio.Event()

    async def carry_out() -> None:
        assert ctx.stopping is not None
        status = None
        try:
            try:
                await asyncio.wait_for(ctx.stopping.wait(), delay)
                return  # the venue is stopping: never carried out
            except asyncio.TimeoutError:
                pass
            try:
                status = (await handler(request)).status
            except BadRequest as exc:
                status = exc.status
            except Exception:
                _log.exception("late %s %s failed", request.method, request.path)
        finally:
            ctx.faults.late_done(request.method, request.path, status)
            done.set()

    task = asyncio.get_running_loop().create_task(carry_out())
    _LATE_TASKS.add(task)
    task.add_done_callback(_LATE_TASKS.discard)
    if rule.reply == "no_ack":
        return _unconfirmed_reply(201)
    if isinstance(rule.reply, int):
        return _unconfirmed_reply(rule.reply)
    if rule.reply == "hang":
        await done.wait()
    _lose_connection(request)
    return web.Response()  # never written: the transport is gone


def _lose_connection(request: web.Request) -> None:
    """Reset the client's TCP connection without a reply (RST, not a polite FIN)."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # SO_LINGER 0 makes close() send RST
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()


@web.middleware
async def _pipeline(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    ctx = request.app[CTX]
    path = request.path
    admin = path.startswith("/admin/")
    if not admin:
        ctx.requests[path] += 1  # the loop thread is the only writer
    rule = None if admin else ctx.faults.take_rest_fault(request.method, path)
    if rule is not None and rule.kind not in _AFTER_AUTH:
        early = await _fault_reply(ctx, rule, request)
        if early is not None:
            return early
    family = _auth_family(path)
    if family is not None:
        try:
            if path == "/data/symbol-token":  # the Python SDK sends the bare JWT here (protocol §5.2)
                request["token"] = ctx.tokens.check_either_form(request.headers.get("Authorization"), ctx.now())
            else:
                request["token"] = ctx.tokens.check_authorization(request.headers.get("Authorization"), ctx.now())
        except TokenProblem:
            ctx.auth_refused[path] += 1
            if (request.method, path) in ORDER_ACTIONS:
                ctx.order_actions_refused[(request.method, path)] += 1
            return json_response(family, 401)
        wait = ctx.limiter.check(order=(request.method, path) in ORDER_ACTIONS)
        if wait is not None:
            ctx.rate_limited[path] += 1
            return error_response(-429, "request limit reached", 429, RateLimiter.headers(wait))
        ctx.request_log.append((time.time(), path, request.query_string))
    if rule is not None and rule.kind == "delay":
        # Take the body in first: a client that times out meanwhile must not stop the request from
        # being carried out (FYERS books an order whose reply never reached the client).
        await request.read()
        await asyncio.sleep(rule.seconds)
    if rule is not None and rule.kind == "static_ip":  # refused after auth: the token is fine, the IP is not
        return json_response(rule.refusal_body(), rule.status)
    if rule is not None and rule.kind == "late":
        return await _late(ctx, rule, request, handler)
    if rule is not None and rule.kind == "unconfirmed" and not rule.process:
        return _unconfirmed_reply(rule.code, rule.status)
    try:
        response = await handler(request)
    except BadRequest as exc:
        response = error_response(exc.code, exc.message, exc.status)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = error_response(-exc.status if exc.status >= 500 else -50, exc.reason, exc.status)
        else:
            raise
    except Exception:  # a handler bug still answers JSON (aiohttp's own 500 is text/plain)
        _log.exception("unhandled error in %s %s", request.method, path)
        response = error_response(-500, "Internal server error", 500)
    if rule is not None and rule.kind == "lose_response":
        # The request was processed; the reply dies with the connection. aiohttp then drops the
        # response it cannot write (a debug line), where raising here would log a traceback.
        _lose_connection(request)
    if rule is not None and rule.kind == "unconfirmed":  # carried out; the reply does not say so
        return _unconfirmed_reply(rule.code, rule.status)
    return response


def build_rest_app(ctx: VenueContext, *route_adders: Callable[[web.Application], None]) -> web.Application:
    """The HTTP app; each of ``route_adders`` registers one family of routes."""
    app = web.Application(middlewares=[_pipeline], client_max_size=4 * 1024 * 1024)
    app[CTX] = ctx
    for add in route_adders:
        add(app)

    async def not_found(request: web.Request) -> web.Response:
        return error_response(-404, f"no such endpoint: {request.method} {request.path}", 404)

    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
