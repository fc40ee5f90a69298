"""Shared parts of the daily-login evidence (issue 17): a Cerebro run with live ``FyersData`` feeds and
``FyersBroker`` on the venue across three trading days, its strategy and its config directory. Used by
``tests/bt/test_daily_login.py`` (stepped venue clock) and ``tests/bt/test_daily_login_accelerated.py``
(accelerated venue clock)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import shutil
import threading
from pathlib import Path

import backtrader as bt
import yaml

from fyers_store import FyersStore
from fyers_store.config import WsConfig
from support.broker_cerebro import marketable
from support.clocks import IST
from support.paths import SHIPPED_CONFIG

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
SYMBOLS = (SBIN, INFY)
DAYS = (dt.date(2026, 11, 20), dt.date(2026, 11, 23), dt.date(2026, 11, 25))
STEP = 300  # one 5-minute bar per step
BUY_BAR, SELL_BAR = dt.time(9, 30), dt.time(11, 0)  # bar starts at which the strategy trades
INVALIDATED_AT = dt.datetime(2026, 11, 23, 10, 2, tzinfo=IST)


def at(day: dt.date, hour: int, minute: int = 0, second: float = 0.0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), IST) + dt.timedelta(seconds=second)


class Trader(bt.Strategy):
    """Records every bar, order notification and store notification; buys 10 SBIN at the 09:30 bar
    of each day and sells them at the 11:00 bar (marketable limits, CNC)."""

    params = (("run", None),)

    def start(self):
        self.p.run.starts += 1

    def notify_order(self, order):
        self.p.run.orders.append((order.ref, order.getstatusname(), order.info.get("order_tag")))

    def notify_store(self, msg, *args, **kwargs):
        self.p.run.store_notes.append((msg, args))

    def prenext(self):
        self.next()

    def next(self):
        run = self.p.run
        for d in self.datas:
            if not len(d):  # prenext: this feed has no bar yet
                continue
            when = d.datetime.datetime(0)
            if (not run.bars[d._name] or run.bars[d._name][-1][0] != when):
                run.bars[d._name].append((when, d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0]))
        sbin = self.getdatabyname(SBIN)
        if not len(sbin):
            return
        when = sbin.datetime.datetime(0)
        if when.time() in (BUY_BAR, SELL_BAR) and (when.date(), when.time()) not in run.traded:
            run.traded.add((when.date(), when.time()))
            buy = when.time() == BUY_BAR
            price = marketable(sbin.close[0], _side(buy))
            order = (self.buy if buy else self.sell)(data=sbin, size=10, exectype=bt.Order.Limit, price=price,
                                                     product_type="CNC")
            run.placed[when.date()].append(order)


def _side(buy: bool):
    from fyers_store.models.orders import Side

    return Side.BUY if buy else Side.SELL


class Run:
    def __init__(self, store: FyersStore, **feed_kwargs: object) -> None:
        self.store = store
        self.starts = 0
        self.bars: dict[str, list[tuple]] = collections.defaultdict(list)
        self.orders: list[tuple] = []
        self.store_notes: list[tuple] = []
        self.traded: set = set()
        self.placed: dict[dt.date, list[bt.Order]] = collections.defaultdict(list)
        self.error: BaseException | None = None
        self.cerebro = bt.Cerebro(quicknotify=True, stdstats=False)
        for sym in SYMBOLS:
            kwargs = {"backfill_start": False, **feed_kwargs}
            self.cerebro.adddata(store.getdata(dataname=sym, resolution="5", qcheck=0.05, **kwargs), name=sym)
        self.broker = store.getbroker(strategy_id="daily")
        self.cerebro.setbroker(self.broker)
        self.cerebro.addstrategy(Trader, run=self)
        self.thread = threading.Thread(target=self._run, name="cerebro", daemon=True)

    def _run(self) -> None:
        try:
            self.cerebro.run()
        except BaseException as exc:  # surfaced by check()
            self.error = exc

    def check(self) -> bool:
        if self.error is not None:
            raise self.error
        assert self.thread.is_alive(), "Cerebro stopped"
        return False

    def seen(self, symbol: str, start: dt.datetime) -> bool:
        naive = start.astimezone(IST).replace(tzinfo=None)
        return any(b[0] == naive for b in list(self.bars[symbol]))

    def notes(self, kind: str) -> list[tuple]:
        return [n for n in list(self.store_notes) if n[0] == kind]


def _edit(path: Path, **values) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(values)
    path.write_text(yaml.safe_dump(data))


def config_dir(venue, tmp_path: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, root)
    acc = venue.account
    (root / "fyers_credentials.yaml").write_text(yaml.safe_dump({
        "username": acc.fy_id, "app_id": acc.app_base, "secret_key": acc.secret_key,
        "redirect_uri": acc.redirect_uri, "totp_key": acc.totp_secret, "pin": acc.pin,
        "token_path": str(tmp_path / "secrets" / "token.json"), "sdk_log_dir": str(tmp_path / "sdk_logs"),
        "api_base_url": venue.urls.api, "login_base_url": venue.urls.login,
        "daily_login": {"time_ist": "08:45", "on_refusal": True, "min_refusal_interval_seconds": 600}}))
    _edit(root / "cache.yaml", db_path=str(tmp_path / "cache.sqlite"))
    _edit(root / "state.yaml", state_db_path=str(tmp_path / "state.sqlite"), account_id=acc.fy_id)
    _edit(root / "broker.yaml", reconcile_interval_seconds=1800, default_product_type="CNC")
    _edit(root / "data_feed.yaml", stall_warning_seconds=0)
    return root


def fast_ws(tmp_path: Path) -> WsConfig:
    return dataclasses.replace(WsConfig(), log_path=tmp_path / "sdk_logs", data_ws_subscribe_cooldown_seconds=0.0,
                               data_ws_health_check_seconds=0, reconnect_backoff_base_seconds=0.05,
                               reconnect_backoff_max_seconds=0.4, reconnect_backoff_jitter_seconds=0.0)


def reconnected(venue, store: FyersStore) -> bool:
    """Both sockets connected and the venue holds the feeds' subscriptions again (what the clock
    waits for after a swap: ticks sent before the resubscription would be lost to the test's jump)."""
    subs = venue.data_socket.subscriptions()
    return (store.data_ws.is_connected and store.order_ws.is_connected and len(subs) == 1
            and {(s, "sf") for s in SYMBOLS} <= subs[0])


