"""HSM topics of the venue's data socket and the records that carry market ticks.

The data socket (:mod:`fyers_sim.data_socket`) talks in *topics* such as ``sf|nse_cm|3045``
(symbol feed), ``if|nse_cm|Nifty 50`` (index feed) and ``dp|nse_cm|3045`` (5-level depth),
built by the SDK from ``/data/symbol-token`` fytokens (protocol §5.2). This module:

* resolves topic strings to venue instruments and gives every topic one id for the life of
  the server (:class:`TopicBook`).  Ids are unique across sf/if/dp and across connections,
  so an encoded record can be shared by every connection subscribed to its topic (the SDK
  looks an update's id up in its scrip, index and depth maps in that order,
  data_ws.py:1274-1310, so ids must not collide between kinds);
* turns a :class:`~fyers_sim.market.Tick` into the raw i32 field values of the topic's
  table (``hsm.SCRIP_FIELDS``/``INDEX_FIELDS``/``DEPTH_FIELDS``) and encodes snapshot (83),
  full update (85) and lite (76) records with as little per-tick work as possible.

Prices are sent as integers with the snapshot's ``precision`` (decimals of the tick size: 2
for NSE's 0.05) and ``multiplier`` 1; the SDK divides by ``10**precision * multiplier``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import log

from . import hsm, hsm_requests
from .instruments import CIRCUIT_BAND, Instrument, tick_fraction
from .market import MarketData, Tick

__all__ = ["SEGMENTS", "TopicInfo", "TopicBook", "TickEncoder", "I32_MAX"]

#: fytoken prefix (exchange + segment) -> HSM segment name, as in the SDK's map.json
#: ``exch_seg_dict`` (used by SymbolConversion, data_ws.py:100-102).
SEGMENTS: dict[str, str] = {
    "1010": "nse_cm", "1011": "nse_fo", "1120": "mcx_fo", "1210": "bse_cm",
    "1012": "cde_fo", "1211": "bse_fo", "1212": "bcs_fo", "1020": "nse_com",
}

I32_MAX = 2**31 - 1
_ABSENT = hsm.ABSENT
_UPDATE = {kind: struct.Struct(f">BHB{len(table)}i") for kind, table in hsm.FIELD_TABLES.items()}
_LITE = struct.Struct(">BHi")
_NFIELDS = {kind: len(table) for kind, table in hsm.FIELD_TABLES.items()}


@dataclass(frozen=True)
class TopicInfo:
    """One resolved topic: its wire ``name``, ``kind`` (sf/if/dp), server-wide ``tid`` and
    the venue ``instrument``."""

    name: str
    kind: str
    tid: int
    instrument: Instrument

    @property
    def symbol(self) -> str:
        """The FYERS symbol, e.g. ``NSE:SBIN-EQ``."""
        return self.instrument.symbol

    @property
    def token(self) -> str:
        """The topic's token part: ``3045`` of ``sf|nse_cm|3045``, ``Nifty 50`` of an index."""
        return self.name.split("|", 2)[2]


class TopicBook:
    """Topic name -> :class:`TopicInfo` for the instruments of one market (thread-safe).

    ``sf``/``dp`` topics name an instrument by segment and exchange token (``fytoken[10:]``);
    ``if`` topics name an index by segment and its exchange index name (``hsm_name``, the
    value served in ``index_hsm_mapping.json``).  Depth and symbol feeds of an index, and
    an index feed of a non-index, do not exist (None).
    """

    def __init__(self, instruments: Mapping[str, Instrument],
                 today: Callable[[], dt.date] | None = None) -> None:
        # Generated F&O contracts are found by token on first use (``today``: the venue date).
        self._instruments, self._today = instruments, today
        self._by_token: dict[tuple[str, str], Instrument] = {}
        self._by_index: dict[tuple[str, str], Instrument] = {}
        for ins in instruments.values():
            seg = SEGMENTS.get(ins.fytoken[:4])
            if seg is None:
                continue
            if ins.is_index:
                if ins.hsm_name:
                    self._by_index[(seg, ins.hsm_name)] = ins
            else:
                self._by_token[(seg, ins.fytoken[10:])] = ins
        self._lock = threading.Lock()
        self._topics: dict[str, TopicInfo | None] = {}
        self._by_id: list[TopicInfo | None] = [None]  # id 0 unused

    def resolve(self, name: str) -> TopicInfo | None:
        """The topic called ``name``, allocating its id on first use; None if unknown."""
        try:
            return self._topics[name]
        except KeyError:
            pass
        with self._lock:
            if name in self._topics:
                return self._topics[name]
            info = None
            try:
                topic = hsm_requests.parse_topic(name)
            except hsm_requests.HsmDecodeError:
                topic = None
            if topic is not None:
                key = (topic.segment, topic.token)
                ins = self._by_index.get(key) if topic.kind == "if" else self._by_token.get(key)
                finder = getattr(self._instruments, "by_exchange_token", None)
                if ins is None and topic.kind != "if" and finder is not None and self._today:
                    found = finder(topic.token, self._today())
                    if found is not None and SEGMENTS.get(found.fytoken[:4]) == topic.segment:
                        ins = found
                if ins is not None:
                    if len(self._by_id) > 0xFFFF:
                        raise RuntimeError("more than 65535 distinct topics")
                    info = TopicInfo(name, topic.kind, len(self._by_id), ins)
                    self._by_id.append(info)
            if len(self._topics) < 100_000:  # do not let garbage topics grow the cache forever
                self._topics[name] = info
            return info

    def by_id(self, tid: int) -> TopicInfo:
        """The topic with id ``tid`` (ids come from :meth:`resolve`)."""
        info = self._by_id[tid]
        assert info is not None
        return info


