"""Seeded, scriptable fault injection for the venue.

One :class:`FaultPlan` per venue. Tests call its methods directly; the admin endpoint
(``POST /admin/faults``) calls the same methods by name. Every random decision comes from a
``random.Random`` seeded from the venue seed and the fault kind, so a run with the same seed and
the same sequence of requests/messages injects the same faults.

REST faults are rules matched on (method, path), each firing ``times`` times (None: until
cleared) with a probability. Socket faults act on the live servers, which register themselves
as controllers. Token faults act on the token authority.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

__all__ = ["RestFault", "FaultPlan", "SocketControl", "REST_FAULT_KINDS", "ADMIN_ACTIONS", "ORDER_WRITE_ROUTES",
           "STATIC_IP_REFUSAL"]

#: error: HTTP status + JSON (or HTML) body; delay: answer after ``seconds`` real seconds;
#: hang: never answer (until the venue stops); lose_response: process the request, then reset the
#: connection without a reply; rate_limit: 429 + Retry-After; malformed: 200 with a non-JSON body;
#: unconfirmed: FYERS's "request made, outcome not confirmed" replies (code 201 with no order id,
#: or a connection-error code such as -201/-202/-204/-205/-329), with or without processing the
#: request; late: take the body in, answer (drop / hang / an unconfirmed reply) and carry the
#: request out only ``seconds`` later ("late booking"); static_ip: refuse order requests as coming
#: from an IP that is not the app's whitelisted static IP (see :data:`STATIC_IP_REFUSAL`).
REST_FAULT_KINDS = ("error", "delay", "hang", "lose_response", "rate_limit", "malformed", "unconfirmed", "late",
                    "static_ip")

#: The requests FYERS gates by static IP since 1 Apr 2026: order placement, modification,
#: cancellation and position exit (data, reports and sockets are not gated; fyers_2026.md §1).
ORDER_WRITE_ROUTES = frozenset({
    ("POST", "/api/v3/orders/sync"), ("PATCH", "/api/v3/orders/sync"), ("DELETE", "/api/v3/orders/sync"),
    ("POST", "/api/v3/orders/async"), ("PATCH", "/api/v3/orders/async"), ("DELETE", "/api/v3/orders/async"),
    ("POST", "/api/v3/multi-order/sync"), ("PATCH", "/api/v3/multi-order/sync"),
    ("DELETE", "/api/v3/multi-order/sync"), ("DELETE", "/api/v3/positions"),
    ("POST", "/api/v3/gtt/orders/sync"), ("PATCH", "/api/v3/gtt/orders/sync"), ("DELETE", "/api/v3/gtt/orders/sync"),
})

#: How the venue refuses an order request from a non-whitelisted IP: HTTP status, FYERS code and
#: message (``{ip}`` is filled in). INFERRED (2026-12): FYERS documents the rule, not the reply;
#: 403 is its documented "permission error" status, -50 its usual code for refused order requests.
#: Change it here (or per fault: ``static_ip_refusal(status=..., code=..., message=...)``).
STATIC_IP_REFUSAL = (403, -50, "Order request rejected: {ip} is not a whitelisted static IP for this app. "
                               "Orders are accepted only from the static IP registered for the API app")

#: How a "late" fault answers before it carries the request out: reset the connection at once
#: ("drop"), keep it open unanswered until the request is carried out ("hang"), or answer with
#: code 201 ("no_ack"). An int is a negative FYERS code to answer with (e.g. -201).
LATE_REPLIES = ("drop", "hang", "no_ack")

#: FYERS codes for an order request whose outcome it could not confirm (INFERRED wording: FYERS
#: documents the codes -- "connection error" for -201/-202/-204/-205, -329 -- not the messages).
UNCONFIRMED_CODES = {
    201: "Request made but no acknowledgement received. Please check the orderbook",
    -201: "Connection error. Please check the orderbook before placing the order again",
    -202: "Connection error. Please check the orderbook before placing the order again",
    -204: "Connection error. Please check the orderbook before placing the order again",
    -205: "Connection error. Please check the orderbook before placing the order again",
    -329: "Order status could not be confirmed. Please check the orderbook",
}

#: The fault methods the admin endpoint may call.
ADMIN_ACTIONS = (
    "rest_error", "rest_delay", "rest_hang", "lose_response", "rate_limit_burst",
    "malformed_response", "unconfirmed", "late_booking", "order_messages", "drop_socket", "stall_socket",
    "resume_socket", "malformed_frame", "expire_tokens", "invalidate_tokens", "login_elsewhere",
    "static_ip_refusal", "silence_symbol", "unsilence_symbol", "clear",
)

_LOG_LIMIT = 1000


class SocketControl(Protocol):
    """What a socket server offers the fault plan."""

    def drop(self, close_frame: bool) -> int: ...
    def stall(self, on: bool) -> None: ...
    def send_malformed(self) -> int: ...


@dataclass
class RestFault:
    """One REST fault rule (see :data:`REST_FAULT_KINDS`)."""

    kind: str
    path: str | None = None      # exact request path, e.g. "/api/v3/orders/sync"; None: any
    method: str | None = None    # "GET", "POST", ...; None: any
    times: int | None = 1        # remaining firings; None: until cleared
    probability: float = 1.0
    status: int = 500
    seconds: float = 0.0
    retry_after: float = 1.0
    html: bool = False
    code: int = 201              # unconfirmed: the FYERS code answered (see UNCONFIRMED_CODES)
    process: bool = True         # unconfirmed: carry the request out before answering
    reply: str | int = "drop"    # late: see LATE_REPLIES
    seconds_max: float | None = None  # late: carry out after a seeded draw in [seconds, seconds_max]
    message: str = ""            # static_ip: the refusal text ({ip} filled in)
    ip: str = ""                 # static_ip: the client IP the refusal names
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in REST_FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {REST_FAULT_KINDS}, got {self.kind!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 or None")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.method is not None:
            self.method = self.method.upper()
        if self.kind == "unconfirmed" and self.code not in UNCONFIRMED_CODES:
            raise ValueError(f"unconfirmed code must be one of {sorted(UNCONFIRMED_CODES)}, got {self.code!r}")
        if self.kind == "late":
            if isinstance(self.reply, bool) or not (self.reply in LATE_REPLIES or (
                    isinstance(self.reply, int) and self.reply in UNCONFIRMED_CODES and self.reply < 0)):
                raise ValueError(f"late reply must be one of {LATE_REPLIES} or a negative code in "
                                 f"{sorted(c for c in UNCONFIRMED_CODES if c < 0)}, got {self.reply!r}")
            if self.seconds < 0 or (self.seconds_max is not None and self.seconds_max < self.seconds):
                raise ValueError("late seconds must be >= 0 and seconds_max >= seconds")

    def matches(self, method: str, path: str) -> bool:
        if self.kind == "static_ip" and self.path is None:  # every order request, nothing else
            return (method, path) in ORDER_WRITE_ROUTES and (self.method is None or self.method == method)
        return (self.path is None or self.path == path) and (self.method is None or self.method == method)

    def refusal_body(self) -> dict:
        """static_ip: the JSON error body."""
        return {"s": "error", "code": self.code, "message": self.message.format(ip=self.ip)}


@dataclass
class _OrderMessageOdds:
    duplicate: float = 0.0
    reorder: float = 0.0
    drop: float = 0.0


@dataclass
class FaultPlan:
    """The venue's fault controls. ``tokens`` and ``clock`` are the venue's; sockets register."""

    seed: int = 0
    tokens: Any = None
    clock: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rules: list[RestFault] = field(default_factory=list, repr=False)
    _sockets: dict[str, SocketControl] = field(default_factory=dict, repr=False)
    _odds: _OrderMessageOdds = field(default_factory=_OrderMessageOdds, repr=False)
    log: deque = field(default_factory=lambda: deque(maxlen=_LOG_LIMIT), repr=False)
    #: "late" requests taken in and not carried out yet
    late_pending: int = 0
    #: how many log records were ever written (the log keeps the last 1000)
    logged: int = 0
    #: symbols the data socket sends no updates for (their subscribe snapshot still comes), each
    #: with the venue time it went silent (None without a clock): its snapshot is its state then.
    #: Replaced, never mutated, so readers need no lock.
    silenced: Mapping[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rest_rng = random.Random(f"faults:rest:{self.seed}")
        self._msg_rng = random.Random(f"faults:order-socket:{self.seed}")

    def _record(self, what: str, **details: Any) -> None:
        self.log.append({"fault": what, **details})
        self.logged += 1

    # ------------------------------------------------------------------ REST
    def add_rest_fault(self, fault: RestFault, first: bool = False) -> RestFault:
        """Install a rule; the first matching rule wins when several match (``first``: this one
        goes before the rules installed so far)."""
        with self._lock:
            if first:
                self._rules.insert(0, fault)
            else:
                self._rules.append(fault)
        return fault

    def rest_error(self, path: str | None = None, status: int = 500, times: int | None = 1,
                   method: str | None = None, probability: float = 1.0, html: bool = False) -> RestFault:
        """Answer matching requests with HTTP ``status`` (JSON error body, or HTML if ``html``)."""
        return self.add_rest_fault(RestFault("error", path, method, times, probability, status=status, html=html))

    def rest_delay(self, path: str | None, seconds: float, times: int | None = 1,
                   method: str | None = None, probability: float = 1.0, first: bool = False) -> RestFault:
        """Handle matching requests only after ``seconds`` real seconds (the body is taken in first,
        so the request is carried out even if the client gave up). ``first``: ahead of every
        rule installed so far."""
        return self.add_rest_fault(RestFault("delay", path, method, times, probability, seconds=seconds), first)

    def rest_hang(self, path: str | None, times: int | None = 1, method: str | None = None,
                  probability: float = 1.0) -> RestFault:
        """Never answer matching requests (the connection stays open until the venue stops)."""
        return self.add_rest_fault(RestFault("hang", path, method, times, probability))

    def lose_response(self, path: str = "/api/v3/orders/sync", method: str | None = "POST",
                      times: int | None = 1, probability: float = 1.0) -> RestFault:
        """Process matching requests (e.g. book the order), then reset the connection unanswered."""
        return self.add_rest_fault(RestFault("lose_response", path, method, times, probability))

    def rate_limit_burst(self, count: int = 1, retry_after: float = 1.0, path: str | None = None) -> RestFault:
        """The next ``count`` requests get HTTP 429 with ``Retry-After``."""
        return self.add_rest_fault(RestFault("rate_limit", path, None, count, retry_after=retry_after))

    def malformed_response(self, path: str | None = None, times: int | None = 1,
                           method: str | None = None, probability: float = 1.0) -> RestFault:
        """Answer matching requests with HTTP 200 and a body that is not JSON."""
        return self.add_rest_fault(RestFault("malformed", path, method, times, probability))

    def unconfirmed(self, path: str | None = "/api/v3/orders/sync", method: str | None = "POST", code: int = 201,
                    process: bool = True, times: int | None = 1, probability: float = 1.0,
                    status: int = 200) -> RestFault:
        """Answer matching requests with HTTP ``status`` and FYERS's "not confirmed" reply: code 201
        "request made, no acknowledgement" (``s`` ok, no order id) or a negative connection-error
        code (-201/-202/-204/-205/-329). With ``process`` the request is carried out first (the
        order **is** booked, modified or cancelled); without, it is not."""
        return self.add_rest_fault(RestFault("unconfirmed", path, method, times, probability, status=status,
                                             code=int(code), process=bool(process)))

    def late_booking(self, path: str | None = "/api/v3/orders/sync", method: str | None = "POST",
                     seconds: float = 10.0, seconds_max: float | None = None, reply: str | int = "drop",
                     times: int | None = 1, probability: float = 1.0) -> RestFault:
        """Take matching requests in, answer per ``reply`` (see :data:`LATE_REPLIES`) and carry them
        out ``seconds`` real seconds later (a seeded draw up to ``seconds_max`` when given), at the
        venue time then: FYERS booking an order long after the client gave up on the reply."""
        return self.add_rest_fault(RestFault("late", path, method, times, probability, seconds=float(seconds),
                                             seconds_max=None if seconds_max is None else float(seconds_max),
                                             reply=reply))

    def late_delay(self, rule: RestFault) -> float:
        """The delay of one firing of a "late" rule (seeded when it has a range)."""
        if rule.seconds_max is None or rule.seconds_max == rule.seconds:
            return rule.seconds
        with self._lock:
            return self._rest_rng.uniform(rule.seconds, rule.seconds_max)

    def late_started(self, method: str, path: str, seconds: float) -> None:
        with self._lock:
            self.late_pending += 1
        self._record("late_taken", method=method, path=path, seconds=round(seconds, 3))

    def late_done(self, method: str, path: str, status: int | None) -> None:
        with self._lock:
            self.late_pending -= 1
        self._record("late_carried_out", method=method, path=path, status=status)

    def take_rest_fault(self, method: str, path: str) -> RestFault | None:
        """The rule firing for this request (consuming one of its ``times``), or None."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1.0 and self._rest_rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                self._record(rule.kind, method=method, path=path)
                return rule
        return None

    def static_ip_refusal(self, times: int | None = None, ip: str = "203.0.113.7", path: str | None = None,
                          method: str | None = None, status: int | None = None, code: int | None = None,
                          message: str | None = None) -> RestFault:
        """Refuse order requests (place, modify, cancel, exit; ``path``/``method`` narrow it) as
        FYERS does when they come from an IP that is not the app's whitelisted static IP, or from
        an app not enabled for orders. Nothing is carried out. Default reply: :data:`STATIC_IP_REFUSAL`
        (INFERRED shape). ``times`` None: until cleared (a wrong IP stays wrong)."""
        d_status, d_code, d_message = STATIC_IP_REFUSAL
        return self.add_rest_fault(RestFault(
            "static_ip", path, method, times, status=d_status if status is None else int(status),
            code=d_code if code is None else int(code), message=d_message if message is None else message, ip=ip),
            first=True)

    # ------------------------------------------------------------------ order-socket messages
    def order_messages(self, duplicate: float = 0.0, reorder: float = 0.0, drop: float = 0.0) -> None:
        """Set the odds that each order-socket message is duplicated, held back behind the next
        one (reordered) or dropped. All zero turns the fault off."""
        for name, p in (("duplicate", duplicate), ("reorder", reorder), ("drop", drop)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} probability must be within [0, 1], got {p!r}")
        with self._lock:
            self._odds = _OrderMessageOdds(duplicate, reorder, drop)

    def order_message_fate(self) -> str:
        """"send", "drop", "duplicate" or "reorder" for the next order-socket message.

        Exactly three draws per message whatever the odds, so changing one probability does
        not shift the other decisions of a seeded run.
        """
        with self._lock:
            odds = self._odds
            d, r, u = self._msg_rng.random(), self._msg_rng.random(), self._msg_rng.random()
            fate = "drop" if d < odds.drop else "reorder" if r < odds.reorder else \
                "duplicate" if u < odds.duplicate else "send"
            if fate != "send":
                self._record("order_message", fate=fate)
            return fate

    # ------------------------------------------------------------------ sockets
    def register_socket(self, name: str, control: SocketControl) -> None:
        """Servers call this at start (``name`` is "order" or "data")."""
        with self._lock:
            self._sockets[name] = control

    def _socket(self, which: str) -> SocketControl:
        with self._lock:
            try:
                return self._sockets[which]
            except KeyError:
                raise ValueError(f"no socket server named {which!r}; have {sorted(self._sockets)}") from None

    def drop_socket(self, which: str, close_frame: bool = True) -> int:
        """Disconnect every client of socket ``which`` ("order"/"data"), with a WebSocket close
        frame or by aborting the TCP connection. Returns how many were dropped."""
        n = self._socket(which).drop(close_frame)
        self._record("drop_socket", which=which, close_frame=close_frame, clients=n)
        return n

    def stall_socket(self, which: str) -> None:
        """Keep socket ``which`` connected but silent (nothing sent, requests unanswered)."""
        self._socket(which).stall(True)
        self._record("stall_socket", which=which)

    def resume_socket(self, which: str) -> None:
        """End a stall; held-back messages are delivered."""
        self._socket(which).stall(False)
        self._record("resume_socket", which=which)

    def silence_symbol(self, symbol: str) -> None:
        """The data socket sends ``symbol`` its snapshot at each subscribe and then nothing, as
        FYERS does for an expired contract: the snapshot is the symbol's state at this call, the
        same at every subscribe. The socket and every other symbol go on as usual."""
        at = self.clock.time() if self.clock is not None else None
        with self._lock:
            if symbol not in self.silenced:
                self.silenced = {**self.silenced, symbol: at}
        self._record("silence_symbol", symbol=symbol)

    def unsilence_symbol(self, symbol: str) -> None:
        """End :meth:`silence_symbol` for ``symbol`` (its updates flow again)."""
        with self._lock:
            self.silenced = {k: v for k, v in self.silenced.items() if k != symbol}
        self._record("unsilence_symbol", symbol=symbol)

    def malformed_frame(self, which: str) -> int:
        """Send one malformed frame to every client of socket ``which``."""
        n = self._socket(which).send_malformed()
        self._record("malformed_frame", which=which, clients=n)
        return n

    # ------------------------------------------------------------------ tokens
    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on (venue time)."""
        self.tokens.expire_all(self.clock.time())
        self._record("expire_tokens")

    def invalidate_tokens(self) -> None:
        """Every access token issued so far is invalid from now on."""
        self.tokens.invalidate_all()
        self._record("invalidate_tokens")

    def login_elsewhere(self, drop_sockets: bool = False) -> int:
        """Another device or program logs in to the account mid-session: every access token issued
        so far is invalid from now on (REST -16, socket handshakes refused), as a new FYERS login
        ends the previous session. With ``drop_sockets`` the open socket connections are closed
        too (close frame); returns how many were. INFERRED (2026-12): FYERS does not document what
        happens to sockets already open when another login ends their session; by default they
        stay open, as after the daily expiry, and only new requests and handshakes are refused."""
        self.tokens.invalidate_all()
        dropped = 0
        if drop_sockets:
            with self._lock:
                controls = list(self._sockets.values())
            dropped = sum(control.drop(True) for control in controls)
        self._record("login_elsewhere", drop_sockets=drop_sockets, clients=dropped)
        return dropped

    # ------------------------------------------------------------------ all
    def clear(self) -> None:
        """Remove every REST rule, order-message odds and silenced symbol; resume stalled sockets."""
        with self._lock:
            self._rules.clear()
            self._odds = _OrderMessageOdds()
            self.silenced = {}
            sockets = list(self._sockets.values())
        for control in sockets:
            control.stall(False)
        self._record("clear")

    def apply(self, action: str, args: dict | None = None) -> Any:
        """Call fault method ``action`` with keyword ``args`` (the admin endpoint's entry)."""
        if action not in ADMIN_ACTIONS:
            raise ValueError(f"unknown fault action {action!r}; expected one of {ADMIN_ACTIONS}")
        result = getattr(self, action)(**(args or {}))
        return result.__dict__.copy() if isinstance(result, RestFault) else result
