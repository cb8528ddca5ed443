"""Transport security settings: TLS (and mutual TLS) of the syslog listener, TLS and SASL of the
Kafka clients. Part of the settings (:mod:`soc.config`): ``syslog: {tls: ...}`` and the
``kafka:`` section's ``security_protocol``, ``ssl_*`` and ``sasl_*`` keys.

Files named here (certificates, keys, CA bundles) are checked when the settings are read: each
must exist and be readable, so a typo stops the process at start-up with the setting's name
rather than at the first connection. Secrets (a key's password, the SASL password) follow the
project's rule (:mod:`soc.secrets`): ``..._file``, else ``..._env``, else inline with a warning;
they are read when a listener or a client is built, never shown or logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator

from soc.errors import SocError
from soc.net import is_loopback_host
from soc.secrets import resolve_secret

__all__ = ["KafkaSecurityError", "KafkaSecuritySettings", "SyslogTlsSettings", "check_readable_file",
           "check_sasl_transport"]

log = logging.getLogger("soc.config")
_warned: set[str] = set()

#: what a syslog TLS listener does with a valid client certificate no agency lists
UNMAPPED_CERTIFICATE = ("refuse", "unknown-agency")


class KafkaSecurityError(SocError, ValueError):
    """The Kafka security settings would send a secret in clear text, or are incomplete."""


def _warn_once(message: str, *args: object) -> None:
    key = message % args
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def check_readable_file(path: Path | None, what: str) -> Path | None:
    """``path`` when it is a readable file; ``ValueError`` naming ``what`` otherwise."""
    if path is None:
        return None
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"{what}: {path} " + ("is not a file" if path.exists() else "does not exist"))
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what}: {path} is not readable by this user")
    return path


class SyslogTlsSettings(BaseModel):
    """``syslog: {tls: ...}``: syslog over TLS (RFC 5425, octet-counting framing) on its own port,
    enabled by ``certificate``. With ``client_ca`` it is mutual TLS: a client must present a
    certificate issued by that CA (unless ``require_client_certificate: false``), and with
    ``agency_from_certificate`` the sending agency is the one whose ``certificate_names``
    (``ingest/agencies.yml``) list the certificate's common name or one of its DNS names."""

    listen: str = Field("0.0.0.0:6514", description="TLS listen address (used when certificate is set)")
    certificate: Path | None = Field(None, description="the server certificate chain (PEM); setting it enables TLS")
    private_key: Path | None = Field(None, description="its private key (PEM; default: in the certificate file)")
    key_password: SecretStr | None = Field(None, description="the key password inline (logs a warning; prefer "
                                           "key_password_file or key_password_env)")
    key_password_env: str | None = Field(None, description="environment variable holding the key password")
    key_password_file: Path | None = Field(None, description="file holding the key password")
    client_ca: Path | None = Field(None, description="CA certificates (PEM) client certificates must chain "
                                   "to; setting it enables mutual TLS")
    require_client_certificate: bool = Field(True, description="mutual TLS: refuse clients without a "
                                             "certificate (false: they are attributed by address)")
    agency_from_certificate: bool = Field(True, description="mutual TLS: the agency is the one whose "
                                          "certificate_names list the client certificate's CN or a DNS name")
    unmapped_certificate: Literal["refuse", "unknown-agency"] = Field(
        "refuse", description="a valid client certificate no agency lists: refuse the connection, or store "
                              "its messages as the unknown agency's")
    handshake_timeout_seconds: float = Field(10.0, gt=0, description="a client that has not finished the TLS "
                                             "handshake by then is disconnected")

    @field_validator("certificate", "private_key", "client_ca", "key_password_file")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return check_readable_file(value, info.field_name or "file")

    @model_validator(mode="after")
    def _complete(self) -> SyslogTlsSettings:
        if self.certificate is None and (self.private_key or self.client_ca):
            raise ValueError("private_key and client_ca need certificate (the server certificate that "
                             "enables TLS)")
        return self

    @property
    def enabled(self) -> bool:
        return self.certificate is not None

    def private_key_password(self, what: str = "syslog.tls.key_password") -> str | None:
        """The key password (``key_password_file``, else ``_env``, else inline); ``None`` when none
        is configured. Raises :class:`soc.secrets.SecretError` when the file or variable is missing."""
        return resolve_secret(self.key_password, self.key_password_env, self.key_password_file, what)

    def inline_secrets(self, where: str) -> list[tuple[str, str, str]]:
        """``(setting, file setting, env setting)`` of the key password when written inline."""
        return [(f"{where}.key_password", f"{where}.key_password_file", f"{where}.key_password_env")] \
            if self.key_password else []


