"""End to end on real data (issue 4, "Done when"): the SSH brute force in the Elastic
"suspicious login activity" auth.log produces alerts, the brute-force playbook opens one incident
for the campaign against the server (not one per alert), an analyst writes the summary, and the initial report
(JSON, .docx, STIX) for it is built, signed, verified and delivered to a local HTTPS endpoint
started here, with the receipt stored."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import stix2
from cryptography import x509
from docx import Document

from soc.export.outbox import RECEIPTS, enqueue, run_until_settled
from soc.export.reports import Reports
from soc.export.sign import verify_bytes, verify_file
from soc.store.base import Store
from tests.conftest import shared
from tests.test_export_delivery import Endpoint
from tests.test_export_fixtures import make_settings

pytest.importorskip("soc.playbooks")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    from soc.store import open_store

    s = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    yield s
    s.close()


def test_auth_log_to_a_delivered_signed_initial_report(tmp_path: Path, store: Store) -> None:
    from soc.config import PlaybookSettings
    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules
    from soc.hunt import run_hunt
    from soc.incidents.service import Incidents
    from soc.playbooks import PlaybookRunner, load_playbooks

    log = shared("elastic-examples", "suspicious_login_activity", "data", "auth.log")
    rules = ROOT / "detections" / "linux" / "ssh"
    ruleset = compile_rules(load_rules([rules / "ssh_brute_force.yml", rules / "ssh_slow_brute_force.yml"]))
    alerts = run_hunt([log], ruleset, timezone="UTC", agency="so-tttt").alerts
    assert len(alerts) > 10
    for alert in alerts:
        store.create("alerts", alert["id"], alert)
    endpoint = Endpoint(tmp_path / "tls", failures=1)
    try:
        settings = make_settings(tmp_path, recipients=[{
            "name": "a05", "title": "Cục A05", "profile": "vn.mps.a05-2025", "channel": "https",
            "endpoint": endpoint.url, "ca": str(endpoint.cert), "token": "t0k3n"}])
        playbooks, errors = load_playbooks(ROOT / "playbooks")
        assert not errors
        runner = PlaybookRunner(store, playbooks, settings=settings,
                                config=PlaybookSettings(folder=ROOT / "playbooks"))
        runner.on_alerts([a for a in alerts if "Slow" not in a["rule"]["title"]])  # one detection run
        runner.on_alerts([a for a in alerts if "Slow" in a["rule"]["title"]])  # a later one
        incidents = [d.body for d in store.iter_all("incidents")]
        assert len(incidents) == 1 < len(alerts)  # one incident, not one per alert
        target = incidents[0]
        assert sorted(target["alert_ids"]) == sorted(a["id"] for a in alerts)
        ip = target["entities"]["source.ip"][0]

        reports = Reports(store, settings)
        with pytest.raises(ValueError, match="Mô tả sơ bộ về sự cố / Incident summary"):
            reports.build_incident(target["id"], "initial")  # the analyst has not written it yet
        Incidents(store).update(target["id"], actor="user:analyst",
                                summary=f"Dò mật khẩu SSH từ {ip} vào máy chủ của Sở; chưa có đăng nhập thành công.")
        built = reports.build_incident(target["id"], "initial")
        names = {p.name.removeprefix(built.report_no) for p in built.files}
        assert names == {".json", ".docx", ".stix.json"}
        for path in built.files:
            assert verify_file(path, trust_path=settings.reporting.certificate).ok, path

        data = json.loads((built.directory / f"{built.report_no}.json").read_bytes())
        assert data["incident_id"] == target["id"] and data["detection_method"] == ["log_review"]
        assert ip in {i["value"] for i in data["iocs"]} and len(data["alerts"]) == len(target["alert_ids"])
        doc = Document(io.BytesIO((built.directory / f"{built.report_no}.docx").read_bytes()))
        text = "\n".join(p.text for p in doc.paragraphs)
        for label in ("BÁO CÁO BAN ĐẦU SỰ CỐ MẠNG", "Tên tổ chức/cá nhân (*): Công an tỉnh Nghệ An",
                      "Họ và tên (*): Nguyễn Văn Hùng", f"Dò mật khẩu SSH từ {ip}", "☒ Chưa được xử lý",
                      "☒ Kiểm tra dữ liệu lưu lại (Log File)", "☒ Cơ quan điều phối"):
            assert label in text, label
        bundle = stix2.parse((built.directory / f"{built.report_no}.stix.json").read_text(), allow_custom=True)
        assert any(o.type == "incident" for o in bundle.objects)

        assert enqueue(store, settings, built.report_no) == [f"{built.report_no}--a05"]
        (entry,) = [e for e in run_until_settled(store, settings, timeout=20) if e["status"] == "delivered"]
        assert entry["attempts"] == 2 and entry["receipt"]["status"] == 202  # 503 first, then accepted
        assert store.get(RECEIPTS, entry["id"]).body["receipt"]["body"]
        sent = {f["name"]: base64.b64decode(f["content_base64"]) for f in endpoint.requests[-1]["body"]["files"]}
        anchor = x509.load_pem_x509_certificate(Path(settings.reporting.certificate).read_bytes())
        for name in (n for n in sent if not n.endswith(".p7s")):
            assert verify_bytes(sent[name], sent[name + ".p7s"], anchor).ok
        record = next(r for r in store.get("incidents", target["id"]).body["reports"])
        assert record["report_no"] == built.report_no and record["delivered_at"] == entry["delivered_at"]
    finally:
        endpoint.close()
