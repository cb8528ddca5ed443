"""Sigma's Windows ``process_creation`` on both process-start events: Sysmon 1 and Security 4688.

pySigma's Sysmon pipeline turns ``category: process_creation`` into Sysmon event 1 only, and its
``windows_audit_pipeline`` into Security 4688 only (renaming ``Image`` -> ``NewProcessName`` and
``ParentImage`` -> ``ParentProcessName``): a converter picks one of the two. Servers and domain
controllers without Sysmon log only 4688 (with "Include command line in process creation events"),
so a province needs both, from the one rule. This pipeline runs in place of the Sysmon pipeline's
``process_creation`` items: the rule is restricted to (Sysmon channel and event 1) or (Security
channel and event 4688), and its log source becomes the ``process_start`` service, which the
``windows.sysmon`` and ``windows.security`` datasets declare (``ingest/datasets.yml``).

The fields both events share are then read from the ECS fields the Windows parser derives from
either event (``ingest/pipelines/windows.yml``: ``Image`` -> ``process.executable``,
``ParentImage`` -> ``process.parent.executable``, ``CommandLine`` -> ``process.command_line``),
never from a list of alternative fields: ``not (Image or NewProcessName)`` would be unknown, not
true, on a store where the absent one is NULL. Sysmon-only fields (``OriginalFileName``,
``Hashes``, ``IntegrityLevel``, ``User``...) stay Sysmon's: a 4688 event lacks them, as with
pySigma's audit pipeline, so a selection on them alone matches Sysmon only.

Rules over another shipper's indices queried in place (``dsl-inplace``) keep pySigma's Sysmon-only
mapping (:func:`soc.detect.pipelines.build_pipeline`): no parser of ours derived ``process.*``
there, and their Windows names stay as the shipper wrote them.
"""

from __future__ import annotations

from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    ChangeLogsourceTransformation,
)

__all__ = ["PROCESS_START_SERVICE", "process_start_pipeline", "sysmon_without_process_creation"]

#: the log source service a processed ``process_creation`` rule gets (datasets that hold process starts)
PROCESS_START_SERVICE = "process_start"

#: (channel, event id) of every process-start event a Windows ``process_creation`` rule reads
PROCESS_START_EVENTS = (("Microsoft-Windows-Sysmon/Operational", 1), ("Security", 4688))

_SYSMON_ITEMS = frozenset({"sysmon_process_creation_eventid", "sysmon_process_creation_logsource"})


def _is_process_creation() -> LogsourceCondition:
    # one object per item: pySigma binds each condition to the pipeline item that holds it
    return LogsourceCondition(category="process_creation", product="windows")


def process_start_pipeline() -> ProcessingPipeline:
    """``process_creation`` (product windows) -> Sysmon 1 or Security 4688, service ``process_start``."""
    # a list of mappings is Sigma's OR of alternatives; a fixed name keeps compiled queries stable
    either = [{"Channel": channel, "EventID": event_id} for channel, event_id in PROCESS_START_EVENTS]
    return ProcessingPipeline(
        name="Windows process_creation on Sysmon 1 and Security 4688", priority=10,
        items=[
            ProcessingItem(identifier="soc_process_start_condition",
                           transformation=AddConditionTransformation(either, name="_soc_process_start"),  # type: ignore[arg-type]
                           rule_conditions=[_is_process_creation()]),
            ProcessingItem(identifier="soc_process_start_logsource",
                           transformation=ChangeLogsourceTransformation(
                               product="windows", category="process_creation", service=PROCESS_START_SERVICE),
                           rule_conditions=[_is_process_creation()]),
        ])


def sysmon_without_process_creation() -> ProcessingPipeline:
    """pySigma's Sysmon pipeline for every other category (``process_start_pipeline`` has this one)."""
    pipeline = sysmon_pipeline()
    pipeline.items = [item for item in pipeline.items if item.identifier not in _SYSMON_ITEMS]
    return pipeline
