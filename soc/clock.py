"""Time as an input.

Code that compares with the current time (deadlines, lateness, expiry, retention, leases)
takes a :data:`Clock` -- a function returning an aware UTC ``datetime`` -- or a ``now`` value,
so that tests set the time instead of depending on the day they run. Production code passes
nothing and gets :func:`system_clock`.

The whole test suite also runs with the machine's clock moved a year ahead
(``make test-clock-ahead``, libfaketime) to prove that no test depends on the calendar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "epoch_clock", "fixed_clock", "running_clock", "system_clock"]

Clock = Callable[[], datetime]
"""Returns the current time, aware, in UTC."""


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


def epoch_clock(seconds: Callable[[], float]) -> Clock:
    """A :data:`Clock` reading ``seconds()`` -- epoch seconds, like :func:`time.time` -- for
    code that keeps its time as numbers (the detection scheduler, the playbook runner)."""
    return lambda: datetime.fromtimestamp(seconds(), UTC)


def fixed_clock(at: datetime) -> Clock:
    """A clock that always says ``at`` (tests, replays)."""
    if at.tzinfo is None:
        raise ValueError("fixed_clock needs an aware datetime")
    at = at.astimezone(UTC)
    return lambda: at


def running_clock(start: datetime) -> Clock:
    """A clock that says ``start`` now and then runs at the machine's pace (tests that wait for
    real retries but must not depend on the calendar)."""
    if start.tzinfo is None:
        raise ValueError("running_clock needs an aware datetime")
    start, began = start.astimezone(UTC), time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)
