"""``soc users`` and ``soc tokens`` through the real CLI on a SQLite data directory, and the
first-run ``admin`` of ``soc run``."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from soc.cli import app
from soc.config import AuthSettings
from soc.identity.model import SESSIONS, TOKENS, USERS
from soc.identity.service import Identity
from soc.store.sqlite import SQLiteStore
from tests.test_identity import GOOD, cheap_passwords

CHEAP = {"SOC_AUTH__ARGON2_TIME_COST": "1", "SOC_AUTH__ARGON2_MEMORY_KIB": "19456",
         "SOC_AUTH__ARGON2_PARALLELISM": "1"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(getpass, "getuser", lambda: "root")  # the shell user: local:root
    monkeypatch.chdir(tmp_path)  # no soc.yml of the checkout; the checkout's ingest/agencies.yml
    return {"SOC_DATA_DIR": str(tmp_path / "data"), "SOC_STORE_URL": "", "SOC_TIMEZONE": "Asia/Ho_Chi_Minh", "COLUMNS": "250", **CHEAP}


@pytest.fixture
def ids(env: dict[str, str]) -> Iterator[Identity]:
    """The identity services over the CLI's store (as the web console will see it)."""
    store = SQLiteStore(Path(env["SOC_DATA_DIR"]) / "soc.db")
    yield Identity(store, AuthSettings(), passwords=cheap_passwords())
    store.close()


