"""Typed messages that leave the socket adapters: ticks, depth, connection events.

The FYERS SDK hands its socket callbacks plain dicts (protocol reference §5.7 for the data socket,
§4 for the order socket). The adapters turn every one of them into a small frozen record from this
module (or, for the order socket, into :class:`~fyers_store.models.orders.OrderSnapshot`,
:class:`~fyers_store.models.orders.TradeFill` and :class:`~fyers_store.models.orders.PositionSnapshot`),
so nothing downstream ever sees an SDK dict. A dict that does not fit raises
:class:`~fyers_store.errors.VenueDataError`; the adapters count and log those, they never crash
the SDK's reader thread.

Times: ``received_at`` is the adapter's wall clock when the callback ran; exchange times
(``last_traded_time``, ``exchange_time``) come from the feed. All are timezone-aware UTC.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from operator import itemgetter
from typing import Any, Iterable, Mapping, NamedTuple

from fyers_store.errors import VenueDataError

__all__ = [
    "UTC", "Tick", "DepthLevel", "DepthUpdate", "EventKind", "ConnectionEvent", "OrderSocketNotice",
    "MarketMessage", "fyers_market_messages", "index_update_tick", "is_market_data", "market_state",
    "scrip_update_tick", "symbol_list",
]

UTC = dt.timezone.utc
_DEPTH_LEVELS = 5


def _number(msg: Mapping[str, Any], key: str) -> float | None:
    value = msg.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VenueDataError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _required_number(msg: Mapping[str, Any], key: str) -> float:
    value = _number(msg, key)
    if value is None:
        raise VenueDataError(f"{key}: missing from socket message with keys {sorted(msg)[:12]}")
    return value


def _count(msg: Mapping[str, Any], key: str) -> int | None:
    value = _number(msg, key)
    return None if value is None else int(value)


def _epoch(msg: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = _number(msg, key)
    if value is None or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise VenueDataError(f"{key}: not an epoch time: {value!r}") from None


def _symbol(msg: Mapping[str, Any]) -> str:
    symbol = msg.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise VenueDataError(f"symbol: expected a FYERS symbol, got {symbol!r}")
    return symbol


class Tick(NamedTuple):
    """One market update of a symbol (``sf``) or an index (``if``).

    In lite mode FYERS sends only the last price: ``lite`` is True and every other market field is
    None. Index ticks have no volume, quantities or touch. ``volume`` is the day's traded volume so
    far (FYERS ``vol_traded_today``); ``last_traded_qty`` the size of the last trade.

    An immutable named tuple (not a dataclass): the socket delivers tens of thousands a second
    and a tuple is several times cheaper to build (issue 20).
    """

    symbol: str
    ltp: float
    received_at: dt.datetime
    is_index: bool = False
    lite: bool = False
    last_traded_time: dt.datetime | None = None
    exchange_time: dt.datetime | None = None
    volume: int | None = None
    last_traded_qty: int | None = None
    bid: float | None = None
    ask: float | None = None
    bid_size: int | None = None
    ask_size: int | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    prev_close: float | None = None
    avg_price: float | None = None
    total_buy_qty: int | None = None
    total_sell_qty: int | None = None
    change: float | None = None
    change_pct: float | None = None

    @classmethod
    def from_fyers(cls, msg: Mapping[str, Any], received_at: dt.datetime) -> Tick:
        """From the SDK's ``on_message`` dict of type ``sf`` or ``if`` (full or lite mode)."""
        if type(msg) is dict:  # the SDK's full-mode dicts, exactly typed: no per-field checks needed
            fast = _fast_tick(msg, received_at)
            if fast is not None:
                return fast
        kind = msg.get("type")
        if kind not in ("sf", "if"):
            raise VenueDataError(f"type: expected 'sf' or 'if' for a tick, got {kind!r}")
        symbol, ltp = _symbol(msg), _required_number(msg, "ltp")
        lite = set(msg) <= {"ltp", "symbol", "type"}
        return cls(
            symbol=symbol, ltp=ltp, received_at=received_at, is_index=kind == "if", lite=lite,
            last_traded_time=_epoch(msg, "last_traded_time"), exchange_time=_epoch(msg, "exch_feed_time"),
            volume=_count(msg, "vol_traded_today"), last_traded_qty=_count(msg, "last_traded_qty"),
            bid=_number(msg, "bid_price"), ask=_number(msg, "ask_price"),
            bid_size=_count(msg, "bid_size"), ask_size=_count(msg, "ask_size"),
            open=_number(msg, "open_price"), high=_number(msg, "high_price"), low=_number(msg, "low_price"),
            prev_close=_number(msg, "prev_close_price"), avg_price=_number(msg, "avg_trade_price"),
            total_buy_qty=_count(msg, "tot_buy_qty"), total_sell_qty=_count(msg, "tot_sell_qty"),
            change=_number(msg, "ch"), change_pct=_number(msg, "chp"),
        )


