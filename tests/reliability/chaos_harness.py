"""The chaos suite (issue 14, "never lose a fill"): seeded faults, SIGKILLs, and FYERS's books as the oracle.

One **seed** is one run: a venue in its own process (``chaos_venue.py``, stepped clock, FYERS's
rate limits), a fresh state DB and config directory, and a client child (``chaos_child.py``) that
trades until the harness SIGKILLs it, then is started again on the same state DB -- ``lives``
times -- and finally settles and cancels what still works. Everything the seed decides comes from
``random.Random(f"chaos-...:{seed}...")``: the mode (BrokerCore or Cerebro), the fault mix, when
and how each life is killed, the token invalidation episode.

Faults per seed (installed through ``POST /admin/faults`` at the start of each life): lost replies
on place/modify/cancel, delays past the client's read deadline, late booking (the venue takes
the request, answers nothing / code 201 / a connection-error code, and carries it out 5-30 s
later), FYERS's "not confirmed" replies (201, -201/-202/-204/-205, -329) with and without the
request carried out, 5xx on orders and on the books, order-socket duplicate/reorder/drop, socket
disconnects, and one token invalidation episode (the child must fail with ``AuthError`` /
``ReconcileFailureError`` caused by it; the harness then logs in again with
``fyers-store login --force``, as an operator would).

Kills: at a random moment; on a ``send`` line (the intent is committed, the request not sent);
while the venue provably holds the place/modify/cancel request (a one-shot ``rest_delay`` put
before every other rule, and the kill once the venue's fault log shows it fired); or right after
the reply came back (``sent`` line).

Checks, against the venue's books (``GET /admin/state``) and the state DB read from disk, after
every restart's reconcile and at the end (see :data:`FIGURES`). Each breach is keyed (by tag,
trade number, ...) so one lasting problem counts once.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests
import yaml

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
REPO = TESTS.parent
CHILD = HERE / "chaos_child.py"
VENUE = HERE / "chaos_venue.py"
SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
ORDERS_PATH = "/api/v3/orders/sync"
#: the child's REST deadlines (config/fyers_rest_limits.yaml ships 5 s / 15 s): "past the deadline"
#: delays are READ_TIMEOUT + 0.5 s; late bookings keep FYERS's 5-30 s.
CONNECT_TIMEOUT, READ_TIMEOUT = 1.0, 1.5
LATE_RANGE = (5.0, 30.0)
#: venue time runs 40-100 times faster than real time here (the child steps the clock), so the
#: periodic reconcile (broker.yaml ships 30 s) is scaled too: about every 3-8 real seconds.
RECONCILE_INTERVAL = 300

#: (key, what is counted). Every figure must be 0.
FIGURES: tuple[tuple[str, str], ...] = (
    ("duplicate_orders", "venue orders beyond the first for one order tag"),
    ("trades_missing", "FYERS trades of our orders missing from the state DB's ledger"),
    ("trades_duplicated", "ledger rows FYERS's tradebook does not show (duplicated or never made)"),
    ("filled_mismatch", "orders whose filled quantity differs from FYERS's tradebook"),
    ("orders_lost", "FYERS orders the broker has no row for, or declared never placed"),
    ("positions_mismatch", "positions differing from FYERS's at a check, or adopted after a mismatch"),
    ("unresolved", "orders left unknown, halted or working at the end"),
    ("anomalies", "orders halted by an anomaly (ORDER_ANOMALY)"),
    ("integrity", "state DB integrity_check failures"),
    ("exceptions", "exceptions escaping other than the documented ones"),
    ("http_429", "HTTP 429 replies the client received"),
)
_OPEN_STATES = {"submitting", "unknown", "accepted", "partial", "cancelling"}
_WORKING_STATUS = {4, 6}


# ---------------------------------------------------------------------- the seed's plan
@dataclasses.dataclass
class LifePlan:
    kill: str                 # timer | on_send | in_flight | after_reply | episode | final
    op: str = "place"         # for the send-based kills
    nth: int = 1              # the nth such request of the life
    after: float = 2.0        # timer: seconds after "go"; episode: when tokens are invalidated
    drop_socket: float | None = None  # seconds after "go" the order socket is dropped
    hold: float = 0.8         # in_flight: how long the venue holds the request


@dataclasses.dataclass
class SeedPlan:
    seed: int
    mode: str
    lives: list[LifePlan]
    rules: list[tuple[str, dict]]        # admin fault actions installed each life
    late_rules: list[tuple[str, dict]]   # installed only in the first lives (they resolve 5-30 s later)
    order_messages: dict[str, float]


def plan_seed(seed: int, lives: int, mode: str | None = None) -> SeedPlan:
    rng = random.Random(f"chaos-seed:{seed}")
    mode = mode or ("cerebro" if rng.random() < 0.25 else "core")
    episode = rng.randrange(1, max(2, lives - 1)) if lives >= 3 else None
    plans = []
    for life in range(lives):
        r = random.Random(f"chaos-kill:{seed}:{life}")
        if life == episode:
            plans.append(LifePlan("episode", after=r.uniform(0.5, 3.0)))
            continue
        kind = r.choices(("timer", "on_send", "in_flight", "after_reply"), (0.3, 0.15, 0.4, 0.15))[0]
        op = r.choices(("place", "modify", "cancel"), (0.5, 0.25, 0.25))[0]
        plans.append(LifePlan(kind, op=op, nth=r.randint(1, 3), after=r.uniform(0.5, 6.0),
                              drop_socket=r.uniform(0.3, 4.0) if r.random() < 0.3 else None,
                              hold=r.uniform(0.3, 2.5)))
    plans.append(LifePlan("final"))

    def p(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi), 3)

    rules: list[tuple[str, dict]] = []
    methods = ("POST", "PATCH", "DELETE")
    if rng.random() < 0.8:  # lost replies
        for m in methods:
            rules.append(("lose_response", {"path": ORDERS_PATH, "method": m, "times": None, "probability": p(0.03, 0.12)}))
    if rng.random() < 0.6:  # delays past the client's deadline
        for m in methods:
            rules.append(("rest_delay", {"path": ORDERS_PATH, "method": m, "seconds": READ_TIMEOUT + 0.5, "times": None,
                                         "probability": p(0.02, 0.08)}))
    if rng.random() < 0.7:  # "not confirmed" replies, carried out or not
        for m in methods:
            code = rng.choice((201, -201, -202, -204, -205, -329) if m == "POST" else (-201, -202, -204, -205, -329))
            rules.append(("unconfirmed", {"path": ORDERS_PATH, "method": m, "code": code, "process": rng.random() < 0.7,
                                          "times": None, "probability": p(0.02, 0.08)}))
    if rng.random() < 0.7:  # 5xx, on orders and on the books
        for m in methods:
            rules.append(("rest_error", {"path": ORDERS_PATH, "method": m, "status": rng.choice((500, 502, 503)),
                                         "times": None, "probability": p(0.02, 0.08)}))
        for path in ("/api/v3/orders", "/api/v3/tradebook", "/api/v3/positions"):
            rules.append(("rest_error", {"path": path, "method": "GET", "status": rng.choice((500, 503)),
                                         "times": None, "probability": p(0.01, 0.06)}))
    late_rules: list[tuple[str, dict]] = []
    if rng.random() < 0.8:  # late booking
        for reply in rng.sample(("drop", "hang", "no_ack", -201, -205, -329), 2):
            late_rules.append(("late_booking", {"path": ORDERS_PATH, "method": "POST", "seconds": LATE_RANGE[0],
                                                "seconds_max": LATE_RANGE[1], "reply": reply, "times": None,
                                                "probability": p(0.03, 0.08)}))
        if rng.random() < 0.4:
            late_rules.append(("late_booking", {"path": ORDERS_PATH, "method": rng.choice(("PATCH", "DELETE")),
                                                "seconds": LATE_RANGE[0], "seconds_max": LATE_RANGE[1] / 2,
                                                "reply": "no_ack", "times": None, "probability": p(0.03, 0.08)}))
    odds = {k: p(0.0, 0.15) for k in ("duplicate", "reorder", "drop")} if rng.random() < 0.7 else {}
    return SeedPlan(seed, mode, plans, rules, late_rules, odds)


# ---------------------------------------------------------------------- results
@dataclasses.dataclass
class SeedResult:
    seed: int
    mode: str
    kills: int = 0
    lives: int = 0
    orders: int = 0          # order tags the broker committed (state DB rows)
    venue_orders: int = 0    # orders FYERS (the venue) booked
    seconds: float = 0.0
    breaches: dict[str, dict[Any, str]] = dataclasses.field(
        default_factory=lambda: {k: {} for k, _ in FIGURES})
    error: str | None = None  # the harness itself could not finish the seed
    requests: dict[str, int] = dataclasses.field(default_factory=dict)  # REST requests FYERS saw, by path

    def add(self, figure: str, key: Any, detail: str) -> None:
        self.breaches[figure].setdefault(key, detail)

    def figure(self, name: str) -> int:
        if name == "http_429":
            return sum(int(v) for v in self.breaches[name].values())
        return len(self.breaches[name])

    @property
    def clean(self) -> bool:
        return self.error is None and all(self.figure(k) == 0 for k, _ in FIGURES)


# ---------------------------------------------------------------------- processes
class Proc:
    """A child process with stdout lines on a queue and a stdin to write words to."""

    def __init__(self, cmd: list[str], cwd: Path, stderr_path: Path, env: dict[str, str]) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self._err = open(stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                                     text=True, cwd=cwd, env=env, bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float) -> str | None | bool:
        """A line, None at EOF, False when nothing came within ``timeout``."""
        try:
            line = self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return False
        if line is not None:
            self.seen.append(line)
        return line

    def write(self, word: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(word + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def kill(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait()

    def wait(self, timeout: float = 30.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        self._err.close()
        return code


#: the variable the PostgreSQL DSN reaches the child's state.yaml by (``postgres.dsn_env``)
PG_DSN_ENV = "FYERS_CHAOS_STATE_DSN"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # CHAOS_LIBRARY_DIR: a directory holding another fyers_store package to put under test (e.g. an
    # older commit's, to see the suite catch what was fixed since); fyers_sim stays this tree's.
    first = [env["CHAOS_LIBRARY_DIR"]] if env.get("CHAOS_LIBRARY_DIR") else []
    env["PYTHONPATH"] = os.pathsep.join([*first, str(REPO / "src"), str(TESTS), str(HERE), env.get("PYTHONPATH", "")])
    for var in ("FYERS_CONFIG_DIR", "FYERS_CREDENTIALS_YAML", "FYERS_STATE_YAML", "FYERS_STATE_DB_PATH",
                "FYERS_STATE_ACCOUNT_ID", "FYERS_LOGGING_YAML", "FYERS_ENVIRONMENT"):
        env.pop(var, None)
    return env


# ---------------------------------------------------------------------- one seed
class SeedRun:
    """Run one seed in ``workdir``; ``say`` gets progress lines."""

    def __init__(self, seed: int, workdir: Path, *, lives: int, mode: str | None = None,
                 say: Callable[[str], None] = print, state_backend: str = "sqlite", pg_dsn: str | None = None) -> None:
        self.plan = plan_seed(seed, lives, mode)
        self.seed, self.work, self.say = seed, workdir, say
        if state_backend not in ("sqlite", "postgres") or (state_backend == "postgres" and not pg_dsn):
            raise ValueError("state_backend is sqlite, or postgres with pg_dsn")
        #: with postgres, the seed's state lives in schema chaos_<seed> of that database
        self.state_backend, self.pg_dsn, self.pg_schema = state_backend, pg_dsn, f"chaos_{seed}"
        self.env = child_env()
        if pg_dsn:
            self.env[PG_DSN_ENV] = pg_dsn  # the DSN (with its password) reaches the child only by environment
        self.result = SeedResult(seed, self.plan.mode)
        self.http = requests.Session()
        self.episode_open = False
        self.check_no = 0

    # ------------------------------------------------------------------ venue access
    def admin(self, method: str, route: str, **body: Any) -> dict:
        r = self.http.request(method, f"{self.urls['rest']}/admin/{route}", json=body or None, timeout=30)
        r.raise_for_status()
        return r.json()

    def fault(self, action: str, **args: Any) -> Any:
        return self.admin("POST", "faults", action=action, args=args)["result"]

    def ltp(self) -> dict[str, float]:
        now = self.admin("GET", "clock")["time"]
        return {s: self.market.last_tick(s, now).ltp for s in (SBIN, INFY)}

    # ------------------------------------------------------------------ setup
    def start_venue(self) -> None:
        from fyers_sim.market import MarketData

        self.venue = Proc([sys.executable, str(VENUE), "--seed", str(self.seed)], self.work, self.work / "venue.err",
                          child_env())
        line = self.venue.next_line(30)
        if not line:
            raise RuntimeError(f"venue did not start: {line!r}")
        self.urls = dict(part.split("=", 1) for part in line.split())
        self.market = MarketData(self.seed)  # the venue's prices are a function of its seed

    def write_config(self) -> None:
        from fyers_sim.tokens import VenueAccount

        from fyers_store.config import templates_dir

        cfg = self.work / "config"
        shutil.copytree(templates_dir(), cfg)
        acc = VenueAccount()
        data = {"username": acc.fy_id, "app_id": acc.app_base, "app_type": "100", "secret_key": acc.secret_key,
                "redirect_uri": acc.redirect_uri, "totp_key": acc.totp_secret, "pin": acc.pin,
                "token_path": str(self.work / "secrets" / "fyers_token.json"),
                "sdk_log_dir": str(self.work / "sdk_logs"), "api_base_url": self.urls["rest"] + "/api/v3",
                "login_base_url": self.urls["rest"] + "/vagator/v2"}
        (cfg / "fyers_credentials.yaml").write_text(yaml.safe_dump(data))

        def edit(name: str, **changes: Any) -> None:
            path = cfg / name
            values = yaml.safe_load(path.read_text())
            values.update(changes)
            path.write_text(yaml.safe_dump(values))

        edit("fyers_rest_limits.yaml", connect_timeout_seconds=CONNECT_TIMEOUT, read_timeout_seconds=READ_TIMEOUT)
        if self.state_backend == "postgres":
            from urllib.parse import urlsplit, urlunsplit

            parts = urlsplit(self.pg_dsn or "")
            host = parts.hostname or ""
            bare = urlunsplit((parts.scheme, f"{parts.username}@{host}:{parts.port}", parts.path, "", ""))
            edit("state.yaml", state_db_path=None, backend="postgres", local_dir=str(self.work), account_id=acc.fy_id,
                 postgres={"dsn": bare, "dsn_env": PG_DSN_ENV, "schema": self.pg_schema})
        else:
            edit("state.yaml", state_db_path=str(self.work / "state.sqlite"), account_id=acc.fy_id)
        edit("cache.yaml", db_path=str(self.work / "cache.sqlite"))
        edit("broker.yaml", reconcile_interval_seconds=RECONCILE_INTERVAL)
        self.config = cfg
        self.credentials = cfg / "fyers_credentials.yaml"

    def operator_login(self, force: bool) -> None:
        """``fyers-store login [--force]``, as an operator would run it."""
        cmd = [str(Path(sys.executable).with_name("fyers-store")), "login", "--credentials", str(self.credentials)]
        if not Path(cmd[0]).exists():
            cmd = [sys.executable, "-m", "fyers_store.cli.main", *cmd[1:]]
        done = subprocess.run(cmd + (["--force"] if force else []), cwd=self.work, env=child_env(),
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"login failed: {done.stdout}{done.stderr}")

    # ------------------------------------------------------------------ the run
    def run(self) -> SeedResult:
        started = time.monotonic()
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self.start_venue()
            try:
                self.write_config()
                self.operator_login(force=False)
                for life, plan in enumerate(self.plan.lives):
                    self.run_life(life, plan)
                self.collect_429()
            finally:
                self.venue.write("")
                if self.venue.proc.stdin:
                    self.venue.proc.stdin.close()
                self.venue.proc.send_signal(signal.SIGTERM)
                self.venue.wait(20)
        except Exception as exc:  # the harness could not finish: reported, never hidden
            import traceback

            self.result.error = f"{type(exc).__name__}: {exc}"
            (self.work / "harness.err").write_text(traceback.format_exc())
        self.result.seconds = time.monotonic() - started
        return self.result

    def install_faults(self, life: int, final: bool) -> None:
        self.fault("clear")
        if final:
            return
        for action, args in self.plan.rules:
            self.fault(action, **args)
        if life < max(1, len(self.plan.lives) - 3):
            for action, args in self.plan.late_rules:
                self.fault(action, **args)
        if self.plan.order_messages:
            self.fault("order_messages", **self.plan.order_messages)

    def spawn(self, life: int, final: bool) -> Proc:
        ltp = self.ltp()
        cmd = [sys.executable, str(CHILD), "--rest", self.urls["rest"], "--order-ws", self.urls["order_ws"],
               "--data-ws", self.urls["data_ws"], "--config-dir", str(self.config), "--seed", str(self.seed),
               "--life", str(life), "--mode", self.plan.mode, "--log", str(self.work / "child.log"),
               *[a for s, v in ltp.items() for a in ("--ltp", f"{s}={v}")]]
        if final:
            cmd.append("--final")
        return Proc(cmd, self.work / "cwd", self.work / "child.err", self.env)

    def run_life(self, life: int, plan: LifePlan) -> None:
        final = plan.kill == "final"
        if final:  # every late request carried out, faults off: the settle period
            self.fault("clear")
            self.wait_late(max_wait=LATE_RANGE[1] + 10)
        for attempt in range(3):
            self.install_faults(life, final)
            # FYERS's books as the restart finds them: the child's reconcile must account for all of
            # it (requests still held or booked late by the venue may add orders after this).
            before = self.admin("GET", "state")
            child = self.spawn(life, final)
            self.result.lives += 1
            outcome = self.until_reconciled(child, life)
            if outcome == "reconciled":
                break
            if outcome == "auth":  # the restart met the dead token: log in again, restart
                self.operator_login(force=True)
                self.episode_open = False
                continue
            return  # breach recorded; next life
        else:
            self.result.add("exceptions", (life, "restart"), "could not restart after three logins")
            return
        self.check(f"life {life} start", end=False, venue=before)
        child.write("go")
        if final:
            self.drive_final(child, life)
            self.check(f"end", end=True)
        else:
            self.drive(child, life, plan)

    def until_reconciled(self, child: Proc, life: int) -> str:
        deadline = time.monotonic() + 90
        while True:
            line = child.next_line(deadline - time.monotonic())
            if line is False:
                child.kill()
                self.result.add("exceptions", (life, "no-start"), f"life {life}: no 'reconciled' within 90 s")
                return "breach"
            if line is None:
                code = child.wait()
                return self.judge_exit(child, life, code)
            self.observe(line, life)
            if line == "reconciled":
                self.episode_open = False  # this child holds a token FYERS accepts
                return "reconciled"

    def judge_exit(self, child: Proc, life: int, code: int) -> str:
        """A child that ended by itself: a documented AuthError (in the episode) or a breach."""
        exc = next((line for line in reversed(child.seen) if line.startswith("exc ")), None)
        if exc is not None:
            _, name, cause, *_ = exc.split(" ", 3)
            documented = name == "AuthError" or (name == "ReconcileFailureError" and cause == "AuthError")
            if documented and self.episode_open:
                return "auth"
            self.result.add("exceptions", (life, name), f"life {life}: {exc} (episode open: {self.episode_open})")
            if documented:
                return "auth"
            return "breach"
        self.result.add("exceptions", (life, f"exit {code}"), f"life {life}: exited with status {code}; "
                                                                f"stderr in {self.work / 'child.err'}")
        return "breach"

    def observe(self, line: str, life: int) -> None:
        words = line.split(" ", 3)
        if words[0] == "placed":
            pass
        elif words[0] == "event" and len(words) >= 3:
            if words[1] == "anomaly":
                self.result.add("anomalies", words[2], f"life {life}: {line}")
            elif words[1] == "position":
                self.result.add("positions_mismatch", ("adopted", life, words[2]), f"life {life}: {line}")
            elif words[1] == "external":
                self.result.add("orders_lost", ("external", words[2]), f"life {life}: {line}")

    def fault_log_total(self) -> int:
        return int(self.admin("GET", "faults")["logged"])

    def held(self, since: int, method: str) -> bool:
        body = self.admin("GET", "faults")
        new = body["log"][-(body["logged"] - since):] if body["logged"] > since else []
        return any(e.get("fault") == "delay" and e.get("method") == method and e.get("path") == ORDERS_PATH
                   for e in new)

    def drive(self, child: Proc, life: int, plan: LifePlan) -> None:
        """Read the child's lines, act per ``plan`` (kill, invalidate, drop the socket)."""
        go = time.monotonic()
        counts: collections.Counter = collections.Counter()
        socket_dropped = False
        invalidated = False
        backstop = go + (25.0 if plan.kill == "episode" else 12.0)
        method = {"place": "POST", "modify": "PATCH", "cancel": "DELETE"}
        while True:
            now = time.monotonic()
            if plan.drop_socket is not None and not socket_dropped and now - go >= plan.drop_socket:
                self.fault("drop_socket", which="order", close_frame=bool(life % 2))
                socket_dropped = True
            if plan.kill == "episode" and not invalidated and now - go >= plan.after:
                self.fault("invalidate_tokens")
                invalidated = self.episode_open = True
            if (plan.kill == "timer" and now - go >= plan.after) or now >= backstop:
                self.killed(child, life, f"timer {now - go:.1f}s")
                return
            line = child.next_line(0.05)
            if line is False:
                continue
            if line is None:
                code = child.wait()
                if self.judge_exit(child, life, code) == "auth":
                    self.operator_login(force=True)
                    self.episode_open = False
                return
            self.observe(line, life)
            words = line.split()
            if words[0] == "send":
                counts[words[1]] += 1
                hit = plan.op == words[1] and counts[words[1]] == plan.nth
                if hit and plan.kill == "on_send":
                    self.killed(child, life, f"before {line}")
                    return
                if hit and plan.kill == "in_flight":
                    since = self.fault_log_total()
                    self.fault("rest_delay", path=ORDERS_PATH, method=method[words[1]], seconds=plan.hold,
                               times=1, first=True)
                    child.write("ok")
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline and not self.held(since, method[words[1]]):
                        pass
                    self.killed(child, life, f"in flight {line}")
                    return
                child.write("ok")
            elif words[0] == "sent" and plan.kill == "after_reply" and plan.op == words[1] \
                    and counts[words[1]] == plan.nth:
                self.killed(child, life, f"after {line}")
                return

    def killed(self, child: Proc, life: int, how: str) -> None:
        code = child.kill()
        if code == -signal.SIGKILL:
            self.result.kills += 1
            self.say(f"seed {self.seed} life {life}: SIGKILL {how}")
        else:
            self.judge_exit(child, life, code)

    def drive_final(self, child: Proc, life: int) -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = child.next_line(deadline - time.monotonic())
            if line is False:
                break
            if line is None:
                code = child.wait()
                if code != 0:
                    self.judge_exit(child, life, code)
                return
            self.observe(line, life)
            if line.startswith("send "):
                child.write("ok")
        child.kill()
        self.result.add("exceptions", (life, "final"), "the final settle did not finish within 150 s")

    def wait_late(self, max_wait: float) -> None:
        deadline = time.monotonic() + max_wait
        while self.admin("GET", "faults")["late_pending"] and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the venue with a deadline

    def collect_429(self) -> None:
        state = self.admin("GET", "state")
        self.result.requests = dict(state.get("requests") or {})
        for path, n in (state.get("rate_limited") or {}).items():
            self.result.add("http_429", path, str(n))

    # ------------------------------------------------------------------ the oracle
    def read_state(self) -> tuple[dict, dict, dict, str]:
        """The state DB's orders, ledger and positions as committed, read around the library (a
        read-only SQLite connection, or a new PostgreSQL one), and its integrity verdict."""
        queries = ("SELECT order_tag, venue_order_id, state, filled_qty, extra FROM orders",
                   "SELECT trade_id, order_tag, qty FROM applied_trades", "SELECT symbol, qty FROM positions")
        if self.state_backend == "postgres":
            import psycopg

            with psycopg.connect(self.pg_dsn or "", autocommit=True) as pg:
                pg.execute(f"SET search_path TO {self.pg_schema}")
                results = [pg.execute(q).fetchall() for q in queries]
            integrity = "ok"  # no file to check: every write passed the tables' constraints
        else:
            db = self.work / "state.sqlite"
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            try:
                results = [conn.execute(q).fetchall() for q in queries]
                integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                conn.close()
        rows = {r[0]: r for r in results[0]}
        ledger = {str(r[0]): r for r in results[1]}
        positions = {r[0]: int(r[1]) for r in results[2] if int(r[1])}
        return rows, ledger, positions, integrity

    def check(self, where: str, *, end: bool, venue: dict | None = None) -> None:
        """Compare the state DB with FYERS's books (``venue``: as read before the restart; by
        default read now). Duplicate tags are always checked against the books as they are now."""
        self.check_no += 1
        res = self.result
        now = self.admin("GET", "state")
        venue = venue or now
        tags_now = collections.Counter(str(o.get("orderTag", "")) for o in now["orders"])
        for tag, n in tags_now.items():
            if tag.startswith("1:") and n > 1:
                res.add("duplicate_orders", tag[2:], f"{where}: tag {tag[2:]} on {n} venue orders")
        rows, ledger, positions, integrity = self.read_state()
        if integrity != "ok":
            res.add("integrity", self.check_no, f"{where}: {integrity}")
        by_tag: dict[str, list[dict]] = collections.defaultdict(list)
        for o in venue["orders"]:
            tag = str(o.get("orderTag", ""))
            if not tag.startswith("1:"):
                res.add("orders_lost", ("untagged", o["id"]), f"{where}: venue order {o['id']} without our tag")
                continue
            by_tag[tag[2:]].append(o)
        trades = {str(t["tradeNumber"]): t for t in venue["trades"]}
        filled: collections.Counter = collections.Counter()
        for t in trades.values():
            filled[str(t.get("orderTag", ""))[2:]] += int(t["tradedQty"])
        for tag, orders in by_tag.items():
            if len(orders) > 1:
                res.add("duplicate_orders", tag, f"{where}: tag {tag} on venue orders {[o['id'] for o in orders]}")
            row = rows.get(tag)
            venue_status = {int(o["status"]) for o in orders}
            if row is None or (row[2] == "rejected" and venue_status != {5}):
                res.add("orders_lost", tag, f"{where}: FYERS has {tag} (ids {[o['id'] for o in orders]}, status "
                                            f"{sorted(venue_status)}, filled {filled[tag]}); state DB row: "
                                            f"{row[1:4] if row else None}")
            if row is not None and int(row[3]) != filled[tag]:
                res.add("filled_mismatch", tag, f"{where}: {tag} state {row[2]} filled {row[3]}, FYERS tradebook "
                                                f"{filled[tag]}")
        for trade_id, t in trades.items():
            if trade_id not in ledger:
                res.add("trades_missing", trade_id, f"{where}: trade {trade_id} of {t.get('orderTag')} "
                                                    f"({t['tradedQty']}) not in the ledger")
        for trade_id, r in ledger.items():
            t = trades.get(trade_id)
            if t is None or (r[1] is not None and str(t.get("orderTag"))[2:] != r[1]) or int(r[2]) != int(t["tradedQty"]):
                res.add("trades_duplicated", trade_id, f"{where}: ledger row {r} vs FYERS {t}")
        net: collections.Counter = collections.Counter()
        for p in venue["positions"]:
            net[p["symbol"]] += int(p["netQty"])
        venue_net = {s: q for s, q in net.items() if q}
        if venue_net != positions:
            res.add("positions_mismatch", ("check", self.check_no), f"{where}: state DB {positions}, FYERS {venue_net}")
        for tag, row in rows.items():
            extra = json.loads(row[4] or "{}")
            if extra.get("halted"):
                res.add("anomalies", tag, f"{where}: {tag} halted ({extra.get('message', '')})")
            if end and (row[2] in _OPEN_STATES):
                res.add("unresolved", tag, f"end: {tag} left {row[2]} (FYERS status "
                                           f"{[o['status'] for o in by_tag.get(tag, [])]})")
        if end:
            for tag, orders in by_tag.items():
                if any(int(o["status"]) in _WORKING_STATUS for o in orders):
                    res.add("unresolved", ("working", tag), f"end: {tag} still working at FYERS")
            res.orders = len(rows)
            res.venue_orders = len(venue["orders"])
