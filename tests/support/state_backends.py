"""The state DB on either backend, for tests parametrized over SQLite and PostgreSQL.

``state_backend`` (tests/conftest.py) yields a :class:`StateBackend`: one database per test (a SQLite
file in the test's tmp dir, or a fresh PostgreSQL database), stores opened on it with
:meth:`StateBackend.open`, its row counts read around the library, and the ``state.yaml`` of it
(:meth:`StateBackend.config`) for code that opens the state itself (the broker, child processes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any, Callable

from fyers_store.config.schema import OwnershipConfig, PostgresConfig, StateConfig
from fyers_store.state import SQLiteStateStore, StateStore

ALL_TABLES = ("applied_trades", "meta", "order_aliases", "orders", "positions", "ws_watermarks")
PG_SCHEMA = "fyers_store"


@dataclasses.dataclass
class StateBackend:
    """One state database of the given ``name`` (``sqlite`` | ``postgres``)."""

    name: str
    path: Path            # the SQLite file (also the local dir's anchor with PostgreSQL)
    dsn: str | None = None

    def config(self, account_id: str = "XY12345", **ownership: Any) -> StateConfig:
        """The ``state.yaml`` of this database (``ownership`` keys override the defaults)."""
        own = OwnershipConfig(**ownership)
        if self.name == "sqlite":
            return StateConfig(account_id=account_id, state_db_path=self.path, ownership=own)
        assert self.dsn is not None
        return StateConfig(account_id=account_id, backend="postgres", local_dir=self.path.parent, ownership=own,
                           postgres=PostgresConfig(dsn=self.dsn, dsn_env="FYERS_STORE_TEST_UNSET_DSN", schema=PG_SCHEMA))

    def yaml(self, account_id: str = "XY12345", **ownership: Any) -> str:
        """``state.yaml`` text for this database (what a child process is given)."""
        own = "".join(f"  {k}: {v}\n" for k, v in ownership.items())
        if self.name == "sqlite":
            head = f"state_db_path: {self.path}\n"
        else:
            head = (f"backend: postgres\nlocal_dir: {self.path.parent}\npostgres:\n  dsn: {self.dsn}\n"
                    f"  dsn_env: FYERS_STORE_TEST_UNSET_DSN\n  schema: {PG_SCHEMA}\n")
        return head + f"account_id: {account_id}\n" + (f"ownership:\n{own}" if own else "")

    def open(self, account_id: str = "XY12345", strategy_id: str = "alpha",
             clock: Callable[[], dt.datetime] | None = None) -> StateStore:
        """A store on this database (no ownership lease)."""
        if self.name == "sqlite":
            return SQLiteStateStore(self.path, account_id=account_id, strategy_id=strategy_id, clock=clock)
        from fyers_store.state.pg_store import PostgresStateStore

        cfg = self.config(account_id).postgres
        assert cfg is not None
        return PostgresStateStore(cfg, account_id=account_id, strategy_id=strategy_id, clock=clock)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement around the library (committed) and return its rows, if any."""
        if self.name == "sqlite":
            conn = sqlite3.connect(str(self.path))
            try:
                with conn:
                    return list(conn.execute(statement, params))
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.dsn or "", autocommit=True) as conn:
            conn.execute(f"SET search_path TO {PG_SCHEMA}")
            cur = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def table_counts(self) -> dict[str, int]:
        return {t: int(self.sql(f"SELECT count(*) FROM {t}")[0][0]) for t in ALL_TABLES}
