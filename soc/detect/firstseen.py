"""The baseline of a ``first_seen`` correlation: which values each entity showed before a window.

A first sighting is judged against the store's own history over the rule's ``timespan`` (30
days, say), never against a copy kept aside: the history is the events the referenced rules
match, so it cannot drift from them, needs no warm-up state of its own and is the same for every
scheduler, restart and store. The store answers with one aggregation -- the first and last time
each (agency, group-by values, value) was matched before the window (SQL ``GROUP BY`` in the embedded
store, a composite aggregation in the search engine) -- so the baseline costs one row per
distinct pair, not one per past event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.detect.compiler import CorrelationSpec, Detection
from soc.detect.correlate import pair_key
from soc.store.base import Store, Window

__all__ = ["baseline"]


def baseline(store: Store, detections: Mapping[str, Detection], spec: CorrelationSpec,
             before: float) -> dict[tuple[tuple[Any, ...], Any], tuple[float, float]]:
    """(entity key, normalised value) -> when first and last matched in ``[before - timespan,
    before)``, over
    the event rules ``spec`` refers to (the keys :func:`soc.detect.correlate.first_seen` uses)."""
    window = Window(before - spec.timespan, before, "@timestamp")
    seen: dict[tuple[tuple[Any, ...], Any], tuple[float, float]] = {}
    for rule_id in spec.rules:
        child = detections[rule_id]
        names = [spec.field_for(rule_id, g) for g in spec.group_by]
        names.append(spec.field_for(rule_id, spec.value_field or ""))
        store.prepare_fields({*child.fields, *names})
        for bucket in store.aggregate_matches(child.where, child.datasets, window, names):
            *group, value = bucket.values
            if value is None or value == "" or any(v is None or v == "" for v in group):
                continue
            key = pair_key(bucket.agency, group, value)
            first, last = seen.get(key, (bucket.first, bucket.last))
            seen[key] = (min(first, bucket.first), max(last, bucket.last))
    return seen
