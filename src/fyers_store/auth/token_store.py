"""The on-disk FYERS access token: when it may be reused, and how it is written safely.

A FYERS access token is a JWT valid for one trading day. The file at ``token_path`` is JSON::

    {"version": 1, "access_token": "eyJ...", "client_id": "ABCD1234EF-100", "fy_id": "XY12345",
     "issued_at": 1795410000.0, "issued_at_ist": "2026-11-18T09:15:00+05:30",
     "expires_at": 1795482000, "expires_at_ist": "2026-11-19T06:00:00+05:30"}

It is written atomically (a temporary file in the same directory, flushed, then ``os.replace``)
and created with mode 0600; an existing file with looser permissions is tightened when read. A
file that cannot be read or parsed is reported with a warning and treated as "no token" -- the
caller logs in again and the next write replaces it. Nothing else in the directory is touched.

A stored token is reused only while **both** hold (:meth:`StoredToken.is_valid`):

* the instant is before the JWT ``exp`` (minus :data:`EXPIRY_MARGIN_SECONDS`), and
* the instant is before the first ``token_refresh_time_ist`` cutoff after the token was issued.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets as _secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from fyers_store.logs import fyers_auth_logger
from fyers_store.models.token_life import EXPIRY_MARGIN_SECONDS, next_refresh_cutoff, token_valid_until
from fyers_store.models.zones import IST, Instant, to_epoch

__all__ = [
    "EXPIRY_MARGIN_SECONDS",
    "IST",
    "StoredToken",
    "TokenStore",
    "jwt_claims",
    "next_refresh_cutoff",
    "to_epoch",
]


_FORMAT_VERSION = 1
_log = fyers_auth_logger(__name__)



def jwt_claims(token: str) -> Optional[dict[str, Any]]:
    """The (unverified) payload of a JWT, or ``None`` if ``token`` is not a JWT with a JSON object payload."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _iso_ist(epoch: Optional[float]) -> Optional[str]:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, IST).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredToken:
    """One access token with the facts needed to decide whether it is still usable.

    ``issued_at`` is when this process obtained it (epoch seconds, the clock validity is judged
    on); ``expires_at`` is the JWT ``exp`` claim (``None`` when the token carries none). The token
    itself never appears in ``repr``.
    """

    access_token: str = field(repr=False)
    client_id: str
    fy_id: str
    issued_at: float
    expires_at: Optional[float]

    @classmethod
    def from_login(cls, access_token: str, client_id: str, fy_id: str, issued_at: float) -> StoredToken:
        """Wrap a freshly obtained token, reading ``exp`` from its JWT payload."""
        claims = jwt_claims(access_token) or {}
        exp = claims.get("exp")
        expires_at = float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
        return cls(access_token, client_id, fy_id, float(issued_at), expires_at)

    def valid_until(self, refresh_time: dt.time) -> float:
        """The instant this token stops being reused: the earlier of ``exp`` (less the margin) and
        the next ``refresh_time`` IST cutoff after issue."""
        return token_valid_until(self.issued_at, self.expires_at, refresh_time)

    def is_valid(self, now: float, refresh_time: dt.time) -> bool:
        """Whether the token may be reused at ``now`` (epoch seconds)."""
        return now < self.valid_until(refresh_time)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (includes the token: only for writing the 0600 file)."""
        return {
            "version": _FORMAT_VERSION,
            "access_token": self.access_token,
            "client_id": self.client_id,
            "fy_id": self.fy_id,
            "issued_at": self.issued_at,
            "issued_at_ist": _iso_ist(self.issued_at),
            "expires_at": self.expires_at,
            "expires_at_ist": _iso_ist(self.expires_at),
        }

    @classmethod
    def from_json(cls, data: Any) -> StoredToken:
        """Parse the file's JSON object; raises ``ValueError`` naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object at the top level")
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"field 'version': expected {_FORMAT_VERSION}, got {data.get('version')!r}")
        for key in ("access_token", "client_id", "fy_id"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"field '{key}': expected a non-empty text value")
        issued = data.get("issued_at")
        if isinstance(issued, bool) or not isinstance(issued, (int, float)):
            raise ValueError("field 'issued_at': expected epoch seconds")
        exp = data.get("expires_at")
        if exp is not None and (isinstance(exp, bool) or not isinstance(exp, (int, float))):
            raise ValueError("field 'expires_at': expected epoch seconds or null")
        return cls(data["access_token"], data["client_id"], data["fy_id"], float(issued),
                   None if exp is None else float(exp))


class TokenStore:
    """Reads and atomically writes the token file at ``path`` (mode 0600)."""

    def __init__(self, path: Union[str, os.PathLike[str]]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def load(self) -> Optional[StoredToken]:
        """The stored token, or ``None`` when there is no usable file (a warning says why)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.warning("token file %s cannot be examined (%s); logging in again", self.path, exc.strerror or exc)
            return None
        if os.name == "posix" and st.st_mode & 0o077:
            _log.warning("token file %s had permissions %s; tightening to 0600",
                         self.path, oct(stat.S_IMODE(st.st_mode)))
            try:
                os.chmod(self.path, 0o600)
            except OSError as exc:
                _log.warning("could not tighten permissions of %s (%s)", self.path, exc.strerror or exc)
        try:
            text = self.path.read_text(encoding="utf-8")
            return StoredToken.from_json(json.loads(text))
        except (OSError, UnicodeDecodeError) as exc:
            problem = getattr(exc, "strerror", None) or type(exc).__name__
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON at line {exc.lineno}, column {exc.colno}"
        except ValueError as exc:
            problem = str(exc)
        _log.warning("token file %s is unusable (%s); logging in again", self.path, problem)
        return None

    def save(self, token: StoredToken) -> None:
        """Write ``token`` atomically with mode 0600 (the parent directory is created 0700 if missing)."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = directory / f".{self.path.name}.{os.getpid()}.{_secrets.token_hex(4)}.tmp"
        data = (json.dumps(token.to_json(), indent=2) + "\n").encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, 0o600)  # the umask can only narrow 0600; make it exact anyway
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(directory)
        _log.info("access token stored in %s (valid until %s IST at the latest)",
                  self.path, _iso_ist(token.expires_at) or "the next refresh cutoff")


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
