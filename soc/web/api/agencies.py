"""The agency hierarchy (``ingest/agencies.yml``, :mod:`soc.agencies`). A principal scoped to
an agency sees that agency and its subtree (with the agencies merged into them); one without an
agency sees them all, and the ``unknown`` agency of events no rule attributes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from soc.agencies import Agency, AgencyTree
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, need

router = APIRouter(prefix="/agencies", tags=["agencies"])


def _shown(agency: Agency, tree: AgencyTree, visible: frozenset[str] | None) -> dict[str, Any]:
    path = tree.path(agency.id)
    return {"id": agency.id, "name": agency.name, "level": agency.level,
            "parent": agency.parent if visible is None or agency.parent in visible else None,
            "merged_into": agency.merged_into, "current": tree.current(agency.id),
            "path": [a for a in path if visible is None or a in visible]}


@router.get("", summary="The agencies the caller may see, each after its parent")
def list_agencies(limit: int = Limit, cursor: str | None = Cursor,
                  who: Caller = need("agencies:read")) -> dict[str, Any]:
    tree = who.services.agencies
    visible = who.principal.scope(tree).agencies
    items = [a for a in tree if visible is None or a.id in visible]
    if visible is None:
        items.append(tree.unknown)
    return page_list(items, lambda a: ("/".join(tree.path(a.id)),), limit=limit, cursor=cursor,
                     show=lambda a: _shown(a, tree, visible)).body()
