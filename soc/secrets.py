"""Secrets: where they come from, and keeping them out of what is shown or logged.

Every secret setting (a store password, the SMTP password, a recipient's bearer token, the
signing key's password) can be given three ways, read in this order:

* ``..._file``: a file holding it (Docker/Kubernetes secrets, ``/etc/soc/secrets/...``,
  mode 0600); one trailing newline is ignored;
* ``..._env``: the *name* of an environment variable holding it;
* inline in the settings -- which works, but logs a warning once (:func:`warn_inline`).

:func:`resolve_secret` does the reading with clear errors (:class:`SecretError`).

Anything that shows or logs a URL passes it through :func:`mask_url` (``scheme://user:***@host``
and password-like query parameters as ``***``); free text that may contain URLs (exception
messages) through :func:`mask_urls_in`. :class:`RedactingFilter` is the last line of defence on
the log handlers: it masks such URLs and every known secret value in each log record.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr

from soc.errors import SocError

log = logging.getLogger("soc.secrets")

MASK = "***"
#: query parameters whose value is masked (matched anywhere in the lower-cased name)
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|api_?key|access_?key|auth|credential|signature")
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_warned: set[str] = set()


class SecretError(SocError, ValueError):
    """A secret could not be read (file missing or unreadable, environment variable unset)."""


def resolve_secret(inline: str | SecretStr | None, env: str | None, file: str | Path | None,
                   what: str) -> str | None:
    """The secret named ``what`` (e.g. ``"smtp.password"``, used in errors) from ``file``, else
    the environment variable named ``env``, else ``inline``; ``None`` when none is configured.

    A file or variable that is configured must exist and be non-empty: a typo is an error,
    never a silently missing password."""
    if file:
        path = Path(file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretError(f"{what}: the secret file {path} does not exist") from None
        except IsADirectoryError:
            raise SecretError(f"{what}: the secret file {path} is a directory") from None
        except OSError as error:
            raise SecretError(f"{what}: cannot read the secret file {path} ({error.strerror})") from None
        except UnicodeDecodeError:
            raise SecretError(f"{what}: the secret file {path} is not UTF-8 text") from None
        value = text[:-1] if text.endswith("\n") else text
        value = value[:-1] if value.endswith("\r") else value
        if not value:
            raise SecretError(f"{what}: the secret file {path} is empty")
        return value
    if env:
        value = os.environ.get(env)
        if not value:
            raise SecretError(f"{what}: the environment variable {env} is "
                              + ("empty" if value == "" else "not set"))
        return value
    if isinstance(inline, SecretStr):
        return inline.get_secret_value() or None
    return inline or None


def warn_inline(name: str, file_field: str, env_field: str) -> None:
    """Log once per process that the secret ``name`` is written in the settings in clear text."""
    if name in _warned:
        return
    _warned.add(name)
    log.warning("%s is written in the settings (soc.yml or a SOC_ variable) in clear text; anyone who can "
                "read them can read it: put it in a file named by %s or an environment variable named by %s "
                "instead", name, file_field, env_field)


def warn_password_option(option: str, url: str) -> None:
    """Log once that a URL given as a command-line ``option`` carries a password (``ps`` and the
    shell history show it to others)."""
    if url_password(url) is None or option in _warned:
        return
    _warned.add(option)
    log.warning("the URL given as %s carries a password, which other users of this machine can see (ps, "
                "shell history): give only the user (scheme://USER@host) and the password in a file named "
                "by store_password_file or an environment variable named by store_password_env", option)


# -- URLs ----------------------------------------------------------------------------------------
def _split_userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, rest after '@')`` of a URL with credentials, else ``None``.

    Tolerates what a hand-written URL may hold: several hosts, an IPv6 host, and ``/``, ``?``,
    ``#`` or ``@`` unescaped in a password (the last ``@`` before the query ends the userinfo)."""
    head, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head):
        return None
    stops = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    at = rest.rfind("@", 0, min(stops) if stops else len(rest))
    if at < 0:
        at = rest.rfind("@")
        if at < 0:
            return None
        if "/" in rest[:at]:  # a path before the '@': userinfo only if it starts as user:password
            first = rest[:rest.find("/")]
            user, colon, after = first.partition(":")
            if not colon or first.startswith("[") or after.isdigit():
                return None
    return head + sep, rest[:at], rest[at + 1:]


def is_secret_name(name: str) -> bool:
    """Whether a parameter or header name looks like it holds a secret (password, token, api_key,
    Authorization...)."""
    return bool(_SECRET_PARAM.search(name.lower()))


def _mask_query(url: str) -> str:
    base, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_, fragment = query.partition("#")
    parts = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        parts.append(f"{name}={MASK}" if eq and value and is_secret_name(name) else item)
    return base + sep + "&".join(parts) + hash_ + fragment


def mask_url(url: str) -> str:
    """``url`` fit to show or log: ``scheme://user:***@host:port/...``, password-like query
    parameters (``password``, ``token``, ``api_key``...) as ``***``. A URL without credentials
    (and any text that is no URL) comes back unchanged."""
    split = _split_userinfo(url)
    if split is not None:
        scheme, userinfo, rest = split
        user, colon, _password = userinfo.partition(":")
        return f"{scheme}{user}{':' + MASK if colon else ''}@{_mask_query(rest)}"
    return _mask_query(url)


def mask_urls_in(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it masked by :func:`mask_url`."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group()), text)


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo (still percent-encoded), or ``None``."""
    split = _split_userinfo(url)
    if split is None:
        return None
    _user, colon, password = split[1].partition(":")
    return password if colon else None


def url_username(url: str) -> str | None:
    """The user named in a URL's userinfo (still percent-encoded), or ``None``."""
    split = _split_userinfo(url)
    return split[1].partition(":")[0] or None if split is not None else None


def url_with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) inserted into its userinfo, at connect time:
    ``opensearch+https://soc@es1:9200`` -> ``opensearch+https://soc:PASSWORD@es1:9200``.

    The URL must name the user and carry no password of its own."""
    split = _split_userinfo(url)
    if split is None or not split[1]:
        raise SecretError(f"a store password is configured but the store URL {mask_url(url)} names no "
                          "user: write it as scheme://USER@host:port")
    scheme, userinfo, rest = split
    if ":" in userinfo:
        raise SecretError(f"the store URL {mask_url(url)} carries a password and a store password is "
                          "configured as well: keep only one (preferably the file or variable)")
    return f"{scheme}{userinfo}:{quote(password, safe='')}@{rest}"


# -- logging -------------------------------------------------------------------------------------
class RedactingFilter(logging.Filter):
    """Masks URL credentials and the given secret values in every record a handler emits."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = mask_urls_in(text)
        for secret in self.secrets:
            text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def redact_logs(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Install a :class:`RedactingFilter` on every handler of the root logger (call it after
    the logging set-up); returns it."""
    redactor = RedactingFilter(secrets)
    root = logging.getLogger()
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    return redactor
