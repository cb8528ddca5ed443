"""Polling a TAXII 2.1 collection with ``taxii2-client``, from a saved cursor, without loss,
duplicates or endless loops on servers that do not follow the standard to the letter.

**Cursor.** Each poll asks for objects ``added_after`` the cursor saved by the previous poll and
pages with ``next`` while the server says ``more`` (the pages of one listing keep the listing's
``added_after``: a ``next`` token belongs to the query that issued it). The new cursor is the last
``X-TAXII-Date-Added-Last`` header of the poll (the date the newest object returned was added;
read case-insensitively; falling back to the newest ``modified``/``created`` of the objects when a
server sends no header -- a weaker cursor, since an object can be added long after it was modified).

**Robust to inclusive servers and to many objects at one instant.** ``added_after`` is exclusive
in TAXII 2.1, but some servers return the objects added *at* the cursor again. The poll
therefore also remembers which objects (id and version, ``modified``) it took at the cursor's
instant: those are skipped when they come back, and a page that brings only objects already
taken and leaves the cursor where it was ends the poll -- it can never loop. A server that pages
by ``added_after`` without ``next`` is followed with the advancing cursor the same way.

**Outgoing rules.** ``taxii2-client`` speaks through a ``requests`` session; the session used
here applies :mod:`soc.outgoing`'s rules to every request (the URL policy of
:func:`soc.outgoing.check_url`: https, http only to loopback or when the feed allows it;
redirects refused with :class:`soc.outgoing.RedirectRefused`; certificates verified against the
system CAs or the feed's ``ca``; timeouts), and sends the feed's bearer token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from taxii2client.common import _HTTPConnection
from taxii2client.v21 import Collection

from soc.outgoing import CONNECT_TIMEOUT, RedirectRefused, check_url

__all__ = ["Poll", "PolicySession", "poll_collection"]

log = logging.getLogger(__name__)
MAX_PAGES = 100_000


class PolicySession(requests.Session):
    """A ``requests`` session under :mod:`soc.outgoing`'s rules (see the module docstring); it
    keeps the headers of the last response (TAXII's date headers)."""

    def __init__(self, *, allow_http: bool = False, ca: Path | None = None, timeout: float = 30.0,
                 token: str | None = None) -> None:
        super().__init__()
        self.allow_http = allow_http
        self.verify = str(ca) if ca else True
        self.timeout = timeout
        self.last_headers: Any = {}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        text = url.decode() if isinstance(url, bytes) else url
        check_url(text, allow_http=self.allow_http, http_setting="intel.feeds[].allow_http")
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, self.timeout))
        response = super().request(method, url, *args, **kwargs)
        if 300 <= response.status_code < 400:
            raise RedirectRefused(text, response.status_code, response.reason or "",
                                  response.headers.get("location"))
        self.last_headers = response.headers  # case-insensitive: servers send x-taxii-date-added-last
        return response


@dataclass
class Poll:
    """What one poll brought: the new objects, the cursor to save, pages read."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    at_cursor: list[str] = field(default_factory=list)  # "id|modified" of objects taken at the cursor's instant
    pages: int = 0
    skipped: int = 0  # objects the server sent again (inclusive added_after)


def _version(obj: dict[str, Any]) -> str:
    return f"{obj.get('id')}|{obj.get('modified') or obj.get('created') or ''}"


def poll_collection(url: str, *, cursor: str | None = None, at_cursor: list[str] | None = None,
                    token: str | None = None, allow_http: bool = False, ca: Path | None = None,
                    timeout: float = 30.0, page_size: int = 500) -> Poll:
    """Objects added to the collection at ``url`` after ``cursor`` (see the module docstring)."""
    session = PolicySession(allow_http=allow_http, ca=ca, timeout=timeout, token=token)
    conn = _HTTPConnection(version="2.1")
    conn.session = session
    collection = Collection(url if url.endswith("/") else url + "/", conn=conn)
    out = Poll(cursor=cursor, at_cursor=list(at_cursor or []))
    taken: set[str] = set(out.at_cursor)
    next_token: str | None = None
    asked = out.cursor  # a listing's added_after: kept while its pages are followed with next
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"limit": page_size}
        if next_token:
            params["next"] = next_token
        else:  # a new listing (first page, or a server that pages by added_after alone)
            asked = out.cursor
        if asked:
            params["added_after"] = asked
        envelope = collection.get_objects(**params) or {}
        out.pages += 1
        objects = envelope.get("objects") or []
        fresh = []
        for obj in objects:
            key = _version(obj)
            if key in taken:
                out.skipped += 1
                continue
            taken.add(key)
            fresh.append(obj)
        out.objects.extend(fresh)
        last = session.last_headers.get("X-TAXII-Date-Added-Last") or _newest(objects)
        moved = bool(last) and (out.cursor is None or last > out.cursor)
        if moved:
            out.cursor = last
            out.at_cursor = []
        if last and last == out.cursor:
            # what was taken at the cursor's instant: skipped if an inclusive server sends it again
            out.at_cursor.extend(_version(o) for o in fresh)
        if not envelope.get("more"):
            break
        next_token = envelope.get("next")
        if not next_token and not moved and not fresh:
            log.warning("TAXII %s: more=true but no next and no progress; stopping this poll", url)
            break
        if next_token is None and not fresh:
            break
    else:
        log.warning("TAXII %s: more than %d pages in one poll; the rest comes next time", url, MAX_PAGES)
    out.at_cursor = sorted(set(out.at_cursor))[-10_000:]
    return out


def _newest(objects: list[dict[str, Any]]) -> str | None:
    stamps = [str(o.get("modified") or o.get("created") or "") for o in objects]
    return max((s for s in stamps if s), default=None)

