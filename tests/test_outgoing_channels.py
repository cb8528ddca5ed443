"""Safe outgoing channels (issue #8, item 1): report delivery over HTTPS and the playbook webhook
go through soc.outgoing -- redirects never followed (nothing, and no token, reaches the host a
3xx points to), https only (http only to loopback or with allow_http; file/ftp/... refused before
any connection), certificates always verified (a self-signed server only with its CA configured).

Every server is local and started here: HTTPS ones with the self-signed certificate that
tests/test_export_delivery.py makes."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from soc.config import ReportRecipient
from soc.export.channels import DeliveryError, send_https
from soc.export.outbox import deliver_due, enqueue
from soc.export.reports import Reports
from soc.outgoing import (
    Destination,
    OutgoingRefused,
    RedirectRefused,
    check_url,
    is_loopback_host,
    open_client,
)
from soc.playbooks import PlaybookRunner, load_playbooks, parse_playbook
from soc.playbooks.registry import EFFECTS
from soc.store import open_store
from soc.store.base import Store
from tests.test_export_delivery import BUILT_AT, server_certificate
from tests.test_export_fixtures import make_settings, seed
from tests.test_playbooks import make, run_doc, runner_for, step

Reply = tuple[int, dict[str, str], bytes]


class Server:
    """A local HTTP(S) server that records every request (any method) and answers with
    ``reply(request)``: 200 ``{"ok": true}`` by default."""

    def __init__(self, tls: tuple[Path, Path] | None = None,
                 reply: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                           "body": self.rfile.read(length)}
                owner.requests.append(request)
                status, headers, body = (reply or (lambda _: (200, {}, b'{"ok": true}')))(request)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def redirect_to(location: str, status: int = 302) -> Callable[[dict[str, Any]], Reply]:
    return lambda _: (status, {"Location": location}, b"moved")


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (the certificate is its own CA)."""
    return server_certificate(tmp_path / "tls")


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test, closed after it."""
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    yield s
    s.close()


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to open a connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse)


def recipient(url: str, **fields: Any) -> ReportRecipient:
    return ReportRecipient(name="a05", channel="https", endpoint=url, **fields)


def report_file(tmp_path: Path) -> list[Path]:
    path = tmp_path / "R-1.json"
    path.write_text('{"report": 1}', encoding="utf-8")
    return [path]


# -- the URL policy -------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LOCALHOST"])
def test_plain_http_is_allowed_to_loopback(host: str) -> None:
    assert check_url(f"http://{host}:8080/hook").scheme == "http"


@pytest.mark.parametrize("url", ["http://192.0.2.10/api/reports", "http://10.0.0.5:8080/x",
                                 "http://localhost.example.com/x", "http://127.0.0.1.nip.io/x",
                                 "http://[::2]/x"])
def test_plain_http_elsewhere_needs_allow_http(url: str) -> None:
    with pytest.raises(OutgoingRefused, match="plain http is allowed only to a loopback address"):
        check_url(url)
    assert check_url(url, allow_http=True).scheme == "http"
    assert check_url(url.replace("http://", "https://")).scheme == "https"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/pub/x", "gopher://127.0.0.1:70/",
                                 "data:text/plain,hello", "javascript:alert(1)", "/relative/path", "https:///nohost"])
def test_other_schemes_are_refused_even_with_allow_http(url: str) -> None:
    with pytest.raises(OutgoingRefused, match="refused URL"):
        check_url(url, allow_http=True)


def test_loopback_means_literal_loopback_only() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost.")
    assert not is_loopback_host("10.0.0.1") and not is_loopback_host("localhost.evil.example")


def test_the_client_refuses_3xx_even_when_asked_to_follow(tls: tuple[Path, Path], servers: list[Server]) -> None:
    other = Server(tls)
    first = Server(tls, redirect_to(other.url + "/stolen", 307))
    servers += [other, first]
    with open_client(Destination(first.url, ca=tls[0])) as client, \
            pytest.raises(RedirectRefused, match=r"307 .*/stolen") as caught:
        client.post(first.url, content=b"x", headers={"Authorization": "Bearer t"}, follow_redirects=True)
    assert caught.value.status == 307 and caught.value.location == other.url + "/stolen"
    assert other.requests == []


def test_the_client_checks_every_request_not_only_the_first(no_connection: None) -> None:
    with open_client(Destination("https://127.0.0.1:9/")) as client:
        for url, reason in (("http://192.0.2.10/x", "plain http"), ("ftp://127.0.0.1/x", "scheme 'ftp'")):
            with pytest.raises(OutgoingRefused, match=reason):
                client.get(url)


# -- report delivery ------------------------------------------------------------------------------
def test_a_redirecting_recipient_fails_and_the_other_host_gets_nothing(
        tmp_path: Path, store: Store, tls: tuple[Path, Path], servers: list[Server],
        monkeypatch: pytest.MonkeyPatch) -> None:
    other = Server(tls)
    recipient_server = Server(tls, redirect_to(other.url + "/api/reports"))
    servers += [other, recipient_server]
    monkeypatch.setenv("TEST_A05_TOKEN", "s3cret-token")
    settings = make_settings(tmp_path, recipients=[{"name": "a05", "channel": "https", "ca": str(tls[0]),
                                                    "endpoint": recipient_server.url + "/api/reports",
                                                    "token_env": "TEST_A05_TOKEN"}])
    built = Reports(store, settings).build_incident(seed(store).id, "initial", built_at=BUILT_AT)
    enqueue(store, settings, built.report_no)
    (entry,) = deliver_due(store, settings)
    assert entry["status"] == "failed" and entry["attempts"] == 1, entry
    assert "302" in entry["last_error"] and other.url + "/api/reports" in entry["last_error"]
    assert entry["attempts_log"][0]["receipt"]["status"] == 302
    assert not entry.get("delivered_at")
    assert other.requests == [], "nothing, and no token, reaches the host the redirect points to"
    (sent,) = recipient_server.requests
    assert sent["method"] == "POST" and sent["headers"]["Authorization"] == "Bearer s3cret-token"


@pytest.mark.parametrize("status", [301, 303, 308])
def test_every_redirect_status_is_a_failed_delivery(tmp_path: Path, status: int, tls: tuple[Path, Path],
                                                    servers: list[Server]) -> None:
    other = Server(tls)
    first = Server(tls, redirect_to(other.url + "/x", status))
    servers += [other, first]
    with pytest.raises(DeliveryError, match=f"{status} .*redirects are not followed") as caught:
        send_https(recipient(first.url, ca=tls[0], token="t"), {"report_no": "R-1"}, report_file(tmp_path), "k")
    assert caught.value.retryable is False and caught.value.receipt["headers"]["location"] == other.url + "/x"
    assert other.requests == []


def test_a_self_signed_recipient_needs_its_ca(tmp_path: Path, store: Store, tls: tuple[Path, Path],
                                             servers: list[Server]) -> None:
    server = Server(tls, lambda _: (202, {"Content-Type": "application/json", "X-Receipt-Id": "RX-1"},
                                    b'{"receipt_id": "RX-1"}'))
    servers.append(server)
    url = server.url + "/api/reports"
    with pytest.raises(DeliveryError, match="TLS with .* failed") as caught:
        send_https(recipient(url), {"report_no": "R-1"}, report_file(tmp_path), "k")  # system CAs only
    assert caught.value.retryable is False and server.requests == []

    settings = make_settings(tmp_path, recipients=[{"name": "a05", "channel": "https", "endpoint": url,
                                                    "ca": str(tls[0]), "connect_timeout_seconds": 2,
                                                    "read_timeout_seconds": 5}])
    built = Reports(store, settings).build_incident(seed(store).id, "initial", built_at=BUILT_AT)
    enqueue(store, settings, built.report_no)
    (entry,) = deliver_due(store, settings)
    assert entry["status"] == "delivered", entry
    receipt = entry["receipt"]
    assert {k: receipt[k] for k in ("channel", "url", "status")} == {"channel": "https", "url": url, "status": 202}
    assert json.loads(receipt["body"]) == {"receipt_id": "RX-1"} and receipt["headers"]["X-Receipt-Id"] == "RX-1"


def test_http_to_loopback_is_delivered(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(reply=lambda _: (201, {}, b"ok"))
    servers.append(server)
    receipt = send_https(recipient(server.url.replace("127.0.0.1", "localhost") + "/in"), {"report_no": "R-1"},
                         report_file(tmp_path), "key-1")
    assert receipt["status"] == 201 and receipt["body"] == "ok"
    assert server.requests[0]["headers"]["Idempotency-Key"] == "key-1"


@pytest.mark.parametrize("url", ["http://192.0.2.10/api/reports", "file:///etc/passwd", "ftp://127.0.0.1/in"])
def test_refused_endpoints_are_never_contacted(tmp_path: Path, url: str, no_connection: None) -> None:
    with pytest.raises(DeliveryError, match="refused URL") as caught:
        send_https(recipient(url, token="t"), {"report_no": "R-1"}, report_file(tmp_path), "k")
    assert caught.value.retryable is False


def test_allow_http_lets_a_non_loopback_http_endpoint_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def transport(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, content=b"accepted")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", transport)
    receipt = send_https(recipient("http://192.0.2.10/api/reports", allow_http=True), {"report_no": "R-1"},
                         report_file(tmp_path), "k")
    assert receipt["status"] == 202 and [str(r.url) for r in seen] == ["http://192.0.2.10/api/reports"]


def test_a_client_error_and_a_server_error_keep_their_retry_class(tmp_path: Path, servers: list[Server]) -> None:
    bad, busy = Server(reply=lambda _: (400, {}, b"bad envelope")), Server(reply=lambda _: (503, {}, b"busy"))
    servers += [bad, busy]
    with pytest.raises(DeliveryError, match="400") as caught:
        send_https(recipient(bad.url), {"report_no": "R-1"}, report_file(tmp_path), "k")
    assert caught.value.retryable is False and caught.value.receipt["body"] == "bad envelope"
    with pytest.raises(DeliveryError, match="503") as caught:
        send_https(recipient(busy.url), {"report_no": "R-1"}, report_file(tmp_path), "k")
    assert caught.value.retryable is True
    busy.close()
    servers.remove(busy)
    with pytest.raises(DeliveryError, match="cannot reach") as caught:
        send_https(recipient(busy.url), {"report_no": "R-1"}, report_file(tmp_path), "k")
    assert caught.value.retryable is True


# -- the playbook webhook -------------------------------------------------------------------------
def run_hook(tmp_path: Path, store: Store, args: dict[str, Any], key: str = "k", **config: Any) -> dict[str, Any]:
    """Run a one-step playbook (three attempts allowed) calling notify.webhook; the step's record."""
    playbooks = make(tmp_path, [{"id": "hook", "title": "H", "steps": [
        {"id": "send", "action": "notify.webhook", "args": args, "retry": {"attempts": 3, "backoff": 0.01}}]}])
    runner = runner_for(store, playbooks, tmp_path, **config)
    run_id, _ = runner.start("hook", {}, key)
    return step(run_doc(store, run_id), "send")


