"""The HTTP layer of the search store: one small ``request`` call over two client libraries.

The store speaks plain REST (``_bulk``, ``_search``, ``_doc``...), which OpenSearch 2.x and
Elasticsearch 8/9 share, so all request building lives in :mod:`soc.store.search`. This module
only adapts the two official clients -- ``opensearch-py`` and ``elasticsearch`` (which adds
the compatibility media types and the product check Elasticsearch needs) -- to one call that
returns the decoded JSON body or raises one of three errors:

* :class:`HTTPError` -- the server answered with a status >= 400 (``status``, ``body``);
* :class:`RequestTimeout` -- no answer within the request timeout (the server may still do it);
* :class:`Unreachable` -- no connection (refused, DNS, TLS, wrong product).

URLs: ``opensearch://host:9200``, ``opensearch+https://user:pass@host:9200``,
``elasticsearch+https://user:pass@h1:9200,h2:9200?ca_certs=/etc/soc/ca.pem&verify_certs=true``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from soc.errors import SocError
from soc.secrets import mask_url

JSON = "application/json"
NDJSON = "application/x-ndjson"


class HTTPError(SocError):
    """The server answered ``status`` >= 400; ``body`` is its decoded answer."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {self.reason}")

    @property
    def error_type(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("type", "")) if isinstance(error, dict) else ""

    @property
    def reason(self) -> str:
        return error_reason(self.body)


class Unreachable(SocError):
    """No usable connection to the server."""


class RequestTimeout(SocError):
    """The request got no answer in time; it may still complete on the server."""


def error_reason(body: Any) -> str:
    """``type: reason`` of an error body (``{"error": {...}}`` or a bulk item error)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            cause = (error.get("root_cause") or [error])[0] if error.get("root_cause") else error
            text = f"{cause.get('type', 'error')}: {cause.get('reason', '')}".strip()
            caused = error.get("caused_by")
            if isinstance(caused, dict) and caused.get("reason"):
                text += f" ({caused.get('type')}: {caused.get('reason')})"
            return text
        if error is not None:
            return str(error)
    return str(body)[:500]


@dataclass
class Endpoint:
    """What a store URL says: the flavour, the node URLs, credentials and TLS options."""

    flavour: str  # "opensearch" | "elasticsearch"
    hosts: list[str]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The URL without the password (for error messages, ``repr`` of the store)."""
        user = f"{self.username}:***@" if self.password else f"{self.username}@" if self.username else ""
        return ", ".join(h.replace("://", f"://{user}", 1) for h in self.hosts)


def parse_url(url: str) -> Endpoint:
    """Parse ``opensearch[+https]://[user:pass@]host:port[,host:port...][?ca_certs=...]``."""
    parts = urlsplit(url)
    flavour, _, transport = parts.scheme.partition("+")
    if flavour not in ("opensearch", "elasticsearch"):
        raise ValueError(f"not a search store URL: {mask_url(url)!r} (use opensearch:// or elasticsearch://)")
    scheme = transport or "http"
    if scheme not in ("http", "https"):
        raise ValueError(f"{mask_url(url)!r}: use {flavour}:// or {flavour}+https://")
    userinfo, _, hostpart = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret)
    hosts = []
    for host in filter(None, hostpart.split(",")):
        if ":" not in host.rsplit("]", 1)[-1]:
            host += ":9200"
        hosts.append(f"{scheme}://{host}{parts.path.rstrip('/')}")
    if not hosts:
        raise ValueError(f"{mask_url(url)!r} names no host (e.g. {flavour}://127.0.0.1:9200)")
    options: dict[str, Any] = {}
    for key, values in parse_qs(parts.query).items():
        if key == "verify_certs":
            options[key] = values[-1].lower() not in ("0", "false", "no")
        elif key == "ca_certs":
            options[key] = values[-1]
        else:
            raise ValueError(f"{mask_url(url)!r}: unknown option {key!r} (known: ca_certs, verify_certs)")
    return Endpoint(flavour, hosts, username, password, options)


