"""The ATT&CK coverage map: which techniques the loaded rules detect, and where the province is blind.

For every technique tagged on an alerting rule (``attack.t1003.001``; Sigma's tag convention), the
map lists the rules, the log sources they need (our datasets, ``ingest/datasets.yml``: what a rule
can run on) and, for each agency, whether any of those sources sent events in the period looked at:
a technique whose rules read only ``windows.sysmon`` covers nothing at an agency that sends no Sysmon.

Technique names are not shown: the shared data holds no ATT&CK name table and the engine carries
none, so the map speaks in ids (``T1003.001``) and the tactics the rules are tagged with.

The needed sources are the compiled rule's datasets with two corrections, so that "connected" means
something: a Windows rule for one channel also lists ``windows.other`` (the catch-all channel
dataset), dropped when a specific Windows dataset is there; and a rule whose log source names only a
category (``category: firewall``) also lists every Windows dataset (their category is open), dropped
when any non-Windows dataset is there.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soc.detect.compiler import Detection, RuleSet
from soc.store.base import Store, Window

__all__ = ["CoverageMap", "RuleCoverage", "TechniqueCoverage", "build_coverage", "connected_datasets",
           "needed_datasets", "techniques_of"]

_TECHNIQUE = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)$", re.I)
_TACTIC = re.compile(r"attack\.([a-z][a-z_-]+)$", re.I)


def techniques_of(tags: Iterable[str]) -> list[str]:
    """``T1003.001``-style ids of the ATT&CK technique tags, in tag order."""
    out: list[str] = []
    for tag in tags:
        match = _TECHNIQUE.match(str(tag))
        if match and match.group(1).upper() not in out:
            out.append(match.group(1).upper())
    return out


def _tactics_of(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        match = _TACTIC.match(str(tag))
        if match and not re.match(r"[gst]\d{4}", match.group(1), re.I):  # software, group, technique ids
            name = match.group(1).lower().replace("_", "-")
            if name not in out:
                out.append(name)
    return out


def needed_datasets(datasets: Iterable[str]) -> list[str]:
    """The datasets a rule really needs (see the module docstring for the two corrections)."""
    names = sorted(set(datasets))
    windows = [d for d in names if d.startswith("windows.")]
    others = [d for d in names if not d.startswith("windows.")]
    if others:
        return others
    specific = [d for d in windows if d != "windows.other"]
    return specific or windows


@dataclass(frozen=True)
class RuleCoverage:
    id: str
    title: str
    level: str
    origin: str  # "project" (detections/) or "pack" (a folder from rule_dirs)
    datasets: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "level": self.level, "origin": self.origin,
                "datasets": list(self.datasets)}


@dataclass
class TechniqueCoverage:
    id: str
    tactics: list[str] = field(default_factory=list)
    rules: list[RuleCoverage] = field(default_factory=list)
    #: agency id -> the needed datasets that agency sent in the period
    connected: dict[str, list[str]] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return sorted({d for rule in self.rules for d in rule.datasets})

    def seen_in(self) -> list[str]:
        """Agencies where at least one of the rules has data to run on."""
        return sorted(a for a, found in self.connected.items() if found)

    def blind_in(self) -> list[str]:
        return sorted(a for a, found in self.connected.items() if not found)

    def as_dict(self) -> dict[str, Any]:
        return {"technique": self.id, "tactics": self.tactics, "datasets": self.datasets,
                "rules": [r.as_dict() for r in self.rules],
                "agencies": {a: {"connected": bool(found), "datasets": found}
                             for a, found in sorted(self.connected.items())}}


@dataclass
class CoverageMap:
    techniques: list[TechniqueCoverage]
    agencies: list[str]
    rules_total: int  # alerting rules considered
    rules_tagged: int  # of those, with at least one technique tag
    period: dict[str, Any] = field(default_factory=dict)

    @property
    def parent_techniques(self) -> list[str]:
        return sorted({t.id.split(".")[0] for t in self.techniques})

    def as_dict(self) -> dict[str, Any]:
        return {"techniques_covered": len(self.techniques), "parent_techniques_covered": len(self.parent_techniques),
                "rules": self.rules_total, "rules_with_techniques": self.rules_tagged, "agencies": self.agencies,
                "period": self.period, "techniques": [t.as_dict() for t in self.techniques]}


def _origin(detection: Detection, project_dir: Path | None) -> str:
    if project_dir is None or not detection.info.path:
        return "project"
    try:
        Path(detection.info.path).resolve().relative_to(project_dir.resolve())
    except ValueError:
        return "pack"
    return "project"


def build_coverage(ruleset: RuleSet, connected: Mapping[str, Collection[str]] | None = None, *,
                   project_dir: Path | None = None, period: Mapping[str, Any] | None = None) -> CoverageMap:
    """The coverage map of the alerting rules of ``ruleset``; ``connected`` maps each agency id to
    the datasets it sent in the period (:func:`connected_datasets`); ``None`` leaves the agency part
    empty. Rules that cannot run (errors, no data source) are left out: they detect nothing."""
    by_id: dict[str, TechniqueCoverage] = {}
    considered = tagged = 0
    for detection in sorted(ruleset.detections.values(), key=lambda d: d.info.title):
        if not detection.output or not detection.runnable:
            continue
        considered += 1
        techniques = techniques_of(detection.info.tags)
        if not techniques:
            continue
        tagged += 1
        rule = RuleCoverage(detection.info.id, detection.info.title, detection.info.level,
                            _origin(detection, project_dir), tuple(needed_datasets(detection.datasets)))
        tactics = _tactics_of(detection.info.tags)
        for technique in techniques:
            entry = by_id.setdefault(technique, TechniqueCoverage(technique))
            entry.rules.append(rule)
            entry.tactics.extend(t for t in tactics if t not in entry.tactics)
    agencies = sorted(connected or {})
    for entry in by_id.values():
        needed = set(entry.datasets)
        for agency in agencies:
            entry.connected[agency] = sorted(needed.intersection((connected or {})[agency]))
    techniques = sorted(by_id.values(), key=lambda t: tuple(int(p) for p in t.id[1:].split(".")))
    return CoverageMap(techniques, agencies, considered, tagged, dict(period or {}))


def connected_datasets(store: Store, window: Window, agencies: Iterable[str] = ()) -> dict[str, set[str]]:
    """Agency id -> the datasets (``event.dataset``) of the events it sent in ``window``; every
    agency of ``agencies`` is present (an empty set: it sent nothing), and so is every agency that
    sent something."""
    out: dict[str, set[str]] = {a: set() for a in agencies}
    senders = [a for a in store.count_events(window, group_by="organization.id") if a]
    for agency in sorted(set(senders) | set(out)):
        counts = store.count_events(window, group_by="event.dataset", agencies=[agency])
        out[agency] = {d for d, n in counts.items() if d and n}
    return out
