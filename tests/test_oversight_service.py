"""The running service's silent-source check (``oversight.silent_check_minutes``): an alert per
silent source, once per silence, announced and handed to the playbooks like any alert."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from soc.app import App
from soc.config import load_settings
from soc.oversight.sources import SILENT_RULE
from soc.store.base import DocQuery
from tests.test_oversight import ingested_at, iso


def test_service_check_raises_silent_source_alerts_once(tmp_path: Path) -> None:
    from soc.service import Service

    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.oversight.silent_check_minutes == 15 and settings.oversight.backfill_hours == 24
    lines: list[str] = []
    with App(settings) as root:
        service = Service(root, out=lambda line: lines.append(str(line)))
        seen: list[list[dict]] = []
        service.playbooks.on_alerts = lambda alerts: seen.append(list(alerts))  # type: ignore[method-assign]
        now = root.clock()
        with ingested_at(now - timedelta(hours=3)):
            service.store.write_events([{"_id": "e1", "@timestamp": iso(now - timedelta(hours=3)),
                                         "organization.id": "so-tttt", "soc.source": "syslog", "message": "x"}])
        service.store.refresh()
        created = service.check_silent_sources()
        assert [a["rule"]["id"] for a in created] == [SILENT_RULE["id"]] and created[0]["agency"] == "so-tttt"
        assert seen == [created] and any("Log source went silent" in line for line in lines)
        service.store.refresh()
        assert service.check_silent_sources() == []  # the same silence: announced once
        page = service.store.query_documents(DocQuery("alerts"))
        assert page.total == 1 and page.docs[0].body["status"] == "new"
        service.playbooks.close()
        service.store.close()
