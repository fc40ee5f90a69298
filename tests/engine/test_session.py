"""DailySession: when a running store logs in again, and what it does when that fails.

A fake login and a hand-moved clock (IST); the calendar is the shipped one (2026-11-24 is a
holiday). What is asserted is observable: the logins made, the token the holders and sockets get,
the state, the notify_store messages and the AuthError's text.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from fyers_sim.testing import wait_until
from fyers_store.config import DailyLoginConfig
from fyers_store.engine.session import DailySession, IssuedToken, SessionState
from fyers_store.errors import AuthError, OutcomeUnknown
from support.clocks import IST
from support.store_helpers import CALENDAR


def ist(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=IST)


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


class Login:
    """Hands out tok-1, tok-2, ...; or raises what ``fail`` holds."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: threading.Event | None = None

    def __call__(self) -> IssuedToken:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return IssuedToken(f"tok-{self.calls}")


class Holder:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def set_access_token(self, token: str) -> None:
        self.tokens.append(token)


class Socket:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def force_reconnect(self, reason: str) -> None:
        self.reasons.append(reason)


class Rig:
    def __init__(self, issued: dt.datetime, config: DailyLoginConfig = DailyLoginConfig(), now=None) -> None:
        self.clock = Clock(now or issued)
        self.login = Login()
        self.holder, self.socket = Holder(), Socket()
        self.notes: list[tuple] = []
        self.session = DailySession(IssuedToken("tok-0"), self.login, config=config, calendar=CALENDAR,
                                    clock=self.clock, issued_at=issued, poll_seconds=0.02)
        self.session.attach(holders=[self.holder], sockets=[self.socket],
                            notify=lambda kind, detail, **kw: self.notes.append((kind, detail, kw)))

    def at(self, when: dt.datetime) -> bool:
        self.clock.at = when
        return self.session.run_pending()

    def kinds(self) -> list[str]:
        return [n[0] for n in self.notes]


def test_the_daily_login_runs_at_the_configured_time_once_the_token_died():
    rig = Rig(issued=ist(18, 10))  # Wednesday's token dies Thursday 06:00
    session = rig.session
    assert session.valid_until == ist(19, 6) and session.next_login_at == ist(19, 8, 45)
    assert not rig.at(ist(18, 15, 30)) and session.state is SessionState.LIVE
    assert not rig.at(ist(19, 6, 1)) and session.state is SessionState.EXPIRED
    assert rig.kinds() == ["SESSION_EXPIRED"] and "08:45" in rig.notes[0][1]
    assert not rig.at(ist(19, 8, 44)) and rig.login.calls == 0
    assert rig.at(ist(19, 8, 45))
    assert rig.login.calls == 1 and session.token == "tok-1" and session.generation == 1
    assert rig.holder.tokens == ["tok-1"] and len(rig.socket.reasons) == 1
    assert session.state is SessionState.LIVE and session.next_login_at == ist(20, 8, 45)
    assert rig.kinds() == ["SESSION_EXPIRED", "SESSION_RENEWED"] and rig.notes[1][2] == {"generation": 1}
    assert not rig.at(ist(19, 12)) and rig.login.calls == 1  # once a day


def test_a_token_from_after_the_cutoff_is_not_replaced_the_same_day():
    rig = Rig(issued=ist(19, 7))  # logged in at 07:00 Thursday: valid until Friday 06:00
    assert not rig.at(ist(19, 8, 45)) and rig.login.calls == 0
    assert rig.session.next_login_at == ist(20, 8, 45)


@pytest.mark.parametrize("issued, login", [
    (ist(20, 11), ist(23, 8, 45)),   # Friday's token: Saturday and Sunday do not trade
    (ist(23, 11), ist(25, 8, 45)),   # Monday's token: Tuesday 24 is a holiday
])
def test_days_without_trading_have_no_login(issued, login):
    rig = Rig(issued=issued)
    assert rig.session.next_login_at == login
    assert not rig.at(login - dt.timedelta(minutes=1)) and rig.login.calls == 0
    assert rig.at(login) and rig.login.calls == 1


def test_a_login_time_before_the_cutoff_runs_at_the_cutoff():
    rig = Rig(issued=ist(18, 10), config=DailyLoginConfig(time_ist=dt.time(5, 0)))
    assert rig.session.next_login_at == ist(19, 6)  # a token from 05:00 would die at 06:00


def test_a_refusal_during_the_day_logs_in_once_and_later_refusals_of_the_old_token_change_nothing():
    rig = Rig(issued=ist(18, 9), now=ist(18, 11))
    session = rig.session
    session.refused("tok-0", "-16 Could not authenticate the user")
    assert session.state is SessionState.RENEWING and session.renewal_pending("tok-0")
    assert rig.at(ist(18, 11)) and rig.login.calls == 1 and session.token == "tok-1"
    session.refused("tok-0", "a late reply to a request sent with the old token")
    assert not rig.at(ist(18, 11, 1)) and rig.login.calls == 1 and session.state is SessionState.LIVE
    assert rig.kinds() == ["SESSION_RENEWED"] and "refused" in rig.notes[0][1]
    assert session.next_login_at == ist(19, 8, 45)  # the new token dies at 06:00 too


