"""The Elastic Common Schema as the search store's mappings need it.

Read from ``soc/store/ecs_fields.json``, which ``tools/ecs/generate.py`` generates from the
schema's ``ecs_flat.yml`` (``tests/test_ecs_schema.py`` checks that regenerating it from
``../shared/data/ecs`` gives the same file), so the service maps ECS fields with ECS's own types
(``match_only_text``, ``wildcard``, ``keyword`` with ``ignore_above``, ``ip``, ``long``,
``date``...) without the shared data at run time, and the types are never typed by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACT = Path(__file__).with_name("ecs_fields.json")
#: ECS types whose values are strings (a lowercase multi-field can sit next to them)
STRING_TYPES = frozenset({"keyword", "wildcard", "match_only_text", "text", "constant_keyword"})
#: ECS types that become ``properties`` trees or have no mapping of their own in this store
CONTAINER_TYPES = frozenset({"object", "nested", "flattened"})


@dataclass(frozen=True)
class EcsSchema:
    version: str
    fields: dict[str, dict[str, Any]]

    def spec(self, name: str) -> dict[str, Any] | None:
        """The schema's definition of ``name`` (type, ignore_above, multi_fields...), or None."""
        return self.fields.get(name)

    def mapping(self, name: str) -> dict[str, Any] | None:
        """The index mapping ECS gives ``name``: its type and parameters and its multi-fields
        (``process.command_line`` -> wildcard with a ``text`` match_only_text), or None for a
        field ECS does not define or defines as a container."""
        spec = self.fields.get(name)
        if spec is None or spec["type"] in CONTAINER_TYPES:
            return None
        out: dict[str, Any] = {"type": spec["type"]}
        for key in ("ignore_above", "index", "doc_values", "scaling_factor"):
            if key in spec:
                out[key] = spec[key]
        if spec["type"] == "date":
            out["format"] = "strict_date_optional_time||epoch_millis"
        multi = spec.get("multi_fields")
        if multi:
            out["fields"] = {sub: {"type": kind} for sub, kind in multi.items()}
        return out


@cache
def ecs_schema() -> EcsSchema:
    data = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    return EcsSchema(version=str(data["version"]), fields=dict(data["fields"]))
