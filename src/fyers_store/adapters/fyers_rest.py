"""The FYERS REST adapter: the official SDK's ``FyersModel`` behind :class:`RestAdapter`.

What this module adds to the SDK (protocol reference §2.2 and §9 list what the SDK does not do):

* **A deadline on every call.** The SDK's ``requests.Session`` has no timeout. The adapter wraps
  ``session.request`` on the instance it owns (the SDK itself is not modified) so every request
  gets ``(connect_timeout_seconds, read_timeout_seconds)`` from ``config/fyers_rest_limits.yaml``,
  cut to what is left of the call's overall deadline.
* **The transport facts the SDK throws away.** The same wrapper
  (:mod:`~fyers_store.adapters.rest_probe`) records, per thread, the HTTP status, the
  ``Retry-After``/``X-Retry-After-Ms`` headers, any exception and the token of the request the
  SDK just made (a refused token is reported to the store's session, if it listens). The SDK's
  reply dict is only trusted when it is a parsed server body: its shared, mutable ``error_resp``
  (one per FyersModel, returned by reference and rewritten by later failures) is recognised by
  identity and never read or returned.
* **One error taxonomy** (:mod:`fyers_store.errors`), one process-wide budget
  (:mod:`~fyers_store.adapters.rate_limiter`) plus FYERS's order limit for place/modify/cancel
  (which may also take the budget's slots reserved for orders), bounded retries for idempotent
  calls only, and typed results: no SDK dict leaves the adapter.

Error mapping, first rule that matches (-> raised; retried?):

1. timeout, connection refused/reset, no HTTP reply      -> OutcomeUnknown; retried
2. HTTP 429, or body code -429                           -> RateLimitError; retried after Retry-After
                                                            (the shared limiter pauses for everyone)
3. HTTP 5xx, JSON body or not                            -> OutcomeUnknown; retried
4. a static-IP refusal (:func:`is_static_ip_refusal`:    -> StaticIpRefused (a Rejected); not retried
   its message; not an auth code), any HTTP status
4b. HTTP 401/403, or code -8/-15/-16/-17                 -> AuthError; not retried
5. body not JSON (the SDK's ``{"code": <status>,         -> OutcomeUnknown; not retried
   "message": "Bad request"}``), or the SDK failed
   before sending (its -99 "invalid input")
6. ``s`` is ``"ok"`` (``"no_data"`` too for history)     -> the typed value
7. code -201/-202/-204/-205 ("connection error") or      -> OutcomeUnknown; retried (not place_order)
   -329 ("processed ..., check positions")
8. any other negative code                               -> Rejected(code, message, order_id=reply["id"])
9. anything else                                         -> VenueDataError

A modify or cancel whose earlier attempt had an unknown outcome and whose retry is refused (e.g.
-162 "already traded" because the first attempt applied and the order then filled) is an
:class:`OutcomeUnknown`, never that refusal: the refusal answers the retry, not the first attempt.
The broker settles it by looking the order up. (Cancel's -161 "already cancelled" after an unknown
outcome is success, see below.)

"Retried" applies to history, orderbook, tradebook, positions, funds, profile, modify and cancel,
with exponential backoff ``min(cap, base * 2**n) + uniform(0, jitter)``, at most
``max_backoff_retries`` times and never past the call's deadline. ``place_order`` is never
retried: any ambiguous outcome becomes :class:`~fyers_store.errors.OrderPlacementUnknown`
carrying the orderTag, to be resolved with :meth:`FyersSdkRestAdapter.find_order_by_tag`.
A 429 on ``place_order`` is FYERS refusing before processing: RateLimitError, not placed.

Why modify and cancel may be retried and place_order may not: FYERS has no idempotency key, so
re-sending a placement whose fate is unknown can open a second position. A modify names one order
id and absolute values (type, qty, prices): applying it twice leaves the order as applying it
once. A cancel applied twice cannot cancel anything else; its retry hears -161 "already
cancelled", which the adapter reports as success when an earlier attempt's outcome was unknown.
If the order changed meanwhile (filled, expired) the retry gets a refusal that says nothing about
the first attempt: that is reported as an unknown outcome (above). The remaining hazard -- a
retried modify overtaking a *newer* modify of the same order sent from another thread -- is
avoided by modifying one order from one place (the broker).

Lossy spots of the SDK and how they are handled:

* The SDK drops the HTTP status of JSON error bodies and every response header; the transport
  record restores both (5xx vs 4xx, the 429's Retry-After).
* FYERS uses ``-99`` for "order placement rejected" (a definitive answer whose message is the
  reason and which usually carries the order id) and the SDK uses ``-99`` for its own transport
  failures (``"Bad request"`` / ``"invalid input please check your input"``). A ``-99`` that came
  in a server body is a :class:`Rejected`; one the SDK made up (its ``error_resp``, or no HTTP
  reply recorded) is an outcome-unknown. The message text is never used to tell them apart.
* A non-JSON body becomes ``{"code": <HTTP status>, ...}`` in the SDK, so ``code == 200`` can mean
  "garbage with status 200": the identity check above catches it.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from fyers_store.adapters.history_windows import (
    HistoryRangeError, HistoryWindow, candles_to_bars, check_second_history_range, sorted_bars,
)
from fyers_store.adapters.fyers_reports import ReportsMixin
from fyers_store.adapters.fyers_snapshots import SnapshotsMixin
from fyers_store.adapters.interfaces import RestAdapter, TokenRefusalListener
from fyers_store.adapters.rate_limiter import Permit, RestBudget
from fyers_store.adapters.refusals import AUTH_CODES, is_static_ip_refusal
from fyers_store.adapters.rest_probe import SessionProbe, TransportRecord
from fyers_store.adapters.sdk_logs import govern_sdk_logs
from fyers_store.adapters.shared_budget import shared_limiter, shared_order_limiter
from fyers_store.backoff import capped_backoff
from fyers_store.config import RestLimitsConfig
from fyers_store.errors import (
    AlreadyCancelled, AuthError, FyersError, OrderPlacementUnknown, OutcomeUnknown, RateLimitError, Rejected,
    StaticIpRefused, VenueDataError,
)
from fyers_store.logs import get_logger
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.orders import OrderRequest, OrderType
from fyers_store.models.resolution import canonicalize_fyers_resolution, is_seconds_resolution

__all__ = ["AUTH_CODES", "FyersSdkRestAdapter", "HistoryRangeError", "is_static_ip_refusal"]

_log = get_logger(__name__, "rest")
_olog = get_logger(__name__ + ".orders", "orders")

# FYERS's "already cancelled" refusal (protocol §1.5, legacy code table as of 2026-11; the venue uses it).
_ALREADY_CANCELLED = -161
# place_order success without an acknowledgement: "request made, check the orderbook" (§1.4, 2026-11).
_NO_ACK = 201
# Codes for outcomes FYERS could not confirm: -201/-202/-204/-205 "connection error" and -329
# "processed exit positions request, check positions" (shared/fyers_2026.md §4, 2026-12). Unknown,
# never a refusal. Unsure: whether FYERS ever sends them with HTTP 200 or only with 4xx/5xx.
_UNCONFIRMED_CODES = frozenset({-201, -202, -204, -205, -329})
_GATEWAY_STATUSES = frozenset({502, 503, 504})
# Requests FYERS counts against its order limit (10/s for sync place/modify/cancel, 2026).
_ORDER_OPS = frozenset({"place_order", "modify_order", "cancel_order"})

@dataclass
class _Failure:
    """A classified failed attempt."""

    error: FyersError
    retry: bool = False            # on the retry allowlist (429, 5xx, timeout, connection)
    retry_after: float | None = None


# ------------------------------------------------------------------------------------------------


class FyersSdkRestAdapter(ReportsMixin, SnapshotsMixin, RestAdapter):
    """FYERS REST through the official SDK, hardened (see the module docstring for the tables).

    ``limits`` defaults to ``RestLimitsConfig()`` (FYERS's documented limits). ``limiter`` (any
    :class:`~fyers_store.adapters.rate_limiter.RestBudget`) defaults to the process-wide
    :func:`~fyers_store.adapters.shared_budget.shared_limiter`: with ``limits.budget_file`` set,
    the budget of FYERS user ``budget_user`` (default: the client id) shared with every other
    process of that user through the file, else one in-process budget; ``order_limiter``
    (default :func:`~fyers_store.adapters.shared_budget.shared_order_limiter`) is the per-second
    order limit every place/modify/cancel passes as well. Pass either only to isolate
    tests. ``calendar`` (an ``NseCalendar``; default: the shipped one, ``NseCalendar()``) is used to refuse second-resolution ranges FYERS does not keep.
    ``request_deadline_seconds`` bounds one REST request end to end: waiting for a budget slot,
    every attempt and every backoff. ``log_path`` is where the SDK writes ``fyersApi.log`` and
    ``fyersRequests.log`` (SDK quirk: its loggers are process-global, so only the first
    FyersModel's directory is really used); they are rotated or not written, as
    :func:`fyers_store.logs.sdk_log_files` says. ``monotonic``, ``sleep``, ``now`` (aware datetime)
    and ``rng`` are injectable for tests.

    Thread-safe: the transport record is per thread and the SDK's shared error dict is never
    read, so several threads may share one adapter. Tokens are never logged.
    """

    def __init__(self, client_id: str, access_token: str, *, limits: RestLimitsConfig | None = None,
                 calendar: Any = None, limiter: RestBudget | None = None, budget_user: str | None = None,
                 order_limiter: RestBudget | None = None,
                 log_path: str | Path = "logs", request_deadline_seconds: float = 120.0,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], dt.datetime] | None = None, rng: random.Random | None = None) -> None:
        from fyers_apiv3 import fyersModel

        log_dir = Path(log_path)
        log_dir.mkdir(parents=True, exist_ok=True)
        model = fyersModel.FyersModel(client_id=client_id, token=access_token, is_async=False,
                                      log_path=str(log_dir))
        govern_sdk_logs(model)
        self._setup(model, limits=limits, calendar=calendar, limiter=limiter, budget_user=budget_user,
                    order_limiter=order_limiter, request_deadline_seconds=request_deadline_seconds, monotonic=monotonic, sleep=sleep,
                    now=now, rng=rng)

    @classmethod
    def from_fyers_model(cls, model: Any, **options: Any) -> FyersSdkRestAdapter:
        """Adopt an existing synchronous ``FyersModel`` (e.g. from ``fyers_store.auth``).

        The adapter installs its timeouts on the model's session; use the model only through
        the adapter afterwards. Options as for the constructor (except the credentials and
        ``log_path``, which the model already has).
        """
        if getattr(model, "is_async", False):
            raise TypeError("FyersSdkRestAdapter needs a synchronous FyersModel (is_async=False)")
        self = cls.__new__(cls)
        self._setup(model, **options)
        return self

    def _setup(self, model: Any, *, limits: RestLimitsConfig | None = None, calendar: Any = None,
               limiter: RestBudget | None = None, budget_user: str | None = None,
               order_limiter: RestBudget | None = None, request_deadline_seconds: float = 120.0,
               monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               now: Callable[[], dt.datetime] | None = None, rng: random.Random | None = None) -> None:
        if request_deadline_seconds <= 0:
            raise ValueError("request_deadline_seconds must be positive")
        self._limits = limits if limits is not None else RestLimitsConfig()
        user = budget_user or str(model.client_id)
        self._limiter = limiter if limiter is not None else shared_limiter(self._limits, user=user)
        self._orders = order_limiter if order_limiter is not None else shared_order_limiter(self._limits, user=user)
        self._model = model
        self._probe = SessionProbe(model.service.session, self._limits.connect_timeout_seconds,
                                    self._limits.read_timeout_seconds)
        self._calendar = calendar
        self._deadline = float(request_deadline_seconds)
        self._mono, self._sleep = monotonic, sleep
        self._now = now or (lambda: dt.datetime.now(dt.timezone.utc))
        self._rng = rng or random.Random()
        self._stats_lock = threading.Lock()
        self._stats = dict.fromkeys(("requests", "retries", "rate_limited", "outcome_unknown", "auth_errors",
                                     "rejected", "duplicate_bars"), 0)
        self._on_refused: TokenRefusalListener | None = None

    def __repr__(self) -> str:
        return f"FyersSdkRestAdapter(client_id={self._model.client_id!r}, budgets={self._limiter.budgets})"

    # ------------------------------------------------------------------ plumbing
    @property
    def placement_timeout_seconds(self) -> float:
        """The longest one place_order attempt waits for FYERS (connect + read, within the request
        deadline): a request FYERS has not answered may reach it and be acted on until then."""
        lim = self._limits
        return min(self._deadline, lim.connect_timeout_seconds + lim.read_timeout_seconds)

    @property
    def limiter(self) -> RestBudget:
        """The budget this adapter draws from (usually the process-wide one)."""
        return self._limiter

    @property
    def order_limiter(self) -> RestBudget:
        """The order limit every place/modify/cancel also passes (usually the process-wide one)."""
        return self._orders

    def set_access_token(self, access_token: str) -> None:
        """Use a new token from now on (after a login). The SDK reads its header at every request,
        so requests already on their way keep the old one."""
        self._model.token = access_token
        self._model.header = f"{self._model.client_id}:{access_token}"

    def set_token_refusal_listener(self, listener: TokenRefusalListener | None) -> None:
        """``listener(token, error)`` is called when FYERS refuses the token a request carried
        (HTTP 401/403, codes -8/-15/-16/-17), on the request's thread, before AuthError is raised."""
        self._on_refused = listener

    @property
    def token_expires_at(self) -> float | None:
        """The access token's JWT ``exp`` (epoch seconds), or None when it carries none."""
        from fyers_store.auth.token_store import jwt_claims

        exp = (jwt_claims(self._model.token) or {}).get("exp")
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None

    @property
    def is_real_fyers(self) -> bool:
        """True unless the SDK is pointed at another endpoint (``redirect_sdk``: a local venue).
        Read at each call: the SDK's endpoint is a process-wide class attribute."""
        from urllib.parse import urlsplit

        from fyers_apiv3 import fyersModel

        host = urlsplit(str(fyersModel.Config.API)).hostname or ""
        return host == "fyers.in" or host.endswith(".fyers.in")

    def stats(self) -> dict[str, int]:
        """Counters: requests sent, retries, rate_limited (429s received), outcome_unknown,
        auth_errors, rejected, duplicate_bars (window overlaps dropped)."""
        with self._stats_lock:
            return dict(self._stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += n

    def _backoff(self, retry: int) -> float:
        lim = self._limits
        return capped_backoff(retry, lim.backoff_base_seconds, lim.backoff_cap_seconds,
                              lim.backoff_jitter_seconds, self._rng.random)

    def _send(self, op: str, invoke: Callable[[Any], Any], *, retryable: bool,
              ok_states: tuple[str, ...] = ("ok",),
              after_unknown: Callable[[Rejected], dict | None] | None = None, mutating: bool = False) -> dict:
        """One logical REST call: budget slot, attempt, classification, allowlisted retries.
        ``mutating`` (modify, cancel): a refusal after an unknown outcome is itself unknown."""
        deadline = self._mono() + self._deadline
        retries, ambiguous = 0, False
        while True:
            result = self._attempt(op, invoke, deadline, ok_states)
            if isinstance(result, dict):
                return result
            if ambiguous and after_unknown is not None and isinstance(result.error, Rejected):
                settled = after_unknown(result.error)
                if settled is not None:
                    return settled
            if ambiguous and mutating and isinstance(result.error, (Rejected, RateLimitError)):
                raise OutcomeUnknown(op, f"a retry after an unknown outcome was refused ({result.error}); "
                                         "the first attempt may have applied", answered=True) from result.error
            ambiguous = ambiguous or isinstance(result.error, OutcomeUnknown)
            if not (retryable and result.retry and retries < self._limits.max_backoff_retries):
                raise result.error
            delay = self._backoff(retries)
            if result.retry_after is not None:
                delay = max(delay, result.retry_after)
            if self._mono() + delay >= deadline:
                raise result.error
            retries += 1
            self._count("retries")
            _log.info("%s: retry %d in %.2f s after %s", op, retries, delay, result.error)
            self._sleep(delay)

    def _permits(self, op: str, deadline: float) -> tuple[Permit, Permit | None]:
        """The shared budget's slot and, for an order, one of the order limit first; an order may
        take the shared budget's reserved slots. RateLimitError: nothing taken, nothing sent.
        (The limiters may run on their own clocks: timeouts are relative.)"""
        if op not in _ORDER_OPS:
            return self._limiter.acquire(max(0.0, deadline - self._mono())), None
        order = self._orders.acquire(max(0.0, deadline - self._mono()))
        try:
            return self._limiter.acquire(max(0.0, deadline - self._mono()), priority=True), order
        except BaseException:
            self._orders.release(order)
            raise

    def _attempt(self, op: str, invoke: Callable[[Any], Any], deadline: float,
                 ok_states: tuple[str, ...]) -> dict | _Failure:
        permit, order_permit = self._permits(op, deadline)
        try:
            left = max(0.001, deadline - self._mono())
            self._probe.begin((min(self._limits.connect_timeout_seconds, left),
                               min(self._limits.read_timeout_seconds, left)))
            self._count("requests")
            try:
                reply = invoke(self._model)
            except Exception as exc:  # the SDK catches nearly everything; be safe anyway
                self._probe.end()
                self._count("outcome_unknown")
                return _Failure(OutcomeUnknown(op, f"the SDK raised {type(exc).__name__}: {exc}"))
            exchange = self._probe.end()
        finally:
            self._limiter.release(permit)
            if order_permit is not None:
                self._orders.release(order_permit)
        result = self._classify(op, reply, exchange, ok_states)
        listener = self._on_refused
        if listener is not None and isinstance(result, _Failure) and isinstance(result.error, AuthError):
            sent = exchange.authorization if exchange is not None else None
            token = sent.partition(":")[2] if sent else self._model.token
            try:
                listener(token, result.error)
            except Exception:  # the refusal is still raised to the caller
                _log.exception("%s: the token refusal listener failed", op)
        return result

    def _classify(self, op: str, reply: Any, ex: TransportRecord | None, ok_states: tuple[str, ...]) -> dict | _Failure:
        # The SDK's own error dict (never a server body): shared and mutable, so never returned.
        sdk_made = reply is getattr(self._model.service, "error_resp", None) or not isinstance(reply, dict)
        if ex is None:
            self._count("outcome_unknown")
            return _Failure(OutcomeUnknown(op, "the SDK failed before sending the request (-99)"))
        if ex.error is not None:
            kind = "timeout" if isinstance(ex.error, requests.Timeout) else "connection error"
            self._count("outcome_unknown")
            return _Failure(OutcomeUnknown(op, f"{kind}: {type(ex.error).__name__}"), retry=True)
        status = ex.status or 0
        body = None if sdk_made else reply
        raw_code = body.get("code") if body is not None else None
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        message = str(body.get("message") or "") if body is not None else ""
        if status == 429 or code == -429:
            self._count("rate_limited")
            if ex.retry_after:
                self._limiter.pause(ex.retry_after)
                if op in _ORDER_OPS:  # it may have been the order limit's 429
                    self._orders.pause(ex.retry_after)
            return _Failure(RateLimitError(f"{op}: FYERS rate limit (HTTP {status}, code {code})",
                                           retry_after=ex.retry_after), retry=True, retry_after=ex.retry_after)
        if status >= 500:
            self._count("outcome_unknown")
            # A gateway's 502/503/504 says nothing about the backend, which may still act on it.
            return _Failure(OutcomeUnknown(op, f"HTTP {status}" + (f" ({message})" if message else ""),
                                           answered=status not in _GATEWAY_STATUSES), retry=True)
        if body is not None and body.get("s") not in ok_states and is_static_ip_refusal(code, message):
            self._count("rejected")
            _olog.error("%s: FYERS refused it as not from the app's whitelisted static IP (HTTP %s, code %s): %s",
                        op, status, code, message)
            return _Failure(StaticIpRefused(code if code is not None else -status, message))
        if status in (401, 403) or code in AUTH_CODES:
            self._count("auth_errors")
            return _Failure(AuthError(f"{op}: {message or f'HTTP {status}'}", code=code))
        if body is None:
            self._count("outcome_unknown")
            return _Failure(OutcomeUnknown(op, f"HTTP {status} with a body that is not a JSON object", answered=True))
        if code in _UNCONFIRMED_CODES:
            self._count("outcome_unknown")
            return _Failure(OutcomeUnknown(op, f"FYERS could not confirm the outcome: {message} (code {code})",
                                           answered=True), retry=True)
        if body.get("s") in ok_states:
            return body
        if code is not None and code < 0:
            self._count("rejected")
            oid = body.get("id")
            return _Failure(Rejected(code, message, order_id=str(oid) if oid not in (None, "") else None))
        return _Failure(VenueDataError(f"{op}: unexpected reply (s={body.get('s')!r}, code={raw_code!r}, HTTP {status})"))

    @staticmethod
    def _rows(reply: dict, key: str, op: str) -> list:
        rows = reply.get(key)
        if rows is None:
            return []  # FYERS omits the list when it is empty on some endpoints
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise VenueDataError(f"{op}: '{key}' is not a list of records")
        return rows

    # ------------------------------------------------------------------ history
    def history(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime) -> list[NormalizedBar]:
        """Bars whose label lies in ``[start, end]``, oldest first, fetched in FYERS-sized windows.

        Labels: intraday bars carry their start as a UTC-aware datetime; daily bars are labelled
        00:00 IST of their trading date (whatever FYERS's stamp). An empty list means FYERS has no
        bars there (``no_data``); a failure raises. When ``end`` reaches into the bar that is
        still forming, FYERS sends it partial and it **is returned** -- callers that need only
        complete bars pass ``end`` before the current bar (FYERS's own advice: ``now -
        resolution``); the cache must never mark such a window complete.

        Raises :class:`~fyers_store.adapters.history_windows.HistoryRangeError` (before sending)
        for second bars older than the last 30 trading days.
        """
        seen: dict[int, NormalizedBar] = {}
        for _window, _bars in self.iter_history(symbol, resolution, start, end, _seen=seen):
            pass
        return sorted_bars(seen)

    def iter_history(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime,
                     *, _seen: dict[int, NormalizedBar] | None = None
                     ) -> Iterator[tuple[HistoryWindow, list[NormalizedBar]]]:
        """Like :meth:`history`, one window at a time: yields ``(window, bars)`` as each request
        completes, so a caller can store every window it got before a later one fails."""
        res = canonicalize_fyers_resolution(resolution)
        windows = self.plan_history(res, start, end)
        if windows and is_seconds_resolution(res):
            check_second_history_range(res, start, self._now(), self._get_calendar())
        seen = _seen if _seen is not None else {}
        for window in windows:
            params = window.params(symbol)
            # _send calls the lambda before the loop moves on: params is this window's.
            reply = self._send("history", lambda m: m.history(params), retryable=True,
                               ok_states=("ok", "no_data"))
            if reply.get("s") == "no_data":
                yield window, []
                continue
            if "candles" not in reply:
                raise VenueDataError(f"history {symbol} {res}: reply has no 'candles'")
            bars, dupes = candles_to_bars(reply["candles"], window, start, end, seen)
            if dupes:
                self._count("duplicate_bars", dupes)
            yield window, bars

    def _get_calendar(self) -> Any:
        if self._calendar is None:
            from fyers_store.models.market_calendar import NseCalendar

            self._calendar = NseCalendar()
        return self._calendar

    # ------------------------------------------------------------------ orders
    def place_order(self, request: OrderRequest) -> str:
        """Place one order, **never retried**, and return FYERS's order id.

        Raises Rejected (FYERS refused it; ``order_id`` is set when it booked and rejected the
        order, e.g. -99 margin shortfall), AuthError or RateLimitError (definitive: not placed),
        or OrderPlacementUnknown(order_tag) for every ambiguous outcome -- timeout, reset, 5xx,
        a garbled reply, or FYERS's 201 "no acknowledgement" -- which the caller resolves with
        :meth:`find_order_by_tag` before placing anything again.
        """
        body = request.to_fyers()
        tag = request.order_tag
        try:
            reply = self._send("place_order", lambda m: m.place_order(body), retryable=False)
        except OutcomeUnknown as exc:
            _olog.warning("place_order %s (orderTag %s): outcome unknown: %s", request.symbol, tag, exc.cause)
            raise OrderPlacementUnknown(tag, exc.cause, answered=exc.answered) from exc
        except VenueDataError as exc:
            _olog.warning("place_order %s (orderTag %s): unreadable reply: %s", request.symbol, tag, exc)
            raise OrderPlacementUnknown(tag, str(exc), answered=True) from exc
        except Rejected as exc:
            _olog.info("place_order %s (orderTag %s) rejected: %s (code %s, id %s)",
                       request.symbol, tag, exc.message, exc.code, exc.order_id)
            raise
        order_id = reply.get("id")
        if reply.get("code") == _NO_ACK or order_id in (None, ""):
            raise OrderPlacementUnknown(tag, f"FYERS accepted the request without an acknowledgement "
                                             f"(code {reply.get('code')})")
        _olog.info("place_order %s qty %s (orderTag %s) -> %s", request.symbol, request.qty, tag, order_id)
        return str(order_id)

    def modify_order(self, order_id: str, *, qty: int | None = None, limit_price: float | None = None,
                     stop_price: float | None = None, order_type: OrderType | None = None) -> str:
        """Modify a working order (retried on the allowlist: re-sending the same absolute values
        is harmless). FYERS requires ``type``: when ``order_type`` is None the order's current
        type is read from the orderbook first (one more request)."""
        if order_type is None:
            order_type = self._order_by_id(order_id).type
        body: dict[str, Any] = {"id": str(order_id), "type": int(order_type)}
        if qty is not None:
            body["qty"] = int(qty)
        if limit_price is not None:
            body["limitPrice"] = float(limit_price)
        if stop_price is not None:
            body["stopPrice"] = float(stop_price)
        reply = self._send("modify_order", lambda m: m.modify_order(body), retryable=True, mutating=True)
        self._check_acknowledged("modify_order", reply)
        _olog.info("modify_order %s %s", order_id, {k: v for k, v in body.items() if k != "id"})
        return str(reply.get("id") or order_id)

    def cancel_order(self, order_id: str) -> str:
        """Cancel a working order (retried on the allowlist). If an earlier attempt's outcome was
        unknown and the retry hears "already cancelled" (-161), the first attempt worked: that
        counts as success. A first attempt hearing it raises AlreadyCancelled (a Rejected: the
        order was cancelled before). Other refusals (already traded/rejected/expired) raise Rejected."""
        body = {"id": str(order_id)}

        def settled(err: Rejected) -> dict | None:
            return {"s": "ok", "id": str(order_id)} if err.code == _ALREADY_CANCELLED else None

        try:
            reply = self._send("cancel_order", lambda m: m.cancel_order(body), retryable=True,
                               after_unknown=settled, mutating=True)
        except Rejected as exc:
            if exc.code == _ALREADY_CANCELLED:
                raise AlreadyCancelled(exc.code, exc.message, order_id=exc.order_id) from exc
            raise
        self._check_acknowledged("cancel_order", reply)
        _olog.info("cancel_order %s", order_id)
        return str(reply.get("id") or order_id)

    @staticmethod
    def _check_acknowledged(op: str, reply: dict) -> None:
        """Code 201 ("request made but no acknowledgement") is not a success: FYERS may carry the
        modify or cancel out later, or not at all (found by the chaos suite, 2026-12: a modify
        taken for applied that FYERS never applied left the order waiting for fills forever)."""
        if reply.get("code") == _NO_ACK:
            _olog.warning("%s: FYERS made the request without an acknowledgement (code 201)", op)
            raise OutcomeUnknown(op, "FYERS made the request without an acknowledgement (code 201)")