def soc(env: dict[str, str], *args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    assert result.exit_code == code, result.output
    return result


def one_time(output: str) -> str:
    found = re.findall(r"^ {4}(\S+)$", output, re.MULTILINE)
    assert len(found) == 1, output
    return found[0]


def test_users_add_list_disable_enable(env: dict[str, str], ids: Identity, tmp_path: Path) -> None:
    added = soc(env, "users", "add", "an", "--role", "analyst", "--role", "responder", "--email", "an@soc.example.vn",
                "--display-name", "Nguyễn Văn An").output
    assert "added user an (analyst, responder)" in added and "shown only now" in added
    password = one_time(added)
    assert added.count(password) == 1
    (tmp_path / "pw").write_text(GOOD + "\n", encoding="utf-8")
    given = soc(env, "users", "add", "yte", "--role", "agency", "--agency", "so-tttt", "--password-file",
                str(tmp_path / "pw")).output
    assert "added user yte (agency; agency so-tttt)" in given and "one-time" not in given
    assert "unknown agency 'so-nope'" in soc(env, "users", "add", "x", "--role", "agency", "--agency", "so-nope",
                                             code=2).output
    assert "unknown role 'boss'" in soc(env, "users", "add", "x", "--role", "boss", code=2).output
    assert "exists already" in soc(env, "users", "add", "an", "--role", "analyst", code=2).output
    listed = soc(env, "users", "list").output
    assert "2 of 2 users" in listed and "Nguyễn Văn An" in listed and "must change password" in listed
    assert "argon2" not in listed and password not in listed
    lines = [json.loads(line) for line in soc(env, "users", "list", "--json").output.splitlines()]
    assert [u["name"] for u in lines] == ["an", "yte"] and all("password_hash" not in u for u in lines)
    assert "1 of 2 users" in soc(env, "users", "list", "--limit", "1").output

    result, session = ids.login("an", password, "10.0.0.1")
    assert result.ok and result.must_change_password and session is not None
    token = ids.tokens.create(ids.users.require("an").principal(), "an", "ci", ["alerts:read"])
    assert "disabled user an" in soc(env, "users", "disable", "an").output
    assert ids.session(session.id) is None and ids.resolve_token(token.secret) is None
    assert not ids.authenticate("an", password, "10.0.0.1").ok
    assert "disabled" in soc(env, "users", "list").output
    assert "enabled user an" in soc(env, "users", "enable", "an").output
    assert ids.authenticate("an", password, "10.0.0.1").ok and ids.resolve_token(token.secret) is not None
    assert "no user 'nobody'" in soc(env, "users", "disable", "nobody", code=2).output


def test_users_passwd(env: dict[str, str], ids: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text(GOOD + "\n", encoding="utf-8")
    soc(env, "users", "add", "an", "--role", "analyst", "--password-file", str(tmp_path / "pw"))
    _, session = ids.login("an", GOOD, "10.0.0.1")
    (tmp_path / "new").write_text("another good passphrase\n", encoding="utf-8")
    assert "password of an set" in soc(env, "users", "passwd", "an", "--password-file", str(tmp_path / "new")).output
    assert session is not None and ids.session(session.id) is None  # a new password ends the sessions
    assert not ids.authenticate("an", GOOD, "10.0.0.1").ok
    assert ids.authenticate("an", "another good passphrase", "10.0.0.1").ok
    generated = soc(env, "users", "passwd", "an").output  # no terminal: a one-time password
    password = one_time(generated)
    assert ids.authenticate("an", password, "10.0.0.1").must_change_password
    monkeypatch.setattr("soc.cli.users.stdin_is_terminal", lambda: True)
    typed = soc(env, "users", "passwd", "an", stdin="typed passphrase 1\ntyped passphrase 1\n").output
    assert "typed passphrase" not in typed
    assert ids.authenticate("an", "typed passphrase 1", "10.0.0.1").ok
    assert "too short" in soc(env, "users", "passwd", "an", stdin="short\nshort\n", code=2).output
    (tmp_path / "empty").write_text("", encoding="utf-8")
    assert "is empty" in soc(env, "users", "passwd", "an", "--password-file", str(tmp_path / "empty"), code=2).output


def test_users_roles(env: dict[str, str], ids: Identity) -> None:
    soc(env, "users", "add", "an", "--role", "analyst")
    assert "an: auditor; agency so-tttt" in soc(env, "users", "roles", "an", "--role", "auditor", "--agency",
                                                 "so-tttt").output
    user = ids.users.require("an")
    assert user.roles == ("auditor",) and user.agency == "so-tttt"
    assert "every agency" in soc(env, "users", "roles", "an", "--no-agency").output
    assert "give --role" in soc(env, "users", "roles", "an", code=2).output


def test_tokens_create_list_revoke(env: dict[str, str], ids: Identity) -> None:
    soc(env, "users", "add", "an", "--role", "analyst")
    created = soc(env, "tokens", "create", "ci", "--user", "an", "--scope", "alerts:read", "--expires", "30d").output
    secret = one_time(created)
    assert secret.startswith("soc_") and created.count(secret) == 1 and "shown only now" in created
    principal = ids.resolve_token(secret)
    assert principal is not None and principal.can("alerts:read") and not principal.can("alerts:write")
    store = ids.store
    stored = json.dumps([d.body for c in (USERS, SESSIONS, TOKENS) for d in store.iter_all(c)])
    assert secret not in stored
    listed = soc(env, "tokens", "list", "--user", "an").output
    token_id = secret.split("_")[1]
    assert "1 of 1 API tokens" in listed and token_id in listed and secret not in listed and "active" in listed
    assert secret not in soc(env, "tokens", "list", "--json").output
    assert "at least one --scope" in soc(env, "tokens", "create", "x", "--user", "an", code=2).output
    assert "unknown token scope" in soc(env, "tokens", "create", "x", "--user", "an", "--scope", "alerts:nuke",
                                        code=2).output
    assert "invalid token lifetime" in soc(env, "tokens", "create", "x", "--user", "an", "--scope", "alerts:read",
                                           "--expires", "forever", code=2).output
    assert "no user 'bob'" in soc(env, "tokens", "create", "x", "--user", "bob", "--scope", "alerts:read",
                                  code=2).output
    assert "revoked token ci" in soc(env, "tokens", "revoke", "ci", "--user", "an").output
    assert ids.resolve_token(secret) is None
    assert "revoked" in soc(env, "tokens", "list").output
    assert "0 of 0 API tokens that work now" in soc(env, "tokens", "list", "--active").output
    assert "no API token 'nope'" in soc(env, "tokens", "revoke", "nope", code=2).output


def test_soc_run_creates_the_first_admin_once(env: dict[str, str], ids: Identity, tmp_path: Path) -> None:
    first = soc(env, "run", "--once", "--udp", "", "--tcp", "").output
    assert "first run: created the user 'admin'" in first
    password = one_time(first)
    result = ids.authenticate("admin", password, "127.0.0.1")
    assert result.ok and result.must_change_password and result.principal is not None
    assert result.principal.can("users:admin")
    again = soc(env, "run", "--once", "--udp", "", "--tcp", "").output
    assert "first run" not in again and [u.name for u in ids.users.list()] == ["admin"]