def assert_days_without_restarts(run: Run, venue, store: FyersStore, booked: dict) -> None:
    """The evidence's closing checks, shared by the stepped and accelerated runs.

    No order request carried a dead token (counted at the venue); FYERS booked exactly the strategy's
    two orders a day, all filled; every 5-minute bar of every session reached the strategy once and
    equals the venue's candle; four TOTP logins (the start, Monday 08:45, after the login elsewhere,
    Wednesday 08:45) and no failed renewal.
    """
    assert run.error is None and run.starts == 1  # one run, never restarted
    assert venue.order_actions_refused_for_token() == 0
    for day in DAYS:
        assert [o.status for o in run.placed[day]] == [bt.Order.Completed] * 2
        tags = {f"1:{o.info['order_tag']}" for o in run.placed[day]}
        assert {o["orderTag"] for o in booked[day]} == tags and all(o["status"] == 2 for o in booked[day])
    for sym in SYMBOLS:
        want = []
        for day in DAYS:
            for c in venue.market.candles(sym, "5", at(day, 9, 15).timestamp(), at(day, 15, 25).timestamp()):
                want.append((dt.datetime.fromtimestamp(c[0], IST).replace(tzinfo=None), *[float(x) for x in c[1:]]))
        got = run.bars[sym]
        assert got == want, (sym, len(got), len(want), [b for b in want if b not in got][:5],
                             [b for b in got if b not in want][:5])
    assert venue.rest_requests("/vagator/v2/verify_otp") == 4
    renewed = run.notes("SESSION_RENEWED")
    assert len(renewed) == 3 and "refused" in renewed[1][1][0]
    assert not run.notes("SESSION_RENEWAL_FAILED")
    assert store.session.generation == 3 and store.auth_error is None
