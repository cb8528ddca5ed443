"""Sigma processing pipelines, kept as data in ``ingest/pipelines/*.yml``.

A dataset in ``ingest/datasets.yml`` names the pipelines that map Sigma's field names onto the
fields its events carry. ``windows`` additionally runs pySigma's own Sysmon and Windows
log-source pipelines first (they turn ``category: image_load`` into ``EventID: 7`` on the
Sysmon channel, ``service: security`` into ``Channel: Security``...), as SigmaHQ's tooling does;
``category: process_creation`` goes to Sysmon 1 *or* Security 4688 (:mod:`soc.detect.process_start`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import yaml
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_logsource_pipeline
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation

from soc.config import content_dir
from soc.detect.process_start import process_start_pipeline, sysmon_without_process_creation
from soc.errors import SocError

#: pySigma pipelines that run before our own YAML pipeline of the same name
_BUILTIN: dict[str, list[Callable[[], ProcessingPipeline]]] = {
    "windows": [process_start_pipeline, sysmon_without_process_creation, windows_logsource_pipeline],
}
#: the same for logs queried in place (``dsl-inplace``): no parser of ours derived the ECS
#: ``process.*`` fields both process-start events share there, so process_creation stays Sysmon 1
_BUILTIN_IN_PLACE: dict[str, list[Callable[[], ProcessingPipeline]]] = {
    "windows": [sysmon_pipeline, windows_logsource_pipeline],
}


class PipelineNotFound(SocError, ValueError):
    pass


@cache
def _yaml_pipeline(path: Path) -> ProcessingPipeline:
    return ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))


def build_pipeline(names: Sequence[str], pipeline_dir: Path | None = None, *,
                   in_place: bool = False) -> ProcessingPipeline:
    """One pipeline made of the named pipelines, in order (built-ins first); ``in_place`` for
    rules over another shipper's indices (``dsl-inplace``) rather than our stored events."""
    base = pipeline_dir or content_dir("ingest") / "pipelines"
    builtin = _BUILTIN_IN_PLACE if in_place else _BUILTIN
    parts: list[ProcessingPipeline] = []
    for name in names:
        for factory in builtin.get(name, []):
            parts.append(factory())
        path = base / f"{name}.yml"
        if path.is_file():
            parts.append(_yaml_pipeline(path))
        elif name not in builtin:
            raise PipelineNotFound(f"no pipeline {name!r}: expected {path}")
    parts.append(_placeholders())
    pipeline = ProcessingPipeline()
    for part in parts:
        pipeline = pipeline + part
    return pipeline


@cache
def _placeholders() -> ProcessingPipeline:
    """Sigma placeholders (``field|expand: '%admins%'``) filled from ``detections/placeholders.yml``:
    site-specific lists (administrators, scanners, public portals) live as data next to the rules.
    A rule naming a placeholder that file lacks fails to convert with a message naming it."""
    path = content_dir("detections") / "placeholders.yml"
    values = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return ProcessingPipeline(
        name="placeholders from detections/placeholders.yml", priority=200,
        items=[ProcessingItem(ValueListPlaceholderTransformation(), identifier="soc_placeholders")],
        vars=dict(values or {}))
