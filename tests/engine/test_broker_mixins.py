"""BrokerCore is assembled from mixins: no method it calls may resolve to a mixin's placeholder.

A mixin that declares, for the type checker, a method another class defines must not define it at
run time: with the mixins in the wrong order such a placeholder would win in the MRO and silently
replace the real method (a merge made exactly that mistake once).
"""

from __future__ import annotations

import inspect

from fyers_store.engine.broker_core import BrokerCore


def test_no_broker_method_resolves_to_a_placeholder() -> None:
    placeholders = []
    for name, value in inspect.getmembers(BrokerCore):
        func = value.fget if isinstance(value, property) else value
        if not inspect.isfunction(func):
            continue
        body = [line.strip() for line in inspect.getsource(func).splitlines()]
        code = [line for line in body if line and not line.startswith(("def ", "@", "#", '"""'))]
        if code == ["raise NotImplementedError"]:
            placeholders.append(f"{name} (from {func.__qualname__})")
    assert placeholders == []
