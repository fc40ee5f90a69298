"""Two "hosts" trading one strategy on one PostgreSQL state DB: the owner is SIGKILLed, the standby
takes over (``failover_child.py``). Shared by the failover test and ``benchmarks/bench_failover.py``.

:class:`FailoverRun` runs one round on a venue of this process:

* ``standby``: a second process waits as a standby from the start; the owner is killed after its
  ``kill_after``-th placement; the standby takes over once the owner's lease lapses (the
  dead-process shortcut is off, as between two hosts) and continues the strategy;
* ``standby-local``: the same with ``take_over_dead_local_owner`` on (both on one host: the
  standby sees at once that the owner's pid is gone);
* ``restart``: no standby; a new process is started right after the kill (what a supervisor does),
  the baseline a standby is compared with.

It returns the times (from the SIGKILL) of the successor's ``owner`` / ``started`` / first ``placed``
line, as they arrived here, and the lines of both processes; :func:`check_failover` checks the
chaos suite's invariants against the venue's books.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from support.broker_child import Child

FAILOVER_CHILD = Path(__file__).with_name("failover_child.py")
DSN_ENV = "FYERS_FAILOVER_STATE_DSN"
MODES = ("standby", "standby-local", "restart")


def state_yaml(dsn: str, local_dir: Path, schema: str, *, mode: str, lease_seconds: float,
               renew_interval_seconds: float, dead_local: bool) -> str:
    """``state.yaml`` of the round: PostgreSQL (the DSN with its password only in ``$DSN_ENV``)."""
    parts = urlsplit(dsn)
    bare = urlunsplit((parts.scheme, f"{parts.username}@{parts.hostname}:{parts.port}", parts.path, "", ""))
    return (f"backend: postgres\naccount_id: PLACEHOLDER\nlocal_dir: {local_dir}\n"
            f"postgres:\n  dsn: {bare}\n  dsn_env: {DSN_ENV}\n  schema: {schema}\n"
            f"ownership:\n  mode: {mode}\n  lease_seconds: {lease_seconds}\n"
            f"  renew_interval_seconds: {renew_interval_seconds}\n  standby_poll_seconds: 0.05\n"
            f"  take_over_dead_local_owner: {'true' if dead_local else 'false'}\n")


@dataclasses.dataclass
class FailoverResult:
    mode: str
    owner_lines: list[str]
    successor_lines: list[str]
    successor_code: int
    to_owner: float        # seconds from the SIGKILL to the successor holding the lease
    to_started: float      # ... to the successor having reconciled with FYERS
    to_first_order: float  # ... to its first placement answered


class FailoverRun:
    """One round (see the module doc) on ``venue``, state in schema ``schema`` of ``dsn``."""

    def __init__(self, venue, work: Path, dsn: str, *, seed: int, orders: int, schema: str = "fyers_store",
                 mode: str = "standby", lease_seconds: float = 3.0, renew_interval_seconds: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode is one of {MODES}")
        self.venue, self.work, self.dsn, self.seed, self.orders, self.mode = venue, work, dsn, seed, orders, mode
        work.mkdir(parents=True, exist_ok=True)
        self.yaml = work / "state.yaml"
        self.go = work / "go"  # the owner trades once it exists (after the standby began waiting)
        text = state_yaml(dsn, work, schema, mode="exclusive" if mode == "restart" else "standby",
                          lease_seconds=lease_seconds, renew_interval_seconds=renew_interval_seconds,
                          dead_local=mode != "standby")
        self.yaml.write_text(text.replace("PLACEHOLDER", venue.account.fy_id), encoding="utf-8")

    def _child(self, name: str) -> Child:
        return Child(self.venue, self.work / name, self.seed, self.orders, "--state-yaml", str(self.yaml),
                     "--go-file", str(self.go), script=FAILOVER_CHILD, env={DSN_ENV: self.dsn})

    def run(self, kill_after: int, timeout: float = 90.0) -> FailoverResult:
        owner = self._child("a")
        successor: Child | None = None
        try:
            owner.wait_for(lambda line: line == "started", timeout)
            if self.mode != "restart":
                successor = self._child("b")
                successor.wait_for(lambda line: line.startswith("waiting "), timeout)
            self.go.touch()
            owner.wait_for(lambda line: line.startswith("placed ") and int(line.split()[1]) >= kill_after, timeout)
            os.kill(owner.proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            owner.run_until(None, timeout=15)  # reaped, its last lines read
            if successor is None:
                successor = self._child("b")
            successor.wait_for(lambda line: line.startswith("owner "), timeout)
            successor.wait_for(lambda line: line == "started", timeout)
            successor.wait_for(lambda line: line.startswith("placed "), timeout)
            code = successor.run_until(None, timeout=timeout)
            arrived = {line.split()[0]: at for at, line in reversed(successor.arrivals)}
            return FailoverResult(self.mode, owner.seen, successor.seen, code, arrived["owner"] - killed,
                                  arrived["started"] - killed, arrived["placed"] - killed)
        finally:
            for child in (owner, successor):
                if child is not None and child.proc.poll() is None:
                    os.kill(child.proc.pid, signal.SIGKILL)
                    child.proc.wait(timeout=15)


def check_failover(venue, dsn: str, schema: str, result: FailoverResult, orders: int) -> None:
    """The chaos suite's invariants after a takeover: the successor finished the plan; each of our
    tags is at the venue at most once; every venue fill of our orders is in the ledger exactly once
    and the ledger has none FYERS did not make; every order ended with the venue's id and filled
    quantity; each order was placed by one process only."""
    from fyers_store.config import PostgresConfig
    from fyers_store.models.orders import make_order_tag
    from fyers_store.state.pg_store import PostgresStateStore
    from support.invariants import check_venue_and_state_agree

    assert result.successor_code == 0 and "done" in result.successor_lines, result.successor_lines[-5:]
    assert any(line.startswith("owner ") and int(line.split()[1]) >= 2 for line in result.successor_lines)
    cfg = PostgresConfig(dsn=dsn, dsn_env="FYERS_STORE_TEST_UNSET_DSN", schema=schema)
    with PostgresStateStore(cfg, account_id=venue.account.fy_id, strategy_id="failover") as state:
        prefix = make_order_tag(state.get_or_create_run_id(), 0)[:-1]
        ours, ledger = check_venue_and_state_agree(venue, state, prefix)
        tags = {o.order_tag for o in state.load_orders()}
    assert len(tags) == orders, (len(tags), orders)
    by_owner = {line.split()[2] for line in result.owner_lines if line.startswith("placed ")}
    by_successor = {line.split()[2] for line in result.successor_lines if line.startswith("placed ")}
    assert by_owner and by_successor and not by_owner & by_successor, (by_owner, by_successor)
    # the owner may have died inside a placement it never reported: that order is the state's too
    assert by_owner | by_successor <= tags and len(tags - by_owner - by_successor) <= 1
    assert ledger, "no fill at all: the round proved nothing"
