"""The order lifecycle's triggers and the one transition table (the states are
:mod:`fyers_store.models.order_states`).

:mod:`fyers_store.engine.orders` (which re-exports every public name here) applies it: a (state, trigger)
pair missing from :data:`TRANSITIONS` is a contradiction there (an ``ANOMALY``, or a ``ValueError``
for a local request that makes no sense). ``docs/visuals/orders.md`` draws exactly this table
(checked by ``tests/test_docs.py``).
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType
from typing import Mapping

from fyers_store.models.order_states import DONE_STATES, OPEN_STATES, OrderState
from fyers_store.models.orders import OrderStatus

__all__ = ["OrderState", "OPEN_STATES", "DONE_STATES", "Trigger", "TRANSITIONS", "DONE_TRIGGER", "DONE_CONFLICTS"]


_SUB, _ACC, _PAR, _CXLG = OrderState.SUBMITTING, OrderState.ACCEPTED, OrderState.PARTIAL, OrderState.CANCELLING
_FIL, _CXL, _REJ, _EXP = OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED
_UNK = OrderState.UNKNOWN


class Trigger(str, Enum):
    """What moves an order: a local action of the broker, or a FYERS status (the table's columns)."""

    PLACED = "placed"                    # REST place_order returned an order id
    PLACE_REJECTED = "place_rejected"    # REST place_order refused it (definitive)
    PLACE_UNKNOWN = "place_unknown"      # no definitive reply: timeout, 5xx, code 201 "no ack"
    NOT_FOUND = "not_found"              # the orderbook lookup by tag found nothing
    WITHDRAWN = "withdrawn"              # a held order (never sent) cancelled by the strategy
    FOUND_LATE = "found_late"            # a trace of an order declared not found (provisional)
    CANCEL = "cancel"                    # the strategy asked to cancel
    CANCEL_REFUSED = "cancel_refused"                # FYERS refused the cancel; nothing filled
    CANCEL_REFUSED_FILLED = "cancel_refused_filled"  # ... with fills on the order
    FILL = "fill"                        # a new trade; applied fills below qty (or at it, modify up pending)
    FILL_COMPLETE = "fill_complete"      # applied fills reach qty: a new trade, or a modify outcome
    WORKING = "status_4_6"               # 4 transit / 6 pending, nothing filled anywhere
    WORKING_FILLED = "status_4_6_filled"  # 4/6 with fills: FYERS has no "partial" status
    TRADED = "status_2"
    CANCELLED = "status_1"
    REJECTED = "status_5"
    EXPIRED = "status_7"


_T = Trigger
#: The trigger of each DONE FYERS status.
DONE_TRIGGER = {OrderStatus.FILLED: _T.TRADED, OrderStatus.CANCELLED: _T.CANCELLED,
                OrderStatus.REJECTED: _T.REJECTED, OrderStatus.EXPIRED: _T.EXPIRED}

#: (current state, trigger) -> new state. Anything not listed is a contradiction (see module doc).
TRANSITIONS: Mapping[tuple[OrderState, Trigger], OrderState] = MappingProxyType({
    # REST place_order replies.
    (_SUB, _T.PLACED): _ACC,
    (_UNK, _T.PLACED): _ACC,           # a reply that outlived the timeout
    # Race: the socket (ack, fill, cancel, exchange reject) beat the REST reply; keep what it said.
    **{(s, _T.PLACED): s for s in (_ACC, _PAR, _CXLG, _FIL, _CXL, _EXP, _REJ)},
    (_SUB, _T.PLACE_REJECTED): _REJ,
    (_UNK, _T.PLACE_REJECTED): _REJ,
    (_REJ, _T.PLACE_REJECTED): _REJ,   # the socket's status 5 came first
    (_SUB, _T.PLACE_UNKNOWN): _UNK,
    # Race: the socket or a trade already told us more than the timed-out REST call could.
    **{(s, _T.PLACE_UNKNOWN): s for s in OrderState if s is not _SUB},
    (_SUB, _T.WITHDRAWN): _CXL,        # held while the session was renewed: FYERS never saw it
    (_UNK, _T.NOT_FOUND): _REJ,        # FYERS never got it -- as far as anyone can tell yet:
    # "not found" is provisional. FYERS may book a request it held past the client's deadline (or
    # one sent just before a crash); any later trace reopens the order, which then takes that trace
    # like an unknown order would. Only a not-found rejection admits it (the book checks).
    (_REJ, _T.FOUND_LATE): _UNK,
    # Cancel requests (need a venue id: submitting/unknown orders are refused).
    (_ACC, _T.CANCEL): _CXLG,
    (_PAR, _T.CANCEL): _CXLG,
    (_CXLG, _T.CANCEL): _CXLG,         # repeated request
    (_CXLG, _T.CANCEL_REFUSED): _ACC,
    (_CXLG, _T.CANCEL_REFUSED_FILLED): _PAR,
    # Status 4/6 (transit/pending), nothing filled.
    (_SUB, _T.WORKING): _ACC,          # socket ack before the REST reply
    (_UNK, _T.WORKING): _ACC,
    (_ACC, _T.WORKING): _ACC,          # duplicate
    (_CXLG, _T.WORKING): _CXLG,        # update from before the cancel landed
    (_CXL, _T.WORKING): _CXL,          # stale/reordered: done never reopens
    (_REJ, _T.WORKING): _REJ,          # stale 4 after the rejection
    (_EXP, _T.WORKING): _EXP,
    # Status 4/6 with fills (by filledQty or by applied trades).
    (_SUB, _T.WORKING_FILLED): _PAR,   # fill before the REST reply
    (_UNK, _T.WORKING_FILLED): _PAR,
    (_ACC, _T.WORKING_FILLED): _PAR,   # update ahead of its trades
    (_PAR, _T.WORKING_FILLED): _PAR,   # also: stale 6 after a status 2 whose trades are pending
    (_CXLG, _T.WORKING_FILLED): _CXLG,  # partial fill while the cancel is in flight
    (_FIL, _T.WORKING_FILLED): _FIL,   # stale 6 after the last trade
    (_CXL, _T.WORKING_FILLED): _CXL,
    (_EXP, _T.WORKING_FILLED): _EXP,
    # Status 2: "filled" waits for the trades (partial until then).
    (_SUB, _T.TRADED): _PAR,
    (_UNK, _T.TRADED): _PAR,
    (_ACC, _T.TRADED): _PAR,
    (_PAR, _T.TRADED): _PAR,
    (_CXLG, _T.TRADED): _PAR,          # the cancel lost the race to the fill
    (_FIL, _T.TRADED): _FIL,           # the trades came first
    # Status 1 (cancelled): fills so far are kept; trades still on their way are applied later.
    (_SUB, _T.CANCELLED): _CXL,        # e.g. an IOC cancelled before the REST reply
    (_UNK, _T.CANCELLED): _CXL,
    (_ACC, _T.CANCELLED): _CXL,        # cancelled from elsewhere (another device, the RMS)
    (_PAR, _T.CANCELLED): _CXL,
    (_CXLG, _T.CANCELLED): _CXL,       # our cancel acknowledged
    (_REJ, _T.CANCELLED): _REJ,        # keep the first end (REST reject, then a cancel update)
    # Status 7 (expired at the close): as cancelled.
    (_SUB, _T.EXPIRED): _EXP,
    (_UNK, _T.EXPIRED): _EXP,
    (_ACC, _T.EXPIRED): _EXP,
    (_PAR, _T.EXPIRED): _EXP,
    (_CXLG, _T.EXPIRED): _EXP,         # the day ended before the cancel landed
    (_REJ, _T.EXPIRED): _REJ,
    # Status 5: asynchronous RMS/exchange rejections arrive after FYERS accepted the order.
    (_SUB, _T.REJECTED): _REJ,
    (_UNK, _T.REJECTED): _REJ,
    (_ACC, _T.REJECTED): _REJ,
    (_CXLG, _T.REJECTED): _REJ,        # FYERS answers the cancel with -164 "already rejected"
    (_REJ, _T.REJECTED): _REJ,         # REST reject confirmed by the socket
    # Trades (the order's new applied total below qty).
    (_SUB, _T.FILL): _PAR,             # trade before the REST reply and any order update
    (_UNK, _T.FILL): _PAR,
    (_ACC, _T.FILL): _PAR,
    (_PAR, _T.FILL): _PAR,
    (_CXLG, _T.FILL): _CXLG,           # cancel requested, then a fill: applied, cancel stands
    (_CXL, _T.FILL): _CXL,             # trade arriving after the cancel ack: applied, never lost
    (_EXP, _T.FILL): _EXP,
    # Trades that complete the order.
    (_SUB, _T.FILL_COMPLETE): _FIL,
    (_UNK, _T.FILL_COMPLETE): _FIL,
    (_ACC, _T.FILL_COMPLETE): _FIL,
    (_PAR, _T.FILL_COMPLETE): _FIL,    # incl. the last trade after status 2
    (_CXLG, _T.FILL_COMPLETE): _FIL,   # the cancel lost the race (FYERS: -162 "already traded")
})

# Two different DONE statuses for one order: contradictory only when one of them is "filled";
# otherwise (cancelled vs expired vs rejected) the remainder is dead either way: keep the first.
DONE_CONFLICTS = frozenset(frozenset({OrderStatus.FILLED, s})
                           for s in (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED))
