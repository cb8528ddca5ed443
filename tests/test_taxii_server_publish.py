"""What the province publishes into its TAXII collections (issue #13, item 4): an incident's STIX
bundle as its report produces it (same objects, same TLP), refused where the collection's TLP or
content does not allow it; indicators an analyst shares; ``soc taxii collections`` and
``soc taxii publish-incident``; and a client reading the published objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from taxii2client.v21 import Collection, as_pages
from typer.testing import CliRunner

from soc.access import Principal
from soc.app import App
from soc.cli.main import app as cli
from soc.intel.taxii_collections import (
    TaxiiPublishError,
    incident_bundle,
    publish_incident,
    share_indicators,
)
from soc.intel.taxii_objects import Filters, TaxiiObjects
from tests.taxii_server_helpers import (
    COLLECTIONS,
    NATIONAL,
    PEER,
    BearerAuth,
    indicator,
    served,
    taxii_settings,
)
from tests.test_export_fixtures import incident, make_settings, seed

INC = "INC-2026-0042"
ANALYST = Principal(name="an", roles=frozenset({"analyst"}))


def build_report(root: App, profile: str | None = None) -> str:
    seed(root.base_store, incident(INC))
    return root.reports.build_incident(INC, "initial", profile, overrides={"notified": ["isp"]}).report_no


def stored(root: App, collection: str) -> list[dict[str, Any]]:
    objects = TaxiiObjects(root.base_store)
    out, cursor = [], None
    while True:
        page = objects.page(collection, Filters(), 1000, cursor)
        out += [r.object for r in page.records]
        if not page.more:
            return out
        cursor = page.next


def test_an_incident_is_published_as_its_report_has_it(tmp_path: Path) -> None:
    with served(tmp_path, settings=make_settings(tmp_path, signing=False)) as srv:
        root = srv.root
        strict = build_report(root)  # the default profile marks TLP:AMBER+STRICT
        with pytest.raises(TaxiiPublishError, match="AMBER\\+STRICT, more restricted"):
            publish_incident(root.base_store, root.settings, "national", INC, actor=ANALYST, audit=root.audit)
        amber = build_report(root, "vn.mic.ncsc-2020")  # this recipient's profile: TLP:AMBER
        assert amber != strict
        with pytest.raises(TaxiiPublishError, match="does not carry incidents"):
            publish_incident(root.base_store, root.settings, PEER, INC, actor=ANALYST, report_no=amber)

        report_no, result = publish_incident(root.base_store, root.settings, "national", INC, actor=ANALYST,
                                             audit=root.audit)
        assert report_no == amber and result.date_added and not result.failures
        # the objects are those of the report's STIX file, unchanged (a profile with a STIX file)
        [stix_file] = [f for f in root.reports.render(strict).files if f.name.endswith(".stix.json")]
        assert json.loads(stix_file.read_text())["objects"] == incident_bundle(root.base_store, INC, strict)[1]
        expected = {o["id"]: o for o in incident_bundle(root.base_store, INC, amber)[1]}
        token = srv.token(f"taxii:{NATIONAL}:read")
        got = [o for page in as_pages(Collection(srv.collection_url(NATIONAL), auth=BearerAuth(token)).get_objects,
                                      per_request=5) for o in page.get("objects", [])]
        assert {o["id"]: o for o in got} == expected
        assert {"report", "incident", "marking-definition"} <= {o["type"] for o in got}
        assert all(o.get("object_marking_refs") == ["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]
                   for o in got if o["type"] not in ("marking-definition", "ipv4-addr", "domain-name"))
        # publishing it again adds nothing
        _, again = publish_incident(root.base_store, root.settings, "national", INC, actor=ANALYST)
        assert again.date_added is None and len(stored(root, NATIONAL)) == len(expected)
        root.base_store.refresh()
        [record] = [r for r in root.audit.records() if r.action == "taxii.publish"]
        assert record.actor.name == "an" and record.details["kind"] == "incidents"
        assert record.details["tlp"] == "amber" and amber in record.details["about"]


def test_shared_indicators_are_marked_and_checked(tmp_path: Path) -> None:
    root = App(taxii_settings(tmp_path), store_url=f"sqlite:///{tmp_path / 'soc.db'}")
    try:
        result = share_indicators(root.base_store, root.settings, "peer-green", [indicator(1), indicator(2)],
                                  actor=ANALYST, audit=root.audit, about="incident INC-1")
        assert len(result.successes) == 3 and not result.failures  # the marking definition goes with them
        shared = stored(root, PEER)
        green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
        assert [o["id"] for o in shared] == [green, indicator(1)["id"], indicator(2)["id"]]
        assert all(o["object_marking_refs"] == [green] for o in shared[1:])
        with pytest.raises(TaxiiPublishError, match="more restricted"):
            share_indicators(root.base_store, root.settings, PEER, [indicator(3)], actor=ANALYST, tlp="amber")
        with pytest.raises(TaxiiPublishError, match="not an indicator"):
            share_indicators(root.base_store, root.settings, PEER, [{"type": "malware", "id": "malware--1"}],
                             actor=ANALYST)
        with pytest.raises(TaxiiPublishError, match="no TAXII collection"):
            share_indicators(root.base_store, root.settings, "nowhere", [indicator(3)], actor=ANALYST)
    finally:
        root.close()


def test_the_cli_lists_collections_and_publishes_an_incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "soc.yml"
    settings = make_settings(tmp_path, signing=False)
    reporting = settings.reporting.model_dump(mode="json", exclude_none=True)
    collections = [{**COLLECTIONS[0], "tlp": "amber+strict"}, COLLECTIONS[1]]
    config.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "reporting": reporting,
                                  "taxii": {"collections": collections}}), encoding="utf-8")
    monkeypatch.setenv("SOC_CONFIG", str(config))
    runner = CliRunner()
    listed = runner.invoke(cli, ["taxii", "collections", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines() if line.strip()]
    assert [(r["id"], r["tlp"], r["can_write"]) for r in rows] == [(NATIONAL, "amber+strict", True),
                                                                   (PEER, "green", False)]
    with App(taxii_settings(tmp_path, settings).model_copy(update={"data_dir": tmp_path / "data"})) as root:
        build_report(root)
    done = runner.invoke(cli, ["taxii", "publish-incident", INC, "--collection", "national"])
    assert done.exit_code == 0, done.output
    assert f"of incident {INC}" in done.output and "added at" in done.output
    refused = runner.invoke(cli, ["taxii", "publish-incident", INC, "--collection", "peer-green"])
    assert refused.exit_code == 2 and "does not carry incidents" in refused.output
    missing = runner.invoke(cli, ["taxii", "publish-incident", "INC-none", "--collection", "national"])
    assert missing.exit_code == 2 and "no incident" in missing.output
