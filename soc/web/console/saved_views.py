"""Saved views of the alert queue, per user: a name and the queue's query string (filters,
grouping, sort), so ``/alerts?<query>`` opens the view again.

A view is the user's own document (collection ``saved_views``, one document per view) written
through the user's own service layer: the agency scope applies (the document carries the user's
agency: :data:`soc.store.scoped.OWNERS`) and the audit trail records who saved or deleted it.
Only its owner lists, opens or deletes it -- the owner is compared exactly (``owner_id``), and
a view of someone else is answered as unknown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from soc.access import Principal
from soc.errors import SocError
from soc.model import iso
from soc.store.base import Store

__all__ = ["MAX_NAME", "MAX_QUERY", "MAX_VIEWS", "VIEWS", "SavedView", "SavedViews", "ViewError"]

VIEWS = "saved_views"
MAX_VIEWS = 50
MAX_NAME = 80
MAX_QUERY = 2000
#: query parameters a view does not keep (a page position, a notice after an action)
TRANSIENT = ("cursor", "job", "incident", "added", "notice", "exception", "closed_job")


class ViewError(SocError, ValueError):
    """A view cannot be saved (no name, too many views...): ``message`` (a message id of the
    console's catalogue) with its ``values`` says why."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message.format(**values))
        self.message = message
        self.values = values


@dataclass(frozen=True)
class SavedView:
    id: str
    name: str
    query: str
    created_at: str

    @property
    def url(self) -> str:
        return f"/alerts?{self.query}" if self.query else "/alerts"


def clean_query(query: str) -> str:
    """The query string without its transient parameters, in a stable form."""
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=False) if k not in TRANSIENT]
    return urlencode(kept)


class SavedViews:
    """The saved views of one principal, over that principal's (scoped, audited) store."""

    def __init__(self, store: Store, principal: Principal, clock: Any) -> None:
        self.store = store
        self.principal = principal
        self.clock = clock

    def _mine(self, body: dict[str, Any]) -> bool:
        return body.get("owner_id") == self.principal.name and body.get("kind") == "alerts"

    def list(self) -> list[SavedView]:
        """The principal's views, by name."""
        docs = self.store.find(VIEWS, {"owner_id": self.principal.name}, limit=MAX_VIEWS * 2)
        views = [SavedView(d.id, d.body["name"], d.body.get("query") or "", d.body.get("created_at") or "")
                 for d in docs if self._mine(d.body)]
        return sorted(views, key=lambda v: (v.name.casefold(), v.id))

    def save(self, name: str, query: str) -> SavedView:
        """Save the query under ``name`` (a view of the same name is replaced)."""
        name = " ".join(name.split())
        if not name:
            raise ViewError("Give the view a name.")
        if len(name) > MAX_NAME:
            raise ViewError("A view name has at most {n} characters.", n=MAX_NAME)
        query = clean_query(query)
        if len(query) > MAX_QUERY:
            raise ViewError("The view's filters are longer than {n} characters.", n=MAX_QUERY)
        existing = self.list()
        same = next((v for v in existing if v.name.casefold() == name.casefold()), None)
        if same is None and len(existing) >= MAX_VIEWS:
            raise ViewError("At most {n} saved views: delete one first.", n=MAX_VIEWS)
        view_id = same.id if same else f"view-{uuid.uuid4().hex[:16]}"
        now = iso(self.clock())
        body = {"id": view_id, "kind": "alerts", "owner_id": self.principal.name, "agency": self.principal.agency,
                "name": name, "query": query, "created_at": same.created_at if same else now, "updated_at": now}
        self.store.put(VIEWS, view_id, body)
        return SavedView(view_id, name, query, body["created_at"])

    def delete(self, view_id: str) -> bool:
        """Delete one of the principal's views; False when it is not theirs or unknown."""
        doc = self.store.get(VIEWS, view_id)
        if doc is None or not self._mine(doc.body):
            return False
        return self.store.delete(VIEWS, view_id)
