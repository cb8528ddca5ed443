"""Compile loaded Sigma rules into detections a store can run, with a per-rule report.

For a single-event rule: pick the datasets its log source applies to (``ingest/datasets.yml``),
run the processing pipelines those datasets name, convert with pySigma to the store's dialect,
and record which fields the query needs and which of them no parser produces (a rule on such a
field would silently never match, so it is reported). The datasets are computed again after the
pipelines ran, because pipelines may change the log source (Sysmon: ``process_creation`` ->
``service: sysmon``).

For a correlation rule: pySigma parses and resolves it; its window logic runs in
:mod:`soc.detect.correlate` over the matches of the referenced rules, the same on every store.

Nothing here raises for a bad rule: the rule gets ``errors`` in its report and is skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import SigmaFieldReference

from soc.catalog import Catalog, default_catalog
from soc.detect.extensions import ATTRIBUTE, EXTENSION_TYPES, ExtensionError, options
from soc.detect.pipelines import PipelineNotFound, build_pipeline
from soc.detect.rules import AnyRule, LoadedRules, LoadProblem, RuleInfo, rule_info

SUPPORTED_CORRELATIONS = {"event_count", "value_count", "temporal", "temporal_ordered", "value_sum",
                          *EXTENSION_TYPES}  # beaconing, first_seen: soc.detect.extensions


@dataclass
class RuleReport:
    """What ``soc rules check`` prints for one rule."""

    rule_id: str
    title: str
    path: str
    kind: str = "event"
    datasets: list[str] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    unmapped_fields: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.errors:
            return "error"
        if not self.datasets:
            return "no_data_source"
        if self.unmapped_fields or self.warnings:
            return "warning"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "title": self.title, "path": self.path, "kind": self.kind,
                "status": self.status, "datasets": self.datasets, "pipelines": self.pipelines,
                "fields": self.fields, "unmapped_fields": self.unmapped_fields,
                "errors": self.errors, "warnings": self.warnings, "notes": self.notes}


@dataclass(frozen=True)
class CorrelationSpec:
    """A Sigma correlation, reduced to what the window engine needs (fields already mapped)."""

    type: str
    rules: tuple[str, ...]  # ids of the referenced rules, in the order the rule lists them
    group_by: tuple[str, ...]
    timespan: float  # seconds
    op: str  # gte, gt, lte, lt, eq, neq
    count: float
    value_field: str | None = None  # value_count: counted distinct; value_sum: summed; first_seen: new
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # alias -> {rule id: field}
    options: dict[str, Any] = field(default_factory=dict)  # a project type's own keys (extensions.options)

    def field_for(self, rule_id: str, name: str) -> str:
        """The field of referenced rule ``rule_id`` behind ``name`` (an alias or a field)."""
        return self.aliases.get(name, {}).get(rule_id, name)


@dataclass
class Detection:
    """A compiled rule, ready to run on a store of ``dialect``."""

    info: RuleInfo
    kind: str  # "event" | "correlation"
    output: bool  # False: only referenced by correlations (Sigma "generate: false")
    report: RuleReport
    where: Any = None
    datasets: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    correlation: CorrelationSpec | None = None

    @property
    def runnable(self) -> bool:
        return not self.report.errors and bool(self.datasets)


@dataclass(frozen=True)
class CacheFigures:
    """How a rule set was built with the compiled-rule cache (:mod:`soc.detect.rulecache`)."""

    from_cache: int  # rules taken from the cache (no YAML parsing, no conversion)
    compiled: int  # rules parsed and converted now (then stored)
    rebuilt: int = 0  # cache entries found unreadable or foreign, ignored and rebuilt

    def __str__(self) -> str:
        return (f"{self.from_cache} rules from cache, {self.compiled} compiled"
                + (f" ({self.rebuilt} cache entries rebuilt)" if self.rebuilt else ""))


@dataclass
class RuleSet:
    dialect: str
    detections: dict[str, Detection]
    problems: list[LoadProblem]
    cache: CacheFigures | None = None  # None: built without the compiled-rule cache

    def runnable(self) -> list[Detection]:
        return [d for d in self.detections.values() if d.runnable and d.output]

    def reports(self) -> list[RuleReport]:
        return [d.report for d in self.detections.values()]


BackendFactory = Callable[[Any], Any]


def _backend_class(dialect: str) -> BackendFactory:
    if dialect == "sqlite":
        from soc.detect.sqlite_backend import SocSQLiteBackend

        return SocSQLiteBackend
    if dialect == "dsl":
        from soc.detect.search_backend import SocSearchBackend

        return SocSearchBackend
    if dialect == "dsl-inplace":  # logs another shipper put in the cluster (soc.store.search_sources)
        from soc.detect.search_backend import InPlaceSearchBackend

        return InPlaceSearchBackend
    raise ValueError(f"unknown query dialect {dialect!r}")


@cache
def _backend(dialect: str, pipelines: tuple[str, ...]) -> Any:
    return _backend_class(dialect)(build_pipeline(pipelines, in_place=dialect == "dsl-inplace"))


def query_fields(rule: SigmaRule) -> list[str]:
    """Fields a processed rule's condition reads (after field mapping)."""
    fields: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, ConditionFieldEqualsValueExpression):
            if node.field:
                fields.add(node.field)
            if isinstance(node.value, SigmaFieldReference):
                fields.add(node.value.field)
        for arg in getattr(node, "args", []) or []:
            walk(arg)

    for condition in rule.detection.parsed_condition:
        walk(condition.parsed)
    return sorted(fields)