def test_a_token_refused_again_soon_after_ends_the_session_without_another_login():
    rig = Rig(issued=ist(18, 9), now=ist(18, 11))
    rig.session.refused("tok-0", "login elsewhere")
    rig.at(ist(18, 11))
    rig.clock.at = ist(18, 11, 5)  # 300 s later: under min_refusal_interval_seconds (600)
    rig.session.refused("tok-1", "login elsewhere, again")
    assert rig.session.state is SessionState.FAILED and not rig.at(ist(18, 12)) and rig.login.calls == 1
    error = rig.session.failure
    assert isinstance(error, AuthError) and "Another device or program" in error.message
    assert rig.kinds() == ["SESSION_RENEWED", "SESSION_RENEWAL_FAILED"] and rig.notes[1][2]["error"] is error
    assert not rig.at(ist(19, 8, 45)) and rig.login.calls == 1  # no scheduled login after the end either


def test_a_refusal_after_the_interval_logs_in_again():
    rig = Rig(issued=ist(18, 9), now=ist(18, 11))
    rig.session.refused("tok-0", "login elsewhere")
    rig.at(ist(18, 11))
    rig.clock.at = ist(18, 11, 11)
    rig.session.refused("tok-1", "login elsewhere, later")
    assert rig.at(ist(18, 11, 11)) and rig.login.calls == 2 and rig.session.token == "tok-2"


@pytest.mark.parametrize("failure", [AuthError("login step 'verify_pin' was refused: wrong PIN", -16),
                                     OutcomeUnknown("FYERS login step 'send_login_otp'", "gave up after 4 attempts")])
def test_a_failed_login_is_an_auth_error_with_an_operator_message_and_is_never_retried(failure):
    rig = Rig(issued=ist(18, 10))
    rig.login.fail = failure
    assert rig.at(ist(19, 8, 45)) and rig.login.calls == 1
    error = rig.session.failure
    assert isinstance(error, AuthError) and error.__cause__ is failure
    assert error.message.startswith("the daily login failed:") and "restart" in error.message
    assert rig.session.state is SessionState.FAILED and not rig.session.renewal_pending("tok-0")
    for later in (ist(19, 8, 46), ist(19, 12), ist(20, 8, 45)):
        assert not rig.at(later)
    assert rig.login.calls == 1 and rig.holder.tokens == [] and rig.socket.reasons == []
    assert rig.kinds() == ["SESSION_EXPIRED", "SESSION_RENEWAL_FAILED"]


def test_with_on_refusal_off_a_refusal_ends_the_session_at_once():
    rig = Rig(issued=ist(18, 9), now=ist(18, 11), config=DailyLoginConfig(on_refusal=False))
    rig.session.refused("tok-0", "login elsewhere")
    assert rig.session.state is SessionState.FAILED and "on_refusal is off" in rig.session.failure.message
    assert not rig.at(ist(18, 11)) and rig.login.calls == 0


def test_without_a_login_time_the_session_ends_when_the_token_dies():
    rig = Rig(issued=ist(18, 10), config=DailyLoginConfig(time_ist=None))
    assert rig.session.next_login_at is None and rig.session.state is SessionState.LIVE
    rig.clock.at = ist(19, 6)
    assert rig.session.state is SessionState.FAILED and "daily_login.time_ist is null" in rig.session.failure.message
    assert rig.kinds() == ["SESSION_RENEWAL_FAILED"] and rig.login.calls == 0


def test_a_refusal_of_the_dead_token_waits_for_the_daily_login():
    rig = Rig(issued=ist(18, 10), now=ist(19, 7))
    rig.session.refused("tok-0", "expired")
    assert rig.session.state is SessionState.EXPIRED and rig.session.renewal_pending("tok-0")
    assert "08:45" in rig.session.expired_reason()
    assert not rig.at(ist(19, 7, 30)) and rig.login.calls == 0
    assert rig.at(ist(19, 8, 45)) and rig.login.calls == 1


def test_the_thread_logs_in_by_itself_and_stops():
    rig = Rig(issued=ist(18, 10), now=ist(19, 8))
    session = rig.session
    session.start()
    try:
        rig.clock.at = ist(19, 8, 45)
        wait_until(lambda: session.generation == 1, timeout=5, message="scheduled login on the thread")
        rig.clock.at = ist(19, 11)
        session.refused("tok-1", "login elsewhere")  # wakes the thread at once
        wait_until(lambda: session.generation == 2, timeout=5, message="login after the refusal")
        assert rig.login.calls == 2 and rig.holder.tokens == ["tok-1", "tok-2"]
    finally:
        session.stop()
    assert not session.running


def test_while_a_login_runs_the_state_is_renewing_and_the_old_token_is_in_use():
    rig = Rig(issued=ist(18, 9), now=ist(18, 11))
    rig.login.gate = threading.Event()
    rig.session.refused("tok-0", "login elsewhere")
    worker = threading.Thread(target=rig.session.run_pending)
    worker.start()
    wait_until(lambda: rig.login.calls == 1, timeout=5, message="login started")
    assert rig.session.state is SessionState.RENEWING and rig.session.token == "tok-0" and rig.holder.tokens == []
    rig.login.gate.set()
    worker.join(5)
    assert rig.session.state is SessionState.LIVE and rig.holder.tokens == ["tok-1"]


def test_the_socket_token_names_the_app_and_follows_the_session():
    rig = Rig(issued=ist(18, 9), now=ist(18, 11))
    source = rig.session.socket_token("VENUESIM01-100")
    assert source() == "VENUESIM01-100:tok-0" and "tok-0" not in repr(source)
    source.refused("VENUESIM01-100:tok-0", "403 at the handshake")
    assert source.renewal_pending("VENUESIM01-100:tok-0")
    rig.at(ist(18, 11))
    assert source() == "VENUESIM01-100:tok-1" and not source.renewal_pending("VENUESIM01-100:tok-0")
