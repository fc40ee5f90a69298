"""SIGKILL a Backtrader strategy trading through FyersBroker, restart Cerebro on the same state DB
(each case with SQLite and with PostgreSQL state: the ``restart_state`` fixture).

The venue runs in the test process (stepped clock). The child process (``broker_restart_child.py
--cerebro``) runs a real Cerebro -- live FyersData feeds for SBIN and INFY, the broker from
``store.getbroker``, the unmodified SDK over loopback -- whose strategy places a seeded sequence
of market and marketable limit orders at its bars while the child moves the venue clock in
5-second steps. The parent SIGKILLs it after a seeded number of progress lines (in a clock step,
a dispatch, a state DB transaction, a notification ...), or the child kills itself exactly
between "intent committed" and "REST sent" of its N-th order, or between FYERS booking it and the
reply being persisted. Before its planned orders the strategy leaves a limit buy resting far below
the market (cancelled after them), so most kills leave a working order behind.

The parent then runs Cerebro again in-process on the same state DB (a strategy that places
nothing), steps bars until no order is open, and checks:

* one venue order per tag; every venue trade of our orders in the ledger exactly once, and
  nothing else in it (no lost fill, no duplicate fill): per order, state DB filled qty == Σ ledger
  == Σ venue tradebook;
* each order the restart brought back (open, or ended while down) is one new Backtrader order, with
  or without a change after the restart, notified first as it stood
  (executed = what the ledger had before the restart: nothing applied twice) and last with the
  venue's executed size; Completed at most once; no anomaly, no position mismatch;
* Backtrader's positions and the broker's equal the venue's net positions; integrity_check ok.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import signal
import time

import pytest

from fyers_sim.testing import wait_until
from support.broker_cerebro import CerebroRun, VenueClock, cancel_alive
from support.broker_child import Child
from support.store_helpers import LIMITS, make_rest
from support.broker_helpers import (
    CONFIG, broker_store, ledger_rows, seeded_venue, state_store, venue_net_by_symbol, venue_orders_of,
    venue_trades_of,
)
from support.invariants import TERMINAL, check_venue_and_state_agree

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]

ORDERS = 4


venue = pytest.fixture(seeded_venue)  # seeded per case (indirect), no per-second window


class Restarted:
    """What the in-process restart saw and left."""

    def __init__(self, run: CerebroRun, before, positions, core_positions) -> None:
        self.run, self.before, self.positions, self.core_positions = run, before, positions, core_positions


def restart_cerebro(venue, tmp_path) -> Restarted:
    """Cerebro again on the child's state DB; bars until nothing is open (the strategy cancels
    every order the restart brought back alive: the resting one), then two more. An order the
    child was placing when killed stays unknown until FYERS could no longer take it (its send +
    the REST placement timeout + the grace, in real seconds), hence a deadline, not a bar count."""
    state = state_store(venue, tmp_path)  # opens (and recovers) the state DB first
    before = ledger_rows(state)
    # A client deadline of 2 s per placement attempt (connect + read): an order the child may have
    # sent when it was killed is declared not found 2.3 s after its send, not 10.3 s.
    limits = dataclasses.replace(LIMITS, connect_timeout_seconds=1.0, read_timeout_seconds=1.0)
    store = broker_store(venue, tmp_path, live=True, rest=make_rest(venue, tmp_path, limits))
    run = CerebroRun(store, VenueClock(venue), state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    try:
        run.start()
        deadline = time.monotonic() + 40
        next_bar = time.monotonic()
        while not run.do(lambda s: cancel_alive(s, run) == 0 and not s.broker.core.book.open_orders()):
            if time.monotonic() > deadline:
                raise AssertionError(f"orders still open 40 s after the restart; notes {run.notes}")
            # What is left resolves in real seconds (the REST deadline, the grace); each bar costs a
            # venue minute. Unpaced, a fast library burnt the session's remaining minutes waiting
            # and crossed 15:30, after which no bar comes: at most 4 venue minutes a real second.
            next_bar += 0.25
            wait_until(lambda: time.monotonic() >= next_bar, timeout=1.0, message="the loop's pace")
        run.bar()
        run.bar()
        positions = run.do(lambda s: {d._name: s.getposition(d).size for d in s.datas})
        core_positions = run.do(lambda s: {sym: q for sym, (q, _) in s.broker.core.positions.items()})
    finally:
        run.stop()
        store.stop()
    assert run.run_error is None, run.run_error
    return Restarted(run, before, positions, core_positions)


def check_invariants(venue, r: Restarted) -> dict[str, dict]:
    """The invariants of every case; returns our venue orders by tag."""
    run, before = r.run, r.before
    ours, _ = check_venue_and_state_agree(venue, run.broker.core.state, run.broker.core.tag_prefix)
    # every order the restart brought back: one new Backtrader order, nothing applied twice
    for tag, refs in run.refs_by_tag().items():
        assert len(refs) == 1, f"{tag} restored as several Backtrader orders: {refs}"
        notes = run.notes_of(refs.pop())
        assert all(n.restored for n in notes)
        sign = -1 if notes[0].size < 0 else 1
        applied_before = sum(q for _, t, q in before if t == tag)
        assert notes[0].executed_size == sign * applied_before, (tag, notes[0], applied_before)
        venue_qty = sum(t["tradedQty"] for t in venue_trades_of(venue, tag))
        assert notes[-1].executed_size == sign * venue_qty, (tag, notes)
        assert [n.status for n in notes].count("Completed") <= 1
        assert notes[-1].status in ("Completed", "Canceled", "Rejected", "Expired"), notes
    kinds = collections.Counter(n[0] for n in run.store_notes)
    assert not kinds["ORDER_ANOMALY"] and not kinds["POSITION_MISMATCH"], run.store_notes
    venue_net = venue_net_by_symbol(venue)
    assert {s: q for s, q in r.positions.items() if q} == venue_net
    assert r.core_positions == venue_net
    return ours


# ---------------------------------------------------------------------- SIGKILL at a seeded moment
@pytest.mark.parametrize("venue", [111, 222, 333, 444], indirect=True)
def test_cerebro_sigkilled_at_a_seeded_moment_then_restarted(restart_state, venue, fast_venue, tmp_path):
    seed = fast_venue.seed
    # progress lines after "started" (a whole run has ~160)
    kill_after = random.Random(f"cerebro-kill:{seed}").randrange(20, 150)
    child = Child(fast_venue, tmp_path, seed, ORDERS, "--cerebro")
    code = child.run_until(kill_after)
    assert code == -signal.SIGKILL, (code, child.seen, child.stderr())
    placed = [line.split() for line in child.seen if line.startswith("placed ")]
    assert [line for line in child.seen if line.startswith(("placed ", "resting "))], child.seen  # it traded

    restarted = restart_cerebro(fast_venue, tmp_path)
    ours = check_invariants(fast_venue, restarted)
    for _, _, tag, state in placed:  # every order the child reported placing is settled, at the venue once
        assert restarted.run.broker.core.state.get_order(tag).state in TERMINAL
        if state != "rejected":
            assert tag in ours and len(venue_orders_of(fast_venue, tag)) == 1
    for line in child.seen:  # the resting order ended cancelled, by the child or by the restarted strategy
        if line.startswith("resting "):
            tag = line.split()[1]
            assert [(o["status"], o["filledQty"]) for o in venue_orders_of(fast_venue, tag)] == [(1, 0)]
            refs = restarted.run.refs_by_tag().get(tag)
            if refs:  # the kill left it working: the restart rebuilt it and the strategy cancelled it
                assert restarted.run.statuses(min(refs)) == ["Accepted", "Canceled"]
    restarted.run.broker.core.state.close()


# ---------------------------------------------------------------------- SIGKILL between intent and REST
@pytest.mark.parametrize("venue", [515], indirect=True)
def test_cerebro_killed_between_intent_commit_and_rest_send(restart_state, venue, fast_venue, tmp_path):
    nth = 2
    child = Child(fast_venue, tmp_path, fast_venue.seed, ORDERS, "--cerebro", "--kill-before-place", str(nth))
    code = child.run_until(None)
    assert code == -signal.SIGKILL, (code, child.seen, child.stderr())
    killed = [line.split() for line in child.seen if line.startswith("killing before place")]
    assert len(killed) == 1, (child.seen, child.stderr())
    killed = killed[0]
    tag = killed[-1]
    assert venue_orders_of(fast_venue, tag) == []  # the request never left
    with state_store(fast_venue, tmp_path) as state:
        assert state.get_order(tag).state == "submitting"  # the intent was durable before the send

    restarted = restart_cerebro(fast_venue, tmp_path)
    ours = check_invariants(fast_venue, restarted)
    run = restarted.run
    (ref,) = run.refs_by_tag()[tag]
    assert run.statuses(ref) == ["Submitted", "Rejected"]  # rebuilt, looked up by tag, not found
    (resting,) = [line.split()[1] for line in child.seen if line.startswith("resting ")]
    (ref,) = run.refs_by_tag()[resting]  # the working order: rebuilt, then cancelled by the strategy
    assert run.statuses(ref) == ["Accepted", "Canceled"]
    assert [n[0] for n in run.store_notes if n[0] == "ORDER_UNKNOWN"] == ["ORDER_UNKNOWN"]
    assert run.broker.core.state.get_order(tag).state == "rejected"
    assert tag not in ours and venue_trades_of(fast_venue, tag) == []
    assert len(ours) == nth - 1  # the orders before it are there (once each); none after it
    run.broker.core.state.close()


# ---------------------------------------------------------------------- SIGKILL after the venue booked it
@pytest.mark.parametrize("venue", [616], indirect=True)
def test_cerebro_killed_after_the_venue_booked_the_order(restart_state, venue, fast_venue, tmp_path):
    nth = 3  # the resting order is the 1st placement
    child = Child(fast_venue, tmp_path, fast_venue.seed, ORDERS, "--cerebro", "--kill-after-place", str(nth))
    code = child.run_until(None)
    assert code == -signal.SIGKILL, (code, child.seen, child.stderr())
    killed = [line.split() for line in child.seen if line.startswith("killing after place")]
    assert len(killed) == 1, (child.seen, child.stderr())
    killed = killed[0]
    tag, venue_id = killed[-2:]
    assert [o["id"] for o in venue_orders_of(fast_venue, tag)] == [venue_id]
    with state_store(fast_venue, tmp_path) as state:
        assert state.get_order(tag).state == "submitting"  # FYERS's reply never reached the state DB

    restarted = restart_cerebro(fast_venue, tmp_path)
    ours = check_invariants(fast_venue, restarted)
    run = restarted.run
    (ref,) = run.refs_by_tag()[tag]
    statuses = [s for s in run.statuses(ref) if s != "Partial"]
    assert statuses == ["Submitted", "Accepted", "Completed"], run.statuses(ref)  # found by its tag
    assert run.broker.core.state.get_order(tag).venue_order_id == venue_id
    trades = venue_trades_of(fast_venue, tag)
    assert abs(run.notes_of(ref)[-1].executed_size) == sum(t["tradedQty"] for t in trades) > 0
    assert len(ours) == nth
    run.broker.core.state.close()
