"""JSON Schemas of the exported documents: generated from :mod:`soc.export.documents`, shipped
in ``soc/export/schemas/`` (so a recipient can validate without our code) and used to validate
every JSON export with ``jsonschema``.

Regenerate after changing a model: ``python -m soc.export.schema`` (a test fails when the shipped
files differ from the models).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from soc.errors import SocError
from soc.export.documents import DOCUMENT_MODELS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class SchemaError(SocError, ValueError):
    """A document does not validate against its schema; the message lists every problem."""


def generate(document: str) -> dict[str, Any]:
    schema = DOCUMENT_MODELS[document].model_json_schema()
    schema["$schema"] = DIALECT
    schema["$id"] = f"urn:soc:export:{document}"
    return schema


def schema_text(document: str) -> str:
    return json.dumps(generate(document), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def shipped_path(document: str) -> Path:
    return SCHEMA_DIR / f"{document}.schema.json"


@cache
def load(document: str) -> dict[str, Any]:
    path = shipped_path(document)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return generate(document)


def validate(data: dict[str, Any]) -> None:
    """Validate an exported document (by its ``document`` field) against the shipped schema."""
    document = data.get("document")
    if document not in DOCUMENT_MODELS:
        raise SchemaError(f"unknown document type {document!r}")
    validator = jsonschema.Draft202012Validator(load(document))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
        raise SchemaError(f"{document} does not match its schema:\n" + "\n".join(lines))


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    paths = []
    for document in DOCUMENT_MODELS:
        path = shipped_path(document)
        path.write_text(schema_text(document), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all():
        print(written)
