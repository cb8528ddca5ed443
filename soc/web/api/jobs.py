"""Bulk alert jobs (:mod:`soc.alerts.bulk`): the list, newest first, and one job as it stands.

A job belongs to its creator's agency (none: province-wide), so a principal scoped to some
agencies sees its agencies' jobs only; another's job is answered 404 like an unknown one. Reading
jobs needs ``alerts:read`` (the permission of the alerts they change).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query

from soc.alerts import AlertNotFound
from soc.alerts.bulk import JOB_KIND
from soc.alerts.model import JOBS
from soc.web.api.doclist import DocList, doc_page
from soc.web.api.paging import Cursor, Limit
from soc.web.deps import Caller, need
from soc.web.problems import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])
#: what a job document holds that is not shown (its lease, the principal it resumes under)
PRIVATE = ("lease_owner", "lease_until", "principal", "query_json")


def public(body: dict[str, Any]) -> dict[str, Any]:
    """A job as answered: without its lease and principal, its query as an object (as
    :meth:`soc.alerts.BulkAlerts.job` shows it)."""
    shown = {k: v for k, v in body.items() if k not in PRIVATE}
    shown["query"] = orjson.loads(body["query_json"]) if body.get("query_json") else {}
    return shown


@router.get("", summary="Bulk jobs, newest first")
def list_jobs(status: Literal["pending", "running", "succeeded", "failed"] | None = Query(None),
              limit: int = Limit, cursor: str | None = Cursor, who: Caller = need("alerts:read")) -> dict[str, Any]:
    where = {"kind": JOB_KIND, **({"status": status} if status else {})}
    return doc_page(who.services.store, DocList(JOBS, where, "created_at"), limit=limit, cursor=cursor,
                    show=public).body()


@router.get("/{job_id}", summary="One job: status, progress and exact counts")
def get_job(job_id: str, who: Caller = need("alerts:read")) -> dict[str, Any]:
    try:
        return who.services.bulk_alerts().job(who.principal, job_id)
    except AlertNotFound:
        raise NotFound(f"no job {job_id!r}") from None
