"""The matching engine's socket payloads through the official SDK's own parser, determinism,
listeners and thread safety."""

from __future__ import annotations

import json
import threading

import pytest

from fyers_sim.engine import EngineConfig, MatchingEngine
from support.sim_engine import FUT, MD, SBIN, T0, engine, order, ticks_after

order_ws = pytest.importorskip("fyers_apiv3.FyersWebsocket.order_ws")

ORDER_KEYS = ["clientId", "id", "exchOrdId", "qty", "remainingQuantity", "filledQty",
              "limitPrice", "stopPrice", "tradedPrice", "type", "fyToken", "exchange", "segment",
              "symbol", "instrument", "message", "offlineOrder", "orderDateTime",
              "orderValidity", "productType", "side", "status", "source", "ex_sym",
              "description", "orderTag", "takeProfit", "stopLoss", "id_fyers"]
TRADE_KEYS = ["tradeNumber", "orderNumber", "tradedQty", "tradePrice", "tradeValue",
              "productType", "clientId", "exchangeOrderNo", "orderType", "side", "symbol",
              "orderDateTime", "fyToken", "exchange", "segment", "orderTag"]
POSITION_KEYS = ["symbol", "id", "buyAvg", "buyQty", "buyVal", "sellAvg", "sellQty", "sellVal",
                 "netAvg", "netQty", "side", "qty", "productType", "realized_profit",
                 "rbiRefRate", "fyToken", "exchange", "segment", "dayBuyQty", "daySellQty",
                 "cfBuyQty", "cfSellQty", "qtyMulti_com", "pl", "crossCurrency",
                 "unrealized_profit"]


@pytest.fixture
def sdk(tmp_path):
    """Feed a raw server message (JSON text) through FyersOrderSocket's own dispatch/mapping."""
    got: list[tuple[str, dict]] = []
    sock = order_ws.FyersOrderSocket(
        access_token="XY00001-100:token", log_path=str(tmp_path), reconnect=False,
        on_orders=lambda m: got.append(("orders", m)),
        on_trades=lambda m: got.append(("trades", m)),
        on_positions=lambda m: got.append(("positions", m)),
        on_general=lambda m: got.append(("general", m)),
        on_error=lambda m: got.append(("error", m)))

    def parse(kind: str, raw: dict) -> dict:
        got.clear()
        sock._FyersOrderSocket__on_message(json.dumps({kind: raw, "s": "ok"}))
        ((cb, msg),) = got
        assert cb == kind and msg["s"] == "ok"
        return msg[kind]

    return parse


def test_sdk_maps_order_trade_and_position_messages_to_the_rest_shapes(sdk):
    e, ev = engine(min_slices=2, max_slices=2)
    oid = e.place(order(qty=10, orderTag="sdk1"), T0)["id"]
    ack = sdk("orders", ev.of("orders", oid)[0])
    assert ack["status"] == 4 and ack["exchOrdId"] is None and ack["filledQty"] == 0
    first = ticks_after(SBIN, T0, T0 + 60)[0]
    e.advance(first.epoch)                          # exactly one slice has filled
    rest_order = e.orderbook(first.epoch, order_id=oid)["orderBook"][0]
    got = sdk("orders", ev.of("orders", oid)[-1])
    assert got == {k: rest_order[k] for k in ORDER_KEYS}
    assert got["status"] == 6 and 0 < got["filledQty"] < 10 and got["orderTag"] == "1:sdk1"
    assert "parentId" not in got and "legType" not in got

    (rest_trade,) = e.tradebook(first.epoch)["tradeBook"]
    got = sdk("trades", ev.of("trades")[-1])
    assert got == {**{k: rest_trade[k] for k in TRADE_KEYS}, "id_fyers": rest_order["id_fyers"]}

    (rest_pos,) = e.positions(first.epoch)["netPositions"]
    got = sdk("positions", ev.of("positions")[-1])
    assert got == {**{k: rest_pos[k] for k in POSITION_KEYS}, "takeProfit": 0, "stopLoss": 0}
    assert "ltp" not in got                         # the SDK mapper has no ltp


