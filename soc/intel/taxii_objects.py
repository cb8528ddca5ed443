"""The objects of the TAXII 2.1 collections, kept in the project store (both stores, through the
document API), and the status resources of the requests that added them.

**One document per object version** (collection :data:`OBJECTS`, id
``<collection>/<object id>/<version µs>``): create-only, so a bundle posted twice adds nothing
the second time. The STIX object is kept as JSON text (``stix``): objects carry any custom
property, and the search store must not map them. Beside it, what the TAXII filters ask about:
``object_id``, ``type``, ``spec_version``, ``version_us`` (``modified`` or ``created`` in epoch
microseconds; 0 for objects without either, whose version is then their ``date_added``),
``marks`` (``first``/``last`` among the object's versions, and the version as text, so that
``match[version]=first,<timestamp>`` is one ``contains_any``), and the position:

**Position = (date_added, seq).** Every write takes a block of sequence numbers and a
``date_added`` from the collection's counter document (collection :data:`STATE`, a
compare-and-set): ``seq`` grows by one per object, ``date_added`` (microseconds, assigned by
the server) is the same for every object of one request and strictly later than the previous
request's. So the order by ``seq`` is the order by ``(date_added, seq)``, and ``added_after``
(exclusive) never hides a later request behind an earlier one's timestamp -- however many
objects were added in one instant.

**Pages are positions, not sessions.** ``next`` is an opaque cursor holding the collection, the
last ``seq`` returned and the listing's upper bound (the visible ``seq`` when its first page was
read): a retried page returns the same objects, a cursor never expires and the server keeps
nothing per client. (The TAXII reference server keeps page sessions that expire after 30 s and
are consumed when read.)

**Visible means complete.** A write registers its block as pending in the counter document
before writing and removes it after the objects are written and refreshed; readers see only
``seq`` below the oldest pending block, so a page can never pass over objects of a write still
in progress (they would be lost to a client that moved on). A block pending longer than
:data:`PENDING_SECONDS` (its writer died) stops holding readers back.

Known limits: two writers adding versions of the *same object* at the same moment may both mark
their version ``last`` (the next write of that object repairs it); a new version's flags change
the old version's, so a listing of ``match[version]=last`` that started before the new version
was visible no longer shows the object.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from soc.clock import Clock, system_clock
from soc.errors import SocError
from soc.store.base import Conflict, Doc, DocQuery, Store

__all__ = ["MEDIA_STIX", "OBJECTS", "PENDING_SECONDS", "STATE", "STATUS", "AddResult", "Filters", "Page",
           "Stored", "TaxiiObjects", "TaxiiRequestError", "load_status", "parse_timestamp", "save_status",
           "timestamp_text"]

OBJECTS = "taxii_objects"
STATE = "taxii_state"
STATUS = "taxii_status"
MEDIA_STIX = "application/stix+json;version=2.1"
#: a write's pending block older than this no longer holds readers back (its writer is gone)
PENDING_SECONDS = 300
_CHUNK = 500  # object ids per lookup (the store's limit on `in` values)
_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$")
_ID = re.compile(r"^([a-z0-9][a-z0-9-]{1,248}[a-z0-9])--([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                 r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?[Zz]$")
_CURSOR_PREFIX = "t1."


class TaxiiRequestError(SocError, ValueError):
    """A request names something invalid (a filter, a timestamp, a cursor): the message says what."""


def parse_timestamp(text: str, what: str = "timestamp") -> int:
    """An RFC 3339 UTC timestamp as STIX and TAXII write it (``2026-12-07T20:01:38.123456Z``)
    in epoch microseconds (digits beyond microseconds are dropped)."""
    found = _TIMESTAMP.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise TaxiiRequestError(f"{what} {str(text)[:60]!r} is not a timestamp like 2026-12-07T20:01:38.123456Z")
    year, month, day, hour, minute, second = (int(g) for g in found.groups()[:6])
    try:
        datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        raise TaxiiRequestError(f"{what} {text[:60]!r} is not a valid date and time") from None
    fraction = int((found.group(7) or "0")[:6].ljust(6, "0"))
    return calendar.timegm((year, month, day, hour, minute, second)) * 1_000_000 + fraction


def timestamp_text(us: int) -> str:
    """Epoch microseconds as a TAXII timestamp with microseconds."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now_us(clock: Clock) -> int:
    now = clock()
    return calendar.timegm(now.utctimetuple()) * 1_000_000 + now.microsecond


