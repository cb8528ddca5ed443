"""Identity settings: the ``auth:`` section of the settings (:mod:`soc.config`), used by
:mod:`soc.identity` -- password policy and argon2id cost, session timeouts and cookie name,
login lockout and per-address throttling, API token lifetimes."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["AuthSettings"]


class AuthSettings(BaseModel):
    """``auth:`` (``SOC_AUTH__...``): users, passwords, sessions, login throttling, API tokens."""

    password_min_length: int = Field(12, ge=8, le=128, description="shortest password accepted")
    argon2_time_cost: int = Field(3, ge=1, description="argon2id passes; hashes made otherwise are redone at login")
    argon2_memory_kib: int = Field(65536, ge=19456, description="argon2id memory per hash, KiB (OWASP: 19 MiB+)")
    argon2_parallelism: int = Field(4, ge=1, le=64, description="argon2id lanes")
    session_idle_minutes: float = Field(30.0, gt=0, description="a session unused this long ends")
    session_absolute_hours: float = Field(12.0, gt=0, description="a session ends this long after login")
    session_cookie: str = Field("soc_session", pattern=r"^[A-Za-z0-9_-]+$", description="session cookie name")
    login_max_failures: int = Field(5, ge=1, description="failed logins of one name in the window that lock it")
    login_window_minutes: float = Field(15.0, gt=0, description="window in which failed logins of a name count")
    lockout_minutes: float = Field(15.0, gt=0, description="how long a locked name stays locked")
    address_max_failures: int = Field(20, ge=1, description="failed logins from one address (IPv6: /64) per window")
    address_window_minutes: float = Field(15.0, gt=0, description="sliding window of the per-address throttle")
    token_default_days: int = Field(90, ge=1, description="API token lifetime when none is given")
    token_max_days: int = Field(366, ge=1, description="longest API token lifetime")
