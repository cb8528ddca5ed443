"""What every answer of the API carries (security headers, problem documents, cookies over TLS),
and its documentation: the Swagger UI page served from this machine under a 'self'-only policy,
the OpenAPI description with each operation's permission, and docs/api.md listing every route
with what it needs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from soc.app import App
from soc.web.headers import API_CSP, HSTS
from soc.web.server import PUBLIC, route_access, route_table
from tests.api_helpers import GOOD, add_user, client, routes, settings_for
from tests.conftest import ROOT

HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with App(settings_for(tmp_path_factory.mktemp("api-headers"))) as app:
        add_user(app, "an", ["analyst"])
        yield app


def with_a_bug(root: App, *, tls: bool = False) -> TestClient:
    http = client(root, tls=tls)

    @http.app.get("/api/v1/boom")  # type: ignore[attr-defined]
    def boom() -> None:
        raise RuntimeError("secret internals /etc/soc/key.pem")

    return http


def assert_secured(answer: object, *, tls: bool = False, api: bool = True) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    for name, value in HEADERS.items():
        if name == "referrer-policy" and not api:
            value = "same-origin"  # console pages: a form's Origin must stay (login CSRF check); never to other sites
        assert headers.get(name) == value, (name, dict(headers))
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    if api:
        assert headers["cache-control"] == "no-store"
    assert (headers.get("strict-transport-security") == HSTS) is tls
    assert "server" not in headers or "uvicorn" not in headers["server"].lower()


@pytest.mark.parametrize("tls", [False, True])
def test_every_kind_of_answer_carries_the_security_headers(root: App, tls: bool) -> None:
    http = with_a_bug(root, tls=tls)
    answers = [
        (200, http.get("/api/v1/health")),
        (401, http.get("/api/v1/auth/me")),
        (404, http.get("/api/v1/no-such-thing")),
        (404, http.get("/api/v1/alerts/" + "A" * 513)),  # longer than any id: answered before any route runs
        (405, http.delete("/api/v1/health")),
        (422, http.post("/api/v1/auth/login", json={"name": ""})),
        (500, http.get("/api/v1/boom")),
    ]
    for status, answer in answers:
        assert answer.status_code == status, (status, answer.text)
        assert_secured(answer, tls=tls)
        assert answer.headers["content-security-policy"] == API_CSP
        if status >= 400:
            problem = answer.json()
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert problem["status"] == status and problem["type"] == "about:blank" and problem["title"]
    assert_secured(http.get("/elsewhere"), tls=tls, api=False)
    bug = answers[-1][1].json()
    assert "secret internals" not in answers[-1][1].text and "Traceback" not in answers[-1][1].text
    assert re.fullmatch(r"[0-9a-f]{12}", bug["error_id"]) and bug["error_id"] in bug["detail"]


def test_over_tls_the_session_cookie_is_secure_and_host_only(root: App) -> None:
    http = client(root, tls=True)
    answer = http.post("/api/v1/auth/login", json={"name": "an", "password": GOOD})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-soc_session=")
    assert all(part in cookie.lower() for part in ("secure", "httponly", "samesite=strict", "path=/"))
    assert "domain=" not in cookie.lower()
    assert http.get("/api/v1/auth/me").status_code == 200
    gone = http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": answer.json()["csrf_token"]})
    assert gone.status_code == 200
    assert gone.headers["set-cookie"].startswith("__Host-soc_session=") and "secure" in gone.headers["set-cookie"].lower()
    # the plain name is not read over TLS (a sibling host could have set it)
    session = answer.cookies.get("__Host-soc_session")
    assert client(root, tls=True).get("/api/v1/auth/me", headers={"Cookie": f"soc_session={session}"}).status_code == 401


# -- documentation -------------------------------------------------------------------------------
def test_the_docs_page_loads_nothing_from_elsewhere_and_runs_no_inline_script(root: App) -> None:
    http = client(root)
    page = http.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_secured(page)
    policy = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert "unsafe" not in policy and "http" not in policy and "*" not in policy
    html = page.text
    assert "http://" not in html and "https://" not in html and "//" not in html.replace("<!DOCTYPE", "")
    assert re.search(r"<script>|<script [^>]*>[^<]", html) is None, "an inline script"
    assert " on" not in re.sub(r'"[^"]*"', "", html), "an inline event handler"
    linked = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert linked and all(url.startswith("/api/docs/") for url in linked)
    for url in linked:
        answer = http.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].split(";")[0] in ("text/css", "text/javascript", "image/png"), url
    init = http.get("/api/docs/init.js").text
    assert "/api/openapi.json" in init and "http" not in init
    for sneaky in ("index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map", "..%2F__init__.py"):
        assert http.get(f"/api/docs/assets/{sneaky}").status_code == 404, sneaky


def test_the_description_names_every_operations_permission(root: App) -> None:
    http = client(root)
    described = http.get("/api/openapi.json")
    assert described.status_code == 200 and described.headers["cache-control"] == "no-store"
    schema = described.json()
    assert set(schema["components"]["securitySchemes"]) == {"token", "session"}
    web: FastAPI = http.app  # type: ignore[assignment]
    for method, path, route in routes(web):
        operation = schema["paths"][route.path_format][method.lower()]
        assert operation["x-soc-permission"] == route_access(route), (method, path)
        assert (operation["security"] == []) == (route_access(route) == PUBLIC), (method, path)


def test_docs_api_md_lists_every_route_with_what_it_needs(root: App) -> None:
    """docs/api.md holds the table `soc serve --routes` prints: regenerate it when routes change."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    begin, end = "<!-- routes: generated by `soc serve --routes` -->\n", "<!-- /routes -->"
    assert begin in text and end in text
    documented = text.split(begin, 1)[1].split(end, 1)[0]
    table = route_table(client(root).app)  # type: ignore[arg-type]
    missing = sorted(set(table.splitlines()) - set(documented.splitlines()))
    stale = sorted(set(documented.splitlines()) - set(table.splitlines()))
    assert not missing and not stale, (
        "docs/api.md's route table is not the application's: run `soc serve --routes` and put its output between "
        "the markers\nmissing:\n" + "\n".join(missing) + "\nno longer there:\n" + "\n".join(stale))


def test_soc_serve_routes_prints_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: App) -> None:
    from typer.testing import CliRunner

    from soc.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["serve", "--routes"])
    assert result.exit_code == 0, result.output
    assert result.output == route_table(client(root).app)  # type: ignore[arg-type]
    assert not (tmp_path / "data").exists()  # nothing opened
