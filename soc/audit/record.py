"""One audit record: its fields, its canonical form and its hash.

A record is a document of the collection :data:`AUDIT` with the id :func:`seq_id` of its
sequence number (twelve digits, zero-padded, so that ids sort as numbers) and this body::

    {"v": 1,                                  # the record format
     "seq": 42,                               # 1, 2, 3 ... without gaps
     "at": "2026-12-07T01:30:00.123Z",        # UTC, soc.model.iso
     "actor": {"label": "alice (token ci)", "kind": "token", "name": "alice", "agency": null},
     "action": "alert.status",
     "target": {"type": "alerts", "id": "a-1"},          # or null
     "details": "{\\"values\\":{...}}",                  # canonical JSON text of a small object
     "source": {"ip": "10.0.0.5", "user_agent": "..."},  # or null
     "prev": "<hash of record 41>",           # record 1: GENESIS (64 zeros)
     "hash": "<SHA-256 of this record>"}

**The canonical form** (what :func:`record_hash` hashes): the body without its ``hash`` key,
serialised as JSON with the keys of every object sorted by code point, no whitespace
(separators ``,`` and ``:``), non-ASCII characters written as themselves (not ``\\u`` escapes)
and encoded in UTF-8; ``NaN`` and infinities are not allowed. The hash is the lowercase hex
SHA-256 of those bytes. In Python::

    hashlib.sha256(json.dumps({k: v for k, v in body.items() if k != "hash"}, sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")).hexdigest()

Every key is always present (``null`` when there is nothing to say) and the body holds only
strings, integers, ``null`` and objects, so the form is the same whichever store returns the
body. ``details`` is kept as *text* (its own canonical JSON) rather than an object: callers put
what they like in it, and a search engine's dynamic mapping would otherwise refuse a record
whose detail has another shape than an earlier one of the same name.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from soc.access import Principal
from soc.errors import SocError

AUDIT = "audit"
"""The store collection of the trail."""
GENESIS = "0" * 64
"""The ``prev`` of record 1."""
FORMAT = 1
SEQ_DIGITS = 12
#: every key of a record body
KEYS = frozenset({"v", "seq", "at", "actor", "action", "target", "details", "source", "prev", "hash"})
#: longest string kept in details (longer ones are cut, saying how long they were)
MAX_TEXT = 500
#: most list items and object keys kept in details
MAX_ITEMS = 100
_ACTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuditError(SocError):
    """The audit trail could not record or read what was asked; the message says what failed."""


def seq_id(seq: int) -> str:
    """The document id of record ``seq``: ``000000000042``."""
    return f"{seq:0{SEQ_DIGITS}d}"


def seq_of(doc_id: str) -> int | None:
    """The sequence number a document id names, or ``None`` when it names none."""
    return int(doc_id) if len(doc_id) == SEQ_DIGITS and doc_id.isdigit() else None


def canonical(body: Mapping[str, Any]) -> bytes:
    """The canonical form of a record body (see the module docstring): its ``hash`` is left out."""
    return json.dumps({k: v for k, v in body.items() if k != "hash"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def record_hash(body: Mapping[str, Any]) -> str:
    """The lowercase hex SHA-256 of :func:`canonical`."""
    return hashlib.sha256(canonical(body)).hexdigest()


def is_hash(value: object) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def small_json(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data of bounded size: strings cut at :data:`MAX_TEXT`, lists and
    objects at :data:`MAX_ITEMS` entries, non-finite numbers and other objects as text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}... ({len(value)} characters)"
    if depth >= 6:
        return "..."
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): small_json(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        kept = [small_json(v, depth + 1) for v in seq[:MAX_ITEMS]]
        return kept + ([f"... {len(seq) - MAX_ITEMS} more"] if len(seq) > MAX_ITEMS else [])
    return small_json(str(value), depth)


def details_text(details: Mapping[str, Any] | None) -> str:
    """The ``details`` field of a record: canonical JSON text of :func:`small_json` of it."""
    return json.dumps(small_json(dict(details or {})), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: the principal's label and kind (``user``, ``token``, ``local``, ``system``;
    ``anonymous`` for a failed login of nobody known), name and agency."""

    label: str
    kind: str
    name: str | None = None
    agency: str | None = None

    @classmethod
    def of(cls, who: Principal | str | None) -> Actor:
        """A principal as it is; a text as a system component (``system:<component>``);
        ``None`` as ``anonymous``."""
        if who is None:
            return cls("anonymous", "anonymous")
        if isinstance(who, str):
            name = who.removeprefix("system:")
            if not name:
                raise AuditError("a system component needs a name (actor 'system:<component>')")
            return cls(f"system:{name}", "system", name)
        return cls(who.label, who.kind, who.name, who.agency)

    def body(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "name": self.name, "agency": self.agency}


@dataclass(frozen=True, slots=True)
class Target:
    """What was acted on: a collection or kind of thing, and its id (``None``: the whole kind)."""

    type: str
    id: str | None = None

    @classmethod
    def of(cls, target: Target | tuple[str, str | None] | None) -> Target | None:
        if target is None or isinstance(target, Target):
            return target
        kind, id_ = target
        return cls(str(kind), None if id_ is None else str(id_))

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id}

    def __str__(self) -> str:
        return self.type if self.id is None else f"{self.type}/{self.id}"


@dataclass(frozen=True, slots=True)
class Head:
    """The newest record of the chain: its sequence number, hash and time (``seq`` 0: empty)."""

    seq: int
    hash: str
    at: str | None = None

    def body(self) -> dict[str, Any]:
        """What a checkpoint holds: ``{"seq", "hash", "at"}``."""
        return {"seq": self.seq, "hash": self.hash, "at": self.at}


EMPTY = Head(0, GENESIS, None)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A record as read back (``details`` parsed; ``body`` is the stored body, as hashed)."""

    seq: int
    at: str
    actor: Actor
    action: str
    target: Target | None
    details: dict[str, Any]
    ip: str | None
    user_agent: str | None
    prev: str
    hash: str
    body: dict[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AuditRecord:
        """Read a stored body; raises :class:`AuditError` when it is not a record."""
        try:
            actor = body["actor"] or {}
            target = body.get("target")
            source = body.get("source") or {}
            details = json.loads(body["details"]) if isinstance(body.get("details"), str) else {}
            return cls(int(body["seq"]), str(body["at"]),
                       Actor(str(actor.get("label")), str(actor.get("kind")), actor.get("name"), actor.get("agency")),
                       str(body["action"]), Target(str(target["type"]), target.get("id")) if target else None,
                       details if isinstance(details, dict) else {"value": details},
                       source.get("ip"), source.get("user_agent"), str(body["prev"]), str(body["hash"]),
                       dict(body))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise AuditError(f"not an audit record: {error}") from error

    @property
    def head(self) -> Head:
        return Head(self.seq, self.hash, self.at)


def new_body(seq: int, prev: str, at: str, actor: Actor, action: str, target: Target | None, details: str,
             ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """The body of record ``seq`` after ``prev``, hash included."""
    if not _ACTION.match(action):
        raise AuditError(f"audit action {action!r}: use letters, digits and . _ : - (e.g. alert.status)")
    source = {"ip": ip, "user_agent": user_agent} if (ip or user_agent) else None
    body: dict[str, Any] = {"v": FORMAT, "seq": seq, "at": at, "actor": actor.body(), "action": action,
                            "target": target.body() if target else None, "details": details, "source": source,
                            "prev": prev}
    body["hash"] = record_hash(body)
    return body
