"""What must hold once a broker's orders have settled, read where it is durable: the venue's
orderbook and tradebook, and the state DB file. The restart tests (BrokerCore and Cerebro) check
these after every kill; each adds what only its own side can see."""

from __future__ import annotations

import collections

from fyers_store.state import StateStore
from support.broker_helpers import ledger_rows, venue_trades_of

#: the order states nothing changes any more (the state DB's words)
TERMINAL = {"filled", "cancelled", "rejected", "expired"}


def check_venue_and_state_agree(venue, state: StateStore, tag_prefix: str) -> tuple[dict[str, dict], list]:
    """For the orders whose tags start with ``tag_prefix``: each tag is at the venue at most once;
    every fill FYERS made for them is in the ledger exactly once and the ledger holds no tagged fill
    FYERS did not make; each order ended in the state DB with FYERS's id and a filled quantity equal
    to the venue's tradebook and to the ledger; the DB passes its integrity check.

    Returns our venue orders by tag and the ledger rows (trade_id, order_tag, qty)."""
    prefix = "1:" + tag_prefix  # FYERS echoes a tag as "1:<tag>"
    ours = [o for o in venue.orders() if str(o.get("orderTag", "")).startswith(prefix)]
    tag_count = collections.Counter(o["orderTag"] for o in ours)
    assert all(n == 1 for n in tag_count.values()), f"a tag placed twice at the venue: {tag_count}"
    our_trades = {str(t["tradeNumber"]): t for t in venue.trades() if str(t.get("orderTag", "")).startswith(prefix)}
    ledger = ledger_rows(state)
    ledger_ids = [row[0] for row in ledger]
    assert len(ledger_ids) == len(set(ledger_ids)), "a fill applied twice"
    assert set(our_trades) <= set(ledger_ids), f"lost fills: {set(our_trades) - set(ledger_ids)}"
    assert {row[0] for row in ledger if row[1] is not None} == set(our_trades), "ledger has fills FYERS never made"
    for trade_id, tag, qty in ledger:
        if tag is not None:
            assert tag == our_trades[trade_id]["orderTag"][2:] and qty == our_trades[trade_id]["tradedQty"]
    for row in ours:
        tag = row["orderTag"][2:]
        stored = state.get_order(tag)
        venue_qty = sum(t["tradedQty"] for t in venue_trades_of(venue, tag))
        assert stored is not None and stored.state in TERMINAL, stored
        assert stored.filled_qty == venue_qty == sum(q for _, t, q in ledger if t == tag), tag
        assert stored.venue_order_id == row["id"]
    if state.backend == "sqlite":  # PostgreSQL has no file-level check; its constraints held on every write
        assert state.integrity_check() == "ok"  # type: ignore[attr-defined]
    return {o["orderTag"][2:]: o for o in ours}, ledger
