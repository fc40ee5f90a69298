"""Market price protection at the venue (src/fyers_sim/mpp.py): market and triggered SL-M orders
become limits at LTP +/- the documented band, fill inside it, rest beyond it, expire at the close."""

from __future__ import annotations

import datetime as dt

import pytest

from fyers_sim.instruments import UNIVERSE
from fyers_sim.mpp import circuit_limits, protection_band, protection_price
from fyers_sim.orderbook import BUY, SELL
from support.clocks import at
from support import mpp_gaps as gaps
from support.sim_engine import CALL, DAY, FUT, MD, SBIN, T0, ask, engine, order, ticks_after

# A band so narrow (0.001 % of ~800 = Rs 0.008) that the protection price is the LTP itself: a buy
# rests whenever the ask is above the LTP it was placed at. It makes "beyond the band" easy to find
# in the seeded market; the band arithmetic itself is checked on its own below.
NARROW = {"mpp_equity_percent": 0.001, "min_slices": 1, "max_slices": 1}


def cap_at(symbol: str, side: int, now: float, percent: float = 1.5) -> float:
    t = MD.last_tick(symbol, now)
    return protection_price(MD.instrument(symbol), side, t.ltp, t.prev_close, percent)


def row(e, oid: str, now: float) -> dict:
    (r,) = e.orderbook(now, order_id=oid)["orderBook"]
    return r


def first_gap(symbol: str, start: float, stop: float, hold: int) -> float:
    """The first whole minute in [start, stop) after which a protected buy must rest ``hold`` s."""
    return gaps.first_gap(symbol, range(int(start), int(stop), 60), hold)


# ---------------------------------------------------------------------------- the bands
@pytest.mark.parametrize("symbol, ltp, band", [
    (FUT, 9_000.0, 50.0), (FUT, 10_000.0, 50.0), (FUT, 20_000.0, 100.0),      # index futures
    (CALL, 8.0, 1.5), (CALL, 10.0, 1.5), (CALL, 15.0, 2.25), (CALL, 20.0, 3.0),  # options
    (CALL, 100.0, 10.0),
    (SBIN, 800.0, 12.0),                                                       # cash: 1.5 % (inferred)
])
def test_documented_bands(symbol, ltp, band):
    assert protection_band(UNIVERSE[symbol], ltp) == pytest.approx(band)


def test_stock_future_bands_and_the_configurable_cash_band():
    from dataclasses import replace

    stock_fut = replace(UNIVERSE[FUT], inst_type=13)  # FUTSTK: not in the venue's universe
    assert protection_band(stock_fut, 40.0) == 0.75
    assert protection_band(stock_fut, 200.0) == pytest.approx(3.0)
    assert protection_band(UNIVERSE[SBIN], 800.0, equity_percent=0.5) == pytest.approx(4.0)


def test_protection_price_is_rounded_to_the_tick_and_clamped_to_the_circuit():
    ins = UNIVERSE[SBIN]
    assert protection_price(ins, BUY, 800.0, None) == 812.0
    assert protection_price(ins, SELL, 800.0, None) == 788.0
    assert protection_price(ins, BUY, 801.23, None) == 813.25   # 813.2485 -> nearest tick
    lower, upper = circuit_limits(ins, 760.0)                   # venue circuit: +/- 10 %
    assert (lower, upper) == (684.0, 836.0)
    assert protection_price(ins, BUY, 830.0, 760.0) == upper    # 842.45 breaches the upper circuit
    assert protection_price(ins, SELL, 690.0, 760.0) == lower
    assert protection_price(UNIVERSE[CALL], SELL, 1.0, None) == 0.05  # never below one tick


# ---------------------------------------------------------------------------- the engine
def test_market_order_fills_inside_the_band_and_shows_its_protection_price():
    e, ev = engine()
    oid = e.place(order(qty=10), T0)["id"]
    cap = cap_at(SBIN, BUY, T0)
    booked = row(e, oid, T0)
    assert (booked["type"], booked["limitPrice"], booked["status"]) == (2, cap, 6)
    assert [r["price_limit"] for r in ev.of("orders", oid)] == [cap, cap]      # New Ack, Confirmed
    e.advance(T0 + 60)
    done = row(e, oid, T0 + 60)
    assert done["status"] == 2 and done["filledQty"] == 10
    assert all(t["tradePrice"] <= cap for t in e.tradebook(T0 + 60)["tradeBook"])
    assert cap == pytest.approx(MD.last_tick(SBIN, T0).ltp * 1.015, abs=0.05)


def test_market_order_rests_when_the_price_gaps_past_the_band_and_fills_when_it_returns():
    t0 = first_gap(SBIN, T0, at(DAY, 15, 0), hold=30)
    e, ev = engine(**NARROW)
    oid = e.place(order(qty=5, productType="CNC"), t0)["id"]
    cap = cap_at(SBIN, BUY, t0, NARROW["mpp_equity_percent"])
    e.advance(t0 + 30)
    resting = row(e, oid, t0 + 30)
    assert (resting["status"], resting["filledQty"], resting["limitPrice"]) == (6, 0, cap)
    back = next(x for x in ticks_after(SBIN, t0, at(DAY, 15, 30)) if ask(x) <= cap)
    e.advance(back.epoch)
    (trade,) = e.tradebook(back.epoch)["tradeBook"]
    assert (trade["tradePrice"], trade["tradedQty"]) == (ask(back), 5) and ask(back) <= cap
    assert ev.statuses(oid) == [4, 6, 2]


