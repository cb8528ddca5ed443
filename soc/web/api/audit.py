"""The audit trail (:mod:`soc.audit`): list records, verify the chain, export it.

The trail belongs to no agency: only principals that see every agency read it (a principal
scoped to some agencies gets 403, whatever its roles). ``GET /audit/export`` answers JSON lines
an auditor can check without this code -- one stored record per line, then the verification of
the whole chain (:mod:`soc.audit.export`) -- and the export is itself recorded
(``export.audit``).

Listing pages are newest first; the cursor names the last record shown (its time and
sequence number), and the next page holds the records before it. (Records are numbered in the
order they were appended; a record whose time is later than a newer one's -- clocks of
different processes a moment apart -- may be missed by a page boundary, never repeated.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from soc.access import Forbidden
from soc.audit import (
    AuditError,
    Checkpoint,
    export_trail,
    parse_checkpoint,
    read_checkpoints,
    verify,
)
from soc.audit.checkpoints import checkpoint_file
from soc.audit.trail import AuditTrail
from soc.model import iso, now_utc, parse_iso
from soc.web.api.doclist import Since, Until, time_range
from soc.web.api.paging import Cursor, Limit, Page, decode_cursor, encode_cursor
from soc.web.deps import Caller, client_ip, need

router = APIRouter(prefix="/audit", tags=["audit"])

#: records read at most to fill one page past records that share the cursor's time
MAX_FETCH = 20_000
CHUNK = 64 * 1024


def _trail(who: Caller) -> AuditTrail:
    """The trail, for a principal that sees every agency."""
    if not who.principal.scope(who.services.agencies).everything:
        raise Forbidden(f"{who.principal.label} may not read the audit trail: it belongs to no agency "
                        "(only principals that see every agency may read it)")
    return who.services.audit


def _checkpoints(who: Caller, given: list[str], reports: bool) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoint file, the checkpoints given and (``reports``) those of the signed
    summaries, with problems met reading them (as ``soc audit verify``)."""
    from soc.export.audit_checkpoints import summary_checkpoints
    from soc.export.sign import load_certificates

    settings = who.services.settings
    found, problems = read_checkpoints(checkpoint_file(settings))
    for text in given:
        try:
            found.append(parse_checkpoint(text))
        except AuditError as error:
            raise ValueError(str(error)) from error
    if reports:
        anchor = settings.reporting.certificate
        try:
            anchors = load_certificates(anchor) if anchor else []
        except (OSError, ValueError) as error:
            problems.append(f"cannot read the trust anchor {anchor}: {error}")
            anchors = []
        summaries, trouble = summary_checkpoints(who.services.store, who.services.reports.out_dir, anchors)
        found += summaries
        problems += trouble
    return found, problems


def _page(trail: AuditTrail, *, since: datetime | None, until: datetime | None, actors: list[str],
          actions: list[str], limit: int, cursor: str | None, target: str | None = None) -> Page:
    after = decode_cursor(cursor, 2)
    end = until
    if after is not None:
        try:
            bound = parse_iso(str(after[0])) + timedelta(milliseconds=1)
        except ValueError as error:
            raise ValueError("invalid cursor: pass the `next` of the previous page as it was given") from error
        end = bound if end is None or bound < end else end
    fetch = limit + 1
    while True:
        page = trail.page(since=since, until=end, actors=actors, actions=actions, target=target, limit=fetch)
        records = [r for r in page.records if after is None or r.seq < int(after[1])]
        if len(records) > limit or len(page.records) < fetch or fetch >= MAX_FETCH:
            break
        fetch = min(fetch * 4, MAX_FETCH)
    shown = records[:limit]
    more = len(records) > limit or (len(page.records) >= fetch and bool(shown))
    counted = trail.page(since=since, until=until, actors=actors, actions=actions, target=target,
                         limit=1) if after else page
    items = [{**r.body, "details": r.details} for r in shown]
    return Page(items, encode_cursor(shown[-1].at, shown[-1].seq) if more and shown else None,
                max(counted.total, len(shown)), not counted.capped)


@router.get("", summary="Audit records, newest first")
def list_records(since: str | None = Since, until: str | None = Until,
                 actor: list[str] = Query([], description="a label (alice, 'alice (token ci)', system:scheduler) "
                                                          "or a user name (also their tokens); repeat"),
                 action: list[str] = Query([], description="login.failed, alerts.update ...; repeat"),
                 target: str | None = Query(None, max_length=300, description="what was acted on: TYPE/ID "
                                                                              "(alerts/ID), TYPE/ or an ID"),
                 limit: int = Limit, cursor: str | None = Cursor,
                 who: Caller = need("audit:read")) -> dict[str, Any]:
    trail = _trail(who)
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    trail.store.refresh()  # what other processes wrote a moment ago, too
    return _page(trail, since=window.start, until=window.end, actors=actor, actions=action, limit=limit,
                 cursor=cursor, target=target).body()


@router.get("/verify", summary="Verify the whole chain against every checkpoint")
def verify_trail(checkpoint: list[str] = Query([], description="a checkpoint kept elsewhere: SEQ:HASH or the "
                                                               "JSON line `soc audit checkpoint` printed"),
                 reports: bool = Query(True, description="also the checkpoints of the signed summaries"),
                 who: Caller = need("audit:read")) -> dict[str, Any]:
    trail = _trail(who)
    checkpoints, problems = _checkpoints(who, checkpoint, reports)
    return verify(trail.store, checkpoints, problems).body()


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


@router.get("/export", response_class=StreamingResponse,
            summary="Export records as JSON lines with the verification of the chain (audited)")
def export(request: Request, since: str | None = Since, until: str | None = Until,
           checkpoint: list[str] = Query([]), reports: bool = Query(True),
           who: Caller = need("audit:read")) -> StreamingResponse:
    trail = _trail(who)
    window = time_range(since, until, who.services.settings.zone, who.services.clock)
    checkpoints, problems = _checkpoints(who, checkpoint, reports)
    name = f"audit-{iso(now_utc()).replace(':', '')}.jsonl"
    handle = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 -- closed by _chunks
    try:
        result = export_trail(trail, handle, actor=who.principal, since=window.start, until=window.end,
                              checkpoints=checkpoints, problems=problems, name=name, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent"))
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
               "X-Audit-Records": str(result.records), "X-Audit-Verified": "true" if result.verification.ok else "false"}
    return StreamingResponse(_chunks(handle), media_type="application/x-ndjson", headers=headers)
