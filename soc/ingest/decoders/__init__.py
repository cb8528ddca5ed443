"""Parsers as data: device decoders written in YAML under ``ingest/decoders/``.

A province has device models no one will write Python for. Its IT team adds one by writing a
decoder file (docs in ``ingest/decoders/README.md``)::

    source: "Vendor's published log format document, by name"
    vendor: Cisco
    product: ASA
    dataset: network.cisco              # event.dataset of what it decodes (in ingest/datasets.yml)
    observer_type: firewall             # observer.type (optional)
    decoders:
      - name: cisco-asa-106023          # unique over all files; shown by `soc parse --explain`
        programs: [asa]                 # optional: syslog program names (process.name; "postfix"
                                        # also matches "postfix/smtpd")
        prefilter: "%ASA-4-106023"      # optional: a plain substring that must be in the text
                                        # (or a list: one of them must be)
        match:                          # named patterns (soc.ingest.decoders.patterns), first hit wins
          - 'Deny %{WORD:network.transport} src %{IFACE:observer.ingress.interface.name}:%{IP:source.ip}/%{PORT:source.port}'
        extract:                        # optional: more patterns, each searched on its own once matched
          - 'by access-group "%{NOTSPACE:rule.name}"'
        set: {event.action: deny}       # constant fields
        samples:                        # tested by tests/test_decoders.py
          - line: "%ASA-4-106023: Deny tcp src outside:10.1.1.1/1234 dst inside:10.2.2.2/80 ..."
            fields: {source.ip: 10.1.1.1, source.port: 1234}

Where it runs: the parsers (:func:`soc.ingest.parsers.parse`) first, with the syslog
programs' own extractors; a line they leave unclaimed (no source/destination, no action) is
offered to the decoders (:func:`apply`), and only a line no decoder matches goes to the generic
extraction (:mod:`soc.ingest.generic`). A decoder reads the syslog MSG (``message``), or the
raw line when the parser kept no message. Values are typed on the way in: ``*.ip`` must be an
address (else the text goes to ``*.address``), ``*.port``/``*.bytes``/``*.packets`` become
integers, ``event.action`` is lower case and allow/deny words set ``event.type``. The decoder
is recorded in ``soc.parse.decoder``. A malformed decoder file is an error for ``soc parse`` and
the tests; the running ingest logs it once and goes on without decoders.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from soc.catalog import default_catalog
from soc.config import content_dir
from soc.errors import SocError
from soc.ingest.values import EMPTY_VALUES, as_ip, set_address, to_int, to_port, transport

from .patterns import PATTERNS, DecoderPatternError, compile_pattern

__all__ = ["PATTERNS", "Decoder", "DecoderError", "DecoderPatternError", "DecoderSet", "apply", "compile_pattern",
           "default_decoders", "load_decoders"]


_log = logging.getLogger(__name__)


class DecoderError(SocError):
    """A decoder file is malformed (missing keys, duplicate names, bad patterns)."""


_DENY = frozenset({"deny", "denied", "drop", "dropped", "reject", "rejected", "block", "blocked", "discard", "discarded"})
_ALLOW = frozenset({"allow", "allowed", "accept", "accepted", "permit", "permitted", "pass", "passed", "built"})
_INT_SUFFIXES = (".port", ".bytes", ".packets", ".pid", ".code_int", ".status_code", ".duration")


@dataclass(frozen=True)
class Decoder:
    """One decoder: where it applies, how it reads, what it sets, and its samples."""

    name: str
    file: str
    vendor: str
    product: str
    dataset: str | None
    observer_type: str | None
    programs: frozenset[str]
    prefilter: tuple[str, ...] | None
    match: tuple[tuple[re.Pattern[str], dict[str, str]], ...]
    extract: tuple[tuple[re.Pattern[str], dict[str, str]], ...]
    set: dict[str, Any]
    samples: tuple[dict[str, Any], ...]
    source: str

    def decode(self, program: str | None, text: str, fields: dict[str, Any]) -> bool:
        """Add this decoder's fields to ``fields`` when it applies to ``text``."""
        if self.programs:
            name = (program or "").lower()
            if name not in self.programs and name.split("/", 1)[0] not in self.programs:
                return False
        if self.prefilter is not None and not any(part in text for part in self.prefilter):
            return False
        for regex, names in self.match:
            m = regex.search(text)
            if m is None:
                continue
            _capture(m, names, fields)
            for more, more_names in self.extract:
                found = more.search(text)
                if found is not None:
                    _capture(found, more_names, fields)
            for key, value in self.set.items():
                fields.setdefault(key, list(value) if isinstance(value, list) else value)
            self._finish(fields)
            return True
        return False

    def _finish(self, fields: dict[str, Any]) -> None:
        proto = fields.get("network.transport")
        if isinstance(proto, str):
            fields["network.transport"] = transport(proto) or proto.lower()
        action = fields.get("event.action")
        if isinstance(action, str):
            action = fields["event.action"] = action.lower()
            if action in _DENY and "event.type" not in fields:
                fields["event.type"] = ["connection", "denied"]
                fields.setdefault("event.category", ["network"])
            elif action in _ALLOW and "event.type" not in fields:
                fields["event.type"] = ["connection", "allowed"]
                fields.setdefault("event.category", ["network"])
        if self.dataset:
            fields["event.dataset"] = self.dataset
        fields.setdefault("observer.vendor", self.vendor)
        fields.setdefault("observer.product", self.product)
        if self.observer_type:
            fields.setdefault("observer.type", self.observer_type)
        fields["soc.parse.decoder"] = self.name


