"""The matching engine's account side: positions, funds, holdings, exits and the day change."""

from __future__ import annotations

import pytest

from fyers_sim.engine import OrderError
from support.clocks import at
from support.sim_engine import (
    CALL, DAY, FUT, ITC, MD, NEXT_DAY, SBIN, T0, ask, bid, engine, fyers_time, order, ticks_after,
)


def r2(x: float) -> float:
    return round(x, 2)


def fund_rows(e, now) -> dict[int, float]:
    body = e.funds(now)
    rows = body["fund_limit"]
    assert [(r["id"], r["title"]) for r in rows] == [
        (1, "Total Balance"), (2, "Utilized Amount"), (3, "Clear Balance"),
        (4, "Realized Profit and Loss"), (5, "Collaterals"), (6, "Fund Transfer"),
        (7, "Receivables"), (8, "Adhoc Limit"), (9, "Limit at start of the day"),
        (10, "Available Balance")]
    assert all(r["commodityAmount"] == 0 for r in rows)
    assert (body["s"], body["code"], body["message"]) == ("ok", 200, "")
    return {r["id"]: r["equityAmount"] for r in rows}


def only_position(e, now) -> dict:
    (row,) = e.positions(now)["netPositions"]
    return row


def test_buy_then_partial_sell_then_flat_positions_and_funds():
    e, ev = engine(min_slices=1, max_slices=1)
    tape = ticks_after(SBIN, T0, T0 + 600)
    e.place(order(qty=10), T0)
    e.advance(tape[0].epoch)
    p1 = ask(tape[0])
    now = tape[0].epoch
    row = only_position(e, now)
    assert (row["netQty"], row["avgPrice"], row["unrealized_profit"]) == (
        10, p1, r2((tape[0].ltp - p1) * 10))
    funds = fund_rows(e, now)
    assert funds[2] == r2(10 * p1 * 0.2) and funds[10] == r2(1_000_000 - 10 * p1 * 0.2)

    e.place(order(qty=4, side=-1), now)
    e.advance(tape[1].epoch)
    p2, now = bid(tape[1]), tape[1].epoch
    later = now + 100
    ltp = MD.last_tick(SBIN, later).ltp
    body = e.positions(later)
    row = body["netPositions"][0]
    realized = r2(4 * (p2 - p1))
    unrealized = r2((ltp - p1) * 6)
    expected = {
        "symbol": SBIN, "id": "NSE:SBIN-EQ-INTRADAY", "netQty": 6, "qty": 6, "avgPrice": p1,
        "netAvg": r2((10 * p1 - 4 * p2) / 6), "side": 1, "productType": "INTRADAY",
        "realized_profit": realized, "unrealized_profit": unrealized,
        "pl": r2(realized + unrealized), "ltp": ltp, "buyQty": 10, "buyAvg": p1,
        "buyVal": r2(10 * p1), "sellQty": 4, "sellAvg": p2, "sellVal": r2(4 * p2), "slNo": 1,
        "fyToken": "10100000003045", "crossCurrency": "N", "rbiRefRate": 1.0,
        "qtyMulti_com": 1.0, "segment": 10, "exchange": 10, "cfBuyQty": 0, "cfSellQty": 0,
        "dayBuyQty": 10, "daySellQty": 4,
    }
    assert row == expected
    assert body["overall"] == {"count_total": 1, "count_open": 1,
                               "pl_total": r2(realized + unrealized),
                               "pl_realized": realized, "pl_unrealized": unrealized}
    funds = fund_rows(e, later)
    assert funds == {1: r2(1_000_000 + realized), 2: r2(6 * p1 * 0.2),
                     3: r2(1_000_000 + realized), 4: realized, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0,
                     9: 1_000_000.0, 10: r2(1_000_000 + realized - 6 * p1 * 0.2)}
    # the socket carried the same position after the second fill
    pos_msg = ev.of("positions")[-1]
    assert (pos_msg["net_qty"], pos_msg["pl_realized"], pos_msg["buy_avg"], pos_msg["sell_avg"]
            ) == (6, realized, p1, p2)

    e.place(order(qty=6, side=-1), later)
    nxt = ticks_after(SBIN, later, later + 60)[0]
    e.advance(nxt.epoch)
    p3 = bid(nxt)
    row = only_position(e, nxt.epoch)
    total_realized = r2(4 * (p2 - p1) + 6 * (p3 - p1))
    assert (row["netQty"], row["qty"], row["side"], row["avgPrice"], row["netAvg"]) == (
        0, 0, 0, 0.0, 0.0)
    assert (row["realized_profit"], row["unrealized_profit"], row["pl"]) == (
        total_realized, 0.0, total_realized)
    assert e.positions(nxt.epoch)["overall"]["count_open"] == 0
    funds = fund_rows(e, nxt.epoch)
    assert (funds[1], funds[2], funds[4], funds[10]) == (
        r2(1_000_000 + total_realized), 0.0, total_realized, r2(1_000_000 + total_realized))


