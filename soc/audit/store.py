"""A store that records every document write made through it in the audit trail.

:class:`AuditedStore` implements the :class:`~soc.store.base.Store` protocol over another store
(in the application: a principal's :class:`~soc.store.scoped.ScopedStore`) and appends one
record per write that took effect, under the principal it was made for:

* ``create`` -> ``<collection>.create``; ``put`` -> ``<collection>.update`` (``.create`` when
  the document did not exist); ``delete`` -> ``<collection>.delete``; the target is
  ``<collection>/<id>``; the bulk ``create_documents``/``put_documents`` record the same, one
  record per document written (a put reads each document first, as ``put`` does);
* the details name the changed top-level fields (``fields``) and, for those whose old and new
  values are both small scalars (``null``, booleans, numbers, texts up to
  :data:`SMALL_TEXT` characters), the values (``values: {field: {old, new}}``); values of
  fields that look like secrets (password, token, hash, key ...) are never recorded, only
  their names. A ``put`` that changes nothing is not recorded;
* **events are not recorded one by one**: a ``write_events`` call that stored or rejected any
  event is one record ``events.write`` with the counts, and ``purge_events`` is one record
  ``events.purge`` with the cut-off and the count;
* writes to the collections in :data:`NOT_AUDITED` (the trail itself, sessions, login
  throttling, rule state and heartbeats, locks and claims, playbook effects) are not recorded.
  This is the one place that list is kept.

The record is appended after the write succeeded; a write that fails (a lost
compare-and-set, a refused scope) records nothing. When the append itself fails the write has
happened and :class:`~soc.audit.record.AuditError` is raised.

Reads pass through unrecorded; reads that matter (exports, downloads) are recorded by their
callers with :meth:`soc.audit.trail.AuditTrail.record`. Any other attribute of the wrapped
store (event reads added later) is reached through it. ``close`` does nothing: the view does
not own the store it wraps.

To update ``put`` needs the document as it was: it reads it first (one ``get``). With
``expected_version`` the write only succeeds when nothing changed in between, so the
recorded change is exact; without it a concurrent writer may slip in between the read and the
write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from soc.access import Principal
from soc.audit.record import AUDIT
from soc.audit.trail import AuditTrail
from soc.errors import SocError
from soc.model import Event, iso
from soc.secrets import is_secret_name
from soc.store.base import Bucket, Doc, DocPage, DocWrite, Match, Store, WriteResult

__all__ = ["NOT_AUDITED", "SMALL_TEXT", "AuditedStore", "changes"]

#: collections whose writes are not audited: the trail itself, sessions and login throttling
#: (logins are recorded as such), rule state (watermarks and heartbeats), locks, leases and
#: claims, and the idempotency records of playbook actions (the action's own change is audited)
NOT_AUDITED: frozenset[str] = frozenset({
    AUDIT, "sessions", "login_attempts", "rule_state", "incident_locks", "leases", "locks",
    "playbook_effects", "playbook_alerts",
})
#: longest text recorded as a value (longer: the field name only)
SMALL_TEXT = 200
_MISSING = object()


def _small(value: Any) -> bool:
    if value is None or value is _MISSING or isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return isinstance(value, str) and len(value) <= SMALL_TEXT


def _secret(name: str) -> bool:
    lowered = name.lower()
    return is_secret_name(lowered) or "hash" in lowered or "salt" in lowered


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details of a write: ``{"fields": [changed top-level fields], "values": {field:
    {"old", "new"}}}`` with values only for small scalars of fields that are no secret."""
    before, after = before or {}, after or {}
    fields = sorted(k for k in set(before) | set(after) if before.get(k, _MISSING) != after.get(k, _MISSING))
    values = {}
    for name in fields:
        old, new = before.get(name, _MISSING), after.get(name, _MISSING)
        if _small(old) and _small(new) and not _secret(name):
            values[name] = {"old": None if old is _MISSING else old, "new": None if new is _MISSING else new}
    return {"fields": fields, "values": values}