def test_a_resting_protected_order_can_be_cancelled():
    t0 = first_gap(SBIN, T0, at(DAY, 15, 0), hold=30)
    e, ev = engine(**NARROW)
    oid = e.place(order(qty=5), t0)["id"]
    e.advance(t0 + 30)
    assert e.cancel({"id": oid}, t0 + 30)["code"] == 1103
    assert ev.statuses(oid) == [4, 6, 1] and e.tradebook(t0 + 30)["tradeBook"] == []


def test_a_protected_day_order_left_at_the_close_expires():
    close = at(DAY, 15, 30)
    for t0 in range(close - 10, close - 1800, -10):  # CNC: INTRADAY is squared off at 15:20
        cap = cap_at(SBIN, BUY, t0, NARROW["mpp_equity_percent"])
        if all(ask(x) > cap for x in ticks_after(SBIN, t0, close)):
            break
    else:
        raise AssertionError("no gap to the close in the seeded market")
    e, ev = engine(**NARROW)
    oid = e.place(order(qty=5, productType="CNC"), t0)["id"]
    e.advance(close + 60)
    assert ev.statuses(oid) == [4, 6, 7]
    assert row(e, oid, close + 60)["message"] == "Order expired at the session close"


def test_a_triggered_sl_m_order_is_protected_from_its_trigger_tick():
    ltp0 = MD.last_tick(SBIN, T0).ltp
    stop = round(round((ltp0 + 0.5) / 0.05) * 0.05, 2)
    trigger = next(x for x in ticks_after(SBIN, T0, at(DAY, 15, 0)) if x.ltp >= stop)
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(type=3, stopPrice=stop, qty=4), T0)["id"]
    assert row(e, oid, T0)["limitPrice"] == 0.0                 # not triggered: no cap yet
    e.advance(trigger.epoch)
    cap = protection_price(MD.instrument(SBIN), BUY, trigger.ltp, trigger.prev_close)
    after = row(e, oid, trigger.epoch)
    assert (after["type"], after["stopPrice"], after["limitPrice"]) == (3, stop, cap)
    e.advance(trigger.epoch + 60)
    assert all(t["tradePrice"] <= cap for t in e.tradebook(trigger.epoch + 60)["tradeBook"])


def test_protection_can_be_turned_off():
    e, _ = engine(market_protection=False)
    oid = e.place(order(qty=10), T0)["id"]
    assert row(e, oid, T0)["limitPrice"] == 0.0


def _near_money_call() -> str:
    """A Dec-2026 NIFTY call near the money at T0 (option prices derive from the index)."""
    spot = MD.last_tick("NSE:NIFTY50-INDEX", T0).ltp
    calls = [c for c in MD.contracts_on(DAY, "NIFTY") if c.option_type == "CE"
             and c.expiry_date == MD.instrument(CALL).expiry_date]
    return min(calls, key=lambda c: abs(c.strike - spot)).symbol


def test_option_sells_are_capped_below_the_ltp():
    call = _near_money_call()
    e, _ = engine(min_slices=1, max_slices=1)
    e.place(order(symbol=call, productType="MARGIN", qty=65), T0)
    e.advance(T0 + 30)
    oid = e.place(order(symbol=call, productType="MARGIN", qty=65, side=-1), T0 + 30)["id"]
    t = MD.last_tick(call, T0 + 30)
    assert t.ltp > 20
    cap = row(e, oid, T0 + 30)["limitPrice"]
    assert cap == protection_price(MD.instrument(call), SELL, t.ltp, t.prev_close) < t.ltp
    assert cap == pytest.approx(t.ltp * 0.9, abs=0.05)           # LTP > 20: 10 %


# ---------------------------------------------------------------------------- through the SDK
@pytest.fixture
def narrow_venue(tmp_path, monkeypatch):
    from fyers_apiv3.FyersWebsocket import order_ws

    from fyers_sim.engine import EngineConfig
    from fyers_sim.testing import running_venue
    from fyers_sim.venue import VenueAccount
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    account = VenueAccount()
    cfg = EngineConfig(client_id=account.fy_id, **NARROW)
    with running_venue(seed=7, account=account, engine_config=cfg) as v:
        urls = v.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            yield v


def test_sdk_client_sees_a_resting_protected_market_order(narrow_venue, tmp_path):
    from fyers_apiv3 import fyersModel

    venue = narrow_venue
    start = venue.clock.time()
    t0 = first_gap(SBIN, start + 60, at(DAY, 15, 0), hold=30)
    venue.set_time(dt.datetime.fromtimestamp(t0, dt.timezone.utc))
    fy = fyersModel.FyersModel(client_id=venue.account.app_id, token=venue.access_token(), is_async=False,
                               log_path=str(tmp_path))
    reply = fy.place_order({"symbol": SBIN, "qty": 3, "type": 2, "side": 1, "productType": "CNC",
                            "limitPrice": 0, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0,
                            "offlineOrder": False, "orderTag": "mpp1"})
    assert reply["code"] == 1101, reply
    venue.advance(30)
    (o,) = fy.orderbook({"id": reply["id"]})["orderBook"]
    cap = cap_at(SBIN, BUY, t0, NARROW["mpp_equity_percent"])
    assert (o["type"], o["limitPrice"], o["status"], o["filledQty"], o["orderTag"]) == (2, cap, 6, 0, "1:mpp1")
    assert fy.cancel_order({"id": reply["id"]})["code"] == 1103