@pytest.mark.parametrize("url, scheme", [("file:///etc/passwd", "file"), ("ftp://127.0.0.1/pub/notes", "ftp"),
                                         ("http://192.0.2.10/hook", None)])
def test_webhook_refuses_other_schemes_without_reading_anything(tmp_path: Path, store: Store, url: str,
                                                                 scheme: str | None, no_connection: None) -> None:
    record = run_hook(tmp_path, store, {"url": url})
    assert record["status"] == "failed" and record["attempts"] == 1, record
    assert (f"scheme {scheme!r}" if scheme else "plain http") in record["error"]
    assert not record.get("output_json") and "root:" not in json.dumps(record)
    assert list(store.iter_all(EFFECTS)) == []


def test_webhook_does_not_follow_a_redirect(tmp_path: Path, store: Store, servers: list[Server]) -> None:
    other = Server()
    hook = Server(reply=redirect_to(other.url + "/elsewhere"))
    servers += [other, hook]
    record = run_hook(tmp_path, store, {"url": hook.url + "/hook", "payload": {"a": 1},
                                        "headers": {"Authorization": "Bearer hook-token"}})
    assert record["status"] == "failed" and record["attempts"] == 1, record
    assert "302" in record["error"] and other.url + "/elsewhere" in record["error"]
    assert len(hook.requests) == 1 and other.requests == []


