"""SIGKILL a trading BrokerCore process and restart it on the same state DB: nothing lost, nothing doubled
(each case on both backends: ``restart_state`` runs it with SQLite and with PostgreSQL state).

The venue runs in the test process (stepped clock). A child process (``broker_restart_child.py``)
builds a store + BrokerCore on it over loopback with the unmodified SDK, places a seeded sequence of
market and marketable limit orders and pumps, moving the venue clock itself. The parent SIGKILLs it
after a seeded number of progress lines (wherever it then is: in a REST call, a dispatch, a state DB
transaction), or the child kills itself at an exact point around ``place_order``:

* ``before-rest``: the intent is committed (state "submitting"), the request never left. After the
  restart the order is looked up by tag, not found, and ends rejected; the venue has no such order.
* ``after-rest``: FYERS booked the order, the reply was never persisted. After the restart the order
  is found by tag, adopted, and its fills are applied once.

The parent then restarts a BrokerCore on the same state DB in-process, pumps until no order is open
and checks: every venue trade of our orders is in the ledger exactly once (none lost, none doubled,
none notified twice across the restart), one venue order per tag, the core's positions equal the
venue's net positions (without adopting a mismatch), and the state DB passes integrity_check.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from fyers_store.engine.broker_core import PositionChange
from fyers_store.engine.orders import OrderEventKind, OrderState
from support.broker_child import Child
from support.broker_helpers import (
    fill_trade_ids, ledger_rows, make_core, pump_until, seeded_venue, state_store, venue_net_by_symbol,
    venue_orders_of, venue_trades_of,
)
from support.invariants import check_venue_and_state_agree

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]

ORDERS = 5


venue = pytest.fixture(seeded_venue)  # seeded per case (indirect), no per-second window


def restart_and_settle(venue, tmp_path: Path):
    """Restart a BrokerCore on the child's state DB; pump until nothing is open. Returns (core,
    ledger rows before the restart, events of the restart)."""
    core = make_core(venue, tmp_path)  # opens (and recovers) the state DB first
    before = ledger_rows(core.state)
    events = core.start()
    events += pump_until(core, lambda: not core.book.open_orders(), venue=venue, step=2, timeout=30,
                         message="every order settled after the restart")
    events += pump_until(core, lambda: True, venue=venue, step=2)  # stragglers on the socket
    events += core.reconcile("test")  # and one more full reconcile: must change nothing
    return core, before, events


def check_invariants(venue, core, before, events) -> dict[str, dict]:
    """The invariants of every case (see ``check_venue_and_state_agree``) and the restarted core's
    own view; returns the venue orders of our tags."""
    ours, ledger = check_venue_and_state_agree(venue, core.state, core.tag_prefix)
    assert all(tag is not None for _, tag, _ in ledger), "a fill of an order without our tag"
    # nothing applied before the kill was applied (notified) again, nothing applied twice now
    restart_fills = fill_trade_ids(events)
    assert len(restart_fills) == len(set(restart_fills)), "a fill notified twice"
    assert not set(restart_fills) & {r[0] for r in before}, "a fill applied before the kill was applied again"
    assert set(restart_fills) | {r[0] for r in before} == {r[0] for r in ledger}
    for tag in ours:  # the core's orders, where it still holds them, agree with the venue
        order = core.book.get(tag)
        if order is not None:
            assert order.filled_qty == sum(t["tradedQty"] for t in venue_trades_of(venue, tag))
            assert kinds_of(events, tag).count(OrderEventKind.COMPLETED) <= 1
            assert OrderEventKind.ANOMALY not in kinds_of(events, tag)
    assert {s: q for s, (q, _) in core.positions.items()} == venue_net_by_symbol(venue)
    assert not [e for e in events if isinstance(e, PositionChange)], "positions had drifted from the fills"
    assert core.halted is None
    return ours


def kinds_of(events, tag):
    return [e.kind for e in events if not isinstance(e, PositionChange) and e.tag == tag]


# ---------------------------------------------------------------------- SIGKILL at a seeded moment
@pytest.mark.parametrize("venue", [101, 202, 303, 404], indirect=True)
def test_sigkill_at_a_seeded_moment_then_restart(restart_state, venue, fast_venue, tmp_path):
    seed = fast_venue.seed
    kill_after = random.Random(f"kill:{seed}").randrange(2, 3 * ORDERS)  # progress lines after "started"
    child = Child(fast_venue, tmp_path, seed, ORDERS)
    code = child.run_until(kill_after)
    assert code == -signal.SIGKILL, (code, child.seen, child.stderr())
    placed = [line for line in child.seen if line.startswith("placed ")]
    assert placed, child.seen  # it did trade before it died

    core, before, events = restart_and_settle(fast_venue, tmp_path)
    check_invariants(fast_venue, core, before, events)
    for line in placed:  # every order the child reported placing is known, settled, and at the venue once
        tag = line.split()[2]
        assert core.state.get_order(tag) is not None
        if line.split()[3] != "rejected":
            assert len(venue_orders_of(fast_venue, tag)) == 1
    core.stop()
    core.store.stop()


# ---------------------------------------------------------------------- SIGKILL around place_order
def killed_at_place(venue, tmp_path, flag: str, nth: int, says: str) -> list[str]:
    """Run the child until it SIGKILLs itself around its ``nth`` place_order; the words of the
    line it printed just before."""
    child = Child(venue, tmp_path, venue.seed, ORDERS, flag, str(nth))
    code = child.run_until(None)
    assert code == -signal.SIGKILL, (code, child.seen, child.stderr())
    killed = [line for line in child.seen if line.startswith(says)]
    assert len(killed) == 1, child.seen
    return killed[0].split()


@pytest.mark.parametrize("venue", [505], indirect=True)
def test_killed_between_intent_commit_and_rest_send(restart_state, venue, fast_venue, tmp_path):
    nth = 3
    tag = killed_at_place(fast_venue, tmp_path, "--kill-before-place", nth, "killing before place")[-1]
    assert venue_orders_of(fast_venue, tag) == []  # the request never left

    with state_store(fast_venue, tmp_path) as state:
        assert state.get_order(tag).state == "submitting"  # the intent was durable before the send
    core, before, events = restart_and_settle(fast_venue, tmp_path)
    ours = check_invariants(fast_venue, core, before, events)
    order = core.book.get(tag)
    assert order.state is OrderState.REJECTED and "not found" in order.message
    assert kinds_of(events, tag) == [OrderEventKind.UNKNOWN, OrderEventKind.REJECTED]
    assert core.state.get_order(tag).state == "rejected"
    assert tag not in ours and venue_orders_of(fast_venue, tag) == [] and venue_trades_of(fast_venue, tag) == []
    assert len(ours) == nth - 1  # the orders before it are there (once each); none after it
    core.stop()
    core.store.stop()


@pytest.mark.parametrize("venue", [606], indirect=True)
def test_killed_after_the_venue_booked_the_order(restart_state, venue, fast_venue, tmp_path):
    nth = 2
    tag, venue_id = killed_at_place(fast_venue, tmp_path, "--kill-after-place", nth, "killing after place")[-2:]
    assert [o["id"] for o in venue_orders_of(fast_venue, tag)] == [venue_id]
    with state_store(fast_venue, tmp_path) as state:
        assert state.get_order(tag).state == "submitting"  # FYERS's reply never reached the state DB
        assert state.get_order(tag).venue_order_id is None

    core, before, events = restart_and_settle(fast_venue, tmp_path)
    ours = check_invariants(fast_venue, core, before, events)
    order = core.book.get(tag)
    assert order.venue_order_id == venue_id  # adopted by its tag
    assert order.state is OrderState.FILLED
    trades = venue_trades_of(fast_venue, tag)
    assert order.filled_qty == order.request.qty == sum(t["tradedQty"] for t in trades)
    assert sorted(f.trade_id for f in order.fills) == sorted(str(t["tradeNumber"]) for t in trades)
    seq = [k for k in kinds_of(events, tag) if k is not OrderEventKind.PARTIAL]
    assert seq == [OrderEventKind.UNKNOWN, OrderEventKind.ACCEPTED, OrderEventKind.COMPLETED], seq
    assert not {str(t["tradeNumber"]) for t in trades} & {r[0] for r in before}  # none applied pre-kill
    assert len(ours) == nth
    core.stop()
    core.store.stop()
