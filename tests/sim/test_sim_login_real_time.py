"""The login's short-lived keys live on real time, not on the venue clock (issue 17).

FYERS's request keys, login tokens and auth codes are facts of its auth servers: a venue clock
that runs fast (accelerated) or jumps (stepped) must not kill them in the middle of a login, and
they still die after their real lifetime. Access tokens keep dying at 06:00 IST venue time.
"""

from __future__ import annotations

import datetime as dt
import time

from fyers_sim.clock import VenueClock
from fyers_sim.testing import running_venue
from fyers_sim.tokens import TokenAuthority, VenueAccount
from fyers_store.auth import TotpLogin
from support.clocks import IST
from support.login import CountingSession, FULL_FLOW, make_config

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=IST)


class Mono:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_keys_ignore_venue_time_and_die_after_300_real_seconds():
    mono = Mono()
    tokens = TokenAuthority(VenueAccount(), monotonic=mono)
    venue_now = START.timestamp()
    key = tokens.new_login_key("otp", venue_now)
    code = tokens.issue_auth_code(venue_now)
    bearer = tokens.login_token(venue_now)
    later = venue_now + 3 * 3600  # hours of venue time, no real time
    assert tokens.take_login_key(key, "otp", later)
    assert tokens.check_login_token(bearer, later)
    status, access = tokens.redeem_auth_code(code, _hash(), later)
    assert status == 0
    tokens.check_bare_token(access, later)  # issued on venue time: alive until 06:00 IST

    key = tokens.new_login_key("pin", venue_now)
    code = tokens.issue_auth_code(venue_now)
    bearer = tokens.login_token(venue_now)
    mono.now += 300  # five real minutes, venue time standing still
    assert not tokens.take_login_key(key, "pin", venue_now)
    assert not tokens.check_login_token(bearer, venue_now)
    assert tokens.redeem_auth_code(code, _hash(), venue_now) == (-437, "invalid auth code")


def _hash() -> str:
    from fyers_sim.tokens import app_id_hash

    acc = VenueAccount()
    return app_id_hash(acc.app_id, acc.secret_key)


def test_totp_login_survives_a_venue_hour_while_the_client_waits_for_its_next_code(tmp_path):
    """The client's clock sits 1 s before a TOTP step's end, so ``TotpLogin`` waits for the next
    code between ``send_login_otp`` and ``verify_otp``; meanwhile the venue clock moves an hour (an
    accelerated venue at factor 3600 would). The request key must still be good."""
    with running_venue(seed=7, clock=VenueClock.stepped(START)) as venue:
        config = make_config(venue, tmp_path)
        now = time.time()
        client_clock = [now - now % 30 + 29.0]  # the real TOTP step, 1 s before its end
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            client_clock[0] += seconds
            venue.clock.advance(3600)

        session = CountingSession()
        result = TotpLogin(config, session=session, sleep=sleep, jitter=lambda: 0.5,
                           clock=lambda: client_clock[0]).login()
        assert slept and session.paths == FULL_FLOW and result.access_token
