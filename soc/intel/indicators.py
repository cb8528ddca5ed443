"""Indicators of compromise: their types, the one normal form of each value, and their ids.

Feeds write the same thing in many ways (``EVIL.example.``, ``hxxp://``-free URLs with upper-case
hosts, hashes in capitals, ``10.0.0.1/32``). Everything that enters the store goes through
:func:`normalize`, and so does every value read from an event before it is looked up, so that
equality is the only comparison the matcher needs. The id of an indicator is a digest of its type
and normal value (:func:`indicator_id`): the same indicator from two feeds is one document with
both feeds listed (dedup across feeds).

Types: ``ipv4``, ``ipv6`` (an address, or a network in CIDR notation: ``cidr`` is true),
``domain``, ``url``, ``md5``, ``sha1``, ``sha256``, ``email``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from soc.errors import SocError

__all__ = ["HASH_TYPES", "TLP_LEVELS", "TYPES", "IndicatorError", "Observable", "guess_type", "indicator_id",
           "normalize"]

TYPES = ("ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256", "email")
HASH_TYPES = {"md5": 32, "sha1": 40, "sha256": 64}
#: TLP 2.0, least to most restricted
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")

_HEX = re.compile(r"^[0-9a-f]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


class IndicatorError(SocError, ValueError):
    """A value that is no indicator of the type given (or of any type, when guessing)."""


@dataclass(frozen=True, slots=True)
class Observable:
    """One indicator value in normal form: what a feed gives and what the matcher compares."""

    type: str
    value: str
    cidr: bool = False
    #: the STIX pattern it came from, when it came from one
    pattern: str | None = field(default=None, compare=False)


def _fold_domain(text: str) -> str:
    text = text.strip().rstrip(".").lower()
    try:
        return text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        return text


def normalize(type_: str, value: Any) -> Observable:
    """The normal form of ``value`` as an indicator of ``type_`` (:data:`TYPES`, also the STIX
    names ``ipv4-addr``, ``domain-name``, ``email-addr``, ``SHA-256`` ...); :class:`IndicatorError`
    when it is not one."""
    kind = _TYPE_ALIASES.get(str(type_).strip().lower(), str(type_).strip().lower())
    text = str(value).strip() if value is not None else ""
    if not text:
        raise IndicatorError(f"{type_}: empty value")
    if kind in ("ipv4", "ipv6", "ip"):
        try:
            if "/" in text:
                net = ipaddress.ip_network(text, strict=False)
                if net.num_addresses == 1:
                    return Observable(f"ipv{net.version}", str(net.network_address))
                return Observable(f"ipv{net.version}", str(net), cidr=True)
            address = ipaddress.ip_address(text)
        except ValueError:
            raise IndicatorError(f"{type_}: {text[:80]!r} is no IP address or network") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return Observable(f"ipv{address.version}", str(address))
    if kind == "domain":
        domain = _fold_domain(text)
        if not _DOMAIN.match(domain):
            raise IndicatorError(f"domain: {text[:80]!r} is no domain name")
        return Observable("domain", domain)
    if kind == "url":
        return Observable("url", normalize_url(text))
    if kind in HASH_TYPES:
        digest = text.lower()
        if len(digest) != HASH_TYPES[kind] or not _HEX.match(digest):
            raise IndicatorError(f"{kind}: {text[:80]!r} is not {HASH_TYPES[kind]} hex digits")
        return Observable(kind, digest)
    if kind == "email":
        address = text.lower().strip("<>")
        if not _EMAIL.match(address):
            raise IndicatorError(f"email: {text[:80]!r} is no e-mail address")
        return Observable("email", address)
    raise IndicatorError(f"unknown indicator type {type_!r}: use one of {', '.join(TYPES)}")


def normalize_url(text: str) -> str:
    """A URL with its scheme and host in lower case, the default port and a lone trailing ``/``
    left out; the path and query as given (they are case-sensitive)."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        raise IndicatorError(f"url: {text[:80]!r} is no URL") from None
    if not parts.scheme or not parts.netloc:
        raise IndicatorError(f"url: {text[:80]!r} is no absolute URL")
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def guess_type(value: str) -> Observable:
    """The indicator a bare value is (plain lists carry no types): an address or network, a
    hash by its length, an e-mail address, a URL, else a domain."""
    text = value.strip()
    if not text:
        raise IndicatorError("empty value")
    for kind in ("ip", "email", "url"):
        if kind == "email" and "@" not in text or kind == "url" and "://" not in text:
            continue
        try:
            return normalize(kind, text)
        except IndicatorError:
            if kind != "ip":
                raise
    lowered = text.lower()
    if _HEX.match(lowered):
        for kind, length in HASH_TYPES.items():
            if len(lowered) == length:
                return Observable(kind, lowered)
    return normalize("domain", text)


def indicator_id(type_: str, value: str) -> str:
    """The document id of an indicator (type and normal value): one per indicator, all feeds."""
    return hashlib.blake2b(f"indicator\x1f{type_}\x1f{value}".encode(), digest_size=16).hexdigest()


_TYPE_ALIASES = {
    "ipv4-addr": "ipv4", "ipv6-addr": "ipv6", "ip-src": "ip", "ip-dst": "ip", "ip-src|port": "ip", "ip-dst|port": "ip",
    "ip": "ip", "domain-name": "domain", "hostname": "domain", "domain": "domain", "email-addr": "email",
    "email-src": "email", "email": "email", "email-message:from_ref": "email", "sha-256": "sha256", "sha-1": "sha1",
    "md5": "md5", "sha1": "sha1", "sha256": "sha256", "url": "url", "uri": "url", "link": "url",
}
