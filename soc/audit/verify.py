"""Verifying the trail: one streaming pass over the chain, O(n), checked against checkpoints.

For each sequence number from 1 to the head, in order (the store is refreshed, then the
records are streamed with ``iter_all``; a number the search does not show is confirmed with a
real-time ``get``, and records written after the search began are read on with ``get``):

* no record with that number: **missing** -- it was deleted;
* a record whose ``seq`` is another number: **reordered** -- records were swapped or copied;
* a record whose hash is not the hash of its content: **edited**;
* a record whose ``prev`` is not the hash of the record before it: **broken** -- the record
  before was rewritten with its hash recomputed, or this one was replaced;
* a record that is not a record at all (keys, types): **malformed**.

Then every checkpoint (:mod:`soc.audit.checkpoints`): one beyond the head means the newest
records were **removed**; one whose hash differs from the record of its number means records
were **rewritten** (with their hashes recomputed, which the chain alone cannot show).

The result (:class:`Verification`) lists the problems in sequence order; the first one names
the first record that was edited, deleted or reordered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from soc.audit.checkpoints import Checkpoint
from soc.audit.record import AUDIT, EMPTY, GENESIS, KEYS, Head, is_hash, record_hash, seq_id, seq_of
from soc.store.base import Store

__all__ = ["MAX_GAP", "MAX_PROBLEMS", "CheckpointResult", "Problem", "Verification", "verify"]

#: problems listed at most (the count goes on)
MAX_PROBLEMS = 100
#: missing numbers in a row beyond which they are reported as one run, without a ``get`` each
MAX_GAP = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong, at which record (``None``: not about one record, e.g. an unreadable
    checkpoint source). ``kind``: missing, reordered, edited, broken, malformed, removed,
    rewritten, checkpoint."""

    seq: int | None
    kind: str
    message: str

    def body(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    checkpoint: Checkpoint
    ok: bool
    message: str

    def body(self) -> dict[str, Any]:
        return {**self.checkpoint.body(), "source": self.checkpoint.source, "signed": self.checkpoint.signed,
                "ok": self.ok, "message": self.message}


@dataclass
class Verification:
    """The outcome of :func:`verify`: ``ok`` when no problem was found."""

    records: int = 0
    head: Head = EMPTY
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    checkpoints: list[CheckpointResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def add(self, seq: int | None, kind: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, kind, message))

    def summary(self) -> str:
        """One line: ``OK: ...`` or ``FAILED: <the first problem> (and N more)``."""
        if self.ok:
            head = f"head {self.head.seq}, hash {self.head.hash[:16]}..." if self.head.seq else "empty"
            n = len(self.checkpoints)
            checked = (f"{n} checkpoint{'s' if n != 1 else ''} agree" if n else
                       "no checkpoint to check against (removing the newest records would not show)")
            return f"OK: {self.records} records, chain intact ({head}); {checked}"
        more = self.problem_count - 1
        first = self.first.message if self.first else "problems found"
        return f"FAILED: {first}" + (f" (and {more} more problem{'s' if more != 1 else ''})" if more else "")

    def body(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "head": self.head.body(), "problem_count": self.problem_count,
                "problems": [p.body() for p in self.problems], "checkpoints": [c.body() for c in self.checkpoints],
                "summary": self.summary()}


def _in_order(store: Store) -> Iterator[tuple[int | str | range, Mapping[str, Any] | None]]:
    """``(seq, body or None)`` for 1, 2, 3 ... to the newest record, ``(id, body)`` for
    documents whose id is no sequence number, and ``(range, None)`` for a run of more than
    :data:`MAX_GAP` missing numbers (not confirmed one by one)."""
    expected = 1
    for doc in store.iter_all(AUDIT):
        seq = seq_of(doc.id)
        if seq is None:
            yield doc.id, doc.body
            continue
        if seq < expected:
            continue
        if seq - expected > MAX_GAP:  # not a search lag: a hole (or a record planted far ahead)
            yield range(expected, seq), None
            expected = seq
        while expected < seq:  # not there, or not yet visible to the search
            found = store.get(AUDIT, seq_id(expected))
            yield expected, found.body if found is not None else None
            expected += 1
        yield seq, doc.body
        expected = seq + 1
    while (found := store.get(AUDIT, seq_id(expected))) is not None:
        yield expected, found.body
        expected += 1


def _malformed(body: Mapping[str, Any]) -> str | None:
    keys = set(body)
    if keys != KEYS:
        missing, extra = sorted(KEYS - keys), sorted(keys - KEYS)
        return "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                     f"unknown {', '.join(extra)}" if extra else "") if x)
    if not isinstance(body["seq"], int) or isinstance(body["seq"], bool):
        return "seq is not a number"
    if not is_hash(body["hash"]) or not is_hash(body["prev"]):
        return "hash or prev is not a SHA-256 hex digest"
    return None


def verify(store: Store, checkpoints: Iterable[Checkpoint] = (), problems: Iterable[str] = ()) -> Verification:
    """Check the whole chain in ``store`` and every checkpoint against it (see the module
    docstring). ``problems``: what went wrong gathering the checkpoints (an unreadable checkpoint
    file line, a summary whose signature does not verify); each one fails the verification."""
    result = Verification()
    store.refresh()  # the stream (a search) then sees every write and delete made before now
    wanted: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        wanted.setdefault(checkpoint.seq, []).append(checkpoint)
    prev: str | None = GENESIS  # None: the record before is unusable, skip the link check
    last = 0
    for key, body in _in_order(store):
        if isinstance(key, str):
            result.add(None, "malformed", f"audit document {key!r} is no record of the chain (its id is no "
                                          "sequence number): it was added to the store from outside")
            continue
        if isinstance(key, range):
            result.add(key.start, "missing", f"records {key.start} to {key.stop - 1} are missing: they were "
                                             "deleted, or the record after them was planted")
            for seq in [n for n in wanted if n in key]:
                for checkpoint in wanted.pop(seq):
                    _check_at(result, checkpoint, None)
            prev = None
            continue
        seq, link = key, None
        last = seq
        stored = body.get("hash") if body is not None else None
        result.head = Head(seq, stored if is_hash(stored) else "?" * 64,
                           body.get("at") if body is not None and isinstance(body.get("at"), str) else None)
        if body is None:
            result.add(seq, "missing", f"record {seq} is missing: it was deleted")
        elif (why := _malformed(body)) is not None:
            result.add(seq, "malformed", f"record {seq} is not a valid record ({why}): it was edited")
        elif body["seq"] != seq:
            result.add(seq, "reordered", f"record {seq} holds the body of record {body['seq']}: records were "
                                         "reordered or copied")
        else:
            result.records += 1
            link = body["hash"]
            if record_hash(body) != link:
                result.add(seq, "edited", f"record {seq} was edited: its content no longer matches its hash")
            elif prev is not None and body["prev"] != prev:
                result.add(seq, "broken", f"record {seq} does not follow record {seq - 1} (its prev hash differs): "
                                          f"record {seq - 1} was rewritten, or record {seq} was replaced")
        for checkpoint in wanted.pop(seq, []):
            _check_at(result, checkpoint, link)
        prev = link
    for seq in sorted(wanted):
        for checkpoint in wanted[seq]:
            gone = f"record {seq} was" if seq == last + 1 else f"records {last + 1} to {seq} were"
            message = (f"{gone} removed: {checkpoint.source} names record {seq} (hash {checkpoint.hash[:16]}...), "
                       f"but the chain ends at record {last}")
            result.add(last + 1, "removed", message)
            result.checkpoints.append(CheckpointResult(checkpoint, False, message))
    for problem in problems:
        result.add(None, "checkpoint", problem)
    return result


def _check_at(result: Verification, checkpoint: Checkpoint, hashed: str | None) -> None:
    seq = checkpoint.seq
    if hashed is None:
        message = f"{checkpoint.source} names record {seq}, which is missing or unreadable"
        result.checkpoints.append(CheckpointResult(checkpoint, False, message))
        result.add(seq, "checkpoint", message)
    elif hashed != checkpoint.hash:
        message = (f"record {seq} was rewritten: its hash {hashed[:16]}... differs from {checkpoint.source} "
                   f"({checkpoint.hash[:16]}...)")
        result.checkpoints.append(CheckpointResult(checkpoint, False, message))
        result.add(seq, "rewritten", message)
    else:
        result.checkpoints.append(CheckpointResult(checkpoint, True, f"record {seq} matches {checkpoint.source}"))