@dataclass(frozen=True)
class Stored:
    """One stored object version: where it is, and the object."""

    object_id: str
    type: str
    spec_version: str
    version: str  # the object's modified (or created), else its date_added
    date_added: str
    seq: int
    stix: str  # the object as JSON text

    @property
    def object(self) -> dict[str, Any]:
        return orjson.loads(self.stix)

    def manifest(self) -> dict[str, Any]:
        """Its TAXII manifest record."""
        return {"id": self.object_id, "date_added": self.date_added, "version": self.version,
                "media_type": MEDIA_STIX}

    @classmethod
    def of(cls, doc: Doc) -> Stored:
        b = doc.body
        date_added = timestamp_text(int(b["added_us"]))
        return cls(b["object_id"], b["type"], b.get("spec_version") or "2.1", b.get("version") or date_added,
                   date_added, int(b["seq"]), b["stix"])


@dataclass(frozen=True)
class Filters:
    """What a listing asks for (TAXII 2.1 §3.4): ``match[id|type|spec_version]`` lists,
    ``match[version]`` (``last`` by default; ``first``, ``all`` or timestamps, any mix),
    ``added_after`` (exclusive, epoch microseconds)."""

    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    added_after: int | None = None

    @classmethod
    def parse(cls, *, ids: str | None = None, types: str | None = None, versions: str | None = None,
              spec_versions: str | None = None, added_after: str | None = None) -> Filters:
        """Filters from the query parameters' text (comma-separated lists)."""

        def items(text: str | None, what: str) -> tuple[str, ...]:
            if text is None:
                return ()
            found = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
            if not found:
                raise TaxiiRequestError(f"{what} is empty")
            if len(found) > _CHUNK:
                raise TaxiiRequestError(f"{what}: at most {_CHUNK} values")
            return found

        version_items = items(versions, "match[version]") or ("last",)
        for value in version_items:
            if value not in ("first", "last", "all"):
                try:
                    parse_timestamp(value, "match[version]")
                except TaxiiRequestError as error:
                    raise TaxiiRequestError(f"{error}; or use first, last or all") from None
        return cls(items(ids, "match[id]"), items(types, "match[type]"), version_items,
                   items(spec_versions, "match[spec_version]"),
                   None if added_after is None else parse_timestamp(added_after, "added_after"))

    def conditions(self) -> list[tuple[str, str, Any]]:
        out: list[tuple[str, str, Any]] = []
        if self.ids:
            out.append(("object_id", "in", list(self.ids)))
        if self.types:
            out.append(("type", "in", list(self.types)))
        if self.spec_versions:
            out.append(("spec_version", "in", list(self.spec_versions)))
        if "all" not in self.versions:
            marks = [v if v in ("first", "last") else str(parse_timestamp(v)) for v in self.versions]
            out.append(("marks", "contains_any", marks))
        if self.added_after is not None:
            out.append(("added_us", "range", (self.added_after + 1, None)))
        return out


@dataclass
class Page:
    """One page of a listing, oldest first; ``next`` is given whenever ``more`` is true."""

    records: list[Stored]
    more: bool
    next: str | None

    @property
    def first_added(self) -> str | None:
        return self.records[0].date_added if self.records else None

    @property
    def last_added(self) -> str | None:
        return self.records[-1].date_added if self.records else None


@dataclass
class AddResult:
    """What a write did: every object taken (new, or already there) and every one refused."""

    date_added: str | None = None
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.successes) + len(self.failures)


@dataclass(frozen=True)
class _Version:
    object_id: str
    type: str
    spec_version: str
    version: str | None
    version_us: int
    stix: str


def _checked(obj: Any) -> _Version:
    """An object as stored, or :class:`TaxiiRequestError` saying why it is refused."""
    if not isinstance(obj, Mapping):
        raise TaxiiRequestError("not a JSON object")
    kind, oid = obj.get("type"), obj.get("id")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise TaxiiRequestError("type is missing or invalid")
    found = _ID.match(oid) if isinstance(oid, str) else None
    if not found or found.group(1) != kind:
        raise TaxiiRequestError("id is missing or is not '<type>--<UUID>'")
    spec = obj.get("spec_version", "2.1")
    if spec != "2.1":
        raise TaxiiRequestError(f"spec_version {str(spec)[:20]!r}: this server takes STIX 2.1 objects")
    stamp = obj.get("modified", obj.get("created"))
    version_us = 0
    if stamp is not None:
        version_us = parse_timestamp(stamp, "modified" if "modified" in obj else "created")
    return _Version(oid.lower(), kind, "2.1", stamp, version_us,
                    json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True))


def _doc_id(collection_id: str, object_id: str, version_us: int) -> str:
    return f"{collection_id}/{object_id}/{version_us}"


