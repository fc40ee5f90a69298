"""FYERS refusals the REST adapter recognises: token refusals and the static-IP refusal.

Kept apart from :mod:`fyers_store.adapters.fyers_rest` so each matcher is defined once and easy to
change when FYERS documents more.
"""

from __future__ import annotations

import re

__all__ = ["AUTH_CODES", "is_static_ip_refusal"]

#: -8 expired, -15 invalid, -16 could not authenticate, -17 invalid or expired (shared/fyers_2026.md §3).
AUTH_CODES = frozenset({-8, -15, -16, -17})

# FYERS's refusal of an order request from a non-whitelisted IP (or an app not enabled for orders):
# the rule is documented (since 1 Apr 2026), its reply is not (shared/fyers_2026.md §1, 2026-12). It
# is recognised by its message -- brokers word these around the IP ("not a whitelisted static IP",
# "IP ... is not allowed/registered") or the app not being enabled for orders -- and by any code
# added here once FYERS's is known. Matched before the 401/403 rule: FYERS may send it as 403.
_STATIC_IP_CODES: frozenset[int] = frozenset()
_STATIC_IP_TEXT = re.compile(
    r"static\s*ip|white-?\s*list|\bip\b.{0,80}?\bnot\s+(?:allowed|registered|authori[sz]ed|permitted|mapped)"
    r"|not\s+enabled\s+for\s+(?:api\s+)?(?:orders?|order\s+placement|trading)", re.IGNORECASE)


def is_static_ip_refusal(code: int | None, message: str) -> bool:
    """Whether a FYERS error reply is its static-IP refusal (the one matcher; see above)."""
    if code in AUTH_CODES:
        return False
    return code in _STATIC_IP_CODES or bool(_STATIC_IP_TEXT.search(message or ""))
