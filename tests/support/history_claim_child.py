"""A worker process for ``tests/engine/test_history_fetch_claims.py``: one cache-first history request.

Run as ``python history_claim_child.py '<json>'``. It builds the SDK REST adapter on the venue whose
URLs it is given, the history cache the job names (``sqlite`` path or ``postgres`` DSN) and a
:class:`HistoryService` on the venue's (stepped, fixed) time, signals ``ready``, waits for the
``go`` file, asks for ``[start, end)`` and prints one JSON line: the rows it got, the windows it
fetched from FYERS, and whether its fetch claim had to wait.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

UTC = dt.timezone.utc


def main(job: dict[str, Any]) -> dict[str, Any]:
    from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
    from fyers_store.config import CacheConfig, RestLimitsConfig
    from fyers_store.config.schema import PostgresConfig
    from fyers_store.engine.history import HistoryService
    from fyers_store.models.market_calendar import NseCalendar
    from fyers_store.persistence import cache_from_config

    now = dt.datetime.fromtimestamp(job["now"], UTC)
    calendar = NseCalendar()
    if job["backend"] == "sqlite":
        cfg = CacheConfig(db_path=Path(job["target"]))
    else:
        cfg = CacheConfig(backend="postgres", postgres=PostgresConfig(dsn=job["target"]))
    with redirect_sdk(SdkEndpoints(*job["urls"])):
        rest = FyersSdkRestAdapter(job["client_id"], job["token"], limits=RestLimitsConfig(),
                                   log_path=job["log_path"], calendar=calendar, now=lambda: now)
        with cache_from_config(cfg, calendar=calendar, clock=lambda: now) as cache:
            service = HistoryService(cache, rest, calendar, lambda: now, claim_wait_seconds=60)
            Path(job["ready"]).touch()
            deadline = time.monotonic() + 60
            while not Path(job["go"]).exists():
                if time.monotonic() > deadline:
                    raise SystemExit("no go signal")
                time.sleep(0.001)
            start = dt.datetime.fromtimestamp(job["start"], UTC)
            end = dt.datetime.fromtimestamp(job["end"], UTC)
            rows = service.get_history_rows(job["symbol"], job["resolution"], start, end)
            report = service.last_report
            assert report is not None
            return {
                "rows": [list(r) for r in rows],
                "windows": [[w.start.timestamp(), w.end.timestamp()] for w in report.windows],
                "waited": getattr(cache, "claims_waited", None),
            }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