def market_state(tick: Tick) -> tuple[Any, ...]:
    """What a tick says of the market: every field but the receipt time and the feed's own stamp
    (``exchange_time``), which a repeated snapshot renews although nothing happened."""
    return tick[:2] + tick[3:6] + tick[7:]


# The fast path of Tick.from_fyers: the SDK's full-mode dicts have every field below, prices as
# float (it divides by the precision) and counts/epochs as int (struct-unpacked). A dict that has
# all of them with exactly those types gives the same Tick as the checked path; anything else
# (lite mode, a missing field, another type) takes the checked path.
_SF_KEYS = ("symbol", "ltp", "last_traded_time", "exch_feed_time",
            # Tick's fields after exchange_time, in order:
            "vol_traded_today", "last_traded_qty", "bid_price", "ask_price", "bid_size", "ask_size", "open_price",
            "high_price", "low_price", "prev_close_price", "avg_trade_price", "tot_buy_qty", "tot_sell_qty", "ch", "chp")
_SF_FIELDS = itemgetter(*_SF_KEYS)
_SF_TYPES = (str, float, int, int, int, int, float, float, int, int, float, float, float, float, float, int, int,
             float, float)
_SF_HEAD = itemgetter(*_SF_KEYS[:4])
_SF_TAIL = itemgetter(*_SF_KEYS[4:])
# An index record has exactly these ten fields (type included): no volume, quantities or touch.
_IF_FIELDS = itemgetter("symbol", "ltp", "exch_feed_time", "open_price", "high_price", "low_price",
                        "prev_close_price", "ch", "chp")
_IF_TYPES = (str, float, int) + (float,) * 6
_IF_GAP = (None,) * 6  # an index tick has no volume, last quantity or touch
_new_tuple = tuple.__new__
_EPOCHS: dict[int, dt.datetime | None] = {}  # FYERS stamps are whole seconds: one conversion per second
_EPOCHS_MAX = 65_536


def _when(value: int, key: str) -> dt.datetime | None:
    when = _EPOCHS.get(value, _EPOCHS)
    if when is _EPOCHS:
        if value <= 0:
            return None
        try:
            when = dt.datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise VenueDataError(f"{key}: not an epoch time: {value!r}") from None
        if len(_EPOCHS) >= _EPOCHS_MAX:
            _EPOCHS.clear()
        _EPOCHS[value] = when
    return when  # type: ignore[return-value]


def _sdk_typed(values: tuple[Any, ...], types: tuple[type, ...]) -> bool:
    return tuple(map(type, values)) == types and values[0] != ""


def _sf_tick(v: tuple[Any, ...], received_at: dt.datetime) -> Tick:
    ltt, exch = v[2], v[3]
    return _new_tuple(Tick, (v[0], v[1], received_at, False, False,
                             _EPOCHS.get(ltt) or _when(ltt, "last_traded_time"),
                             _EPOCHS.get(exch) or _when(exch, "exch_feed_time")) + v[4:])