def test_webhook_verify_tls_false_is_refused_at_load(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "hook.yml").write_text(json.dumps({"id": "hook", "title": "H", "steps": [
        {"id": "send", "action": "notify.webhook", "args": {"url": "https://chat.example/x", "verify_tls": False}}]}))
    playbooks, errors = load_playbooks(folder)
    assert playbooks == {} and len(errors) == 1
    assert "step 'send'" in errors[0] and "verify_tls is not supported" in errors[0]
    assert "'ca'" in errors[0] and "playbooks.webhook_ca" in errors[0]


def test_webhook_verify_tls_is_refused_at_run_time_too(tmp_path: Path, store: Store, no_connection: None) -> None:
    playbook = parse_playbook({"id": "hook", "title": "H", "steps": [
        {"id": "send", "action": "notify.webhook", "args": {"url": "https://chat.example/x", "verify_tls": False},
         "retry": {"attempts": 3, "backoff": 0.01}}]}, check_actions=False)
    runner = runner_for(store, {}, tmp_path)
    runner = PlaybookRunner(store, {"hook": playbook}, settings=runner.settings, config=runner.config)
    run_id, _ = runner.start("hook", {}, "k")
    record = step(run_doc(store, run_id), "send")
    assert record["status"] == "failed" and record["attempts"] == 1 and "webhook_ca" in record["error"]