def test_short_future_position_and_flip_through_zero():
    e, _ = engine(min_slices=1, max_slices=1)
    tape = ticks_after(FUT, T0, T0 + 600)
    e.place(order(symbol=FUT, productType="MARGIN", qty=65, side=-1), T0)
    e.advance(tape[0].epoch)
    s1 = bid(tape[0])
    row = only_position(e, tape[0].epoch)
    assert (row["netQty"], row["side"], row["avgPrice"], row["netAvg"]) == (-65, -1, s1, s1)
    assert row["unrealized_profit"] == r2((tape[0].ltp - s1) * -65)
    assert fund_rows(e, tape[0].epoch)[2] == r2(65 * s1 * 0.15)
    e.place(order(symbol=FUT, productType="MARGIN", qty=130), tape[0].epoch)
    e.advance(tape[1].epoch)
    b1 = ask(tape[1])
    row = only_position(e, tape[1].epoch)
    assert (row["netQty"], row["side"], row["avgPrice"]) == (65, 1, b1)
    assert row["realized_profit"] == r2(65 * (s1 - b1))
    assert row["netAvg"] == r2((130 * b1 - 65 * s1) / 65)


def test_option_margin_uses_premium_rates():
    e, _ = engine()
    t = MD.last_tick(CALL, T0)
    e.place(order(symbol=CALL, productType="MARGIN", qty=65, type=1, limitPrice=5.0), T0)
    assert fund_rows(e, T0)[2] == r2(65 * 5.0 * 1.0)
    e.place(order(symbol=CALL, productType="MARGIN", qty=130, side=-1, type=1,
                  limitPrice=50.0), T0)
    assert fund_rows(e, T0)[2] == r2(65 * 5.0 + 130 * 50.0 * 6.0)
    assert t.ltp < 50.0


def test_holdings_hld_and_t1_and_selling_demat_shares():
    e, ev = engine(min_slices=1, max_slices=1, holdings=(("NSE:ITC-EQ", 10, 400.0),))
    now = T0
    body = e.holdings(now)
    ltp_itc = MD.last_tick(ITC, now).ltp
    (itc,) = body["holdings"]
    assert itc == {
        "holdingType": "HLD", "quantity": 10, "costPrice": 400.0,
        "marketVal": r2(10 * ltp_itc), "remainingQuantity": 10,
        "pl": r2((ltp_itc - 400) * 10), "ltp": ltp_itc, "id": 1, "fyToken": "10100000001660",
        "exchange": 10, "symbol": ITC, "segment": 10, "isin": "INE154A01025", "qty_t1": 0,
        "remainingPledgeQuantity": 0, "collateralQuantity": 0}
    assert body["overall"] == {"count_total": 1, "total_investment": 4000.0,
                               "total_current_value": r2(10 * ltp_itc),
                               "total_pl": r2(10 * ltp_itc - 4000),
                               "pnl_perc": r2((10 * ltp_itc - 4000) / 4000 * 100)}

    e.place(order(productType="CNC", qty=5), now)
    e.place(order(symbol=ITC, productType="CNC", qty=4, side=-1), now)
    sbin_t = ticks_after(SBIN, now, now + 60)[0]
    itc_t = ticks_after(ITC, now, now + 60)[0]
    later = max(sbin_t.epoch, itc_t.epoch)
    e.advance(later)
    cost = ask(sbin_t)
    sold_at = bid(itc_t)
    body = e.holdings(later)
    hld, t1 = body["holdings"]
    ltp_itc, ltp_sbin = MD.last_tick(ITC, later).ltp, MD.last_tick(SBIN, later).ltp
    assert (hld["holdingType"], hld["quantity"], hld["remainingQuantity"], hld["marketVal"]) == (
        "HLD", 10, 6, r2(6 * ltp_itc))
    assert (t1["holdingType"], t1["symbol"], t1["quantity"], t1["qty_t1"], t1["costPrice"],
            t1["remainingQuantity"], t1["id"]) == ("T1", SBIN, 5, 5, cost, 5, 2)
    assert body["overall"]["total_investment"] == r2(6 * 400 + 5 * cost)
    assert body["overall"]["total_current_value"] == r2(6 * ltp_itc + 5 * ltp_sbin)
    itc_pos = next(p for p in e.net_positions() if p["symbol"] == ITC)
    assert (itc_pos["id"], itc_pos["netQty"], itc_pos["cfBuyQty"], itc_pos["buyAvg"],
            itc_pos["daySellQty"], itc_pos["sellAvg"]) == ("NSE:ITC-EQ-CNC", 0, 4, 400.0, 4,
                                                             sold_at)
    assert itc_pos["realized_profit"] == r2(4 * (sold_at - 400))
    assert fund_rows(e, later)[4] == r2(4 * (sold_at - 400))
    assert fund_rows(e, later)[2] == r2(5 * cost)          # CNC blocks the full value

    # only 6 demat shares are left to sell; pending sells count against them
    with pytest.raises(OrderError, match="Insufficient holdings") as err:
        e.place(order(symbol=ITC, productType="CNC", qty=7, side=-1), later)
    assert err.value.code == -99 and ev.statuses(err.value.order_id) == [4, 5]
    e.place(order(symbol=ITC, productType="CNC", qty=6, side=-1, type=1, limitPrice=999.0),
            later)
    with pytest.raises(OrderError, match="sellable quantity 0"):
        e.place(order(symbol=ITC, productType="CNC", qty=1, side=-1), later)
    # today's CNC buys can be sold again (they are part of the sellable quantity)
    e.place(order(productType="CNC", qty=5, side=-1), later)


