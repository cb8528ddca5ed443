"""The one retry policy (:mod:`soc.retry`): delays, cap, jitter, the sleep-and-retry loop."""

from __future__ import annotations

import threading

import pytest

from soc.retry import Backoff, retrying


def test_delays_double_up_to_the_cap() -> None:
    policy = Backoff(base=0.5, factor=2, max=30)
    assert [policy.delay(n) for n in range(9)] == [0, 0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.delay(5000) == 30  # no overflow after hours of failures


def test_jitter_spreads_around_the_capped_delay() -> None:
    policy = Backoff(base=1, factor=3, max=5, jitter=0.25)
    assert policy.delay(2, rng=lambda low, high: low) == pytest.approx(2.25)
    assert policy.delay(9, rng=lambda low, high: high) == pytest.approx(6.25)
    assert all(3.75 <= policy.delay(4) <= 6.25 for _ in range(50))


def test_the_numbers_of_the_previous_copies() -> None:
    """The waits the worker, the outbox and playbook steps computed before they shared this."""
    worker = Backoff(base=0.5, factor=2, max=30)
    backoff, state = [], 0.0
    for _ in range(10):
        state = min(30, max(0.5, state * 2))
        backoff.append(state)
    assert [worker.delay(n) for n in range(1, 11)] == backoff
    outbox = Backoff(base=0.2, factor=2, max=1.0)
    assert [outbox.delay(n) for n in (1, 2, 3, 4)] == [min(0.2 * 2 ** (n - 1), 1.0) for n in (1, 2, 3, 4)]


@pytest.mark.parametrize("bad", [dict(base=-1), dict(factor=0.5), dict(max=-1), dict(jitter=1)])
def test_invalid_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)


def test_retrying_sleeps_between_failures_then_returns() -> None:
    calls, slept = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise OSError("down")
        return "ok"

    assert retrying(flaky, Backoff(base=1, max=3), what="write", sleep=slept.append) == "ok"
    assert slept == [1, 2, 3]


def test_retrying_gives_up_and_lets_other_errors_through() -> None:
    def down() -> None:
        raise OSError("down")

    with pytest.raises(OSError):
        retrying(down, Backoff(base=0), attempts=3, sleep=lambda s: None)
    with pytest.raises(KeyError):
        retrying(lambda: {}["x"], Backoff(), retry_on=OSError)
    stop = threading.Event()
    stop.set()
    with pytest.raises(OSError):
        retrying(down, Backoff(base=10), stop=stop)  # stopping: no wait, the failure propagates