def _if_tick(v: tuple[Any, ...], received_at: dt.datetime) -> Tick:
    symbol, ltp, exch, open_, high, low, prev, ch, chp = v
    return _new_tuple(Tick, (symbol, ltp, received_at, True, False, None,
                             _EPOCHS.get(exch) or _when(exch, "exch_feed_time"), *_IF_GAP,
                             open_, high, low, prev, None, None, None, ch, chp))


def scrip_update_tick(raw: tuple[Any, ...], received_at: dt.datetime) -> Tick | None:
    """The Tick the SDK's full-mode ``sf`` dict would give, from its cached raw fields (issue 20):
    ``(symbol, precision, multiplier, ltp, vol_traded_today, last_traded_time, exch_feed_time,
    bid_size, ask_size, bid_price, ask_price, last_traded_qty, tot_buy_qty, tot_sell_qty,
    avg_trade_price, low_price, high_price, open_price, prev_close_price)`` as the SDK stores them
    (ints). Prices are scaled and ``ch``/``chp`` rounded with the SDK's own expressions
    (data_ws.py:1049-1064). None when the SDK's dict would lack ``ch``/``chp`` (a zero previous
    close) or no usable symbol: the caller then lets the SDK build the dict."""
    (symbol, precision, multiplier, ltp, volume, ltt, exch, bid_size, ask_size, bid, ask, ltq, buy_qty, sell_qty,
     avg, low, high, open_, prev) = raw
    if type(symbol) is not str or not symbol or prev == 0:  # the numbers are the SDK's struct-unpacked ints
        return None
    scale = (10 ** precision) * multiplier
    ltp, prev = ltp / scale, prev / scale
    ch = round((ltp - prev), 4)
    return _sf_tick((symbol, ltp, ltt, exch, volume, ltq, bid / scale, ask / scale, bid_size, ask_size, open_ / scale,
                     high / scale, low / scale, prev, avg / scale, buy_qty, sell_qty, ch, round((ch / prev * 100), 4)),
                    received_at)


def index_update_tick(raw: tuple[Any, ...], received_at: dt.datetime) -> Tick | None:
    """The Tick the SDK's ``if`` dict would give, from its cached raw fields ``(symbol, precision,
    multiplier, ltp, prev_close_price, exch_feed_time, high_price, low_price, open_price)``; the
    SDK rounds ``ch``/``chp`` to 2 places here (data_ws.py:1073-1082). None as for
    :func:`scrip_update_tick` (a zero previous close: the SDK emits nothing then)."""
    symbol, precision, multiplier, ltp, prev, exch, high, low, open_ = raw
    if type(symbol) is not str or not symbol or prev == 0:  # the numbers are the SDK's struct-unpacked ints
        return None
    scale = (10 ** precision) * multiplier
    ltp, prev = ltp / scale, prev / scale
    ch = round((ltp - prev), 2)
    return _if_tick((symbol, ltp, exch, open_ / scale, high / scale, low / scale, prev, ch, round((ch / prev * 100), 2)),
                    received_at)


def _fast_tick(msg: dict[str, Any], received_at: dt.datetime) -> Tick | None:
    """The Tick for an SDK full-mode ``sf``/``if`` dict, None when the checked path must decide."""
    kind = msg.get("type")
    try:
        if kind == "sf":
            v = _SF_FIELDS(msg)
            return _sf_tick(v, received_at) if _sdk_typed(v, _SF_TYPES) else None
        if kind == "if" and len(msg) == 10:
            v = _IF_FIELDS(msg)
            return _if_tick(v, received_at) if _sdk_typed(v, _IF_TYPES) else None
    except KeyError:
        return None
    return None


