"""A run document and this process's hold on it: the run id, the run's lease, the JSON in
its fields, and :class:`_Run`, through which the process executing a run writes it (see
:mod:`soc.playbooks.runner` for runs, states and leases). Also :class:`RunnerHost`: what the
parts of :class:`~soc.playbooks.runner.PlaybookRunner` need of it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from soc.config import PlaybookSettings
from soc.model import iso, now_utc
from soc.playbooks.model import Playbook
from soc.store.base import Doc, Store
from soc.store.lease import Claim, LeaseFields, Leases

TERMINAL = ("succeeded", "failed")
STEP_DONE = ("succeeded", "skipped", "failed")


#: a run's lease: ``owner`` (host:pid:nonce) and ``lease_until`` (epoch seconds), 0 when released
RUN_LEASE = LeaseFields(owner="owner", until="lease_until", stamp="epoch", vacant=0)


def run_id_for(playbook_id: str, key: str) -> str:
    return hashlib.sha256(f"{playbook_id}\x00{key}".encode()).hexdigest()[:32]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class RunnerHost(Protocol):
    """What the parts of :class:`~soc.playbooks.runner.PlaybookRunner` (:mod:`.triggers`,
    :mod:`.steps`, :mod:`.resume`, :mod:`.record`) need of the runner they are mixed into:
    its store, playbooks, settings, clock and run leases, and the methods the other parts
    provide."""

    store: Store
    playbooks: dict[str, Playbook]
    config: PlaybookSettings
    clock: Callable[[], float]
    leases: Leases
    owner: str

    def start(self, playbook: Playbook | str, trigger: dict[str, Any], key: str, *,
              inputs: dict[str, Any] | None = None, actor: str = "system", dry_run: bool = False,
              parent: tuple[str, str] | None = None, depth: int = 0, execute: bool = True) -> tuple[str, bool]: ...

    def _dispatch(self, run_id: str, *, defer: bool = False) -> None: ...

    def _drain(self) -> None: ...

    def execute(self, run_id: str) -> dict[str, Any]: ...

    def _claim(self, run_id: str) -> _Run | None: ...

    def _record(self, record_id: str, body: dict[str, Any]) -> None: ...

    def _record_run(self, body: dict[str, Any], event: str, *, detail: dict[str, Any]) -> None: ...

    def _record_step(self, run: _Run, step_id: str, action: str, attempt: int, phase: str, *, status: str,
                     duration: float | None = None, error: str | None = None,
                     detail: dict[str, Any] | None = None) -> None: ...


class _Run:
    """One run document held by this process (a :class:`~soc.store.lease.Claim`): every
    write is a compare-and-set; the first that conflicts raises :class:`LeaseLost` and
    cancels the step in progress."""

    def __init__(self, runner: RunnerHost, doc: Doc):
        self.runner = runner
        self.id = doc.id
        self.claim = runner.leases.handle(doc, on_lost=self._cancel)
        self.lost = self.claim.lost
        self.cancel_current: threading.Event | None = None

    @property
    def body(self) -> dict[str, Any]:
        return self.claim.body

    def _cancel(self) -> None:
        if self.cancel_current is not None:
            self.cancel_current.set()

    def take(self, **changes: Any) -> None:
        """Claim the run: our owner and lease, with ``changes``."""
        self.claim.take(**{**changes, "updated_at": iso(now_utc())})

    def save(self, **changes: Any) -> None:
        self.claim.write(**{**changes, "updated_at": iso(now_utc())})

    def release(self, **changes: Any) -> None:
        """The last write of this process: ``changes`` with the lease cleared."""
        self.claim.release(**{**changes, "updated_at": iso(now_utc())})

    def keep_alive(self) -> contextlib.AbstractContextManager[Claim]:
        """Renew the lease (and ``heartbeat_at``) every third of it while the block runs."""
        def beat() -> dict[str, Any]:
            return {"heartbeat_at": iso(now_utc()), "updated_at": iso(now_utc())}

        return self.claim.keep_alive(f"playbook run {self.id}", beat)

    def step_state(self, step_id: str) -> dict[str, Any]:
        for state in self.body["steps"]:
            if state["id"] == step_id:
                return state
        raise KeyError(step_id)

    def set_step(self, step_id: str, **changes: Any) -> None:
        steps = [dict(s, **changes) if s["id"] == step_id else s for s in self.body["steps"]]
        self.save(steps=steps)