def _capture(m: re.Match[str], names: dict[str, str], fields: dict[str, Any]) -> None:
    for group, target in names.items():
        value = m.group(group)
        if value is not None and value not in EMPTY_VALUES:
            _set(fields, target, value.strip())


def _set(fields: dict[str, Any], target: str, value: str) -> None:
    if target.endswith(".ip"):
        if as_ip(value) is not None:
            fields.setdefault(target, as_ip(value))
        else:
            set_address(fields, target[:-3], value)
        return
    if target.endswith(_INT_SUFFIXES):
        number = to_port(value) if target.endswith(".port") else to_int(value)
        if number is not None:
            fields.setdefault(target, number)
        return
    fields.setdefault(target, value)


@dataclass
class DecoderSet:
    """Every decoder, with an index by program so most lines try only a few."""

    decoders: list[Decoder] = field(default_factory=list)

    def __post_init__(self) -> None:
        # most lines match no decoder: the program index and one substring test per distinct
        # prefilter rule out nearly all of them before any regex runs
        self._by_program: dict[str, list[Decoder]] = {}
        self._any: list[Decoder] = []
        for decoder in self.decoders:
            if decoder.programs:
                for program in decoder.programs:
                    self._by_program.setdefault(program, []).append(decoder)
            else:
                self._any.append(decoder)
        self._unfiltered = [i for i, d in enumerate(self._any) if d.prefilter is None]
        self._by_part: dict[str, list[int]] = {}
        for index, decoder in enumerate(self._any):
            for part in decoder.prefilter or ():
                self._by_part.setdefault(part, []).append(index)
        parts = sorted(self._by_part, key=len, reverse=True)
        self._prefilters = re.compile("|".join(map(re.escape, parts))) if parts else None

    def decode(self, program: str | None, text: str, fields: dict[str, Any]) -> Decoder | None:
        """The decoder that applied to ``text`` (its fields are in ``fields``), or None."""
        if program:
            name = program.lower()
            found = self._by_program.get(name) or self._by_program.get(name.split("/", 1)[0], ())
            for decoder in found:
                if decoder.decode(program, text, fields):
                    return decoder
        # one regex pass finds the prefilters present; only their decoders are tried, in file order
        tried = set(self._unfiltered)
        if self._prefilters is not None:
            for part in set(self._prefilters.findall(text)):
                tried.update(self._by_part[part])
        for index in sorted(tried):
            decoder = self._any[index]
            if decoder.decode(program, text, fields):
                return decoder
        return None


