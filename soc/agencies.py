"""The agencies whose logs the SOC receives, as a hierarchy of any depth (``ingest/agencies.yml``).

Since 1 July 2025 local government has two levels -- the province (with its departments: sở,
ban, ngành) and the commune or ward -- and districts no longer exist. The hierarchy is data, not
code: each agency names its ``parent``, and ``level`` is a free word (``province``,
``department``, ``commune``, ``ward``, ``district``, ``other``...), so a province's older
three-level plan (province -> district -> commune) loads as well as the new one.

A **merger** keeps history: the absorbed agency stays in the file with ``merged_into: NEW_ID``.
Its id stays valid on every stored event, alert and incident, and whoever may see the new agency
also sees what was recorded under the old one (:meth:`AgencyTree.below`).

An agency may list ``networks`` (the sender addresses of its devices, for syslog listeners
shared by many agencies) and ``certificate_names`` (the subject common names or DNS names of the
client certificates its devices present over mutual TLS: the agency then comes from the
certificate, which cannot be spoofed like a UDP source address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from soc.config import content_dir
from soc.errors import SocError

__all__ = ["Agency", "AgencyError", "AgencyTree", "load_agencies"]

UNKNOWN = {"id": "unknown", "name": "Chưa xác định"}


class AgencyError(SocError, ValueError):
    """The agency file is invalid, or an agency id is unknown; the message names which."""


class Agency(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str
    level: str = Field("other", description="province, department, commune, ward, district, other ...")
    parent: str | None = Field(None, description="the agency this one belongs to (None: the top)")
    networks: tuple[str, ...] = Field((), description="sender networks of its devices (CIDR)")
    certificate_names: tuple[str, ...] = Field(
        (), description="client certificate names (CN or DNS SAN) of its devices under mutual TLS")
    merged_into: str | None = Field(None, description="the agency that absorbed this one (history is kept)")
    contact_email: tuple[str, ...] = Field((), description="where remediation tasks for it are notified")

    @field_validator("networks")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value


@dataclass(frozen=True)
class AgencyTree:
    """Every agency, the ``unknown`` one for events no rule attributes, and their hierarchy."""

    agencies: tuple[Agency, ...]
    unknown: Agency
    _by_id: dict[str, Agency] = field(init=False, repr=False, compare=False)
    _children: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {a.id: a for a in self.agencies}
        by_id.setdefault(self.unknown.id, self.unknown)
        children: dict[str, list[str]] = {}
        for agency in self.agencies:
            # an absorbed agency hangs below the one that absorbed it: its history goes along
            above = agency.merged_into or agency.parent
            if above:
                children.setdefault(above, []).append(agency.id)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.agencies)

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self._by_id

    def get(self, agency_id: str) -> Agency | None:
        return self._by_id.get(agency_id)

    def by_id(self, agency_id: str) -> Agency:
        found = self._by_id.get(agency_id)
        if found is None:
            raise AgencyError(f"unknown agency {agency_id!r}: add it to ingest/agencies.yml "
                              f"(known: {', '.join(sorted(self._by_id)) or 'none'})")
        return found

    def name_of(self, agency_id: str | None) -> str:
        found = self._by_id.get(agency_id or "")
        return found.name if found else (agency_id or "")

    def names(self) -> dict[str, str]:
        return {a.id: a.name for a in self._by_id.values()}

    def current(self, agency_id: str) -> str:
        """The agency that carries on ``agency_id`` today (following ``merged_into``)."""
        seen = set()
        while (agency := self._by_id.get(agency_id)) is not None and agency.merged_into and agency_id not in seen:
            seen.add(agency_id)
            agency_id = agency.merged_into
        return agency_id

    def below(self, agency_id: str) -> frozenset[str]:
        """``agency_id``, every agency below it at any depth, and every agency merged into one of
        them: what a user scoped to ``agency_id`` may see."""
        found, todo = {agency_id}, [agency_id]
        while todo:
            for child in self._children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return frozenset(found)

    def path(self, agency_id: str) -> list[str]:
        """The chain of ids from the top down to ``agency_id``."""
        chain, seen = [], set()
        current: str | None = agency_id
        while current is not None and current not in seen:
            seen.add(current)
            chain.append(current)
            agency = self._by_id.get(current)
            current = agency.parent if agency else None
        return chain[::-1]

    def resolver(self) -> Callable[[str | None], tuple[str, str] | None]:
        """A function peer address -> (agency id, name) | None, longest prefix first, cached."""
        table = sorted(((ipaddress.ip_network(n, strict=False), a) for a in self.agencies for n in a.networks
                        if not a.merged_into), key=lambda item: -item[0].prefixlen)

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

    def by_certificate(self, names: Iterable[str]) -> Agency | None:
        """The agency whose ``certificate_names`` include one of ``names`` (a client certificate's
        common name and DNS names), compared case-insensitively; None when none does."""
        wanted = {n.lower() for n in names if n}
        for agency in self.agencies:
            if not agency.merged_into and wanted.intersection(n.lower() for n in agency.certificate_names):
                return agency
        return None


def _check(agencies: tuple[Agency, ...], unknown: Agency, path: Path) -> None:
    ids = [a.id for a in agencies]
    problems = [f"agency id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    known = set(ids) | {unknown.id}
    for agency in agencies:
        for what, other in (("parent", agency.parent), ("merged_into", agency.merged_into)):
            if other is not None and other not in known:
                problems.append(f"agency {agency.id!r}: {what} {other!r} is not an agency of the file")
            if other == agency.id:
                problems.append(f"agency {agency.id!r}: {what} names itself")
    parents = {a.id: a.parent for a in agencies}
    for start in parents:
        seen, current = set(), start
        while current is not None and current not in seen:
            seen.add(current)
            current = parents.get(current)
        if current is not None:
            problems.append(f"agency {start!r}: its parents go round in a circle through {current!r}")
            break
    if problems:
        raise AgencyError(f"{path}: " + "; ".join(problems))


def load_agencies(ingest_dir: Path | None = None) -> AgencyTree:
    """``agencies.yml`` of the ingest folder (the project's ``ingest/`` by default); a missing
    file gives no agencies but the ``unknown`` one."""
    path = (ingest_dir or content_dir("ingest")) / "agencies.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, yaml.YAMLError) as error:
        raise AgencyError(f"{path}: {error}") from error
    if not isinstance(data, dict):
        raise AgencyError(f"{path}: expected a mapping with 'agencies'")
    try:
        agencies = tuple(Agency(**a) for a in data.get("agencies") or [])
        unknown = Agency(**(data.get("unknown") or UNKNOWN))
    except (ValidationError, TypeError, ValueError) as error:
        raise AgencyError(f"{path}: {error}") from error
    _check(agencies, unknown, path)
    return AgencyTree(agencies, unknown)
