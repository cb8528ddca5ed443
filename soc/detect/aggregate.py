"""Store-side pre-checks for ``value_sum`` and ``beaconing``: skip reading matches no window can use.

Firewall traffic is the bulk of what a province stores, and sums or beacons over it are rare.
Before a window's matches are read for one of these correlations, the store is asked for one
aggregation per referenced rule -- per agency, ``group-by`` values and *tumbling* bucket of the
timespan: the event count and the sum of the condition field (SQL ``GROUP BY``, a composite
aggregation in the search engine). A sliding window ``[t - timespan, t]`` lies within two
adjacent buckets, so a group whose two adjacent buckets together do not reach the threshold
cannot qualify anywhere. When no group can, the correlation has no episode and no match is read;
when some can, the matches are read and the window logic decides, exactly as without the check.

The bound holds for ``gt``/``gte`` conditions (more events never lower the metric) and for sums
of non-negative values (bytes, packets, counts), which is what these rules sum. Other
conditions are not checked (every match is read).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from soc.detect.compiler import CorrelationSpec, Detection
from soc.detect.correlate import pair_key
from soc.store.base import Store, Window

__all__ = ["PRUNED_TYPES", "may_qualify"]

PRUNED_TYPES = frozenset({"value_sum", "beaconing"})


def may_qualify(store: Store, detections: Mapping[str, Detection], spec: CorrelationSpec, window: Window) -> bool:
    """False when the store's aggregation shows that no group of ``spec`` can reach its
    threshold in ``window`` (an event-time window); True when one might, or when the type or
    condition allows no such bound."""
    if spec.type not in PRUNED_TYPES or spec.op not in ("gt", "gte") or window.field != "@timestamp":
        return True
    if any(detections[r].kind != "event" for r in spec.rules):
        return True  # inner correlations have no single predicate to aggregate
    width = max(int(spec.timespan), 1)
    per_bucket: dict[Any, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for rule_id in spec.rules:
        child = detections[rule_id]
        group = [spec.field_for(rule_id, g) for g in spec.group_by]
        summed = spec.field_for(rule_id, spec.value_field or "") if spec.type == "value_sum" else None
        store.prepare_fields({*child.fields, *group, *([summed] if summed else [])})
        for bucket in store.aggregate_matches(child.where, child.datasets, window, group, sum_field=summed,
                                              bucket_seconds=width):
            if any(v is None or v == "" for v in bucket.values) or bucket.bucket is None:
                continue  # not grouped by the window logic either
            key = pair_key(bucket.agency, bucket.values, None)[0]
            per_bucket[key][bucket.bucket] += bucket.total if summed else bucket.count
    threshold = spec.count if spec.type == "value_sum" else max(spec.count, 3.0)  # beaconing: 3 beats at least
    for buckets in per_bucket.values():
        for start, value in buckets.items():
            best = value + buckets.get(start + width, 0.0)
            if best > threshold or (spec.op == "gte" and best >= threshold):
                return True
    return False
