"""Syslog over TLS (RFC 5425) and mutual TLS: the server context, who may send, and which agency
a client certificate speaks for.

A TLS listener (:class:`TlsEndpoint`, served by :class:`~soc.ingest.sources.syslog.SyslogListener`
on its own port, 6514 by default) accepts TLS 1.2 or later with forward-secret AEAD ciphers only.
With a client CA it is **mutual TLS**: the client's certificate must chain to that CA and be valid
now; a client without one (when it is required), with one of another CA, or with an expired one is
refused during the handshake -- logged with its address and the reason, counted in
``ListenerCounters.refused``, and nothing it sends is read.

Under mutual TLS with ``agency_from_certificate`` the **agency comes from the certificate**: its
subject common name and DNS names are looked up in the agencies' ``certificate_names``
(:meth:`soc.agencies.AgencyTree.by_certificate`); every message of the connection carries that
agency (:attr:`soc.ingest.Record.agency`), which overrides the source's agency and the sender
address (an address can be spoofed or shared, a certificate's key cannot be). A valid
certificate no agency lists is refused (``unmapped_certificate: refuse``, the default) or stored
as the ``unknown`` agency's (``unknown-agency``). Without a client CA it is plain TLS: the
connection is encrypted and messages are attributed like TCP ones.

:func:`tls_endpoint` builds the endpoint of a syslog source from its definition and the
``syslog: {tls: ...}`` settings; :class:`soc.ingest.sources.kinds.CertificateStages` are the
stages of syslog sources, one pipeline per certified agency.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soc.ingest.sources.base import SourceError

if TYPE_CHECKING:
    from soc.agencies import AgencyTree
    from soc.config_security import SyslogTlsSettings
    from soc.ingest.sourcedefs import SourceDefinition

__all__ = ["Admission", "TlsEndpoint", "certificate_names", "handshake_refusal", "server_context", "tls_endpoint"]

DEFAULT_TLS_PORT = 6514
#: TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305 only;
#: TLS 1.3 suites are all modern and keep OpenSSL's defaults
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
#: OpenSSL verification codes (X509_V_ERR_*) and what they mean to an operator
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNTRUSTED = {2, 18, 19, 20, 21}


def server_context(certificate: str | Path, private_key: str | Path | None = None, *, password: str | None = None,
                   client_ca: str | Path | None = None, require_client_certificate: bool = True) -> ssl.SSLContext:
    """The server context of a syslog TLS listener: TLS 1.2 or later, modern ciphers; with
    ``client_ca`` client certificates are verified against that CA only (never the system CAs)
    and required unless ``require_client_certificate`` is false. ``ssl.SSLError``/``OSError``
    when the certificate, key or CA cannot be loaded."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca) if client_ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(str(certificate), str(private_key) if private_key else None, password=password)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def certificate_names(peercert: dict[str, Any] | None) -> list[str]:
    """The subject common name(s) and DNS subject alternative names of a verified peer
    certificate (``SSLObject.getpeercert()``), in that order."""
    if not peercert:
        return []
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    names += [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    return list(dict.fromkeys(names))


def handshake_refusal(error: BaseException) -> tuple[str, str]:
    """``(counter key, reason)`` of a failed TLS handshake, for the log and the counters."""
    if isinstance(error, ssl.SSLCertVerificationError):
        code, message = error.verify_code, error.verify_message or str(error)
        if code == _EXPIRED:
            return "expired_certificate", f"client certificate expired ({message})"
        if code == _NOT_YET_VALID:
            return "invalid_certificate", f"client certificate not yet valid ({message})"
        if code in _UNTRUSTED:
            return "untrusted_certificate", f"client certificate not issued by the client CA ({message})"
        return "invalid_certificate", f"client certificate rejected ({message})"
    if isinstance(error, ssl.SSLError):
        reason = error.reason or ""
        if reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED"):
            return "no_certificate", "no client certificate (this listener requires one)"
        return "handshake_failed", f"TLS handshake failed ({reason or error})"
    if isinstance(error, TimeoutError) or (isinstance(error, ConnectionAbortedError) and "taking longer" in str(error)):
        return "handshake_timeout", "TLS handshake not finished in time"
    return "handshake_failed", f"connection lost during the TLS handshake ({type(error).__name__}: {error})"


@dataclass(frozen=True, slots=True)
class Admission:
    """What a finished handshake decided: the certified agency (``None``: attributed like TCP),
    the certificate's first name (for ``origin``), or why the client is refused."""

    agency: str | None = None
    name: str | None = None
    refused: tuple[str, str] | None = None


@dataclass(frozen=True)
class TlsEndpoint:
    """A TLS listener: its address, server context and admission policy (module docstring).
    ``agency_of`` maps certificate names to an agency id (``None``: the agency is not taken
    from certificates)."""

    address: str
    context: ssl.SSLContext
    mutual: bool = False
    agency_of: Callable[[list[str]], str | None] | None = None
    unmapped: str = "refuse"
    unknown_agency: str = "unknown"
    handshake_timeout: float = 10.0

    @property
    def kind(self) -> str:
        """``mTLS`` or ``TLS``, for banners."""
        return "mTLS" if self.mutual else "TLS"

    def admit(self, peercert: dict[str, Any] | None) -> Admission:
        """Admit a client whose handshake succeeded (``peercert``: its verified certificate, or
        ``None``/empty when it presented none or none was asked for)."""
        names = certificate_names(peercert)
        first = names[0] if names else None
        if not self.mutual or self.agency_of is None or not names:
            return Admission(None, first)
        agency = self.agency_of(names)
        if agency is not None:
            return Admission(agency, first)
        if self.unmapped == "unknown-agency":
            return Admission(self.unknown_agency, first)
        return Admission(None, first, ("no_agency", f"client certificate {', '.join(names)} is listed by no agency "
                                                    "(certificate_names in ingest/agencies.yml)"))


def _pick(definition: object, field: str, default: Any) -> Any:
    value = getattr(definition, field, None)
    return default if value is None else value


def tls_endpoint(definition: SourceDefinition, settings: SyslogTlsSettings, agencies: AgencyTree) -> TlsEndpoint | None:
    """The TLS listener of a syslog source: the definition's ``listen_tls`` and ``tls_*`` fields,
    each defaulting to the ``syslog: {tls: ...}`` settings; ``None`` when neither enables TLS
    (``listen_tls: ""`` disables it for one source). :class:`SourceError` when the certificate,
    key or CA cannot be loaded (a wrong key password, a key that does not match)."""
    listen = definition.listen_tls
    certificate = definition.tls_certificate or settings.certificate
    if listen == "" or (listen is None and not settings.enabled):
        return None
    if certificate is None:
        raise SourceError(f"source {definition.name!r}: listen_tls needs a server certificate "
                          "(tls_certificate, or syslog.tls.certificate in the settings)")
    own_key = definition.tls_certificate is not None
    key = definition.tls_private_key if own_key else settings.private_key
    password = definition.tls_key_secret() if own_key else settings.private_key_password()
    client_ca = _pick(definition, "tls_client_ca", settings.client_ca)
    require = _pick(definition, "tls_require_client_certificate", settings.require_client_certificate)
    try:
        context = server_context(certificate, key, password=password, client_ca=client_ca,
                                 require_client_certificate=require)
    except (ssl.SSLError, OSError) as error:
        raise SourceError(f"source {definition.name!r}: cannot load the TLS certificate {certificate}"
                          f"{f' and key {key}' if key else ''}{f' or client CA {client_ca}' if client_ca else ''}: "
                          f"{error} (a wrong key password, or a key of another certificate?)") from error
    from_certificate = _pick(definition, "tls_agency_from_certificate", settings.agency_from_certificate)

    def agency_of(names: list[str]) -> str | None:
        found = agencies.by_certificate(names)
        return found.id if found is not None else None

    return TlsEndpoint(
        address=listen or settings.listen, context=context, mutual=client_ca is not None,
        agency_of=agency_of if (client_ca is not None and from_certificate) else None,
        unmapped=_pick(definition, "tls_unmapped_certificate", settings.unmapped_certificate),
        unknown_agency=agencies.unknown.id, handshake_timeout=settings.handshake_timeout_seconds)