def test_exit_positions_by_id_filter_and_all():
    e, ev = engine(min_slices=1, max_slices=1)
    with pytest.raises(OrderError) as err:
        e.exit_positions({"exit_all": 1}, T0)
    assert (err.value.code, err.value.message) == (-352, "Looks like you have no open positions.")
    e.place(order(qty=10), T0)
    e.place(order(symbol=FUT, productType="MARGIN", qty=65, side=-1), T0)
    e.advance(T0 + 30)
    with pytest.raises(OrderError) as err:
        e.exit_positions({"id": "NSE:SBIN-EQ-CNC"}, T0 + 30)
    assert (err.value.code, err.value.message) == (-53, "Invalid position id NSE:SBIN-EQ-CNC")
    with pytest.raises(OrderError) as err:
        e.exit_positions({"id": 5}, T0 + 30)
    assert err.value.code == -50
    res = e.exit_positions({"id": "NSE:SBIN-EQ-INTRADAY"}, T0 + 30)
    assert res == {"s": "ok", "code": 200, "message": "The position is closed."}
    counter = e.orders()[-1]
    assert (counter["symbol"], counter["side"], counter["qty"], counter["type"],
            counter["productType"], counter["orderValidity"], counter["status"],
            counter["orderTag"]) == (SBIN, -1, 10, 2, "INTRADAY", "DAY", 6, "2:Untagged")
    assert ev.statuses(counter["id"]) == [4, 6]
    e.advance(T0 + 60)
    positions = {p["id"]: p["netQty"] for p in e.net_positions()}
    assert positions == {"NSE:SBIN-EQ-INTRADAY": 0, "NSE:NIFTY26DECFUT-MARGIN": -65}
    with pytest.raises(OrderError) as err:          # selected, but already flat
        e.exit_positions({"id": ["NSE:SBIN-EQ-INTRADAY"]}, T0 + 60)
    assert err.value.code == -352
    with pytest.raises(OrderError):
        e.exit_positions({"segment": [10]}, T0 + 60)
    assert e.exit_positions({"segment": [11], "side": [-1]}, T0 + 60)["code"] == 200
    counter = e.orders()[-1]
    assert (counter["symbol"], counter["side"], counter["qty"], counter["productType"]) == (
        FUT, 1, 65, "MARGIN")
    e.advance(T0 + 90)
    assert all(p["netQty"] == 0 for p in e.net_positions())
    with pytest.raises(OrderError) as err:
        e.exit_positions({}, T0 + 90)
    assert err.value.code == -352


def test_exit_with_pending_orders_cancel_and_exit_all():
    e, ev = engine(min_slices=1, max_slices=1)
    e.place(order(qty=10), T0)
    e.advance(T0 + 30)
    far = e.place(order(type=1, limitPrice=500.0), T0 + 30)["id"]
    assert e.exit_positions({"exit_all": 1, "pending_orders_cancel": 1}, T0 + 30)["code"] == 200
    assert ev.statuses(far)[-1] == 1
    e.advance(T0 + 60)
    assert e.net_positions()[0]["netQty"] == 0
    other = e.place(order(type=1, limitPrice=500.0), T0 + 60)["id"]
    res = e.exit_positions({"pending_orders_cancel": 1}, T0 + 60)
    assert res == {"s": "ok", "code": 200, "message": "Pending orders cancelled."}
    assert ev.statuses(other)[-1] == 1


