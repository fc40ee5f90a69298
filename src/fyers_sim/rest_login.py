"""Login routes: the SDK's OAuth flow and the TOTP login automated clients use (protocol §3).

* ``GET /api/v3/generate-authcode`` -- FYERS shows a login page; the venue logs the single
  account in at once and redirects (302) to ``redirect_uri?s=ok&code=200&auth_code=…&state=…``.
* ``POST /api/v3/validate-authcode`` -- ``appIdHash`` + one-time ``code`` -> access token.
* ``POST /vagator/v2/send_login_otp_v2`` -> ``verify_otp`` (TOTP) -> ``verify_pin_v2`` -> ``POST
  /api/v3/token`` (Bearer login token) -> HTTP 308 with ``{"Url": redirect_uri?…auth_code=…}``.
  The v1 spellings (``send_login_otp``, ``verify_pin``; plain rather than base64 id/PIN) used by
  FYERS's older sample are accepted too.

Real FYERS answers 308 from ``/api/v3/token`` *without* a ``Location`` header (clients read the
body); sending one would make ``requests`` follow it.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlencode

from aiohttp import web

from .rest import CTX, BadRequest, error_response, json_response, read_json

__all__ = ["add_login_routes"]


def _maybe_b64(text: str) -> str:
    """``text`` base64-decoded if it is valid base64 of printable ASCII, else ``text``."""
    try:
        decoded = base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text
    return decoded if decoded.isprintable() else text


def _redirect_target(uri: str, query: dict) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(query)}"


def add_login_routes(app: web.Application) -> None:
    """Register the OAuth and TOTP login routes."""
    ctx = app[CTX]
    acc, tokens = ctx.account, ctx.tokens

    async def generate_authcode(request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != acc.app_id:
            return error_response(-352, "Invalid App ID", 400)
        if q.get("redirect_uri") != acc.redirect_uri:
            return error_response(-50, "redirect_uri does not match the app's registered redirect URL", 400)
        if q.get("response_type") != "code":
            return error_response(-50, "response_type must be 'code'", 400)
        target = _redirect_target(acc.redirect_uri, {
            "s": "ok", "code": 200, "auth_code": tokens.issue_auth_code(ctx.now()), "state": q.get("state", "")})
        raise web.HTTPFound(target)

    async def validate_authcode(request: web.Request) -> web.Response:
        body = await read_json(request)
        if body.get("grant_type") != "authorization_code":
            return error_response(-50, "grant_type must be 'authorization_code'", 400)
        code, result = tokens.redeem_auth_code(body.get("code", ""), body.get("appIdHash", ""), ctx.now())
        if code:
            return error_response(code, result, 400)
        return json_response({"s": "ok", "code": 200, "message": "", "access_token": result,
                              "refresh_token": tokens.login_token(ctx.now())})

    async def send_login_otp(request: web.Request) -> web.Response:
        body = await read_json(request)
        fy_id = _maybe_b64(str(body.get("fy_id", "")))
        if fy_id != acc.fy_id:
            return error_response(-1004, "Invalid fy_id", 400)
        return json_response({"s": "ok", "code": 200, "message": "OTP sent",
                              "request_key": tokens.new_login_key("otp", ctx.now())})

    async def verify_otp(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not tokens.take_login_key(str(body.get("request_key", "")), "otp", ctx.now()):
            return error_response(-1005, "Invalid or expired request key", 400)
        if not tokens.totp_ok(str(body.get("otp", ""))):
            return error_response(-1006, "Invalid OTP", 400)
        return json_response({"s": "ok", "code": 200, "message": "",
                              "request_key": tokens.new_login_key("pin", ctx.now())})

    async def verify_pin(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not tokens.take_login_key(str(body.get("request_key", "")), "pin", ctx.now()):
            return error_response(-1005, "Invalid or expired request key", 400)
        if _maybe_b64(str(body.get("identifier", ""))) != acc.pin:
            return error_response(-1007, "Invalid PIN", 400)
        token = tokens.login_token(ctx.now())
        return json_response({"s": "ok", "code": 200, "message": "",
                              "data": {"access_token": token, "refresh_token": ""}})

    async def token(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, bearer = auth.partition(" ")
        if scheme.lower() != "bearer" or not tokens.check_login_token(bearer.strip(), ctx.now()):
            return error_response(-16, "Could not authenticate the user", 401)
        body = await read_json(request)
        if str(body.get("app_id", "")) not in (acc.app_base, acc.app_id):
            return error_response(-352, "Invalid App ID", 400)
        if body.get("redirect_uri") != acc.redirect_uri:
            raise BadRequest("redirect_uri does not match the app's registered redirect URL")
        url = _redirect_target(acc.redirect_uri, {
            "s": "ok", "code": 200, "auth_code": tokens.issue_auth_code(ctx.now()),
            "state": body.get("state", "")})
        return json_response({"s": "ok", "code": 308, "message": "", "Url": url}, 308)

    r = app.router
    r.add_get("/api/v3/generate-authcode", generate_authcode)
    r.add_post("/api/v3/validate-authcode", validate_authcode)
    r.add_post("/api/v3/token", token)
    for version in ("v1", "v2"):
        r.add_post(f"/vagator/{version}/send_login_otp_v2", send_login_otp)
        r.add_post(f"/vagator/{version}/send_login_otp", send_login_otp)
        r.add_post(f"/vagator/{version}/verify_otp", verify_otp)
        r.add_post(f"/vagator/{version}/verify_pin_v2", verify_pin)
        r.add_post(f"/vagator/{version}/verify_pin", verify_pin)
