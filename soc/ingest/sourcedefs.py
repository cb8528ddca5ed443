"""Source definitions (``ingest/sources/*.yml``) and agencies (``ingest/agencies.yml``).

A source definition says which transport brings the logs, which parser reads them, which agency
sent them (fixed, or ``by-network`` for a listener shared by many agencies) and which zone their
naive timestamps are in. The engine never hard-codes a source: analysts add a YAML file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from soc.config import DEFAULT_TIMEZONE, content_dir
from soc.errors import SocError
from soc.ingest.normalize import SourceContext

BY_NETWORK = "by-network"


class SourceDefinitionError(SocError, ValueError):
    """A source or agency file is invalid; the message names the file and the field."""


class Agency(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    level: Literal["province", "district", "commune", "other"] = "other"
    networks: list[str] = Field(default_factory=list)

    @field_validator("networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value


class SourceDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    type: Literal["syslog", "inbox", "tail", "file", "evtx", "kafka"]
    format: str = "auto"
    agency: str = "unknown"
    timezone: str = DEFAULT_TIMEZONE
    dataset: str | None = None
    path: str | None = None
    listen_udp: str | None = None
    listen_tcp: str | None = None
    topic: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value


@dataclass(frozen=True)
class Agencies:
    agencies: tuple[Agency, ...]
    unknown: Agency

    def by_id(self, agency_id: str) -> Agency:
        for agency in self.agencies:
            if agency.id == agency_id:
                return agency
        if agency_id == self.unknown.id:
            return self.unknown
        raise SourceDefinitionError(f"unknown agency {agency_id!r}: add it to ingest/agencies.yml")

    def resolver(self):  # type: ignore[no-untyped-def]
        """A function peer address -> (agency id, name) | None, longest prefix first, cached."""
        table = sorted(((ipaddress.ip_network(n, strict=False), a) for a in self.agencies for n in a.networks),
                       key=lambda item: -item[0].prefixlen)

        @lru_cache(maxsize=65536)
        def resolve(peer: str | None) -> tuple[str, str] | None:
            if not peer:
                return None
            host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer
            try:
                address = ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                return None
            for network, agency in table:
                if address.version == network.version and address in network:
                    return agency.id, agency.name
            return None

        return resolve


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SourceDefinitionError(f"{path}: {error}") from error


def load_agencies(ingest_dir: Path | None = None) -> Agencies:
    path = (ingest_dir or content_dir("ingest")) / "agencies.yml"
    data = _read_yaml(path) if path.is_file() else {}
    if not isinstance(data, dict):
        raise SourceDefinitionError(f"{path}: expected a mapping with 'agencies'")
    try:
        agencies = tuple(Agency(**a) for a in data.get("agencies") or [])
        unknown = Agency(**(data.get("unknown") or {"id": "unknown", "name": "Chưa xác định"}))
    except (ValidationError, TypeError, ValueError) as error:
        raise SourceDefinitionError(f"{path}: {error}") from error
    return Agencies(agencies, unknown)


def load_sources(ingest_dir: Path | None = None) -> list[SourceDefinition]:
    folder = (ingest_dir or content_dir("ingest")) / "sources"
    sources = []
    for path in sorted(folder.glob("*.yml")):
        data = _read_yaml(path)
        try:
            sources.append(SourceDefinition(**(data or {})))  # type: ignore[arg-type]
        except (ValidationError, TypeError) as error:
            raise SourceDefinitionError(f"{path}: {error}") from error
    return sources


def context_for(source: SourceDefinition, agencies: Agencies) -> SourceContext:
    """The normalization context of a source: its agency (or resolver), zone and dataset."""
    zone = ZoneInfo(source.timezone)
    if source.agency == BY_NETWORK:
        return SourceContext(source=source.name, agency_id=agencies.unknown.id,
                             agency_name=agencies.unknown.name, agency_resolver=agencies.resolver(),
                             zone=zone, dataset=source.dataset)
    agency = agencies.by_id(source.agency)
    return SourceContext(source=source.name, agency_id=agency.id, agency_name=agency.name, zone=zone,
                         dataset=source.dataset)
