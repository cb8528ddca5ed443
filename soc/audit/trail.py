"""The audit trail: append-only, hash-chained, one sequence for every writing process.

**Appending** (:meth:`AuditTrail.record`) never reads the chain: the trail knows the head it
last saw (the first time it looks it up with one sorted search and reads forward from there),
builds record ``head + 1`` with ``prev`` = the head's hash and writes it with the store's
create-only ``create``. When another process or thread took that number first, ``create`` says
so, the trail reads forward with ``get`` -- real-time on a search engine, no refresh needed --
to the new head, rebuilds the record on top of it and tries again. Every writer therefore ends
up on one gap-free chain whatever the number of schedulers, workers and API processes.

**Reading**: :meth:`AuditTrail.head` is the current head (read forward from the last one
seen); :meth:`AuditTrail.records` streams the chain in sequence order; :meth:`AuditTrail.page`
selects records for a listing (newest first) with their total.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soc.access import Principal
from soc.audit.record import (
    AUDIT,
    EMPTY,
    MAX_TEXT,
    Actor,
    AuditError,
    AuditRecord,
    Head,
    Target,
    details_text,
    new_body,
    record_hash,
    seq_id,
    seq_of,
)
from soc.clock import Clock, system_clock
from soc.model import iso
from soc.store.base import Store, StoreError

__all__ = ["COUNT_LIMIT", "AuditTrail", "RecordPage"]

#: records counted at most for a listing's total
COUNT_LIMIT = 100_000
#: lost races in a row before an append gives up (each one means another record was written)
MAX_ATTEMPTS = 1000


@dataclass(frozen=True, slots=True)
class RecordPage:
    """Records shown and how many match in all (``capped``: at least ``total``)."""

    records: list[AuditRecord]
    total: int
    capped: bool = False


class AuditTrail:
    """The trail in ``store`` (collection :data:`~soc.audit.record.AUDIT`). Safe to share
    between threads; any number of processes may append to the same store at once.

    Build it over the store itself, not over a principal's scoped view: the trail is written for
    every principal, whatever it may see.
    """

    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: Head | None = None  # the newest head this instance knows of

    # -- appending ----------------------------------------------------------------------------
    def record(self, actor: Principal | str | None, action: str,
               target: Target | tuple[str, str | None] | None = None,
               details: Mapping[str, Any] | None = None, *, ip: str | None = None,
               user_agent: str | None = None) -> AuditRecord:
        """Append one record and return it.

        ``actor``: the :class:`~soc.access.Principal` that acted; a text names a system
        component (``"scheduler"`` is recorded as ``system:scheduler``); ``None`` is an
        anonymous actor (a failed login of an unknown name). ``action``: what happened
        (``alert.status``, ``report.send``, ``export.events`` ...). ``target``: what it
        happened to, as ``(type or collection, id)``. ``details``: a small JSON object
        (changed fields, counts; long texts and lists are cut). ``ip``/``user_agent``: where the
        request came from, when known. Raises :class:`AuditError` when the store refuses.
        """
        who = Actor.of(actor)
        what = Target.of(target)
        text = details_text(details)
        agent = user_agent[:MAX_TEXT] if user_agent else None
        head = self._known_head()
        for attempt in range(MAX_ATTEMPTS):
            body = new_body(head.seq + 1, head.hash, iso(self.clock()), who, action, what, text, ip, agent)
            try:
                created = self.store.create(AUDIT, seq_id(head.seq + 1), body)
            except StoreError as error:
                raise AuditError(f"could not append audit record {head.seq + 1} ({action}): {error}") from error
            if created:
                record = AuditRecord.from_body(body)
                self._remember(record.head)
                return record
            head = self._forward(head)  # someone else wrote that number: read on to the new head
            if attempt >= 8:  # a crowd of writers: step aside for a moment
                time.sleep(random.uniform(0, 0.002 * min(attempt, 50)))
        raise AuditError(f"could not append audit record ({action}): lost {MAX_ATTEMPTS} races in a row")

    def hook(self, actor: Principal | None, action: str, details: dict[str, Any]) -> None:
        """An :data:`soc.identity.hooks.AuditHook`: ``details["source_ip"]`` becomes the
        record's source address and ``details["user"]`` its target (``users/<name>``)."""
        rest = dict(details)
        ip = rest.pop("source_ip", None)
        user = rest.get("user")
        self.record(actor, action, ("users", str(user)) if user else None, rest, ip=ip)

    # -- the head -----------------------------------------------------------------------------
    def head(self) -> Head:
        """The newest record now (:data:`~soc.audit.record.EMPTY`, ``seq`` 0, for an empty
        trail). Costs one ``get`` when nothing was appended since this instance last looked."""
        head = self._forward(self._known_head())
        self._remember(head)
        return head

    def _known_head(self) -> Head:
        with self._lock:
            seen = self._seen
        if seen is not None:
            return seen
        try:
            newest = self.store.find(AUDIT, None, sort="seq", descending=True, limit=10)
        except StoreError as error:
            raise AuditError(f"could not read the audit trail: {error}") from error
        head = EMPTY
        for doc in newest:  # the first whose id is a sequence number (others were put there from outside)
            seq = seq_of(doc.id)
            if seq is not None:
                head = self._head_of(seq, doc.body)
                break
        head = self._forward(head)  # a search may lag behind the latest writes
        self._remember(head)
        return head

    def _forward(self, head: Head) -> Head:
        """Read on from ``head`` with real-time ``get`` until the newest record."""
        while True:
            try:
                doc = self.store.get(AUDIT, seq_id(head.seq + 1))
            except StoreError as error:
                raise AuditError(f"could not read the audit trail: {error}") from error
            if doc is None:
                return head
            head = self._head_of(head.seq + 1, doc.body)

    @staticmethod
    def _head_of(seq: int, body: Mapping[str, Any]) -> Head:
        stored = body.get("hash")
        return Head(seq, stored if isinstance(stored, str) else record_hash(body), body.get("at"))

    def _remember(self, head: Head) -> None:
        with self._lock:
            if self._seen is None or head.seq > self._seen.seq:
                self._seen = head

    # -- reading ------------------------------------------------------------------------------
    def get(self, seq: int) -> AuditRecord | None:
        doc = self.store.get(AUDIT, seq_id(seq))
        return AuditRecord.from_body(doc.body) if doc is not None else None

    def records(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[AuditRecord]:
        """The records in sequence order (``at`` in ``[since, until)`` when given), streamed;
        records that cannot be read as records are left out (:func:`soc.audit.verify` names them).
        On a search engine this is a search: ``store.refresh()`` first to see what other
        processes wrote in the last second."""
        start = iso(since) if since else None
        end = iso(until) if until else None
        for doc in self.store.iter_all(AUDIT):
            if seq_of(doc.id) is None:
                continue
            try:
                record = AuditRecord.from_body(doc.body)
            except AuditError:
                continue
            if (start is None or record.at >= start) and (end is None or record.at < end):
                yield record

    def page(self, *, since: datetime | None = None, until: datetime | None = None,
             actors: Sequence[str] = (), actions: Sequence[str] = (), target: str | None = None,
             limit: int = 50) -> RecordPage:
        """The newest ``limit`` records with ``at`` in ``[since, until)``, of any of ``actors``
        (a label such as ``alice (token ci)`` or ``system:scheduler``, or a name: ``alice``
        also finds her tokens), any of ``actions`` and about ``target`` (``TYPE/ID``, ``TYPE/``
        for every object of a type, or an ``ID`` of any type), and how many match in all."""
        query: dict[str, Any] = {"time_field": "at" if since or until else None,
                                 "start": iso(since) if since else None, "end": iso(until) if until else None}
        filters: list[dict[str, Any]] = []
        base: dict[str, Any] = {"action": list(actions)} if actions else {}
        if target:
            kind, slash, id_ = target.partition("/")
            if slash:
                base["target.type"] = kind
            if id_ or not slash:
                base["target.id"] = id_ if slash else kind
        if actors:
            filters = [{**base, "actor.label": list(actors)}, {**base, "actor.name": list(actors)}]
        else:
            filters = [base]
        found: dict[str, AuditRecord | None] = {}
        complete = True
        for where in filters:
            docs = self.store.find(AUDIT, where or None, sort="seq", descending=True, limit=limit, **query)
            complete = complete and len(docs) < limit
            for doc in docs:
                try:
                    found[doc.id] = AuditRecord.from_body(doc.body)
                except AuditError:
                    found[doc.id] = None
        newest = sorted(found, reverse=True)[:limit]
        records = [r for r in (found[i] for i in newest) if r is not None]
        if complete:
            return RecordPage(records, len(found))
        ids: set[str] = set()
        for where in filters:
            ids.update(d.id for d in self.store.find(AUDIT, where or None, limit=COUNT_LIMIT, **query))
        return RecordPage(records, max(len(ids), len(records)), capped=len(ids) >= COUNT_LIMIT)
