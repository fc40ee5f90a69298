"""fyers_store.adapters.sdk_redirect points the unmodified SDK elsewhere and puts everything back."""

from __future__ import annotations

import pytest
from fyers_apiv3 import fyersModel
from fyers_apiv3.FyersWebsocket import data_ws, defines, order_ws

from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

ENDPOINTS = SdkEndpoints("http://127.0.0.1:9/", "ws://127.0.0.1:10/trade/v3", "ws://127.0.0.1:11/hsm/v1-5/prod")


def _sdk_state():
    return (fyersModel.Config.API, fyersModel.Config.DATA_API, defines.INDEX_HSM_MAPPING_API,
            data_ws.SymbolConversion.__init__, order_ws.FyersOrderSocket.__init__,
            data_ws.FyersDataSocket.__init__, data_ws.SymbolConversion._index_hsm_mapping_cache)


@pytest.fixture
def fresh_singletons(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    monkeypatch.setattr(data_ws.FyersDataSocket, "_instance", None)


def test_every_hard_coded_location_is_redirected_and_restored(fresh_singletons, tmp_path):
    before = _sdk_state()
    assert before[0] == "https://api-t1.fyers.in/api/v3"
    with redirect_sdk(ENDPOINTS) as ep:
        assert fyersModel.Config.API == "http://127.0.0.1:9/api/v3"
        assert fyersModel.Config.DATA_API == "http://127.0.0.1:9/data"
        assert defines.INDEX_HSM_MAPPING_API == "http://127.0.0.1:9/sym_details/index_hsm_mapping.json"
        conv = data_ws.SymbolConversion("APP-100:tok", "SymbolUpdate", str(tmp_path))
        assert conv.symbols_token_api == "http://127.0.0.1:9/data/symbol-token"
        osock = order_ws.FyersOrderSocket(access_token="APP-100:tok", log_path=str(tmp_path))
        assert osock._FyersOrderSocket__url == ep.order_ws
        dsock = data_ws.FyersDataSocket(access_token="APP-100:tok", log_path=str(tmp_path))
        assert dsock._FyersDataSocket__url == ep.data_ws
        # The singleton re-runs __init__ on every construction: the URL must survive that too.
        again = order_ws.FyersOrderSocket(access_token="APP-100:tok", log_path=str(tmp_path))
        assert again is osock and again._FyersOrderSocket__url == ep.order_ws
    assert _sdk_state() == before
    # Constructed after the redirect ended: the SDK's own URL again.
    assert order_ws.FyersOrderSocket(access_token="A-100:t", log_path=str(tmp_path))._FyersOrderSocket__url \
        == "wss://socket.fyers.in/trade/v3"


def test_state_is_restored_when_the_block_raises():
    before = _sdk_state()
    with pytest.raises(KeyError):
        with redirect_sdk(ENDPOINTS):
            raise KeyError("boom")
    assert _sdk_state() == before


def test_nested_redirects_are_refused_and_leave_the_outer_one_intact():
    with redirect_sdk(ENDPOINTS):
        with pytest.raises(RuntimeError, match="already redirected"):
            with redirect_sdk(ENDPOINTS):
                pass
        assert fyersModel.Config.API == ENDPOINTS.api
    assert fyersModel.Config.API == "https://api-t1.fyers.in/api/v3"


@pytest.mark.parametrize("field", ["rest", "order_ws", "data_ws"])
def test_endpoints_must_be_absolute_urls(field):
    args = {"rest": "http://h:1", "order_ws": "ws://h:2/t", "data_ws": "ws://h:3/d"}
    args[field] = "127.0.0.1:8080"
    with pytest.raises(ValueError, match=f"SdkEndpoints.{field}"):
        SdkEndpoints(**args)


def test_a_held_redirect_lasts_until_released_and_blocks_any_other_meanwhile():
    from fyers_store.adapters.sdk_redirect import active_redirect, hold_redirect

    before = _sdk_state()
    hold = hold_redirect(ENDPOINTS)
    try:
        assert active_redirect() == ENDPOINTS and fyersModel.Config.API == ENDPOINTS.api
        with pytest.raises(RuntimeError, match="already redirected"):
            hold_redirect(SdkEndpoints("http://127.0.0.1:12", ENDPOINTS.order_ws, ENDPOINTS.data_ws))
        assert fyersModel.Config.API == ENDPOINTS.api  # the refused one changed nothing
    finally:
        hold.release()
    assert _sdk_state() == before and active_redirect() is None and hold.released
    hold.release()  # idempotent: a second release restores nothing twice
    with redirect_sdk(ENDPOINTS):
        hold.release()  # a stale hold cannot undo a later redirect
        assert fyersModel.Config.API == ENDPOINTS.api
    assert _sdk_state() == before