def _compile_event_rule(rule: SigmaRule, info: RuleInfo, dialect: str, catalog: Catalog) -> Detection:
    report = RuleReport(info.id, info.title, info.path)
    ls = rule.logsource
    before = catalog.datasets_for(ls.product, ls.category, ls.service)
    detection = Detection(info=info, kind="event", output=bool(getattr(rule, "_output", True)), report=report)
    report.pipelines = catalog.pipelines_for(before)
    work = copy.deepcopy(rule)
    # compile the predicate even for rules only referenced by correlations (generate: false):
    # pySigma would otherwise keep it for its own correlation SQL and return nothing
    work._output = True
    work._backreferences = []
    try:
        backend = _backend(dialect, tuple(report.pipelines))
        queries = backend.convert_rule(work)
    except (SigmaError, PipelineNotFound, NotImplementedError, ValueError, TypeError) as error:
        report.errors.append(f"cannot convert: {error}")
        return detection
    if not queries:
        report.errors.append("conversion produced no query")
        return detection
    after = work.logsource
    report.datasets = catalog.datasets_for(after.product, after.category, after.service) or before
    if not report.datasets:
        report.notes.append(
            f"no data source for logsource product={ls.product} category={ls.category} service={ls.service}"
            " (the rule compiles; add a dataset for this log source in ingest/datasets.yml to run it)")
    report.fields = query_fields(work)
    report.unmapped_fields = [f for f in report.fields if not catalog.is_known_field(f)]
    if report.unmapped_fields:
        report.warnings.append(
            "fields no parser produces (the rule cannot match them): " + ", ".join(report.unmapped_fields))
    detection.where = backend.combine(queries) if hasattr(backend, "combine") else (
        queries[0] if len(queries) == 1 else " OR ".join(f"({q})" for q in queries))
    detection.datasets = tuple(report.datasets)
    detection.fields = tuple(report.fields)
    return detection


def _op(condition: Any) -> str:
    return condition.op.name.lower()


