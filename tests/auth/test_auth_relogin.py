"""Recovery from a token FYERS refused (issue 14, finding 6), against the venue with the unmodified SDK.

Start-up (``FyersStore.from_config``) and ``fyers-store login`` ask FYERS about the stored token
with one ``get_profile``. Refused: exactly one TOTP login, whose token is saved (0600) and checked.
Refused again: ``AuthError`` / exit 1, no loop. No verdict (5xx, 429, timeout): the token is kept
and no login is made. Every count below is taken at the venue.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from fyers_store import FyersStore
from fyers_store.auth import load_checked_token, load_or_login
from fyers_store.cli.main import main
from fyers_store.config import config_from_yaml
from fyers_store.errors import AuthError, RateLimitError
from support.cli_config import config_copy, stored_token, write_credentials
from support.clocks import ist
from support.login import SEND_OTP, make_config, make_login, profile_status

PROFILE = "/api/v3/profile"
TOKEN_FAULTS = ["invalidate_tokens", "expire_tokens"]


class Counts:
    """Requests the venue received since this object was made: TOTP logins started, profile calls."""

    def __init__(self, venue) -> None:
        self.venue = venue
        self.logins0 = venue.rest_requests(SEND_OTP)
        self.profiles0 = venue.rest_requests(PROFILE)

    @property
    def logins(self) -> int:
        return self.venue.rest_requests(SEND_OTP) - self.logins0

    @property
    def profiles(self) -> int:
        return self.venue.rest_requests(PROFILE) - self.profiles0


def store_dir_with_token(venue, tmp_path: Path, **credentials) -> tuple[Path, str]:
    """A config directory for ``venue`` (see ``config_copy``) whose token file holds a good token."""
    root = config_copy(venue, tmp_path)
    if credentials:
        write_credentials(venue, root, **credentials)
    load_or_login(config_from_yaml(root / "fyers_credentials.yaml"))
    return root, stored_token(root)


def token_file(root: Path) -> Path:
    return root / "secrets" / "fyers_token.json"


def from_config(venue, root: Path) -> FyersStore:
    return FyersStore.from_config(root, clock=venue.clock.now, market=False, orders=False)


def assert_no_token_in(texts: list[str], *tokens: str) -> None:
    for text in texts:
        for token in tokens:
            assert token not in text, "an access token leaked"


# ---------------------------------------------------------------------------- the auth function
def test_load_checked_token_says_what_happened_and_hides_the_token(venue, tmp_path):
    config = make_config(venue, tmp_path)
    first = load_checked_token(config, login=make_login(config)[0])
    assert (first.fresh, first.relogin, first.accepted) == (True, False, True)
    assert first.profile is not None and first.profile["fy_id"] == venue.account.fy_id
    venue.faults.invalidate_tokens()
    login, session, _ = make_login(config)
    again = load_checked_token(config, login=login)
    assert (again.fresh, again.relogin, again.accepted) == (True, True, True) and len(session.paths) == 5
    assert again.token.access_token != first.token.access_token
    assert load_checked_token(config, login=make_login(config)[0]).fresh is False  # accepted: reused
    for checked in (first, again):
        assert_no_token_in([repr(checked)], first.token.access_token, again.token.access_token)


def test_the_check_takes_a_slot_of_the_rest_budget_and_a_spent_budget_is_no_verdict(venue, tmp_path):
    from fyers_store.adapters.rate_limiter import Budgets, RateLimiter

    config = make_config(venue, tmp_path)
    budget = RateLimiter(Budgets(per_second=10, per_minute=200, per_day=1000))
    first = load_checked_token(config, login=make_login(config)[0], budget=budget)
    assert first.accepted and budget.stats()["acquired"] == 1 and budget.stats()["in_flight"] == 0
    budget.pause(600)  # e.g. FYERS said "retry after 10 minutes" to another request of the process
    counts = Counts(venue)
    login, session, _ = make_login(config)
    kept = load_checked_token(config, login=login, budget=budget)
    assert not kept.accepted and isinstance(kept.unchecked, RateLimitError)
    assert kept.token == first.token and session.paths == [] and counts.profiles == 0  # nothing sent


# ---------------------------------------------------------------------------- start-up
@pytest.mark.parametrize("fault", TOKEN_FAULTS)
def test_start_after_the_token_was_refused_logs_in_once_and_the_store_works(sdk_venue, tmp_path, fault, caplog):
    root, old = store_dir_with_token(sdk_venue, tmp_path)
    getattr(sdk_venue.faults, fault)()
    config = config_from_yaml(root / "fyers_credentials.yaml")
    assert profile_status(sdk_venue, config, old) == 401  # the fault took: FYERS refuses the old token
    caplog.set_level(logging.DEBUG)
    counts = Counts(sdk_venue)

    store = from_config(sdk_venue, root)
    try:
        assert counts.logins == 1  # one TOTP login ...
        assert counts.profiles == 2  # ... between the refused check and the check of the new token
        new = stored_token(root)
        assert new != old and stat.S_IMODE(token_file(root).stat().st_mode) == 0o600
        bars = store.get_history("NSE:SBIN-EQ", "5", ist(2026, 11, 16, 9, 15), ist(2026, 11, 17, 15, 30))
        assert len(bars) == 2 * 75
        assert store.funds() is not None and store.profile()["fy_id"] == sdk_venue.account.fy_id
    finally:
        store.stop()
    assert any("refused the stored access token" in r.getMessage() for r in caplog.records)
    assert_no_token_in([r.getMessage() for r in caplog.records] + [repr(store)], old, new)


def test_start_with_a_token_fyers_accepts_makes_one_check_and_no_login(sdk_venue, tmp_path):
    root, old = store_dir_with_token(sdk_venue, tmp_path)
    counts = Counts(sdk_venue)
    store = from_config(sdk_venue, root)
    try:
        assert (counts.logins, counts.profiles) == (0, 1) and stored_token(root) == old
        assert store.profile()["fy_id"] == sdk_venue.account.fy_id
    finally:
        store.stop()


def refuse_the_login(venue) -> None:
    venue.faults.rest_error(SEND_OTP, status=403, times=None)  # a refusal, not a transport failure


def refuse_the_new_token(venue) -> None:
    venue.tokens.refuse_new_tokens()


@pytest.mark.parametrize(("refuse", "says", "profiles"), [
    (refuse_the_login, "the new TOTP login failed", 1),
    (refuse_the_new_token, "also the one from a new TOTP login", 2),
])
def test_start_refused_twice_raises_auth_error_after_one_login(sdk_venue, tmp_path, refuse, says, profiles):
    root, old = store_dir_with_token(sdk_venue, tmp_path)
    sdk_venue.faults.invalidate_tokens()
    refuse(sdk_venue)
    for start in (1, 2):  # every start tries exactly once: a restart loop cannot become a login storm
        counts = Counts(sdk_venue)
        with pytest.raises(AuthError) as err:
            from_config(sdk_venue, root)
        assert (counts.logins, counts.profiles) == (1, profiles), f"start {start}"
        message = str(err.value)
        assert message.startswith("FYERS refused the stored access token") and says in message
        assert "Not logging in again" in message and "then start again" in message
        assert_no_token_in([message, repr(err.value)], old, stored_token(root))


def test_start_whose_fresh_token_is_refused_does_not_log_in_twice(sdk_venue, tmp_path):
    root = config_copy(sdk_venue, tmp_path)  # no token file: the start logs in
    sdk_venue.tokens.refuse_new_tokens()
    counts = Counts(sdk_venue)
    with pytest.raises(AuthError, match="refused the access token of a new TOTP login") as err:
        from_config(sdk_venue, root)
    assert (counts.logins, counts.profiles) == (1, 1) and err.value.code == -16


@pytest.mark.parametrize("trouble", ["5xx", "429"])
def test_a_check_without_a_verdict_keeps_the_token_and_does_not_log_in(sdk_venue, tmp_path, trouble):
    root, old = store_dir_with_token(sdk_venue, tmp_path)
    before = token_file(root).read_bytes()
    if trouble == "5xx":
        sdk_venue.faults.rest_error(PROFILE, status=503, times=None)
    else:
        sdk_venue.faults.rate_limit_burst(count=1, retry_after=1.0, path=PROFILE)
    counts = Counts(sdk_venue)
    store = from_config(sdk_venue, root)
    try:
        assert (counts.logins, counts.profiles) == (0, 1)  # one check, not retried, no login
        assert token_file(root).read_bytes() == before
        sdk_venue.faults.clear()
        assert store.profile()["fy_id"] == sdk_venue.account.fy_id  # the kept token works
    finally:
        store.stop()


# ---------------------------------------------------------------------------- fyers-store login
@pytest.mark.parametrize("fault", TOKEN_FAULTS)
def test_login_command_logs_in_again_after_the_token_was_refused(venue, tmp_path, fault, capsys):
    creds = write_credentials(venue, tmp_path)
    assert main(["login", "--credentials", str(creds)]) == 0
    old = stored_token(tmp_path)
    capsys.readouterr()
    getattr(venue.faults, fault)()

    counts = Counts(venue)
    assert main(["login", "--credentials", str(creds)]) == 0
    out = capsys.readouterr()
    assert "FYERS refused the stored token; logged in again; token stored at" in out.out
    assert "reusing" not in out.out and (counts.logins, counts.profiles) == (1, 2)
    new = stored_token(tmp_path)
    assert new != old and stat.S_IMODE((tmp_path / "secrets" / "fyers_token.json").stat().st_mode) == 0o600
    assert profile_status(venue, config_from_yaml(creds), new) == 200
    assert_no_token_in([out.out, out.err], old, new)

    counts = Counts(venue)  # the next ExecStartPre: FYERS accepts the token, so it is reused
    assert main(["login", "--credentials", str(creds)]) == 0
    assert "stored token still valid; reusing" in capsys.readouterr().out
    assert (counts.logins, counts.profiles) == (0, 1) and stored_token(tmp_path) == new


@pytest.mark.parametrize(("refuse", "says"), [
    (refuse_the_login, "the new TOTP login failed: FYERS login step 'send_login_otp' was refused"),
    (refuse_the_new_token, "also the one from a new TOTP login"),
])
def test_login_command_refused_twice_exits_1_after_one_login(venue, tmp_path, capsys, refuse, says):
    creds = write_credentials(venue, tmp_path)
    assert main(["login", "--credentials", str(creds)]) == 0
    capsys.readouterr()
    venue.faults.invalidate_tokens()
    refuse(venue)
    counts = Counts(venue)
    assert main(["login", "--credentials", str(creds)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and counts.logins == 1
    assert out.err.startswith("fyers-store: FYERS refused the stored access token") and says in out.err
    assert "Not logging in again" in out.err and venue.account.pin not in out.err
    assert_no_token_in([out.err], stored_token(tmp_path))


@pytest.mark.parametrize("trouble", ["5xx", "429", "timeout"])
def test_login_command_keeps_the_token_when_fyers_cannot_check_it(venue, tmp_path, capsys, trouble):
    creds = write_credentials(venue, tmp_path, request_timeout_seconds=0.3)
    assert main(["login", "--credentials", str(creds)]) == 0
    old = stored_token(tmp_path)
    capsys.readouterr()
    if trouble == "5xx":
        venue.faults.rest_error(PROFILE, status=502, times=None)
    elif trouble == "429":
        venue.faults.rate_limit_burst(count=1, retry_after=1.0, path=PROFILE)
    else:
        venue.faults.rest_delay(PROFILE, seconds=2.0, times=1)  # well past the 0.3 s deadline
    counts = Counts(venue)
    assert main(["login", "--credentials", str(creds)]) == 0
    out = capsys.readouterr().out
    assert "stored token kept without a check by FYERS; reusing" in out and "FYERS could not confirm it" in out
    assert (counts.logins, counts.profiles) == (0, 1) and stored_token(tmp_path) == old


def test_login_command_draws_on_the_users_shared_rest_budget(venue, tmp_path, capsys):
    """``fyers-store login`` beside a running strategy: its profile check is counted in the same
    budget file the strategy's store uses (found from the credentials' directory, or --config-dir),
    so the two together stay within FYERS's per-user limits."""
    import sqlite3

    from fyers_store.adapters.shared_budget import reset_shared_limiter

    root = config_copy(venue, tmp_path)
    budget = tmp_path / "rest_budget.sqlite"  # beside state.sqlite, as from_config puts it
    try:
        assert main(["login", "--credentials", str(root / "fyers_credentials.yaml")]) == 0
        counts = Counts(venue)
        assert main(["login", "--config-dir", str(root)]) == 0
        assert "reusing" in capsys.readouterr().out and counts.profiles == 1
        conn = sqlite3.connect(budget)
        try:
            (sends,) = conn.execute("SELECT COUNT(*) FROM sends WHERE user = ?", (venue.account.fy_id,)).fetchone()
        finally:
            conn.close()
        assert sends == venue.rest_requests(PROFILE) == 2  # every check of both runs, nothing else
    finally:
        reset_shared_limiter()
