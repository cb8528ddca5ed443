"""Leases: a time-limited, exclusive claim on a store document, made with compare-and-set.

Every process that must be the only one doing something -- running a rule's next window
(:mod:`soc.detect.scheduler`), executing a playbook run (:mod:`soc.playbooks.runner`),
sending a report (:mod:`soc.export.outbox`), changing incident membership
(:mod:`soc.incidents.service`) -- claims a document with this module:

* **claim** (:meth:`Leases.claim`): when no live lease is in the document (none, released,
  expired, or its holder is known to be gone), write ours -- owner and expiry -- with
  ``put(..., expected_version=<version read>)``. Of two processes that read the same version,
  one wins; the other gets :class:`~soc.store.base.Conflict` and skips.
* **write** (:meth:`Claim.write`): every later write of the holder is a compare-and-set from
  the version it wrote last; a conflict means someone took the document over (our lease had
  expired): :class:`LeaseLost`, and the holder stops working on it.
* **renew** (:meth:`Claim.renew`, or :meth:`Claim.keep_alive`: a thread renewing every third
  of the lease while a block runs), so that a slow holder keeps its claim and the lease can
  stay short enough for a quick take-over when a process dies.
* **release** (:meth:`Claim.release`): the owner and expiry are cleared in the same write as
  the holder's final changes.

The lease lives in the claimed document itself (:class:`LeaseFields` names the two fields and
says how the expiry is written: epoch seconds or ISO text), so the users keep their document
shapes. Expiry comes from a :data:`soc.clock.Clock`; a lease is live while ``now < until``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from soc.clock import Clock, system_clock
from soc.errors import SocError
from soc.model import iso
from soc.store.base import Conflict, Doc, Store

__all__ = [
    "REMOVE",
    "Claim",
    "LeaseBusy",
    "LeaseFields",
    "LeaseLost",
    "Leases",
    "owner_gone",
    "owner_id",
]

log = logging.getLogger(__name__)


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


#: :attr:`LeaseFields.vacant` value: a released lease's fields are removed from the document.
REMOVE: Any = _Remove()


class LeaseLost(SocError):  # noqa: N818 -- the name says what happened
    """Another process took the document over (our lease had expired) or changed it: this
    process stops working on it."""


class LeaseBusy(SocError):  # noqa: N818
    """:meth:`Leases.acquire` waited in vain: another holder kept the lease (``holder``)."""

    def __init__(self, message: str, holder: str | None):
        super().__init__(message)
        self.holder = holder


def owner_id() -> str:
    """A lease owner identity for this process: ``host:pid:nonce`` (:func:`owner_gone` can
    tell from it when the process is gone)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(owner: str | None) -> bool:
    """True when ``owner`` (``host:pid:nonce``, :func:`owner_id`) was a process on this host
    that no longer exists -- or there is no owner. Owners on other hosts are never gone."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not _pid_alive(pid)


@dataclass(frozen=True, slots=True)
class LeaseFields:
    """Where the lease lives in its document.

    ``owner`` -- the field naming the holder (None: the document records no holder; any live
    expiry then counts as someone else's lease); ``until`` -- the expiry field, written as
    epoch seconds (``stamp="epoch"``) or ISO 8601 text (``"iso"``, :func:`soc.model.iso`);
    ``vacant`` -- what a release writes into ``until`` (the owner becomes None), or
    :data:`REMOVE` to drop both fields.
    """

    owner: str | None = "lease_owner"
    until: str = "lease_until"
    stamp: Literal["epoch", "iso"] = "epoch"
    vacant: Any = REMOVE


class Leases:
    """Leases of one owner on the documents of one collection, ``seconds`` long."""

    def __init__(self, store: Store, collection: str, *, seconds: float, owner: str | None = None,
                 clock: Clock = system_clock, fields: LeaseFields = LeaseFields(),
                 abandoned: Callable[[str | None], bool] | None = None):
        """``owner`` defaults to :func:`owner_id`. ``abandoned(holder)``, when given, says
        whether a holder is known to be gone (:func:`owner_gone`): its lease is then free
        before it expires."""
        self.store = store
        self.collection = collection
        self.seconds = seconds
        self.owner = owner or owner_id()
        self.clock = clock
        self.fields = fields
        self.abandoned = abandoned

    # -- reading a document's lease ------------------------------------------------------
    def stamp(self, at: datetime) -> float | str:
        """``at`` as the ``until`` field writes it."""
        return iso(at) if self.fields.stamp == "iso" else at.timestamp()

    def expiry(self, at: datetime | None = None) -> float | str:
        """The ``until`` value of a lease taken or renewed at ``at`` (default: now)."""
        return self.stamp((at or self.clock()) + timedelta(seconds=self.seconds))

    def holder(self, body: Mapping[str, Any]) -> str | None:
        """Who the document says holds its lease (None: nobody, or no owner field)."""
        return body.get(self.fields.owner) if self.fields.owner else None

    def live(self, body: Mapping[str, Any], at: datetime | None = None) -> bool:
        """True while the document carries an unexpired lease whose holder is not known to
        be gone (whoever holds it)."""
        until = body.get(self.fields.until)
        now = self.stamp(at or self.clock())
        if isinstance(now, str):
            unexpired = isinstance(until, str) and until > now
        else:
            unexpired = isinstance(until, int | float) and float(until) > now
        return unexpired and not (self.abandoned is not None and self.abandoned(self.holder(body)))

    def held_by_other(self, body: Mapping[str, Any], at: datetime | None = None) -> bool:
        """True when a live lease in the document belongs to someone else."""
        if not self.live(body, at):
            return False
        return self.fields.owner is None or self.holder(body) not in (None, self.owner)

    # -- claiming ------------------------------------------------------------------------
    def handle(self, doc: Doc, on_lost: Callable[[], None] | None = None) -> Claim:
        """``doc`` as read, not claimed yet: the :class:`Claim`'s writes are compare-and-sets
        from its version (:meth:`Claim.take` claims it)."""
        return Claim(self, doc.id, dict(doc.body), doc.version, on_lost=on_lost)

    def claim(self, id: str, doc: Doc | None | Literal["read"] = "read", *, at: datetime | None = None,
              changes: Mapping[str, Any] | None = None) -> Claim | None:
        """Claim document ``id`` as ``doc`` shows it (``"read"``: read it now; None: it does
        not exist and is created), writing ``changes`` with the lease. None when someone
        else holds a live lease or wrote the document first."""
        if isinstance(doc, str):
            doc = self.store.get(self.collection, id)
        if doc is not None and self.held_by_other(doc.body, at):
            return None
        claim = self.handle(doc) if doc is not None else Claim(self, id, {}, 0)
        try:
            claim.take(at, **(changes or {}))
        except LeaseLost:
            return None
        return claim

    def acquire(self, id: str, *, wait: float, changes: Mapping[str, Any] | None = None,
                pause: tuple[float, float] = (0.005, 0.03)) -> Claim:
        """:meth:`claim`, trying again every few milliseconds (a random pause in ``pause``)
        for up to ``wait`` seconds; :class:`LeaseBusy` after that."""
        deadline = time.monotonic() + wait
        while True:
            doc = self.store.get(self.collection, id)
            claim = self.claim(id, doc, changes=changes)
            if claim is not None:
                return claim
            if time.monotonic() > deadline:
                holder = self.holder(doc.body) if doc is not None else None
                raise LeaseBusy(f"the lease {self.collection}/{id} is held by {holder or '?'} for more "
                                f"than {wait:.0f}s", holder)
            time.sleep(random.uniform(*pause))


class Claim:
    """One document as this process holds it: its body and version as last written here.
    Every write is a compare-and-set; the first that conflicts sets :attr:`lost`, calls
    ``on_lost`` and raises :class:`LeaseLost` (as does every write after it). Thread-safe."""

    def __init__(self, leases: Leases, id: str, body: dict[str, Any], version: int,
                 on_lost: Callable[[], None] | None = None):
        self.leases = leases
        self.id = id
        self.body = body
        self.version = version
        self.held = False  # a lease of ours is in the document (taken and not released)
        self.lost = threading.Event()
        self.lock = threading.RLock()
        self.on_lost = on_lost

    def __repr__(self) -> str:
        return f"Claim({self.leases.collection}/{self.id} v{self.version}, held={self.held})"

    def write(self, body: Mapping[str, Any] | None = None, /, **changes: Any) -> int:
        """Write ``body`` (default: the body as last written) updated with ``changes``, by
        compare-and-set. Returns the new version."""
        with self.lock:
            if self.lost.is_set():
                raise LeaseLost(f"{self.leases.collection}/{self.id}: lease lost")
            new = dict(self.body if body is None else body, **changes)
            try:
                version = self.leases.store.put(self.leases.collection, self.id, new,
                                                expected_version=self.version)
            except Conflict as error:
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                raise LeaseLost(f"{self.leases.collection}/{self.id}: another process took it over") from error
            self.body, self.version = new, version
            return version

    def take(self, at: datetime | None = None, /, **changes: Any) -> int:
        """Write our lease (owner, expiry from ``at`` or now) with ``changes``."""
        fields = self.leases.fields
        lease: dict[str, Any] = {fields.until: self.leases.expiry(at)}
        if fields.owner:
            lease[fields.owner] = self.leases.owner
        with self.lock:
            version = self.write(**{**changes, **lease})
            self.held = True
            return version

    def renew(self, **changes: Any) -> int:
        """Move our lease's expiry to ``seconds`` from now (with ``changes``)."""
        return self.write(**{**changes, self.leases.fields.until: self.leases.expiry()})

    def release(self, body: Mapping[str, Any] | None = None, /, **changes: Any) -> int:
        """Write ``body``/``changes`` (as :meth:`write`) with the lease cleared."""
        fields = self.leases.fields
        with self.lock:
            new = dict(self.body if body is None else body, **changes)
            if fields.vacant is REMOVE:
                new.pop(fields.until, None)
                if fields.owner:
                    new.pop(fields.owner, None)
            else:
                new[fields.until] = fields.vacant
                if fields.owner:
                    new[fields.owner] = None
            version = self.write(new)
            self.held = False
            return version

    @contextlib.contextmanager
    def keep_alive(self, label: str, changes: Callable[[], Mapping[str, Any]] | None = None) -> Iterator[Claim]:
        """While the block runs, a thread renews the lease every third of its length (with
        ``changes()``, if given). A conflict (:class:`LeaseLost`) stops renewing -- the
        holder's next write fails too; other errors (the store briefly unreachable) are
        logged and retried on the next beat. ``label`` names the work in the log."""
        stop = threading.Event()
        period = max(self.leases.seconds / 3, 0.05)

        def beat() -> None:
            while not stop.wait(period):
                with self.lock:
                    if stop.is_set() or not self.held:
                        return
                    try:
                        self.renew(**(changes() if changes is not None else {}))
                    except LeaseLost:
                        log.warning("%s: lease taken over by another process during the work", label)
                        return
                    except Exception as error:  # the store is briefly unreachable: next beat
                        log.warning("%s: renewing the lease failed: %s", label, error)

        thread = threading.Thread(target=beat, name=f"lease-{label[:24]}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            with self.lock:
                stop.set()
            thread.join(timeout=5)
