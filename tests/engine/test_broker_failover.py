"""Two processes, one strategy, one PostgreSQL state DB: the owner trades, is SIGKILLed, and the
standby takes over and continues the strategy -- without a lost or duplicated fill.

The venue runs in the test process. Both processes (``support/failover_child.py``) are for the same
account and strategy; the second waits as a standby (``ownership.mode: standby``) while the owner
renews its lease. The owner is killed right after a seeded placement; the standby takes the lease
once it lapses (the same-host shortcut is off: two hosts), reconciles with FYERS, places the rest
of the plan and settles. Then the chaos suite's invariants must hold against the venue's books
(:func:`support.failover.check_failover`).
"""

from __future__ import annotations

import random
import signal

import pytest

from support.broker_helpers import seeded_venue
from support.failover import FailoverRun, check_failover

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]

ORDERS = 6

venue = pytest.fixture(seeded_venue)


@pytest.mark.parametrize("venue,mode", [(707, "standby"), (808, "standby-local")], indirect=["venue"])
def test_standby_takes_over_a_sigkilled_owner_without_losing_or_doubling_a_fill(venue, fast_venue, tmp_path,
                                                                               pg_dsn, mode):
    kill_after = random.Random(f"failover:{fast_venue.seed}").randrange(2, ORDERS - 1)
    run = FailoverRun(fast_venue, tmp_path, pg_dsn, seed=fast_venue.seed, orders=ORDERS, mode=mode,
                      lease_seconds=3.0, renew_interval_seconds=1.0)
    result = run.run(kill_after)
    assert any(line.startswith("waiting ") for line in result.successor_lines)  # it was a standby all along
    check_failover(fast_venue, pg_dsn, "fyers_store", result, ORDERS)
    if mode == "standby":  # between hosts the standby cannot know the owner died: its lease must lapse
        assert result.to_owner > 0.5, result