class Transport:
    """One ``request`` call; the subclasses wrap a client library."""

    flavour = ""

    def __init__(self, endpoint: Endpoint, *, timeout: float):
        self.endpoint = endpoint
        self.timeout = timeout

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, ndjson: bool = False, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _body(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return orjson.dumps(body)


def _params(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in params.items()}


class _ExpectedStatuses(logging.Filter):
    """opensearch-py logs every status >= 400 as a warning; 404 and 409 are answers here
    (no such document, already exists, compare-and-set lost), not failures; so is a 400 to
    opening a point in time over event indices that do not exist yet (OpenSearch 2.19)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) >= 3 and args[2] == 400 and "point_in_time" in str(args[1]):
            return False
        return not (len(args) >= 3 and args[2] in (404, 409))


class OpenSearchTransport(Transport):
    flavour = "opensearch"
    _filter_installed = False

    def __init__(self, endpoint: Endpoint, *, timeout: float):
        super().__init__(endpoint, timeout=timeout)
        from opensearchpy import OpenSearch
        from opensearchpy.serializer import JSONSerializer

        class _Orjson(JSONSerializer):
            def loads(self, s: str | bytes) -> Any:
                return orjson.loads(s)

            def dumps(self, data: Any) -> Any:
                return data if isinstance(data, (str, bytes)) else orjson.dumps(data).decode()

        if not OpenSearchTransport._filter_installed:
            logging.getLogger("opensearch").addFilter(_ExpectedStatuses())
            OpenSearchTransport._filter_installed = True
        auth = (endpoint.username, endpoint.password or "") if endpoint.username else None
        self.client = OpenSearch(
            hosts=endpoint.hosts, http_auth=auth, timeout=timeout, max_retries=1,
            retry_on_timeout=False, serializer=_Orjson(), pool_maxsize=16, **endpoint.options)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, ndjson: bool = False, timeout: float | None = None) -> Any:
        from opensearchpy import exceptions as ex

        headers = {"content-type": NDJSON if ndjson else JSON, "accept": JSON}
        try:
            return self.client.transport.perform_request(
                method, path, params=_params(params), body=_body(body), headers=headers,
                timeout=timeout or self.timeout)
        except ex.ConnectionTimeout as error:
            raise RequestTimeout(f"no answer from {self.endpoint.display} within "
                                 f"{timeout or self.timeout:g} s") from error
        except ex.ConnectionError as error:
            raise Unreachable(f"{type(error.info).__name__}: {error.info}") from error
        except ex.TransportError as error:
            status = error.status_code if isinstance(error.status_code, int) else 0
            raise HTTPError(status, error.info if error.info is not None else error.error) from error

    def close(self) -> None:
        self.client.close()


class ElasticsearchTransport(Transport):
    flavour = "elasticsearch"

    def __init__(self, endpoint: Endpoint, *, timeout: float):
        super().__init__(endpoint, timeout=timeout)
        from elasticsearch import Elasticsearch
        from elasticsearch.serializer import OrjsonSerializer

        auth = (endpoint.username, endpoint.password or "") if endpoint.username else None
        self.client = Elasticsearch(
            endpoint.hosts, basic_auth=auth, request_timeout=timeout, max_retries=1,
            retry_on_timeout=False, serializer=OrjsonSerializer(), **endpoint.options)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, ndjson: bool = False, timeout: float | None = None) -> Any:
        import elastic_transport
        from elasticsearch import ApiError, UnsupportedProductError

        headers = {"content-type": NDJSON if ndjson else JSON, "accept": JSON}
        client = self.client if timeout is None else self.client.options(request_timeout=timeout)
        try:
            return client.perform_request(method, path, params=_params(params), headers=headers,
                                          body=_body(body)).body
        except UnsupportedProductError as error:
            raise Unreachable(
                "the server is not Elasticsearch (it does not send the X-Elastic-Product header); "
                "if it is OpenSearch, use an opensearch:// store URL") from error
        except ApiError as error:
            raise HTTPError(error.meta.status, error.body) from error
        except elastic_transport.ConnectionTimeout as error:
            raise RequestTimeout(f"no answer from {self.endpoint.display} within "
                                 f"{timeout or self.timeout:g} s") from error
        except elastic_transport.TransportError as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        self.client.close()