def test_every_raw_key_is_known_to_the_sdk_mapper_or_a_documented_extra(sdk):
    e, ev = engine()
    e.place(order(qty=10), T0)
    e.advance(T0 + 60)
    with open(order_ws.resource_filename("fyers_apiv3.FyersWebsocket", "map.json")) as fh:
        mapper = json.load(fh)
    extras = {
        "orders": {"id_fyers", "lot_size", "oms_flag", "ord_status", "pan", "precision",
                   "price_multiplier", "qty_multiplier", "report_type", "status_msg",
                   "tick_size", "time_epoch_oms", "time_exch", "update_time_epoch_oms",
                   "update_time_exch"},
        "trades": {"id_fyers"},
        "positions": {"ltp"},
    }
    for kind, raw in ev.items:
        known = set(mapper[kind[:-1] + "_mapper"]) | extras[kind]
        assert set(raw) <= known, (kind, set(raw) - known)
        json.dumps(raw)                              # plain JSON values only


def scenario(e: MatchingEngine) -> list:
    """A fixed sequence of calls; returns every REST reply it produced."""
    out = [e.place(order(qty=10, orderTag="d1"), T0),
           e.place(order(symbol=FUT, productType="MARGIN", qty=65 * 3, side=-1), T0 + 1),
           e.place(order(type=1, limitPrice=700.0), T0 + 2)]
    e.advance(T0 + 20)
    limit_id = out[2]["id"]
    out += [e.modify({"id": limit_id, "qty": 20}, T0 + 21), e.cancel({"id": limit_id}, T0 + 22),
            e.exit_positions({"id": "NSE:SBIN-EQ-INTRADAY"}, T0 + 30)]
    e.advance(T0 + 90)
    now = T0 + 90
    out += [e.orderbook(now), e.tradebook(now), e.positions(now), e.funds(now), e.holdings(now)]
    return out


def test_same_seed_same_calls_same_everything():
    (e1, ev1), (e2, ev2) = engine(seed=5), engine(seed=5)
    assert scenario(e1) == scenario(e2)
    assert ev1.items == ev2.items and len(ev1.items) > 20
    e3, ev3 = engine(seed=6)
    out1, out3 = scenario(engine(seed=5)[0]), scenario(e3)
    assert [r["id"] for r in out1[:3]] == [r["id"] for r in out3[:3]]   # ids are sequential
    book1, book3 = out1[6]["orderBook"], out3[6]["orderBook"]
    assert [r["id_fyers"] for r in book1] != [r["id_fyers"] for r in book3]  # uuids are seeded


def test_fill_slicing_depends_on_the_seed():
    counts = set()
    for seed in range(8):
        e, ev = engine(seed=seed)
        e.place(order(qty=40), T0)
        e.advance(T0 + 60)
        counts.add(tuple(f["qty_traded"] for f in ev.of("trades")))
    assert len(counts) > 1
    assert all(2 <= len(c) <= 4 and sum(c) == 40 for c in counts)


def test_a_failing_listener_does_not_break_the_engine_and_others_still_hear():
    e, ev = engine()
    seen = []

    def broken(kind, raw):
        raw["qty"] = -1                             # mutating its copy affects nobody else
        raise RuntimeError("listener bug")

    e.add_listener(broken)
    e.add_listener(lambda kind, raw: seen.append(raw["qty"]))
    oid = e.place(order(), T0)["id"]
    assert ev.statuses(oid) == [4, 6] and seen == [10, 10]


def test_listeners_fire_in_order_after_the_state_change():
    e = MatchingEngine(MD, seed=1, config=EngineConfig(min_slices=1, max_slices=1))
    snapshots = []
    e.add_listener(lambda kind, raw: snapshots.append((kind, raw.get("org_ord_status"),
                                                        len(e.orders()))))
    e.place(order(), T0)
    e.advance(T0 + 30)
    assert snapshots == [("orders", 4, 1), ("orders", 6, 1), ("orders", 2, 1),
                         ("trades", None, 1), ("positions", None, 1)]


def test_concurrent_calls_are_serialised():
    e, ev = engine(opening_balance=1e9)
    ids: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for j in range(10):
            oid = e.place(order(qty=1), T0 + j)["id"]
            with lock:
                ids.append(oid)
            e.advance(T0 + j + k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 40
    e.advance(T0 + 120)
    assert all(r["status"] == 2 for r in e.orders())
    assert sum(t["tradedQty"] for t in e.trades()) == 40
    assert e.net_positions()[0]["netQty"] == 40