def test_exit_outside_market_hours_reports_the_rejection():
    e, _ = engine(min_slices=1, max_slices=1, admin_square_off_at=None)  # the position stays open
    e.place(order(qty=10), T0)
    e.advance(T0 + 30)
    with pytest.raises(OrderError, match="Market is closed") as err:
        e.exit_positions({}, at(DAY, 15, 45))
    assert err.value.code == -99 and err.value.order_id is not None


def test_day_change_rolls_positions_holdings_and_balance():
    e, _ = engine(min_slices=1, max_slices=1, admin_square_off_at=None)  # INTRADAY carried, not squared off
    e.place(order(qty=10), T0)                                   # intraday long, kept open
    e.place(order(productType="CNC", qty=5), T0)                 # delivery buy -> holdings
    e.place(order(symbol=FUT, productType="MARGIN", qty=65), T0)
    e.advance(T0 + 30)
    e.place(order(symbol=FUT, productType="MARGIN", qty=65, side=-1), T0 + 30)
    e.advance(at(DAY, 15, 45))
    realized = e.positions(at(DAY, 15, 45))["overall"]["pl_realized"]
    rows = {p["id"]: p for p in e.net_positions()}
    cnc_cost = rows["NSE:SBIN-EQ-CNC"]["avgPrice"]
    intraday_cost = rows["NSE:SBIN-EQ-INTRADAY"]["avgPrice"]
    amo = e.place(order(type=1, limitPrice=500.0, offlineOrder=True), at(DAY, 16, 0))["id"]
    nxt = at(NEXT_DAY, 9, 0)
    assert [r["id"] for r in e.orderbook(nxt)["orderBook"]] == [amo]   # only the working AMO
    assert amo.startswith(DAY.strftime("%y%m%d"))
    assert e.tradebook(nxt)["tradeBook"] == []
    (pos,) = e.positions(nxt)["netPositions"]
    assert (pos["id"], pos["netQty"], pos["cfBuyQty"], pos["dayBuyQty"], pos["avgPrice"],
            pos["realized_profit"], pos["buyAvg"]) == (
        "NSE:SBIN-EQ-INTRADAY", 10, 10, 0, intraday_cost, 0.0, intraday_cost)
    (h,) = e.holdings(nxt)["holdings"]
    assert (h["holdingType"], h["symbol"], h["quantity"], h["costPrice"]) == (
        "HLD", SBIN, 5, cnc_cost)
    funds = fund_rows(e, nxt)
    assert funds[9] == r2(1_000_000 + realized) and funds[4] == 0.0
    new_id = e.place(order(type=1, limitPrice=500.0), at(NEXT_DAY, 10, 0))["id"]
    assert new_id.startswith(NEXT_DAY.strftime("%y%m%d"))
    assert e.orderbook(at(NEXT_DAY, 10, 0), order_id=amo)["orderBook"][0]["exchOrdId"]


def test_fill_times_and_trade_numbers_agree_between_tradebook_and_socket():
    e, ev = engine()
    oid = e.place(order(qty=10, orderTag="t1"), T0)["id"]
    e.advance(T0 + 60)
    book = e.tradebook(T0 + 60)["tradeBook"]
    socket = ev.of("trades", oid)
    assert [t["tradeNumber"] for t in book] == [s["id_fill"] for s in socket]
    assert len({t["tradeNumber"] for t in book}) == len(book)
    for t, s, tick in zip(book, socket, ticks_after(SBIN, T0, T0 + 60)):
        assert t == {
            "clientId": "XY00001", "orderDateTime": fyers_time(tick.epoch), "orderNumber": oid,
            "exchangeOrderNo": s["id_exchange"], "exchange": 10, "side": 1, "segment": 10,
            "orderType": 2, "fyToken": "10100000003045", "productType": "INTRADAY",
            "tradedQty": s["qty_traded"], "tradePrice": tick.ask,
            "tradeValue": r2(s["qty_traded"] * tick.ask), "tradeNumber": s["id_fill"],
            "row": int(s["id_fill"]), "symbol": SBIN, "orderTag": "1:t1"}
    assert e.trades() == book
