"""What the library reads from a local venue over HTTP: where it listens, a paper token, its clock."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
import requests

from fyers_store.adapters.venue import VenueClock, discover_venue, venue_root, venue_token
from fyers_store.errors import ConfigError, OutcomeUnknown

UTC = dt.timezone.utc


class Ticks:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class ScriptedSession:
    """Stands in for requests.Session: answers each GET with the next scripted venue time, or raises
    the scripted exception; counts the requests."""

    def __init__(self, *answers: float | Exception) -> None:
        self.answers = list(answers)
        self.gets = 0
        self.closed = False
        self.hold: threading.Event | None = None     # when set: a GET waits for it
        self.entered = threading.Event()

    def get(self, url: str, timeout: float) -> object:
        self.gets += 1
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(5.0)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return _Reply({"s": "ok", "time": answer})

    def close(self) -> None:
        self.closed = True


class _Reply:
    def __init__(self, body: dict) -> None:
        self.body = body

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict:
        return self.body


def test_a_reading_is_reused_for_max_age_then_read_again():
    ticks = Ticks()
    session = ScriptedSession(1000.0, 1030.0)
    clock = VenueClock("http://venue", max_age=0.02, monotonic=ticks, session=session)
    assert clock.time() == 1000.0 and session.gets == 1  # the reading made at construction
    ticks.t += 0.01
    assert clock.now() == dt.datetime.fromtimestamp(1000.0, UTC) and session.gets == 1
    ticks.t += 0.02
    assert clock() == dt.datetime.fromtimestamp(1030.0, UTC) and session.gets == 2


def test_a_silent_venue_leaves_the_last_time_warns_once_and_is_asked_again_every_retry_seconds(caplog):
    caplog.set_level(logging.INFO, logger="fyers_store.adapters.venue")
    ticks = Ticks()
    down = requests.ConnectionError("refused")
    session = ScriptedSession(1000.0, down, down, down, 2000.0)
    clock = VenueClock("http://venue", max_age=0.0, retry_seconds=1.0, monotonic=ticks, session=session)
    ticks.t += 0.5
    assert clock.time() == 1000.0 and session.gets == 2  # failed: the last reading stands
    ticks.t += 0.5
    assert clock.time() == 1000.0 and session.gets == 2  # not asked again before retry_seconds
    ticks.t += 0.6
    assert clock.time() == 1000.0 and session.gets == 3
    ticks.t += 1.1
    assert clock.time() == 1000.0 and session.gets == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "http://venue/admin/clock did not answer" in warnings[0].getMessage()
    ticks.t += 1.1
    assert clock.time() == 2000.0 and session.gets == 5
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_while_one_thread_reads_the_others_get_the_last_time_at_once():
    ticks = Ticks()
    session = ScriptedSession(1000.0, 1060.0)
    clock = VenueClock("http://venue", max_age=0.0, monotonic=ticks, session=session)
    session.hold, session.entered = threading.Event(), threading.Event()
    ticks.t += 1.0
    reader = threading.Thread(target=clock.time)
    reader.start()
    assert session.entered.wait(5.0)              # the reader is inside its HTTP request
    assert clock.time() == 1000.0                 # no second request, no waiting for the first
    session.hold.set()
    reader.join(5.0)
    assert clock.time() == 1060.0 and session.gets == 3
    clock.close()
    assert session.closed and clock.time() == 1060.0 and session.gets == 3  # closed: never asks again


def test_a_venue_without_a_clock_is_refused_at_once():
    with pytest.raises(OutcomeUnknown, match="read the venue clock.*http://venue/admin/clock"):
        VenueClock("http://venue", session=ScriptedSession(requests.ConnectionError("refused")))
    with pytest.raises(OutcomeUnknown):
        VenueClock("http://venue", session=ScriptedSession(float("nan")))


def test_the_clock_follows_a_running_venue_it_only_reaches_over_http(venue):
    clock = VenueClock(venue.urls.rest, max_age=0.0)
    try:
        assert clock.time() == venue.clock.time()
        venue.advance(90)
        assert clock.now() == venue.clock.now()
        venue.set_time(dt.datetime(2026, 11, 16, 9, 15, tzinfo=UTC))  # back in time too
        assert clock.now() == dt.datetime(2026, 11, 16, 9, 15, tzinfo=UTC)
    finally:
        clock.close()


def test_discovery_finds_the_sockets_and_the_paper_account(venue):
    info = discover_venue(venue_root(venue.urls.api + "/", "test", "venue"), source="test", key="venue")
    assert (info.rest, info.order_ws, info.data_ws) == (venue.urls.rest, venue.urls.order_ws, venue.urls.data_ws)
    assert (info.app_id, info.fy_id) == (venue.account.app_id, venue.account.fy_id)
    assert info.endpoints.api == venue.urls.api
    token = venue_token(info)
    profile = requests.get(venue.urls.api + "/profile", timeout=5,
                           headers={"Authorization": f"{info.app_id}:{token}"}).json()
    assert profile["s"] == "ok" and profile["data"]["fy_id"] == venue.account.fy_id


def test_a_server_that_is_no_venue_is_a_config_error_naming_the_setting(venue):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(ConfigError) as err:
            discover_venue(dead, source="creds.yaml", key="api_base_url", timeout=2.0)
    assert str(err.value).startswith(f"creds.yaml: api_base_url: {dead} is not FYERS")
    assert "is the venue running?" in str(err.value)
    with pytest.raises(ConfigError, match="/admin/venue gave no venue answer"):
        discover_venue(venue.urls.rest + "/api/v3", source="s", key="k")  # a FYERS-like 404, not a venue


@pytest.mark.parametrize("bad", ["127.0.0.1:8080", "ftp://127.0.0.1:1", "http://", "http://h:1/?x=1", ""])
def test_a_venue_url_must_be_an_http_url(bad):
    with pytest.raises(ConfigError, match=r"^src: venue: expected the venue's URL like http://127.0.0.1:PORT"):
        venue_root(bad, "src", "venue")
