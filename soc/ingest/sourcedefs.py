"""Source definitions (``ingest/sources/*.yml``) and agencies (``ingest/agencies.yml``).

A source definition says which transport brings the logs, which parser reads them, which agency
sent them (fixed, or ``by-network`` for a listener shared by many agencies) and which zone their
naive timestamps are in. The engine never hard-codes a source: analysts add a YAML file.

Definitions are checked when they are loaded (:func:`load_sources`), every file at once: a
``type`` no source implements (:data:`soc.ingest.registry.REGISTRY`), a ``format`` no parser
implements (:data:`soc.ingest.parsers.PARSERS`, or ``auto``), an unknown ``timezone``, a field the
type needs (``path`` for ``tail``, ``file``, ``evtx``) left out, or one ``name`` used twice is
refused with one :class:`SourceDefinitionError` listing each problem with its file, its source
and the known values. docs/sources.md describes every type.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from soc.agencies import AgencyTree
from soc.config import DEFAULT_TIMEZONE, content_dir
from soc.config_security import UNMAPPED_CERTIFICATE, check_readable_file
from soc.errors import SocError
from soc.ingest.normalize import SourceContext
from soc.ingest.parsers import PARSERS
from soc.ingest.registry import REGISTRY
from soc.secrets import resolve_secret, warn_inline

BY_NETWORK = "by-network"


class SourceDefinitionError(SocError, ValueError):
    """A source or agency file is invalid; the message names the file and the field."""


def known_formats() -> list[str]:
    """The ``format`` values a source definition may use."""
    return ["auto", *PARSERS]


class SourceDefinition(BaseModel):
    """One ``ingest/sources/*.yml`` file. ``type`` is a name of :data:`~soc.ingest.registry.REGISTRY`
    (what each does: docs/sources.md); ``path`` is what a file source reads (``tail``: the file;
    ``file``: a file or folder read once; ``evtx``: a folder watched for ``.evtx`` files, or one
    file; ``inbox``: the drop folder, default ``<data dir>/inbox``); ``listen_udp``/``listen_tcp``
    override the settings' syslog addresses; ``topic``, ``bootstrap`` and ``group`` say where a
    ``kafka`` source consumes (default: the ``kafka:`` settings' topic and bootstrap, group
    ``soc-run-NAME``). ``listen_tls`` and the ``tls_*`` fields give a ``syslog`` source its TLS
    listener (RFC 5425) and mutual TLS, each defaulting to the ``syslog: {tls: ...}`` settings
    (:mod:`soc.ingest.sources.tls`, docs/sources.md)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: str
    format: str = "auto"
    agency: str = "unknown"
    timezone: str = DEFAULT_TIMEZONE
    dataset: str | None = None
    path: str | None = None
    listen_udp: str | None = None
    listen_tcp: str | None = None
    listen_tls: str | None = None
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    tls_key_password: SecretStr | None = None
    tls_key_password_env: str | None = None
    tls_key_password_file: Path | None = None
    tls_client_ca: Path | None = None
    tls_require_client_certificate: bool | None = None
    tls_agency_from_certificate: bool | None = None
    tls_unmapped_certificate: str | None = None
    topic: str | None = None
    bootstrap: str | None = None
    group: str | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in REGISTRY.types:
            raise ValueError(f"unknown source type {value!r}: known types are {', '.join(REGISTRY.names())}")
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in known_formats():
            raise ValueError(f"unknown format {value!r}: known formats are {', '.join(known_formats())}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                             f"{DEFAULT_TIMEZONE}") from None
        return value

    @field_validator("tls_certificate", "tls_private_key", "tls_client_ca", "tls_key_password_file")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return check_readable_file(value, info.field_name or "file")

    @field_validator("tls_unmapped_certificate")
    @classmethod
    def _unmapped(cls, value: str | None) -> str | None:
        if value is not None and value not in UNMAPPED_CERTIFICATE:
            raise ValueError(f"{value!r}: use {' or '.join(UNMAPPED_CERTIFICATE)}")
        return value

    @model_validator(mode="after")
    def _needs(self) -> SourceDefinition:
        missing = [f for f in REGISTRY.get(self.type).needs if not getattr(self, f, None)]
        if missing:
            raise ValueError(f"a {self.type} source needs {' and '.join(repr(f) for f in missing)}")
        tls = [f for f in self.model_fields_set if f == "listen_tls" or f.startswith("tls_")]
        if tls and self.type != "syslog":
            raise ValueError(f"{', '.join(sorted(tls))}: only a syslog source listens for TLS")
        own = [f for f in ("tls_private_key", "tls_key_password", "tls_key_password_env", "tls_key_password_file")
               if getattr(self, f) is not None]
        if own and self.tls_certificate is None:
            raise ValueError(f"{', '.join(own)} need tls_certificate (the certificate that key belongs to)")
        if self.tls_key_password is not None:
            warn_inline(f"source {self.name!r}: tls_key_password", "tls_key_password_file", "tls_key_password_env")
        return self

    def tls_key_secret(self) -> str | None:
        """The password of ``tls_private_key`` (``tls_key_password_file``, else ``_env``, else
        inline); ``None`` when none is set. :class:`soc.secrets.SecretError` when the file or
        variable is missing."""
        return resolve_secret(self.tls_key_password, self.tls_key_password_env, self.tls_key_password_file,
                              f"source {self.name!r}: tls_key_password")


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SourceDefinitionError(f"{path}: {error}") from error


def _problems(path: Path, data: object, error: ValidationError | TypeError) -> list[str]:
    """``path: source 'name': field: message`` for each thing wrong in one definition file."""
    name = data.get("name") if isinstance(data, dict) else None
    where = f"{path}: source {name!r}" if isinstance(name, str) else f"{path}"
    if isinstance(error, TypeError):
        return [f"{where}: expected a mapping of settings ({error})"]
    out = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field (known: {', '.join(SourceDefinition.model_fields)})"
        out.append(f"{where}: {field + ': ' if field else ''}{message}")
    return out


def load_sources(ingest_dir: Path | None = None) -> list[SourceDefinition]:
    """Every ``sources/*.yml`` of the ingest folder, checked (see the module docstring); one
    :class:`SourceDefinitionError` lists the problems of every file."""
    folder = (ingest_dir or content_dir("ingest")) / "sources"
    sources: list[SourceDefinition] = []
    problems: list[str] = []
    names: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yml")):
        try:
            data = _read_yaml(path)
        except SourceDefinitionError as error:
            problems.append(str(error))
            continue
        try:
            source = SourceDefinition(**(data or {}))  # type: ignore[arg-type]
        except (ValidationError, TypeError) as error:
            problems += _problems(path, data, error)
            continue
        if source.name in names:
            problems.append(f"{path}: source {source.name!r}: the name is already used by {names[source.name]} "
                            "(names key each source's state and events: make them unique)")
            continue
        names[source.name] = path
        sources.append(source)
    if problems:
        raise SourceDefinitionError("\n".join(problems))
    return sources


def agency_context(agencies: AgencyTree, *, source: str, agency: str | None, zone: ZoneInfo | str,
                   dataset: str | None = None) -> SourceContext:
    """The normalization context for records of ``source`` sent by ``agency`` (an id of
    ``agencies.yml``; ``None`` or ``by-network``: found from each record's sender address, else
    the ``unknown`` agency). Shared by source definitions and the Kafka wire format."""
    zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    if agency is None or agency == BY_NETWORK:
        return SourceContext(source=source, agency_id=agencies.unknown.id, agency_name=agencies.unknown.name,
                             agency_resolver=agencies.resolver(), zone=zone, dataset=dataset)
    found = agencies.by_id(agency)
    return SourceContext(source=source, agency_id=found.id, agency_name=found.name, zone=zone, dataset=dataset)


def context_for(source: SourceDefinition, agencies: AgencyTree) -> SourceContext:
    """The normalization context of a source: its agency (or resolver), zone and dataset."""
    return agency_context(agencies, source=source.name, agency=source.agency, zone=source.timezone,
                          dataset=source.dataset)
