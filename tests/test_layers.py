"""The import layering of ``soc/`` (docs/ARCHITECTURE.md, "Layers"): a module imports its own
layer or the layers below, never above; among the engines only the listed dependencies exist.

Imports are read by the same :mod:`ast` walk as the circle test (``tests/test_architecture.py``:
imports inside functions count, ``if TYPE_CHECKING:`` blocks do not).
"""

from __future__ import annotations

import pytest

from tests.test_architecture import MODULES, import_graph

#: bottom to top; every top-level module or package of soc/ is in exactly one layer
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"soc", "soc.errors", "soc.clock", "soc.model", "soc.secrets", "soc.config_errors", "soc.config",
              "soc.config_security", "soc.config_auth", "soc.config_api", "soc.catalog", "soc.net", "soc.agencies",
              "soc.access", "soc.timeexpr", "soc.text", "soc.config_taxii", "soc.config_intel"}),
    ("infrastructure", {"soc.store", "soc.audit", "soc.outgoing", "soc.mail", "soc.retry", "soc.ui", "soc.charts"}),
    ("engines", {"soc.ingest", "soc.detect", "soc.incidents", "soc.export", "soc.playbooks", "soc.kafka",
                 "soc.identity", "soc.alerts", "soc.intel"}),
    ("application", {"soc.app", "soc.service", "soc.hunt", "soc.regression", "soc.config_check", "soc.devstack",
                     "soc.handover",
                     "soc.oversight"}),
    ("front doors", {"soc.cli", "soc.web"}),
]
#: what each engine may use of the other engines
ENGINES: dict[str, set[str]] = {
    "soc.ingest": set(),
    "soc.detect": set(),
    "soc.incidents": set(),
    "soc.export": {"soc.incidents"},
    "soc.playbooks": {"soc.incidents", "soc.export", "soc.intel"},  # enrich.threat_intel reads the indicators
    "soc.kafka": {"soc.ingest"},
    "soc.identity": set(),
    "soc.alerts": set(),
    "soc.intel": {"soc.export", "soc.detect"},  # TAXII collections publish the reports' STIX bundles;
    # matches are alerts like the rules' (soc.detect.engine: ALERTS, ENTITY_FIELDS)
}
#: engines present the shell's rendering helpers (soc.ui) only through the layers above
NOT_FOR_ENGINES = {"soc.ui"}


def unit(module: str) -> str:
    """The top-level module or package a module belongs to (``soc.ingest.parsers.cef`` ->
    ``soc.ingest``)."""
    parts = module.split(".")
    return ".".join(parts[:2])


LAYER_OF = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in MODULES}
    assert units - set(LAYER_OF) == set(), "add the new module or package to a layer in LAYERS"


def _violations() -> list[str]:
    found = []
    for source, edges in import_graph(MODULES).items():
        a = unit(source)
        for edge in edges:
            b = unit(edge.target)
            if a == b:
                continue
            if LAYER_OF[b] > LAYER_OF[a]:
                found.append(f"{edge.where}: {a} ({LAYERS[LAYER_OF[a]][0]}) imports {b} "
                             f"({LAYERS[LAYER_OF[b]][0]}), a layer above: {edge.code}")
            elif a in ENGINES and b in ENGINES and b not in ENGINES[a]:
                found.append(f"{edge.where}: engine {a} imports engine {b}, which is not among its "
                             f"dependencies {sorted(ENGINES[a])}: {edge.code}")
            elif a in ENGINES and b in NOT_FOR_ENGINES:
                found.append(f"{edge.where}: engine {a} imports {b} (rendering belongs to the layers "
                             f"above): {edge.code}")
    return found


def test_imports_follow_the_layers() -> None:
    problems = _violations()
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_dependencies_are_real(name: str) -> None:
    """Each listed engine dependency exists (the list says what is, not what once was)."""
    used = {unit(e.target) for source, edges in import_graph(MODULES).items() if unit(source) == name
            for e in edges}
    assert ENGINES[name] <= used, f"{name} no longer imports {sorted(ENGINES[name] - used)}: shorten ENGINES"