def _compile_correlation(rule: SigmaCorrelationRule, info: RuleInfo, compiled: dict[str, Detection]) -> Detection:
    report = RuleReport(info.id, info.title, info.path, kind="correlation")
    detection = Detection(info=info, kind="correlation", output=True, report=report)
    kind = rule.type.name.lower()
    extra: dict[str, Any] = {}
    extension = (rule.custom_attributes or {}).get(ATTRIBUTE)
    if isinstance(extension, dict):
        try:
            kind, extra = options(extension)
        except ExtensionError as error:
            report.errors.append(str(error))
            return detection
    if kind not in SUPPORTED_CORRELATIONS:
        report.errors.append(f"correlation type {kind} is not supported (supported: "
                             f"{', '.join(sorted(SUPPORTED_CORRELATIONS))})")
        return detection
    refs = [str(ref.rule.id or ref.rule.name) for ref in rule.rules]
    missing = [r for r in refs if r not in compiled]
    if missing:
        report.errors.append(f"referenced rules not compiled: {', '.join(missing)}")
        return detection
    if kind == "first_seen" and any(compiled[r].kind != "event" for r in refs):
        report.errors.append("first_seen refers to event rules only (its baseline is their past matches)")
        return detection
    broken = [r for r in refs if not compiled[r].runnable]
    if broken:
        report.errors.append("referenced rules cannot run: " + ", ".join(
            f"{r} ({compiled[r].report.status})" for r in broken))
        return detection
    aliases: dict[str, dict[str, str]] = {}
    # pySigma resolves the rule list but not the aliases' keys: map them through the rule list
    resolved = {ref.reference: str(ref.rule.id or ref.rule.name) for ref in rule.rules}
    for alias in rule.aliases or []:
        aliases[alias.alias] = {resolved.get(ref.reference, ref.reference): fld for ref, fld in alias.mapping.items()}
    condition = rule.condition
    timespan = float(rule.timespan.seconds)
    if timespan <= 0:
        report.errors.append("timespan must be positive")
        return detection
    spec = CorrelationSpec(
        type=kind, rules=tuple(refs), group_by=tuple(rule.group_by or ()), timespan=timespan,
        op=_op(condition), count=float(condition.count),
        value_field=extra.pop("field", None) or getattr(condition, "fieldref", None), aliases=aliases,
        options=extra)
    if kind in ("value_count", "value_sum") and not spec.value_field:
        report.errors.append(f"{kind} needs condition.field")
        return detection
    datasets = sorted({d for r in refs for d in compiled[r].datasets})
    report.datasets = datasets
    report.fields = sorted(set(spec.group_by) | ({spec.value_field} if spec.value_field else set()))
    detection.datasets = tuple(datasets)
    detection.fields = tuple(report.fields)
    detection.correlation = spec
    return detection


def compile_rules(loaded: LoadedRules, dialect: str = "sqlite", catalog: Catalog | None = None,
                  progress: Callable[[int, int], None] | None = None) -> RuleSet:
    """Compile every loaded rule for ``dialect``; ``progress(rules_done, rules_total)`` is called
    before the first rule and after each. (:func:`soc.detect.rulecache.load_compiled` gives the
    same rule set from rule folders, with the compiled-rule cache.)"""
    catalog = catalog or default_catalog()
    detections: dict[str, Detection] = {}
    # base rules first: correlations need their referenced rules compiled
    ordered: list[AnyRule] = sorted(loaded.rules, key=lambda r: isinstance(r, SigmaCorrelationRule))
    for done, rule in enumerate(ordered):
        if progress is not None:
            progress(done, len(ordered))
        if not isinstance(rule, SigmaCorrelationRule):
            info = rule_info(rule)
            detections[info.id] = _compile_event_rule(rule, info, dialect, catalog)
    link_correlations(loaded.rules, detections)
    if progress is not None:
        progress(len(ordered), len(ordered))
    return RuleSet(dialect=dialect, detections=detections, problems=list(loaded.problems))


def link_correlations(rules: list[AnyRule], detections: dict[str, Detection]) -> None:
    """Compile the (resolved) correlation rules among ``rules`` into ``detections``, which holds
    every compiled event rule; mark the rules only correlations use (``generate: false``)."""
    correlations = [r for r in rules if isinstance(r, SigmaCorrelationRule)]
    for rule in correlations:
        info = rule_info(rule)
        detections[info.id] = _compile_correlation(rule, info, detections)
    # a correlation may refer to a correlation declared later: compile those in a second pass
    for rule in correlations:
        info = rule_info(rule)
        if detections[info.id].report.errors:
            retry = _compile_correlation(rule, info, detections)
            if not retry.report.errors:
                detections[info.id] = retry
    for rule in correlations:
        for ref in rule.rules:
            ref_id = str(ref.rule.id or ref.rule.name)
            if ref_id in detections and not getattr(ref.rule, "_output", True):
                detections[ref_id].output = False
