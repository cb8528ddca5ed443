"""The TAXII 2.1 endpoints (OASIS TAXII 2.1, §4 and §5): discovery, the one API root, its
collections, their objects, manifest and versions, adding objects, and status.

Paths are those of the specification under ``/taxii2/`` (every URL ends with ``/``).
Listings page by ``limit`` (at most ``taxii.max_limit``; ``taxii.default_limit`` when not
given) and ``next`` (given whenever ``more`` is true), filter by ``added_after`` (exclusive)
and ``match[id|type|version|spec_version]``, and carry ``X-TAXII-Date-Added-First`` /
``-Last``; see :mod:`soc.intel.taxii_objects` for why a page is a position and how a retried
page returns the same objects.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from soc.access import Principal
from soc.app import App
from soc.config_taxii import TaxiiCollectionSettings, TaxiiSettings
from soc.intel.taxii_objects import Filters, Page, TaxiiObjects, load_status, save_status
from soc.web.taxii.media import (
    STIX_MEDIA,
    TAXII_MEDIA,
    TaxiiHttpError,
    authenticate,
    check_content_type,
    negotiate,
    taxii_response,
)

__all__ = ["router"]

router = APIRouter()
#: the objects endpoints may also answer in the STIX media type
OBJECT_MEDIA = (TAXII_MEDIA, STIX_MEDIA)


def _root(request: Request) -> App:
    return request.app.state.root


def _settings(request: Request) -> TaxiiSettings:
    return _root(request).settings.taxii


def _api_root_url(request: Request) -> str:
    return str(request.url.replace(path=f"/taxii2/{_settings(request).api_root}/", query=None, fragment=None))


def _check_root(request: Request, api_root: str) -> None:
    if api_root != _settings(request).api_root:
        raise TaxiiHttpError(404, f"no API root {api_root[:64]!r}")


def _rights(principal: Principal, collection: TaxiiCollectionSettings) -> tuple[bool, bool]:
    """``(may read, may write)``: the collection allows it, the token has the scope, and its user
    sees every agency -- a collection's content belongs to no agency (province-wide incidents,
    indicators), so a user limited to some agencies never reads or feeds it, whatever scope a
    token of theirs names."""
    if principal.agency is not None:
        return False, False
    return (collection.can_read and principal.can(f"taxii:{collection.id}:read"),
            collection.can_write and principal.can(f"taxii:{collection.id}:write"))


def _collection(request: Request, api_root: str, key: str, principal: Principal, *,
                write: bool = False) -> TaxiiCollectionSettings:
    """The collection, when the principal may read it (or write to it); 404 or 403."""
    _check_root(request, api_root)
    found = _settings(request).collection(key)
    if found is None:
        raise TaxiiHttpError(404, f"no collection {key[:64]!r}")
    can_read, can_write = _rights(principal, found)
    if principal.agency is not None:
        raise TaxiiHttpError(403, f"{principal.name} sees only agency {principal.agency} and below: TAXII "
                                  "collections are province-wide")
    if write and not can_write:
        raise TaxiiHttpError(403, f"this token may not add objects to collection {found.id} "
                                  f"(needs the scope taxii:{found.id}:write)" if found.can_write else
                             f"collection {found.id} takes no objects from clients")
    if not write and not can_read:
        raise TaxiiHttpError(403, f"this token may not read collection {found.id} "
                                  f"(needs the scope taxii:{found.id}:read)" if found.can_read else
                             f"collection {found.id} is not readable by clients")
    return found


def _collection_resource(collection: TaxiiCollectionSettings, principal: Principal) -> dict[str, Any]:
    can_read, can_write = _rights(principal, collection)
    body: dict[str, Any] = {"id": collection.id, "title": collection.title, "can_read": can_read,
                            "can_write": can_write, "media_types": [STIX_MEDIA]}
    if collection.description:
        body["description"] = collection.description
    if collection.alias:
        body["alias"] = collection.alias
    return body


def _limit(request: Request) -> int:
    settings = _settings(request)
    text = request.query_params.get("limit")
    if text is None:
        return settings.default_limit
    try:
        value = int(text)
    except ValueError:
        raise TaxiiHttpError(400, f"limit {text[:20]!r} is not a whole number") from None
    if value < 1:
        raise TaxiiHttpError(400, "limit is at least 1")
    return min(value, settings.max_limit)


def _filters(request: Request, *, object_id: str | None = None, versions: bool = True) -> Filters:
    q = request.query_params
    return Filters.parse(ids=object_id if object_id is not None else q.get("match[id]"),
                         types=q.get("match[type]"), versions=(q.get("match[version]") if versions else "all"),
                         spec_versions=q.get("match[spec_version]"), added_after=q.get("added_after"))


def _page_headers(page: Page) -> dict[str, str]:
    headers = {}
    if page.first_added:
        headers["X-TAXII-Date-Added-First"] = page.first_added
    if page.last_added:
        headers["X-TAXII-Date-Added-Last"] = page.last_added
    return headers


def _envelope(page: Page, items: str, values: list[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"more": page.more}
    if page.next:
        body["next"] = page.next
    if values:
        body[items] = values
    return body


def _objects(request: Request) -> TaxiiObjects:
    root = _root(request)
    return TaxiiObjects(root.base_store, clock=root.clock)


# -- discovery and the API root ------------------------------------------------------------------
@router.get("/")
def discovery(request: Request) -> Response:
    media = negotiate(request)
    authenticate(request)
    settings = _settings(request)
    url = _api_root_url(request)
    body: dict[str, Any] = {"title": settings.title, "default": url, "api_roots": [url]}
    if settings.description:
        body["description"] = settings.description
    if settings.contact:
        body["contact"] = settings.contact
    return taxii_response(body, media=media)


@router.get("/{api_root}/")
def api_root_information(request: Request, api_root: str) -> Response:
    media = negotiate(request)
    authenticate(request)
    _check_root(request, api_root)
    settings = _settings(request)
    return taxii_response({"title": settings.title, "description": settings.description or settings.title,
                           "versions": [TAXII_MEDIA], "max_content_length": settings.max_content_length},
                          media=media)


@router.get("/{api_root}/status/{status_id}/")
def status(request: Request, api_root: str, status_id: str) -> Response:
    media = negotiate(request)
    principal = authenticate(request)
    _check_root(request, api_root)
    root = _root(request)
    found = load_status(root.base_store, status_id, now=root.clock())
    collection = _settings(request).collection(found[0]) if found else None
    if found is None or collection is None or not any(_rights(principal, collection)):
        raise TaxiiHttpError(404, f"no status {status_id[:64]!r} (kept {_settings(request).status_keep_hours:g} h)")
    return taxii_response(found[1], media=media)


# -- collections ---------------------------------------------------------------------------------
@router.get("/{api_root}/collections/")
def collections(request: Request, api_root: str) -> Response:
    media = negotiate(request)
    principal = authenticate(request)
    _check_root(request, api_root)
    shown = [_collection_resource(c, principal) for c in _settings(request).collections
             if any(_rights(principal, c))]
    return taxii_response({"collections": shown} if shown else {}, media=media)


@router.get("/{api_root}/collections/{collection_id}/")
def collection(request: Request, api_root: str, collection_id: str) -> Response:
    media = negotiate(request)
    principal = authenticate(request)
    _check_root(request, api_root)
    found = _settings(request).collection(collection_id)
    if found is None:
        raise TaxiiHttpError(404, f"no collection {collection_id[:64]!r}")
    if not any(_rights(principal, found)):
        raise TaxiiHttpError(403, f"this token has no scope on collection {found.id} "
                                  f"(taxii:{found.id}:read or :write)")
    return taxii_response(_collection_resource(found, principal), media=media)


@router.get("/{api_root}/collections/{collection_id}/manifest/")
def manifest(request: Request, api_root: str, collection_id: str) -> Response:
    media = negotiate(request)
    principal = authenticate(request)
    found = _collection(request, api_root, collection_id, principal)
    page = _objects(request).page(found.id, _filters(request), _limit(request), request.query_params.get("next"))
    return taxii_response(_envelope(page, "objects", [r.manifest() for r in page.records]), media=media,
                          headers=_page_headers(page))


@router.get("/{api_root}/collections/{collection_id}/objects/")
def get_objects(request: Request, api_root: str, collection_id: str) -> Response:
    media = negotiate(request, OBJECT_MEDIA)
    principal = authenticate(request)
    found = _collection(request, api_root, collection_id, principal)
    page = _objects(request).page(found.id, _filters(request), _limit(request), request.query_params.get("next"))
    return taxii_response(_envelope(page, "objects", [r.object for r in page.records]), media=media,
                          headers=_page_headers(page))


@router.get("/{api_root}/collections/{collection_id}/objects/{object_id}/")
def get_object(request: Request, api_root: str, collection_id: str, object_id: str) -> Response:
    media = negotiate(request, OBJECT_MEDIA)
    principal = authenticate(request)
    found = _collection(request, api_root, collection_id, principal)
    page = _objects(request).page(found.id, _filters(request, object_id=object_id.lower()), _limit(request),
                                  request.query_params.get("next"))
    if not page.records and not request.query_params.get("next"):
        raise TaxiiHttpError(404, f"no object {object_id[:100]!r} (matching the filters) in collection {found.id}")
    return taxii_response(_envelope(page, "objects", [r.object for r in page.records]), media=media,
                          headers=_page_headers(page))


@router.get("/{api_root}/collections/{collection_id}/objects/{object_id}/versions/")
def versions(request: Request, api_root: str, collection_id: str, object_id: str) -> Response:
    media = negotiate(request)
    principal = authenticate(request)
    found = _collection(request, api_root, collection_id, principal)
    page = _objects(request).page(found.id, _filters(request, object_id=object_id.lower(), versions=False),
                                  _limit(request), request.query_params.get("next"))
    if not page.records and not request.query_params.get("next"):
        raise TaxiiHttpError(404, f"no object {object_id[:100]!r} (matching the filters) in collection {found.id}")
    return taxii_response(_envelope(page, "versions", [r.version for r in page.records]), media=media,
                          headers=_page_headers(page))


# -- adding objects ------------------------------------------------------------------------------
@router.post("/{api_root}/collections/{collection_id}/objects/")
async def add_objects(request: Request, api_root: str, collection_id: str) -> Response:
    media = negotiate(request)
    principal = authenticate(request)
    root = _root(request)
    try:
        found = _collection(request, api_root, collection_id, principal, write=True)
    except TaxiiHttpError as error:
        if error.status == 403:
            await run_in_threadpool(_audit, request, principal, collection_id, {"refused": str(error)})
        raise
    check_content_type(request)
    envelope = await _read_envelope(request, _settings(request).max_content_length)
    requested_at = root.clock()

    def work() -> dict[str, Any]:
        result = _objects(request).add(found.id, envelope)
        body = save_status(root.base_store, found.id, result, requested_at=requested_at,
                           keep=_keep(request), by=principal.label)
        _audit(request, principal, found.id, {"status": body["id"], "objects": result.total,
                                              "added": len(result.successes), "refused": len(result.failures),
                                              "date_added": result.date_added})
        return body

    return taxii_response(await run_in_threadpool(work), status=202, media=media)


def _keep(request: Request) -> timedelta:
    return timedelta(hours=_settings(request).status_keep_hours)


def _audit(request: Request, principal: Principal, collection_id: str, details: dict[str, Any]) -> None:
    root = _root(request)
    root.audit.record(principal, "taxii.objects.add", ("taxii_collections", collection_id[:200]), details,
                      ip=request.client.host if request.client else None,
                      user_agent=request.headers.get("user-agent"))


async def _read_envelope(request: Request, limit: int) -> list[Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TaxiiHttpError(413, f"the body is larger than max_content_length ({limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TaxiiHttpError(413, f"the body is larger than max_content_length ({limit} bytes)")
        chunks.append(chunk)
    try:
        envelope = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise TaxiiHttpError(400, "the body is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("objects"), list):
        raise TaxiiHttpError(400, "the body is not a TAXII envelope: {\"objects\": [...]}")
    return envelope["objects"]