def fyers_market_messages(records: Iterable[Any], received_at: dt.datetime, wanted_ticks: frozenset[str],
                          wanted_depth: frozenset[str], *, sdk_parsed: bool = False,
                          ) -> tuple[list[Tick | DepthUpdate], int, list[tuple[Any, Exception]]]:
    """Type the data socket's records received together: ``(messages, unrequested, failures)``.

    ``messages`` are the :class:`Tick` (``sf``/``if``) and :class:`DepthUpdate` (``dp``) records of
    a symbol in ``wanted_ticks``/``wanted_depth``, in order; ``unrequested`` counts the others
    (e.g. a snapshot racing an unsubscribe); ``failures`` pairs each record that does not fit with
    its error. Each record gives what :meth:`Tick.from_fyers`/:meth:`DepthUpdate.from_fyers` give;
    a record that is a :class:`Tick` already (decoded from the wire without an SDK dict) is kept.

    ``sdk_parsed``: the records are what the SDK's binary parser produced for one data frame
    (issue 20). Their field types are fixed by its code (``struct.unpack`` ints, prices divided
    into floats), so once one ``sf`` and one ``if`` record of the frame had exactly the expected
    types, the frame's other records of that kind with the same fields are not checked type by
    type (a record missing a field still takes the checked path). Checked against fyers-apiv3
    3.2.0, data_ws.py:1001-1085.
    """
    out: list[Tick | DepthUpdate] = []
    append, failures = out.append, []
    unrequested = 0
    sf_ok = if_ok = False  # a record of the kind in this SDK-parsed frame had the SDK's types
    head, tail, epoch, new_tuple = _SF_HEAD, _SF_TAIL, _EPOCHS.get, _new_tuple
    for msg in records:
        try:
            if msg.__class__ is Tick:  # built already from the raw record (adapters/fyers_frame_decoder.py)
                # it stands for an SDK dict that had exactly the SDK's types: the frame's kind is checked
                if msg.is_index:
                    if_ok = sdk_parsed
                else:
                    sf_ok = sdk_parsed
                if msg[0] in wanted_ticks:
                    append(msg)
                else:
                    unrequested += 1
                continue
            kind = msg.get("type")
            try:
                if kind == "sf" and len(msg) == 22:  # full mode: the 19 fields below, type, circuit limits
                    if not sf_ok:
                        sf_ok = _sdk_typed(_SF_FIELDS(msg), _SF_TYPES)
                    if sf_ok:
                        sf_ok = sdk_parsed
                        symbol, ltp, ltt, exch = head(msg)  # _sf_tick, inline: the hot path
                        if symbol in wanted_ticks:
                            append(new_tuple(Tick, (symbol, ltp, received_at, False, False,
                                                    epoch(ltt) or _when(ltt, "last_traded_time"),
                                                    epoch(exch) or _when(exch, "exch_feed_time")) + tail(msg)))
                        else:
                            unrequested += 1
                        continue
                elif kind == "if" and len(msg) == 10:
                    v = _IF_FIELDS(msg)
                    if if_ok or _sdk_typed(v, _IF_TYPES):
                        if_ok = sdk_parsed
                        if v[0] in wanted_ticks:
                            append(_if_tick(v, received_at))
                        else:
                            unrequested += 1
                        continue
            except KeyError:  # other fields than the SDK's: the checked path below
                sf_ok = if_ok = False
            # lite mode, a missing field, depth or anything odd: the checked constructors decide
            depth = kind == "dp"
            symbol = msg.get("symbol")
            if not isinstance(symbol, str):  # not market data at all: never counted as merely unrequested
                raise VenueDataError(f"symbol: expected a FYERS symbol, got {symbol!r}")
            if symbol not in (wanted_depth if depth else wanted_ticks):
                unrequested += 1
            elif depth:
                append(DepthUpdate.from_fyers(msg, received_at))
            else:
                append(Tick.from_fyers(msg, received_at))
        except Exception as exc:  # noqa: BLE001 -- a record that does not fit never ends the frame
            failures.append((msg, exc))
    return out, unrequested, failures


@dataclass(frozen=True)
class DepthLevel:
    """One price level of the order book: price, total quantity, number of orders."""

    price: float
    qty: int
    orders: int


