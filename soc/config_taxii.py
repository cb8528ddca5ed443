"""TAXII 2.1 server settings: the ``taxii:`` section of the settings (:mod:`soc.config`), served
by ``soc serve`` under ``/taxii2/`` (:mod:`soc.web.taxii`, docs/taxii.md).

**Collections are configured, not created over the wire**: each one is a promise to a
recipient (the national center, a peer province) about what it carries and at which TLP, so it
is written down here, reviewed like any other setting, and given a fixed UUID that the recipient
configures in its own client. Who may read or write a collection is not a setting: an API
token carries the scope ``taxii:<collection id>:read`` or ``:write`` (``soc tokens create``).

**Paging is bounded**: a client asks for ``limit`` objects and gets at most ``max_limit``
(``default_limit`` when it asks nothing), whatever it asks.

**Status resources** of ``POST .../objects/`` are kept ``status_keep_hours`` (at least the 24
hours the TAXII 2.1 specification asks for).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

__all__ = ["TLP_LEVELS", "TaxiiCollectionSettings", "TaxiiSettings", "tlp_rank"]

#: TLP 2.0 levels, least restricted first (a collection carries content up to its level)
TLP_LEVELS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]


def tlp_rank(level: str) -> int:
    """How restricted a TLP level is (``clear`` 0 ... ``red`` 4); :class:`ValueError` for a
    level that is none."""
    try:
        return TLP_LEVELS.index(level.lower())
    except ValueError:
        raise ValueError(f"unknown TLP level {level!r}: use one of {', '.join(TLP_LEVELS)}") from None


class TaxiiCollectionSettings(BaseModel):
    """One collection of the API root (``taxii.collections``)."""

    id: str = Field(description="the collection's UUID (what recipients configure; never reuse one)")
    title: str = Field(min_length=1, max_length=200, description="shown to clients")
    description: str = Field("", max_length=2000, description="what the collection carries, for whom")
    alias: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
                              description="a short name clients may use instead of the id")
    can_read: bool = Field(True, description="clients may read it (with a taxii:ID:read token)")
    can_write: bool = Field(False, description="clients may add objects (with a taxii:ID:write token)")
    tlp: Tlp = Field("amber", description="the most restricted TLP it carries: content marked more "
                     "restricted is refused when published into it")
    content: list[Literal["incidents", "indicators", "any"]] = Field(
        default_factory=lambda: ["incidents", "indicators"],
        description="what `soc taxii publish-incident` (incidents) and indicator sharing (indicators) may "
                    "put in it; clients with a write token may post anything")
    recipient: str | None = Field(None, max_length=200, description="who it is for (documentation)")

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"collection id {value!r} is not a UUID (make one with `uuidgen`, or "
                             "python3 -c 'import uuid; print(uuid.uuid4())')") from None

    def carries(self, kind: str) -> bool:
        """Whether publishing ``kind`` (``incidents``, ``indicators``) into it is allowed."""
        return "any" in self.content or kind in self.content


class TaxiiSettings(BaseModel):
    """``taxii:`` (``SOC_TAXII__...``): the TAXII 2.1 server of ``soc serve``."""

    enabled: bool = Field(True, description="serve /taxii2/ (with no collections it serves an empty API root)")
    title: str = Field("SOC TAXII 2.1", min_length=1, max_length=200, description="the discovery title")
    description: str = Field("", max_length=2000, description="the discovery description")
    contact: str | None = Field(None, max_length=200, description="who to contact about this server")
    api_root: str = Field("soc", pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                          description="the path segment of the one API root (/taxii2/<api_root>/)")
    default_limit: int = Field(100, ge=1, description="objects per page when a client gives no limit")
    max_limit: int = Field(1000, ge=1, le=1000, description="objects per page at most, whatever a client asks")
    max_content_length: int = Field(10 * 1024 * 1024, ge=1024,
                                    description="largest POST body in bytes (413 beyond)")
    status_keep_hours: float = Field(48.0, ge=24.0, description="how long a POST's status resource is kept")
    collections: list[TaxiiCollectionSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TaxiiSettings:
        if self.default_limit > self.max_limit:
            raise ValueError("default_limit is larger than max_limit")
        names: set[str] = set()
        for collection in self.collections:
            for name in (collection.id, collection.alias):
                if name is None:
                    continue
                if name in names:
                    raise ValueError(f"collection id or alias {name!r} is used twice")
                names.add(name)
        return self

    def collection(self, key: str) -> TaxiiCollectionSettings | None:
        """The collection with this id (any case) or alias."""
        key = key.strip().lower()
        return next((c for c in self.collections if c.id == key or c.alias == key), None)
