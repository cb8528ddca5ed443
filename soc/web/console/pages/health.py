"""The health page: rules, log sources, dead letters and Kafka.

* **Rules** (``rule_state``, written by the detection scheduler): last run, duration, matches,
  alerts, alerts held back by exceptions, errors and time-outs -- failing rules first. Rule
  state belongs to no agency: an agency's user sees none (as in the API).
* **Sources** per agency (:mod:`soc.oversight.sources`): events in the window, the rate, the
  newest event, silent sources flagged -- the running service raises an alert for each
  (``oversight.silent_check_minutes``); the page links them in the queue.
* **Threat-intel feeds** (:mod:`soc.intel`): each feed's last poll, last success, indicators
  taken and its last error -- province-wide, so only for users who see every agency and may
  read threat intelligence (``intel:read``), as in the API.
* **Dead letters** of the embedded service's file, with their replay through a chosen source
  definition, and the **Kafka** group's lag and dead-letter topic with its replay (when Kafka
  is used) -- raw records of any agency: only for users who see every agency; replaying needs
  ``sources:replay`` and is recorded in the audit trail under the user's name.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from soc.access import Forbidden
from soc.ingest.sourcedefs import SourceDefinition, load_sources
from soc.oversight.deadletters import (
    file_letters,
    kafka_status,
    kafka_used,
    replay_file,
    replay_kafka,
)
from soc.oversight.sources import SILENT_RULE, source_rows
from soc.web.api.rules import health_of
from soc.web.console.render import render
from soc.web.console.security import console_caller
from soc.web.deps import Caller, client_ip
from soc.web.problems import NotFound

router = APIRouter(include_in_schema=False)

RULE_STATE = "rule_state"
DEAD_LETTER_FILE = "ingest.jsonl"
BY = ("soc.source", "event.dataset")
WINDOWS = (1, 6, 24, 72, 168)


def _everything(who: Caller) -> bool:
    return who.principal.scope(who.services.agencies).everything


def _sources() -> tuple[list[SourceDefinition], str | None]:
    try:
        return load_sources(), None
    except Exception as error:  # noqa: BLE001 -- a broken definition file: the page says why
        return [], str(error)


def _rules(who: Caller, failing_only: bool) -> list[dict[str, Any]]:
    rows = [health_of(d.id, d.body) for d in who.services.store.iter_all(RULE_STATE)]
    if failing_only:
        rows = [r for r in rows if r["failing"] or r.get("last_timed_out")]
    rows.sort(key=lambda r: (not r["failing"], not r.get("last_timed_out"), str(r.get("title") or r["rule_id"])))
    return rows


def _feeds(who: Caller) -> list[dict[str, Any]]:
    if not who.principal.can("intel:read"):
        return []
    return who.services.intel_poller().statuses()


def _number(value: str | None, allowed: tuple[int, ...], default: float) -> float:
    try:
        chosen = float(value) if value else default
    except ValueError:
        return default
    return chosen if chosen in allowed or chosen == default else default


@router.get("/health")
def health_page(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    who.principal.require("rules:read")
    services, params = who.services, request.query_params
    settings = services.settings
    oversight = settings.oversight
    window = _number(params.get("window"), WINDOWS, oversight.silent_window_hours)
    by = params.get("by") if params.get("by") in BY else BY[0]
    failing_only = params.get("rules") == "failing"
    everything = _everything(who)
    now = services.clock()
    rules = _rules(who, failing_only)
    sources = source_rows(services.store, services.agencies, end=now, window_hours=window,
                          silent_minutes=oversight.silent_minutes, by=by, everything=everything)
    letters = kafka = kafka_error = None
    feeds = _feeds(who) if everything else []
    definitions: list[SourceDefinition] = []
    definitions_error = None
    if everything:
        letters = file_letters(settings.dead_letter_dir / DEAD_LETTER_FILE)
        definitions, definitions_error = _sources()
        if kafka_used(settings, definitions):
            try:
                kafka = kafka_status(settings)
            except Exception as error:  # noqa: BLE001 -- the broker does not answer: the page says so
                kafka_error = f"{type(error).__name__}: {error}"
    return render(request, "health/page.html", rules=rules, failing_only=failing_only,
                  rules_failing=sum(1 for r in rules if r["failing"]), sources=sources, window=window,
                  windows=WINDOWS, by=by, by_options=BY, silent_minutes=oversight.silent_minutes,
                  silent_count=sum(1 for s in sources if s.silent), silent_rule=SILENT_RULE["id"],
                  check_minutes=oversight.silent_check_minutes, everything=everything, letters=letters,
                  definitions=definitions, definitions_error=definitions_error, kafka=kafka, kafka_error=kafka_error,
                  kafka_used=kafka is not None or kafka_error is not None, feeds=feeds,
                  feeds_failing=sum(1 for f in feeds if f.get("consecutive_errors")),
                  may_replay=everything and who.principal.can("sources:replay"),
                  replayed={k: params.get(k) for k in ("replayed", "created", "existing", "failing", "no_bytes")
                            if params.get(k) is not None})


def _may_replay(who: Caller) -> None:
    who.principal.require("sources:replay")
    if not _everything(who):
        raise Forbidden(f"{who.principal.label} sees only some agencies; dead letters hold records of any agency")


def _done(what: str, counts: dict[str, Any]) -> RedirectResponse:
    shown = {"replayed": what, **{k: counts.get(k, 0) for k in ("created", "existing", "no_bytes")},
             "failing": counts.get("still_failing", 0)}
    return RedirectResponse(f"/health?{urlencode(shown)}#dead-letters", status_code=303)


@router.post("/health/dead-letters/replay")
def replay_dead_letters(request: Request, source: Annotated[str, Form(max_length=200)],
                        kind: Annotated[str, Form(max_length=200)] = "",
                        who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    _may_replay(who)
    settings = who.services.settings
    definitions, _error = _sources()
    chosen = next((d for d in definitions if d.name == source), None)
    if chosen is None:
        raise NotFound(f"no source definition {source!r}")
    result = replay_file(settings.dead_letter_dir / DEAD_LETTER_FILE, chosen, who.services.store,
                         who.services.agencies, max_message_bytes=settings.syslog.max_message_bytes, kind=kind or None)
    counts = result.as_dict()
    who.services.audit.record(who.principal, "deadletters.replay", ("dead_letters", DEAD_LETTER_FILE),
                              {"source": chosen.name, "kind": kind or None, **counts}, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent"))
    return _done("file", counts)


@router.post("/health/kafka/replay")
def replay_kafka_dead_letters(request: Request, who: Caller = Depends(console_caller)) -> Response:  # noqa: B008
    _may_replay(who)
    settings = who.services.settings
    counts = replay_kafka(settings)
    who.services.audit.record(who.principal, "deadletters.replay", ("kafka_topic", settings.kafka.dead_letter_topic),
                              counts, ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    return _done("kafka", {**counts, "still_failing": len(counts.get("still_failing") or [])})