@dataclass(frozen=True)
class DepthUpdate:
    """The best five levels each side (fewer when the book is thin), best first."""

    symbol: str
    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]
    received_at: dt.datetime

    @classmethod
    def from_fyers(cls, msg: Mapping[str, Any], received_at: dt.datetime) -> DepthUpdate:
        """From the SDK's ``on_message`` dict of type ``dp`` (``bid_price1..5``, ``ask_size1..5``,
        ``bid_order1..5`` ...); a level whose price is absent is not in the book."""
        if msg.get("type") != "dp":
            raise VenueDataError(f"type: expected 'dp' for depth, got {msg.get('type')!r}")
        symbol = _symbol(msg)

        def side(name: str) -> tuple[DepthLevel, ...]:
            levels = []
            for i in range(1, _DEPTH_LEVELS + 1):
                price = _number(msg, f"{name}_price{i}")
                if price is None:
                    continue
                levels.append(DepthLevel(price, _count(msg, f"{name}_size{i}") or 0,
                                         _count(msg, f"{name}_order{i}") or 0))
            return tuple(levels)

        return cls(symbol=symbol, bids=side("bid"), asks=side("ask"), received_at=received_at)


class EventKind(str, Enum):
    """What happened to a socket connection (the ``kind`` of a :class:`ConnectionEvent`)."""

    CONNECTED = "connected"        # open and authenticated (first time or after a reconnect)
    SUBSCRIBED = "subscribed"      # data socket: FYERS acknowledged a subscribe call (one per batch, on
    #                                every connection); ``symbols`` are the ones it took, queued before their ticks
    RESUBSCRIBED = "resubscribed"  # after a reconnect: every requested subscription re-sent
    DISCONNECTED = "disconnected"  # the connection ended (drop, forced reconnect, stop)
    RECONNECTING = "reconnecting"  # a new attempt follows after ``delay`` seconds
    STALE = "stale"                # connected but silent during market hours: forcing a reconnect
    AUTH_FAILED = "auth_failed"    # the token was refused; retried only at the slowest pace
    ERROR = "error"                # an error FYERS or the SDK reported, or a queue overflow
    GAVE_UP = "gave_up"            # reconnect disabled or attempts exhausted: no more connections
    DATA_LOST = "data_lost"        # a full queue dropped market data at this point of the stream:
    #                                a bar built from ticks across it would miss some


@dataclass(frozen=True)
class ConnectionEvent:
    """A connection state change or error, queued in order with the data it relates to."""

    socket: str               # "data" or "order"
    kind: EventKind
    detail: str
    at: dt.datetime
    attempt: int = 0          # reconnect attempt number (1-based) where it applies
    delay: float | None = None  # seconds until the next attempt (RECONNECTING)
    code: int | None = None   # FYERS/SDK error code or HTTP status, when there was one
    symbols: tuple[str, ...] = ()  # ERROR: the symbols FYERS refused (removed from the subscriptions);
    #                                SUBSCRIBED: the symbols FYERS acknowledged


@dataclass(frozen=True)
class OrderSocketNotice:
    """A general order-socket push (EDIS, price alerts, login) that is not an order, trade or
    position; ``data`` is a read-only copy of the message."""

    data: Mapping[str, Any]
    received_at: dt.datetime

    @classmethod
    def from_fyers(cls, msg: Mapping[str, Any], received_at: dt.datetime) -> OrderSocketNotice:
        if not isinstance(msg, Mapping):
            raise VenueDataError(f"order socket: expected a JSON object, got {type(msg).__name__}")
        return cls(MappingProxyType(copy.deepcopy(dict(msg))), received_at)


MarketMessage = Tick | DepthUpdate


def is_market_data(message: Any) -> bool:
    """True for ticks and depth (what a full market queue may drop); False for everything else."""
    return isinstance(message, (Tick, DepthUpdate))


def symbol_list(symbols: Iterable[str] | str) -> list[str]:
    """One symbol or an iterable of them as a de-duplicated list (a bare string is one symbol)."""
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    out: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"a symbol must be a non-empty string like 'NSE:SBIN-EQ', got {item!r}")
        out[item.strip()] = None
    return list(out)
