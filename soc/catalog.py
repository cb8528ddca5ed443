"""The data catalogue: which datasets exist, which Sigma log sources each satisfies, field types.

Read from ``ingest/datasets.yml`` and ``ingest/fields.yml`` (content, edited by analysts), so
the engine never hard-codes a log source. Used by the parsers (program -> dataset), by rule
compilation (rule logsource -> datasets, unmapped-field reports) and by both stores (field
types for columns and index mappings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from soc.config import content_dir

NUMERIC_TYPES = {"long", "float"}


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    product: str | None
    category: str | None  # "*" = any category (Windows: the pipelines add EventID conditions)
    services: frozenset[str]
    programs: frozenset[str]
    pipelines: tuple[str, ...]

    def satisfies(self, product: str | None, category: str | None, service: str | None) -> bool:
        """True when a Sigma rule with this logsource applies to events of this dataset."""
        if product is not None and product != self.product:
            return False
        if category is not None and self.category != "*" and category != self.category:
            return False
        if service is not None and service not in self.services and "*" not in self.services:
            return False
        return not (product is None and category is None and service is None)


@dataclass(frozen=True)
class Catalog:
    datasets: dict[str, Dataset]
    field_types: dict[str, str]
    dynamic_prefixes: tuple[str, ...]
    program_datasets: dict[str, str] = field(default_factory=dict)

    def datasets_for(self, product: str | None, category: str | None, service: str | None) -> list[str]:
        return sorted(n for n, d in self.datasets.items() if d.satisfies(product, category, service))

    def pipelines_for(self, datasets: list[str]) -> list[str]:
        names: list[str] = []
        for name in datasets:
            for pipeline in self.datasets[name].pipelines:
                if pipeline not in names:
                    names.append(pipeline)
        return names

    def is_known_field(self, name: str) -> bool:
        return name in self.field_types or name.startswith(self.dynamic_prefixes)

    def field_type(self, name: str) -> str:
        return self.field_types.get(name, "keyword")

    @property
    def numeric_fields(self) -> set[str]:
        return {f for f, t in self.field_types.items() if t in NUMERIC_TYPES}


def _lower(values: object) -> frozenset[str]:
    return frozenset(str(v).lower() for v in (values or []))  # type: ignore[union-attr]


def load_catalog(ingest_dir: Path | None = None) -> Catalog:
    base = ingest_dir or content_dir("ingest")
    raw = yaml.safe_load((base / "datasets.yml").read_text(encoding="utf-8"))
    datasets: dict[str, Dataset] = {}
    programs: dict[str, str] = {}
    for name, spec in raw["datasets"].items():
        spec = spec or {}
        category = spec.get("category")
        if spec.get("product") == "windows" and category is None:
            category = "*"
        dataset = Dataset(
            name=name,
            product=spec.get("product"),
            category=category,
            services=_lower(spec.get("services")),
            programs=_lower(spec.get("programs")),
            pipelines=tuple(spec.get("pipelines") or ()),
        )
        datasets[name] = dataset
        for program in dataset.programs:
            programs.setdefault(program, name)
    fields = yaml.safe_load((base / "fields.yml").read_text(encoding="utf-8"))
    return Catalog(
        datasets=datasets,
        field_types=dict(fields["fields"]),
        dynamic_prefixes=tuple(fields.get("dynamic") or ()),
        program_datasets=programs,
    )


@cache
def default_catalog() -> Catalog:
    return load_catalog()
