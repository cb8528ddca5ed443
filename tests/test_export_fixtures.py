"""Shared data for the export tests: settings with a reporting identity and a test certificate,
and an incident with its alerts written to a real store (no mocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soc.config import Settings
from soc.export.sign import keygen
from soc.incidents.model import AffectedSystem, HistoryEntry, Incident
from soc.store.base import Store

REPORTER = {"name": "Công an tỉnh Nghệ An", "address": "Số 3 Trường Thi, TP. Vinh, Nghệ An",
            "phone": "0238 3844 555", "email": "soc@congan.nghean.gov.vn", "member_code": "NA-01",
            "province": "Nghệ An"}
CONTACT = {"full_name": "Nguyễn Văn Hùng", "position": "Đội trưởng", "phone": "0912 345 678",
           "email": "hung.nv@congan.nghean.gov.vn"}
SIGNATORY = {"name": "Trần Quốc Bảo", "title": "Phó Giám đốc"}


def make_settings(tmp_path: Path, *, signing: bool = True, recipients: list[dict[str, Any]] | None = None,
                  **reporting: Any) -> Settings:
    conf: dict[str, Any] = {"reporter": REPORTER, "contact": CONTACT, "signatory": SIGNATORY,
                            "default_notified": ["coordinating_authority"], "out_dir": str(tmp_path / "reports"),
                            "recipients": recipients or [], "retry_base_seconds": 0.2, "retry_max_seconds": 1.0}
    if signing:
        cert, key = tmp_path / "pki" / "cert.pem", tmp_path / "pki" / "key.pem"
        if not cert.exists():
            keygen(cert, key, "SOC tỉnh Nghệ An (TEST)", "Công an tỉnh Nghệ An")
        conf.update(certificate=str(cert), private_key=str(key))
    smtp = reporting.pop("smtp", None)
    conf.update(reporting)
    return Settings(data_dir=tmp_path / "data", reporting=conf, **({"smtp": smtp} if smtp else {}))


def alert(aid: str, *, first: str, level: str = "high", agency: str = "so-tttt", src: str = "203.0.113.5",
          host: str = "web01", incident: str | None = None, tags: list[str] | None = None,
          count: int = 12) -> dict[str, Any]:
    body = {"id": aid, "kind": "correlation",
            "rule": {"id": f"rule-{level}", "title": "Dò mật khẩu SSH (brute force)", "level": level,
                     "tags": tags or ["attack.credential-access", "attack.t1110"], "author": "SOC tỉnh",
                     "version": "1"},
            "agency": agency, "@timestamp": first, "first_seen": first, "last_seen": first,
            "detected_at": first, "status": "new", "event_ids": [f"{aid}-e1"], "event_count": count,
            "entities": {"source.ip": [src], "host.name": [host], "user.name": ["root"]}}
    if incident:
        body["incident_id"] = incident
    return body


def incident(iid: str = "INC-2026-0001", *, alert_ids: list[str] | None = None, discovered: str = "2026-11-30T01:11:00.000Z",
             first_seen: str = "2026-11-30T01:00:00.000Z", **fields: Any) -> Incident:
    data: dict[str, Any] = {
        "id": iid, "title": "Dò mật khẩu SSH vào cổng thông tin điện tử",
        "incident_type": "unauthorized_access", "severity": "high", "agency": "so-tttt", "agencies": ["so-tttt"],
        "alert_ids": alert_ids if alert_ids is not None else ["AL-1"], "rule_ids": ["rule-high"],
        "entities": {"host.name": ["web01"], "source.ip": ["203.0.113.5"]},
        "first_seen": first_seen, "last_seen": first_seen, "discovered_at": discovered,
        "created_at": discovered, "updated_at": discovered,
        "summary": "Máy chủ web01 của Cổng thông tin điện tử bị dò mật khẩu SSH từ địa chỉ 203.0.113.5; "
                   "chưa ghi nhận đăng nhập thành công.",
        "affected_systems": [AffectedSystem(
            name="Cổng thông tin điện tử tỉnh", level=3, operator="Sở Thông tin và Truyền thông",
            owner="UBND tỉnh Nghệ An", hosts=["web01"], public_ips=["203.0.113.80", "10.2.0.8"],
            domains=["nghean.gov.vn"], services=["web_server", "database_server"], controls=["firewall", "waf"],
            os="Ubuntu", os_version="22.04")],
        "history": [HistoryEntry(at=discovered, actor="system", action="opened")],
    }
    data.update(fields)
    return Incident.model_validate(data)


def seed(store: Store, inc: Incident | None = None, alerts: list[dict[str, Any]] | None = None) -> Incident:
    inc = inc or incident()
    for body in alerts if alerts is not None else [alert("AL-1", first="2026-11-30T01:00:00.000Z",
                                                         incident=inc.id)]:
        store.create("alerts", body["id"], body)
    store.put("incidents", inc.id, inc.model_dump())
    store.refresh()
    return inc
