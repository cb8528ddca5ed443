"""Every regression sample of the project's rules, on the real OpenSearch: same counts as SQLite.

``soc rules test`` (:mod:`soc.regression`) runs the samples through SQLite hunts only, so a rule
whose query OpenSearch refuses or reads differently went unnoticed (the DNS tunnelling regex
``[A-Za-z0-9_-]``: Lucene read ``_-]`` as a range and refused the query). Here every sample of
every ``info.yml`` is ingested into ONE search-store prefix, each sample file under its own agency
(``organization.id``): correlations group by agency first (``soc/detect/correlate.py``: the
agency leads every group key, first-seen entities included) and an event rule's alert carries the
agency of its event, so samples cannot add up to each other's alerts. Every rule then runs once
over the whole time range, as a hunt does (``DetectionEngine.run_all``), and the alerts are
counted per (rule, agency), i.e. per (rule, sample). Each sample file is its own agency because
event ids come from file path and byte offset: no two samples share an id (asserted).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from soc.detect.compiler import compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.hunt import HUNT_MAX_ALERTS
from soc.ingest.normalize import SourceContext
from soc.ingest.reader import FileIngestor
from soc.model import Event
from soc.regression import SAMPLE_TIMEZONE, RegressionCase, regression_cases
from soc.store.base import Window
from soc.store.search import OpenSearchStore
from tests.conftest import ROOT
from tests.search_helpers import drop, open_search_store

pytestmark = pytest.mark.search

DETECTIONS = ROOT / "detections"


@pytest.fixture
def search_store(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    store = open_search_store(opensearch_url, unique_name)
    yield store
    drop(store)


def _ingest(store: OpenSearchStore, samples: dict[tuple[Path, str], str]) -> int:
    """Read each sample under its own agency into ``store`` (in a few large bulk writes: one per
    sample costs a round trip each); the number of events written."""
    zone = ZoneInfo(SAMPLE_TIMEZONE)
    events: list[Event] = []
    owner: dict[str, Path] = {}
    for (sample, fmt), agency in samples.items():
        context = SourceContext(source="regression", agency_id=agency, agency_name=agency, zone=zone)
        for batch, _ in FileIngestor(context, fmt=fmt).read(sample):
            for event in batch:
                assert owner.setdefault(str(event["_id"]), sample) == sample, f"{sample} shares an event id"
            events.extend(batch)
    for start in range(0, len(events), 5000):
        result = store.write_events(events[start:start + 5000])
        assert not result.rejected and not result.retryable, result
    store.refresh()
    return len(events)


@pytest.mark.timeout(600)
def test_every_regression_sample_gives_the_same_count_on_opensearch(search_store: OpenSearchStore) -> None:
    cases, problems = regression_cases(DETECTIONS)
    assert not problems, problems
    assert len(cases) >= 100  # every info.yml was read (160 tests when written)
    samples: dict[tuple[Path, str], str] = {}
    for case in cases:
        samples.setdefault((case.sample.resolve(), case.fmt), f"regression-{len(samples):03d}")
    started = time.perf_counter()
    events = _ingest(search_store, samples)
    ingested = time.perf_counter() - started

    ruleset = compile_rules(load_rules([DETECTIONS]), dialect=search_store.dialect)
    assert not ruleset.problems, ruleset.problems
    engine = DetectionEngine(search_store, ruleset, max_alerts=HUNT_MAX_ALERTS, fresh_store=True)
    results = engine.run_all(ruleset.runnable(), Window(None, None, "@timestamp"))
    engine.flush()
    errors = {ruleset.detections[r.rule_id].info.title: r.error for r in results if r.error}
    assert not [r.rule_id for r in results if r.truncated]
    search_store.refresh()
    counts: Counter[tuple[str, str | None]] = Counter(
        (d.body["rule"]["id"], d.body.get("agency")) for d in search_store.iter_all(ALERTS))
    assert not [key for key in counts if key[1] not in samples.values()], counts  # no overflow alerts

    def got(case: RegressionCase) -> int:
        return counts[(case.rule_id, samples[(case.sample.resolve(), case.fmt)])]

    differing = [f"{ruleset.detections[c.rule_id].info.title if c.rule_id in ruleset.detections else c.rule_id} "
                 f"[{c.name}] ({c.sample.name}): expected {c.expected}, OpenSearch gave {got(c)}"
                 for c in cases if got(c) != c.expected]
    assert not errors and not differing, "\n".join([*(f"{t}: {e}" for t, e in errors.items()), *differing])
    print(f"\n{len(cases)} regression tests, {len(samples)} samples, {events} events on OpenSearch: "
          f"ingest {ingested:.1f} s, {len(results)} rules {time.perf_counter() - started - ingested:.1f} s")