def check_sasl_transport(security_protocol: str, sasl_mechanism: str | None, bootstrap: str,
                         allow_plaintext_sasl: bool = False) -> None:
    """Refuse SASL PLAIN without TLS (the password would cross the network in clear text) to any
    broker that is not this machine, unless ``allow_plaintext_sasl``. Raises
    :class:`KafkaSecurityError`."""
    if security_protocol != "SASL_PLAINTEXT" or allow_plaintext_sasl:
        return
    remote = [h for h in (part.strip().rpartition(":")[0] or part.strip() for part in bootstrap.split(","))
              if h and not is_loopback_host(h)]
    if not remote:
        return
    if sasl_mechanism == "PLAIN":
        raise KafkaSecurityError(
            f"kafka: SASL PLAIN over SASL_PLAINTEXT to {', '.join(remote)} would send the password in clear "
            "text: use security_protocol SASL_SSL (or SCRAM), or set allow_plaintext_sasl: true if the "
            "network is trusted")
    _warn_once("kafka: SASL_PLAINTEXT to %s: the password is not sent (%s) but every record travels "
                "unencrypted; prefer SASL_SSL", ", ".join(remote), sasl_mechanism)


class KafkaSecuritySettings(BaseModel):
    """The security keys of the ``kafka:`` section, shared by every Kafka client of soc (workers,
    the relay, the ``kafka`` source, ``soc kafka status`` and ``dlq``): TLS to the brokers
    (``SSL``, ``SASL_SSL``), client certificates, SASL authentication."""

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS)")
    ssl_cafile: Path | None = Field(None, description="CA certificates (PEM) the brokers' certificates must "
                                    "chain to (default: the system CAs)")
    ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for brokers that require one")
    ssl_keyfile: Path | None = Field(None, description="its private key (PEM; default: in ssl_certfile)")
    ssl_key_password: SecretStr | None = Field(None, description="the key password inline (logs a warning; "
                                               "prefer ssl_key_password_file or ssl_key_password_env)")
    ssl_key_password_env: str | None = Field(None, description="environment variable holding the key password")
    ssl_key_password_file: Path | None = Field(None, description="file holding the key password")
    ssl_check_hostname: bool = Field(True, description="the broker certificate must name the host connected to")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    sasl_username: str | None = Field(None, description="SASL_*: the user")
    sasl_password: SecretStr | None = Field(None, description="the SASL password inline (logs a warning; "
                                            "prefer sasl_password_file or sasl_password_env)")
    sasl_password_env: str | None = Field(None, description="environment variable holding the SASL password")
    sasl_password_file: Path | None = Field(None, description="file holding the SASL password")
    allow_plaintext_sasl: bool = Field(False, description="allow SASL PLAIN without TLS to a broker that is "
                                       "not this machine (the password travels in clear text)")

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password_file", "sasl_password_file")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return check_readable_file(value, info.field_name or "file")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        sasl = self.security_protocol.startswith("SASL_")
        ssl_set = [n for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, n)]
        if ssl_set and not tls:
            raise ValueError(f"{', '.join(ssl_set)} set but security_protocol is {self.security_protocol}: the "
                             "connection would not use TLS (use SSL or SASL_SSL)")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("ssl_keyfile needs ssl_certfile (the client certificate)")
        if sasl:
            missing = [n for n in ("sasl_mechanism", "sasl_username") if not getattr(self, n)]
            if not (self.sasl_password or self.sasl_password_env or self.sasl_password_file):
                missing.append("sasl_password_file (or sasl_password_env)")
            if missing:
                raise ValueError(f"security_protocol {self.security_protocol} needs {', '.join(missing)}")
        elif self.sasl_mechanism or self.sasl_username:
            raise ValueError(f"sasl_mechanism/sasl_username set but security_protocol is {self.security_protocol}"
                             " (use SASL_SSL)")
        bootstrap = getattr(self, "bootstrap", None)  # the kafka: section's own brokers
        if isinstance(bootstrap, str) and sasl:
            check_sasl_transport(self.security_protocol, self.sasl_mechanism, bootstrap, self.allow_plaintext_sasl)
        if not self.ssl_check_hostname and tls:
            _warn_once("kafka.ssl_check_hostname is false: any certificate of the CA is accepted for any broker")
        return self

    def ssl_key_secret(self) -> str | None:
        """The client key's password, or ``None`` (raises :class:`soc.secrets.SecretError` when the
        configured file or variable is missing)."""
        return resolve_secret(self.ssl_key_password, self.ssl_key_password_env, self.ssl_key_password_file,
                              "kafka.ssl_key_password")

    def sasl_secret(self) -> str | None:
        """The SASL password, or ``None`` (raises :class:`soc.secrets.SecretError` like above)."""
        return resolve_secret(self.sasl_password, self.sasl_password_env, self.sasl_password_file,
                              "kafka.sasl_password")

    def inline_secrets(self, where: str = "kafka") -> list[tuple[str, str, str]]:
        """``(setting, file setting, env setting)`` of each secret written inline."""
        return [(f"{where}.{name}", f"{where}.{name}_file", f"{where}.{name}_env")
                for name in ("ssl_key_password", "sasl_password") if getattr(self, name)]
