"""HTTP API settings: the ``api:`` section of the settings (:mod:`soc.config`), used by ``soc
serve`` and ``soc run`` (:mod:`soc.web.serve`) -- where the API listens, its TLS certificate and
key, and which proxies may tell the client's address.

**Bind rules.** The API listens on ``127.0.0.1`` unless told otherwise. On any other address it
needs ``certificate`` and ``private_key`` (it then serves HTTPS only, TLS 1.2 or later), or an
explicit ``--insecure`` on the command line (plain HTTP, announced loudly at start-up; for a TLS
proxy on the same network segment); otherwise it refuses to start and says what to do
(:func:`soc.web.serve.check_bind`).

Files named here are checked when the settings are read (they must exist and be readable); the
key's password follows the project's rule for secrets (``key_password_file``, else
``key_password_env``; never inline, never shown or logged).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from soc.config_security import check_readable_file
from soc.secrets import resolve_secret

__all__ = ["ApiSettings"]


class ApiSettings(BaseModel):
    """``api:`` (``SOC_API__...``): the HTTP API of ``soc serve`` and ``soc run``."""

    enabled: bool = Field(True, description="soc run serves the API too (soc serve always does)")
    host: str = Field("127.0.0.1", min_length=1, description="address the API binds; any but a loopback "
                      "address needs certificate and private_key (or --insecure)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the API (0: any free port)")
    certificate: Path | None = Field(None, description="the server certificate chain (PEM); setting it serves "
                                     "HTTPS (TLS 1.2+)")
    private_key: Path | None = Field(None, description="its private key (PEM; default: in the certificate file)")
    key_password_env: str | None = Field(None, description="environment variable holding the key password")
    key_password_file: Path | None = Field(None, description="file holding the key password")
    trusted_proxies: list[str] = Field(default_factory=list, description="addresses of reverse proxies whose "
                                       "X-Forwarded-For/-Proto are believed (default: none; the client "
                                       "address is the peer's, which login throttling counts)")
    purge_minutes: float = Field(15.0, gt=0, description="how often expired sessions and spent login "
                                 "counters are deleted")

    @field_validator("certificate", "private_key", "key_password_file")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return check_readable_file(value, info.field_name or "file")

    @model_validator(mode="after")
    def _complete(self) -> ApiSettings:
        if self.certificate is None and (self.private_key or self.key_password_env or self.key_password_file):
            raise ValueError("private_key and key_password_* need certificate (the server certificate that "
                             "enables HTTPS)")
        return self

    @property
    def tls(self) -> bool:
        """Whether the API is served over HTTPS (a certificate is configured)."""
        return self.certificate is not None

    def private_key_password(self) -> str | None:
        """The key password (``key_password_file``, else ``key_password_env``); ``None`` when none is
        configured. Raises :class:`soc.secrets.SecretError` when the file or variable is missing."""
        return resolve_secret(None, self.key_password_env, self.key_password_file, "api.key_password")
