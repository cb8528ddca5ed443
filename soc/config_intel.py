"""Threat-intelligence settings: the ``intel:`` section of the settings (:mod:`soc.config`), read
by :mod:`soc.intel` -- the feeds the province takes indicators from, how far back a new
indicator is hunted, and whether matches are told back as STIX sightings.

A feed's token follows the project's rule for secrets (``token_file``, else ``token_env``; never
inline, never shown or logged): :meth:`FeedSettings.token` reads it when the feed is polled, so a
missing file is an error of that feed (in its status), not of the whole service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from soc.secrets import resolve_secret

__all__ = ["FeedSettings", "IntelSettings"]

FeedKind = Literal["taxii", "misp", "list", "csv", "stix"]
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]


class FeedSettings(BaseModel):
    """One feed: where indicators come from and what they are worth when the feed says nothing."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="short id of the feed, recorded as the source of its indicators")
    kind: FeedKind = Field(description="taxii (a TAXII 2.1 collection), misp (a MISP feed: manifest.json and "
                           "<uuid>.json events), list (one value per line), csv (a value column), stix (a bundle file)")
    url: str | None = Field(None, description="taxii: the collection URL (.../collections/<id>/); misp, list, "
                            "csv, stix: an https URL of the feed (instead of path)")
    path: Path | None = Field(None, description="misp: the feed folder; list, csv, stix: the file")
    token_env: str | None = Field(None, description="environment variable with the bearer token")
    token_file: Path | None = Field(None, description="file holding the bearer token")
    ca: Path | None = Field(None, description="CA bundle (PEM) to verify the feed's server (default: system CAs)")
    allow_http: bool = Field(False, description="allow a plain http:// URL that is not on a loopback address")
    interval_minutes: float = Field(60.0, gt=0, description="how often the feed is polled (by `soc run` or `soc detect`, whichever comes first)")
    confidence: int = Field(50, ge=0, le=100, description="confidence of indicators that carry none")
    tlp: Tlp = Field("amber", description="TLP 2.0 marking of indicators that carry none")
    valid_days: float | None = Field(None, gt=0, description="indicators that carry no valid_until expire this "
                                     "long after they were last seen in the feed (None: never)")
    column: str = Field("value", description="csv: the column holding the value")
    type_column: str | None = Field(None, description="csv: a column naming the type (default: guessed from "
                                    "the value)")
    page_size: int = Field(500, ge=1, le=10000, description="taxii: objects asked for per request")
    timeout_seconds: float = Field(30.0, gt=0, description="seconds to wait for the server")
    share_sightings: bool = Field(False, description="matches on this feed's indicators are queued as STIX "
                                  "sightings (with intel.sightings on)")

    @model_validator(mode="after")
    def _where(self) -> FeedSettings:
        if self.kind == "taxii" and not self.url:
            raise ValueError(f"feed {self.name}: a taxii feed needs url (the collection URL)")
        if self.kind != "taxii" and bool(self.url) == bool(self.path):
            raise ValueError(f"feed {self.name}: give url or path (one of them)")
        return self

    def token(self) -> str | None:
        """The bearer token (``token_file``, else ``token_env``), ``None`` when none is configured;
        :class:`soc.secrets.SecretError` when the file or variable is missing."""
        return resolve_secret(None, self.token_env, self.token_file, f"intel.feeds[{self.name}].token")


class IntelSettings(BaseModel):
    """``intel:`` (``SOC_INTEL__...``): indicator feeds, matching and retro-hunt."""

    enabled: bool = Field(True, description="the service (`soc run`, and `soc detect` unless --no-intel) polls the feeds and matches stored events")
    feeds: list[FeedSettings] = Field(default_factory=list)
    retro_hunt_days: int = Field(30, ge=0, description="a new or newly valid indicator is searched over this "
                                 "many days of stored events (0: no retro-hunt)")
    match_interval_seconds: float = Field(60.0, gt=0, description="how often `soc run` matches newly stored "
                                          "events against the live indicators")
    max_events_per_cycle: int = Field(200_000, ge=1, description="events read per matching cycle (the rest in "
                                      "the next)")
    sightings: bool = Field(False, description="queue a STIX sighting for each match on an indicator of a feed "
                            "with share_sightings")
    hand_list: bool = Field(True, description="load the playbooks' threat_intel.yml into the store as the feed "
                            "'hand-list'")

    @model_validator(mode="after")
    def _unique(self) -> IntelSettings:
        names = [f.name for f in self.feeds]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"feed names must be unique: {', '.join(doubles)}")
        return self

    def feed(self, name: str) -> FeedSettings | None:
        return next((f for f in self.feeds if f.name == name), None)