def _decoder(doc: dict[str, Any], item: Any, file: str) -> Decoder:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise DecoderError(f"{file}: every decoder needs a name")
    name = item["name"]
    unknown = set(item) - {"name", "programs", "prefilter", "match", "extract", "set", "samples", "dataset", "product"}
    if unknown:
        raise DecoderError(f"{file}: decoder {name}: unknown keys {sorted(unknown)}")
    patterns = item.get("match")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise DecoderError(f"{file}: decoder {name}: 'match' must be a pattern or a list of patterns")
    extract = item.get("extract") or []
    if isinstance(extract, str):
        extract = [extract]
    try:
        compiled = tuple(compile_pattern(p) for p in patterns)
        more = tuple(compile_pattern(p) for p in extract)
    except DecoderPatternError as exc:
        raise DecoderError(f"{file}: decoder {name}: {exc}") from exc
    programs = item.get("programs") or []
    if isinstance(programs, str):
        programs = [programs]
    prefilter = item.get("prefilter")
    if isinstance(prefilter, str):
        prefilter = [prefilter]
    if prefilter is not None and (not prefilter or not all(isinstance(p, str) and p for p in prefilter)):
        raise DecoderError(f"{file}: decoder {name}: 'prefilter' is a text or a list of texts")
    samples = item.get("samples") or []
    if not isinstance(samples, list) or not all(isinstance(s, dict) and isinstance(s.get("line"), str) for s in samples):
        raise DecoderError(f"{file}: decoder {name}: samples must be a list of {{line, fields}}")
    dataset = item.get("dataset") or doc.get("dataset")
    if dataset is not None and dataset not in default_catalog().datasets:
        raise DecoderError(f"{file}: decoder {name}: dataset {dataset!r} is not in ingest/datasets.yml")
    return Decoder(
        name=name, file=file, vendor=str(doc.get("vendor", "")), product=str(item.get("product") or doc.get("product", "")),
        dataset=dataset, observer_type=doc.get("observer_type"),
        programs=frozenset(str(p).lower() for p in programs), prefilter=tuple(prefilter) if prefilter else None,
        match=compiled, extract=more, set=dict(item.get("set") or {}), samples=tuple(samples), source=str(doc.get("source", "")),
    )


def load_decoders(folder: Path | None = None) -> DecoderSet:
    """Every ``*.yml`` in ``folder`` (default ``ingest/decoders``), in file-name order.
    Raises :class:`DecoderError` for a malformed file."""
    base = folder or content_dir("ingest") / "decoders"
    decoders: list[Decoder] = []
    names: set[str] = set()
    for path in sorted(base.glob("*.yml")) if base.is_dir() else []:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DecoderError(f"{path.name}: not valid YAML: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("decoders"), list):
            raise DecoderError(f"{path.name}: a decoder file holds a 'decoders' list")
        if not doc.get("source"):
            raise DecoderError(f"{path.name}: say which vendor document the decoders follow ('source')")
        for item in doc["decoders"]:
            decoder = _decoder(doc, item, path.name)
            if decoder.name in names:
                raise DecoderError(f"{path.name}: decoder name {decoder.name!r} is used twice")
            names.add(decoder.name)
            decoders.append(decoder)
    return DecoderSet(decoders)


@cache
def default_decoders() -> DecoderSet:
    """The decoders of ``ingest/decoders`` (loaded once per process). Raises
    :class:`DecoderError` for a malformed file (``soc parse`` and the tests say which)."""
    return load_decoders()


_INGEST_DECODERS: list[DecoderSet] = []


def _ingest_decoders() -> DecoderSet:
    """The decoders the ingest uses: a broken decoder file is logged once and the ingest goes
    on without decoders (lines still stored, the generic extraction still applies) rather
    than failing every line."""
    if not _INGEST_DECODERS:
        try:
            found = default_decoders()
        except DecoderError as exc:
            _log.error("device decoders not used: %s", exc)
            found = DecoderSet([])
        _INGEST_DECODERS.append(found)
    return _INGEST_DECODERS[0]


def apply(fields: dict[str, Any], line: str, decoders: DecoderSet | None = None) -> Decoder | None:
    """Offer an unclaimed event to the decoders: its ``message`` (or ``line``) and program."""
    chosen = decoders if decoders is not None else _ingest_decoders()
    if not chosen.decoders:
        return None
    text = fields.get("message")
    return chosen.decode(fields.get("process.name"), text if isinstance(text, str) and text else line, fields)
