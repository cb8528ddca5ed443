"""API tokens (:mod:`soc.identity.tokens`): list, create (the secret is shown once), revoke.

Two sets of routes:

* ``/tokens/mine`` -- a user's own tokens. Any logged-in user may manage their own (the
  console session: a token cannot make tokens for itself), so these need no permission beyond
  being authenticated, like ``/auth/me``; :meth:`soc.identity.tokens.Tokens.create` checks
  again that the token is the caller's own.
* ``/tokens`` -- any user's tokens: ``tokens:admin``.

A token never carries more than its user: its scopes narrow the user's current roles.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from soc.identity.model import TokenNotFound, UserNotFound
from soc.identity.tokens import ApiToken, NewToken, parse_lifetime
from soc.web.api.paging import Cursor, Limit, page_list
from soc.web.deps import Caller, caller, need
from soc.web.problems import NotFound

router = APIRouter(prefix="/tokens", tags=["tokens"])


class NewTokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(min_length=1, max_length=100, description="permissions, RESOURCE:* or "
                                                                        "taxii:COLLECTION:read|write")
    lifetime: str | None = Field(None, max_length=16, description="12h, 90d, 2w (default: auth.token_default_days)")


class NewUserToken(NewTokenRequest):
    user: str = Field(min_length=1, max_length=64, description="whose token")


def _shown(token: ApiToken, who: Caller) -> dict[str, Any]:
    return token.public(who.services.identity.clock())


def _created(made: NewToken, who: Caller) -> dict[str, Any]:
    return {**_shown(made.token, who), "secret": made.secret}


def _page(tokens: list[ApiToken], who: Caller, limit: int, cursor: str | None) -> dict[str, Any]:
    return page_list(tokens, lambda t: (t.created_at.isoformat(), t.id), limit=limit, cursor=cursor,
                     descending=True, show=lambda t: _shown(t, who)).body()


def _create(who: Caller, user: str, body: NewTokenRequest) -> dict[str, Any]:
    lifetime = parse_lifetime(body.lifetime) if body.lifetime else None
    try:
        made = who.services.identity.tokens.create(who.principal, user, body.name, body.scopes, lifetime)
    except UserNotFound as error:
        raise NotFound(f"no user {user!r}") from error
    return _created(made, who)


def _revoke(who: Caller, token_id: str, user: str | None) -> dict[str, Any]:
    tokens = who.services.identity.tokens
    try:
        token = tokens.find(token_id, user)
    except TokenNotFound as error:
        raise NotFound(f"no API token {token_id!r}") from error
    return _shown(tokens.revoke(who.principal, token.id, token.user), who)


# -- one's own tokens ------------------------------------------------------------------------------
@router.get("/mine", summary="My API tokens, newest first")
def my_tokens(limit: int = Limit, cursor: str | None = Cursor, who: Caller = Depends(caller)) -> dict[str, Any]:
    return _page(who.services.identity.tokens.list(who.principal.name), who, limit, cursor)


@router.post("/mine", status_code=201, summary="Create one of my API tokens (its secret is shown once)")
def create_my_token(body: NewTokenRequest, who: Caller = Depends(caller)) -> dict[str, Any]:
    return _create(who, who.principal.name, body)


@router.post("/mine/{token_id}/revoke", summary="Revoke one of my API tokens")
def revoke_my_token(token_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    return _revoke(who, token_id, who.principal.name)


# -- anyone's tokens -------------------------------------------------------------------------------
@router.get("", summary="API tokens of every user (or one), newest first")
def list_tokens(user: str | None = Query(None, max_length=64), limit: int = Limit, cursor: str | None = Cursor,
                who: Caller = need("tokens:admin")) -> dict[str, Any]:
    return _page(who.services.identity.tokens.list(user), who, limit, cursor)


@router.post("", status_code=201, summary="Create an API token for a user (its secret is shown once)")
def create_token(body: NewUserToken, who: Caller = need("tokens:admin")) -> dict[str, Any]:
    return _create(who, body.user, body)


@router.post("/{token_id}/revoke", summary="Revoke an API token")
def revoke_token(token_id: str, who: Caller = need("tokens:admin")) -> dict[str, Any]:
    return _revoke(who, token_id, None)