def test_webhook_to_a_self_signed_server_works_with_its_ca(tmp_path: Path, store: Store, tls: tuple[Path, Path],
                                                          servers: list[Server]) -> None:
    hook = Server(tls)
    servers.append(hook)
    untrusted = run_hook(tmp_path, store, {"url": hook.url + "/a"}, key="a")
    assert untrusted["status"] == "failed" and untrusted["attempts"] == 1 and "TLS" in untrusted["error"]
    assert "webhook_ca" in untrusted["error"] and hook.requests == []

    by_step = run_hook(tmp_path, store, {"url": hook.url + "/b", "payload": {"n": 1}, "ca": str(tls[0])}, key="b")
    assert by_step["status"] == "succeeded", by_step
    assert json.loads(by_step["output_json"])["status"] == 200
    by_setting = run_hook(tmp_path, store, {"url": hook.url + "/c"}, key="c", webhook_ca=tls[0])
    assert by_setting["status"] == "succeeded", by_setting
    assert [r["path"] for r in hook.requests] == ["/b", "/c"]
    assert json.loads(hook.requests[0]["body"]) == {"n": 1} and hook.requests[0]["headers"]["Idempotency-Key"]


def test_webhook_dry_run_reports_a_refused_url(tmp_path: Path, store: Store, no_connection: None) -> None:
    playbooks = make(tmp_path, [{"id": "hook", "title": "H", "steps": [
        {"id": "send", "action": "notify.webhook", "args": {"url": "file:///etc/passwd"}}]}])
    run_id, _ = runner_for(store, playbooks, tmp_path).start("hook", {}, "k", dry_run=True)
    record = step(run_doc(store, run_id), "send")
    assert record["status"] == "failed" and "scheme 'file'" in record["error"]
