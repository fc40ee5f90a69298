"""The data frames the unmodified SDK reads from the venue over a short stretch of trading, each
with the records the SDK's own parser made of it: the material the frame decoder and the record
typing are compared against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fyers_sim.testing import wait_until

STOCKS = ("NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:TCS-EQ")
INDEX = "NSE:NIFTY50-INDEX"


@dataclass(frozen=True)
class CapturedFrames:
    """``raw[i]`` is a data frame as received; ``parsed[i]`` the SDK's records from it."""

    raw: list[bytes]
    parsed: list[list[dict]]
    symbol_token: dict[str, str]  # the SDK's topic table after the subscribes


def capture_sdk_frames(venue: Any, tmp_path: Any) -> CapturedFrames:
    """Subscribe ``STOCKS`` and ``INDEX`` (full mode) and ``STOCKS[0]``'s depth, step the venue
    two minutes, and keep every data frame (sf, if and dp records) until the SDK has caught up."""
    from fyers_apiv3.FyersWebsocket import data_ws

    raw: list[bytes] = []
    parsed: list[list[dict]] = []
    records = [0]
    data_ws.FyersDataSocket._instance = None
    sock = data_ws.FyersDataSocket(access_token=venue.sdk_access_token(), reconnect=False, log_path=str(tmp_path),
                                   on_message=lambda msg: None, on_error=lambda e: None, on_close=lambda m: None,
                                   on_connect=lambda: None)
    parse, callback = sock._FyersDataSocket__response_msg, sock.OnMessage

    def per_frame(data: Any) -> None:
        got: list[dict] = []
        sock.OnMessage = got.append
        try:
            parse(data)
        finally:
            sock.OnMessage = callback
        if data[2] == 6:  # a data frame
            raw.append(bytes(data))
            parsed.append(got)
            records[0] += len(got)

    sock._FyersDataSocket__response_msg = per_frame
    try:
        sock.connect()
        sock.subscribe([*STOCKS, INDEX], "SymbolUpdate")
        wait_until(lambda: records[0] >= 4, 20, message="snapshots")
        sock.subscribe([STOCKS[0]], "DepthUpdate")
        wait_until(lambda: records[0] >= 5, 20, message="depth snapshot")
        for _ in range(6):
            venue.advance(20)
        wait_until(lambda: records[0] > 200, 20, message="ticks")
        before = [-1]

        def settled() -> bool:
            done, before[0] = records[0] == before[0], records[0]
            return done
        wait_until(settled, 20, interval=0.3, message="the SDK caught up")
        tokens = dict(sock.symbol_token)
    finally:
        sock.close_connection()
    return CapturedFrames(raw, parsed, tokens)
