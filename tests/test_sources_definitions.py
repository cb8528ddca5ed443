"""Source definitions are checked when they are loaded (soc.ingest.sourcedefs), against the
registry of source types (soc.ingest.registry) and the parsers' format names: a type or format
nothing implements, an unknown zone, a missing path, a name used twice -- every bad file is named,
with its source and the known values, in one error."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.agencies import load_agencies
from soc.config import load_settings
from soc.ingest.parsers import PARSERS
from soc.ingest.registry import REGISTRY
from soc.ingest.sourcedefs import SourceDefinitionError, load_sources
from soc.ingest.sources import SourceError
from soc.ingest.sources.contract import Source, SourceEnv
from soc.service import source_registry

ALL_TYPES = ["syslog", "inbox", "tail", "file", "evtx", "kafka"]


def _ingest(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "ingest" / "sources"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return tmp_path / "ingest"


def test_the_registry_knows_every_type_the_schema_accepts() -> None:
    assert REGISTRY.names() == ALL_TYPES
    with pytest.raises(KeyError, match="known: syslog, inbox, tail, file, evtx, kafka"):
        REGISTRY.get("carrier-pigeon")
    assert REGISTRY.get("tail").needs == ("path",) and REGISTRY.get("evtx").files
    # kafka is declared by the ingest engine and provided by the Kafka engine
    assert REGISTRY.get("kafka").factory is None and source_registry().get("kafka").factory is not None


def test_unknown_type_and_format_are_refused_naming_file_source_and_known_values(tmp_path: Path) -> None:
    ingest = _ingest(tmp_path, {
        "a.yml": "name: pigeons\ntype: carrier-pigeon\n",
        "b.yml": "name: fw\ntype: syslog\nformat: fortinet\n",
        "c.yml": "name: ok\ntype: inbox\n",
    })
    with pytest.raises(SourceDefinitionError) as caught:
        load_sources(ingest)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{ingest / 'sources' / 'a.yml'}: source 'pigeons': type: unknown source type "
                               "'carrier-pigeon': known types are syslog, inbox, tail, file, evtx, kafka")
    assert lines[1].startswith(f"{ingest / 'sources' / 'b.yml'}: source 'fw': format: unknown format 'fortinet'")
    assert "auto, " + ", ".join(PARSERS) in lines[1]


def test_unknown_timezone_is_a_definition_error_not_a_key_error(tmp_path: Path) -> None:
    ingest = _ingest(tmp_path, {"zone.yml": "name: z\ntype: inbox\ntimezone: Mars/Base\n"})
    with pytest.raises(SourceDefinitionError, match=r"zone\.yml: source 'z': timezone: unknown time zone 'Mars/Base'"):
        load_sources(ingest)


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    ingest = _ingest(tmp_path, {
        "1-zone.yml": "name: z\ntype: inbox\ntimezone: Mars/Base\n",
        "2-tail.yml": "name: t\ntype: tail\n",
        "3-extra.yml": "name: x\ntype: inbox\npth: /tmp\n",
        "4-yaml.yml": "name: [unclosed\n",
        "5-list.yml": "- just\n- a list\n",
        "6-good.yml": "name: good\ntype: file\npath: /var/log/old\n",
        "7-again.yml": "name: good\ntype: evtx\npath: /srv/evtx\n",
    })
    with pytest.raises(SourceDefinitionError) as caught:
        load_sources(ingest)
    text = str(caught.value)
    for name in ("1-zone", "2-tail", "3-extra", "4-yaml", "5-list", "7-again"):
        assert f"{name}.yml" in text, (name, text)
    assert "6-good.yml:" not in text.replace("already used by", "")
    assert "a tail source needs 'path'" in text
    assert "pth: unknown field (known: name, type" in text
    assert "source 'good': the name is already used by" in text


def test_the_projects_own_definitions_and_agency_levels_load() -> None:
    sources = load_sources()
    assert {s.type for s in sources} <= set(ALL_TYPES) and sources
    tree = load_agencies()
    assert {"province", "department", "commune"} <= {a.level for a in tree.agencies}
    # the province sees everything below it; an absorbed agency's history goes with its successor
    assert tree.below("ubnd-tinh") >= {"so-tttt", "ubnd-xa-a", "ubnd-huyen-a", "ubnd-xa-a1"}
    assert tree.below("ubnd-xa-a") == {"ubnd-xa-a", "ubnd-huyen-a", "ubnd-xa-a1"}
    assert tree.current("ubnd-xa-a1") == "ubnd-xa-a" and "so-tc" not in tree.below("so-tttt")


def test_a_declared_type_without_its_engine_is_refused_at_start(tmp_path: Path) -> None:
    ingest = _ingest(tmp_path, {"k.yml": "name: k\ntype: kafka\ntopic: t\n"})
    (definition,) = load_sources(ingest)
    env = SourceEnv(settings=load_settings(data_dir=tmp_path), agencies=load_agencies(), state_dir=tmp_path)
    with pytest.raises(SourceError, match="'kafka' is provided by soc.kafka.source"):
        REGISTRY.create(definition, env)
    assert isinstance(source_registry().create(definition, env), Source)


def test_the_example_definitions_are_valid_when_enabled(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    examples = sorted((ROOT / "ingest" / "sources").glob("*.yml.disabled"))
    assert {p.name.split(".")[0] for p in examples} >= {"example-tail", "example-file", "example-evtx",
                                                         "example-kafka"}
    ingest = _ingest(tmp_path, {p.name.removesuffix(".disabled"): p.read_text(encoding="utf-8") for p in examples})
    agencies = load_agencies()
    from soc.ingest.sourcedefs import context_for

    for definition in load_sources(ingest):
        assert context_for(definition, agencies).agency_id == definition.agency