class AuditedStore:
    """``store`` with its document writes recorded in ``trail`` under ``principal`` (see the
    module docstring). ``ip``/``user_agent``: the request's source, recorded with each write."""

    def __init__(self, store: Store, trail: AuditTrail, principal: Principal, *, ip: str | None = None,
                 user_agent: str | None = None) -> None:
        self._store = store
        self._trail = trail
        self._principal = principal
        self._source = {"ip": ip, "user_agent": user_agent}
        self.dialect = store.dialect

    @property
    def principal(self) -> Principal:
        return self._principal

    @property
    def trail(self) -> AuditTrail:
        return self._trail

    def __repr__(self) -> str:
        return f"AuditedStore({self._store!r}, {self._principal.label})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._store, name)

    def _record(self, action: str, collection: str, id: str | None, details: Mapping[str, Any]) -> None:
        self._trail.record(self._principal, action, (collection, id), details, **self._source)

    # -- documents: recorded --------------------------------------------------------------------
    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        created = self._store.create(collection, id, body)
        if created and collection not in NOT_AUDITED:
            self._record(f"{collection}.create", collection, id, changes(None, body))
        return created

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        if collection in NOT_AUDITED:
            return self._store.put(collection, id, body, expected_version)
        before = self._store.get(collection, id)
        version = self._store.put(collection, id, body, expected_version)
        details = changes(before.body if before is not None else None, body)
        if before is None:
            self._record(f"{collection}.create", collection, id, details)
        elif details["fields"]:
            self._record(f"{collection}.update", collection, id, details)
        return version

    def create_documents(self, collection: str, docs: Sequence[tuple[str, dict[str, Any]]]
                         ) -> list[bool | SocError]:
        results = self._store.create_documents(collection, docs)
        if collection not in NOT_AUDITED:
            for (id_, body), created in zip(docs, results, strict=True):
                if created is True:
                    self._record(f"{collection}.create", collection, id_, changes(None, body))
        return results

    def put_documents(self, collection: str, writes: Sequence[DocWrite]) -> list[int | SocError]:
        if collection in NOT_AUDITED:
            return self._store.put_documents(collection, writes)
        befores: dict[str, dict[str, Any] | None] = {}
        for write in writes:
            if write.id not in befores:
                before = self._store.get(collection, write.id)
                befores[write.id] = before.body if before is not None else None
        results = self._store.put_documents(collection, writes)
        for write, result in zip(writes, results, strict=True):
            if isinstance(result, SocError):
                continue
            details = changes(befores[write.id], write.body)
            if befores[write.id] is None:
                self._record(f"{collection}.create", collection, write.id, details)
            elif details["fields"]:
                self._record(f"{collection}.update", collection, write.id, details)
            befores[write.id] = write.body  # a later write of the same id changes this one
        return results

    def delete(self, collection: str, id: str) -> bool:
        if collection in NOT_AUDITED:
            return self._store.delete(collection, id)
        before = self._store.get(collection, id)
        deleted = self._store.delete(collection, id)
        if deleted:
            self._record(f"{collection}.delete", collection, id, changes(before.body if before else None, None))
        return deleted

    # -- events: counted ------------------------------------------------------------------------
    def write_events(self, events: Sequence[Event]) -> WriteResult:
        result = self._store.write_events(events)
        if result.created or result.rejected:
            self._record("events.write", "events", None, {"created": result.created, "existing": result.existing,
                                                           "rejected": len(result.rejected),
                                                           "retryable": len(result.retryable)})
        return result

    def purge_events(self, older_than: float) -> int:
        purged = self._store.purge_events(older_than)
        self._record("events.purge", "events", None,
                     {"older_than": iso(datetime.fromtimestamp(older_than, UTC)), "purged": purged})
        return purged

    # -- reads: passed through ------------------------------------------------------------------
    def find_matches(self, *args: Any, **kwargs: Any) -> list[Match]:
        return self._store.find_matches(*args, **kwargs)

    def find_matches_many(self, *args: Any, **kwargs: Any) -> list[list[Match]]:
        return self._store.find_matches_many(*args, **kwargs)

    def count_matches(self, *args: Any, **kwargs: Any) -> int:
        return self._store.count_matches(*args, **kwargs)

    def aggregate_matches(self, *args: Any, **kwargs: Any) -> list[Bucket]:
        return self._store.aggregate_matches(*args, **kwargs)

    def get_events(self, *args: Any, **kwargs: Any) -> list[Event]:
        return self._store.get_events(*args, **kwargs)

    def count_events(self, *args: Any, **kwargs: Any) -> dict[str, int]:
        return self._store.count_events(*args, **kwargs)

    def prepare_fields(self, fields: Iterable[str]) -> None:
        self._store.prepare_fields(fields)

    def get(self, collection: str, id: str) -> Doc | None:
        return self._store.get(collection, id)

    def find(self, *args: Any, **kwargs: Any) -> list[Doc]:
        return self._store.find(*args, **kwargs)

    def iter_all(self, *args: Any, **kwargs: Any) -> Iterator[Doc]:
        return self._store.iter_all(*args, **kwargs)

    def query_documents(self, *args: Any, **kwargs: Any) -> DocPage:
        return self._store.query_documents(*args, **kwargs)

    def count_documents(self, *args: Any, **kwargs: Any) -> list[tuple[tuple[Any, ...], int]]:
        return self._store.count_documents(*args, **kwargs)

    def refresh(self) -> None:
        self._store.refresh()

    def close(self) -> None:
        """Nothing: the view does not own the store it wraps."""
