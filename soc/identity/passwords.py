"""Password hashing (argon2id), the password policy and one-time passwords.

Hashes are argon2id in the PHC string format (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``),
so each stored hash names the parameters it was made with: when the settings change
(``auth.argon2_*``), :meth:`Passwords.needs_rehash` says so and the login stores a new hash.
Verification is argon2's, which compares in constant time. :meth:`Passwords.dummy_verify`
spends the same time for a user name that does not exist, so the answer time does not tell
whether a user exists.
"""

from __future__ import annotations

import secrets
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from soc.config import AuthSettings
from soc.identity.model import PasswordRejected

__all__ = ["MAX_PASSWORD_LENGTH", "Passwords", "generate_password"]

#: longer passwords are refused (hashing is bounded work)
MAX_PASSWORD_LENGTH = 1024


def generate_password() -> str:
    """A strong one-time password: 144 random bits, 24 URL-safe characters."""
    return secrets.token_urlsafe(18)


class Passwords:
    """argon2id with the configured cost, and the policy (``min_length``, not the user name)."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4,
                 min_length: int = 12) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                     type=Type.ID)
        self.min_length = min_length

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Passwords:
        return cls(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
                   parallelism=settings.argon2_parallelism, min_length=settings.password_min_length)

    def check(self, password: str, name: str) -> None:
        """Raise :class:`PasswordRejected` when ``password`` may not be the password of ``name``."""
        if len(password) < self.min_length:
            raise PasswordRejected(f"the password is too short: use at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise PasswordRejected(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
        if password.strip().casefold() == name.strip().casefold():
            raise PasswordRejected("the password may not be the user name")
        if not password.strip():
            raise PasswordRejected("the password may not be blank")

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the stored hash (constant-time; a damaged hash: no)."""
        if not stored or len(password) > MAX_PASSWORD_LENGTH:
            self.dummy_verify(password[:MAX_PASSWORD_LENGTH])
            return False
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the configured ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True

    @cached_property
    def _dummy(self) -> str:
        return self.hasher.hash(secrets.token_urlsafe(16))

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a verification (for a user name that does not exist)."""
        try:
            self.hasher.verify(self._dummy, password[:MAX_PASSWORD_LENGTH])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass
