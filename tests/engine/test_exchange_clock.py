"""ExchangeClock: the exchange's time estimated from tick stamps (src/fyers_store/engine/exchange_clock.py)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from fyers_store.engine.exchange_clock import ExchangeClock
from fyers_store.models.stream import Tick
from support.clocks import UTC, ManualClock

T0 = dt.datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # 09:30 IST


def tick(stamp_s: float | None, received_s: float, *, ltt_s: float | None = None) -> Tick:
    """A tick stamped ``stamp_s`` seconds after T0 by the exchange, received ``received_s`` after T0."""
    rel = lambda s: None if s is None else T0 + dt.timedelta(seconds=s)  # noqa: E731
    return Tick("NSE:SBIN-EQ", 100.0, rel(received_s), exchange_time=rel(stamp_s), last_traded_time=rel(ltt_s))


def test_no_observation_means_no_offset():
    clock = ExchangeClock(ManualClock(T0))
    assert clock.offset_seconds == 0.0
    assert clock.now() == T0 and clock() == T0


def test_offset_is_the_least_delayed_tick():
    wall = ManualClock(T0)
    clock = ExchangeClock(wall)
    # the local clock runs 3 s fast; ticks arrive 0.2-0.9 s after their whole-second stamps
    for stamp, delay in ((10, 0.9), (11, 0.2), (12, 0.5)):
        clock.observe(tick(stamp, stamp + 3 + delay))
    assert clock.offset_seconds == pytest.approx(-3.2)
    wall.now = T0 + dt.timedelta(seconds=20)
    assert clock.now() == T0 + dt.timedelta(seconds=16.8)
    assert clock.now().tzinfo == UTC


def test_last_traded_time_counts_as_evidence_too():
    clock = ExchangeClock(ManualClock(T0))
    clock.observe(tick(None, 5.0, ltt_s=4.0))
    assert clock.offset_seconds == pytest.approx(-1.0)
    clock.observe(tick(3.0, 5.0, ltt_s=4.5))  # the later of the two stamps
    assert clock.offset_seconds == pytest.approx(-0.5)


def test_ticks_without_exchange_times_are_ignored():
    clock = ExchangeClock(ManualClock(T0))
    clock.observe(Tick("NSE:SBIN-EQ", 100.0, T0, lite=True))
    assert clock.offset_seconds == 0.0
    clock.observe(tick(0.0, 2.0))
    clock.observe(Tick("NSE:SBIN-EQ", 100.0, T0 + dt.timedelta(seconds=30), lite=True))
    assert clock.offset_seconds == pytest.approx(-2.0)


def test_the_bounded_window_follows_a_changed_offset():
    clock = ExchangeClock(ManualClock(T0), window=4)
    for i in range(4):
        clock.observe(tick(i, i + 0.1))
    assert clock.offset_seconds == pytest.approx(-0.1)
    # the local clock is stepped 5 s forward: the old, larger candidates age out of the window
    for i in range(4, 7):
        clock.observe(tick(i, i + 5.3))
        assert clock.offset_seconds == pytest.approx(-0.1)
    clock.observe(tick(7, 7 + 5.3))
    assert clock.offset_seconds == pytest.approx(-5.3)
    clock.observe(tick(8, 8 + 5.2))
    assert clock.offset_seconds == pytest.approx(-5.2)
    # and stepped back: a larger candidate takes over at once
    clock.observe(tick(9, 9 + 0.05))
    assert clock.offset_seconds == pytest.approx(-0.05)


def test_window_must_be_positive():
    with pytest.raises(ValueError):
        ExchangeClock(window=0)


def test_default_wall_is_aware_utc_now():
    before = dt.datetime.now(UTC)
    got = ExchangeClock().now()
    assert got.tzinfo == UTC and before <= got <= dt.datetime.now(UTC)


def test_concurrent_observe_and_now():
    clock = ExchangeClock(ManualClock(T0), window=8)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(2000):
                assert -1.0 <= (clock.now() - T0).total_seconds() <= 0.0
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(2000):
        clock.observe(tick(i, i + 0.1 + (i % 7) / 10))
    for t in threads:
        t.join()
    assert errors == [] and clock.offset_seconds == pytest.approx(-0.1)


def test_wall_now_and_exchange_time_use_the_host_clock_and_the_learnt_offset():
    wall = ManualClock(T0)
    clock = ExchangeClock(wall)
    clock.observe(tick(10, 13.2))  # host 3.2 s ahead of the stamp
    assert clock.wall_now() == T0
    assert clock.exchange_time(T0 + dt.timedelta(seconds=13.2)) == T0 + dt.timedelta(seconds=10)


@pytest.mark.parametrize("skew", [5.0, -0.3])
def test_ticks_stamped_on_the_host_wall_clock_keep_the_offset_through_many_windows(skew):
    """The data socket stamps ``received_at`` with ``wall_now`` (a host clock ``skew`` s off the
    exchange); each tick arrives 0.05-0.45 s after its whole-second stamp. The offset stays at
    -skew less the smallest delay, window after window (stamped with ``now``, it fell to ~0)."""
    exchange = ManualClock(T0)
    clock = ExchangeClock(lambda: exchange.now + dt.timedelta(seconds=skew), window=8)
    for i in range(100):
        exchange.now = T0 + dt.timedelta(seconds=i, milliseconds=50 + (i * 70) % 400)
        stamp = T0 + dt.timedelta(seconds=i)
        clock.observe(Tick("NSE:SBIN-EQ", 100.0, clock.wall_now(), exchange_time=stamp))
        if i >= 8:
            assert -skew - 0.45 <= clock.offset_seconds <= -skew - 0.05
