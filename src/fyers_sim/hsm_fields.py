"""The HSM data socket's field tables: one definition for the venue's encoder and its AUTH reply.

Every snapshot (83) and full update (85) record carries its topic's values as i32s in a fixed
order; the order is the *field table* of the topic kind (``sf`` symbol feed, ``if`` index feed,
``dp`` depth). Clients learn it in one of two ways, and both must agree with what the venue sends:

* the official Python SDK (``fyers-apiv3`` 3.2.0) has the tables built in (``map.json``
  ``data_val``/``index_val``/``depthvalue``, protocol reference §5.6) and ignores everything in
  the AUTH reply after its second field;
* the official Node SDK (``fyers-api-v3`` 1.9.0, ``HSM_Package/hslib.js``) builds its field maps
  from the AUTH reply's **third field**: a JSON document ``{"fields": [{"fid", "fld",
  "dataType", "details"}...], "scrip": [fid...], "index": [fid...], "depth": [fid...],
  "scrip_lite": {"hfid": n}, "index_lite": {"hfid": n}}``. ``scrip``/``index``/``depth`` list
  field ids in record order; ``fld`` is the key the client emits (its ``HSM/mapper.js`` turns
  ``ltp``, ``v``, ``bp`` ... into the Python SDK's names); ``dataType`` ``"ConvNumber"`` is a
  price (divided by ``10**precision * multiplier``), ``"timestamp"`` epoch seconds,
  ``"Number"`` an integer, anything else passed through; ``*_lite.hfid`` is the number of values
  in a lite (76) record. Without the third field that SDK has no field map and decodes nothing.

So :data:`SCRIP_TABLE`, :data:`INDEX_TABLE` and :data:`DEPTH_TABLE` below name each position
once, with both spellings, and :data:`AUTH_FIELD_TABLES` is derived from them.

What is sure and what is not (2026-12): the order and the Python names are the SDK's
``map.json``; the ``fld`` keys and ``dataType`` strings are the Node SDK's; the Node SDK
hard-codes the ids ``s104`` (volume), ``s105`` (ltp), ``s113`` (average price), ``s121``
(previous close), ``i102`` (index value), ``i103`` (index previous close) and ``f101``-``f105``
(the change, percent-change and turnover fields it computes itself), so those are exact. Which id
FYERS gives every other field is not public: the venue numbers them in the same scheme (letter +
100 + position in the HSM library's layout, INFERRED) -- a client only uses them to join
``fields`` with the order lists, so any unique ids serve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = [
    "AUTH_FIELD_TABLES", "AUTH_FIELD_TABLES_JSON", "DEPTH_TABLE", "INDEX_TABLE", "LITE_FIELD_COUNT",
    "PRICE", "SCRIP_TABLE", "TABLES", "WireField",
]

#: ``dataType`` values of the AUTH field tables (the Node SDK's ``getTypeFromString``).
PRICE, INTEGER, TIMESTAMP, TEXT = "ConvNumber", "Number", "timestamp", "String"
#: Values in a lite (76) record: the ltp alone (data_ws.py:1328-1356; ``*_lite.hfid``).
LITE_FIELD_COUNT = 1


@dataclass(frozen=True)
class WireField:
    """One position of a field table: the Python SDK's ``name``, the HSM key ``fld`` the AUTH
    tables announce, its field id ``fid`` and its ``data_type`` (:data:`PRICE` ...)."""

    name: str
    fld: str
    fid: str
    data_type: str


def _f(name: str, fld: str, fid: str, data_type: str) -> WireField:
    return WireField(name, fld, fid, data_type)


#: ``sf`` records, in wire order (map.json ``data_val``).
SCRIP_TABLE: tuple[WireField, ...] = (
    _f("ltp", "ltp", "s105", PRICE),
    _f("vol_traded_today", "v", "s104", INTEGER),
    _f("last_traded_time", "ltt", "s103", TIMESTAMP),
    _f("exch_feed_time", "fdtm", "s102", TIMESTAMP),
    _f("bid_size", "bq", "s111", INTEGER),
    _f("ask_size", "bs", "s112", INTEGER),
    _f("bid_price", "bp", "s109", PRICE),
    _f("ask_price", "sp", "s110", PRICE),
    _f("last_traded_qty", "ltq", "s106", INTEGER),
    _f("tot_buy_qty", "tbq", "s107", INTEGER),
    _f("tot_sell_qty", "tsq", "s108", INTEGER),
    _f("avg_trade_price", "ap", "s113", PRICE),
    _f("OI", "oi", "s122", INTEGER),
    _f("low_price", "lo", "s114", PRICE),
    _f("high_price", "h", "s115", PRICE),
    _f("Yhigh", "yh", "s118", PRICE),
    _f("Ylow", "yl", "s119", PRICE),
    _f("lower_ckt", "lcl", "s116", PRICE),
    _f("upper_ckt", "ucl", "s117", PRICE),
    _f("open_price", "op", "s120", PRICE),
    _f("prev_close_price", "c", "s121", PRICE),
)

#: ``if`` records, in wire order (map.json ``index_val``).
INDEX_TABLE: tuple[WireField, ...] = (
    _f("ltp", "iv", "i102", PRICE),
    _f("prev_close_price", "ic", "i103", PRICE),
    _f("exch_feed_time", "tvalue", "i104", TIMESTAMP),
    _f("high_price", "highPrice", "i105", PRICE),
    _f("low_price", "lowPrice", "i106", PRICE),
    _f("open_price", "openingPrice", "i107", PRICE),
)


def _depth() -> tuple[WireField, ...]:
    """``dp`` records (map.json ``depthvalue``): 5 bid prices, 5 ask prices, 5 bid sizes, 5 ask
    sizes, 5 bid order counts, 5 ask order counts. HSM keys: ``bp, bp1..bp4`` (level 1 has no
    digit), likewise ``sp``/``bq``/``bs``; order counts ``bno1..5``/``sno1..5``."""
    out = []
    fid = 102
    for prefix, key, data_type in (("bid_price", "bp", PRICE), ("ask_price", "sp", PRICE),
                                   ("bid_size", "bq", INTEGER), ("ask_size", "bs", INTEGER)):
        for level in range(1, 6):
            out.append(_f(f"{prefix}{level}", key if level == 1 else f"{key}{level - 1}", f"d{fid}", data_type))
            fid += 1
    for prefix, key in (("bid_order", "bno"), ("ask_order", "sno")):
        for level in range(1, 6):
            out.append(_f(f"{prefix}{level}", f"{key}{level}", f"d{fid}", INTEGER))
            fid += 1
    return tuple(out)


DEPTH_TABLE: tuple[WireField, ...] = _depth()

#: Topic kind -> its field table.
TABLES: dict[str, tuple[WireField, ...]] = {"sf": SCRIP_TABLE, "if": INDEX_TABLE, "dp": DEPTH_TABLE}

#: Fields a client derives itself and the Node SDK appends to the order lists by these ids: they
#: must be described in ``fields`` (its ``createMapingsMap`` looks every appended id up).
_DERIVED = (
    _f("ch", "cng", "f101", PRICE), _f("chp", "nc", "f102", TEXT), _f("turnover", "to", "f103", PRICE),
    _f("ch", "cng", "f104", PRICE), _f("chp", "nc", "f105", TEXT),
)


def _auth_tables() -> dict:
    fields = [*SCRIP_TABLE, *INDEX_TABLE, *DEPTH_TABLE, *_DERIVED]
    ids = [f.fid for f in fields]
    assert len(ids) == len(set(ids)), "field ids must be unique"
    return {
        "fields": [{"fid": f.fid, "fld": f.fld, "dataType": f.data_type, "details": f.name} for f in fields],
        "scrip": [f.fid for f in SCRIP_TABLE],
        "index": [f.fid for f in INDEX_TABLE],
        "depth": [f.fid for f in DEPTH_TABLE],
        "scrip_lite": {"hfid": LITE_FIELD_COUNT},
        "index_lite": {"hfid": LITE_FIELD_COUNT},
    }


#: The AUTH reply's third field as a document (see the module docstring).
AUTH_FIELD_TABLES: dict = _auth_tables()
#: ... and as the bytes on the wire (compact UTF-8 JSON).
AUTH_FIELD_TABLES_JSON: bytes = json.dumps(AUTH_FIELD_TABLES, separators=(",", ":")).encode()
