"""Admin routes (no FYERS equivalent): faults, the clock, where it listens, a token, and its books.

* ``POST /admin/faults`` ``{"action": "<FaultPlan method>", "args": {...}}`` -- any action in
  :data:`fyers_sim.faults.ADMIN_ACTIONS`; replies ``{"s": "ok", "result": ...}``.
* ``GET /admin/faults`` -- the log of faults fired so far, and how many "late" requests are still
  to be carried out (``late_pending``), and how many log records were ever written (``logged``).
* ``POST /admin/clock`` ``{"advance": seconds}`` or ``{"set": epoch | ISO-8601}`` -- stepped or
  accelerated clocks only; returns once the venue has processed up to the new time.
* ``GET /admin/clock`` -- ``{"time": epoch, "iso": ..., "mode": ...}``.
* ``GET /admin/venue`` -- where the venue listens and its paper account: ``{"rest", "order_ws",
  "data_ws", "app_id", "fy_id"}``, so a client given only the REST URL finds the sockets.
* ``POST /admin/token`` -- a fresh access token (paper trading without the login dance).
* ``GET /admin/state`` -- orders, trades and net positions; REST requests by path, the 429s
  the rate limiter answered and the requests refused for their token (``auth_refused``), by path.
* ``GET /admin/requests`` -- the REST requests let through (auth and rate limit passed), oldest
  first, the last 200,000: ``[[host wall time, path, query string], ...]``.

The admin port is the REST port; it is bound to 127.0.0.1 like everything else.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from .rest import BadRequest, json_response, read_json
from .sessions import IST

__all__ = ["add_admin_routes"]


def add_admin_routes(app: web.Application, venue) -> None:
    """Register the admin routes for ``venue`` (a :class:`fyers_sim.venue.Venue`)."""

    async def faults_post(request: web.Request) -> web.Response:
        body = await read_json(request)
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise BadRequest("'args' must be a JSON object")
        try:
            result = venue.faults.apply(str(body.get("action")), args)
        except (ValueError, TypeError) as exc:
            raise BadRequest(str(exc)) from None
        return json_response({"s": "ok", "result": result})

    async def faults_get(request: web.Request) -> web.Response:
        return json_response({"s": "ok", "log": list(venue.faults.log), "late_pending": venue.faults.late_pending,
                              "logged": venue.faults.logged})

    async def clock_get(request: web.Request) -> web.Response:
        now = venue.clock.time()
        return json_response({"s": "ok", "time": now, "mode": venue.clock.mode,
                              "iso": dt.datetime.fromtimestamp(now, IST).isoformat()})

    async def clock_post(request: web.Request) -> web.Response:
        body = await read_json(request)
        loop = asyncio.get_running_loop()
        try:
            if "advance" in body:
                seconds = float(body["advance"])
                await loop.run_in_executor(None, venue.advance, seconds)
            elif "set" in body:
                when = body["set"]
                target = dt.datetime.fromisoformat(when) if isinstance(when, str) else float(when)
                await loop.run_in_executor(None, venue.set_time, target)
            else:
                raise BadRequest("expected 'advance' (seconds) or 'set' (epoch or ISO-8601)")
        except (ValueError, TypeError, RuntimeError) as exc:
            raise BadRequest(str(exc)) from None
        return await clock_get(request)

    async def venue_get(request: web.Request) -> web.Response:
        urls = venue.urls
        return json_response({"s": "ok", "rest": urls.rest, "order_ws": urls.order_ws, "data_ws": urls.data_ws,
                              "app_id": venue.account.app_id, "fy_id": venue.account.fy_id})

    async def token_post(request: web.Request) -> web.Response:
        return json_response({"s": "ok", "app_id": venue.account.app_id, "access_token": venue.access_token()})

    async def state_get(request: web.Request) -> web.Response:
        return json_response({"s": "ok", "time": venue.clock.time(), "orders": venue.orders(),
                              "trades": venue.trades(), "positions": venue.positions(),
                              "requests": dict(venue.ctx.requests), "rate_limited": dict(venue.ctx.rate_limited),
                              "auth_refused": dict(venue.ctx.auth_refused)})

    async def requests_get(request: web.Request) -> web.Response:
        return json_response({"s": "ok", "requests": [list(entry) for entry in venue.ctx.request_log]})

    r = app.router
    r.add_get("/admin/requests", requests_get)
    r.add_post("/admin/faults", faults_post)
    r.add_get("/admin/faults", faults_get)
    r.add_get("/admin/clock", clock_get)
    r.add_post("/admin/clock", clock_post)
    r.add_get("/admin/venue", venue_get)
    r.add_post("/admin/token", token_post)
    r.add_get("/admin/state", state_get)
