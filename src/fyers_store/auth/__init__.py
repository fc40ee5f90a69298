"""FYERS authentication: automated TOTP login, a reusable on-disk token, a ready SDK client.

Typical use::

    from fyers_store.auth import config_from_yaml, get_fyers_client
    fyers = get_fyers_client(config_from_yaml())   # FYERS_CREDENTIALS_YAML overrides the file
    fyers.get_profile()

The token at ``token_path`` is reused while it is before both its JWT ``exp`` and the next
``token_refresh_time_ist`` cutoff (IST) after it was issued; otherwise the TOTP login runs (with a
deadline per request and bounded, jittered retries of transport failures only).
:func:`load_checked_token` (used by ``FyersStore.from_config`` and ``fyers-store login``) also asks
FYERS, with one ``get_profile``, whether it still accepts the token, and logs in once more if not.
From the shell: ``python -m fyers_store.auth``, ``fyers-store login``, ``fyers-store profile``.
"""

from fyers_store.auth.client import (CheckedToken, check_token, fetch_profile, get_access_token, get_fyers_client,
                                     load_checked_token, load_or_login)
from fyers_store.auth.token_store import StoredToken, TokenStore, jwt_claims, next_refresh_cutoff
from fyers_store.auth.totp_login import LoginResult, TotpLogin, app_id_hash
from fyers_store.config import config_from_yaml
from fyers_store.config.schema import FyersAuthConfig

__all__ = [
    "CheckedToken",
    "FyersAuthConfig",
    "LoginResult",
    "StoredToken",
    "TokenStore",
    "TotpLogin",
    "app_id_hash",
    "check_token",
    "config_from_yaml",
    "fetch_profile",
    "get_access_token",
    "get_fyers_client",
    "jwt_claims",
    "load_checked_token",
    "load_or_login",
    "next_refresh_cutoff",
]
