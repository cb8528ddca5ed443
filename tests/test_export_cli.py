"""``soc report build|verify|send|outbox|due|keygen`` through the real CLI, configured by a
soc.yml, on a SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soc.cli import app
from soc.store import open_store
from tests.test_export_fixtures import CONTACT, REPORTER, SIGNATORY, seed

runner = CliRunner()


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = {
        "data_dir": str(tmp_path / "data"), "store_url": f"sqlite:///{tmp_path / 'soc.db'}",
        "reporting": {"reporter": REPORTER, "contact": CONTACT, "signatory": SIGNATORY,
                      "default_notified": ["coordinating_authority"],
                      "certificate": str(tmp_path / "pki" / "cert.pem"),
                      "private_key": str(tmp_path / "pki" / "key.pem"),
                      "recipients": [{"name": "drop", "channel": "drop", "endpoint": str(tmp_path / "drop")}]},
    }
    (tmp_path / "soc.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("SOC_CONFIG", str(tmp_path / "soc.yml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_report_commands(configured: Path) -> None:
    tmp = configured
    result = runner.invoke(app, ["report", "keygen", "--cert", "pki/cert.pem", "--key", "pki/key.pem",
                                 "--name", "SOC Nghệ An (TEST)"])
    assert result.exit_code == 0, result.output
    store = open_store(f"sqlite:///{tmp / 'soc.db'}")
    inc = seed(store)
    store.close()

    missing = runner.invoke(app, ["report", "build", "--incident", inc.id, "--kind", "closing"])
    assert missing.exit_code == 2 and "Kết quả xử lý sự cố / Outcome of the response" in missing.output

    built = runner.invoke(app, ["report", "build", "--incident", inc.id, "--set", "support_request=Hỗ trợ phân tích"])
    assert built.exit_code == 0, built.output
    report_no = built.output.split()[1]
    files = sorted((tmp / "data" / "reports" / report_no).iterdir())
    assert [f.name.removeprefix(report_no) for f in files] == [
        ".docx", ".docx.p7s", ".json", ".json.p7s", ".stix.json", ".stix.json.p7s"]

    ok = runner.invoke(app, ["report", "verify", str(files[2]), "--ca", "pki/cert.pem"])
    assert ok.exit_code == 0 and "OK: signature valid" in ok.output, ok.output
    config = yaml.safe_load((tmp / "soc.yml").read_text(encoding="utf-8"))
    config["reporting"].pop("certificate")
    (tmp / "no-anchor.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOC_CONFIG", str(tmp / "no-anchor.yml"))
        unanchored = runner.invoke(app, ["report", "verify", str(files[2])])
    text = " ".join(unanchored.output.split())
    assert unanchored.exit_code == 2 and "OK" not in text and "no trust anchor" in text and "--ca" in text, text
    files[2].write_bytes(files[2].read_bytes().replace(b"Nguy", b"Ngu_"))
    bad = runner.invoke(app, ["report", "verify", str(files[2])])
    assert bad.exit_code == 1 and "changed after signing" in bad.output

    regenerated = runner.invoke(app, ["report", "build", "--regenerate", report_no, "--out", "again"])
    assert regenerated.exit_code == 0, regenerated.output
    assert (tmp / "again" / report_no / f"{report_no}.docx").read_bytes() == files[0].read_bytes()

    sent = runner.invoke(app, ["report", "send", report_no])
    assert sent.exit_code == 0 and f"queued {report_no}--drop" in sent.output and "delivered" in sent.output, sent.output
    assert (tmp / "drop" / report_no / "receipt.json").is_file()
    listed = runner.invoke(app, ["report", "outbox", "--json"])
    assert '"status": "delivered"' in listed.output

    due = runner.invoke(app, ["report", "due", "--all", "--json"])
    assert due.exit_code == 0 and '"state": "delivered"' in due.output, due.output

    summary = runner.invoke(app, ["report", "build", "--summary", "monthly", "--period", "2026-11"])
    assert summary.exit_code == 0 and "TH-NA-01-monthly-2026-11" in summary.output, summary.output
    bad_period = runner.invoke(app, ["report", "build", "--summary", "weekly", "--period", "2026-11"])
    assert bad_period.exit_code == 2 and "2026-W48" in bad_period.output
