"""Outgoing HTTP requests: the one place that opens connections to other servers (report
delivery to the national centre, playbook webhooks), so the rules below hold for every caller.

* **Redirects are never followed.** A 3xx answer raises :class:`RedirectRefused` (status and
  ``Location`` in the message) -- even if a caller asks httpx to follow. A redirected POST would
  become a GET, carry the bearer token to another host, and a delivery be recorded that never
  happened; the operator configures the final URL instead.
* **https only.** Plain http is allowed to a loopback host (127.0.0.0/8, ``::1``, ``localhost``:
  names are not resolved, only these literals count) or where the destination explicitly allows
  it (``allow_http``); every other scheme (``file``, ``ftp``, ``gopher``, ``data`` ...) is refused
  with :class:`OutgoingRefused` before any connection. :func:`check_url` is that policy, applied
  to the URL given and again to every request the client sends.
* **TLS certificates are always verified** (chain and host name): against the system CAs, or a
  CA bundle (``ca``) of the destination; a client certificate and key can be presented (mutual
  TLS). There is no way to turn verification off.
* **Timeouts** on connecting and on reading (and writing), set separately.

Proxies from the environment (``HTTPS_PROXY``, ``NO_PROXY`` ...) are honoured, as urllib did,
except for loopback destinations, which are always reached directly.

Typical use::

    destination = Destination(url, ca=recipient.ca, read_timeout=30.0)
    with open_client(destination) as client, client.stream("POST", url, content=body) as response:
        text = read_text(response, 64 * 1024)
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from soc.errors import SocError
from soc.net import is_loopback_host

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "Destination", "OutgoingRefused", "RedirectRefused",
           "check_url", "is_loopback_host", "is_tls_failure", "open_client", "read_text", "tls_context"]

CONNECT_TIMEOUT = 10.0
"""Default seconds to establish the connection (TCP and TLS handshake)."""
READ_TIMEOUT = 30.0
"""Default seconds to wait for the server at any point once connected (read, write)."""
MAX_LOCATION_CHARS = 300


class OutgoingRefused(SocError):
    """A request the rules forbid or a destination that is misconfigured (scheme, CA bundle,
    client certificate, a redirect). Another attempt cannot help: ``retryable`` is False."""

    retryable = False


class RedirectRefused(OutgoingRefused):
    """The server answered 3xx. Nothing was sent anywhere else."""

    def __init__(self, url: str, status: int, reason: str, location: str | None) -> None:
        self.url, self.status, self.reason, self.location = url, status, reason, location
        where = repr(location[:MAX_LOCATION_CHARS]) if location else "(no Location header)"
        super().__init__(f"{url} answered {status} {reason} redirecting to {where}: redirects are "
                         "not followed (configure the final URL)")


def check_url(url: str | httpx.URL, *, allow_http: bool = False, http_setting: str | None = None) -> httpx.URL:
    """The URL policy: ``https`` anywhere; ``http`` only to a loopback host or when
    ``allow_http``; nothing else. Returns the parsed URL (parsed as the client will parse it)
    or raises :class:`OutgoingRefused`. ``http_setting`` names the setting that allows http for
    this destination, for the error message (None: there is none)."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise OutgoingRefused(f"refused URL {str(url)!r}: not a valid URL ({error})") from None
    scheme = parsed.scheme.lower()
    if scheme not in ("https", "http"):
        raise OutgoingRefused(f"refused URL {str(url)!r}: scheme {scheme or '(none)'!r} is not allowed; "
                              "only https (http only to a loopback address)")
    if not parsed.host:
        raise OutgoingRefused(f"refused URL {str(url)!r}: no host")
    if scheme == "http" and not allow_http and not is_loopback_host(parsed.host):
        how = f" or where {http_setting} is true" if http_setting else ""
        raise OutgoingRefused(f"refused URL {str(url)!r}: plain http is allowed only to a loopback address "
                              f"(127.0.0.0/8, ::1, localhost){how}; use https")
    return parsed


def tls_context(ca: Path | None = None, client_cert: Path | None = None,
                client_key: Path | None = None) -> ssl.SSLContext:
    """A verifying TLS client context: the CA bundle ``ca`` (PEM) if given, else the system CAs;
    the client certificate (and its key, if separate) loaded when given. Raises
    :class:`OutgoingRefused` when a file cannot be read."""
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as error:
        raise OutgoingRefused(f"cannot read the CA bundle {ca}: {error} (a PEM file of CA certificates)") from None
    if client_cert:
        try:
            context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
        except (OSError, ssl.SSLError) as error:
            raise OutgoingRefused(f"cannot load the client certificate {client_cert}"
                                  f"{f' / key {client_key}' if client_key else ''}: {error}") from None
    return context


@dataclass(frozen=True)
class Destination:
    """A server to send to and the per-destination settings the rules allow."""

    url: str
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    allow_http: bool = False
    http_setting: str | None = None  # the setting that sets allow_http, named in errors
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT


def open_client(destination: Destination) -> httpx.Client:
    """An httpx client for ``destination`` that holds the module's rules: the URL is checked
    now (:class:`OutgoingRefused` before any connection) and every request again, a 3xx raises
    :class:`RedirectRefused`, TLS is verified, timeouts are set. Use it as a context manager."""
    url = check_url(destination.url, allow_http=destination.allow_http, http_setting=destination.http_setting)

    def check_request(request: httpx.Request) -> None:
        check_url(request.url, allow_http=destination.allow_http, http_setting=destination.http_setting)

    def refuse_redirect(response: httpx.Response) -> None:
        if 300 <= response.status_code < 400:
            raise RedirectRefused(str(response.request.url), response.status_code, response.reason_phrase,
                                  response.headers.get("location"))

    return httpx.Client(
        verify=tls_context(destination.ca, destination.client_cert, destination.client_key),
        timeout=httpx.Timeout(destination.read_timeout, connect=destination.connect_timeout),
        follow_redirects=False,
        trust_env=not is_loopback_host(url.host),
        event_hooks={"request": [check_request], "response": [refuse_redirect]},
    )


def read_text(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of a streamed response body, decoded as UTF-8 (errors replaced):
    a server cannot make the caller hold an unbounded answer in memory."""
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk[: limit - len(data)]
        if len(data) >= limit:
            break
    return data.decode("utf-8", "replace")


def is_tls_failure(error: BaseException) -> bool:
    """Whether a transport error was caused by TLS (an untrusted or mismatched certificate, a
    refused client certificate, a server that does not speak TLS): another attempt will fail
    the same way until the configuration changes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
