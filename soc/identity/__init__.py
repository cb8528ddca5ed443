"""Identities: who may log in and how they prove it (issue #10, "Trust", item 1).

Local users with argon2id password hashes (:mod:`.passwords`, :mod:`.users`), server-side
sessions for the web console with idle and absolute timeouts and a CSRF token
(:mod:`.sessions`), login throttling per user name and per source address (:mod:`.throttle`),
API tokens that carry at most their user's rights narrowed by scopes (:mod:`.tokens`), the
login itself behind a small :class:`~soc.identity.login.IdentityProvider` seam so an external
provider (OIDC) can be added later (:mod:`.login`), the first-run ``admin``
(:mod:`.bootstrap`) and the facade the composition root and the front doors use
(:class:`soc.identity.service.Identity`). Every outcome that matters to an auditor goes to an
:data:`~soc.identity.hooks.AuditHook` (:mod:`.hooks`).

Everything is stored through the store protocol only (collections ``users``, ``sessions``,
``api_tokens``, ``login_attempts``), so it works the same on SQLite and on a search engine.
No secret is stored as it is: passwords as argon2id hashes, session ids and API tokens as
SHA-256 digests. Code that compares with the current time takes a :data:`soc.clock.Clock`.

Import the modules; the package itself exports nothing.
"""

__all__: list[str] = []
