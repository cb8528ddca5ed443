"""One retry policy: exponential backoff with a cap and optional jitter.

Every place that waits before trying again -- the service's store writes, the Kafka worker
and the dead-letter replay, the report outbox, playbook step retries -- describes its waits
with a :class:`Backoff` and asks it for the delay after the n-th failure::

    Backoff(base=0.5, factor=2, max=30)          # 0.5, 1, 2, 4, ... 30, 30, ...
    Backoff(base=0.5, max=30, jitter=0.25)       # the same, each delay times 0.75..1.25

:func:`retrying` is the small sleep-and-retry loop for a call that must eventually succeed
(the service's sink writes events this way while the store is down).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Backoff", "retrying"]

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait ``base`` seconds after the first failure, ``factor`` times longer after each
    further one, never more than ``max``; then, with ``jitter`` j > 0, multiply by a random
    factor in ``[1 - j, 1 + j]`` (so that many clients do not retry in step)."""

    base: float = 0.5
    factor: float = 2.0
    max: float = 30.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.max < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"Backoff needs base >= 0, max >= 0, factor >= 1 and 0 <= jitter < 1: {self}")

    def delay(self, attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based; 0 or less: no
        wait). ``rng(low, high)`` draws the jitter factor."""
        if attempt < 1:
            return 0.0
        try:
            raw = self.base * self.factor ** (attempt - 1)
        except OverflowError:  # hours of failures: the cap applies long before
            raw = math.inf
        wait = min(raw, self.max)
        if self.jitter:
            wait *= rng(1 - self.jitter, 1 + self.jitter)
        return wait


def retrying(call: Callable[[], T], policy: Backoff, *, what: str = "operation",
             retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
             stop: threading.Event | None = None, attempts: int | None = None,
             sleep: Callable[[float], object] = time.sleep) -> T:
    """``call()`` until it returns, waiting ``policy.delay(n)`` after the n-th failure (an
    exception of ``retry_on``; anything else propagates at once). Each failure is logged as a
    warning naming ``what``. Gives up -- re-raising the last failure -- after ``attempts``
    calls (None: never), or when ``stop`` is set (checked while waiting: the wait ends early)."""
    failures = 0
    while True:
        try:
            return call()
        except retry_on as error:
            failures += 1
            if (attempts is not None and failures >= attempts) or (stop is not None and stop.is_set()):
                raise
            wait = policy.delay(failures)
            log.warning("%s failed (%s); retrying in %.1fs", what, error, wait)
            if stop is not None:
                if stop.wait(wait):
                    raise
            else:
                sleep(wait)
