"""``/api/v3`` account and order routes: thin translation onto the matching engine.

Every handler first lets the engine catch up to venue time (fills that happened since the last
pump step are visible at once), then answers in FYERS's shape. The engine raises
``OrderError`` for synchronous rejections; its ``http_status`` and body pass through unchanged.
"""

from __future__ import annotations

from aiohttp import web

from .engine import OrderError
from .rest import CTX, BadRequest, json_response, read_json

__all__ = ["add_trading_routes"]


def _profile(ctx) -> dict:
    acc = ctx.account
    # PII is masked server-side since Sep 2025 (protocol §1.5).
    return {"s": "ok", "code": 200, "message": "", "data": {
        "name": acc.name, "image": None, "display_name": acc.name.split()[0], "email_id": "v***@example.com",
        "PAN": "VExxxxxx0S", "fy_id": acc.fy_id, "pin_change_date": "01-01-2026 09:00:00",
        "mobile_number": "99xxxxxx99", "totp": True, "pwd_change_date": "01-01-2026 09:00:00",
        "pwd_to_expire": 90, "ddpi_enabled": False, "mtf_enabled": False}}


def add_trading_routes(app: web.Application) -> None:
    """Register profile, funds, holdings, positions, tradebook, orderbook, orders/sync, logout."""
    ctx = app[CTX]
    engine = ctx.engine

    def caught_up() -> float:
        now = ctx.now()
        engine.advance(now)
        return now

    async def guarded(call):
        try:
            return json_response(call())
        except OrderError as exc:
            return json_response(exc.body(), exc.http_status)

    async def profile(request: web.Request) -> web.Response:
        return json_response(_profile(ctx))

    async def funds(request: web.Request) -> web.Response:
        return json_response(engine.funds(caught_up()))

    async def holdings(request: web.Request) -> web.Response:
        return json_response(engine.holdings(caught_up()))

    async def positions(request: web.Request) -> web.Response:
        return json_response(engine.positions(caught_up()))

    async def tradebook(request: web.Request) -> web.Response:
        tag = request.query.get("order_tag")
        return await guarded(lambda: engine.tradebook(caught_up(), order_tag=tag))

    async def orderbook(request: web.Request) -> web.Response:
        order_id, tag = request.query.get("id"), request.query.get("order_tag")
        return await guarded(lambda: engine.orderbook(caught_up(), order_id=order_id, order_tag=tag))

    def body_call(method):
        """A handler passing the JSON body to ``method(body, now)`` (place/modify/cancel/exit)."""
        async def handler(request: web.Request) -> web.Response:
            body = await read_json(request)
            return await guarded(lambda: method(body, caught_up()))
        return handler

    async def convert_position(request: web.Request) -> web.Response:
        await read_json(request)
        raise BadRequest("Position conversion is not supported by this venue")

    async def logout(request: web.Request) -> web.Response:
        ctx.tokens.revoke(request["token"])
        return json_response({"s": "ok", "code": 200, "message": "you are successfully logged out"})

    r = app.router
    r.add_get("/api/v3/profile", profile)
    r.add_get("/api/v3/funds", funds)
    r.add_get("/api/v3/holdings", holdings)
    r.add_get("/api/v3/positions", positions)
    r.add_delete("/api/v3/positions", body_call(engine.exit_positions))
    r.add_post("/api/v3/positions", convert_position)
    r.add_get("/api/v3/tradebook", tradebook)
    r.add_get("/api/v3/orders", orderbook)
    r.add_post("/api/v3/orders/sync", body_call(engine.place))
    r.add_patch("/api/v3/orders/sync", body_call(engine.modify))
    r.add_delete("/api/v3/orders/sync", body_call(engine.cancel))
    r.add_post("/api/v3/logout", logout)