class TaxiiObjects:
    """The objects of every collection over ``store`` (the shared store: collections are not
    owned by an agency). ``clock`` assigns ``date_added`` and ages pending writes."""

    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock

    # -- writing -------------------------------------------------------------------------------
    def add(self, collection_id: str, objects: Iterable[Any]) -> AddResult:
        """Add objects (each validated on its own: refused ones are listed with why, the rest are
        stored); an object version already present counts as added."""
        result = AddResult()
        valid: list[_Version] = []
        for obj in objects:
            try:
                valid.append(_checked(obj))
            except TaxiiRequestError as error:
                oid = obj.get("id") if isinstance(obj, Mapping) and isinstance(obj.get("id"), str) else ""
                result.failures.append({"id": oid[:300], "message": str(error)})
        fresh: dict[tuple[str, int], _Version] = {}
        for v in valid:  # the first of duplicates, in the order given
            fresh.setdefault((v.object_id, v.version_us), v)
        existing = self._versions_of(collection_id, sorted({oid for oid, _ in fresh}))
        new = [v for (oid, version_us), v in fresh.items() if version_us not in existing.get(oid, {})]
        added_us = self._write(collection_id, new, existing) if new else None
        for v in valid:
            known = existing.get(v.object_id, {}).get(v.version_us)
            at = int(known.body["added_us"]) if known is not None else added_us
            shown = v.version or (timestamp_text(at) if at is not None else "")
            result.successes.append({"id": v.object_id, "version": shown})
        result.date_added = None if added_us is None else timestamp_text(added_us)
        return result

    def _versions_of(self, collection_id: str, object_ids: Sequence[str]) -> dict[str, dict[int, Doc]]:
        """The stored versions of these objects: ``{object id: {version µs: doc}}``."""
        found: dict[str, dict[int, Doc]] = {}
        for start in range(0, len(object_ids), _CHUNK):
            chunk = list(object_ids[start:start + _CHUNK])
            cursor = None
            while True:
                page = self.store.query_documents(DocQuery(
                    OBJECTS, filters=(("collection_id", "equals", collection_id), ("object_id", "in", chunk)),
                    sort=("seq",), size=1000, cursor=cursor, track_total=0))
                for doc in page.docs:
                    found.setdefault(doc.body["object_id"], {})[int(doc.body["version_us"])] = doc
                cursor = page.cursor
                if cursor is None:
                    break
        return found

    def _write(self, collection_id: str, new: list[_Version], existing: dict[str, dict[int, Doc]]) -> int:
        first_seq, added_us, block = self._claim(collection_id, len(new))
        try:
            versions: dict[str, set[int]] = {}
            for v in new:
                versions.setdefault(v.object_id, set(existing.get(v.object_id, {}))).add(v.version_us)
            docs = [(_doc_id(collection_id, v.object_id, v.version_us),
                     {"collection_id": collection_id, "object_id": v.object_id, "type": v.type,
                      "spec_version": v.spec_version, "version": v.version, "version_us": v.version_us,
                      "marks": _marks(v.version_us, versions[v.object_id]), "added_us": added_us,
                      "seq": first_seq + offset, "stix": v.stix})
                    for offset, v in enumerate(new)]
            # one bulk create (a few requests on a search store); False: the id exists (a
            # retried write of this block), which is what a create would have said too
            for result in self.store.create_documents(OBJECTS, docs):
                if isinstance(result, SocError):
                    raise result
            for object_id, docs in existing.items():
                if object_id in versions:
                    for doc in docs.values():
                        self._remark(doc, versions[object_id])
            self.store.refresh()
        finally:
            self._release(collection_id, block)
        return added_us

    def _remark(self, doc: Doc, every: set[int]) -> None:
        """Set an older version's first/last marks after new versions of its object arrived."""
        for _ in range(5):
            marks = _marks(int(doc.body["version_us"]), every)
            if marks == doc.body.get("marks"):
                return
            try:
                self.store.put(OBJECTS, doc.id, {**doc.body, "marks": marks}, expected_version=doc.version)
                return
            except Conflict:
                again = self.store.get(OBJECTS, doc.id)
                if again is None:
                    return
                doc = again

    def _claim(self, collection_id: str, count: int) -> tuple[int, int, str]:
        """Take ``count`` sequence numbers and the request's ``date_added``, and register the
        block as pending: ``(first seq, date_added µs, block id)``."""
        block = uuid.uuid4().hex
        while True:
            doc = self.store.get(STATE, collection_id)
            state = dict(doc.body) if doc else {"seq": 0, "added_us": 0, "pending": []}
            now = _now_us(self.clock)
            first, added = int(state["seq"]) + 1, max(now, int(state["added_us"]) + 1)
            pending = [p for p in state.get("pending", []) if now - int(p["since_us"]) < PENDING_SECONDS * 1_000_000]
            pending.append({"id": block, "start": first, "since_us": now})
            body = {"seq": first + count - 1, "added_us": added, "pending": pending}
            try:
                self.store.put(STATE, collection_id, body, expected_version=doc.version if doc else 0)
            except Conflict:
                continue
            return first, added, block

    def _release(self, collection_id: str, block: str) -> None:
        while True:
            doc = self.store.get(STATE, collection_id)
            if doc is None:
                return
            pending = [p for p in doc.body.get("pending", []) if p.get("id") != block]
            if len(pending) == len(doc.body.get("pending", [])):
                return
            try:
                self.store.put(STATE, collection_id, {**doc.body, "pending": pending}, expected_version=doc.version)
                return
            except Conflict:
                continue

    def visible(self, collection_id: str) -> int:
        """The highest ``seq`` a reader may see now: below the oldest live pending write."""
        doc = self.store.get(STATE, collection_id)
        if doc is None:
            return 0
        now = _now_us(self.clock)
        live = [int(p["start"]) for p in doc.body.get("pending", [])
                if now - int(p["since_us"]) < PENDING_SECONDS * 1_000_000]
        return min(live) - 1 if live else int(doc.body["seq"])

    # -- reading -------------------------------------------------------------------------------
    def page(self, collection_id: str, filters: Filters, limit: int, next: str | None = None) -> Page:
        """One page of the collection's object versions matching ``filters``, in
        ``(date_added, seq)`` order, at most ``limit`` (1 to 1000), after the position ``next``."""
        if next:
            after, upper = _decode(next, collection_id)
        else:
            after, upper = 0, self.visible(collection_id)
        if upper <= after:
            return Page([], False, None)
        conditions = [("collection_id", "equals", collection_id), ("seq", "range", (after + 1, upper + 1)),
                      *filters.conditions()]
        page = self.store.query_documents(DocQuery(OBJECTS, filters=conditions, sort=("seq",), size=limit,
                                                   track_total=0))
        records = [Stored.of(doc) for doc in page.docs]
        more = page.cursor is not None and bool(records)
        return Page(records, more, _encode(collection_id, records[-1].seq, upper) if more else None)


