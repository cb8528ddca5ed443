"""The membership lease: one short store lease (collection ``incident_locks``) held while alerts
join, leave or move between incidents, so two callers never group the same burst into two
incidents and an alert is never in two incidents. A process that dies holding it blocks the
others for at most :data:`LEASE_SECONDS`."""

from __future__ import annotations

import threading
import time
import uuid

from soc.clock import Clock, system_clock
from soc.incidents.errors import IncidentError
from soc.store.base import Store
from soc.store.lease import Claim, LeaseBusy, LeaseFields, LeaseLost, Leases

LOCKS = "incident_locks"
#: a membership lock document: ``{"owner": <nonce>, "until": <epoch seconds>}``; released: owner None, until 0
LOCK_FIELDS = LeaseFields(owner="owner", until="until", stamp="epoch", vacant=0)
LEASE_SECONDS = 60.0
LOCK_WAIT_SECONDS = 120.0


_held = threading.local()  # the lease this thread holds, renewed by long loops


def _renew() -> None:
    lease = getattr(_held, "lease", None)
    if lease is not None:
        lease.renew()


class _Lease:
    """A short exclusive lease on a store document (:mod:`soc.store.lease`), for membership
    changes; re-entrant within its holder. Long operations renew it (:func:`_renew`) so it
    never expires while its holder works."""

    def __init__(self, store: Store, key: str, *, lease: float = LEASE_SECONDS, wait: float = LOCK_WAIT_SECONDS,
                 clock: Clock = system_clock):
        self.key, self.lease, self.wait = key, lease, wait
        self.leases = Leases(store, LOCKS, seconds=lease, owner=uuid.uuid4().hex, clock=clock, fields=LOCK_FIELDS)
        self.owner = self.leases.owner
        self.claim: Claim | None = None
        self.depth = 0
        self.renewed = 0.0

    def renew(self) -> None:
        if self.claim is None or time.monotonic() - self.renewed < self.lease / 4:
            return
        try:
            self.claim.renew()
        except LeaseLost as error:
            raise IncidentError(f"lost the lease {LOCKS}/{self.key} (the store was unreachable for longer "
                                f"than {self.lease:.0f}s?); run the command again") from error
        self.renewed = time.monotonic()

    def __enter__(self) -> _Lease:
        if self.depth:
            self.depth += 1
            return self
        try:
            self.claim = self.leases.acquire(self.key, wait=self.wait)
        except LeaseBusy as busy:
            raise IncidentError(f"incidents are busy: the lease {LOCKS}/{self.key} is held by {busy.holder or '?'} "
                                f"for more than {self.wait:.0f}s; try again") from None
        self.depth = 1
        self.renewed = time.monotonic()
        _held.lease = self
        return self

    def __exit__(self, *_: object) -> None:
        self.depth -= 1
        if self.depth:
            return
        _held.lease = None
        claim, self.claim = self.claim, None
        if claim is not None:
            try:
                claim.release()
            except LeaseLost:
                pass  # it expired and someone else took it
