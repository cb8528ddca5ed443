"""The snapshot and outbox round trip on the real OpenSearch (tests/servers.py), no mocks:
build a signed report, regenerate it byte for byte from the stored snapshot, deliver it through
the outbox with a receipt, and build a monthly summary from the search store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.export.outbox import OUTBOX, RECEIPTS, deliver_due, enqueue
from soc.export.reports import Reports
from soc.export.sign import verify_file
from soc.export.snapshot import SNAPSHOTS
from soc.store.search import OpenSearchStore
from tests.search_helpers import drop, open_search_store
from tests.test_export_fixtures import alert, incident, make_settings, seed

pytestmark = pytest.mark.search
BUILT_AT = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    s = open_search_store(opensearch_url, unique_name)
    yield s
    drop(s)


def test_snapshot_regeneration_and_outbox_round_trip(tmp_path: Path, store: OpenSearchStore,
                                                     opensearch_url: str) -> None:
    folder = tmp_path / "drop"
    settings = make_settings(tmp_path, recipients=[{"name": "cong-an", "channel": "drop", "endpoint": str(folder)}])
    inc = seed(store, incident(), alerts=[alert("AL-1", first="2026-11-30T01:00:00.000Z", incident="INC-2026-0001"),
                                          alert("AL-2", first="2026-11-30T01:05:00.000Z", src="198.51.100.9",
                                                incident="INC-2026-0001")])
    store.put("incidents", inc.id, {**inc.model_dump(), "alert_ids": ["AL-1", "AL-2"]})
    reports = Reports(store, settings)
    built = reports.build_incident(inc.id, "initial", built_at=BUILT_AT)
    original = {p.name: p.read_bytes() for p in built.files}
    data = json.loads(original[built.report_no + ".json"])
    assert [i["value"] for i in data["iocs"]] == ["198.51.100.9", "203.0.113.5"]

    # a second process, another instance on the same indices: the snapshot is all it needs
    other = open_search_store(opensearch_url, store.prefix)
    try:
        assert other.get(SNAPSHOTS, built.report_no).body["incident"]["id"] == inc.id
        store.put("incidents", inc.id, {**store.get("incidents", inc.id).body, "summary": "sửa sau khi gửi"})
        again = Reports(other, settings).render(built.report_no, tmp_path / "again")
        assert {p.name: p.read_bytes() for p in again.files} == original
        assert all(verify_file(p, trust_path=settings.reporting.certificate).ok for p in again.files)

        assert enqueue(other, settings, built.report_no) == [f"{built.report_no}--cong-an"]
        assert enqueue(store, settings, built.report_no) == [], "create-only across instances"
        (entry,) = deliver_due(store, settings)
        assert entry["status"] == "delivered"
        assert deliver_due(other, settings) == [], "a delivered entry is not sent again"
        assert other.get(OUTBOX, entry["id"]).body["status"] == "delivered"
        assert other.get(RECEIPTS, entry["id"]).body["receipt"]["folder"] == str(folder / built.report_no)
        assert (folder / built.report_no / "receipt.json").is_file()
        record = next(r for r in other.get("incidents", inc.id).body["reports"] if r["report_no"] == built.report_no)
        assert record["delivered_at"] == entry["delivered_at"]
    finally:
        other.close()

    summary = reports.build_summary("monthly", "2026-11", built_at=BUILT_AT)
    monthly = json.loads((summary.directory / f"{summary.report_no}.json").read_bytes())
    assert monthly["alerts"]["total"] == 2 and monthly["incidents"]["opened"] == 1
    assert monthly["alerts"]["by_type"] == {"unauthorized_access": 2}