def _marks(version_us: int, every: set[int]) -> list[str]:
    marks = [str(version_us)]
    if version_us == min(every):
        marks.append("first")
    if version_us == max(every):
        marks.append("last")
    return marks


def _encode(collection_id: str, after: int, upper: int) -> str:
    raw = json.dumps([collection_id, after, upper], separators=(",", ":")).encode()
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, collection_id: str) -> tuple[int, int]:
    bad = TaxiiRequestError("invalid next: give the next of the previous page as it was given")
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX) or len(cursor) > 400:
        raise bad
    body = cursor[len(_CURSOR_PREFIX):]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not (isinstance(data, list) and len(data) == 3 and data[0] == collection_id
            and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**53 for n in data[1:])):
        raise bad
    return data[1], data[2]


# -- status resources ----------------------------------------------------------------------------
def save_status(store: Store, collection_id: str, result: AddResult, *, requested_at: datetime,
                keep: timedelta, by: str) -> dict[str, Any]:
    """Store the status resource of a finished request (kept ``keep``) and return it."""
    status_id = str(uuid.uuid4())
    status = {"id": status_id, "status": "complete", "request_timestamp": timestamp_text(_us(requested_at)),
              "total_count": result.total, "success_count": len(result.successes), "successes": result.successes,
              "failure_count": len(result.failures), "failures": result.failures, "pending_count": 0,
              "pendings": []}
    store.create(STATUS, status_id, {"collection_id": collection_id, "status": status, "by": by,
                                     "expires_us": _us(requested_at + keep)})
    return status


def load_status(store: Store, status_id: str, *, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """``(collection id, status)`` of a status resource that has not expired, else ``None``
    (an expired one is deleted)."""
    try:
        key = str(uuid.UUID(status_id))
    except ValueError:
        return None
    doc = store.get(STATUS, key)
    if doc is None:
        return None
    if int(doc.body.get("expires_us", 0)) <= _us(now):
        store.delete(STATUS, key)
        return None
    return doc.body["collection_id"], doc.body["status"]


def _us(moment: datetime) -> int:
    return calendar.timegm(moment.astimezone(UTC).utctimetuple()) * 1_000_000 + moment.microsecond
