"""Login throttling: a lockout per user name and a sliding window per source address.

**Per user name.** ``auth.login_max_failures`` failed logins within
``auth.login_window_minutes`` lock the name for ``auth.lockout_minutes``; a successful login
clears the count. Names that are no user count the same way (in the ``login_attempts``
collection, under a digest of the name), so a locked answer does not tell whether the user
exists. The state of a real user lives on the user document (``login``).

**Per address.** ``auth.address_max_failures`` failures from one address (IPv6: its /64)
within ``auth.address_window_minutes`` make the address wait until the oldest of them leaves the
window; successes do not clear it (one valid account must not reset an attacker's count).

While a name or address waits, the login answers at once without checking the password.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any

from soc.clock import Clock, system_clock
from soc.config import AuthSettings
from soc.identity.model import ATTEMPTS, digest, parse_time, time_text, update
from soc.store.base import Store

__all__ = ["LoginThrottle", "Window", "address_key", "name_key"]


def name_key(name: str) -> str:
    """The ``login_attempts`` id of a name that is no user (a digest: any text may be typed)."""
    return "name:" + digest(name.strip().casefold())[:40]


def address_key(source_ip: str) -> str:
    """The ``login_attempts`` id of a source address: IPv4 as it is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address(source_ip.strip().strip("[]"))
    except ValueError:
        return "ip:" + digest(source_ip)[:40]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return "ip:" + str(ipaddress.ip_network(f"{address}/64", strict=False))
    return f"ip:{address}"


class Window:
    """``max_failures`` within ``window``; then locked for ``lock`` (``None``: until the oldest
    failure leaves the window -- a sliding window). Works on a state dict
    ``{"failures": [ISO times], "locked_until": ISO | None}``."""

    def __init__(self, max_failures: int, window: timedelta, lock: timedelta | None) -> None:
        self.max_failures, self.window, self.lock = max_failures, window, lock

    def locked_until(self, state: dict[str, Any] | None, now: datetime) -> datetime | None:
        until = parse_time((state or {}).get("locked_until"))
        return until if until is not None and until > now else None

    def fail(self, state: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        """The state after one more failure at ``now``."""
        times = [t for t in (parse_time(x) for x in (state or {}).get("failures") or ()) if t and t > now - self.window]
        times = [*times, now][-self.max_failures:]
        until = self.locked_until(state, now)
        if len(times) >= self.max_failures:
            if self.lock is not None:
                until, times = now + self.lock, []
            else:
                until = times[0] + self.window
        return {"failures": [time_text(t) for t in times], "locked_until": time_text(until)}


class LoginThrottle:
    """The two throttles over the store (``login_attempts``) and a clock."""

    def __init__(self, store: Store, settings: AuthSettings | None = None, clock: Clock = system_clock) -> None:
        settings = settings or AuthSettings()
        self.store, self.clock = store, clock
        self.names = Window(settings.login_max_failures, timedelta(minutes=settings.login_window_minutes),
                            timedelta(minutes=settings.lockout_minutes))
        self.addresses = Window(settings.address_max_failures,
                                timedelta(minutes=settings.address_window_minutes), None)

    def _state(self, key: str) -> dict[str, Any] | None:
        doc = self.store.get(ATTEMPTS, key)
        return doc.body if doc is not None else None

    def address_waits_until(self, source_ip: str | None) -> datetime | None:
        """When the address may try again, or ``None`` when it may now."""
        return self.addresses.locked_until(self._state(address_key(source_ip)), self.clock()) if source_ip else None

    def address_failed(self, source_ip: str | None) -> None:
        if source_ip:
            now = self.clock()
            update(self.store, ATTEMPTS, address_key(source_ip), lambda s: {**self.addresses.fail(s, now),
                                                                           "kind": "address"})

    def unknown_name_locked_until(self, name: str) -> datetime | None:
        return self.names.locked_until(self._state(name_key(name)), self.clock())

    def unknown_name_failed(self, name: str) -> datetime | None:
        """Count a failure for a name that is no user; the time it is locked until, if now locked."""
        now = self.clock()
        body = update(self.store, ATTEMPTS, name_key(name), lambda s: {**self.names.fail(s, now), "kind": "name"})
        return self.names.locked_until(body, now)

    def purge(self) -> int:
        """Delete the counters that no longer hold anything back (old failures, expired locks)."""
        now, removed = self.clock(), 0
        for doc in list(self.store.iter_all(ATTEMPTS)):
            window = self.addresses if doc.body.get("kind") == "address" else self.names
            recent = [t for t in (parse_time(x) for x in doc.body.get("failures") or ()) if t and t > now - window.window]
            if not recent and window.locked_until(doc.body, now) is None and self.store.delete(ATTEMPTS, doc.id):
                removed += 1
        return removed