def _precision(ins: Instrument) -> tuple[int, int]:
    """(precision, raw units per price tick) for ``ins``: the fewest decimals that put every
    price on the tick grid on an integer (0.05 -> (2, 5))."""
    num, den = tick_fraction(ins.tick_size)
    p = 0
    while (10 ** p) % den:
        p += 1
        if p > 8:
            raise ValueError(f"tick size {ins.tick_size} has no short decimal form")
    return p, num * 10 ** p // den


class TickEncoder:
    """Raw field values and records for ticks of one market (see the module docstring).

    ``sf`` values: ltp, volume so far, last traded time, feed time (= trade time), best
    bid/ask size and price, last traded quantity, total buy/sell quantity, average traded
    price, OI (F&O only), day low/high, Yhigh/Ylow (not simulated: sent as absent; the SDK
    drops both, data_ws.py:1066-1071, and a 52-week scan costs ~0.7 s per symbol), the circuit
    band (±10 % of the previous close, as ``/data/depth``; the SDK zeroes it, data_ws.py:1062),
    day open and previous close.  ``if``: ltp, previous close, feed time, day high, low, open.
    ``dp``: exactly the 5 levels ``MarketData.depth`` reports at the tick (``/data/depth``),
    computed without its dict building.
    """

    def __init__(self, market: MarketData) -> None:
        self.market = market
        self._scales: dict[str, tuple[int, int]] = {}

    def scale(self, ins: Instrument) -> tuple[int, int]:
        """(precision, raw units per tick) of ``ins``, cached."""
        found = self._scales.get(ins.symbol)
        if found is None:
            found = self._scales[ins.symbol] = _precision(ins)
        return found

    # ------------------------------------------------------------------ values
    def values(self, kind: str, ins: Instrument, t: Tick | None) -> tuple[int, ...]:
        """The raw field values of ``t`` for a ``kind`` topic (all absent when ``t`` is None)."""
        if t is None:
            return (_ABSENT,) * _NFIELDS[kind]
        if kind == "sf":
            return self._sf_values(ins, [t])[0]
        if kind == "if":
            return self._if_values(ins, [t])[0]
        return self._dp_values(ins, [t], random.Random())[0]

    def _sf_values(self, ins: Instrument, ticks: list[Tick]) -> list[tuple[int, ...]]:
        p, step = self.scale(ins)
        sc = 10 ** p
        derivative = ins.is_derivative
        out = []
        last_pc = None
        lower = upper = pc = 0
        for (_, e, ltp, ltq, vol, bid, ask, bsz, asz, op, hi, lo, prev, atp, tbq, tsq, oi) in ticks:
            if prev != last_pc:  # once per day: the circuit band around the previous close
                last_pc = prev
                pc = round(prev * sc)
                prev_t = pc // step
                band = round(prev_t * CIRCUIT_BAND)
                lower, upper = max(1, prev_t - band) * step, (prev_t + band) * step
            out.append((
                round(ltp * sc), vol if vol < I32_MAX else I32_MAX, e, e, bsz, asz,
                round(bid * sc), round(ask * sc), ltq, tbq if tbq < I32_MAX else I32_MAX,
                tsq if tsq < I32_MAX else I32_MAX, round(atp * sc),
                (oi if oi < I32_MAX else I32_MAX) if derivative and oi is not None else _ABSENT,
                round(lo * sc), round(hi * sc), _ABSENT, _ABSENT, lower, upper,
                round(op * sc), pc,
            ))
        return out

    def _if_values(self, ins: Instrument, ticks: list[Tick]) -> list[tuple[int, ...]]:
        sc = 10 ** self.scale(ins)[0]
        return [(round(t.ltp * sc), round(t.prev_close * sc), t.epoch, round(t.high * sc),
                 round(t.low * sc), round(t.open * sc)) for t in ticks]

    def _dp_values(self, ins: Instrument, ticks: list[Tick], rng: random.Random) -> list[tuple[int, ...]]:
        """Depth levels equal to ``MarketData.depth(symbol, t.epoch)`` (``depth_payload`` in
        instruments.py seeded with market.py's ``_seed(seed, symbol, epoch, "depth")``): same
        seed, same random draws, without building dicts.  ``expovariate(1.0)`` is written out
        as ``-log(1.0 - random())``, its exact definition.  tests/sim/test_sim_data_socket.py
        checks the equality with ``MarketData.depth``."""
        p, step = self.scale(ins)
        sc = 10 ** p
        prefix = f"{self.market.seed}|{ins.symbol}|"
        lot, mu = ins.lot_size, max(ins.avg_trade_lots, 1.0)
        reseed, rand = rng.seed, rng.random
        blake, from_bytes = hashlib.blake2b, int.from_bytes
        out = []
        for t in ticks:
            reseed(from_bytes(blake(f"{prefix}{t.epoch}|depth".encode(), digest_size=8).digest(), "big"))
            bsz, asz = t.bid_size, t.ask_size
            bid_t, ask_t = round(t.bid * sc) // step, round(t.ask * sc) // step
            bo1 = max(1, min(bsz // lot, 1 + int(rand() * 12)))
            deep = min(4, bid_t - 1)  # bid levels stop at one tick
            bs, bo = [bsz], [bo1]
            for _ in range(deep):
                size = lot * (1 + int(-log(1.0 - rand()) * mu * 1.5))
                bs.append(size)
                bo.append(max(1, min(size // lot, 1 + int(rand() * 12))))
            as_, ao = [asz], [max(1, min(asz // lot, 1 + int(rand() * 12)))]
            for _ in range(4):
                size = lot * (1 + int(-log(1.0 - rand()) * mu * 1.5))
                as_.append(size)
                ao.append(max(1, min(size // lot, 1 + int(rand() * 12))))
            b = bid_t * step
            a = ask_t * step
            if deep == 4:
                out.append((b, b - step, b - 2 * step, b - 3 * step, b - 4 * step,
                            a, a + step, a + 2 * step, a + 3 * step, a + 4 * step,
                            *bs, *as_, *bo, *ao))
            else:  # missing bid levels are absent
                pad = [_ABSENT] * (4 - max(deep, 0))
                bp = [b - k * step for k in range(max(deep, 0) + 1)] + pad
                out.append((*bp, a, a + step, a + 2 * step, a + 3 * step, a + 4 * step,
                            *bs, *pad, *as_, *bo, *pad, *ao))
        return out

    # ------------------------------------------------------------------ records
    def snapshot(self, info: TopicInfo, t: Tick | None) -> bytes:
        """Snapshot record (83) of ``info`` at tick ``t`` (None: every field absent).

        Its token string is the topic's own token -- the exchange token of an ``sf``/``dp`` topic,
        the index name (``Nifty 50``) of an ``if`` topic, as FYERS sends it: a client that keys
        its subscriptions by that token (the Node SDK's ``fulldata[tk]``) finds the symbol."""
        ins = info.instrument
        values = self.values(info.kind, ins, t)
        table = hsm.FIELD_TABLES[info.kind]
        return hsm.encode_snapshot(
            info.tid, info.name, dict(zip(table, values)), multiplier=1,
            precision=self.scale(ins)[0], exchange=ins.exchange_name,
            exchange_token=info.token, symbol=ins.short_name)

    def updates(self, info: TopicInfo, ticks: list[Tick]) -> list[tuple[int, int, bytes]]:
        """Full-mode update records (85), one per tick, as ``(epoch, tid, record)``.

        Every field carries its current value; the SDK stores the ones that changed and
        emits a tick when any did (data_ws.py:1261-1326) -- the trade time changes with
        every trade, so every tick reaches ``on_message``."""
        kind, ins, tid = info.kind, info.instrument, info.tid
        if kind == "sf":
            rows = self._sf_values(ins, ticks)
        elif kind == "if":
            rows = self._if_values(ins, ticks)
        else:
            rows = self._dp_values(ins, ticks, random.Random())
        pack, n = _UPDATE[kind].pack, _NFIELDS[kind]
        return [(t.epoch, tid, pack(85, tid, n, *row)) for t, row in zip(ticks, rows)]

    def lites(self, info: TopicInfo, ticks: list[Tick]) -> list[tuple[int, int, bytes]]:
        """Lite records (76, ltp only) for an sf/if topic, as ``(epoch, tid, record)``."""
        sc = 10 ** self.scale(info.instrument)[0]
        tid, pack = info.tid, _LITE.pack
        return [(t.epoch, tid, pack(76, tid, round(t.ltp * sc))) for t in ticks]
